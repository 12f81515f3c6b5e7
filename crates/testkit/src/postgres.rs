//! A private PostgreSQL server for tests: `initdb` into a temporary
//! directory, `postgres` on a free port of 127.0.0.1 (and a Unix socket in
//! that directory), stopped and removed when the last handle is dropped.
//!
//! The server binaries are taken from `ENROLKIT_PG_BIN` when set, else from
//! the newest `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql`
//! package), else from `pg_config --bindir`. PostgreSQL refuses to run as
//! root: under root, `initdb`, `postgres` and `pg_ctl` run as the `postgres`
//! system user the package creates, and the directory is given to it.
//!
//! The superuser is `enrolkit`, with a random password for TCP
//! (`scram-sha-256`) and trust on the Unix socket, which only the owner of
//! the temporary directory (and root) can reach.
//!
//! [`Postgres::start_tls`] starts one with `ssl=on` and the test's server
//! certificate, accepting TCP connections over TLS only (plain TCP is
//! rejected by `pg_hba.conf`), so a client that gets in used TLS.

use crate::Peer;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The superuser of the test cluster.
pub const USER: &str = "enrolkit";

/// A running PostgreSQL server of the test's own; stopped and deleted on drop.
#[derive(Debug)]
pub struct Postgres {
    // Dropped in this order: the server first, then its directory.
    _server: Peer,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    version: String,
    password: String,
    databases: AtomicUsize,
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
}

/// The server certificate and key of a TLS cluster ([`Postgres::start_tls`]).
#[derive(Debug, Clone, Copy)]
pub struct ServerTls<'a> {
    /// The certificate chain, PEM (the server's first).
    pub cert_pem: &'a [u8],
    /// Its private key, PEM (unencrypted).
    pub key_pem: &'a [u8],
}

/// Where the server binaries are (see the module documentation).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ENROLKIT_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("postgres").exists() && bin.join("initdb").exists()).then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if o.status.success() && d.join("postgres").exists() && d.join("initdb").exists() {
            return d;
        }
    }
    panic!(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin, pg_config or ENROLKIT_PG_BIN): \
         apt-get install -y postgresql"
    );
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        o.status.success(),
        "{what} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// uid and gid of `user`, by `id` (no libc in tests).
fn ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = run(&format!("id {flag} {user}"), Command::new("id").arg(flag).arg(user));
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("id {flag} {user}: {e}"))
    };
    (id("-u"), id("-g"))
}

fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Postgres {
    /// `initdb` and start a server; panics with the reason when that fails.
    /// Prints the server's version.
    pub fn start() -> Postgres {
        Self::launch(None)
    }

    /// As [`Postgres::start`], with `ssl=on` and `tls` as the server's
    /// certificate and key; TCP connections without TLS are rejected.
    pub fn start_tls(tls: ServerTls<'_>) -> Postgres {
        Self::launch(Some(tls))
    }

    fn launch(tls: Option<ServerTls<'_>>) -> Postgres {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::process::CommandExt;
        let bin = bin_dir();
        let version = String::from_utf8_lossy(
            &run(
                "postgres --version",
                Command::new(bin.join("postgres")).arg("--version"),
            )
            .stdout,
        )
        .trim()
        .to_owned();
        let root_check = tempfile::tempdir().expect("temporary directory");
        let root = std::fs::metadata(root_check.path()).expect("metadata").uid() == 0;
        drop(root_check);
        // Under root the server runs as `postgres`, which must be able to reach
        // the directory: /tmp rather than a TMPDIR that may sit under /root.
        let dir = if root {
            tempfile::Builder::new().prefix("enrolkit-pg").tempdir_in("/tmp")
        } else {
            tempfile::Builder::new().prefix("enrolkit-pg").tempdir()
        }
        .expect("temporary directory");
        let run_as = root.then(|| ids("postgres"));
        let password = random_hex(16);
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("pwfile");
        if let Some((uid, gid)) = run_as {
            for p in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
            }
        }
        let command = |name: &str| {
            let mut c = Command::new(bin.join(name));
            if let Some((uid, gid)) = run_as {
                c.uid(uid).gid(gid);
            }
            c.env("LC_ALL", "C").current_dir(dir.path());
            c
        };
        let data = dir.path().join("data");
        run(
            "initdb",
            command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", USER, "-E", "UTF8", "--no-locale", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display())),
        );
        let _ = std::fs::remove_file(&pwfile);
        if let Some(tls) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (crt, key) = (data.join("server.crt"), data.join("server.key"));
            std::fs::write(&crt, tls.cert_pem).expect("server.crt");
            std::fs::write(&key, tls.key_pem).expect("server.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod server.key");
            // The socket as before; TCP over TLS only.
            let hba = data.join("pg_hba.conf");
            std::fs::write(
                &hba,
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all all 127.0.0.1/32 reject\n",
            )
            .expect("pg_hba.conf");
            if let Some((uid, gid)) = run_as {
                for p in [&crt, &key, &hba] {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
                }
            }
        }
        let ssl: &[&str] = if tls.is_some() {
            &[
                "-c",
                "ssl=on",
                "-c",
                "ssl_cert_file=server.crt",
                "-c",
                "ssl_key_file=server.key",
            ]
        } else {
            &[]
        };
        let log = dir.path().join("postgres.log");
        let peer = Peer::spawn(
            |port| {
                let mut c = command("postgres");
                c.arg("-D")
                    .arg(&data)
                    .arg("-p")
                    .arg(port.to_string())
                    .arg("-k")
                    .arg(dir.path())
                    .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                    .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
                    .args(ssl)
                    .stdout(Stdio::null())
                    .stderr(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&log)
                            .expect("postgres.log"),
                    );
                c
            },
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| {
            panic!(
                "postgres did not start: {e}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let pg = Postgres {
            port: peer.port,
            _server: peer,
            bin,
            run_as,
            version,
            password,
            databases: AtomicUsize::new(0),
            dir,
        };
        // Listening is not accepting: wait until start-up (recovery) is over.
        let started = Instant::now();
        loop {
            let o = Command::new(pg.bin.join("pg_isready"))
                .args(pg.socket_args())
                .args(["-d", "postgres"])
                .output()
                .expect("pg_isready");
            if o.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postgres not ready after 30 s: {}",
                pg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "testkit: {} on 127.0.0.1:{} ({})",
            pg.version,
            pg.port,
            pg.dir.path().display()
        );
        pg
    }

    /// One server for every test of this process that holds it at the same
    /// time: started by the first, stopped when the last handle is dropped
    /// (a later call starts a new one). Give each test its own database
    /// ([`Postgres::fresh_database`]).
    pub fn shared() -> Arc<Postgres> {
        static SHARED: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
        let mut s = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pg) = s.upgrade() {
            return pg;
        }
        let pg = Arc::new(Postgres::start());
        *s = Arc::downgrade(&pg);
        pg
    }

    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The superuser's password (TCP connections need it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The cluster's data directory (`pg_relation_filepath` is relative to it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgresql://enrolkit@127.0.0.1:<port>/<db>`, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// [`Postgres::url`] with the password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!("postgresql://{USER}:{}@127.0.0.1:{}/{db}", self.password, self.port)
    }

    fn socket_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.dir.path().display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            USER.into(),
        ]
    }

    /// Create database `name`.
    pub fn create_database(&self, name: &str) {
        run(
            &format!("createdb {name}"),
            Command::new(self.bin.join("createdb"))
                .args(self.socket_args())
                .arg(name),
        );
    }

    /// A new, empty database with a name of its own (`t1`, `t2`, …).
    pub fn fresh_database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst) + 1);
        self.create_database(&name);
        name
    }

    /// Run SQL in `db` as the superuser (over the socket); the rows, `|`-separated, one a line.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let o = run(
            &format!("psql {sql:?}"),
            Command::new(self.bin.join("psql")).args(self.socket_args()).args([
                "-d",
                db,
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ]),
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        use std::os::unix::process::CommandExt;
        // A fast shutdown (as the server's user: pg_ctl refuses root); the
        // Peer's kill that follows is for a server that did not stop.
        let mut c = Command::new(self.bin.join("pg_ctl"));
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        let _ = c
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "fast", "-w", "-t", "20"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
