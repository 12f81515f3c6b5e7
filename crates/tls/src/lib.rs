//! One TLS listener abstraction over two TLS stacks.
//!
//! EST needs things no single Rust TLS stack offers: rustls is the default
//! (memory-safe, TLS 1.2 and 1.3, certificates), but it has no external PSK
//! (rustls issue #174) and does not expose the TLS 1.2 Finished messages that
//! the `tls-unique` channel binding is made of. OpenSSL (through the `openssl`
//! crate and `tokio-openssl`) has both. [`Acceptor`] hides which one a
//! listener uses: either way a connection comes out as a [`ServerStream`] and
//! a [`TlsInfo`] saying what the handshake established — version, the client
//! certificate chain and whether it chains to the configured trust anchors,
//! the PSK identity, and the channel binding for RFC 7030 §3.5 linking
//! (`tls-unique` with TLS 1.2 where the stack exposes it, RFC 9266
//! `tls-exporter` with TLS 1.3).
//!
//! A client certificate is never required by the handshake: `/cacerts` is
//! open to all, and a certificate that does not chain to the trust anchors is
//! recorded in [`TlsInfo::peer_cert_error`] so the service answers with an
//! HTTP status and a reason the operator can read, instead of a bare alert.

use enrolkit_pkix::binding::ChannelBinding;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Which TLS stack a listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// rustls: certificates, TLS 1.2 and 1.3; channel binding only with TLS 1.3.
    Rustls,
    /// OpenSSL: adds external PSK and `tls-unique` for TLS 1.2.
    OpenSsl,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Rustls => "rustls",
            Backend::OpenSsl => "openssl",
        })
    }
}

/// Negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

/// What a handshake established, for the service to authorise with.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The stack that ran it.
    pub backend: Backend,
    /// Negotiated version.
    pub version: TlsVersion,
    /// The peer's certificate chain as sent (DER, end entity first); empty without one.
    /// On a server this is the client's chain.
    pub peer_chain: Vec<Vec<u8>>,
    /// Why the peer certificate does not chain to the trust anchors (`None` when it does, or when there is none).
    pub peer_cert_error: Option<String>,
    /// The PSK identity, for a certificate-less (RFC 7030 §3.3.3) handshake.
    pub psk_identity: Option<String>,
    /// The negotiated cipher suite (IANA number), when the stack reports it.
    pub cipher_suite: Option<u16>,
    /// The channel binding of this connection, when the stack can produce one.
    pub channel_binding: Option<ChannelBinding>,
    /// The keying material exported as the configuration's [`KeyingExport`]
    /// asked (oneM2M's Enrolment Key generation), when it asked.
    pub exported: Option<Exported>,
}

/// A TLS exporter computation to run at the end of every handshake
/// (RFC 5705 with TLS 1.2, RFC 8446 §7.5 with TLS 1.3), such as oneM2M's
/// `EXPORTER-oneM2M-Bootstrap` for the Enrolment Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyingExport {
    /// The exporter label.
    pub label: String,
    /// The context value; `None` for RFC 5705's "no context" form.
    pub context: Option<Vec<u8>>,
    /// Octets to export (1..=255).
    pub len: usize,
}

/// Exported keying material: secret, zeroized on drop, never printed.
#[derive(Clone)]
pub struct Exported(Zeroizing<Vec<u8>>);

impl Exported {
    /// Wrap octets obtained elsewhere (a stored record, a test).
    pub fn from_secret(bytes: Zeroizing<Vec<u8>>) -> Self {
        Exported(bytes)
    }

    /// The octets.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exported(<{} octets redacted>)", self.0.len())
    }
}

fn export_len_ok(e: &KeyingExport) -> Result<(), TlsSetupError> {
    if e.len == 0 || e.len > 255 || e.label.is_empty() {
        return Err(TlsSetupError::Invalid(
            "keying export: a label and 1..=255 octets".into(),
        ));
    }
    Ok(())
}

fn openssl_export(ssl: &openssl::ssl::SslRef, e: Option<&KeyingExport>) -> Option<Exported> {
    let e = e?;
    let mut out = Zeroizing::new(vec![0u8; e.len]);
    ssl.export_keying_material(&mut out, &e.label, e.context.as_deref())
        .ok()
        .map(|_| Exported(out))
}

