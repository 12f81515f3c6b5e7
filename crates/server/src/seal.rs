//! Secrets at rest: AES-256-GCM under a key the operator supplies (or one
//! [derived](derive_key) from a secret the server holds), with the
//! record's clear columns as associated data, so a key copied to another row
//! or a row whose expiry or authorisations were edited no longer opens.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

/// Seals and opens secrets under the operator's storage key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

/// Sealing failed, or a sealed value did not open (wrong key, or the record was altered).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SealError(&'static str);

impl Sealer {
    /// A sealer with this 256-bit key.
    pub fn new(key: &[u8; 32]) -> Result<Self, SealError> {
        let k = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SealError("bad storage key"))?;
        Ok(Sealer {
            key: LessSafeKey::new(k),
        })
    }

    /// `nonce || ciphertext || tag` of `secret`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let mut buf = Zeroizing::new(secret.to_vec());
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut *buf)
            .map_err(|_| SealError("sealing failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// The secret sealed in `blob`, if it was sealed under this key with this `aad`.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let bad = SealError("sealed record does not open: wrong storage key, or the record was altered");
        let (nonce, ct) = blob
            .split_at_checked(NONCE_LEN)
            .ok_or(SealError("sealed record too short"))?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError("sealed record too short"))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let n = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| bad)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

/// A 256-bit key for one purpose, derived from a secret the server already
/// holds: HMAC-SHA256(`secret`, `label`). Give each purpose its own `label`,
/// and one that no other keyed hash under `secret` is ever computed over (a
/// label that is not UTF-8 can never be a challenge password or a token).
pub fn derive_key(secret: &[u8; 32], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&k, label);
    let mut out = Zeroizing::new([0u8; 32]);
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_same_key_and_associated_data() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let blob = s.seal(b"row-1", b"secret").unwrap();
        assert_eq!(&*s.open(b"row-1", &blob).unwrap(), b"secret");
        assert!(s.open(b"row-2", &blob).is_err());
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert!(other.open(b"row-1", &blob).is_err());
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(s.open(b"row-1", &flipped).is_err());
        assert!(s.open(b"row-1", &blob[..5]).is_err());
        // Two seals of the same secret differ (fresh nonce).
        assert_ne!(s.seal(b"row-1", b"secret").unwrap(), blob);
    }

    #[test]
    fn derived_keys_are_hmac_sha256_per_label() {
        let a = derive_key(&[1u8; 32], b"\xffone");
        assert_eq!(*a, *derive_key(&[1u8; 32], b"\xffone"));
        assert_ne!(*a, *derive_key(&[1u8; 32], b"\xfftwo"));
        assert_ne!(*a, *derive_key(&[2u8; 32], b"\xffone"));
        // The same HMAC-SHA256 as the challenge hashes (which a non-UTF-8 label can never be).
        assert_eq!(
            derive_key(&[1u8; 32], b"abc").to_vec(),
            crate::ra::challenge_hash(&[1u8; 32], "abc")
        );
    }
}
