//! The secrets of CMP challenges at rest. A MAC-protected ir/cr (RFC 9483
//! §3.2, §4.1.5) is checked by recomputing the MAC, which needs the secret
//! itself: a keyed hash, which is all a SCEP or EST challenge leaves in the
//! database, cannot check it. So `mef challenge add --cmp` stores the
//! challenge twice: its keyed hash as every one-time challenge (consumed
//! with the issuance, [`crate::ra::challenge`]), and its secret sealed
//! (AES-256-GCM) under a key derived from the storage key, bound to its
//! label (the senderKID), like PSKs and Ke ([`crate::seal`]).

use crate::seal::{derive_key, SealError, Sealer};
use crate::storage::Storage;
use enrolkit_cmp::SharedSecret;

/// Label of the CMP secret sealing key, derived from the storage key (not
/// UTF-8: never a challenge or token hashed under the same secret).
const CMP_SECRET_LABEL: &[u8] = b"\xffenrolkit CMP secret at rest";

/// Longest senderKID looked up (a challenge label).
pub const MAX_LABEL: usize = 128;

/// Seals and opens CMP challenge secrets.
#[derive(Debug)]
pub struct SecretSealer {
    sealer: Sealer,
}

impl SecretSealer {
    /// A sealer under `storage_key`.
    pub fn new(storage_key: &[u8; 32]) -> Result<Self, SealError> {
        Ok(SecretSealer {
            sealer: Sealer::new(&derive_key(storage_key, CMP_SECRET_LABEL))?,
        })
    }

    fn aad(label: &str) -> Vec<u8> {
        let mut a = Vec::with_capacity(label.len() + 24);
        a.extend_from_slice(b"enrolkit-cmp-secret\0");
        a.extend_from_slice(&(label.len() as u64).to_be_bytes());
        a.extend_from_slice(label.as_bytes());
        a
    }

    /// The stored form of `secret` for the challenge labelled `label`.
    pub fn seal(&self, label: &str, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        self.sealer.seal(&Self::aad(label), secret)
    }

    /// The secret of the CMP challenge labelled `label` in `storage`:
    /// `Ok(None)` when there is none.
    pub fn secret(&self, storage: &dyn Storage, label: &str) -> Result<Option<SharedSecret>, String> {
        if label.is_empty() || label.len() > MAX_LABEL {
            return Ok(None);
        }
        let Some(sealed) = storage.cmp_secret(label).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let clear = self
            .sealer
            .open(&Self::aad(label), &sealed)
            .map_err(|e| format!("CMP secret {label:?}: {e}"))?;
        Ok(Some(SharedSecret::new(&clear)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secret_opens_only_under_its_key_and_label() {
        let dir = tempfile::tempdir().unwrap();
        let st = crate::SqliteStorage::open(&dir.path().join("db")).unwrap();
        let s = SecretSealer::new(&[1; 32]).unwrap();
        let sealed = s.seal("bts-1", b"pass-1").unwrap();
        st.add_cmp_challenge(b"h1", "bts-1", None, &sealed, 1, None).unwrap();
        assert_eq!(s.secret(&st, "bts-1").unwrap().unwrap().expose(), b"pass-1");
        assert!(s.secret(&st, "bts-2").unwrap().is_none());
        assert!(SecretSealer::new(&[2; 32]).unwrap().secret(&st, "bts-1").is_err());
        // Moved to another label, it does not open.
        st.add_cmp_challenge(b"h2", "bts-2", None, &sealed, 1, None).unwrap();
        assert!(s.secret(&st, "bts-2").is_err());
        // Labels are unique, and required.
        assert!(st.add_cmp_challenge(b"h3", "bts-1", None, &sealed, 1, None).is_err());
        assert!(st.add_cmp_challenge(b"h4", "", None, &sealed, 1, None).is_err());
    }
}