impl TlsInfo {
    /// The peer certificate (DER) when one was sent and it chains to the trust anchors.
    pub fn trusted_peer_certificate(&self) -> Option<&[u8]> {
        match (&self.peer_cert_error, self.peer_chain.first()) {
            (None, Some(c)) => Some(c),
            _ => None,
        }
    }
}

/// What a handshake has settled when the PSK is asked for: a key that
/// depends on the cipher suite (GBA's NAF_Id names it, TS 33.220 Annex H)
/// needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PskContext {
    /// The version being negotiated, when known (TLS 1.2 on both sides; TLS
    /// 1.3 on the server; a TLS 1.3 client asks before it knows).
    pub version: Option<TlsVersion>,
    /// The cipher suite (IANA number), when OpenSSL reports it (it does not
    /// while a TLS 1.2 PSK callback runs: callers that need it pin the suite,
    /// see [`PskKey::Derived`]).
    pub cipher_suite: Option<u16>,
}

impl PskContext {
    fn of(ssl: &openssl::ssl::SslRef) -> Self {
        let version = match ssl.version2() {
            Some(openssl::ssl::SslVersion::TLS1_3) => Some(TlsVersion::Tls13),
            Some(openssl::ssl::SslVersion::TLS1_2) => Some(TlsVersion::Tls12),
            _ => None,
        };
        PskContext {
            version,
            cipher_suite: match version {
                Some(TlsVersion::Tls12) => ssl.current_cipher().map(|c| u16::from_be_bytes(c.protocol_id())),
                _ => None,
            },
        }
    }
}

/// Pre-shared keys by identity, for the OpenSSL listener's PSK callback.
pub trait PskStore: Send + Sync {
    /// The key for `identity` in this handshake, or `None` to refuse it.
    fn psk(&self, identity: &str, ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>>;
}

/// A client's pre-shared key: fixed (oneM2M Kpm), or computed once the
/// handshake has settled what it depends on (GBA's Ks_NAF).
#[derive(Clone)]
pub enum PskKey {
    /// The same key whatever is negotiated.
    Fixed(Zeroizing<Vec<u8>>),
    /// Computed per handshake; `None` abandons it.
    Derived {
        /// Offer only these TLS 1.2 suites (OpenSSL cipher-list syntax), for a
        /// key that depends on the suite, which OpenSSL does not tell the callback.
        tls12_ciphers: Option<String>,
        /// The key for this handshake.
        key: PskFn,
    },
}

/// Computes a pre-shared key for one handshake; `None` abandons it.
pub type PskFn = Arc<dyn Fn(&PskContext) -> Option<Zeroizing<Vec<u8>>> + Send + Sync>;

impl PskKey {
    fn key(&self, ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            PskKey::Fixed(k) => Some(k.clone()),
            PskKey::Derived { key, .. } => key(ctx),
        }
    }
}

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

/// Errors setting a listener up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(String),
    /// OpenSSL refused the configuration.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// Something else is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Accepts TLS connections with one of the two stacks.
#[derive(Clone)]
pub enum Acceptor {
    /// rustls.
    Rustls(
        tokio_rustls::TlsAcceptor,
        Arc<dyn rustls::server::danger::ClientCertVerifier>,
        Option<KeyingExport>,
    ),
    /// OpenSSL.
    OpenSsl(Arc<openssl::ssl::SslContext>, Option<KeyingExport>),
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Acceptor({})", self.backend())
    }
}

/// A TLS connection from either stack (`R`: rustls's, `O`: OpenSSL's).
pub enum Stream<R, O> {
    /// rustls.
    Rustls(Box<R>),
    /// OpenSSL.
    OpenSsl(Box<O>),
}

/// A connection a listener accepted.
pub type ServerStream = Stream<tokio_rustls::server::TlsStream<TcpStream>, tokio_openssl::SslStream<TcpStream>>;

/// A connection a [`Connector`] made.
pub type ClientStream = Stream<tokio_rustls::client::TlsStream<TcpStream>, tokio_openssl::SslStream<TcpStream>>;

