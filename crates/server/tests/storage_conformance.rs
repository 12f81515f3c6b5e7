//! The `Storage` contract, run against both implementations: SQLite (a file
//! in a temporary directory) and PostgreSQL (a private server started by the
//! test, `enrolkit_testkit::postgres`, one fresh database per test). Every
//! case is one function taking a `Backend`; the `conformance!` macro makes a
//! `sqlite::<case>` and a `postgres::<case>` test of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_server::ra::RefusalReason;
use enrolkit_server::storage::{
    GbaBootstrap, IssuedCert, KeRecord, PendingCursor, Storage, StorageError, StoredKey, Transaction, TxState,
    SCHEMA_VERSION,
};
use enrolkit_server::{PgStorage, SqliteStorage};
use enrolkit_testkit::postgres::Postgres;
use std::sync::{Arc, Barrier};

const NOW: i64 = 1_700_000_000;

/// One database, and a way to open further handles on it (another process's view).
struct Backend {
    storage: Arc<dyn Storage>,
    reopen: Box<dyn Fn() -> Arc<dyn Storage> + Send + Sync>,
    // Kept alive for the test: the temporary directory or the server.
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Backend {
    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mef.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).unwrap());
        Backend {
            storage,
            reopen: Box::new(move || Arc::new(SqliteStorage::open(&path).unwrap())),
            _keep: Box::new(dir),
        }
    }

    fn postgres() -> Backend {
        let pg = Postgres::shared();
        println!("PostgreSQL under test: {}", pg.version());
        let db = pg.fresh_database();
        let (url, password) = (pg.url(&db), pg.password().to_owned());
        let storage: Arc<dyn Storage> = Arc::new(PgStorage::open(&url, Some(password.as_bytes())).unwrap());
        Backend {
            storage,
            reopen: Box::new(move || Arc::new(PgStorage::open(&url, Some(password.as_bytes())).unwrap())),
            _keep: Box::new(pg),
        }
    }
}

impl std::ops::Deref for Backend {
    type Target = dyn Storage;
    fn deref(&self) -> &(dyn Storage + 'static) {
        self.storage.as_ref()
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $case() { super::$case(&super::Backend::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $case() { super::$case(&super::Backend::postgres()); } )*
        }
    };
}

conformance!(
    challenge_is_used_once,
    challenge_expiry_and_revocation,
    challenge_ids_and_duplicates,
    record_is_all_or_nothing,
    transactions_pending_and_decisions,
    pending_counts_and_the_oldest_first,
    certificates_and_revocation,
    crl_numbers_are_monotonic,
    crl_numbers_under_concurrency,
    psks,
    rspf_tokens_and_enrolments,
    enrolment_records,
    gba_bootstraps,
    held_terms,
    generated_keys_are_taken_once,
    concurrent_challenge_use_has_one_winner,
    concurrent_token_use_has_one_winner,
    concurrent_records_stand_alone,
    reopening_keeps_state,
    challenge_labels_are_unique_and_bindings_kept,
    psk_bindings_are_kept,
    rejections_keep_their_typed_reason,
    the_handshake_generation_moves_with_what_handshakes_use,
    cmp_confirmations_are_claimed_once,
);

/// Version 3: a non-empty label names one challenge (empty ones repeat);
/// the names bound to a challenge come back with it while it is usable.
fn challenge_labels_are_unique_and_bindings_kept(s: &Backend) {
    let binding = r#"{"subject":"CN=dev-1","dns":["dev-1.example.com"]}"#;
    s.add_bound_challenge(b"b1", "dev-1", Some(binding), NOW, None).unwrap();
    conflict(s.add_challenge(b"b2", "dev-1", NOW, None));
    s.add_challenge(b"e1", "", NOW, None).unwrap();
    s.add_challenge(b"e2", "", NOW, None).unwrap();
    let c = s.challenge(b"b1", NOW).unwrap().expect("usable");
    assert_eq!((c.label.as_str(), c.names.as_deref()), ("dev-1", Some(binding)));
    assert_eq!(s.challenge(b"e1", NOW).unwrap().map(|c| c.names), Some(None));
    assert!(
        s.challenge(b"b2", NOW).unwrap().is_none(),
        "the refused one was not stored"
    );
    let listed = s.list_challenges().unwrap();
    assert_eq!(listed.first().map(|c| c.names.as_deref()), Some(Some(binding)));
    // Used: no longer usable, binding or not.
    s.record(&tx("tb", "k", TxState::Pending), Some(b"b1"), None, NOW)
        .unwrap();
    assert!(s.challenge(b"b1", NOW).unwrap().is_none());
}

fn psk_bindings_are_kept(s: &Backend) {
    s.add_bound_psk("kpm-bound", &[1; 16], "", Some("{\"subject\":\"CN=x\"}"), NOW)
        .unwrap();
    s.add_psk("kpm-free", &[2; 16], "", NOW).unwrap();
    assert_eq!(
        s.psk_names("kpm-bound").unwrap().as_deref(),
        Some("{\"subject\":\"CN=x\"}")
    );
    assert_eq!(s.psk_names("kpm-free").unwrap(), None);
    assert_eq!(s.psk_names("nobody").unwrap(), None);
    let listed = s.list_psks().unwrap();
    assert!(listed.iter().any(|p| p.identity == "kpm-bound" && p.names.is_some()));
}

fn rejections_keep_their_typed_reason(s: &Backend) {
    s.record(&tx("tr", "k", TxState::Pending), None, None, NOW).unwrap();
    s.decide(
        "tr",
        "k",
        &TxState::Rejected(RefusalReason::NameNotAuthorised, "no".into()),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        s.transaction("tr", "k").unwrap().unwrap().state,
        TxState::Rejected(RefusalReason::NameNotAuthorised, "no".into())
    );
}

fn tx(id: &str, key: &str, state: TxState) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        key_id: key.into(),
        subject: format!("CN={id}"),
        csr: vec![0x30, 0x03, 0x02, 0x01, 0x07, 0xff, 0x00],
        state,
        created: NOW,
    }
}

