//! `mef` with its state in PostgreSQL (`mef init --database-url`), against a
//! private server this test starts (`enrolkit_testkit::postgres`): `enrol
//! scep enrol` with a one-time challenge (a second use is refused), and EST
//! enrolments authenticated by a pre-shared key, whose lookup runs in the
//! OpenSSL PSK callback, on an async worker thread, during the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::postgres::Postgres;
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mef_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

fn enrol(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_enrol"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn openssl_verify(ca: &Path, cert: &Path) {
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

fn count(pg: &Postgres, db: &str, sql: &str) -> u32 {
    pg.psql(db, sql).trim().parse().unwrap()
}

#[test]
fn mef_on_postgres_scep_one_time_challenge_and_est_psk() {
    let pg = Postgres::shared();
    println!("PostgreSQL: {}", pg.version());
    let db = pg.fresh_database();
    let secrets = tempfile::tempdir().unwrap();
    let pwfile = secrets.path().join("db.password");
    std::fs::write(&pwfile, format!("{}\n", pg.password())).unwrap();
    let url = pg.url(&db);
    let m = Mef::start(
        &mef_bin(),
        &["--database-url", &url, "--database-password-file", p(&pwfile)],
        |_, _| {},
    );
    let cfg = std::fs::read_to_string(m.st("mef.toml")).unwrap();
    assert!(cfg.contains(&format!("database_url = \"{url}\"")), "{cfg}");
    assert!(!cfg.contains("database = "), "no SQLite file configured: {cfg}");
    assert!(!m.st("mef.db").exists(), "no SQLite file made");
    // `mef init` created the schema.
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM certificates"), 0);

    // SCEP with a one-time challenge.
    let ch = m.run(&["challenge", "add", "--label", "pg-1"]).trim().to_owned();
    assert_eq!(
        count(&pg, &db, "SELECT count(*) FROM challenges WHERE used_at IS NULL"),
        1
    );
    let scep = format!("http://127.0.0.1:{}/scep", m.scep);
    let d = m.dir.path();
    let (key, cert, chain) = (d.join("k1.pem"), d.join("c1.pem"), d.join("chain.pem"));
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &scep,
            "--subject",
            "CN=pg-1",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
            "--chain-out",
            p(&chain),
        ],
        &[("ENROL_CHALLENGE", &ch)],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    openssl_verify(&m.st("ca.pem"), &cert);
    // The state is in PostgreSQL: the certificate, the transaction, the used challenge.
    assert_eq!(
        count(
            &pg,
            &db,
            "SELECT count(*) FROM certificates WHERE subject LIKE '%pg-1%'"
        ),
        1
    );
    assert_eq!(
        count(&pg, &db, "SELECT count(*) FROM transactions WHERE state = 'issued'"),
        1
    );
    assert_eq!(
        count(&pg, &db, "SELECT count(*) FROM challenges WHERE used_at IS NOT NULL"),
        1
    );
    assert!(m.run(&["challenge", "list"]).contains("used"));

    // The same challenge again, with a new key: refused, nothing issued.
    let (key2, cert2) = (d.join("k2.pem"), d.join("c2.pem"));
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &scep,
            "--subject",
            "CN=pg-2",
            "--key-out",
            p(&key2),
            "--cert-out",
            p(&cert2),
        ],
        &[("ENROL_CHALLENGE", &ch)],
    );
    assert!(!o.status.success(), "a one-time challenge worked twice: {}", text(&o));
    assert!(!cert2.exists());
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM certificates"), 1);

    // EST with a pre-shared key, TLS 1.2 and 1.3, on the OpenSSL listener.
    let kpm = d.join("kpm.hex");
    std::fs::write(
        &kpm,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    // Unbound identities: each obtains CN=<identity>.
    for id in ["psk-12", "psk-13"] {
        m.run(&["psk", "add", id, "--key-file", p(&kpm)]);
    }
    assert_eq!(
        count(&pg, &db, "SELECT count(*) FROM psks WHERE identity LIKE 'psk-1%'"),
        2
    );
    let server = format!("https://127.0.0.1:{}", m.openssl);
    for tls in ["1.2", "1.3"] {
        let name = format!("psk-{}", tls.replace('.', ""));
        let (k, c) = (d.join(format!("{name}.key")), d.join(format!("{name}.pem")));
        let subject = format!("CN={name}");
        let o = enrol(
            &[
                "est",
                "--server",
                &server,
                "--ta",
                p(&m.st("ca.pem")),
                "--tls",
                tls,
                "--psk-identity",
                &name,
                "--psk-file",
                p(&kpm),
                "enroll",
                "--subject",
                &subject,
                "--key-out",
                p(&k),
                "--cert-out",
                p(&c),
            ],
            &[],
        );
        assert!(o.status.success(), "EST PSK over TLS {tls}: {}\n{}", text(&o), m.log());
        openssl_verify(&m.st("ca.pem"), &c);
        assert_eq!(
            count(
                &pg,
                &db,
                &format!("SELECT count(*) FROM certificates WHERE subject LIKE '%{name}%'")
            ),
            1
        );
    }
    // An unknown identity: the handshake fails, the server goes on.
    let o = enrol(
        &[
            "est",
            "--server",
            &server,
            "--ta",
            p(&m.st("ca.pem")),
            "--psk-identity",
            "kpm-unknown",
            "--psk-file",
            p(&kpm),
            "enroll",
            "--subject",
            "CN=nobody",
            "--key-out",
            p(&d.join("n.key")),
            "--cert-out",
            p(&d.join("n.pem")),
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM certificates"), 3);

    // Operator commands on the same database: revoke, then /crl lists it.
    let serial = pg
        .psql(&db, "SELECT serial FROM certificates WHERE subject LIKE '%pg-1%'")
        .trim()
        .to_owned();
    m.run(&["revoke", &serial, "--reason", "key-compromise"]);
    assert_eq!(
        count(
            &pg,
            &db,
            "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL"
        ),
        1
    );

    let log = m.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(pg.password()), "the password in the log");
    assert!(!cfg.contains(pg.password()), "the password in mef.toml");
}

/// The password from `MEF_DATABASE_PASSWORD`; a wrong one is a one-line error without it.
#[test]
fn mef_init_takes_the_password_from_the_environment() {
    let pg = Postgres::shared();
    let db = pg.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let init = |sub: &str, password: &str| {
        Command::new(mef_bin())
            .args([
                "init",
                "--dir",
                p(&dir.path().join(sub)),
                "--database-url",
                &pg.url(&db),
            ])
            .env("MEF_DATABASE_PASSWORD", password)
            .output()
            .unwrap()
    };
    let wrong = "Wrong-Pass-4711";
    let o = init("a", wrong);
    assert!(!o.status.success());
    let err = text(&o);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let o = init("b", pg.password());
    assert!(o.status.success(), "{}", text(&o));
    // The tables are there, and the schema version recorded.
    assert_eq!(
        count(&pg, &db, "SELECT count(*) FROM meta WHERE key = 'schema_version'"),
        1
    );
    // `database` and `database_url` together are refused.
    let cfg = dir.path().join("b/mef.toml");
    let t = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("database = \"mef.db\"\n{t}")).unwrap();
    let o = Command::new(mef_bin())
        .args(["-c", p(&cfg), "challenge", "list"])
        .env("MEF_DATABASE_PASSWORD", pg.password())
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("not both"), "{}", text(&o));
}