impl<R: AsyncRead + Unpin, O: AsyncRead + Unpin> AsyncRead for Stream<R, O> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<R: AsyncWrite + Unpin, O: AsyncWrite + Unpin> AsyncWrite for Stream<R, O> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

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

fn versions(cfg: &ServerTlsConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    version_range(cfg.min_version, cfg.max_version)
}

fn version_range(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let mut v = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        v.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err(TlsSetupError::Invalid("no TLS version between min and max".into()));
    }
    Ok(v)
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
            .with_protocol_versions(&versions(cfg)?)
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

    /// An OpenSSL listener; with `psk`, certificate-less handshakes by
    /// pre-shared key (TLS 1.2 PSK suites, and TLS 1.3 PSK with (EC)DHE).
    pub fn openssl(cfg: &ServerTlsConfig, psk: Option<Arc<dyn PskStore>>) -> Result<Self, TlsSetupError> {
        use openssl::ssl::{SslContext, SslMethod, SslOptions, SslVerifyMode, SslVersion};
        use openssl::x509::store::X509StoreBuilder;
        use openssl::x509::X509;
        let mut b = SslContext::builder(SslMethod::tls_server())?;
        let v = |t: TlsVersion| match t {
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        };
        b.set_min_proto_version(Some(v(cfg.min_version)))?;
        b.set_max_proto_version(Some(v(cfg.max_version)))?;
        // No tickets or resumption: every connection does a full handshake, so
        // tls-unique is always the client's Finished message.
        b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION | SslOptions::CIPHER_SERVER_PREFERENCE);
        b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        // Needed with client certificates whenever a client offers a session (TLS 1.3 PSK).
        b.set_session_id_context(b"enrolkit-est")?;
        let mut ciphers = String::from("ECDHE+AESGCM:ECDHE+CHACHA20");
        if psk.is_some() {
            ciphers.push_str(":ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256");
            ciphers
                .push_str(":PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305:PSK-AES128-CBC-SHA256");
        }
        b.set_cipher_list(&ciphers)?;
        if psk.is_some() {
            // An external PSK from the callback is bound to SHA-256: offering
            // only SHA-256 suites lets TLS 1.3 PSK clients that also offer
            // AES-256 (OpenSSL's default) use it instead of falling back.
            b.set_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")?;
        }
        let key = openssl::pkey::PKey::private_key_from_pkcs8(&cfg.key_pkcs8)?;
        b.set_private_key(&key)?;
        let (leaf, rest) = cfg
            .chain
            .split_first()
            .ok_or_else(|| TlsSetupError::Invalid("empty server certificate chain".into()))?;
        let leaf = X509::from_der(leaf)?;
        b.set_certificate(&leaf)?;
        for c in rest {
            b.add_extra_chain_cert(X509::from_der(c)?)?;
        }
        b.check_private_key()?;
        let mut store = X509StoreBuilder::new()?;
        for ta in &cfg.client_trust_anchors {
            store.add_cert(X509::from_der(ta)?)?;
        }
        b.set_cert_store(store.build());
        // Ask for a certificate but let the handshake finish whatever the
        // verdict; verify_result() says it afterwards.
        b.set_verify_callback(SslVerifyMode::PEER, |_ok, _ctx| true);
        if let Some(store) = psk {
            let index = psk_identity_index()?;
            b.set_psk_server_callback(move |ssl, identity, out| {
                let Some(id) = identity.and_then(|i| std::str::from_utf8(i).ok()) else {
                    return Ok(0);
                };
                match store.psk(id, &PskContext::of(ssl)) {
                    Some(k) if !k.is_empty() && k.len() <= out.len() => match out.get_mut(..k.len()) {
                        Some(dst) => {
                            dst.copy_from_slice(&k);
                            // Kept on the connection (only for a known identity: a
                            // refused PSK lets TLS 1.3 fall back to a full handshake):
                            // OpenSSL does not report the identity of a TLS 1.3 PSK
                            // handshake made through this callback.
                            ssl.set_ex_data(index, id.to_owned());
                            Ok(k.len())
                        }
                        None => Ok(0),
                    },
                    _ => Ok(0),
                }
            });
        }
        if let Some(e) = &cfg.keying_export {
            export_len_ok(e)?;
        }
        Ok(Acceptor::OpenSsl(Arc::new(b.build()), cfg.keying_export.clone()))
    }

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
                    let s = acceptor.accept(tcp).await?;
                    let info = rustls_info(s.get_ref().1, verifier.as_ref(), export.as_ref());
                    Ok((ServerStream::Rustls(Box::new(s)), info))
                }
                Acceptor::OpenSsl(ctx, export) => {
                    let ssl = openssl::ssl::Ssl::new(ctx).map_err(io::Error::other)?;
                    let mut s = tokio_openssl::SslStream::new(ssl, tcp).map_err(io::Error::other)?;
                    Pin::new(&mut s).accept().await.map_err(io::Error::other)?;
                    let info = openssl_info(s.ssl(), true, export.as_ref());
                    Ok((ServerStream::OpenSsl(Box::new(s)), info))
                }
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}