fn cert(serial: &str) -> IssuedCert {
    IssuedCert {
        serial: serial.into(),
        subject: format!("CN=cert-{serial}"),
        der: vec![0x30, 0x82, 0x00, 0x00, 0x00, 0xde, 0xad],
        not_after: NOW + 86_400,
        revoked_at: None,
        reason: None,
    }
}

fn ke(id: &str, enrolee: &str, created: i64, expires: i64) -> KeRecord {
    KeRecord {
        relative_ke_id: format!("KE{id}"),
        relative_kre_id: format!("KRE{id}"),
        enrolee: enrolee.into(),
        enrolee_id: Some(format!("C{id}")),
        created,
        expires,
        sealed: vec![1, 2, 3, 0, 255, id.len() as u8],
        completions: String::new(),
        parent: Some(String::new()),
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn conflict<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

fn challenge_is_used_once(s: &Backend) {
    let h = b"challenge-hash-1".as_slice();
    let id = s.add_challenge(h, "device-1", NOW, None).unwrap();
    assert!(s.challenge_usable(h, NOW).unwrap());
    assert!(!s.challenge_usable(b"unknown", NOW).unwrap());
    s.record(&tx("t1", "k1", TxState::Pending), Some(h), None, NOW + 1)
        .unwrap();
    assert!(!s.challenge_usable(h, NOW + 1).unwrap());
    let l = s.list_challenges().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].id, l[0].label.as_str(), l[0].created), (id, "device-1", NOW));
    assert_eq!(l[0].used_at, Some(NOW + 1));
    assert_eq!(l[0].state(NOW + 2), "used");
    // The second use is refused, and leaves nothing behind.
    not_found(s.record(
        &tx("t2", "k2", TxState::Issued("02".into())),
        Some(h),
        Some(&cert("02")),
        NOW + 2,
    ));
    assert!(s.transaction("t2", "k2").unwrap().is_none());
    assert!(s.certificate("02").unwrap().is_none());
    // An unknown challenge is refused the same way.
    not_found(s.record(&tx("t3", "k3", TxState::Pending), Some(b"never added"), None, NOW));
    assert!(s.transaction("t3", "k3").unwrap().is_none());
}

fn challenge_expiry_and_revocation(s: &Backend) {
    let (a, b, c) = (b"a".as_slice(), b"b".as_slice(), b"c".as_slice());
    s.add_challenge(a, "expiring", NOW, Some(NOW + 10)).unwrap();
    let bid = s.add_challenge(b, "revoked", NOW, None).unwrap();
    s.add_challenge(c, "fresh", NOW, Some(NOW + 100)).unwrap();
    assert!(s.challenge_usable(a, NOW + 9).unwrap());
    assert!(
        !s.challenge_usable(a, NOW + 10).unwrap(),
        "usable until, not at, its expiry"
    );
    not_found(s.record(&tx("t1", "k", TxState::Pending), Some(a), None, NOW + 10));
    s.revoke_challenge(bid).unwrap();
    assert!(!s.challenge_usable(b, NOW).unwrap());
    not_found(s.record(&tx("t2", "k", TxState::Pending), Some(b), None, NOW));
    not_found(s.revoke_challenge(9_999));
    let states: Vec<_> = s
        .list_challenges()
        .unwrap()
        .iter()
        .map(|c| (c.label.clone(), c.state(NOW + 10), c.expires, c.revoked))
        .collect();
    assert_eq!(
        states,
        vec![
            ("expiring".into(), "expired", Some(NOW + 10), false),
            ("revoked".into(), "revoked", None, true),
            ("fresh".into(), "usable", Some(NOW + 100), false),
        ]
    );
    // Still usable before its expiry, once.
    s.record(&tx("t3", "k", TxState::Pending), Some(c), None, NOW + 99)
        .unwrap();
    assert!(s.transaction("t3", "k").unwrap().is_some());
}