/// `openssl` with `args` in `dir`, which must succeed.
fn openssl_in(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

/// A CA (`{name}.pem`, `{name}.key`) made by the OpenSSL command line in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl_in(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// `mef` with its state in PostgreSQL over TLS: `mef init --database-sslmode
/// verify-full --database-sslrootcert`, against a testkit cluster started
/// with `ssl=on` and a server certificate made here, which rejects plain
/// TCP; PSKs added by `mef psk add` are sealed in the database and serve
/// EST enrolments; every connection of mef's is encrypted; a configuration
/// trusting another CA is refused.
#[test]
fn mef_on_postgres_over_tls_verify_full() {
    let pki = tempfile::tempdir().unwrap();
    let d = pki.path();
    make_ca(d, "db-ca");
    make_ca(d, "other-ca");
    openssl_in(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=postgres",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl_in(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "db-ca.pem",
            "-CAkey",
            "db-ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-copy_extensions",
            "copy",
            "-out",
            "server.pem",
        ],
    );
    let pg = Postgres::start_tls(enrolkit_testkit::postgres::ServerTls {
        cert_pem: &std::fs::read(d.join("server.pem")).unwrap(),
        key_pem: &std::fs::read(d.join("server.key")).unwrap(),
    });
    let db = pg.fresh_database();
    let pwfile = d.join("db.password");
    std::fs::write(&pwfile, format!("{}\n", pg.password())).unwrap();
    let url = pg.url(&db);
    let ca = d.join("db-ca.pem");
    let m = Mef::start(
        &mef_bin(),
        &[
            "--database-url",
            &url,
            "--database-password-file",
            p(&pwfile),
            "--database-sslmode",
            "verify-full",
            "--database-sslrootcert",
            p(&ca),
        ],
        |_, _| {},
    );
    let cfg = std::fs::read_to_string(m.st("mef.toml")).unwrap();
    assert!(cfg.contains("database_sslmode = \"verify-full\""), "{cfg}");
    // mef init made the schema over TLS: the cluster takes nothing else.
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM certificates"), 0);

    // A PSK, sealed in the database, and an EST enrolment with it.
    let kpm_hex = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";
    let kpm = m.dir.path().join("kpm.hex");
    std::fs::write(&kpm, kpm_hex).unwrap();
    m.run(&["psk", "add", "psk-tls", "--key-file", p(&kpm)]);
    assert_eq!(
        count(
            &pg,
            &db,
            "SELECT count(*) FROM psks WHERE sealed IS NOT NULL AND length(key) = 0"
        ),
        1
    );
    assert!(!pg.psql(&db, "SELECT encode(sealed, 'hex') FROM psks").contains(kpm_hex));
    let (k, c) = (m.dir.path().join("tls.key"), m.dir.path().join("tls.pem"));
    let o = enrol(
        &[
            "est",
            "--server",
            &format!("https://127.0.0.1:{}", m.openssl),
            "--ta",
            p(&m.st("ca.pem")),
            "--psk-identity",
            "psk-tls",
            "--psk-file",
            p(&kpm),
            "enroll",
            "--subject",
            "CN=psk-tls",
            "--key-out",
            p(&k),
            "--cert-out",
            p(&c),
        ],
        &[],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    openssl_verify(&m.st("ca.pem"), &c);
    assert_eq!(
        count(
            &pg,
            &db,
            "SELECT count(*) FROM certificates WHERE subject LIKE '%psk-tls%'"
        ),
        1
    );
    // Every connection mef serve holds is encrypted.
    let (tls, all) = (
        count(
            &pg,
            &db,
            &format!(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = '{db}' AND a.application_name = 'enrolkit' AND s.ssl"
            ),
        ),
        count(
            &pg,
            &db,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'enrolkit'"),
        ),
    );
    assert!(all > 0 && tls == all, "{tls} of {all} connections over TLS");

    // The same configuration trusting another CA: refused, saying why.
    let edited = cfg.replace(p(&ca), p(&d.join("other-ca.pem")));
    assert_ne!(edited, cfg);
    std::fs::write(m.st("other.toml"), edited).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(m.st("other.toml"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new(mef_bin())
        .arg("-c")
        .arg(m.st("other.toml"))
        .args(["psk", "list"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("certificate verify failed"), "{}", text(&o));
    assert!(!text(&o).contains(pg.password()), "{}", text(&o));
}
