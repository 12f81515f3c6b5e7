//! The SCEP Client / Proxy of seed 004 (3GPP TS 33.310 §3.1, §9.2.1): "a
//! SCEP Client with a small web server that allows trusted clients to
//! forward prepared key material to be forwarded to a SCEP server".
//!
//! It is a mode of `mef serve` (`[proxy]` in `mef.toml`), not a server of
//! its own: the front ends (EST, SCEP), the listeners and their limits, the
//! authorisation core, storage and metrics are mef's. What differs is who
//! issues. In proxy mode every request the core admits is *held*, exactly
//! as under manual approval (EST answers 202 + Retry-After, SCEP PENDING,
//! retries are answered from storage), and the [`Relay`] plays the
//! operator: it forwards each pending transaction's CSR upstream and
//! records the upstream's answer on the transaction as an operator's
//! decision is recorded (`issue_approved` of `crate::scep`,
//! [`Storage::decide`]). mef has no CA key then: the [`Authority`] of the
//! front ends is the pinned upstream CA certificate with a key that
//! refuses every operation ([`NoCaKey`]), so `/cacerts` and GetCACert serve
//! the upstream chain (GetCACert with the proxy's RA certificate, which
//! clients encrypt to) and nothing can be signed locally by mistake.
//!
//! | seed 004 §9.2.1 | here |
//! |---|---|
//! | trusted clients forward prepared key material | EST `/simpleenroll` (PKCS#10) or SCEP PKCSReq, authorised by [`crate::ra`] |
//! | the proxy speaks SCEP (PKCS#7) to the SCEP server | [`Upstream::request`]: a PKCSReq carrying the client's CSR, signed by the proxy's RA certificate (RA-POP) or, forwarding the client's challengePassword, by a self-signed certificate of the RA key |
//! | a "pending" answer is indicated to the Client, which polls | the transaction stays pending; the client's retries are answered from storage; the relay polls upstream with CertPoll ([`Upstream::poll`]) |
//! | failure, or the polling window exceeded, "will be notified" | [`Relay`]: the transaction is refused, a log line, the hook, `mef_proxy_events_total` |
//!
//! Everything the relay needs survives a restart: the pending transaction
//! (its CSR and when it was recorded) is in storage, and the upstream
//! transactionID is derived from the stored transaction
//! ([`upstream_transaction_id`]), so the next pass after a restart
//! continues the same upstream transaction.

use crate::metrics::Metrics;
use crate::ra::{unix, RefusalReason, Verifier};
use crate::storage::{PendingCursor, Storage, Transaction, TxState};
use enrolkit_keys::{KeyError, KeyKind, SignatureAlgorithm, Signer};
use enrolkit_pki::Authority;
use spki::SubjectPublicKeyInfoOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// What the upstream SCEP server answered one forwarded request.
#[derive(Debug, Clone)]
pub enum Forwarded {
    /// SUCCESS: the certificate, already checked against the pinned chain
    /// and for the CSR's key.
    Issued(Box<Certificate>),
    /// PENDING: ask again on a later pass.
    Pending,
    /// FAILURE: the upstream's failInfo and text, in words.
    Refused(String),
    /// No answer (network, HTTP error, a reply that did not verify): the
    /// transaction stays pending and is asked again, within its window.
    Unreachable(String),
    /// Not sent: the proxy cannot forward this request as configured (a
    /// CSR without a challengePassword under `forward-challenge`). Refused
    /// at the proxy, without an upstream request.
    NotSent(String),
}