/// What either side of a rustls connection established: the version, the
/// peer's chain (DER) and the channel binding. rustls exposes no Finished
/// messages, so TLS 1.2 gets no binding here.
fn rustls_common<D>(conn: &rustls::ConnectionCommon<D>) -> (TlsVersion, Vec<Vec<u8>>, Option<ChannelBinding>) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        _ => TlsVersion::Tls12,
    };
    let chain = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
        .unwrap_or_default();
    let binding = match version {
        TlsVersion::Tls13 => {
            let mut out = vec![0u8; enrolkit_pkix::binding::TLS_EXPORTER_LEN];
            conn.export_keying_material(&mut out, enrolkit_pkix::binding::TLS_EXPORTER_LABEL.as_bytes(), None)
                .is_ok()
                .then_some(ChannelBinding::TlsExporter(out))
        }
        TlsVersion::Tls12 => None,
    };
    (version, chain, binding)
}

fn rustls_info(
    conn: &rustls::ServerConnection,
    verifier: &dyn rustls::server::danger::ClientCertVerifier,
    export: Option<&KeyingExport>,
) -> TlsInfo {
    let (version, chain, channel_binding) = rustls_common(conn);
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
        exported: export.and_then(|e| {
            let mut out = Zeroizing::new(vec![0u8; e.len]);
            let ok = conn
                .export_keying_material(&mut *out, e.label.as_bytes(), e.context.as_deref())
                .is_ok();
            ok.then_some(Exported(out))
        }),
    }
}

/// What an OpenSSL handshake established; `server` says which side `ssl` is.
pub fn openssl_info(ssl: &openssl::ssl::SslRef, server: bool, export: Option<&KeyingExport>) -> TlsInfo {
    let version = match ssl.version2() {
        Some(openssl::ssl::SslVersion::TLS1_3) => TlsVersion::Tls13,
        _ => TlsVersion::Tls12,
    };
    let mut chain = Vec::new();
    if let Some(leaf) = ssl.peer_certificate() {
        chain.push(leaf.to_der().unwrap_or_default());
        // On the server side the peer chain excludes the leaf; on the client side it includes it.
        if let Some(stack) = ssl.peer_cert_chain() {
            for c in stack.iter().skip(usize::from(!server)) {
                chain.push(c.to_der().unwrap_or_default());
            }
        }
    }
    let peer_cert_error = if chain.is_empty() {
        None
    } else {
        let r = ssl.verify_result();
        (r != openssl::x509::X509VerifyResult::OK).then(|| r.error_string().to_owned())
    };
    // A PSK identity counts only when the handshake used the PSK: the
    // callback records the identity as soon as it hands OpenSSL a key, but a
    // TLS 1.3 server still drops that PSK (and goes on with a certificate
    // handshake) when the suite's hash differs or the binder is wrong.
    let psk_identity = psk_identity_index()
        .ok()
        .and_then(|i| ssl.ex_data(i).cloned())
        .filter(|_| chain.is_empty() && psk_used(ssl, version));
    let cipher_suite = ssl.current_cipher().map(|c| u16::from_be_bytes(c.protocol_id()));
    TlsInfo {
        backend: Backend::OpenSsl,
        version,
        peer_chain: chain,
        peer_cert_error,
        psk_identity,
        cipher_suite,
        channel_binding: channel_binding(ssl, version, server),
        exported: openssl_export(ssl, export),
    }
}

