//! Certificate fingerprints: the SHA-256 of a certificate's DER encoding,
//! as lowercase hex.
//!
//! RFC 5280 has no fingerprint; this is the out-of-band check of a trust
//! anchor that RFC 7030 §4.1.1 and RFC 8894 §2.2 leave to the client
//! ("the client ... compares the fingerprint"). A pin names exactly one
//! certificate (its whole DER, not its key or name).

use der::Encode;
use x509_cert::Certificate;

/// Length in hex digits of a SHA-256 fingerprint.
pub const HEX_LEN: usize = 64;

/// Why a typed fingerprint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// A character that is neither a hex digit nor a separator.
    #[error("fingerprint {text:?}: {found:?} is not a hex digit")]
    NotHex {
        /// What was given.
        text: String,
        /// The first offending character.
        found: char,
    },
    /// Not 64 hex digits.
    #[error("fingerprint {text:?}: {digits} hex digits, a SHA-256 fingerprint has {HEX_LEN}")]
    Length {
        /// What was given.
        text: String,
        /// How many hex digits it held.
        digits: usize,
    },
}

/// SHA-256 fingerprint (lowercase hex) of DER bytes.
pub fn sha256_der(der_bytes: &[u8]) -> String {
    hex::encode(enrolkit_keys::DigestAlgorithm::Sha256.digest(der_bytes))
}

/// SHA-256 fingerprint (lowercase hex) of a certificate's DER encoding.
/// A certificate that cannot be encoded (not one that was decoded) has
/// the empty fingerprint, which matches no pin.
pub fn sha256(cert: &Certificate) -> String {
    cert.to_der().map(|d| sha256_der(&d)).unwrap_or_default()
}

/// A fingerprint as people write it (`AB:CD …`, spaces, either case),
/// reduced to lowercase hex digits. Lenient: anything that is not a hex
/// digit is dropped; use [`parse`] to refuse a mistyped pin.
pub fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A typed SHA-256 fingerprint, strictly: hex digits, optionally
/// separated by colons, spaces or dashes, 64 digits in all.
pub fn parse(s: &str) -> Result<String, FingerprintError> {
    if let Some(found) = s
        .chars()
        .find(|c| !(c.is_ascii_hexdigit() || matches!(c, ':' | ' ' | '-' | '\t')))
    {
        return Err(FingerprintError::NotHex { text: s.into(), found });
    }
    let n = normalise(s);
    if n.len() != HEX_LEN {
        return Err(FingerprintError::Length {
            text: s.into(),
            digits: n.len(),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_value() {
        assert_eq!(
            sha256_der(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_typed_pin_is_normalised_and_a_mistyped_one_refused() {
        let upper = "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55";
        assert_eq!(parse(upper).unwrap(), sha256_der(b""));
        assert_eq!(normalise("Ab:cD"), "abcd");
        assert!(matches!(
            parse("ab:cd"),
            Err(FingerprintError::Length { digits: 4, .. })
        ));
        assert!(matches!(
            parse(&format!("{}g", &sha256_der(b"")[1..])),
            Err(FingerprintError::NotHex { found: 'g', .. })
        ));
    }
}
