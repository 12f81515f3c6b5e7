//! The rustls connector, for a client certificate whose key signs outside
//! the process (a PKCS#11 token, through [`enrolkit_keys::Signer`]):
//! rustls asks it to sign CertificateVerify. Certificates only, no PSK, no
//! `tls-unique`.

use super::{ClientStream, ClientTlsConfig, ServerTrust};
use crate::error::TlsSetupError;
use crate::info::rustls::versions;
use crate::info::{Backend, KeyingExport, TlsInfo, TlsVersion};
use crate::stream::HANDSHAKE_TIMEOUT;
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A rustls signing key backed by an [`enrolkit_keys::Signer`] (a token key).
struct ExternalKey(Arc<dyn enrolkit_keys::Signer>);

impl std::fmt::Debug for ExternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExternalKey({:?})", self.0.kind())
    }
}

/// One CertificateVerify signature by an [`ExternalKey`].
struct ExternalSigner {
    key: Arc<dyn enrolkit_keys::Signer>,
    alg: enrolkit_keys::SignatureAlgorithm,
    scheme: rustls::SignatureScheme,
}

impl std::fmt::Debug for ExternalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExternalSigner({:?})", self.scheme)
    }
}

impl rustls::sign::Signer for ExternalSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key
            .sign(self.alg, message)
            .map_err(|e| rustls::Error::General(format!("client key: {e}")))
    }
    fn scheme(&self) -> rustls::SignatureScheme {
        self.scheme
    }
}

impl rustls::sign::SigningKey for ExternalKey {
    fn choose_scheme(&self, offered: &[rustls::SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        use enrolkit_keys::{KeyKind, SignatureAlgorithm as A};
        use rustls::SignatureScheme as S;
        let choices: &[(S, A)] = match self.0.kind() {
            KeyKind::EcP256 => &[(S::ECDSA_NISTP256_SHA256, A::EcdsaP256Sha256)],
            KeyKind::Rsa(_) => &[
                (S::RSA_PKCS1_SHA256, A::RsaPkcs1Sha256),
                (S::RSA_PKCS1_SHA512, A::RsaPkcs1Sha512),
            ],
        };
        choices
            .iter()
            .find(|(scheme, alg)| offered.contains(scheme) && self.0.supports(*alg))
            .map(|&(scheme, alg)| {
                Box::new(ExternalSigner {
                    key: self.0.clone(),
                    alg,
                    scheme,
                }) as Box<dyn rustls::sign::Signer>
            })
    }
    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        match self.0.kind() {
            enrolkit_keys::KeyKind::EcP256 => rustls::SignatureAlgorithm::ECDSA,
            enrolkit_keys::KeyKind::Rsa(_) => rustls::SignatureAlgorithm::RSA,
        }
    }
}

/// Always offers the one certificate and its external key.
#[derive(Debug)]
struct OneClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OneClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// The rustls client for a certificate whose key signs outside the process.
pub(super) fn connector(
    cfg: &ClientTlsConfig,
    chain: &[Vec<u8>],
    key: &Arc<dyn enrolkit_keys::Signer>,
) -> Result<tokio_rustls::TlsConnector, TlsSetupError> {
    if cfg.psk.is_some() {
        return Err(TlsSetupError::Invalid(
            "a client key held outside the process authenticates by certificate, not with a PSK".into(),
        ));
    }
    let ServerTrust::Anchors(anchors) = &cfg.trust else {
        return Err(TlsSetupError::Invalid(
            "a client key held outside the process needs trust anchors for the server".into(),
        ));
    };
    let mut roots = rustls::RootCertStore::empty();
    for ta in anchors {
        roots
            .add(rustls_pki_types::CertificateDer::from(ta.clone()))
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::Invalid("no trust anchors for the server".into()));
    }
    // TLS 1.3 signs CertificateVerify with RSA-PSS only, which the key's
    // PKCS#1 v1.5 signer cannot do: RSA keys stay with TLS 1.2.
    let (max, needs) = match key.kind() {
        enrolkit_keys::KeyKind::Rsa(_) => {
            if cfg.min_version > TlsVersion::Tls12 {
                return Err(TlsSetupError::Invalid(
                    "an RSA key held outside the process signs PKCS#1 v1.5 only, which TLS 1.3 does not accept: allow TLS 1.2"
                        .into(),
                ));
            }
            (TlsVersion::Tls12, enrolkit_keys::SignatureAlgorithm::RsaPkcs1Sha256)
        }
        enrolkit_keys::KeyKind::EcP256 => (cfg.max_version, enrolkit_keys::SignatureAlgorithm::EcdsaP256Sha256),
    };
    if !key.supports(needs) {
        return Err(TlsSetupError::Invalid(format!(
            "the client key cannot sign {needs:?}, which the TLS handshake needs"
        )));
    }
    let versions = versions(cfg.min_version, max)?;
    let certs = chain
        .iter()
        .map(|c| rustls_pki_types::CertificateDer::from(c.clone()))
        .collect::<Vec<_>>();
    if certs.is_empty() {
        return Err(TlsSetupError::Invalid("empty client certificate chain".into()));
    }
    let certified = rustls::sign::CertifiedKey::new(certs, Arc::new(ExternalKey(key.clone())));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(OneClientCert(Arc::new(certified))));
    config.resumption = rustls::client::Resumption::disabled();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Handshake with `host` over `tcp`, verifying the server's name.
pub(super) async fn connect(
    connector: &tokio_rustls::TlsConnector,
    export: Option<&KeyingExport>,
    host: &str,
    tcp: TcpStream,
) -> io::Result<(ClientStream, TlsInfo)> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls_pki_types::ServerName::try_from(bare.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
    };
    let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let info = info(s.get_ref().1, export);
    Ok((ClientStream::Rustls(Box::new(s)), info))
}

/// What a rustls client handshake established.
fn info(conn: &rustls::ClientConnection, export: Option<&KeyingExport>) -> TlsInfo {
    let (version, peer_chain, channel_binding) = crate::info::rustls::common(conn);
    TlsInfo {
        backend: Backend::Rustls,
        version,
        peer_chain,
        peer_cert_error: None,
        psk_identity: None,
        cipher_suite: conn.negotiated_cipher_suite().map(|c| u16::from(c.suite())),
        channel_binding,
        exported: crate::info::rustls::exported(conn, export),
    }
}