fn challenge_ids_and_duplicates(s: &Backend) {
    let ids: Vec<i64> = (0..5)
        .map(|i| s.add_challenge(format!("h{i}").as_bytes(), "", NOW, None).unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert_eq!(
        s.list_challenges().unwrap().iter().map(|c| c.id).collect::<Vec<_>>(),
        ids
    );
    assert!(
        s.add_challenge(b"h0", "again", NOW, None).is_err(),
        "a hash is stored once"
    );
    assert_eq!(s.list_challenges().unwrap().len(), 5);
}

fn record_is_all_or_nothing(s: &Backend) {
    let h = b"atomic".as_slice();
    s.add_challenge(h, "", NOW, None).unwrap();
    s.record(
        &tx("t0", "k", TxState::Issued("aa".into())),
        None,
        Some(&cert("aa")),
        NOW,
    )
    .unwrap();
    // A certificate serial that exists already: the whole record fails and the challenge stays usable.
    assert!(s
        .record(
            &tx("t1", "k", TxState::Issued("aa".into())),
            Some(h),
            Some(&cert("aa")),
            NOW
        )
        .is_err());
    assert!(s.challenge_usable(h, NOW).unwrap());
    assert!(s.transaction("t1", "k").unwrap().is_none());
    // A transaction that exists already: the same.
    assert!(s
        .record(
            &tx("t0", "k", TxState::Issued("bb".into())),
            Some(h),
            Some(&cert("bb")),
            NOW
        )
        .is_err());
    assert!(s.challenge_usable(h, NOW).unwrap());
    assert!(s.certificate("bb").unwrap().is_none());
    // An issued state naming a certificate that is not there.
    assert!(s
        .record(&tx("t2", "k", TxState::Issued("cc".into())), Some(h), None, NOW)
        .is_err());
    assert!(s.challenge_usable(h, NOW).unwrap());
    // And then it works, all of it.
    s.record(
        &tx("t3", "k", TxState::Issued("dd".into())),
        Some(h),
        Some(&cert("dd")),
        NOW,
    )
    .unwrap();
    assert!(!s.challenge_usable(h, NOW).unwrap());
    assert_eq!(
        s.transaction("t3", "k").unwrap().unwrap().state,
        TxState::Issued("dd".into())
    );
    assert!(s.certificate("dd").unwrap().is_some());
}

fn transactions_pending_and_decisions(s: &Backend) {
    let p1 = Transaction {
        created: NOW + 1,
        ..tx("p1", "key-a", TxState::Pending)
    };
    let p2 = Transaction {
        created: NOW + 2,
        ..tx("p2", "key-a", TxState::Pending)
    };
    // The same transactionID under another key is another transaction.
    let p1b = Transaction {
        created: NOW + 3,
        ..tx("p1", "key-b", TxState::Pending)
    };
    s.record(&p2, None, None, NOW).unwrap();
    s.record(&p1, None, None, NOW).unwrap();
    s.record(&p1b, None, None, NOW).unwrap();
    s.record(
        &tx(
            "done",
            "key-a",
            TxState::Rejected(RefusalReason::NameNotAuthorised, "bad".into()),
        ),
        None,
        None,
        NOW,
    )
    .unwrap();
    let got = s.transaction("p1", "key-a").unwrap().unwrap();
    assert_eq!(
        (
            got.transaction_id.as_str(),
            got.key_id.as_str(),
            got.subject.as_str(),
            &got.csr,
            &got.state,
            got.created
        ),
        ("p1", "key-a", "CN=p1", &p1.csr, &TxState::Pending, NOW + 1)
    );
    assert!(s.transaction("p1", "key-c").unwrap().is_none());
    assert_eq!(
        s.transaction("done", "key-a").unwrap().unwrap().state,
        TxState::Rejected(RefusalReason::NameNotAuthorised, "bad".into())
    );
    let pending: Vec<_> = s
        .pending()
        .unwrap()
        .into_iter()
        .map(|t| (t.transaction_id, t.key_id))
        .collect();
    assert_eq!(
        pending,
        vec![
            ("p1".to_string(), "key-a".to_string()),
            ("p2".into(), "key-a".into()),
            ("p1".into(), "key-b".into())
        ]
    );
    // Approve: the certificate and the state together.
    s.decide("p1", "key-a", &TxState::Issued("0a".into()), Some(&cert("0a")), NOW + 5)
        .unwrap();
    assert_eq!(
        s.transaction("p1", "key-a").unwrap().unwrap().state,
        TxState::Issued("0a".into())
    );
    assert_eq!(s.certificate("0a").unwrap().unwrap().subject, "CN=cert-0a");
    // Once decided, never again — and a refused decision stores no certificate.
    not_found(s.decide("p1", "key-a", &TxState::Issued("0b".into()), Some(&cert("0b")), NOW));
    assert!(s.certificate("0b").unwrap().is_none());
    not_found(s.decide(
        "nope",
        "key-a",
        &TxState::Rejected(RefusalReason::OperatorRejected, "x".into()),
        None,
        NOW,
    ));
    // Reject.
    s.decide(
        "p2",
        "key-a",
        &TxState::Rejected(RefusalReason::OperatorRejected, "rejected by the operator".into()),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        s.transaction("p2", "key-a").unwrap().unwrap().state,
        TxState::Rejected(RefusalReason::OperatorRejected, "rejected by the operator".into())
    );
    let left: Vec<_> = s.pending().unwrap().into_iter().map(|t| t.key_id).collect();
    assert_eq!(left, vec!["key-b".to_string()]);
}

/// What the proxy's caps and relay read: pending transactions counted (in
/// all, per subject) and a few at a time in the order recorded, resuming
/// after a cursor, without loading every row.
fn pending_counts_and_the_oldest_first(s: &Backend) {
    let held = |id: &str, subject: &str, created: i64| {
        let mut t = tx(id, "k", TxState::Pending);
        t.subject = subject.into();
        t.created = created;
        s.record(&t, None, None, created).unwrap();
        t
    };
    assert_eq!(s.count_pending(None).unwrap(), 0);
    held("c", "CN=a", NOW + 2);
    let a = held("a", "CN=a", NOW);
    held("b", "CN=b", NOW + 1);
    held("d", "CN=a", NOW + 3);
    assert_eq!(s.count_pending(None).unwrap(), 4);
    assert_eq!(s.count_pending(Some("CN=a")).unwrap(), 3);
    assert_eq!(s.count_pending(Some("CN=none")).unwrap(), 0);
    let ids = |v: Vec<Transaction>| v.into_iter().map(|t| t.transaction_id).collect::<Vec<_>>();
    let first = s.pending_after(None, 2).unwrap();
    assert_eq!(ids(first.clone()), ["a", "b"]);
    assert_eq!(ids(s.pending_after(None, 10).unwrap()), ["a", "b", "c", "d"]);
    // Resuming after the last one taken.
    let after_b = PendingCursor::of(&first[1]);
    assert_eq!(ids(s.pending_after(Some(&after_b), 10).unwrap()), ["c", "d"]);
    let after_d = PendingCursor::of(&s.pending_after(Some(&after_b), 10).unwrap()[1]);
    assert!(s.pending_after(Some(&after_d), 10).unwrap().is_empty());
    // The same time: ordered by transactionID, then key id.
    let mut e2 = held("e", "CN=e", NOW + 3);
    e2.key_id = "k2".into();
    s.record(&e2, None, None, NOW + 3).unwrap();
    let at_d = ids(s.pending_after(Some(&after_b), 10).unwrap());
    assert_eq!(at_d, ["c", "d", "e", "e"]);
    assert_eq!(ids(s.pending_after(Some(&after_d), 1).unwrap()), ["e"]);
    let e1 = PendingCursor::of(&s.pending_after(Some(&after_d), 1).unwrap()[0]);
    assert_eq!(e1.key_id, "k");
    let rest = s.pending_after(Some(&e1), 5).unwrap();
    assert_eq!((rest.len(), rest[0].key_id.as_str()), (1, "k2"));
    for k in ["k", "k2"] {
        s.decide(
            "e",
            k,
            &TxState::Rejected(RefusalReason::UpstreamRefused, "no".into()),
            None,
            NOW + 4,
        )
        .unwrap();
    }
    s.decide(
        &a.transaction_id,
        &a.key_id,
        &TxState::Rejected(RefusalReason::UpstreamRefused, "no".into()),
        None,
        NOW + 4,
    )
    .unwrap();
    assert_eq!(s.count_pending(Some("CN=a")).unwrap(), 2);
    assert_eq!(ids(s.pending_after(None, 2).unwrap()), ["b", "c"]);
}

fn certificates_and_revocation(s: &Backend) {
    for serial in ["01", "02", "03"] {
        s.record(
            &tx(&format!("t{serial}"), "k", TxState::Issued(serial.into())),
            None,
            Some(&cert(serial)),
            NOW,
        )
        .unwrap();
    }
    let c = s.certificate("02").unwrap().unwrap();
    let want = cert("02");
    assert_eq!(
        (c.serial, c.subject, c.der, c.not_after, c.revoked_at, c.reason),
        (want.serial, want.subject, want.der, want.not_after, None, None)
    );
    assert!(s.certificate("04").unwrap().is_none());
    assert!(s.revoked().unwrap().is_empty());
    s.revoke("03", NOW + 10, 1).unwrap();
    s.revoke("01", NOW + 20, 255).unwrap();
    not_found(s.revoke("03", NOW + 30, 4));
    not_found(s.revoke("04", NOW, 0));
    let r: Vec<_> = s
        .revoked()
        .unwrap()
        .into_iter()
        .map(|c| (c.serial, c.revoked_at, c.reason))
        .collect();
    assert_eq!(
        r,
        vec![
            ("03".to_string(), Some(NOW + 10), Some(1)),
            ("01".to_string(), Some(NOW + 20), Some(255))
        ]
    );
    assert_eq!(s.certificate("03").unwrap().unwrap().reason, Some(1));
    assert!(s.certificate("02").unwrap().unwrap().revoked_at.is_none());
}

fn crl_numbers_are_monotonic(s: &Backend) {
    let n: Vec<u64> = (0..5).map(|_| s.next_crl_number().unwrap()).collect();
    assert_eq!(n, vec![1, 2, 3, 4, 5]);
    assert_eq!((s.reopen)().next_crl_number().unwrap(), 6, "kept in the database");
}

fn crl_numbers_under_concurrency(s: &Backend) {
    const THREADS: usize = 8;
    const EACH: usize = 10;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            // Half share the handle (and its connections), half have their own.
            let st = if i % 2 == 0 { s.storage.clone() } else { (s.reopen)() };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut got = Vec::new();
                for _ in 0..EACH {
                    let n = st.next_crl_number().unwrap();
                    if let Some(&last) = got.last() {
                        assert!(n > last, "{n} after {last} in one thread");
                    }
                    got.push(n);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=(THREADS * EACH) as u64).collect::<Vec<_>>());
}

