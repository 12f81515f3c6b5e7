//! CMP transactions between a certificate answer and its certConf, or
//! between a PENDING answer and the pollReq that collects the certificate
//! (RFC 4210 §5.3.18, §5.3.22; RFC 9483 §4.1.1, §4.4): kept in memory,
//! bounded in number and time. A certificate not confirmed within its
//! time is handed to [`Exchanges::unconfirmed`], whose caller revokes it
//! (the requester never accepted it); a held request survives in storage
//! and its pollReq is answered as long as the server that held it runs.

use enrolkit_cmp::{BodyType, Exchange};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use x509_cert::Certificate;

/// Transactions kept at most; beyond, new ones are refused (systemUnavail).
pub const CAPACITY: usize = 4096;

/// Open transactions one requester (a MAC label, a signing certificate)
/// may hold at once: a credential that never confirms fills its own
/// share, not the table every other client needs.
pub const PER_REQUESTER: usize = 4;

/// Why a transaction could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveError {
    /// The transactionID is open or being processed (transactionIdInUse).
    InUse,
    /// The table is full of unexpired transactions (systemUnavail).
    Full,
    /// The requester holds [`PER_REQUESTER`] open transactions already.
    RequesterBusy,
}

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
            expires: deadline(wait),
        }
    }
}

/// `now + wait`, or a century on when that overflows the clock.
fn deadline(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86400)))
        .unwrap_or(now)
}

/// A table entry: a transaction being decided (reserved before anything
/// is issued or consumed, until its [`Reservation`] is filled or dropped:
/// it does not expire), or one waiting for its follow-up.
enum Slot {
    Reserved { requester: Requester },
    Open(Open),
}

impl Slot {
    fn requester(&self) -> &Requester {
        match self {
            Slot::Reserved { requester } => requester,
            Slot::Open(o) => &o.requester,
        }
    }
    /// Whether it still stands at `now`: a reservation always, an open
    /// transaction until its deadline.
    fn live(&self, now: Instant) -> bool {
        match self {
            Slot::Reserved { .. } => true,
            Slot::Open(o) => o.expires > now,
        }
    }
    /// An expired slot that may simply be dropped: an open transaction
    /// past its deadline, except a certificate still waiting for certConf,
    /// which only [`Exchanges::unconfirmed`] hands out (to be revoked).
    fn forgettable(&self, now: Instant) -> bool {
        match self {
            Slot::Reserved { .. } => false,
            Slot::Open(o) => o.expires <= now && !matches!(o.stage, Stage::Confirm { .. }),
        }
    }
}

/// The open transactions, by transactionID.
#[derive(Default)]
pub struct Exchanges {
    open: Mutex<HashMap<Vec<u8>, Slot>>,
}

/// A transactionID held while its request is decided: [`Reservation::fill`]
/// keeps the transaction open; dropped unfilled, the slot is freed. Taken
/// before the core decides, so nothing is issued or consumed for a
/// request whose transaction could not be kept afterwards.
pub struct Reservation<'a> {
    exchanges: &'a Exchanges,
    txid: Vec<u8>,
    filled: bool,
}

impl Reservation<'_> {
    /// Keep `open` in the reserved slot (which only this reservation can
    /// have emptied: a reservation neither expires nor is taken).
    pub fn fill(mut self, open: Open) {
        {
            let mut m = self.exchanges.open.lock().unwrap_or_else(|p| p.into_inner());
            let txid = std::mem::take(&mut self.txid);
            if matches!(m.get(&txid), Some(Slot::Reserved { .. }) | None) {
                m.insert(txid, Slot::Open(open));
            }
        }
        self.filled = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.filled {
            return;
        }
        {
            let mut m = self.exchanges.open.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(m.get(&self.txid), Some(Slot::Reserved { .. })) {
                m.remove(&self.txid);
            }
        }
    }
}

