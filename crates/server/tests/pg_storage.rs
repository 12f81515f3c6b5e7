//! What only `PgStorage` has to get right, against a private PostgreSQL
//! server (`enrolkit_testkit::postgres`): calls from inside async tasks (the
//! OpenSSL PSK callback runs on a tokio worker during the handshake), the
//! password's paths and its absence from errors, Unix sockets, the
//! connection limit, and recovery from dropped connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_server::storage::{Storage, StoredKey, Transaction, TxState};
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
    assert_eq!(
        st.psk("kpm-async").unwrap().unwrap().key,
        StoredKey::Sealed(vec![5; 32])
    );
    let st = Arc::new(st);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let st = st.clone();
            tokio::spawn(async move { st.psks().unwrap().len() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1);
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
    assert_eq!(st.psk("kpm-ct").unwrap().unwrap().key, StoredKey::Sealed(vec![6; 16]));
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

/// A PostgreSQL database of version 3 held PSKs in the clear: opening it
/// adds the `sealed` column, and sealing (what `mef`'s `open_storage` runs
/// on every open) replaces each clear key and rewrites the table, so the
/// table's file no longer holds it. A cluster of its own: VACUUM FULL keeps
/// row versions that a transaction running elsewhere in the cluster may
/// still see, and the shared one serves the other tests meanwhile.
#[test]
fn an_old_database_with_clear_psks_is_sealed_on_open() {
    use enrolkit_server::handshake::PskSealer;
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let key: Vec<u8> = (0..32u8).map(|i| 0x5a ^ i.wrapping_mul(11)).collect();
    drop(open(&pg, &db));
    // Back to version 3: no sealed column (nor the handshake triggers,
    // which came later), the key in `key`.
    let hex_key = key.iter().map(|b| format!("{b:02x}")).collect::<String>();
    pg.psql(
        &db,
        &format!(
            "DROP FUNCTION enrolkit_handshake_generation() CASCADE; \
             DELETE FROM meta WHERE key = 'handshake_generation'; \
             ALTER TABLE psks DROP COLUMN sealed; \
             UPDATE meta SET value = 3 WHERE key = 'schema_version'; \
             INSERT INTO psks (identity, key, label, created) VALUES ('kpm-old', '\\x{hex_key}', 'old', 1); \
             CHECKPOINT;"
        ),
    );
    let file = |pg: &Postgres| {
        let rel = pg.psql(&db, "SELECT pg_relation_filepath('psks')");
        std::fs::read(pg.data_dir().join(rel.trim())).unwrap()
    };
    let contains = |hay: &[u8]| hay.windows(key.len()).any(|w| w == key.as_slice());
    assert!(contains(&file(&pg)), "the fixture holds the key in the clear");
    let st = open(&pg, &db);
    assert_eq!(
        pg.psql(&db, "SELECT value FROM meta WHERE key = 'schema_version'")
            .trim(),
        enrolkit_server::storage::SCHEMA_VERSION.to_string(),
        "upgraded to the current schema"
    );
    assert_eq!(
        pg.psql(&db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'handshake_%'")
            .trim(),
        "6",
        "the handshake triggers added"
    );
    assert!(st.handshake_generation().unwrap().is_some());
    assert!(matches!(st.psk("kpm-old").unwrap().unwrap().key, StoredKey::Clear(_)));
    let sealer = PskSealer::new(&[7; 32]).unwrap();
    assert_eq!(sealer.seal_stored(&st).unwrap(), 1);
    assert_eq!(sealer.seal_stored(&st).unwrap(), 0, "once");
    let stored = st.psk("kpm-old").unwrap().unwrap();
    assert!(matches!(stored.key, StoredKey::Sealed(_)), "{stored:?}");
    assert_eq!(sealer.open(&stored).unwrap().as_slice(), key.as_slice());
    pg.psql(&db, "CHECKPOINT");
    assert!(!contains(&file(&pg)), "the table's file still holds the clear key");
    assert_eq!(
        pg.psql(&db, "SELECT count(*) FROM psks WHERE sealed IS NULL OR length(key) > 0")
            .trim(),
        "0"
    );
}

/// Certificates made for the TLS tests.
mod pki {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};

    pub fn key() -> PKey<Private> {
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
    }

    fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, sans: &[&str]) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
        if issuer.is_none() {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap())
                .unwrap();
        } else {
            let mut san = SubjectAlternativeName::new();
            for s in sans {
                if s.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(s);
                } else {
                    san.dns(s);
                }
            }
            let ext = san
                .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256()).unwrap();
        b.build()
    }

    /// A CA certificate and its key.
    pub fn ca(cn: &str) -> (X509, PKey<Private>) {
        let k = key();
        (cert(cn, &k, None, &[]), k)
    }

    /// A server certificate for `sans` from `ca`: PEM certificate and key.
    pub fn server(ca: &(X509, PKey<Private>), sans: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let k = key();
        let c = cert("postgres test server", &k, Some((&ca.0, &ca.1)), sans);
        (c.to_pem().unwrap(), k.private_key_to_pem_pkcs8().unwrap())
    }
}