fn psks(s: &Backend) {
    s.add_psk("kpm-b", &[0xbb; 32], "device b", NOW).unwrap();
    s.add_psk("kpm-a", &[0xaa; 16], "device a", NOW + 1).unwrap();
    assert!(s.add_psk("kpm-a", &[0x11; 16], "again", NOW).is_err());
    // The storage keeps what it is given (the caller's sealed form), as sealed.
    assert_eq!(s.psk("kpm-a").unwrap().unwrap().key, StoredKey::Sealed(vec![0xaa; 16]));
    assert_eq!(s.psk("kpm-b").unwrap().unwrap().key, StoredKey::Sealed(vec![0xbb; 32]));
    assert!(s.psk("kpm-c").unwrap().is_none());
    let mut all: Vec<_> = s.psks().unwrap().into_iter().map(|p| (p.identity, p.key)).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        all,
        vec![
            ("kpm-a".to_string(), StoredKey::Sealed(vec![0xaa; 16])),
            ("kpm-b".to_string(), StoredKey::Sealed(vec![0xbb; 32]))
        ]
    );
    // Nothing clear to seal: a sealed key is never replaced.
    assert_eq!(s.seal_psks(&[("kpm-a".into(), vec![1; 40])]).unwrap(), 0);
    assert_eq!(s.psk("kpm-a").unwrap().unwrap().key, StoredKey::Sealed(vec![0xaa; 16]));
    let l: Vec<_> = s
        .list_psks()
        .unwrap()
        .into_iter()
        .map(|p| (p.identity, p.label, p.created))
        .collect();
    assert_eq!(
        l,
        vec![
            ("kpm-a".to_string(), "device a".to_string(), NOW + 1),
            ("kpm-b".into(), "device b".into(), NOW)
        ]
    );
    s.remove_psk("kpm-a").unwrap();
    not_found(s.remove_psk("kpm-a"));
    assert!(s.psk("kpm-a").unwrap().is_none());
    assert_eq!(s.list_psks().unwrap().len(), 1);
}

