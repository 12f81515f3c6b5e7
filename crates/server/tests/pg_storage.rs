//! What only `PgStorage` has to get right, against a private PostgreSQL
//! server (`enrolkit_testkit::postgres`): calls from inside async tasks (the
//! OpenSSL PSK callback runs on a tokio worker during the handshake), the
//! password's paths and its absence from errors, Unix sockets, the
//! connection limit, and recovery from dropped connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_server::storage::{Storage, Transaction, TxState};
use enrolkit_server::PgStorage;
use enrolkit_testkit::postgres::{Postgres, USER};
use std::sync::Arc;

fn open(pg: &Postgres, db: &str) -> PgStorage {
    PgStorage::open(&pg.url(db), Some(pg.password().as_bytes())).unwrap()
}

/// The sync client must not `block_on` on an executor thread ("Cannot start a
/// runtime from within a runtime"), nor drop its runtime there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_an_async_task_on_the_multi_thread_runtime() {
    let pg = Postgres::shared();
    println!("{}", pg.version());
    let db = pg.fresh_database();
    let st = open(&pg, &db);
    st.add_psk("kpm-async", &[5; 32], "", 1).unwrap();
    // Here, on a worker thread, as the PSK callback is.
    assert_eq!(st.psk("kpm-async").unwrap().unwrap().as_slice(), &[5; 32]);
    let st = Arc::new(st);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let st = st.clone();
            tokio::spawn(async move { st.psk("kpm-async").unwrap().map(|k| k.len()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Some(32));
    }
    // Dropped here too: closing pooled connections shuts their runtimes down.
    drop(st);
}

#[tokio::test(flavor = "current_thread")]
async fn usable_from_an_async_task_on_the_current_thread_runtime() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let st = open(&pg, &db);
    st.add_psk("kpm-ct", &[6; 16], "", 1).unwrap();
    assert_eq!(st.psk("kpm-ct").unwrap().unwrap().as_slice(), &[6; 16]);
    assert_eq!(st.next_crl_number().unwrap(), 1);
    drop(st);
}