impl Exchanges {
    /// Reserve `txid` for a new request by `requester`, until the
    /// reservation is filled or dropped: refused when the transactionID is in use (open or being decided),
    /// when the table is full, or when the requester holds
    /// [`PER_REQUESTER`] transactions already. Check and insert are one step.
    pub fn reserve(&self, txid: Vec<u8>, requester: Requester) -> Result<Reservation<'_>, ReserveError> {
        let mut m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // An expired certificate awaiting revocation keeps its ID too.
        if m.get(&txid).is_some_and(|s| !s.forgettable(now)) {
            return Err(ReserveError::InUse);
        }
        if m.len() >= CAPACITY {
            m.retain(|_, s| !s.forgettable(now));
        }
        if m.len() >= CAPACITY {
            return Err(ReserveError::Full);
        }
        let held = m
            .values()
            .filter(|s| s.live(now) && s.requester() == &requester)
            .count();
        if held >= PER_REQUESTER {
            return Err(ReserveError::RequesterBusy);
        }
        m.insert(txid.clone(), Slot::Reserved { requester });
        Ok(Reservation {
            exchanges: self,
            txid,
            filled: false,
        })
    }

    /// Put back a transaction taken for a follow-up that was refused (a
    /// forged certConf must not end the genuine client's transaction);
    /// `false` when its slot was taken meanwhile or the table is full.
    pub fn restore(&self, txid: Vec<u8>, open: Open) -> bool {
        let mut m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= CAPACITY || m.contains_key(&txid) {
            return false;
        }
        m.insert(txid, Slot::Open(open));
        true
    }

    /// Whether `txid` is open, waiting for a follow-up protected as `requester`.
    pub fn is_open_for(&self, txid: &[u8], requester: &Requester) -> bool {
        let m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        matches!(m.get(txid), Some(Slot::Open(o)) if &o.requester == requester && o.expires > Instant::now())
    }

    /// Take the unexpired open transaction `txid` out if `matches` accepts
    /// it, deciding under the table's lock: a follow-up that does not match
    /// (a forged or replayed certConf, another credential) never takes the
    /// genuine client's transaction out, not even for a moment. `Ok(None)`:
    /// none open; `Err`: `matches`'s refusal, the transaction left in place.
    pub fn take_matching<E>(
        &self,
        txid: &[u8],
        matches: impl FnOnce(&Open) -> Result<(), E>,
    ) -> Result<Option<Open>, E> {
        // A panic elsewhere while the table was held leaves it whole
        // (every change is one map operation): go on with it.
        let mut m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(txid) {
            Some(Slot::Open(o)) if o.expires > Instant::now() => matches(o)?,
            _ => return Ok(None),
        }
        match m.remove(txid) {
            Some(Slot::Open(o)) => Ok(Some(o)),
            _ => Ok(None),
        }
    }

    /// Take the unexpired open transaction `txid` out (not one being
    /// decided), whoever asks ([`Exchanges::take_matching`] with no check).
    /// An expired one is not taken: a late certConf does not save a
    /// certificate [`Exchanges::unconfirmed`] is about to revoke.
    pub fn take(&self, txid: &[u8]) -> Option<Open> {
        self.take_matching(txid, |_| Ok::<(), std::convert::Infallible>(()))
            .unwrap_or_else(|never| match never {})
    }

    /// Remove every expired open transaction (reservations do not expire);
    /// those whose certificate was never confirmed are returned
    /// (transactionID, the transaction) for the caller to revoke.
    pub fn unconfirmed(&self) -> Vec<(Vec<u8>, Open)> {
        let mut m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let expired: Vec<Vec<u8>> = m.iter().filter(|(_, s)| !s.live(now)).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        for k in expired {
            if let Some(Slot::Open(o)) = m.remove(&k) {
                if matches!(o.stage, Stage::Confirm { .. }) {
                    out.push((k, o));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open_by(who: &str, wait: Duration) -> Open {
        let ex = Exchange {
            transaction_id: vec![1; 16],
            our_nonce: vec![2; 16],
            peer_nonce: None,
        };
        Open::new(
            ex,
            BodyType::Ir,
            0,
            Requester::Mac(who.into()),
            Stage::Held { key_id: "k".into() },
            wait,
        )
    }

    fn keep(x: &Exchanges, txid: &[u8], who: &str, wait: Duration) -> Result<(), ReserveError> {
        x.reserve(txid.to_vec(), Requester::Mac(who.into()))?
            .fill(open_by(who, wait));
        Ok(())
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn transactions_are_taken_once_and_expire() {
        let x = Exchanges::default();
        keep(&x, &[1], "l", MINUTE).unwrap();
        assert_eq!(keep(&x, &[1], "other", MINUTE), Err(ReserveError::InUse));
        assert!(x.is_open_for(&[1], &Requester::Mac("l".into())));
        assert!(!x.is_open_for(&[1], &Requester::Mac("other".into())));
        assert!(x.take(&[1]).is_some());
        assert!(x.take(&[1]).is_none());
        keep(&x, &[2], "l", Duration::ZERO).unwrap();
        assert!(x.take(&[2]).is_none());
        // An overflowing wait is a far deadline, not a panic.
        keep(&x, &[3], "l", Duration::MAX).unwrap();
        assert!(x.take(&[3]).is_some());
    }

    #[test]
    fn a_reservation_holds_its_transaction_id_until_filled_or_dropped() {
        let x = Exchanges::default();
        let r = x.reserve(vec![7], Requester::Mac("a".into())).unwrap();
        // Being decided: another request with the same ID is refused, and
        // there is nothing to take yet.
        assert!(matches!(
            x.reserve(vec![7], Requester::Mac("b".into())),
            Err(ReserveError::InUse)
        ));
        assert!(x.take(&[7]).is_none());
        drop(r);
        let r = x.reserve(vec![7], Requester::Mac("b".into())).unwrap();
        r.fill(open_by("b", MINUTE));
        assert!(x.take(&[7]).is_some());
    }

    #[test]
    fn one_requester_holds_a_bounded_share() {
        let x = Exchanges::default();
        for i in 0..PER_REQUESTER as u8 {
            keep(&x, &[i], "greedy", MINUTE).unwrap();
        }
        assert_eq!(keep(&x, &[0xf0], "greedy", MINUTE), Err(ReserveError::RequesterBusy));
        keep(&x, &[0xf1], "someone else", MINUTE).unwrap();
        // Confirming one frees a place.
        assert!(x.take(&[0]).is_some());
        keep(&x, &[0xf0], "greedy", MINUTE).unwrap();
    }

    fn confirming(who: &str, serial: &str, wait: Duration) -> Open {
        let mut o = open_by(who, wait);
        o.stage = Stage::Confirm {
            certificate: Box::new(any_certificate()),
            serial: serial.into(),
        };
        o
    }

    /// Any certificate: the table only carries it.
    fn any_certificate() -> Certificate {
        use x509_cert::der::Decode;
        let der = include_bytes!("../../../../testvectors/pkix/chains/intermediate.der");
        Certificate::from_der(der).unwrap()
    }

    #[test]
    fn an_unconfirmed_certificate_is_handed_out_for_revocation_not_forgotten() {
        let x = Exchanges::default();
        x.reserve(vec![1], Requester::Mac("a".into()))
            .unwrap()
            .fill(confirming("a", "0a", Duration::ZERO));
        x.reserve(vec![2], Requester::Mac("a".into()))
            .unwrap()
            .fill(open_by("a", Duration::ZERO));
        x.reserve(vec![3], Requester::Mac("a".into()))
            .unwrap()
            .fill(confirming("a", "0c", MINUTE));
        // A late certConf does not take it, and a new request cannot reuse
        // its transactionID.
        assert!(x.take(&[1]).is_none());
        assert_eq!(keep(&x, &[1], "b", MINUTE), Err(ReserveError::InUse));
        // An expired held transaction is simply forgotten.
        keep(&x, &[2], "b", MINUTE).unwrap();
        let due = x.unconfirmed();
        assert_eq!(due.len(), 1, "only the expired certificate awaiting certConf");
        let (txid, open) = due.into_iter().next().unwrap();
        assert_eq!(txid, vec![1]);
        assert!(matches!(&open.stage, Stage::Confirm { serial, .. } if serial == "0a"));
        assert!(x.unconfirmed().is_empty(), "handed out once");
        // A revocation that failed puts it back, to be handed out again.
        assert!(x.restore(txid, open));
        assert_eq!(x.unconfirmed().len(), 1);
        // The unexpired one is still confirmable.
        assert!(x.take(&[3]).is_some());
    }

    #[test]
    fn a_reservation_does_not_expire_and_a_refused_follow_up_leaves_the_transaction() {
        let x = Exchanges::default();
        // Being decided for longer than any wait: not swept, not taken,
        // its transactionID not given to another request.
        let r = x.reserve(vec![5], Requester::Mac("a".into())).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(x.unconfirmed().is_empty());
        assert!(x.take(&[5]).is_none());
        assert_eq!(keep(&x, &[5], "b", MINUTE), Err(ReserveError::InUse));
        r.fill(confirming("a", "05", MINUTE));
        // A follow-up refused by the check stays refused and takes nothing.
        assert_eq!(x.take_matching(&[5], |_| Err("forged")).unwrap_err(), "forged");
        assert!(x
            .take_matching(&[5], |o| if o.requester == Requester::Mac("a".into()) {
                Ok::<(), &str>(())
            } else {
                Err("other")
            })
            .unwrap()
            .is_some());
        assert!(x.take(&[5]).is_none(), "taken once");
    }

    /// A full table is cleaned of expired transactions before a request is
    /// refused, but not of certificates awaiting revocation.
    #[test]
    fn a_full_tables_clean_up_keeps_unconfirmed_certificates() {
        let x = Exchanges::default();
        for i in 0..CAPACITY {
            let id = (i as u32).to_be_bytes().to_vec();
            let who = format!("r{i}");
            x.reserve(id, Requester::Mac(who.clone())).unwrap().fill(confirming(
                &who,
                &format!("{i:x}"),
                Duration::ZERO,
            ));
        }
        assert_eq!(keep(&x, &[0xff; 5], "late", MINUTE), Err(ReserveError::Full));
        assert_eq!(x.unconfirmed().len(), CAPACITY);
        keep(&x, &[0xff; 5], "late", MINUTE).unwrap();
    }

    #[test]
    fn the_table_is_bounded() {
        let x = Exchanges::default();
        for i in 0..CAPACITY {
            keep(&x, &(i as u32).to_be_bytes(), &format!("r{i}"), MINUTE).unwrap();
        }
        assert_eq!(keep(&x, &[0xff; 5], "late", MINUTE), Err(ReserveError::Full));
    }
}
