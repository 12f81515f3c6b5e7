//! Which public keys are certified: RSA of at least 2048 bits (and at most
//! 16384, so a request cannot make the CA work on an absurd modulus), ECDSA
//! on P-256 or P-384. Anything else is refused with the reason.

use super::decision::{Refusal, RefusalReason};

/// Smallest RSA modulus certified (NIST SP 800-131A: 2048 bits since 2014).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted.
pub const MAX_RSA_BITS: usize = 16384;

/// The key of a request, as policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA with this many modulus bits.
    Rsa(usize),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyType::Rsa(b) => write!(f, "RSA-{b}"),
            KeyType::EcP256 => f.write_str("EC P-256"),
            KeyType::EcP384 => f.write_str("EC P-384"),
        }
    }
}

/// The type of `spki`, or why it is not one we certify.
pub fn key_type(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<KeyType, Refusal> {
    use const_oid::db::rfc5912;
    let refuse = |m: String| Refusal::new(RefusalReason::KeyRefused, m);
    if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
        // Read the modulus without loading the key: aws-lc refuses to load
        // the small keys this check exists to name.
        let bits = spki
            .subject_public_key
            .as_bytes()
            .and_then(enrolkit_pkix::pkcs10::rsa_modulus_bits)
            .ok_or_else(|| refuse("the RSA public key does not parse".into()))?;
        let bits = usize::try_from(bits).unwrap_or(usize::MAX);
        return Ok(KeyType::Rsa(bits));
    }
    if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve: Option<const_oid::ObjectIdentifier> =
            spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as().ok());
        return match curve {
            Some(c) if c == rfc5912::SECP_256_R_1 => Ok(KeyType::EcP256),
            Some(c) if c == rfc5912::SECP_384_R_1 => Ok(KeyType::EcP384),
            Some(c) => Err(refuse(format!("EC curve {c} is not certified (P-256 or P-384)"))),
            None => Err(refuse("EC key without a named curve".into())),
        };
    }
    Err(refuse(format!(
        "public key algorithm {} is not certified (RSA or ECDSA P-256/P-384)",
        spki.algorithm.oid
    )))
}

/// Refuse keys policy does not certify; returns the type for the record.
pub fn check_key(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<KeyType, Refusal> {
    let t = key_type(spki)?;
    if let KeyType::Rsa(bits) = t {
        if bits < MIN_RSA_BITS {
            return Err(Refusal::new(
                RefusalReason::KeyRefused,
                format!("RSA key of {bits} bits: at least {MIN_RSA_BITS} are required"),
            ));
        }
        if bits > MAX_RSA_BITS {
            return Err(Refusal::new(
                RefusalReason::KeyRefused,
                format!("RSA key of {bits} bits: at most {MAX_RSA_BITS} are accepted"),
            ));
        }
    }
    Ok(t)
}
