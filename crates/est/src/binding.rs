//! Channel bindings that link a CSR to the TLS session it arrives over
//! (RFC 7030 §3.5): the client puts the base64 of the binding into the
//! CSR's challengePassword, the server compares it with its own side of the
//! same session.
//!
//! TLS 1.2 has `tls-unique` (RFC 5929: the first Finished message), which RFC
//! 7030 names. TLS 1.3 has no tls-unique; RFC 9266 defines `tls-exporter`
//! instead: 32 bytes exported with label [`TLS_EXPORTER_LABEL`] and an empty
//! context. The values are `enrolkit-pkix`'s ([`ChannelBinding`]); this
//! module puts them in a challengePassword and compares.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use enrolkit_pkix::binding::MAX_BINDING;
pub use enrolkit_pkix::binding::{ChannelBinding, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};

/// A channel binding as RFC 7030 §3.5 carries it in a CSR's challengePassword.
pub trait LinkedPassword {
    /// The challengePassword value carrying this binding: base64 (RFC 4648)
    /// without line breaks (RFC 7030 §3.5).
    fn challenge_password(&self) -> Zeroizing<String>;
    /// Whether `challenge_password` carries this binding. Whitespace around
    /// it and missing `=` padding are tolerated; the bytes are compared in
    /// constant time.
    fn matches(&self, challenge_password: &str) -> bool;
}

impl LinkedPassword for ChannelBinding {
    fn challenge_password(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::body::encode_flat(self.as_bytes()))
    }

    fn matches(&self, challenge_password: &str) -> bool {
        let Ok(received) = crate::body::decode_base64(challenge_password.trim().as_bytes(), MAX_BINDING) else {
            return false;
        };
        let received = Zeroizing::new(received);
        let expected = self.as_bytes();
        received.len() == expected.len() && bool::from(received.as_slice().ct_eq(expected))
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