fn rspf_tokens_and_enrolments(s: &Backend) {
    let t1 = s.add_rspf_token(b"tok-1", "alice", NOW, None).unwrap();
    let t2 = s.add_rspf_token(b"tok-2", "alice", NOW, Some(NOW + 10)).unwrap();
    let t3 = s.add_rspf_token(b"tok-3", "alice", NOW, None).unwrap();
    assert!(t1 < t2 && t2 < t3);
    assert!(s.add_rspf_token(b"tok-1", "bob", NOW, None).is_err());
    // Another enrolee's token is refused and stays unused.
    not_found(s.record_enrolment(&ke("1", "bob", NOW, NOW + 100), Some(b"tok-1"), NOW));
    s.record_enrolment(&ke("1", "alice", NOW, NOW + 100), Some(b"tok-1"), NOW + 1)
        .unwrap();
    not_found(s.record_enrolment(&ke("2", "alice", NOW, NOW + 100), Some(b"tok-1"), NOW + 2));
    not_found(s.record_enrolment(&ke("2", "alice", NOW, NOW + 100), Some(b"tok-2"), NOW + 10));
    not_found(s.record_enrolment(&ke("2", "alice", NOW, NOW + 100), Some(b"unknown"), NOW));
    s.revoke_rspf_token(t3).unwrap();
    not_found(s.record_enrolment(&ke("2", "alice", NOW, NOW + 100), Some(b"tok-3"), NOW));
    not_found(s.revoke_rspf_token(12_345));
    assert!(s.enrolment("KE2").unwrap().is_none(), "refusals record nothing");
    // A RelativeKeId recorded already: Conflict, and the token is not consumed.
    conflict(s.record_enrolment(&ke("1", "alice", NOW, NOW + 100), Some(b"tok-2"), NOW + 3));
    // Nor is one with a RelativeKreId recorded already.
    let mut dup_kre = ke("9", "alice", NOW, NOW + 100);
    dup_kre.relative_kre_id = "KRE1".into();
    conflict(s.record_enrolment(&dup_kre, Some(b"tok-2"), NOW + 3));
    s.record_enrolment(&ke("2", "alice", NOW, NOW + 100), Some(b"tok-2"), NOW + 4)
        .unwrap();
    // Without a token (e.g. authorised by the Kpm).
    s.record_enrolment(&ke("3", "carol", NOW, NOW + 100), None, NOW)
        .unwrap();
    let l: Vec<_> = s
        .list_rspf_tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.label.clone(), t.used_at, t.revoked, t.state(NOW + 5)))
        .collect();
    assert_eq!(
        l,
        vec![
            (t1, "alice".to_string(), Some(NOW + 1), false, "used"),
            (t2, "alice".into(), Some(NOW + 4), false, "used"),
            (t3, "alice".into(), None, true, "revoked"),
        ]
    );
}

fn enrolment_records(s: &Backend) {
    let a = ke("A", "alice", NOW, NOW + 100);
    s.record_enrolment(&a, None, NOW).unwrap();
    s.record_enrolment(&ke("B", "alice", NOW + 5, NOW + 50), None, NOW)
        .unwrap();
    // Same creation time as B: the later recorded is the latest. C was
    // made on A's Kre.
    let mut c = ke("C", "alice", NOW + 5, NOW + 200);
    c.parent = Some("KEA".into());
    s.record_enrolment(&c, None, NOW).unwrap();
    s.record_enrolment(&ke("D", "bob", NOW + 1, NOW + 20), None, NOW)
        .unwrap();
    // E as a record from before parents were kept.
    let mut e = ke("E", "erin", NOW, NOW + 100);
    e.enrolee_id = None;
    e.parent = None;
    s.record_enrolment(&e, None, NOW).unwrap();
    assert_eq!(s.enrolment("KEA").unwrap().as_ref(), Some(&a));
    assert_eq!(s.enrolment("KEC").unwrap().as_ref(), Some(&c));
    // A re-enrolment whose parent was withdrawn meanwhile is not recorded.
    let mut orphan = ke("O", "alice", NOW + 6, NOW + 50);
    orphan.parent = Some("KEGONE".into());
    not_found(s.record_enrolment(&orphan, None, NOW));
    assert!(s.enrolment("KEO").unwrap().is_none());
    assert_eq!(s.enrolment("KEE").unwrap().as_ref(), Some(&e));
    assert_eq!(s.enrolment_by_kre("KREA").unwrap().as_ref(), Some(&a));
    assert!(s.enrolment("KEZ").unwrap().is_none());
    assert!(s.enrolment_by_kre("KEA").unwrap().is_none());
    let latest = |who: &str, now: i64| s.latest_enrolment(who, now).unwrap().map(|r| r.relative_ke_id);
    assert_eq!(latest("alice", NOW + 10).as_deref(), Some("KEC"));
    assert_eq!(latest("bob", NOW + 19).as_deref(), Some("KED"));
    assert_eq!(latest("bob", NOW + 20), None, "expired");
    assert_eq!(latest("nobody", NOW), None);
    s.complete_enrolment("KEA", "certificate", true, NOW + 7).unwrap();
    s.complete_enrolment("KEA", "maf", false, NOW + 8).unwrap();
    not_found(s.complete_enrolment("KEZ", "maf", true, NOW));
    assert_eq!(
        s.enrolment("KEA").unwrap().unwrap().completions,
        format!("certificate=ok@{}\nmaf=failed@{}\n", NOW + 7, NOW + 8)
    );
    let order: Vec<_> = s.enrolments().unwrap().into_iter().map(|r| r.relative_ke_id).collect();
    assert_eq!(order, vec!["KEA", "KEE", "KED", "KEB", "KEC"]);
    s.delete_enrolment("KEE").unwrap();
    not_found(s.delete_enrolment("KEE"));
    // Purge what expired at or before now: B (NOW+50) and D (NOW+20).
    assert_eq!(s.purge_enrolments(NOW + 50).unwrap(), 2);
    assert_eq!(s.purge_enrolments(NOW + 50).unwrap(), 0);
    let left: Vec<_> = s.enrolments().unwrap().into_iter().map(|r| r.relative_ke_id).collect();
    assert_eq!(left, vec!["KEA", "KEC"]);
}