/// Whether the finished handshake authenticated with a pre-shared key: a
/// TLS 1.3 handshake that accepted the PSK counts as resumed; a TLS 1.2 one
/// negotiated a PSK suite.
pub fn psk_used(ssl: &openssl::ssl::SslRef, version: TlsVersion) -> bool {
    match version {
        TlsVersion::Tls13 => ssl.session_reused(),
        TlsVersion::Tls12 => ssl.current_cipher().is_some_and(|c| c.name().contains("PSK")),
    }
}

/// The RFC 7030 §3.5 channel binding of an OpenSSL connection: tls-unique
/// (RFC 5929: the first Finished message) with TLS 1.2, tls-exporter
/// (RFC 9266) with TLS 1.3.
pub fn channel_binding(ssl: &openssl::ssl::SslRef, version: TlsVersion, server: bool) -> Option<ChannelBinding> {
    match version {
        TlsVersion::Tls13 => {
            let mut out = vec![0u8; enrolkit_pkix::binding::TLS_EXPORTER_LEN];
            ssl.export_keying_material(&mut out, enrolkit_pkix::binding::TLS_EXPORTER_LABEL, None)
                .is_ok()
                .then_some(ChannelBinding::TlsExporter(out))
        }
        TlsVersion::Tls12 => {
            // The first Finished: the client's in a full handshake, the
            // server's in an abbreviated (resumed) one.
            let client_first = !ssl.session_reused();
            let mut buf = [0u8; 64];
            let n = if client_first == server {
                ssl.peer_finished(&mut buf)
            } else {
                ssl.finished(&mut buf)
            };
            buf.get(..n)
                .filter(|b| !b.is_empty())
                .map(|b| ChannelBinding::TlsUnique(b.to_vec()))
        }
    }
}

/// The ex_data slot where the PSK callback leaves the identity it was asked for.
fn psk_identity_index() -> Result<openssl::ex_data::Index<openssl::ssl::Ssl, String>, openssl::error::ErrorStack> {
    static INDEX: std::sync::OnceLock<openssl::ex_data::Index<openssl::ssl::Ssl, String>> = std::sync::OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    let i = openssl::ssl::Ssl::new_ex_index::<String>()?;
    Ok(*INDEX.get_or_init(|| i))
}

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

