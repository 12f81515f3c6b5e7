//! One-time and static challenges: how a presented password is checked and
//! what it binds. The password itself is never stored, only its keyed hash
//! ([`challenge_hash`]); a one-time challenge is consumed in the same
//! database transaction that records the issuance or the held request
//! ([`crate::storage::Storage::record`]), so two requests racing for one
//! challenge get one certificate between them.

use super::decision::{Refusal, RefusalReason};
use super::names::BoundNames;
use crate::storage::Storage;
use zeroize::Zeroizing;

/// Keyed hash under which a challenge password is stored (the password itself never is).
pub fn challenge_hash(key: &[u8; 32], password: &str) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, password.as_bytes()).as_ref().to_vec()
}

/// A password that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeMatch {
    /// A usable one-time challenge: its label, what it binds, and the hash
    /// to consume with the issuance.
    OneTime {
        /// Operator's label.
        label: String,
        /// Names bound to it (`None`: unbound).
        names: Option<BoundNames>,
        /// Keyed hash, consumed with the issuance.
        hash: Vec<u8>,
    },
    /// The shared static challenge.
    Static,
}

/// Check `password` against the one-time challenges (when on) and the
/// static one. `Ok(None)`: neither matched.
pub fn check(
    storage: &dyn Storage,
    key: &[u8; 32],
    one_time: bool,
    static_challenge: Option<&Zeroizing<String>>,
    password: &str,
    now: i64,
) -> Result<Option<ChallengeMatch>, Refusal> {
    if one_time {
        let hash = challenge_hash(key, password);
        if let Some(c) = storage.challenge(&hash, now).map_err(Refusal::internal)? {
            let names = c
                .names
                .as_deref()
                .map(BoundNames::decode)
                .transpose()
                .map_err(|e| Refusal::internal(format!("challenge {}: {e}", c.id)))?;
            return Ok(Some(ChallengeMatch::OneTime {
                label: c.label,
                names,
                hash,
            }));
        }
    }
    if let Some(shared) = static_challenge {
        if bool::from(subtle::ConstantTimeEq::ct_eq(shared.as_bytes(), password.as_bytes())) {
            return Ok(Some(ChallengeMatch::Static));
        }
    }
    Ok(None)
}

/// The refusal for a password that matched nothing.
pub fn wrong() -> Refusal {
    Refusal::new(
        RefusalReason::BadCredential,
        "challenge password missing, wrong, expired or already used",
    )
}