/// The upstream SCEP server, as the relay uses it (the binary implements
/// it with `enrolkit_client::ScepSession::relay` and `relay_poll`; tests
/// with a double).
pub trait Upstream: Send + Sync {
    /// Send `csr` (DER, the client's own) upstream in a request (PKCSReq)
    /// under the transactionID `txid` ([`upstream_transaction_id`]): the
    /// first time, or again when the last one got no answer.
    fn request(&self, csr: &[u8], txid: &str) -> Forwarded;
    /// Ask about `csr` after the upstream answered its request PENDING
    /// (CertPoll, RFC 8894 §3.3.3, the same `txid`): a server that keeps
    /// no transactions would take the request sent again for a new one.
    fn poll(&self, csr: &[u8], txid: &str) -> Forwarded;
    /// What the upstream CA revoked: its current CRL (GetCRL, signed by the
    /// RA key), checked against the pinned CA. `Err`: not known now.
    fn revocations(&self) -> Result<Vec<UpstreamRevocation>, String>;
}

/// A certificate the upstream CA revoked (an entry of its CRL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRevocation {
    /// Its serial, lowercase hex as storage keeps it.
    pub serial: String,
    /// When it was revoked, Unix seconds.
    pub at: i64,
    /// Its CRLReason code (0, unspecified, when the entry has none).
    pub reason: u8,
}

/// The upstream transactionID of the held transaction `tx`: uppercase hex
/// SHA-256 over the proxy's own transaction (its transactionID, key id and
/// stored CSR DER). The same for every pass and after a restart (all three
/// are stored), and another for every other request, also one with the
/// same key: a re-enrolment (RFC 7030 §4.2.2 allows the same key; the
/// proxy's transaction is then `est-re-…`) is a new upstream transaction,
/// not the first one again, which an upstream refuses as "started with
/// another request" or answers with the old certificate.
pub fn upstream_transaction_id(tx: &Transaction) -> String {
    let mut m = Vec::with_capacity(tx.transaction_id.len() + tx.key_id.len() + tx.csr.len() + 32);
    m.extend_from_slice(b"enrolkit proxy upstream transaction\0");
    for part in [tx.transaction_id.as_bytes(), tx.key_id.as_bytes()] {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    m.extend_from_slice(&tx.csr);
    hex::encode_upper(enrolkit_keys::DigestAlgorithm::Sha256.digest(&m))
}

/// What to do with one pending transaction on a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send its request upstream: its window is open and the upstream has
    /// not answered it PENDING (it was never sent, got no answer, or the
    /// proxy restarted since).
    Request,
    /// Poll: its window is open and the upstream answered PENDING.
    Poll,
    /// Its polling window ran out: stop polling, refuse, notify.
    GiveUp,
}

/// The step for a transaction recorded at `created` (Unix seconds) at `now`,
/// with a polling window of `window`; `pending_upstream`: the upstream
/// answered its request PENDING.
pub fn step(created: i64, now: i64, window: Duration, pending_upstream: bool) -> Step {
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(created) >= window {
        Step::GiveUp
    } else if pending_upstream {
        Step::Poll
    } else {
        Step::Request
    }
}

/// The caps on requests held at once in proxy mode (`[proxy]
/// max_pending_per_client`, `max_pending`): every held request is sent
/// upstream on every pass until it is decided, so without them one
/// admitted credential could make the relay's work, and the held rows,
/// grow without bound (a CSR with a fresh key is a new transaction).
///
/// A client is counted by the subject it asks for ([`Transaction::subject`],
/// a column storage already keeps), not by its credential (that would be a
/// new column): a client certificate, a pre-authorised CN, a vendor
/// certificate, a bound challenge or an RSPF grant binds the names it may
/// ask for, so there the subject stands for the credential; a credential
/// that may name many subjects (RA-POP, a static challenge with
/// `allowed_dns_suffixes`) is bounded by `total` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimit {
    /// Pending transactions for one subject.
    pub per_client: u64,
    /// Pending transactions in all.
    pub total: u64,
}