/// Every change of a PSK, an Enrolment Key record or a GBA bootstrap
/// moves the handshake generation (the views reload on it); what
/// handshakes do not use (a completion, a token, a certificate) does not,
/// and neither does a failed write.
fn the_handshake_generation_moves_with_what_handshakes_use(s: &Backend) {
    let g = || {
        s.handshake_generation()
            .unwrap()
            .expect("this backend keeps a generation")
    };
    let mut last = g();
    let mut moved = |what: &str, expected: bool| {
        let now = g();
        assert_eq!(now != last, expected, "{what}: {last} -> {now}");
        assert!(now >= last, "{what}: went back");
        last = now;
    };
    s.add_psk("kpm-g", b"sealed", "", NOW).unwrap();
    moved("PSK added", true);
    conflict_or_not_found(s.add_psk("kpm-g", b"sealed", "", NOW));
    moved("PSK refused", false);
    s.seal_psks(&[("kpm-g".into(), b"resealed".to_vec())]).unwrap();
    moved("PSK sealed (none was clear)", false);
    s.remove_psk("kpm-g").unwrap();
    moved("PSK removed", true);
    s.record_enrolment(&ke("G", "gina", NOW, NOW + 100), None, NOW).unwrap();
    moved("enrolment recorded", true);
    s.complete_enrolment("KEG", "certificate", true, NOW).unwrap();
    moved("completion", false);
    s.add_rspf_token(b"token-g", "gina", NOW, None).unwrap();
    moved("token", false);
    s.delete_enrolment("KEG").unwrap();
    moved("enrolment withdrawn", true);
    s.record_enrolment(&ke("H", "gina", NOW, NOW + 1), None, NOW).unwrap();
    moved("enrolment recorded", true);
    assert_eq!(s.purge_enrolments(NOW + 1).unwrap(), 1);
    moved("expired enrolment purged", true);
    s.add_gba_bootstrap(&GbaBootstrap {
        btid: "g@bsf.example".into(),
        impi: "impi-g".into(),
        expires: NOW + 10,
        sealed_ks: vec![1],
    })
    .unwrap();
    moved("GBA bootstrap", true);
    s.record(
        &tx("tg", "k", TxState::Issued("0g".into())),
        None,
        Some(&cert("0g")),
        NOW,
    )
    .unwrap();
    moved("certificate", false);
}

/// A refused duplicate: either refusal the backends give.
fn conflict_or_not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    assert!(
        matches!(r, Err(StorageError::NotFound(_) | StorageError::Conflict(_))),
        "{r:?}"
    );
}

fn gba_bootstraps(s: &Backend) {
    let b = GbaBootstrap {
        btid: "rand@bsf.example".into(),
        impi: "001010000000001@ims.example".into(),
        expires: NOW + 3600,
        sealed_ks: vec![9, 8, 7, 0, 6],
    };
    s.add_gba_bootstrap(&b).unwrap();
    conflict(s.add_gba_bootstrap(&GbaBootstrap {
        impi: "other".into(),
        ..b.clone()
    }));
    assert_eq!(s.gba_bootstrap(&b.btid).unwrap().as_ref(), Some(&b));
    assert!(s.gba_bootstrap("other@bsf.example").unwrap().is_none());
}

fn held_terms(s: &Backend) {
    let h = b"held-challenge".as_slice();
    s.add_challenge(h, "", NOW, None).unwrap();
    s.record_held(&tx("h1", "k", TxState::Pending), Some(h), b"terms\0one", NOW)
        .unwrap();
    assert!(
        !s.challenge_usable(h, NOW).unwrap(),
        "record_held consumes the challenge"
    );
    assert_eq!(
        s.held_terms("h1", "k").unwrap().as_deref(),
        Some(b"terms\0one".as_slice())
    );
    assert_eq!(s.transaction("h1", "k").unwrap().unwrap().state, TxState::Pending);
    // Used challenge: nothing recorded.
    not_found(s.record_held(&tx("h2", "k", TxState::Pending), Some(h), b"x", NOW));
    assert!(s.transaction("h2", "k").unwrap().is_none());
    assert!(s.held_terms("h2", "k").unwrap().is_none());
    // Existing transaction: refused, terms unchanged.
    assert!(s
        .record_held(&tx("h1", "k", TxState::Pending), None, b"two", NOW)
        .is_err());
    assert_eq!(
        s.held_terms("h1", "k").unwrap().as_deref(),
        Some(b"terms\0one".as_slice())
    );
    // Recorded without terms.
    s.record(&tx("r1", "k", TxState::Pending), None, None, NOW).unwrap();
    assert!(s.held_terms("r1", "k").unwrap().is_none());
    // Terms are kept after the decision.
    s.decide("h1", "k", &TxState::Issued("f1".into()), Some(&cert("f1")), NOW)
        .unwrap();
    assert_eq!(
        s.held_terms("h1", "k").unwrap().as_deref(),
        Some(b"terms\0one".as_slice())
    );
}