#[test]
fn the_password_comes_from_the_url_or_the_caller_and_never_shows() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    // In the URL.
    let st = PgStorage::open(&pg.url_with_password(&db), None).unwrap();
    assert_eq!(st.next_crl_number().unwrap(), 1);
    assert_eq!(st.target(), format!("{USER}@127.0.0.1:{}/{db}", pg.port));
    assert!(!format!("{st:?}").contains(pg.password()));
    // Given separately, it wins over the URL's.
    let wrong_in_url = format!("postgresql://{USER}:not-this-one@127.0.0.1:{}/{db}", pg.port);
    let st = PgStorage::open(&wrong_in_url, Some(pg.password().as_bytes())).unwrap();
    assert_eq!(st.next_crl_number().unwrap(), 2);
    // Wrong or missing: refused, and the error does not repeat it.
    let secret = "s3cret-Wrong-Password";
    let e = PgStorage::open(&pg.url(&db), Some(secret.as_bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains(secret), "{e}");
    let e = PgStorage::open(
        &format!("postgresql://{USER}:{secret}@127.0.0.1:{}/{db}", pg.port),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains(secret), "{e}");
    assert!(PgStorage::open(&pg.url(&db), None).is_err());
    // Nobody listening: an error naming the target, not the password.
    let port = enrolkit_testkit::free_port().unwrap();
    let e = PgStorage::open(&format!("postgresql://{USER}:{secret}@127.0.0.1:{port}/x"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")) && !e.contains(secret), "{e}");
    // Not a URL at all.
    let e = PgStorage::open(&format!("postgresql://{USER}:{secret}@127.0.0.1:notaport/x"), None)
        .unwrap_err()
        .to_string();
    assert!(!e.contains(secret), "{e}");
}

#[test]
fn a_unix_socket_works() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let sock = pg.socket_dir().display().to_string();
    // libpq's key=value form, and the URL form with the directory percent-encoded.
    let kv = format!("host={sock} port={} user={USER} dbname={db}", pg.port);
    let st = PgStorage::open(&kv, None).unwrap();
    st.add_psk("kpm", &[1; 16], "", 1).unwrap();
    let url = format!("postgresql://{USER}@{}:{}/{db}", sock.replace('/', "%2F"), pg.port);
    let st = PgStorage::open(&url, None).unwrap();
    assert!(st.psk("kpm").unwrap().is_some());
}

fn connections(pg: &Postgres, db: &str) -> usize {
    pg.psql(
        db,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'enrolkit'"),
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn connections_are_pooled_and_limited() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let st = Arc::new(PgStorage::open_with(&pg.url(&db), Some(pg.password().as_bytes()), 3).unwrap());
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let st = st.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let id = format!("t{i}-{j}");
                    st.record(
                        &Transaction {
                            transaction_id: id.clone(),
                            key_id: "k".into(),
                            subject: String::new(),
                            csr: vec![],
                            state: TxState::Pending,
                            created: 1,
                        },
                        None,
                        None,
                        1,
                    )
                    .unwrap();
                    assert!(st.transaction(&id, "k").unwrap().is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(st.pending().unwrap().len(), 240);
    let open = connections(&pg, &db);
    assert!((1..=3).contains(&open), "{open} connections open, at most 3 allowed");
    drop(st);
    // Dropping the storage closes them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while connections(&pg, &db) != 0 {
        assert!(std::time::Instant::now() < deadline, "connections left open after drop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_dropped_connection_is_replaced() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let st = open(&pg, &db);
    assert_eq!(st.next_crl_number().unwrap(), 1);
    // The server ends every session of ours (a restart, a DBA, a failover).
    pg.psql(
        &db,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'enrolkit'"),
    );
    // The call that finds its connection dead may fail; the next one connects anew.
    let first = st.next_crl_number();
    let n = match first {
        Ok(n) => n,
        Err(e) => {
            println!("first call after the termination: {e}");
            st.next_crl_number().unwrap()
        }
    };
    assert_eq!(n, 2);
    assert_eq!(st.next_crl_number().unwrap(), 3);
}

#[test]
fn the_schema_is_what_the_design_says() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let _st = open(&pg, &db);
    // Blobs are bytea, times bigint.
    let cols = pg.psql(
        &db,
        "SELECT table_name || '.' || column_name || '=' || data_type FROM information_schema.columns \
         WHERE table_schema = 'public' AND (column_name IN ('hash', 'der', 'csr', 'sealed', 'sealed_ks', 'terms', 'created', 'not_after', 'used_at') \
         OR (table_name, column_name) = ('psks', 'key')) \
         ORDER BY 1",
    );
    for line in cols.lines() {
        let (col, ty) = line.split_once('=').unwrap();
        let want = match col.rsplit('.').next().unwrap() {
            "created" | "not_after" | "used_at" => "bigint",
            _ => "bytea",
        };
        assert_eq!(ty, want, "{col}");
    }
    assert!(cols.lines().count() >= 12, "{cols}");
}

/// PostgreSQL's errors become the database-neutral `StorageError` by
/// meaning: a unique violation a conflict, a wrong column type invalid
/// data, nobody listening busy (retryable), refused credentials other.
#[test]
fn postgres_errors_become_database_neutral_errors_by_meaning() {
    use enrolkit_server::storage::{Backend, StorageError};
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let mut c = ::postgres::Client::connect(&pg.url_with_password(&db), ::postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO t VALUES ('a', 1)")
        .unwrap();
    let e = StorageError::from(c.execute("INSERT INTO t VALUES ('a', 2)", &[]).unwrap_err());
    assert!(matches!(e, StorageError::Conflict(_)), "{e:?}");
    let e = StorageError::from(c.execute("INSERT INTO t VALUES ('b', NULL)", &[]).unwrap_err());
    assert!(
        matches!(
            e,
            StorageError::Other {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{e:?}"
    );
    let row = c.query_one("SELECT k FROM t", &[]).unwrap();
    let e = StorageError::from(row.try_get::<_, i64>(0).unwrap_err());
    assert!(matches!(e, StorageError::Corrupt { .. }), "{e:?}");
    let e = StorageError::from(c.execute("SELECT 1 / (n - 1) FROM t", &[]).unwrap_err());
    assert!(matches!(e, StorageError::Corrupt { .. }), "{e:?}");
    let port = enrolkit_testkit::free_port().unwrap();
    let e = PgStorage::open(&format!("postgresql://{USER}@127.0.0.1:{port}/x"), None).unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::Busy {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    let e = PgStorage::open(&pg.url(&db), Some(b"not the password")).unwrap_err();
    assert!(matches!(e, StorageError::Other { .. }), "{e:?}");
    assert!(e.to_string().starts_with("PostgreSQL: cannot connect to"), "{e}");
}
