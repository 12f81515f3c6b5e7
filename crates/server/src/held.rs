//! The names a held SCEP or CMP request is to be issued with, sealed at
//! rest (EST seals its held terms the same way, in [`crate::est`]).
//!
//! What an operator's approval issues is what the authorisation core
//! decided when the request was held. Stored in the clear, those names
//! were whatever the database said at approval: someone who can write the
//! database but holds no key (a DBA, a restored backup, an SQL injection
//! elsewhere) could rename a held request, or hold a request of their own,
//! and have the next approval certify it. Sealed (AES-256-GCM under a key
//! derived from the challenge key, the transaction and its request as
//! associated data), a changed or forged record does not open, and
//! approval refuses it.
//!
//! Names held by a build from before this were stored in the clear: the
//! first `mef` to open the database with this build seals those of pending
//! transactions once ([`HeldNamesSeal::seal_legacy`]) and records that it
//! did; clear names found afterwards are refused as altered.

use crate::ra::IssueNames;
use crate::seal::{derive_key, Sealer};
use crate::storage::{Storage, Transaction};
use enrolkit_keys::DigestAlgorithm;

/// Label of the sealing key, derived from the challenge key (not UTF-8:
/// never the input of a challenge hash under the same key).
const LABEL: &[u8] = b"\xffenrolkit SCEP/CMP: names of held requests at rest\x00v1";

/// What a sealed record starts with (clear names are JSON: never a NUL).
const MAGIC: &[u8] = b"\x00enrolkit sealed names v1\x00";

/// Seals and opens the names of held SCEP and CMP requests.
pub struct HeldNamesSeal {
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for HeldNamesSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldNamesSeal(<redacted>)")
    }
}

/// Associated data: the transaction, its key id and its request (CSR, or
/// for CMP the key to certify).
fn aad(tx: &Transaction) -> Vec<u8> {
    let mut a = b"enrolkit held names\0".to_vec();
    for part in [tx.transaction_id.as_bytes(), b"\0", tx.key_id.as_bytes(), b"\0"] {
        a.extend_from_slice(part);
    }
    a.extend_from_slice(&DigestAlgorithm::Sha256.digest(&tx.csr));
    a
}

impl HeldNamesSeal {
    /// Under a key derived from the challenge key.
    pub fn new(challenge_key: &[u8; 32]) -> Self {
        HeldNamesSeal {
            key: derive_key(challenge_key, LABEL),
        }
    }

    fn sealer(&self) -> Result<Sealer, String> {
        Sealer::new(&self.key).map_err(|e| e.to_string())
    }

    /// The stored form of `names` for the held `tx`.
    pub fn seal(&self, tx: &Transaction, names: &IssueNames) -> Result<Vec<u8>, String> {
        let mut out = MAGIC.to_vec();
        out.extend(
            self.sealer()?
                .seal(&aad(tx), names.encode().as_bytes())
                .map_err(|e| e.to_string())?,
        );
        Ok(out)
    }

    /// The names stored for `tx`: refused when they do not open (another
    /// transaction's, altered, or written in the clear after the upgrade).
    pub fn open(&self, tx: &Transaction, stored: &[u8]) -> Result<IssueNames, String> {
        let Some(sealed) = stored.strip_prefix(MAGIC) else {
            return Err(format!(
                "{}: the names held with this request are not sealed (altered in the database, or written by an \
                 older mef after the upgrade): refused",
                tx.transaction_id
            ));
        };
        let clear = self.sealer()?.open(&aad(tx), sealed).map_err(|_| {
            format!(
                "{}: the names held with this request do not open (altered in the database, or another \
                 request's): refused",
                tx.transaction_id
            )
        })?;
        IssueNames::decode(&clear)
    }

    /// Seal, once per database, the clear names an older build stored
    /// with pending SCEP and CMP requests; afterwards (and in a database
    /// created by this build) clear names are refused by [`Self::open`].
    /// Returns how many were sealed.
    pub fn seal_legacy(&self, storage: &dyn Storage) -> Result<usize, String> {
        storage
            .seal_clear_held_names(&|tx, stored| {
                if stored.starts_with(MAGIC) {
                    return None;
                }
                let names = IssueNames::decode(stored).ok()?;
                self.seal(tx, &names).ok()
            })
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::storage::TxState;

    fn tx(id: &str) -> Transaction {
        Transaction {
            transaction_id: id.into(),
            key_id: "kid".into(),
            subject: "CN=a".into(),
            csr: b"csr".to_vec(),
            state: TxState::Pending,
            created: 1,
        }
    }

    fn names(cn: &str) -> IssueNames {
        IssueNames {
            subject: std::str::FromStr::from_str(&format!("CN={cn}")).unwrap(),
            dns: vec![format!("{cn}.example.net")],
            ips: Vec::new(),
        }
    }

    /// An older build's clear names are sealed by the first open of this
    /// build and then approve as before; clear names written later are not.
    #[test]
    fn clear_names_of_an_older_build_are_sealed_once_then_refused() {
        use crate::storage::{SqliteStorage, Storage};
        let st = SqliteStorage::in_memory().unwrap();
        let s = HeldNamesSeal::new(&[4; 32]);
        let (old, late) = (tx("scep-old"), tx("cmp-late"));
        st.record_held(&old, None, names("dev-old").encode().as_bytes(), 1)
            .unwrap();
        assert!(s
            .open(&old, &st.held_terms("scep-old", "kid").unwrap().unwrap())
            .is_err());
        assert_eq!(s.seal_legacy(&st).unwrap(), 1);
        let stored = st.held_terms("scep-old", "kid").unwrap().unwrap();
        assert_eq!(s.open(&old, &stored).unwrap(), names("dev-old"));
        st.record_held(&late, None, names("evil").encode().as_bytes(), 1)
            .unwrap();
        assert_eq!(s.seal_legacy(&st).unwrap(), 0, "once per database");
        let stored = st.held_terms("cmp-late", "kid").unwrap().unwrap();
        assert!(s.open(&late, &stored).unwrap_err().contains("not sealed"));
    }

    #[test]
    fn sealed_names_open_only_for_their_transaction_and_clear_ones_are_refused() {
        let s = HeldNamesSeal::new(&[4; 32]);
        let a = tx("a");
        let sealed = s.seal(&a, &names("dev-1")).unwrap();
        assert_eq!(s.open(&a, &sealed).unwrap(), names("dev-1"));
        let clear = names("dev-1").encode().into_bytes();
        assert!(
            !sealed.windows(16).any(|w| clear.windows(16).any(|c| c == w)),
            "not in the clear"
        );
        // Another transaction's, another request, another key, altered, clear.
        assert!(s.open(&tx("b"), &sealed).unwrap_err().contains("do not open"));
        let mut other_csr = a.clone();
        other_csr.csr = b"other".to_vec();
        assert!(s.open(&other_csr, &sealed).is_err());
        assert!(HeldNamesSeal::new(&[5; 32]).open(&a, &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(s.open(&a, &flipped).is_err());
        let evil = names("evil").encode().into_bytes();
        assert!(s.open(&a, &evil).unwrap_err().contains("not sealed"));
    }
}