/// CMP certificates waiting for their certConf: due by deadline, the
/// oldest first, a deadline replaced when recorded again, and each settled
/// (confirmed, or claimed for revocation) by exactly one caller.
fn cmp_confirmations_are_claimed_once(s: &Backend) {
    s.await_confirmation("0a", "t-a", NOW + 10).unwrap();
    s.await_confirmation("0b", "t-b", NOW + 5).unwrap();
    s.await_confirmation("0c", "t-c", NOW + 50).unwrap();
    assert!(s.unconfirmed_due(NOW + 4, 10).unwrap().is_empty());
    assert_eq!(
        s.unconfirmed_due(NOW + 10, 10).unwrap(),
        [("0b".to_owned(), "t-b".to_owned()), ("0a".to_owned(), "t-a".to_owned())]
    );
    assert_eq!(s.unconfirmed_due(NOW + 10, 1).unwrap().len(), 1);
    // Delivered again (an approved request collected): a new deadline.
    s.await_confirmation("0a", "t-a2", NOW + 100).unwrap();
    assert_eq!(
        s.unconfirmed_due(NOW + 10, 10).unwrap(),
        [("0b".to_owned(), "t-b".to_owned())]
    );
    assert!(s.confirmation_settled("0b").unwrap());
    assert!(!s.confirmation_settled("0b").unwrap(), "settled once");
    assert!(!s.confirmation_settled("0z").unwrap());
    // Two claimants at once: one wins.
    let wins: usize = std::thread::scope(|t| {
        let a = t.spawn(|| s.confirmation_settled("0c").unwrap());
        let b = t.spawn(|| s.confirmation_settled("0c").unwrap());
        usize::from(a.join().unwrap()) + usize::from(b.join().unwrap())
    });
    assert_eq!(wins, 1);
    assert_eq!(
        s.unconfirmed_due(NOW + 1000, 10).unwrap(),
        [("0a".to_owned(), "t-a2".to_owned())]
    );
    // Extended only while it waits.
    assert!(s.extend_confirmation("0a", NOW + 2000).unwrap());
    assert!(s.unconfirmed_due(NOW + 1000, 10).unwrap().is_empty());
    assert!(
        !s.extend_confirmation("0b", NOW + 2000).unwrap(),
        "settled: not recorded again"
    );
    assert!(s
        .unconfirmed_due(NOW + 5000, 10)
        .unwrap()
        .iter()
        .all(|(x, _)| x != "0b"));
    // Taken off the list and revoked together, once.
    s.record(
        &tx("t-d", "k", TxState::Issued("0d".into())),
        None,
        Some(&cert("0d")),
        NOW,
    )
    .unwrap();
    s.await_confirmation("0d", "t-d", NOW).unwrap();
    assert_eq!(s.revoke_unconfirmed("0d", NOW + 1, 5).unwrap(), Some(true));
    assert_eq!(s.revoke_unconfirmed("0d", NOW + 2, 5).unwrap(), None, "claimed once");
    let c = s.certificate("0d").unwrap().unwrap();
    assert_eq!((c.revoked_at, c.reason), (Some(NOW + 1), Some(5)));
    // Extended by a delivery after the sweep read it as due: not revoked.
    s.record(
        &tx("t-f", "k", TxState::Issued("0f".into())),
        None,
        Some(&cert("0f")),
        NOW,
    )
    .unwrap();
    s.await_confirmation("0f", "t-f", NOW).unwrap();
    assert!(s.extend_confirmation("0f", NOW + 100).unwrap());
    assert_eq!(s.revoke_unconfirmed("0f", NOW + 1, 5).unwrap(), None);
    assert_eq!(s.certificate("0f").unwrap().unwrap().revoked_at, None);
    assert!(s.confirmation_settled("0f").unwrap());
    // Revoked meanwhile by its holder: claimed, its reason kept.
    s.record(
        &tx("t-e", "k", TxState::Issued("0e".into())),
        None,
        Some(&cert("0e")),
        NOW,
    )
    .unwrap();
    s.await_confirmation("0e", "t-e", NOW).unwrap();
    s.revoke("0e", NOW + 1, 1).unwrap();
    assert_eq!(s.revoke_unconfirmed("0e", NOW + 2, 5).unwrap(), Some(false));
    assert_eq!(s.certificate("0e").unwrap().unwrap().reason, Some(1));
    assert!(s.unconfirmed_due(NOW + 10, 10).unwrap().is_empty());
}

fn generated_keys_are_taken_once(s: &Backend) {
    not_found(s.store_generated_key("g1", "k", b"sealed-0"));
    s.record(&tx("g1", "k", TxState::Pending), None, None, NOW).unwrap();
    assert!(s.take_generated_key("g1", "k").unwrap().is_none());
    s.store_generated_key("g1", "k", b"sealed-1").unwrap();
    s.store_generated_key("g1", "k", b"sealed-2").unwrap();
    not_found(s.store_generated_key("g1", "other-key", b"sealed"));
    assert_eq!(
        s.take_generated_key("g1", "k").unwrap().as_deref(),
        Some(b"sealed-2".as_slice())
    );
    assert!(s.take_generated_key("g1", "k").unwrap().is_none());
    // Concurrent takers: exactly one gets it.
    for round in 0..3 {
        let id = format!("g-race-{round}");
        s.record(&tx(&id, "k", TxState::Pending), None, None, NOW).unwrap();
        s.store_generated_key(&id, "k", b"the key").unwrap();
        let got = race(s, 8, move |st| st.take_generated_key(&id, "k").unwrap());
        assert_eq!(got.iter().filter(|g| g.is_some()).count(), 1, "round {round}: {got:?}");
    }
}

/// `n` threads, half on the shared handle and half on their own, run `f` at once.
fn race<T: Send + 'static>(
    s: &Backend,
    n: usize,
    f: impl Fn(&dyn Storage) -> T + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let st = if i % 2 == 0 { s.storage.clone() } else { (s.reopen)() };
            let (barrier, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(st.as_ref())
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn concurrent_challenge_use_has_one_winner(s: &Backend) {
    const THREADS: usize = 12;
    for round in 0..5 {
        let hash = format!("race-{round}").into_bytes();
        s.add_challenge(&hash, &format!("race-{round}"), NOW, None).unwrap();
        let h = hash.clone();
        let results = race(s, THREADS, move |st| {
            let me = std::thread::current().id();
            let id = format!("{round}-{me:?}");
            let serial = format!("{round:02x}{:016x}", {
                use std::hash::{Hash, Hasher};
                let mut d = std::collections::hash_map::DefaultHasher::new();
                me.hash(&mut d);
                d.finish()
            });
            st.record(
                &tx(&id, "k", TxState::Issued(serial.clone())),
                Some(&h),
                Some(&cert(&serial)),
                NOW,
            )
            .map(|()| (id, serial))
        });
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, StorageError::NotFound(_)),
                    "a loser is told NotFound, got {e:?}"
                );
            }
        }
        let (id, serial) = winners[0];
        assert_eq!(
            s.transaction(id, "k").unwrap().unwrap().state,
            TxState::Issued(serial.clone())
        );
        assert!(s.certificate(serial).unwrap().is_some());
        assert!(!s.challenge_usable(&hash, NOW).unwrap());
    }
    // Each round consumed its challenge, once.
    let used = s
        .list_challenges()
        .unwrap()
        .iter()
        .filter(|c| c.used_at.is_some())
        .count();
    assert_eq!(used, 5);
}

