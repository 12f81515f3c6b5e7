//! The connector: one [`ClientTlsConfig`] and a [`Connector`] that runs
//! OpenSSL ([`openssl`]: external PSK, `tls-unique`) or, when the client
//! certificate's key signs outside the process, rustls ([`rustls`]).

pub mod openssl;
pub mod rustls;

use crate::error::TlsSetupError;
use crate::info::{export_len_ok, KeyingExport, TlsInfo, TlsVersion};
use crate::psk::PskKey;
use crate::stream::Stream;
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// How a client authenticates the server.
#[derive(Clone)]
pub enum ServerTrust {
    /// Only these trust anchors (DER), and the name must match the host.
    Anchors(Vec<Vec<u8>>),
    /// No verification during the handshake: RFC 7030 §4.1.1 bootstrap. The
    /// caller must check [`TlsInfo::peer_chain`] afterwards, against a pinned
    /// fingerprint or the CA certificates `/cacerts` returned.
    Bootstrap,
}

/// A client certificate chain (DER, end entity first) and its private key.
pub type ClientCertificate = (Vec<Vec<u8>>, ClientKey);

/// The private key of a client certificate.
#[derive(Clone)]
pub enum ClientKey {
    /// PKCS#8 DER, handed to OpenSSL.
    Pkcs8(Zeroizing<Vec<u8>>),
    /// A key held elsewhere (a PKCS#11 token) that signs on request: the
    /// handshake then runs on rustls, which asks it to sign CertificateVerify
    /// (ECDSA P-256 with TLS 1.2 or 1.3; RSA PKCS#1 v1.5, hence TLS 1.2 only,
    /// since TLS 1.3 wants RSA-PSS). No PSK and no `tls-unique` then.
    Signer(Arc<dyn enrolkit_keys::Signer>),
}

impl ClientKey {
    /// A key that signs wherever it lives (a PKCS#11 token): the handshake runs on rustls.
    pub fn signer(key: Box<dyn enrolkit_keys::PrivateKey>) -> ClientKey {
        let key: Arc<dyn enrolkit_keys::PrivateKey> = Arc::from(key);
        ClientKey::Signer(key)
    }
}

impl From<Zeroizing<Vec<u8>>> for ClientKey {
    fn from(k: Zeroizing<Vec<u8>>) -> Self {
        ClientKey::Pkcs8(k)
    }
}

/// A client's TLS settings: OpenSSL (external PSK, `tls-unique`), or
/// rustls when the client certificate's key signs outside the process
/// ([`ClientKey::Signer`]).
#[derive(Clone)]
pub struct ClientTlsConfig {
    /// How the server is authenticated (ignored for a PSK handshake, where the PSK does it).
    pub trust: ServerTrust,
    /// Client certificate chain (DER, end entity first) and its PKCS#8 key.
    pub certificate: Option<ClientCertificate>,
    /// Certificate-less authentication: identity and key.
    pub psk: Option<(String, PskKey)>,
    /// Lowest version offered.
    pub min_version: TlsVersion,
    /// Highest version offered.
    pub max_version: TlsVersion,
    /// Keying material to export after the handshake, if any.
    pub keying_export: Option<KeyingExport>,
}

/// Makes client TLS connections.
#[derive(Clone)]
pub struct Connector {
    stack: ClientStack,
    export: Option<KeyingExport>,
}

/// The stack a [`Connector`] runs, configured.
#[derive(Clone)]
enum ClientStack {
    OpenSsl {
        ctx: Arc<::openssl::ssl::SslContext>,
        verify: bool,
        psk: bool,
    },
    Rustls(tokio_rustls::TlsConnector),
}

/// A connection a [`Connector`] made.
pub type ClientStream = Stream<tokio_rustls::client::TlsStream<TcpStream>, tokio_openssl::SslStream<TcpStream>>;

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stack = match &self.stack {
            ClientStack::OpenSsl { verify, .. } => format!("OpenSSL, verify {verify}"),
            ClientStack::Rustls(_) => "rustls, external client key".to_owned(),
        };
        f.debug_struct("Connector").field("stack", &stack).finish()
    }
}

impl Connector {
    /// Configure a connector.
    pub fn new(cfg: &ClientTlsConfig) -> Result<Self, TlsSetupError> {
        if let Some((chain, ClientKey::Signer(key))) = &cfg.certificate {
            if let Some(e) = &cfg.keying_export {
                export_len_ok(e)?;
            }
            return Ok(Connector {
                stack: ClientStack::Rustls(rustls::connector(cfg, chain, key)?),
                export: cfg.keying_export.clone(),
            });
        }
        let stack = openssl::stack(cfg)?;
        if let Some(e) = &cfg.keying_export {
            export_len_ok(e)?;
        }
        Ok(Connector {
            stack,
            export: cfg.keying_export.clone(),
        })
    }

    /// Handshake with `host` over `tcp`; the server name is verified unless bootstrapping or PSK.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<(ClientStream, TlsInfo)> {
        match &self.stack {
            ClientStack::OpenSsl { ctx, verify, psk } => {
                openssl::connect(ctx, *verify, *psk, self.export.as_ref(), host, tcp).await
            }
            ClientStack::Rustls(connector) => rustls::connect(connector, self.export.as_ref(), host, tcp).await,
        }
    }
}
