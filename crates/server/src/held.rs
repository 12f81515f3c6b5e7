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
//! Names held by a build from before this were stored in the clear. They
//! are not sealed now (nothing in the database could tell an older build's
//! record from one forged after the upgrade): such a request is refused at
//! approval, with a message that says so; reject it, and its client enrols
//! again.

use crate::ra::IssueNames;
use crate::seal::{derive_key, Sealer};
use crate::storage::Transaction;
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
                "{}: the names held with this request are not sealed (held by an older mef, or altered in the \
                 database): refused; reject it and let the client enrol again",
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
}

/// Whether a pending transaction's record was made by this MEF: its
/// sealed names (SCEP, CMP) or sealed terms (EST, `est-…`) open under the
/// challenge key. The proxy's relay forwards nothing else: a row a
/// database writer inserted or altered would otherwise be certified
/// upstream under the proxy's RA credential with no one looking.
pub struct RecordCheck {
    challenge_key: zeroize::Zeroizing<[u8; 32]>,
    names: HeldNamesSeal,
}

impl std::fmt::Debug for RecordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordCheck(<redacted>)")
    }
}

impl RecordCheck {
    /// Under the challenge key the services seal with.
    pub fn new(challenge_key: &[u8; 32]) -> Self {
        RecordCheck {
            challenge_key: zeroize::Zeroizing::new(*challenge_key),
            names: HeldNamesSeal::new(challenge_key),
        }
    }

    /// `Ok(true)`: made by this MEF; `Ok(false)`: no record, or one that
    /// does not open; `Err`: storage could not say (ask again later).
    pub fn authentic(&self, storage: &dyn crate::storage::Storage, tx: &Transaction) -> Result<bool, String> {
        let Some(stored) = storage
            .held_terms(&tx.transaction_id, &tx.key_id)
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        Ok(if tx.transaction_id.starts_with("est-") {
            crate::est::held_terms_open(&self.challenge_key, tx, &stored)
        } else {
            self.names.open(tx, &stored).is_ok()
        })
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
