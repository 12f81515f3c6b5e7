//! Test support for the interop tests: start a peer (OpenSSL `s_server`,
//! micromdm `scepserver`, …) on a free loopback port.
//!
//! Picking a port by binding port 0 and closing it leaves a window in which
//! another test can take the same port; the peer then fails to bind and a
//! readiness probe connects to the *other* process. [`Peer::spawn`] closes
//! that hole: it waits until the port answers *and* the peer is still running
//! a moment later (a peer that failed to bind has exited by then), and tries
//! a fresh port when the peer died.

// Test support: a setup that fails is a failing test, so it panics with the reason.
#![allow(clippy::expect_used, clippy::panic)]

pub mod http;
pub mod postgres;
pub mod softhsm;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A peer process listening on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Peer {
    /// The running process (its pipes are the caller's to read).
    pub child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// A port that was free a moment ago (the caller must cope with losing it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Peer {
    /// Start `make(port)` on a free port and wait, up to `timeout` per attempt,
    /// until it accepts connections; retry on a new port (five attempts) when
    /// the process exits first, e.g. because the port was taken meanwhile.
    pub fn spawn(mut make: impl FnMut(u16) -> Command, timeout: Duration) -> io::Result<Peer> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = make(port).spawn()?;
            let started = Instant::now();
            loop {
                if let Some(status) = child.try_wait()? {
                    last = format!("peer exited with {status} before listening on {port}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Someone answers; make sure it is our peer.
                    std::thread::sleep(Duration::from_millis(150));
                    if child.try_wait()?.is_none() {
                        return Ok(Peer { child, port });
                    }
                    last = format!("port {port} answered but the peer exited");
                    break;
                }
                if started.elapsed() > timeout {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("peer did not listen on {port} within {timeout:?}"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(io::Error::other(last))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `mef serve` of its own: `mef init` in a temporary directory, the
/// configuration edited by the caller, every listener on a port the kernel
/// chose (read back from what `mef serve` prints; the admin listener too,
/// unless the caller's arguments place it). Killed when dropped.
#[derive(Debug)]
pub struct Mef {
    /// The temporary directory (`st/` holds what `mef init` made).
    pub dir: tempfile::TempDir,
    child: Child,
    bin: std::path::PathBuf,
    /// SCEP (HTTP) port.
    pub scep: u16,
    /// EST rustls listener port.
    pub rustls: u16,
    /// EST OpenSSL listener port (PSK, tls-unique).
    pub openssl: u16,
    /// Admin listener port (`/metrics`, `/healthz`).
    pub admin: u16,
    serve_args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The ports `mef serve` announced (0: that listener is off).
#[derive(Debug, Default)]
struct Ports {
    scep: u16,
    rustls: u16,
    openssl: u16,
    admin: u16,
}

impl Drop for Mef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mef {
    /// `mef init --dir st <init_args>`, then `edit` the configuration text, then
    /// `mef serve` with every listener on a port the kernel chooses.
    pub fn start(bin: &std::path::Path, init_args: &[&str], edit: impl FnOnce(&std::path::Path, &mut String)) -> Mef {
        let serve = [
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            "127.0.0.1:0",
        ];
        Self::try_start(bin, init_args, edit, &serve).unwrap_or_else(|log| panic!("mef serve did not start: {log}"))
    }

    /// As [`Mef::start`], with `serve_args` instead of the port overrides (an
    /// empty list serves what `init` configured). `Err` carries the server's
    /// log when it did not start, e.g. because a chosen port was taken.
    pub fn try_start(
        bin: &std::path::Path,
        init_args: &[&str],
        edit: impl FnOnce(&std::path::Path, &mut String),
        serve_args: &[&str],
    ) -> Result<Mef, String> {
        Self::try_start_env(bin, init_args, edit, serve_args, &[])
    }

    /// As [`Mef::try_start`], with `env` added to `mef serve`'s environment
    /// (e.g. `NOTIFY_SOCKET`); kept for [`Mef::restart`].
    pub fn try_start_env(
        bin: &std::path::Path,
        init_args: &[&str],
        edit: impl FnOnce(&std::path::Path, &mut String),
        serve_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Mef, String> {
        assert!(bin.exists(), "build mef first (cargo test --workspace builds it)");
        let dir = tempfile::tempdir().expect("temporary directory");
        let st = dir.path().join("st");
        let o = Command::new(bin)
            .arg("init")
            .arg("--dir")
            .arg(&st)
            .args(init_args)
            .output()
            .expect("mef init");
        assert!(o.status.success(), "mef init: {}", String::from_utf8_lossy(&o.stderr));
        let path = st.join("mef.toml");
        let mut cfg = std::fs::read_to_string(&path).expect("mef.toml");
        edit(&st, &mut cfg);
        std::fs::write(&path, cfg).expect("mef.toml");
        // mef refuses a configuration holding a secret (a static challenge)
        // that others may read.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod mef.toml");
        }
        let serve_args: Vec<String> = serve_args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, ports) = Self::serve(bin, dir.path(), &serve_args, &env)?;
        Ok(Mef {
            dir,
            child,
            bin: bin.to_owned(),
            scep: ports.scep,
            rustls: ports.rustls,
            openssl: ports.openssl,
            admin: ports.admin,
            serve_args,
            env,
        })
    }

    /// Stop `mef serve` and start it again on the same configuration (after
    /// `mef ca rollover`, say); the ports are chosen afresh.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, p) = Self::serve(&self.bin, self.dir.path(), &self.serve_args, &self.env)
            .unwrap_or_else(|log| panic!("mef serve did not restart: {log}"));
        (self.child, self.scep, self.rustls, self.openssl, self.admin) = (child, p.scep, p.rustls, p.openssl, p.admin);
    }

    /// Spawn `mef serve` on `dir/st/mef.toml` (the admin listener on a port
    /// the kernel chooses unless `serve_args` place it: many servers run at
    /// once in tests) and read its listening lines up to `mef: ready`.
    fn serve(
        bin: &std::path::Path,
        dir: &std::path::Path,
        serve_args: &[String],
        env: &[(String, String)],
    ) -> Result<(Child, Ports), String> {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let path = dir.join("st").join("mef.toml");
        // Appended to: a restart keeps what the server logged before it.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .expect("serve.log");
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .arg("serve")
            .args(serve_args)
            .args(if serve_args.iter().any(|a| a == "--admin-listen") {
                &[][..]
            } else {
                &["--admin-listen", "127.0.0.1:0"][..]
            })
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("mef serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut ports = Ports::default();
        let port = |s: &str| -> u16 {
            s.rsplit(':')
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0)
        };
        loop {
            let Some(Ok(l)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default());
            };
            let addr = l
                .split_whitespace()
                .last()
                .unwrap_or("")
                .trim_end_matches("/.well-known/est/");
            if l.starts_with("mef: EST (rustls)") {
                ports.rustls = port(addr);
            } else if l.starts_with("mef: EST (openssl)") {
                ports.openssl = port(addr);
            } else if l.starts_with("mef: listening on") {
                ports.scep = port(addr.trim_end_matches("/scep"));
            } else if let Some(rest) = l.strip_prefix("mef: admin on http://") {
                ports.admin = port(rest.split('/').next().unwrap_or(""));
            } else if l == "mef: ready" {
                break;
            }
        }
        Ok((child, ports))
    }

    /// A file of the server's directory.
    pub fn st(&self, f: &str) -> std::path::PathBuf {
        self.dir.path().join("st").join(f)
    }

    /// `mef -c st/mef.toml <args>`, whatever its outcome. After a command
    /// that changes what TLS handshakes are answered from (`psk add`, `psk
    /// remove`, `rspf revoke`, `rspf gba-stub bootstrap`), waits [`HANDSHAKE_KEYS_SETTLE`] for the
    /// running server to reload them.
    pub fn try_run(&self, args: &[&str]) -> std::process::Output {
        let o = Command::new(&self.bin)
            .arg("-c")
            .arg(self.st("mef.toml"))
            .args(args)
            .output()
            .expect("mef");
        if o.status.success() && changes_handshake_keys(args) {
            std::thread::sleep(HANDSHAKE_KEYS_SETTLE);
        }
        o
    }

    /// `mef -c st/mef.toml <args>`, which must succeed; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let o = self.try_run(args);
        assert!(
            o.status.success(),
            "mef {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The process id of `mef serve` (for /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What `mef serve` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

/// How long a running `mef serve` may take to see a PSK added or removed,
/// or an enrolment withdrawn, by another `mef` process: it reloads the keys
/// TLS handshakes are answered from every second
/// (`enrolkit_server::handshake::REFRESH`), on the blocking pool; this
/// leaves room for a busy machine.
pub const HANDSHAKE_KEYS_SETTLE: Duration = Duration::from_millis(2500);

/// Whether `mef <args>` changes what TLS handshakes are answered from.
pub fn changes_handshake_keys(args: &[&str]) -> bool {
    matches!(
        args,
        ["psk", "add" | "remove", ..] | ["rspf", "revoke", ..] | ["rspf", "gba-stub", "bootstrap", ..]
    )
}

/// A self-signed P-256 certificate for `CN=localhost` made by the OpenSSL
/// command line in `dir`: (certificate DER, private key PKCS#8 DER).
pub fn self_signed_p256(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let (k, c) = (dir.join("k.pem"), dir.join("c.der"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=localhost", "-days", "2", "-outform", "DER", "-keyout"])
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl req");
    assert!(st.success(), "openssl req failed");
    let pkcs8 = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&k)
        .output()
        .expect("run openssl pkcs8");
    assert!(pkcs8.status.success(), "openssl pkcs8 failed");
    (std::fs::read(&c).expect("read the certificate"), pkcs8.stdout)
}
