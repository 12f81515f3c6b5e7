#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::storage::SqliteStorage;
use std::sync::Mutex;

/// What the relay asked upstream: "request" or "poll", and the CSR.
type Asked = Arc<Mutex<Vec<(&'static str, Vec<u8>)>>>;

/// An upstream answering from a script, recording what it was asked.
struct Scripted {
    answers: Arc<Mutex<Vec<Forwarded>>>,
    asked: Asked,
    revoked: Arc<Mutex<Vec<UpstreamRevocation>>>,
}

impl Scripted {
    fn answer(&self, kind: &'static str, csr: &[u8]) -> Forwarded {
        self.asked.lock().unwrap().push((kind, csr.to_vec()));
        let mut a = self.answers.lock().unwrap();
        if a.is_empty() {
            Forwarded::Pending
        } else {
            a.remove(0)
        }
    }
}

impl Upstream for Scripted {
    fn request(&self, csr: &[u8], _txid: &str) -> Forwarded {
        self.answer("request", csr)
    }
    fn poll(&self, csr: &[u8], _txid: &str) -> Forwarded {
        self.answer("poll", csr)
    }
    fn revocations(&self) -> Result<Vec<UpstreamRevocation>, String> {
        Ok(self.revoked.lock().unwrap().clone())
    }
}

fn certificate() -> Certificate {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors/scep/micromdm-client-caps-default.pem");
    enrolkit_files::read_certificate(&p).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    asked: Asked,
    answers: Arc<Mutex<Vec<Forwarded>>>,
    revoked: Arc<Mutex<Vec<UpstreamRevocation>>>,
    metrics: Arc<Metrics>,
    relay: Relay,
    hook_out: std::path::PathBuf,
    window: Duration,
}

impl World {
    /// What a restarted proxy has: a new relay on the same storage and upstream.
    fn restart(&mut self) {
        self.relay = Relay::new(
            self.storage.clone(),
            Box::new(Scripted {
                answers: self.answers.clone(),
                asked: self.asked.clone(),
                revoked: self.revoked.clone(),
            }),
            self.window,
            Notifier {
                hook: None,
                metrics: self.metrics.clone(),
            },
        );
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.asked.lock().unwrap().iter().map(|a| a.0).collect()
    }
}

fn world(answers: Vec<Forwarded>, window: Duration) -> World {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("db")).unwrap());
    let asked: Asked = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers));
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let metrics = Arc::new(Metrics::new());
    let hook_out = dir.path().join("hook.out");
    let hook = Verifier {
        command: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            format!(
                "echo \"$ENROL_PROXY_EVENT $ENROL_TRANSACTION_ID $ENROL_REASON\" > {}",
                hook_out.display()
            ),
        ],
        timeout: Duration::from_secs(10),
    };
    let relay = Relay::new(
        storage.clone(),
        Box::new(Scripted {
            answers: answers.clone(),
            asked: asked.clone(),
            revoked: revoked.clone(),
        }),
        window,
        Notifier {
            hook: Some(hook),
            metrics: metrics.clone(),
        },
    );
    World {
        _dir: dir,
        storage,
        asked,
        answers,
        revoked,
        metrics,
        relay,
        hook_out,
        window,
    }
}

fn hold(st: &dyn Storage, txid: &str, created: i64) -> Transaction {
    let tx = Transaction {
        transaction_id: txid.into(),
        key_id: format!("kid-{txid}"),
        subject: "CN=dev".into(),
        csr: format!("csr of {txid}").into_bytes(),
        state: TxState::Pending,
        created,
    };
    st.record(&tx, None, None, created).unwrap();
    tx
}

fn state(st: &dyn Storage, tx: &Transaction) -> TxState {
    st.transaction(&tx.transaction_id, &tx.key_id).unwrap().unwrap().state
}