/// Records made at once on one handle (SQLite commits them together) each
/// succeed or fail on their own: a failed one leaves nothing behind (no
/// certificate, its challenge still usable) and takes no other with it.
fn concurrent_records_stand_alone(s: &Backend) {
    const THREADS: usize = 16;
    for round in 0..4 {
        s.record(&tx(&format!("dup-{round}"), "k", TxState::Pending), None, None, NOW)
            .unwrap();
        let shared = format!("shared-{round}").into_bytes();
        s.add_challenge(&shared, &format!("shared-{round}"), NOW, None).unwrap();
        for i in 0..THREADS {
            s.add_challenge(format!("own-{round}-{i}").as_bytes(), "", NOW, None)
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (st, barrier, shared) = (s.storage.clone(), barrier.clone(), shared.clone());
                std::thread::spawn(move || {
                    let own = format!("own-{round}-{i}").into_bytes();
                    let serial = format!("{round:02x}{i:02x}");
                    // Kinds: 0 own challenge, 1 an existing transaction ID, 2 the shared challenge, 3 none.
                    let (id, challenge) = match i % 4 {
                        0 => (format!("own-{round}-{i}"), Some(own)),
                        1 => (format!("dup-{round}"), Some(own)),
                        2 => (format!("shared-{round}-{i}"), Some(shared)),
                        _ => (format!("free-{round}-{i}"), None),
                    };
                    barrier.wait();
                    let r = st.record(
                        &tx(&id, "k", TxState::Issued(serial.clone())),
                        challenge.as_deref(),
                        Some(&cert(&serial)),
                        NOW,
                    );
                    (i, id, serial, r.is_ok())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (i, id, serial, ok) in &results {
            let own = format!("own-{round}-{i}").into_bytes();
            match i % 4 {
                0 | 3 => {
                    assert!(ok, "round {round}: record {i} failed");
                    assert_eq!(
                        s.transaction(id, "k").unwrap().unwrap().state,
                        TxState::Issued(serial.clone())
                    );
                }
                1 => {
                    assert!(!ok, "round {round}: a second transaction {id} was recorded");
                    assert!(s.certificate(serial).unwrap().is_none());
                    assert!(s.challenge_usable(&own, NOW).unwrap());
                }
                _ => assert_eq!(s.certificate(serial).unwrap().is_some(), *ok),
            }
            assert_eq!(s.certificate(serial).unwrap().is_some(), *ok);
            if i % 4 == 0 {
                assert!(!s.challenge_usable(&own, NOW).unwrap());
            }
        }
        let shared_winners = results.iter().filter(|(i, _, _, ok)| i % 4 == 2 && *ok).count();
        assert_eq!(shared_winners, 1, "round {round}: {results:?}");
        assert!(!s.challenge_usable(&shared, NOW).unwrap());
        assert_eq!(
            s.transaction(&format!("dup-{round}"), "k").unwrap().unwrap().state,
            TxState::Pending
        );
    }
}

fn concurrent_token_use_has_one_winner(s: &Backend) {
    const THREADS: usize = 10;
    for round in 0..3 {
        let token = format!("tok-race-{round}").into_bytes();
        s.add_rspf_token(&token, "alice", NOW, None).unwrap();
        let results = race(s, THREADS, move |st| {
            let id = format!("{round}-{:?}", std::thread::current().id());
            st.record_enrolment(&ke(&id, "alice", NOW, NOW + 100), Some(&token), NOW)
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StorageError::NotFound(_)))));
    }
    assert_eq!(s.enrolments().unwrap().len(), 3);
}

fn reopening_keeps_state(s: &Backend) {
    s.add_challenge(b"keep", "kept", NOW, None).unwrap();
    s.add_psk("kpm", &[7; 20], "", NOW).unwrap();
    s.record(
        &tx("t", "k", TxState::Issued("0f".into())),
        None,
        Some(&cert("0f")),
        NOW,
    )
    .unwrap();
    // Opening again runs the schema again (IF NOT EXISTS) and sees everything.
    let again = (s.reopen)();
    let third = (s.reopen)();
    assert!(again.challenge_usable(b"keep", NOW).unwrap());
    assert_eq!(again.psk("kpm").unwrap().unwrap().key, StoredKey::Sealed(vec![7; 20]));
    assert_eq!(again.certificate("0f").unwrap().unwrap().serial, "0f");
    // A write through one handle is seen by another.
    third.revoke("0f", NOW, 4).unwrap();
    assert_eq!(s.certificate("0f").unwrap().unwrap().reason, Some(4));
}

/// The PostgreSQL database as a client, to do what only an older or newer
/// enrolkit would.
fn pg_admin(url: &str, password: &str) -> ::postgres::Client {
    let mut config: ::postgres::Config = url.parse().unwrap();
    config.password(password);
    config.connect(::postgres::NoTls).unwrap()
}

#[test]
fn postgres_schema_is_versioned() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let (url, password) = (pg.url(&db), pg.password().to_owned());
    let open = || PgStorage::open(&url, Some(password.as_bytes()));
    let version = |c: &mut ::postgres::Client| -> i64 {
        c.query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .unwrap()
            .get(0)
    };
    drop(open().unwrap());
    let mut admin = pg_admin(&url, &password);
    assert_eq!(version(&mut admin), SCHEMA_VERSION);

    // A database as version 1 left it: no parent column, no version row,
    // one enrolment. Opening upgrades it and keeps the record (parent unknown).
    admin
        .batch_execute(
            "ALTER TABLE rspf_enrolments DROP COLUMN parent; DELETE FROM meta WHERE key = 'schema_version';
             INSERT INTO rspf_enrolments (relative_ke_id, relative_kre_id, enrolee, created, expires, sealed)
                 VALUES ('KEOLD', 'KREOLD', 'alice', 1, 2, '\\x01');",
        )
        .unwrap();
    let s = open().unwrap();
    assert_eq!(version(&mut admin), SCHEMA_VERSION);
    assert_eq!(s.enrolment("KEOLD").unwrap().unwrap().parent, None);
    let mut k = ke("NEW", "alice", NOW, NOW + 1);
    k.parent = Some("KEOLD".into());
    s.record_enrolment(&k, None, NOW).unwrap();
    assert_eq!(s.enrolment("KENEW").unwrap(), Some(k));
    drop(s);

    // A newer enrolkit's database is refused, and left as it was.
    admin
        .execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
            &[&(SCHEMA_VERSION + 1)],
        )
        .unwrap();
    match open() {
        Err(StorageError::NewerSchema { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {:?}", other.map(|_| "a storage")),
    }
    assert_eq!(version(&mut admin), SCHEMA_VERSION + 1);
}
