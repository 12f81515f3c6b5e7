//! The listener: one [`ServerTlsConfig`] for both stacks and an
//! [`Acceptor`] running one of them ([`rustls`]: certificates; [`openssl`]:
//! adds external PSK and `tls-unique`). Either way a connection comes out as
//! a [`ServerStream`] and a [`TlsInfo`].

pub mod openssl;
pub mod rustls;

use crate::info::{Backend, KeyingExport, TlsInfo, TlsVersion};
use crate::stream::{Stream, HANDSHAKE_TIMEOUT};
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// What both stacks are configured from.
#[derive(Clone)]
pub struct ServerTlsConfig {
    /// Server certificate chain, DER, end entity first.
    pub chain: Vec<Vec<u8>>,
    /// Server private key, PKCS#8 DER.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
    /// Trust anchors for client certificates (DER). Nothing else is trusted.
    pub client_trust_anchors: Vec<Vec<u8>>,
    /// Lowest version offered.
    pub min_version: TlsVersion,
    /// Highest version offered.
    pub max_version: TlsVersion,
    /// Keying material to export on every connection, if any.
    pub keying_export: Option<KeyingExport>,
}

/// Accepts TLS connections with one of the two stacks.
#[derive(Clone)]
pub enum Acceptor {
    /// rustls.
    Rustls(
        tokio_rustls::TlsAcceptor,
        Arc<dyn ::rustls::server::danger::ClientCertVerifier>,
        Option<KeyingExport>,
    ),
    /// OpenSSL.
    OpenSsl(Arc<::openssl::ssl::SslContext>, Option<KeyingExport>),
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Acceptor({})", self.backend())
    }
}

/// A connection a listener accepted.
pub type ServerStream = Stream<tokio_rustls::server::TlsStream<TcpStream>, tokio_openssl::SslStream<TcpStream>>;

impl Acceptor {
    /// Which stack this is.
    pub fn backend(&self) -> Backend {
        match self {
            Acceptor::Rustls(..) => Backend::Rustls,
            Acceptor::OpenSsl(..) => Backend::OpenSsl,
        }
    }

    /// Run the handshake on an accepted TCP connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<(ServerStream, TlsInfo)> {
        let fut = async {
            match self {
                Acceptor::Rustls(acceptor, verifier, export) => {
                    rustls::accept(acceptor, verifier.as_ref(), export.as_ref(), tcp).await
                }
                Acceptor::OpenSsl(ctx, export) => openssl::accept(ctx, export.as_ref(), tcp).await,
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}