/// TLS to the database: a cluster with `ssl=on` that rejects plain TCP,
/// reached with `require` and with `verify-full` against the CA that made
/// its certificate; `verify-full` refuses a certificate from another CA,
/// and one that does not name the host.
#[test]
fn storage_over_tls_and_the_server_certificate_checked_under_verify_full() {
    use enrolkit_server::storage::postgres::PgTls;
    let ca = pki::ca("database CA");
    let other_ca = pki::ca("another CA");
    let (cert, key) = pki::server(&ca, &["127.0.0.1", "db.example.net"]);
    let pg = Postgres::start_tls(enrolkit_testkit::postgres::ServerTls {
        cert_pem: &cert,
        key_pem: &key,
    });
    let db = pg.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, other_file) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca_file, ca.0.to_pem().unwrap()).unwrap();
    std::fs::write(&other_file, other_ca.0.to_pem().unwrap()).unwrap();
    let password = Some(pg.password().as_bytes());
    let url = pg.url(&db);
    let verify = |ca_file: &std::path::Path| PgTls::VerifyFull {
        ca_file: ca_file.to_path_buf(),
    };

    // Plain TCP is rejected by this cluster: whoever gets in used TLS.
    let e = PgStorage::open(&url, password).unwrap_err().to_string();
    assert!(e.contains("no encryption") || e.contains("rejects connection"), "{e}");

    let st = PgStorage::open_tls(&url, password, &verify(&ca_file), 2).unwrap();
    st.add_psk("kpm-tls", &[0x42; 40], "", 1).unwrap();
    assert_eq!(st.psks().unwrap().len(), 1);
    let on_tls = pg.psql(
        &db,
        &format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{db}' AND a.application_name = 'enrolkit'"
        ),
    );
    let (tls, all) = on_tls.trim().split_once('|').unwrap();
    assert!(all != "0" && tls == all, "connections over TLS / all: {on_tls}");
    drop(st);

    // require: encrypted, the certificate not checked (another CA's is fine).
    let st = PgStorage::open_tls(&url, password, &PgTls::Require, 1).unwrap();
    assert_eq!(st.psks().unwrap().len(), 1);
    drop(st);

    // verify-full against the wrong CA: refused before any query.
    let e = PgStorage::open_tls(&url, password, &verify(&other_file), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate verify failed"), "{e}");
    assert!(!e.contains(pg.password()), "{e}");

    // The right CA, but the certificate must name the host connected to.
    let named = |host: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user={USER} dbname={db}",
            pg.port
        )
    };
    let st = PgStorage::open_tls(&named("db.example.net"), password, &verify(&ca_file), 1).unwrap();
    assert_eq!(st.psks().unwrap().len(), 1);
    drop(st);
    let e = PgStorage::open_tls(&named("other.example.net"), password, &verify(&ca_file), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate verify failed"), "{e}");

    // A CA file that is missing or holds no certificate: an error at once.
    let e = PgStorage::open_tls(&url, password, &verify(&dir.path().join("absent.pem")), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("database_sslrootcert"), "{e}");
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    assert!(PgStorage::open_tls(&url, password, &verify(&dir.path().join("empty.pem")), 1).is_err());
    // A URL asking for TLS without database_sslmode is refused, not downgraded.
    let e = PgStorage::open(&format!("{url}?sslmode=require"), password)
        .unwrap_err()
        .to_string();
    assert!(e.contains("database_sslmode"), "{e}");
}

/// What an operator does by hand in psql moves the handshake generation
/// too: a TRUNCATE (which row triggers miss), a renamed identity, a DELETE
/// from a session whose search_path does not name the schema.
#[test]
fn changes_made_by_hand_move_the_handshake_generation() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let st = open(&pg, &db);
    st.add_psk("kpm-a", b"sealed", "", 1).unwrap();
    st.add_psk("kpm-b", b"sealed", "", 1).unwrap();
    let g = || st.handshake_generation().unwrap().unwrap();
    let before = g();
    pg.psql(&db, "UPDATE psks SET identity = 'kpm-renamed' WHERE identity = 'kpm-a'");
    let renamed = g();
    assert!(renamed > before, "rename: {before} -> {renamed}");
    pg.psql(
        &db,
        "SET search_path = pg_catalog; DELETE FROM public.psks WHERE identity = 'kpm-b'",
    );
    let deleted = g();
    assert!(
        deleted > renamed,
        "delete under another search_path: {renamed} -> {deleted}"
    );
    pg.psql(&db, "TRUNCATE psks");
    let truncated = g();
    assert!(truncated > deleted, "truncate: {deleted} -> {truncated}");
    assert!(st.psks().unwrap().is_empty());
}
