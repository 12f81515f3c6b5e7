//! External pre-shared keys: certificate-less EST (RFC 7030 §3.3.3), oneM2M
//! Kpm and Kre, GBA's Ks_NAF (TS 33.220 Annex H). OpenSSL only: rustls has
//! no external PSK.

use crate::info::TlsVersion;
use std::sync::Arc;
use zeroize::Zeroizing;

/// What a handshake has settled when the PSK is asked for: a key that
/// depends on the cipher suite (GBA's NAF_Id names it, TS 33.220 Annex H)
/// needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PskContext {
    /// The version being negotiated, when known (TLS 1.2 on both sides; TLS
    /// 1.3 on the server; a TLS 1.3 client asks before it knows).
    pub version: Option<TlsVersion>,
    /// The TLS 1.2 cipher suite (IANA number) the handshake negotiated: in
    /// a PSK callback it is pending, not current, and is read with
    /// `SSL_get_pending_cipher` (`ossl_ext`). `None` with TLS 1.3.
    pub cipher_suite: Option<u16>,
}

impl PskContext {
    /// What `ssl` has settled so far.
    pub(crate) fn of(ssl: &openssl::ssl::SslRef) -> Self {
        let version = match ssl.version2() {
            Some(openssl::ssl::SslVersion::TLS1_3) => Some(TlsVersion::Tls13),
            Some(openssl::ssl::SslVersion::TLS1_2) => Some(TlsVersion::Tls12),
            _ => None,
        };
        PskContext {
            version,
            cipher_suite: match version {
                Some(TlsVersion::Tls12) => crate::ossl_ext::negotiated_suite(ssl),
                _ => None,
            },
        }
    }
}

/// Pre-shared keys by identity, for the OpenSSL listener's PSK callback.
pub trait PskStore: Send + Sync {
    /// The key for `identity` in this handshake, or `None` to refuse it.
    fn psk(&self, identity: &str, ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>>;

    /// The TLS 1.2 PSK identity hint to send (ServerKeyExchange), if any;
    /// read once, when the listener is built.
    fn identity_hint(&self) -> Option<String> {
        None
    }
}

/// A client's pre-shared key: fixed (oneM2M Kpm), or computed once the
/// handshake has settled what it depends on (GBA's Ks_NAF).
#[derive(Clone)]
pub enum PskKey {
    /// The same key whatever is negotiated.
    Fixed(Zeroizing<Vec<u8>>),
    /// Computed per handshake; `None` abandons it.
    Derived {
        /// Offer only these TLS 1.2 suites (OpenSSL cipher-list syntax);
        /// `None` offers the usual PSK suites (the callback learns which one
        /// was negotiated from [`PskContext::cipher_suite`]).
        tls12_ciphers: Option<String>,
        /// The key for this handshake.
        key: PskFn,
    },
}

/// Computes a pre-shared key for one handshake; `None` abandons it.
pub type PskFn = Arc<dyn Fn(&PskContext) -> Option<Zeroizing<Vec<u8>>> + Send + Sync>;

impl PskKey {
    /// The key for this handshake; `None` abandons it.
    pub(crate) fn key(&self, ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            PskKey::Fixed(k) => Some(k.clone()),
            PskKey::Derived { key, .. } => key(ctx),
        }
    }
}
