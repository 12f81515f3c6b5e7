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
//! | the proxy speaks SCEP (PKCS#7) to the SCEP server | [`Upstream::forward`]: a PKCSReq signed by the proxy's RA certificate (RA-POP) |
//! | a "pending" answer is indicated to the Client, which polls | the transaction stays pending; the client's retries are answered from storage |
//! | failure, or the polling window exceeded, "will be notified" | [`Relay`]: the transaction is refused, a log line, the hook, `mef_proxy_events_total` |
//!
//! Everything the relay needs survives a restart: the pending transaction
//! (its CSR and when it was recorded) is in storage, and the upstream
//! transactionID is derived from the CSR's public key, so the next pass
//! after a restart continues the same upstream transaction.

use crate::metrics::Metrics;
use crate::ra::{unix, RefusalReason, Verifier};
use crate::storage::{Storage, Transaction, TxState};
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
}

/// The upstream SCEP server, as the relay uses it (the binary implements
/// it with `enrolkit_client::ScepSession::relay`; tests with a double).
pub trait Upstream: Send + Sync {
    /// Send `csr` (DER, the client's own) upstream, or ask again about it.
    fn forward(&self, csr: &[u8]) -> Forwarded;
}

/// What to do with one pending transaction on a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Forward it (or ask again): its window is open.
    Ask,
    /// Its polling window ran out: stop polling, refuse, notify.
    GiveUp,
}

/// The step for a transaction recorded at `created` (Unix seconds) at `now`,
/// with a polling window of `window`.
pub fn step(created: i64, now: i64, window: Duration) -> Step {
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(created) >= window {
        Step::GiveUp
    } else {
        Step::Ask
    }
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
            let env = [
                ("ENROL_SUBJECT", tx.subject.as_str()),
                ("ENROL_TRANSACTION_ID", tx.transaction_id.as_str()),
                ("ENROL_PROXY_EVENT", event),
                ("ENROL_REASON", reason),
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

/// The relay: forwards pending transactions upstream and records the answers.
pub struct Relay {
    storage: Arc<dyn Storage>,
    upstream: Box<dyn Upstream>,
    window: Duration,
    notifier: Notifier,
}

impl Relay {
    /// A relay over `storage`'s pending transactions, polling each for at
    /// most `window` after it was recorded.
    pub fn new(storage: Arc<dyn Storage>, upstream: Box<dyn Upstream>, window: Duration, notifier: Notifier) -> Self {
        Relay {
            storage,
            upstream,
            window,
            notifier,
        }
    }

    /// One pass over every pending transaction at `now`. A transaction
    /// decided meanwhile (by another proxy instance sharing the database)
    /// is left as it was decided: `decide` refuses a second decision.
    pub fn pass(&self, now: SystemTime) -> Result<PassReport, String> {
        let mut report = PassReport::default();
        let pending = self
            .storage
            .pending()
            .map_err(|e| format!("pending transactions: {e}"))?;
        for tx in pending {
            match step(tx.created, unix(now), self.window) {
                Step::GiveUp => {
                    let why = format!(
                        "no certificate from the upstream CA within the polling window ({} s): the proxy stopped polling",
                        self.window.as_secs()
                    );
                    if self.refuse(&tx, RefusalReason::PollingWindowExceeded, &why, now) {
                        report.refused += 1;
                        self.notifier.notify(&tx, "polling-window-exceeded", &why);
                    }
                }
                Step::Ask => {
                    report.forwarded += 1;
                    self.notifier.metrics.proxy_event("upstream-request");
                    match self.upstream.forward(&tx.csr) {
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
