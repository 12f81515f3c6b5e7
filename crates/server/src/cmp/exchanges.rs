//! CMP transactions between a certificate answer and its certConf, or
//! between a PENDING answer and the pollReq that collects the certificate
//! (RFC 4210 §5.3.18, §5.3.22; RFC 9483 §4.1.1, §4.4): kept in memory,
//! bounded in number and time. A transaction not confirmed within its
//! time is forgotten (its certificate stays issued: see the README); a
//! held request survives in storage and its pollReq is answered as long
//! as the server that held it runs.

use enrolkit_cmp::{BodyType, Exchange};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use x509_cert::Certificate;

/// Transactions kept at most; beyond, new ones are refused (systemUnavail).
pub const CAPACITY: usize = 4096;

/// Who protected the request that opened a transaction: every follow-up
/// must be protected the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// A MAC with the secret of this CMP challenge label.
    Mac(String),
    /// A signature by this certificate (DER).
    Signer(Vec<u8>),
}

/// Where an open transaction stands.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Issued; waiting for certConf.
    Confirm {
        /// The certificate (for certHash), and its serial (hex) to revoke if the client rejects it.
        certificate: Box<Certificate>,
        /// Serial (hex).
        serial: String,
    },
    /// Held for an operator; waiting for pollReq. The stored transaction's key id.
    Held {
        /// Key id of the stored transaction.
        key_id: String,
    },
}

/// One open transaction.
#[derive(Debug, Clone)]
pub struct Open {
    /// Nonces of our last answer.
    pub exchange: Exchange,
    /// ir, cr, kur or p10cr.
    pub origin: BodyType,
    /// certReqId.
    pub cert_req_id: i64,
    /// Who may continue it.
    pub requester: Requester,
    /// Where it stands.
    pub stage: Stage,
    expires: Instant,
}

impl Open {
    /// A transaction open for `wait` from now.
    pub fn new(
        exchange: Exchange,
        origin: BodyType,
        cert_req_id: i64,
        requester: Requester,
        stage: Stage,
        wait: Duration,
    ) -> Self {
        Open {
            exchange,
            origin,
            cert_req_id,
            requester,
            stage,
            expires: Instant::now() + wait,
        }
    }
}

/// The open transactions, by transactionID.
#[derive(Default)]
pub struct Exchanges {
    open: Mutex<HashMap<Vec<u8>, Open>>,
}

impl Exchanges {
    /// Whether `txid` is open (a new request must not reuse it: transactionIdInUse).
    pub fn contains(&self, txid: &[u8]) -> bool {
        self.open.lock().map(|m| m.contains_key(txid)).unwrap_or(true)
    }

    /// Keep `open` under `txid`; `false` when full of unexpired transactions.
    pub fn insert(&self, txid: Vec<u8>, open: Open) -> bool {
        let Ok(mut m) = self.open.lock() else {
            return false;
        };
        if m.len() >= CAPACITY {
            let now = Instant::now();
            m.retain(|_, o| o.expires > now);
            if m.len() >= CAPACITY {
                return false;
            }
        }
        m.insert(txid, open);
        true
    }

    /// Take the unexpired transaction `txid` out.
    pub fn take(&self, txid: &[u8]) -> Option<Open> {
        let mut m = self.open.lock().ok()?;
        m.remove(txid).filter(|o| o.expires > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open(wait: Duration) -> Open {
        let ex = Exchange {
            transaction_id: vec![1; 16],
            our_nonce: vec![2; 16],
            peer_nonce: None,
        };
        Open::new(
            ex,
            BodyType::Ir,
            0,
            Requester::Mac("l".into()),
            Stage::Held { key_id: "k".into() },
            wait,
        )
    }

    #[test]
    fn transactions_are_taken_once_and_expire() {
        let x = Exchanges::default();
        assert!(x.insert(vec![1], open(Duration::from_secs(60))));
        assert!(x.contains(&[1]));
        assert!(x.take(&[1]).is_some());
        assert!(x.take(&[1]).is_none());
        assert!(x.insert(vec![2], open(Duration::ZERO)));
        assert!(x.take(&[2]).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let x = Exchanges::default();
        for i in 0..CAPACITY {
            assert!(x.insert((i as u32).to_be_bytes().to_vec(), open(Duration::from_secs(60))));
        }
        assert!(!x.insert(vec![0xff; 5], open(Duration::from_secs(60))));
    }
}