impl HoldLimit {
    /// A permit when a new request for `subject` may be held now; `Err`:
    /// why not, in words for the client. Checked before the request is
    /// recorded (a retry of a held one is answered from storage before
    /// this, and never refused by it). The permit serialises the check
    /// and the recording within this process: keep it until the request
    /// is recorded, so that concurrent requests cannot each pass the check
    /// before either is counted. (Several proxy processes sharing one
    /// database can still overshoot by the requests in flight between them.)
    pub fn admit(&self, storage: &dyn Storage, subject: &str) -> Result<HoldPermit, HoldRefused> {
        let permit = HoldPermit(HOLDING.lock().unwrap_or_else(|p| p.into_inner()));
        let total = storage
            .count_pending(None)
            .map_err(|e| HoldRefused::Storage(e.to_string()))?;
        if total >= self.total {
            return Err(HoldRefused::Full(format!(
                "the proxy holds {total} requests for the upstream CA, its limit (max_pending); try again later"
            )));
        }
        let mine = storage
            .count_pending(Some(subject))
            .map_err(|e| HoldRefused::Storage(e.to_string()))?;
        if mine >= self.per_client {
            return Err(HoldRefused::Full(format!(
                "{mine} requests for this subject are already waiting for the upstream CA, the limit \
                 (max_pending_per_client); retry one of them, or try again when they are decided"
            )));
        }
        Ok(permit)
    }
}

/// Held while a request is counted against the [`HoldLimit`] and recorded.
static HOLDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`HoldLimit::admit`]'s permit: until it is dropped, no other request
/// in this process is counted or recorded as held.
#[must_use = "keep the permit until the held request is recorded"]
pub struct HoldPermit(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

impl std::fmt::Debug for HoldPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HoldPermit")
    }
}

/// Why a request was not held ([`HoldLimit::admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldRefused {
    /// A cap is reached: the text for the client.
    Full(String),
    /// Storage could not count (an internal error).
    Storage(String),
}

/// What one pass did (for the log and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Requests sent upstream.
    pub forwarded: usize,
    /// Transactions that got their certificate.
    pub issued: usize,
    /// Transactions still pending upstream (or upstream unreachable).
    pub pending: usize,
    /// Transactions refused (upstream FAILURE or window exceeded).
    pub refused: usize,
}

/// The notification of seed 004: a log line, the hook, a metric.
pub struct Notifier {
    /// The hook (run with the CSR as PEM on stdin, environment cleared but
    /// for `ENROL_SUBJECT`, `ENROL_TRANSACTION_ID`, `ENROL_PROXY_EVENT`,
    /// `ENROL_REASON` and `PATH`), if configured.
    pub hook: Option<Verifier>,
    /// Where the event is counted.
    pub metrics: Arc<Metrics>,
}

impl Notifier {
    fn notify(&self, tx: &Transaction, event: &'static str, reason: &str) {
        tracing::warn!(
            event,
            txid = %tx.transaction_id,
            subject = %tx.subject,
            reason,
            "proxy: request not issued; the client is told on its next retry"
        );
        self.metrics.proxy_event(event);
        if let Some(h) = &self.hook {
            // The reason may carry the upstream's failInfoText, and an
            // environment value cannot hold a NUL (the hook would not run).
            let (subject, txid, reason) = (env_safe(&tx.subject), env_safe(&tx.transaction_id), env_safe(reason));
            let env = [
                ("ENROL_SUBJECT", subject.as_str()),
                ("ENROL_TRANSACTION_ID", txid.as_str()),
                ("ENROL_PROXY_EVENT", event),
                ("ENROL_REASON", reason.as_str()),
            ];
            match h.run(&tx.csr, &env) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(command = %h.command.display(), event, "proxy notification hook failed"),
                Err(e) => {
                    tracing::error!(command = %h.command.display(), error = %e, "proxy notification hook could not run")
                }
            }
        }
    }
}