#[test]
fn the_window_is_counted_from_when_the_request_was_recorded() {
    let w = Duration::from_secs(60);
    assert_eq!(step(1000, 1000, w, false), Step::Request);
    assert_eq!(step(1000, 1059, w, false), Step::Request);
    assert_eq!(step(1000, 1059, w, true), Step::Poll);
    assert_eq!(step(1000, 1060, w, false), Step::GiveUp);
    assert_eq!(step(1000, 1060, w, true), Step::GiveUp);
    assert_eq!(step(1000, 999, w, false), Step::Request);
    assert_eq!(step(0, i64::MAX - 1, Duration::MAX, true), Step::Poll);
}

#[test]
fn pending_upstream_is_polled_and_a_request_without_answer_is_sent_again() {
    let cert = certificate();
    let mut w = world(
        vec![
            Forwarded::Unreachable("connection refused".into()),
            Forwarded::Pending,
            Forwarded::Unreachable("timed out".into()),
            Forwarded::Pending,
            // After the restart.
            Forwarded::Pending,
            Forwarded::Issued(Box::new(cert)),
        ],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "t9", unix(now));
    for _ in 0..4 {
        w.relay.pass(now).unwrap();
    }
    // No answer to the request: sent again; PENDING: polled, also after a
    // poll got no answer (the upstream holds the transaction).
    assert_eq!(w.kinds(), ["request", "request", "poll", "poll"]);
    // A restarted proxy does not know the upstream answered PENDING: the
    // request once more (the same transaction upstream), then polls.
    w.restart();
    w.relay.pass(now).unwrap();
    w.relay.pass(now).unwrap();
    assert_eq!(w.kinds()[4..], ["request", "poll"]);
    assert!(matches!(state(w.storage.as_ref(), &tx), TxState::Issued(_)));
    assert_eq!(w.relay.pass(now).unwrap(), PassReport::default());
}

#[test]
fn a_request_the_proxy_cannot_forward_is_refused_without_an_upstream_request() {
    let w = world(
        vec![Forwarded::NotSent(
            "the CSR carries no challengePassword to forward".into(),
        )],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "t3", unix(now));
    let r = w.relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.refused), (0, 1));
    match state(w.storage.as_ref(), &tx) {
        TxState::Rejected(RefusalReason::UpstreamRefused, why) => {
            assert!(
                why.starts_with("not forwarded upstream: the CSR carries no challengePassword"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    let hook = std::fs::read_to_string(&w.hook_out).unwrap();
    assert!(hook.starts_with("not-forwarded t3 "), "{hook}");
    let m = w.metrics.encode().unwrap();
    assert!(m.contains("mef_proxy_events_total{event=\"not-forwarded\"} 1"), "{m}");
    assert!(!m.contains("event=\"upstream-request\""), "{m}");
}

#[test]
fn pending_upstream_stays_pending_then_the_certificate_is_recorded_once() {
    let cert = certificate();
    let w = world(
        vec![Forwarded::Pending, Forwarded::Issued(Box::new(cert.clone()))],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "t1", unix(now));
    let r = w.relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.pending, r.issued), (1, 1, 0));
    assert_eq!(state(w.storage.as_ref(), &tx), TxState::Pending);
    let r = w.relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.issued), (1, 1));
    let TxState::Issued(serial) = state(w.storage.as_ref(), &tx) else {
        panic!("not issued")
    };
    let stored = w.storage.certificate(&serial).unwrap().unwrap();
    assert_eq!(stored.der, der::Encode::to_der(&cert).unwrap());
    // Decided: later passes send nothing more upstream.
    assert_eq!(w.relay.pass(now).unwrap(), PassReport::default());
    let asked = w.asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    assert!(
        asked.iter().all(|c| c.1 == tx.csr),
        "the client's CSR is forwarded unchanged"
    );
    // PENDING upstream: the second message was a poll, not the request again.
    assert_eq!(asked.iter().map(|a| a.0).collect::<Vec<_>>(), ["request", "poll"]);
    assert!(std::fs::read_to_string(&w.hook_out).is_err(), "nothing to notify");
}

