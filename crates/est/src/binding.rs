//! Channel bindings that link a CSR to the TLS session it arrives over
//! (RFC 7030 §3.5): the client puts the base64 of the binding into the
//! CSR's challengePassword, the server compares it with its own side of the
//! same session.
//!
//! TLS 1.2 has `tls-unique` (RFC 5929: the first Finished message), which RFC
//! 7030 names. TLS 1.3 has no tls-unique; RFC 9266 defines `tls-exporter`
//! instead: 32 bytes exported with label [`TLS_EXPORTER_LABEL`] and an empty
//! context. The caller extracts either from its TLS library; this module
//! only encodes and compares.

use crate::error::{EstError, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Exporter label of the tls-exporter channel binding (RFC 9266 §2).
pub const TLS_EXPORTER_LABEL: &str = "EXPORTER-Channel-Binding";
/// Length of the tls-exporter channel binding in bytes (RFC 9266 §2).
pub const TLS_EXPORTER_LEN: usize = 32;
/// Longest binding accepted (a tls-unique Finished is 12 bytes; SSLv3's 36).
const MAX_BINDING: usize = 64;

/// A TLS channel binding value.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// tls-unique (RFC 5929 §3): the first Finished message of a TLS 1.2 handshake.
    TlsUnique(Vec<u8>),
    /// tls-exporter (RFC 9266): 32 bytes of keying material exported under
    /// [`TLS_EXPORTER_LABEL`] with no context, for TLS 1.3.
    TlsExporter(Vec<u8>),
}

impl ChannelBinding {
    /// A tls-exporter binding, checking its length.
    pub fn tls_exporter(bytes: &[u8]) -> Result<ChannelBinding> {
        if bytes.len() != TLS_EXPORTER_LEN {
            return Err(EstError::malformed(
                "tls-exporter channel binding",
                format!("{} bytes, expected {TLS_EXPORTER_LEN}", bytes.len()),
            ));
        }
        Ok(ChannelBinding::TlsExporter(bytes.to_vec()))
    }

    /// A tls-unique binding, checking its length.
    pub fn tls_unique(bytes: &[u8]) -> Result<ChannelBinding> {
        if bytes.is_empty() || bytes.len() > MAX_BINDING {
            return Err(EstError::malformed(
                "tls-unique channel binding",
                format!("{} bytes", bytes.len()),
            ));
        }
        Ok(ChannelBinding::TlsUnique(bytes.to_vec()))
    }

    /// The binding bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ChannelBinding::TlsUnique(b) | ChannelBinding::TlsExporter(b) => b,
        }
    }

    /// The RFC 5056 name of the binding type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelBinding::TlsUnique(_) => "tls-unique",
            ChannelBinding::TlsExporter(_) => "tls-exporter",
        }
    }

    /// The challengePassword value carrying this binding: base64 (RFC 4648)
    /// without line breaks (RFC 7030 §3.5).
    pub fn challenge_password(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::body::encode_flat(self.as_bytes()))
    }

    /// Whether `challenge_password` carries this binding. Whitespace around
    /// it and missing `=` padding are tolerated; the bytes are compared in
    /// constant time.
    pub fn matches(&self, challenge_password: &str) -> bool {
        let Ok(received) = crate::body::decode_base64(challenge_password.trim().as_bytes(), MAX_BINDING) else {
            return false;
        };
        let received = Zeroizing::new(received);
        let expected = self.as_bytes();
        received.len() == expected.len() && bool::from(received.as_slice().ct_eq(expected))
    }
}

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.as_bytes();
        let prefix: String = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
        write!(f, "{}({prefix}…, {} bytes)", self.type_name(), b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_and_match() {
        let b = ChannelBinding::tls_exporter(&[0xab; 32]).unwrap();
        let pw = b.challenge_password();
        assert_eq!(pw.len(), 44);
        assert!(!pw.contains('\n'));
        assert!(b.matches(&pw));
        assert!(b.matches(&format!("  {}\r\n", pw.as_str())));
        assert!(b.matches(pw.trim_end_matches('=')));
        assert!(!b.matches(""));
        assert!(!b.matches("not base64!"));
        let other = ChannelBinding::TlsExporter(vec![0xab; 31]);
        assert!(!other.matches(&pw));
        let u = ChannelBinding::tls_unique(&[1; 12]).unwrap();
        assert_eq!(u.challenge_password().as_str(), "AQEBAQEBAQEBAQEB");
        assert!(ChannelBinding::tls_exporter(&[0; 12]).is_err());
        assert_eq!(format!("{u:?}"), "tls-unique(01010101…, 12 bytes)");
    }
}
