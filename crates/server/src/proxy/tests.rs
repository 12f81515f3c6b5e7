#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::*;
use crate::storage::SqliteStorage;
use std::sync::Mutex;

/// An upstream answering from a script, counting what it was asked.
struct Scripted {
    answers: Mutex<Vec<Forwarded>>,
    asked: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Upstream for Scripted {
    fn forward(&self, csr: &[u8]) -> Forwarded {
        self.asked.lock().unwrap().push(csr.to_vec());
        let mut a = self.answers.lock().unwrap();
        if a.is_empty() {
            Forwarded::Pending
        } else {
            a.remove(0)
        }
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
    asked: Arc<Mutex<Vec<Vec<u8>>>>,
    metrics: Arc<Metrics>,
    relay: Relay,
    hook_out: std::path::PathBuf,
}

fn world(answers: Vec<Forwarded>, window: Duration) -> World {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("db")).unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
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
            answers: Mutex::new(answers),
            asked: asked.clone(),
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
        metrics,
        relay,
        hook_out,
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
    assert_eq!(step(1000, 1000, w), Step::Ask);
    assert_eq!(step(1000, 1059, w), Step::Ask);
    assert_eq!(step(1000, 1060, w), Step::GiveUp);
    assert_eq!(step(1000, 999, w), Step::Ask);
    assert_eq!(step(0, i64::MAX - 1, Duration::MAX), Step::Ask);
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
        asked.iter().all(|c| c == &tx.csr),
        "the client's CSR is forwarded unchanged"
    );
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
    assert_eq!(w.asked.lock().unwrap().as_slice(), std::slice::from_ref(&young.csr));
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
