//! Transaction state both sides check (RFC 4210 §5.1.1; RFC 9483 §3.1):
//! "transactionID ... will be the same in corresponding request, response,
//! certConf, and PKIConf messages"; senderNonce is fresh in every message
//! and recipNonce echoes the peer's last senderNonce.
//!
//! | field | we send | we accept |
//! |---|---|---|
//! | transactionID | 16 random bytes (RFC 9483: 128 bits) | 8 ..= 64 bytes, required |
//! | senderNonce | 16 random bytes, fresh per message | 8 ..= 64 bytes, required |
//! | recipNonce | the peer's last senderNonce | must equal our last senderNonce in every answer and follow-up |

use crate::header::PkiHeader;
use crate::{CmpError, Result};
use rand_core::{CryptoRng, RngCore};

/// Length of the transactionIDs and nonces we make.
pub const NONCE_LEN: usize = 16;
/// Shortest transactionID or nonce accepted.
pub const MIN_NONCE_LEN: usize = 8;
/// Longest transactionID or nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;

/// Fresh random bytes for a transactionID or nonce.
pub fn fresh(rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
    let mut v = vec![0u8; NONCE_LEN];
    rng.fill_bytes(&mut v);
    v
}

fn ok_len(v: &[u8]) -> bool {
    (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&v.len())
}

/// Check that a received header has a transactionID and senderNonce of acceptable size.
pub fn check_fields(h: &PkiHeader) -> Result<()> {
    match h.transaction_id() {
        Some(t) if ok_len(t) => {}
        _ => return Err(CmpError::Header("transactionID missing or of a bad size")),
    }
    match h.sender_nonce() {
        Some(n) if ok_len(n) => Ok(()),
        _ => Err(CmpError::BadSenderNonce),
    }
}

/// Where one side of a transaction stands: the transactionID, the
/// senderNonce of the last message it sent, and the peer's last
/// senderNonce (which its next message puts in recipNonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// transactionID.
    pub transaction_id: Vec<u8>,
    /// senderNonce of our last message.
    pub our_nonce: Vec<u8>,
    /// senderNonce of the peer's last message.
    pub peer_nonce: Option<Vec<u8>>,
}

impl Exchange {
    /// Check that `h` belongs to this transaction and answers our last
    /// message: same transactionID, recipNonce = our senderNonce (compared
    /// in constant time), a senderNonce of its own.
    pub fn check_answer(&self, h: &PkiHeader) -> Result<()> {
        check_fields(h)?;
        if h.transaction_id() != Some(self.transaction_id.as_slice()) {
            return Err(CmpError::TransactionIdMismatch);
        }
        match h.recip_nonce() {
            Some(n) if bool::from(subtle::ConstantTimeEq::ct_eq(n, self.our_nonce.as_slice())) => Ok(()),
            _ => Err(CmpError::BadRecipientNonce),
        }
    }
}