#[derive(Clone)]
enum ClientStack {
    OpenSsl {
        ctx: Arc<openssl::ssl::SslContext>,
        verify: bool,
        psk: bool,
    },
    Rustls(tokio_rustls::TlsConnector),
}

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
fn rustls_connector(
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
    let versions = version_range(cfg.min_version, max)?;
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

/// What a rustls client handshake established.
fn rustls_client_info(conn: &rustls::ClientConnection, export: Option<&KeyingExport>) -> TlsInfo {
    let (version, peer_chain, channel_binding) = rustls_common(conn);
    TlsInfo {
        backend: Backend::Rustls,
        version,
        peer_chain,
        peer_cert_error: None,
        psk_identity: None,
        cipher_suite: conn.negotiated_cipher_suite().map(|c| u16::from(c.suite())),
        channel_binding,
        exported: export.and_then(|e| {
            let mut out = Zeroizing::new(vec![0u8; e.len]);
            let ok = conn
                .export_keying_material(&mut *out, e.label.as_bytes(), e.context.as_deref())
                .is_ok();
            ok.then_some(Exported(out))
        }),
    }
}

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
        use openssl::ssl::{SslContext, SslMethod, SslOptions, SslVersion};
        if let Some((chain, ClientKey::Signer(key))) = &cfg.certificate {
            if let Some(e) = &cfg.keying_export {
                export_len_ok(e)?;
            }
            return Ok(Connector {
                stack: ClientStack::Rustls(rustls_connector(cfg, chain, key)?),
                export: cfg.keying_export.clone(),
            });
        }
        use openssl::x509::store::X509StoreBuilder;
        use openssl::x509::X509;
        let mut b = SslContext::builder(SslMethod::tls_client())?;
        let v = |t: TlsVersion| match t {
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        };
        b.set_min_proto_version(Some(v(cfg.min_version)))?;
        b.set_max_proto_version(Some(v(cfg.max_version)))?;
        b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
        b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        let mut store = X509StoreBuilder::new()?;
        let verify = match &cfg.trust {
            ServerTrust::Anchors(tas) => {
                if tas.is_empty() && cfg.psk.is_none() {
                    return Err(TlsSetupError::Invalid("no trust anchors for the server".into()));
                }
                for ta in tas {
                    store.add_cert(X509::from_der(ta)?)?;
                }
                cfg.psk.is_none()
            }
            ServerTrust::Bootstrap => false,
        };
        b.set_cert_store(store.build());
        if let Some((chain, key)) = &cfg.certificate {
            let (leaf, rest) = chain
                .split_first()
                .ok_or_else(|| TlsSetupError::Invalid("empty client certificate chain".into()))?;
            let leaf = X509::from_der(leaf)?;
            b.set_certificate(&leaf)?;
            for c in rest {
                b.add_extra_chain_cert(X509::from_der(c)?)?;
            }
            let ClientKey::Pkcs8(key) = key else {
                return Err(TlsSetupError::Invalid("unreachable: external keys use rustls".into()));
            };
            let key = openssl::pkey::PKey::private_key_from_pkcs8(key)?;
            b.set_private_key(&key)?;
            b.check_private_key()?;
        }
        if let Some((identity, key)) = &cfg.psk {
            let fixed_len_ok = match key {
                PskKey::Fixed(k) => !k.is_empty() && k.len() <= 64,
                PskKey::Derived { .. } => true,
            };
            if identity.is_empty() || identity.len() > 128 || !fixed_len_ok {
                return Err(TlsSetupError::Invalid(
                    "PSK identity must be 1..=128 bytes and the key 1..=64 bytes".into(),
                ));
            }
            // Certificate-less: PSK suites only, so the server cannot fall back to a certificate handshake.
            match key {
                PskKey::Derived {
                    tls12_ciphers: Some(c), ..
                } => b.set_cipher_list(c)?,
                _ => b.set_cipher_list("ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305:PSK-AES128-CBC-SHA256")?,
            }
            b.set_ciphersuites("TLS_AES_128_GCM_SHA256")?;
            let identity = identity.clone().into_bytes();
            let key = key.clone();
            b.set_psk_client_callback(move |ssl, _hint, id_out, key_out| {
                let Some(key) = key.key(&PskContext::of(ssl)).filter(|k| !k.is_empty() && k.len() <= 64) else {
                    return Ok(0);
                };
                let (Some(id_dst), Some(key_dst)) = (id_out.get_mut(..=identity.len()), key_out.get_mut(..key.len()))
                else {
                    return Ok(0);
                };
                let (id_body, nul) = id_dst.split_at_mut(identity.len());
                id_body.copy_from_slice(&identity);
                nul.fill(0);
                key_dst.copy_from_slice(&key);
                Ok(key.len())
            });
        }
        if let Some(e) = &cfg.keying_export {
            export_len_ok(e)?;
        }
        Ok(Connector {
            stack: ClientStack::OpenSsl {
                ctx: Arc::new(b.build()),
                verify,
                psk: cfg.psk.is_some(),
            },
            export: cfg.keying_export.clone(),
        })
    }

    /// Handshake with `host` over `tcp`; the server name is verified unless bootstrapping or PSK.
    pub async fn connect(&self, host: &str, tcp: TcpStream) -> io::Result<(ClientStream, TlsInfo)> {
        let (ctx, verify, psk) = match &self.stack {
            ClientStack::OpenSsl { ctx, verify, psk } => (ctx, *verify, *psk),
            ClientStack::Rustls(connector) => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                let name = match bare.parse::<std::net::IpAddr>() {
                    Ok(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
                    Err(_) => rustls_pki_types::ServerName::try_from(bare.to_owned())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                };
                let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
                let info = rustls_client_info(s.get_ref().1, self.export.as_ref());
                return Ok((ClientStream::Rustls(Box::new(s)), info));
            }
        };
        use openssl::ssl::SslVerifyMode;
        let mut ssl = openssl::ssl::Ssl::new(ctx).map_err(io::Error::other)?;
        if verify {
            ssl.set_verify(SslVerifyMode::PEER);
            match host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
            {
                Ok(ip) => ssl.param_mut().set_ip(ip).map_err(io::Error::other)?,
                Err(_) => {
                    ssl.set_hostname(host).map_err(io::Error::other)?;
                    ssl.param_mut().set_host(host).map_err(io::Error::other)?;
                }
            }
        } else {
            ssl.set_verify(SslVerifyMode::NONE);
            if host.parse::<std::net::IpAddr>().is_err() {
                ssl.set_hostname(host).map_err(io::Error::other)?;
            }
        }
        let mut s = tokio_openssl::SslStream::new(ssl, tcp).map_err(io::Error::other)?;
        let fut = Pin::new(&mut s).connect();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let detail = match s.ssl().verify_result() {
                    openssl::x509::X509VerifyResult::OK => e.to_string(),
                    r => format!("server certificate: {}", r.error_string()),
                };
                return Err(io::Error::other(detail));
            }
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
        let info = openssl_info(s.ssl(), false, self.export.as_ref());
        // The PSK is what authenticates the server here (its certificate is
        // not checked): a TLS 1.3 server that ignored it and sent a
        // certificate instead is not the one that holds the key.
        if psk && !psk_used(s.ssl(), info.version) {
            return Err(io::Error::other(
                "the server did not authenticate with the pre-shared key",
            ));
        }
        Ok((ClientStream::OpenSsl(Box::new(s)), info))
    }
}

