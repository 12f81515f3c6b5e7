//! The rustls listener: certificates, TLS 1.2 and 1.3; channel binding
//! with TLS 1.3 only (rustls exposes no Finished messages).

use super::{Acceptor, ServerStream, ServerTlsConfig};
use crate::error::TlsSetupError;
use crate::info::rustls::versions;
use crate::info::{export_len_ok, Backend, KeyingExport, TlsInfo};
use std::io;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Accepts any client certificate whose handshake signature verifies, so
/// that a certificate from an unknown CA gets an HTTP answer with a reason;
/// the chain is checked against the trust anchors after the handshake.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

impl rustls::server::danger::ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Acceptor {
    /// A rustls listener.
    pub fn rustls(cfg: &ServerTlsConfig) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ta in &cfg.client_trust_anchors {
            roots
                .add(rustls_pki_types::CertificateDer::from(ta.clone()))
                .map_err(|e| TlsSetupError::Rustls(format!("client trust anchor: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsSetupError::Invalid("no client trust anchors".into()));
        }
        let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        let verifier = Arc::new(RecordingVerifier { inner: inner.clone() });
        let chain = cfg
            .chain
            .iter()
            .map(|c| rustls_pki_types::CertificateDer::from(c.clone()))
            .collect::<Vec<_>>();
        let key =
            rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(cfg.key_pkcs8.to_vec()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions(cfg.min_version, cfg.max_version)?)
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if let Some(e) = &cfg.keying_export {
            export_len_ok(e)?;
        }
        Ok(Acceptor::Rustls(
            tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            inner,
            cfg.keying_export.clone(),
        ))
    }
}

/// The handshake on an accepted TCP connection (the caller bounds its time).
pub(super) async fn accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    verifier: &dyn rustls::server::danger::ClientCertVerifier,
    export: Option<&KeyingExport>,
    tcp: TcpStream,
) -> io::Result<(ServerStream, TlsInfo)> {
    let s = acceptor.accept(tcp).await?;
    let info = info(s.get_ref().1, verifier, export);
    Ok((ServerStream::Rustls(Box::new(s)), info))
}

/// What a rustls server handshake established; the client chain is checked
/// against the trust anchors here, after the handshake.
fn info(
    conn: &rustls::ServerConnection,
    verifier: &dyn rustls::server::danger::ClientCertVerifier,
    export: Option<&KeyingExport>,
) -> TlsInfo {
    let (version, chain, channel_binding) = crate::info::rustls::common(conn);
    let peer_cert_error = conn.peer_certificates().and_then(|certs| {
        let (ee, rest) = certs.split_first()?;
        verifier
            .verify_client_cert(ee, rest, rustls_pki_types::UnixTime::now())
            .err()
            .map(|e| e.to_string())
    });
    TlsInfo {
        backend: Backend::Rustls,
        version,
        peer_chain: chain,
        peer_cert_error,
        psk_identity: None,
        cipher_suite: conn.negotiated_cipher_suite().map(|c| u16::from(c.suite())),
        channel_binding,
        exported: crate::info::rustls::exported(conn, export),
    }
}
