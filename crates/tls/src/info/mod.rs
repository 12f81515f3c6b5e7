//! What a handshake established ([`TlsInfo`]): the stack, the negotiated
//! version, the peer's chain, the PSK identity, the channel binding (RFC
//! 7030 §3.5) and exported keying material (RFC 5705, RFC 8446 §7.5).
//! [`rustls`] and [`openssl`] read it out of each stack's connection.

pub mod openssl;
pub mod rustls;

use crate::error::TlsSetupError;
use enrolkit_pkix::binding::ChannelBinding;
use zeroize::Zeroizing;

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

impl TlsInfo {
    /// The peer certificate (DER) when one was sent and it chains to the trust anchors.
    pub fn trusted_peer_certificate(&self) -> Option<&[u8]> {
        match (&self.peer_cert_error, self.peer_chain.first()) {
            (None, Some(c)) => Some(c),
            _ => None,
        }
    }
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

/// Whether a keying export asks for something both stacks can produce.
pub(crate) fn export_len_ok(e: &KeyingExport) -> Result<(), TlsSetupError> {
    if e.len == 0 || e.len > 255 || e.label.is_empty() {
        return Err(TlsSetupError::Invalid(
            "keying export: a label and 1..=255 octets".into(),
        ));
    }
    Ok(())
}
