//! The implicit-rejection key of the responder's RSA key transport
//! (RFC 5652 §6.2.1 KeyTransRecipientInfo, which the EnvelopedData
//! module opens):
//!
//! ```text
//! KeyTransRecipientInfo ::= SEQUENCE {
//!   version CMSVersion,  -- always set to 0 or 2
//!   rid RecipientIdentifier,
//!   keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
//!   encryptedKey EncryptedKey }
//! ```

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Key for implicit rejection of bad RSA key transports.
///
/// When the RSA decryption of the content-encryption key fails (bad padding,
/// wrong length) we go on with a key derived from this secret and the
/// ciphertext, exactly as if decryption had succeeded. The content
/// decryption then fails the same way as with a wrong key, so the error does
/// not tell an attacker whether the padding was valid, and the selection
/// between real and synthetic key is constant time (Bleichenbacher/Marvin;
/// RFC 5246 §7.4.7.1 uses the same idea). What remains is the key
/// operation's own timing: aws-lc checks PKCS#1 v1.5 padding in constant
/// time but takes its error path on bad padding; implicit rejection inside
/// the key operation (raw RSA plus constant-time unpadding) would close that.
pub struct RejectionKey(Zeroizing<[u8; 32]>);

impl RejectionKey {
    /// From 32 secret random bytes (keep one per responder process).
    pub fn new(secret: [u8; 32]) -> Self {
        RejectionKey(Zeroizing::new(secret))
    }
    /// A fresh random key.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        RejectionKey(Zeroizing::new(k))
    }
    /// The key used instead of an undecryptable one: HMAC-SHA-256 of the
    /// encrypted key under this secret, repeated to `len` bytes.
    pub(crate) fn synthetic(&self, encrypted_key: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0[..]);
        let tag = aws_lc_rs::hmac::sign(&key, encrypted_key);
        Zeroizing::new(tag.as_ref().iter().copied().cycle().take(len).collect())
    }
}

impl std::fmt::Debug for RejectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RejectionKey(..)")
    }
}