/// Whether `e`, or an error it was caused by, comes from the TLS protocol
/// itself (an alert from the peer, a failed verification or decryption, in
/// either stack) rather than from the transport: a connection that merely
/// closed or was reset is not one. A client uses it to tell a server that
/// refused the session from one that may have taken the request.
pub fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() || err.is::<openssl::ssl::Error>() || err.is::<openssl::error::ErrorStack>() {
            return true;
        }
        // An io::Error's source() skips the error it wraps: look at that one too.
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if is_tls_failure(inner) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Check, after the fact, that `chain` (DER, end entity first) chains to one
/// of `anchors` and (when given) names `host` — what a bootstrapping client
/// does once `/cacerts` has given it the trust anchors (RFC 7030 §4.1.1).
pub fn verify_chain(chain: &[Vec<u8>], anchors: &[Vec<u8>], host: Option<&str>) -> Result<(), String> {
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509};
    let inner = || -> Result<Result<(), String>, openssl::error::ErrorStack> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Ok(Err("the server sent no certificate".into()));
        };
        let mut store = X509StoreBuilder::new()?;
        for a in anchors {
            store.add_cert(X509::from_der(a)?)?;
        }
        if let Some(h) = host {
            let mut p = openssl::x509::verify::X509VerifyParam::new()?;
            match h.parse::<std::net::IpAddr>() {
                Ok(ip) => p.set_ip(ip)?,
                Err(_) => p.set_host(h)?,
            }
            store.set_param(&p)?;
        }
        let store = store.build();
        let leaf = X509::from_der(leaf)?;
        let mut untrusted = Stack::new()?;
        for c in rest {
            untrusted.push(X509::from_der(c)?)?;
        }
        let mut ctx = X509StoreContext::new()?;
        let ok = ctx.init(&store, &leaf, &untrusted, |c| {
            Ok(c.verify_cert()?
                .then_some(())
                .ok_or_else(|| c.error().error_string().to_owned()))
        })?;
        Ok(ok)
    };
    inner().map_err(|e| e.to_string())?
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection error")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn alerts_are_tls_failures_and_closed_connections_are_not() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        assert!(is_tls_failure(&alert));
        assert!(is_tls_failure(&Outer(alert)));
        let stack = openssl::error::ErrorStack::get();
        assert!(is_tls_failure(&Outer(io::Error::other(stack))));
        assert!(!is_tls_failure(&io::Error::from(io::ErrorKind::UnexpectedEof)));
        assert!(!is_tls_failure(&Outer(io::Error::from(io::ErrorKind::ConnectionReset))));
        assert!(!is_tls_failure(&Outer(io::Error::other(
            "closed before message completed"
        ))));
    }
}