/// `s` for a hook's environment: control characters (NUL, newlines,
/// escapes) replaced by `?`, at most 1,000 characters.
pub fn env_safe(s: &str) -> String {
    s.chars()
        .take(1000)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The relay: forwards pending transactions upstream and records the answers.
///
/// Which transactions the upstream answered PENDING (and so are polled
/// with CertPoll rather than requested again) is known to this process
/// only: after a restart each pending transaction's request is sent once
/// more, which a server that keeps transactions (mef, RFC 8894 §3.3.1's
/// "same transactionID") answers with the transaction's state.
pub struct Relay {
    storage: Arc<dyn Storage>,
    upstream: Box<dyn Upstream>,
    window: Duration,
    notifier: Notifier,
    awaiting: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    crl_interval: Duration,
    crl_asked: std::sync::Mutex<Option<SystemTime>>,
    max_per_pass: usize,
    /// Where the last pass stopped (`None`: at the end, start from the oldest).
    resume: std::sync::Mutex<Option<PendingCursor>>,
    /// Forwards only records this MEF sealed (see [`Relay::records`]).
    records: Option<crate::held::RecordCheck>,
}

/// Upstream exchanges per pass unless [`Relay::max_per_pass`] says otherwise.
pub const DEFAULT_MAX_PER_PASS: usize = 64;

impl Relay {
    /// A relay over `storage`'s pending transactions, polling each for at
    /// most `window` after it was recorded.
    pub fn new(storage: Arc<dyn Storage>, upstream: Box<dyn Upstream>, window: Duration, notifier: Notifier) -> Self {
        Relay {
            storage,
            upstream,
            window,
            notifier,
            awaiting: std::sync::Mutex::new(std::collections::HashSet::new()),
            crl_interval: Duration::ZERO,
            crl_asked: std::sync::Mutex::new(None),
            max_per_pass: DEFAULT_MAX_PER_PASS,
            resume: std::sync::Mutex::new(None),
            records: None,
        }
    }

    /// Forward only pending transactions whose stored record this MEF
    /// sealed ([`crate::held::RecordCheck`]); any other is refused, not
    /// sent upstream. `mef serve` always sets it.
    pub fn records(mut self, check: crate::held::RecordCheck) -> Self {
        self.records = Some(check);
        self
    }

    /// Work on at most `n` pending transactions per pass (so at most `n`
    /// upstream exchanges); the next pass goes on after the last one taken,
    /// back to the oldest after the youngest, so every pending transaction
    /// has its turn however many wait long upstream. At least one.
    pub fn max_per_pass(mut self, n: usize) -> Self {
        self.max_per_pass = n.max(1);
        self
    }

    /// [`Relay::pass`], supervised: a panic inside the pass (the upstream
    /// client, storage, the hook) is caught, logged and counted
    /// (`mef_proxy_events_total{event="pass-panicked"}`) and returned as an
    /// `Err`, so the relay thread goes on with the next pass instead of
    /// dying and leaving every client at 202 for ever. A completed pass
    /// (`Ok`) sets `mef_proxy_last_pass_timestamp_seconds`; a panicked one,
    /// or one that could not read storage, does not.
    pub fn supervised_pass(&self, now: SystemTime) -> Result<PassReport, String> {
        // The relay's state is a set of transaction keys and a time, each
        // under a mutex held only briefly and never across a call that
        // could panic: a pass cut short leaves it consistent.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pass(now))) {
            Ok(r) => {
                if r.is_ok() {
                    self.notifier.metrics.proxy_pass_completed(unix(now));
                }
                r
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                self.notifier.metrics.proxy_event("pass-panicked");
                tracing::error!(panic = %what, "proxy: a pass of the relay panicked; going on with the next pass");
                Err(format!("the pass panicked: {what}"))
            }
        }
    }

    /// Ask the upstream for its revocations at most every `every` (every
    /// pass when zero, the default).
    pub fn crl_interval(mut self, every: Duration) -> Self {
        self.crl_interval = every;
        self
    }

    /// When due, learn what the upstream CA revoked and revoke the same
    /// certificates in storage: a certificate relayed through the proxy is
    /// in its database as if it had issued it, and the authorisation core
    /// decides a renewal on that record ([`crate::ra::Authoriser::standing`]),
    /// so without this a certificate the upstream operator revoked could
    /// still renew through the proxy (under RA-POP the upstream does not
    /// see that it is a renewal). Serials the proxy did not relay are not
    /// its records and are skipped. Returns how many were newly revoked.
    pub fn learn_revocations(&self, now: SystemTime) -> usize {
        if let Ok(mut asked) = self.crl_asked.lock() {
            if asked.is_some_and(|t| now < t + self.crl_interval && self.crl_interval > Duration::ZERO) {
                return 0;
            }
            *asked = Some(now);
        }
        let revoked = match self.upstream.revocations() {
            Ok(r) => r,
            Err(e) => {
                self.notifier.metrics.proxy_event("upstream-crl-failed");
                tracing::warn!(error = %e, "proxy: the upstream CA's revocations are not known (GetCRL failed); certificates it revoked can still renew here");
                return 0;
            }
        };
        self.notifier.metrics.proxy_event("upstream-crl");
        let mut newly = 0;
        for r in revoked {
            match self.storage.certificate(&r.serial) {
                Ok(Some(rec)) if rec.revoked_at.is_none() => match self.storage.revoke(&r.serial, r.at, r.reason) {
                    Ok(()) => {
                        newly += 1;
                        self.notifier.metrics.proxy_event("upstream-revoked");
                        tracing::warn!(serial = %r.serial, subject = %rec.subject, reason = r.reason, "proxy: certificate revoked by the upstream CA, revoked here too");
                    }
                    Err(e) => {
                        tracing::error!(serial = %r.serial, error = %e, "proxy: cannot record an upstream revocation")
                    }
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(serial = %r.serial, error = %e, "proxy: cannot look up an upstream revocation")
                }
            }
        }
        newly
    }

    /// Whether `tx`'s record may be forwarded (always, without a check);
    /// `None`: storage could not say (the transaction waits for a later pass).
    fn authentic(&self, tx: &Transaction) -> Option<bool> {
        match &self.records {
            None => Some(true),
            Some(check) => match check.authentic(self.storage.as_ref(), tx) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(txid = %tx.transaction_id, error = %e, "proxy: cannot read a request's record");
                    None
                }
            },
        }
    }

    fn pending_upstream(&self, tx: &Transaction) -> bool {
        self.awaiting
            .lock()
            .map(|a| a.contains(&(tx.transaction_id.clone(), tx.key_id.clone())))
            .unwrap_or(false)
    }

    fn set_pending_upstream(&self, tx: &Transaction, pending: bool) {
        if let Ok(mut a) = self.awaiting.lock() {
            let k = (tx.transaction_id.clone(), tx.key_id.clone());
            if pending {
                a.insert(k);
            } else {
                a.remove(&k);
            }
        }
    }

    /// The transactions of this pass: at most [`Relay::max_per_pass`], in
    /// the order they were recorded, after the last one the previous pass
    /// took and, when those run out, from the oldest again (none twice).
    fn next_batch(&self) -> Result<Vec<Transaction>, crate::storage::StorageError> {
        let max = self.max_per_pass;
        let mut resume = self.resume.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = self.storage.pending_after(resume.as_ref(), max)?;
        if batch.len() < max && resume.is_some() {
            let taken: std::collections::HashSet<PendingCursor> = batch.iter().map(PendingCursor::of).collect();
            let from_start = self.storage.pending_after(None, max - batch.len())?;
            batch.extend(
                from_start
                    .into_iter()
                    .filter(|t| !taken.contains(&PendingCursor::of(t))),
            );
        }
        // A full batch: the next pass goes on after its last; a short one
        // took everything there was, so the next starts at the oldest.
        *resume = if batch.len() == max {
            batch.last().map(PendingCursor::of)
        } else {
            None
        };
        Ok(batch)
    }

    /// One pass over the pending transactions at `now`, at most
    /// [`Relay::max_per_pass`] of them, each in its turn ([`Relay::max_per_pass`]). A transaction
    /// decided meanwhile (by another proxy instance sharing the database)
    /// is left as it was decided: `decide` refuses a second decision.
    pub fn pass(&self, now: SystemTime) -> Result<PassReport, String> {
        let mut report = PassReport::default();
        // Before forwarding anything: a held re-enrolment whose certificate
        // the upstream revoked meanwhile is refused below, not forwarded.
        self.learn_revocations(now);
        let pending = self.next_batch().map_err(|e| format!("pending transactions: {e}"))?;
        for tx in pending {
            let Some(authentic) = self.authentic(&tx) else {
                continue;
            };
            let polling = self.pending_upstream(&tx);
            match step(tx.created, unix(now), self.window, polling) {
                Step::GiveUp => {
                    self.set_pending_upstream(&tx, false);
                    let why = format!(
                        "no certificate from the upstream CA within the polling window ({} s): the proxy stopped polling",
                        self.window.as_secs()
                    );
                    if self.refuse(&tx, RefusalReason::PollingWindowExceeded, &why, now) {
                        report.refused += 1;
                        self.notifier.notify(&tx, "polling-window-exceeded", &why);
                    }
                }
                _ if !authentic => {
                    self.set_pending_upstream(&tx, false);
                    let why = "the request's record in the database does not open (inserted or altered there, or \
                               held by an older mef): not forwarded";
                    tracing::warn!(txid = %tx.transaction_id, "proxy: {why}");
                    if self.refuse(&tx, RefusalReason::Internal, why, now) {
                        report.refused += 1;
                        self.notifier.notify(&tx, "record-altered", why);
                    }
                }
                _ if self.renews_revoked(&tx) => {
                    self.set_pending_upstream(&tx, false);
                    let why = "the certificate this request renews was revoked by the upstream CA";
                    if self.refuse(&tx, RefusalReason::CredentialRevoked, why, now) {
                        report.refused += 1;
                        self.notifier.notify(&tx, "renewed-revoked", why);
                    }
                }
                ask @ (Step::Request | Step::Poll) => {
                    let txid = upstream_transaction_id(&tx);
                    let answer = if ask == Step::Poll {
                        self.upstream.poll(&tx.csr, &txid)
                    } else {
                        self.upstream.request(&tx.csr, &txid)
                    };
                    if !matches!(answer, Forwarded::NotSent(_)) {
                        report.forwarded += 1;
                        self.notifier.metrics.proxy_event("upstream-request");
                    }
                    // PENDING: poll from now on. No answer to a poll: poll
                    // again (upstream holds the transaction); no answer to
                    // the request: send it again. Otherwise decided.
                    let awaiting = match answer {
                        Forwarded::Pending => true,
                        Forwarded::Unreachable(_) => polling,
                        _ => false,
                    };
                    self.set_pending_upstream(&tx, awaiting);
                    match answer {
                        Forwarded::Issued(cert) => {
                            let recorded = crate::scep::issue_approved(
                                self.storage.as_ref(),
                                &tx.transaction_id,
                                &tx.key_id,
                                now,
                                |_| Ok(*cert),
                            );
                            match recorded {
                                Ok(serial) => {
                                    report.issued += 1;
                                    self.notifier.metrics.proxy_event("issued");
                                    tracing::info!(txid = %tx.transaction_id, serial, "proxy: certificate from upstream recorded");
                                }
                                Err(e) => {
                                    tracing::error!(txid = %tx.transaction_id, error = %e, "proxy: cannot record the upstream certificate")
                                }
                            }
                        }
                        Forwarded::Pending => report.pending += 1,
                        Forwarded::Refused(why) => {
                            let why = format!("refused by the upstream CA: {why}");
                            if self.refuse(&tx, RefusalReason::UpstreamRefused, &why, now) {
                                report.refused += 1;
                                self.notifier.notify(&tx, "upstream-refused", &why);
                            }
                        }
                        Forwarded::NotSent(why) => {
                            let why = format!("not forwarded upstream: {why}");
                            if self.refuse(&tx, RefusalReason::UpstreamRefused, &why, now) {
                                report.refused += 1;
                                self.notifier.notify(&tx, "not-forwarded", &why);
                            }
                        }
                        Forwarded::Unreachable(why) => {
                            report.pending += 1;
                            self.notifier.metrics.proxy_event("upstream-unreachable");
                            tracing::warn!(txid = %tx.transaction_id, error = %why, "proxy: upstream unreachable; asking again on the next pass");
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Whether `tx` is an EST re-enrolment (`est-re-{key id}-{serial}`)
    /// of a certificate now revoked in storage.
    fn renews_revoked(&self, tx: &Transaction) -> bool {
        let Some(serial) = tx
            .transaction_id
            .strip_prefix("est-re-")
            .and_then(|rest| rest.split_once('-'))
            .map(|(_, serial)| serial)
        else {
            return false;
        };
        matches!(self.storage.certificate(serial), Ok(Some(rec)) if rec.revoked_at.is_some())
    }

    /// Record a refusal; `false` when it could not be (decided meanwhile, storage).
    fn refuse(&self, tx: &Transaction, reason: RefusalReason, why: &str, now: SystemTime) -> bool {
        let state = TxState::Rejected(reason, why.to_owned());
        match self
            .storage
            .decide(&tx.transaction_id, &tx.key_id, &state, None, unix(now))
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(txid = %tx.transaction_id, error = %e, "proxy: cannot record the refusal");
                false
            }
        }
    }
}

/// The key of a CA this mef does not hold: the upstream CA's public key,
/// and every private-key operation refused. A proxy's front ends need an
/// [`Authority`] to name the CA and serve its chain; they never issue
/// (every request is held), and if anything tried, it fails here rather
/// than signing with some other key.
pub struct NoCaKey {
    spki: SubjectPublicKeyInfoOwned,
    kind: KeyKind,
}

const NO_CA_KEY: &str = "this mef is a SCEP proxy: it holds no CA key, the upstream CA issues";

impl NoCaKey {
    /// For the upstream CA certificate `ca`.
    pub fn of(ca: &Certificate) -> Result<Self, String> {
        use der::{Decode, Encode};
        let spki = ca.tbs_certificate.subject_public_key_info.clone();
        let der = spki.to_der().map_err(|e| format!("upstream CA key: {e}"))?;
        let r = spki::SubjectPublicKeyInfoRef::from_der(&der).map_err(|e| format!("upstream CA key: {e}"))?;
        let kind = enrolkit_keys::public_key_kind(&r).map_err(|e| format!("upstream CA key: {e}"))?;
        Ok(NoCaKey { spki, kind })
    }
}

impl Signer for NoCaKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn kind(&self) -> KeyKind {
        self.kind
    }
    fn sign(&self, _alg: SignatureAlgorithm, _message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Operation(NO_CA_KEY))
    }
    fn supports(&self, _alg: SignatureAlgorithm) -> bool {
        false
    }
}

/// The front ends' CA in proxy mode: the pinned upstream CA certificate
/// and the certificates above it, with [`NoCaKey`].
pub fn upstream_authority(ca: Certificate, chain: Vec<Certificate>) -> Result<Authority, String> {
    let key = NoCaKey::of(&ca)?;
    Ok(Authority {
        certificate: ca,
        key: Box::new(key),
        chain,
    })
}

/// Proxy mode holds every admitted request (SCEP and EST) for the relay.
pub fn hold_everything(cfg: &mut crate::config::Config) {
    cfg.scep.manual_approval = true;
    if let Some(e) = cfg.est.as_mut() {
        e.manual_approval = true;
    }
}

#[cfg(test)]
mod tests;
