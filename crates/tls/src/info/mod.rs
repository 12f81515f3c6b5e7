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
    /// Whether the session's keys came from an ephemeral (EC)DHE exchange,
    /// so that learning a long-term secret later (a PSK, a server key) does
    /// not reveal them: TLS 1.3 (our listeners never accept TLS 1.3's
    /// `psk_ke` mode: OpenSSL needs `SSL_OP_ALLOW_NO_DHE_KEX` for it, which
    /// is never set, and rustls has no external PSK), or TLS 1.2 with an
    /// (EC)DHE suite ([`tls12_suite_is_ephemeral`]). A TLS 1.2 session whose
    /// suite the stack did not report is not.
    pub fn forward_secret(&self) -> bool {
        match self.version {
            TlsVersion::Tls13 => true,
            TlsVersion::Tls12 => self.cipher_suite.is_some_and(tls12_suite_is_ephemeral),
        }
    }

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

/// Whether the TLS 1.2 cipher suite `suite` (IANA number) has an ephemeral
/// (EC)DHE key exchange: the DHE, ECDHE, DHE_PSK and ECDHE_PSK suites (and
/// the anonymous DH_anon / ECDH_anon ones, ephemeral too, which no
/// listener of ours enables) of the IANA TLS Cipher Suites registry. Plain
/// `PSK_*`, `RSA_PSK_*`, static RSA and static (EC)DH suites are not;
/// neither is any suite not listed (fail closed). The list is checked
/// against OpenSSL's own table (`tests/suites.rs`).
pub fn tls12_suite_is_ephemeral(suite: u16) -> bool {
    matches!(
        suite,
        0x002D | 0x0032..=0x0034 | 0x0038..=0x003A | 0x0040 | 0x0044..=0x0046 | 0x0067
            | 0x006A..=0x006D | 0x0087..=0x0089 | 0x008E..=0x0091 | 0x009E..=0x009F | 0x00A2..=0x00A3 | 0x00A6..=0x00A7
            | 0x00AA..=0x00AB | 0x00B2..=0x00B5 | 0x00BD..=0x00BF | 0x00C3..=0x00C5 | 0xC006..=0xC00A
            | 0xC010..=0xC019 | 0xC023..=0xC024 | 0xC027..=0xC028 | 0xC02B..=0xC02C
            | 0xC02F..=0xC030 | 0xC033..=0xC03B | 0xC052..=0xC053 | 0xC056..=0xC057 | 0xC05C..=0xC05D | 0xC060..=0xC061
            | 0xC06C..=0xC06D | 0xC072..=0xC073 | 0xC076..=0xC077 | 0xC096..=0xC097 | 0xC09A..=0xC09B | 0xC09E..=0xC09F
            | 0xC0A2..=0xC0A3 | 0xC0A6..=0xC0A7 | 0xC0AA..=0xC0AF | 0xCCA8..=0xCCAA | 0xCCAC..=0xCCAD | 0xD001..=0xD003
            | 0xD005
    )
}