#[test]
fn an_upstream_failure_is_the_transactions_refusal_and_is_notified() {
    let w = world(
        vec![Forwarded::Refused("badRequest (name not allowed)".into())],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "t2", unix(now));
    assert_eq!(w.relay.pass(now).unwrap().refused, 1);
    match state(w.storage.as_ref(), &tx) {
        TxState::Rejected(RefusalReason::UpstreamRefused, why) => {
            assert!(why.contains("badRequest (name not allowed)"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let hook = std::fs::read_to_string(&w.hook_out).unwrap();
    assert!(
        hook.starts_with("upstream-refused t2 refused by the upstream CA: badRequest"),
        "{hook}"
    );
    let m = w.metrics.encode().unwrap();
    assert!(
        m.contains("mef_proxy_events_total{event=\"upstream-refused\"} 1"),
        "{m}"
    );
}

#[test]
fn past_its_window_a_transaction_is_not_forwarded_but_refused_and_notified() {
    let w = world(vec![], Duration::from_secs(60));
    let now = SystemTime::now();
    let old = hold(w.storage.as_ref(), "old", unix(now) - 61);
    let young = hold(w.storage.as_ref(), "young", unix(now) - 10);
    let r = w.relay.pass(now).unwrap();
    assert_eq!((r.refused, r.forwarded, r.pending), (1, 1, 1));
    assert_eq!(w.asked.lock().unwrap().as_slice(), [("request", young.csr.clone())]);
    match state(w.storage.as_ref(), &old) {
        TxState::Rejected(RefusalReason::PollingWindowExceeded, why) => {
            assert!(why.contains("polling window"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(w.storage.as_ref(), &young), TxState::Pending);
    let hook = std::fs::read_to_string(&w.hook_out).unwrap();
    assert!(hook.starts_with("polling-window-exceeded old "), "{hook}");
    let m = w.metrics.encode().unwrap();
    assert!(
        m.contains("mef_proxy_events_total{event=\"polling-window-exceeded\"} 1"),
        "{m}"
    );
}

#[test]
fn the_ca_key_of_a_proxy_refuses_to_sign() {
    let k = NoCaKey::of(&certificate()).unwrap();
    let e = k.sign(
        SignatureAlgorithm::rsa_with(enrolkit_keys::DigestAlgorithm::Sha256),
        b"x",
    );
    assert_eq!(e, Err(KeyError::Operation(NO_CA_KEY)));
}

#[test]
fn the_upstream_transaction_id_is_the_stored_requests_not_the_keys() {
    let now = unix(SystemTime::now());
    let tx = |txid: &str, csr: &[u8]| Transaction {
        transaction_id: txid.into(),
        key_id: "kid".into(),
        subject: "CN=dev".into(),
        csr: csr.to_vec(),
        state: TxState::Pending,
        created: now,
    };
    let first = upstream_transaction_id(&tx("est-kid", b"csr"));
    // Stable: derived from what is stored, so a restarted relay continues it.
    assert_eq!(first, upstream_transaction_id(&tx("est-kid", b"csr")));
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    // A re-enrolment with the same key, even with byte-identical CSR, is
    // another upstream transaction; so is another CSR.
    assert_ne!(first, upstream_transaction_id(&tx("est-re-kid-01", b"csr")));
    assert_ne!(first, upstream_transaction_id(&tx("est-kid", b"csr2")));
    // No ambiguity between where the transactionID ends and the key id begins.
    let mut a = tx("ab", b"x");
    a.key_id = "c".into();
    let mut b = tx("a", b"x");
    b.key_id = "bc".into();
    assert_ne!(upstream_transaction_id(&a), upstream_transaction_id(&b));
}

#[test]
fn a_relayed_certificate_the_upstream_revoked_is_revoked_here_and_its_held_renewal_refused() {
    let cert = certificate();
    let w = world(
        vec![Forwarded::Issued(Box::new(cert.clone()))],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "est-kid", unix(now));
    w.relay.pass(now).unwrap();
    let TxState::Issued(serial) = state(w.storage.as_ref(), &tx) else {
        panic!("not issued")
    };
    // A re-enrolment with that certificate is held before the proxy knows.
    let renewal = hold(w.storage.as_ref(), &format!("est-re-kid-{serial}"), unix(now));
    // Upstream revokes it (and something the proxy never relayed).
    *w.revoked.lock().unwrap() = vec![
        UpstreamRevocation {
            serial: "0badc0de".into(),
            at: 5,
            reason: 1,
        },
        UpstreamRevocation {
            serial: serial.clone(),
            at: unix(now) - 1,
            reason: 1,
        },
    ];
    let r = w.relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.refused), (0, 1), "the renewal was forwarded");
    let rec = w.storage.certificate(&serial).unwrap().unwrap();
    assert_eq!((rec.revoked_at, rec.reason), (Some(unix(now) - 1), Some(1)));
    assert!(w.storage.certificate("0badc0de").unwrap().is_none());
    assert!(matches!(
        state(w.storage.as_ref(), &renewal),
        TxState::Rejected(RefusalReason::CredentialRevoked, _)
    ));
    let m = w.metrics.encode().unwrap();
    assert!(
        m.contains("mef_proxy_events_total{event=\"upstream-revoked\"} 1"),
        "{m}"
    );
    // Learnt once: the next pass revokes nothing anew.
    assert_eq!(w.relay.learn_revocations(now), 0);
}

#[test]
fn the_upstream_crl_is_asked_at_most_once_per_interval() {
    let w = world(vec![], Duration::from_secs(3600));
    let relay = w.relay.crl_interval(Duration::from_secs(60));
    let now = SystemTime::now();
    relay.pass(now).unwrap();
    relay.pass(now + Duration::from_secs(59)).unwrap();
    relay.pass(now + Duration::from_secs(60)).unwrap();
    let m = w.metrics.encode().unwrap();
    assert!(m.contains("mef_proxy_events_total{event=\"upstream-crl\"} 2"), "{m}");
}

#[test]
fn an_upstream_text_with_control_characters_still_runs_the_hook() {
    let w = world(
        vec![Forwarded::Refused("badRequest (evil\0text\x1b[2J\nline)".into())],
        Duration::from_secs(3600),
    );
    let now = SystemTime::now();
    hold(w.storage.as_ref(), "t5", unix(now));
    assert_eq!(w.relay.pass(now).unwrap().refused, 1);
    let hook = std::fs::read_to_string(&w.hook_out).expect("the hook did not run");
    assert!(
        hook.starts_with("upstream-refused t5 refused by the upstream CA: badRequest (evil?text?[2J?line)"),
        "{hook}"
    );
    assert_eq!(env_safe("a\u{0}b\u{7f}c\u{85}"), "a?b?c?");
}

#[test]
fn a_pass_works_on_at_most_max_per_pass_transactions_each_in_its_turn() {
    let w = world(vec![], Duration::from_secs(3600));
    let relay = w.relay.max_per_pass(2);
    let now = SystemTime::now();
    // Recorded out of order: the relay goes by when each was recorded.
    let t3 = hold(w.storage.as_ref(), "c", unix(now) - 10);
    let t1 = hold(w.storage.as_ref(), "a", unix(now) - 30);
    let t4 = hold(w.storage.as_ref(), "d", unix(now) - 5);
    let t2 = hold(w.storage.as_ref(), "b", unix(now) - 20);
    let r = relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.pending), (2, 2));
    let csrs = |from: usize| -> Vec<Vec<u8>> { w.asked.lock().unwrap()[from..].iter().map(|a| a.1.clone()).collect() };
    assert_eq!(csrs(0), [t1.csr.clone(), t2.csr.clone()]);
    // Still pending upstream: the next pass goes on with the younger two
    // (long-pending ones do not starve the rest), then back to the oldest.
    relay.pass(now).unwrap();
    assert_eq!(csrs(2), [t3.csr.clone(), t4.csr.clone()]);
    relay.pass(now).unwrap();
    assert_eq!(csrs(4), [t1.csr.clone(), t2.csr.clone()]);
    // Once those are decided, the rest are all there is.
    for t in [&t1, &t2] {
        w.storage
            .decide(
                &t.transaction_id,
                &t.key_id,
                &TxState::Rejected(RefusalReason::UpstreamRefused, "x".into()),
                None,
                unix(now),
            )
            .unwrap();
    }
    relay.pass(now).unwrap();
    assert_eq!(csrs(6), [t3.csr.clone(), t4.csr.clone()]);
    // Those two filled the last pass: the next goes on after d with the
    // one recorded since, and fills up from the oldest; the one after
    // goes on from there.
    let t5 = hold(w.storage.as_ref(), "e", unix(now) - 1);
    relay.pass(now).unwrap();
    assert_eq!(csrs(8), [t5.csr.clone(), t3.csr.clone()]);
    relay.pass(now).unwrap();
    assert_eq!(csrs(10), [t4.csr.clone(), t5.csr.clone()]);
}

/// An upstream that panics on its first request, then answers as `inner`.
struct PanicsOnce {
    inner: Scripted,
    panicked: std::sync::atomic::AtomicBool,
}

impl Upstream for PanicsOnce {
    fn request(&self, csr: &[u8], txid: &str) -> Forwarded {
        if !self.panicked.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("upstream client bug");
        }
        self.inner.request(csr, txid)
    }
    fn poll(&self, csr: &[u8], txid: &str) -> Forwarded {
        self.inner.poll(csr, txid)
    }
    fn revocations(&self) -> Result<Vec<UpstreamRevocation>, String> {
        self.inner.revocations()
    }
}

#[test]
fn a_panicking_pass_is_caught_counted_and_the_next_pass_still_forwards() {
    let w = world(vec![], Duration::from_secs(3600));
    let relay = Relay::new(
        w.storage.clone(),
        Box::new(PanicsOnce {
            inner: Scripted {
                answers: w.answers.clone(),
                asked: w.asked.clone(),
                revoked: w.revoked.clone(),
            },
            panicked: std::sync::atomic::AtomicBool::new(false),
        }),
        w.window,
        Notifier {
            hook: None,
            metrics: w.metrics.clone(),
        },
    );
    let now = SystemTime::now();
    let tx = hold(w.storage.as_ref(), "p1", unix(now));
    let e = relay.supervised_pass(now).unwrap_err();
    assert!(e.contains("upstream client bug"), "{e}");
    let m = w.metrics.encode().unwrap();
    assert!(m.contains("mef_proxy_events_total{event=\"pass-panicked\"} 1"), "{m}");
    assert!(m.contains("mef_proxy_last_pass_timestamp_seconds 0\n"), "{m}");
    // The same relay, the next pass: the request goes upstream.
    let later = now + Duration::from_secs(1);
    let r = relay.supervised_pass(later).unwrap();
    assert_eq!((r.forwarded, r.pending), (1, 1));
    assert_eq!(w.asked.lock().unwrap().as_slice(), [("request", tx.csr.clone())]);
    let m = w.metrics.encode().unwrap();
    assert!(
        m.contains(&format!("mef_proxy_last_pass_timestamp_seconds {}\n", unix(later))),
        "{m}"
    );
}

#[test]
fn the_hold_limit_counts_pending_transactions_per_subject_and_in_all() {
    let w = world(vec![], Duration::from_secs(3600));
    let st = w.storage.as_ref();
    let limit = HoldLimit {
        per_client: 2,
        total: 3,
    };
    let held = |txid: &str, subject: &str| {
        let tx = Transaction {
            transaction_id: txid.into(),
            key_id: format!("kid-{txid}"),
            subject: subject.into(),
            csr: b"csr".to_vec(),
            state: TxState::Pending,
            created: 1,
        };
        st.record(&tx, None, None, 1).unwrap();
        tx
    };
    let a1 = held("a1", "CN=a");
    assert!(limit.admit(st, "CN=a").is_ok());
    held("a2", "CN=a");
    assert!(matches!(limit.admit(st, "CN=a"), Err(HoldRefused::Full(why)) if why.contains("max_pending_per_client")));
    assert!(limit.admit(st, "CN=b").is_ok());
    held("b1", "CN=b");
    assert!(matches!(limit.admit(st, "CN=c"), Err(HoldRefused::Full(why)) if why.contains("max_pending")));
    // Decided transactions no longer count.
    st.decide(
        &a1.transaction_id,
        &a1.key_id,
        &TxState::Rejected(RefusalReason::UpstreamRefused, "x".into()),
        None,
        2,
    )
    .unwrap();
    assert!(limit.admit(st, "CN=a").is_ok());
    assert!(limit.admit(st, "CN=c").is_ok());
}

/// Requests arriving together: each counts and records under the permit,
/// so the cap holds exactly (without it, every one passed the count
/// before any was recorded).
#[test]
fn concurrent_requests_do_not_overshoot_the_hold_limit() {
    let w = world(vec![], Duration::from_secs(3600));
    let limit = HoldLimit {
        per_client: 3,
        total: 1000,
    };
    let n = 12;
    let barrier = std::sync::Barrier::new(n);
    let held = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for i in 0..n {
            let (st, barrier, held) = (w.storage.as_ref(), &barrier, &held);
            scope.spawn(move || {
                barrier.wait();
                if let Ok(_permit) = limit.admit(st, "CN=same") {
                    let tx = Transaction {
                        transaction_id: format!("t{i}"),
                        key_id: format!("kid-{i}"),
                        subject: "CN=same".into(),
                        csr: b"csr".to_vec(),
                        state: TxState::Pending,
                        created: 1,
                    };
                    st.record_held(&tx, None, b"terms", 1).unwrap();
                    held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(held.into_inner(), 3);
    assert_eq!(w.storage.count_pending(Some("CN=same")).unwrap(), 3);
}

/// A database writer who inserts a pending request (or alters a held
/// one's record) does not get it certified upstream under the proxy's
/// credential: only records this MEF sealed are forwarded; the others are
/// refused, counted and told to the hook, and nothing is sent for them.
#[test]
fn only_requests_whose_record_this_mef_sealed_are_forwarded() {
    let w = world(vec![Forwarded::Pending], Duration::from_secs(3600));
    let key = [9u8; 32];
    let relay = w.relay.records(crate::held::RecordCheck::new(&key));
    let now = SystemTime::now();
    let sealed_names = |tx: &Transaction| {
        let names = crate::ra::IssueNames {
            subject: std::str::FromStr::from_str("CN=dev").unwrap(),
            dns: Vec::new(),
            ips: Vec::new(),
        };
        crate::held::HeldNamesSeal::new(&key).seal(tx, &names).unwrap()
    };
    // Held by this MEF: its names sealed under its key.
    let genuine = Transaction {
        transaction_id: "genuine".into(),
        key_id: "kid-g".into(),
        subject: "CN=dev".into(),
        csr: b"csr of genuine".to_vec(),
        state: TxState::Pending,
        created: unix(now) - 2,
    };
    w.storage
        .record_held(&genuine, None, &sealed_names(&genuine), genuine.created)
        .unwrap();
    // Inserted by hand: no record, a record in the clear, another's record.
    let inserted = hold(w.storage.as_ref(), "inserted", unix(now) - 1);
    let mut clear = genuine.clone();
    clear.transaction_id = "clear".into();
    w.storage
        .record_held(&clear, None, b"{\"subject\":\"CN=evil\"}", clear.created)
        .unwrap();
    let mut moved = genuine.clone();
    moved.transaction_id = "moved".into();
    w.storage
        .record_held(&moved, None, &sealed_names(&genuine), moved.created)
        .unwrap();
    let r = relay.pass(now).unwrap();
    assert_eq!((r.forwarded, r.refused), (1, 3), "{r:?}");
    assert_eq!(w.asked.lock().unwrap().as_slice(), [("request", genuine.csr.clone())]);
    for tx in [&inserted, &clear, &moved] {
        assert!(
            matches!(state(w.storage.as_ref(), tx), TxState::Rejected(_, why) if why.contains("does not open")),
            "{}",
            tx.transaction_id
        );
    }
    let m = w.metrics.encode().unwrap();
    assert!(m.contains("mef_proxy_events_total{event=\"record-altered\"} 3"), "{m}");
}
