//! `mef` under hostile load (issue H): started with its open-file limit at
//! 1024 (soft and hard, as a service manager might leave it), attacked
//! from 127.0.0.2 and up with more idle, slow-body, half-handshake and
//! garbage connections than that limit on all three listeners; meanwhile a
//! SCEP enrolment (OpenSSL, asn1crypto, curl) and EST enrolments over both
//! TLS stacks (curl) from 127.0.0.1 complete, and afterwards every attacking
//! connection has been closed by the server and its RSS stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use enrolkit_testkit::Mef;
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Addresses the attack comes from: 127.0.0.2 …
const ATTACKERS: u8 = 8;
/// Connections each attacking address opens to each listener.
const PER_LISTENER: usize = 60;
/// The bound this test states for mef's resident memory after the attack.
const MAX_RSS_MIB: u64 = 128;

/// A script running mef with its open-file limit at 1024, soft and hard.
fn limited_mef(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("mef-1024");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec prlimit --nofile=1024:1024 -- {} \"$@\"\n",
            env!("CARGO_BIN_EXE_mef")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Let this test process hold its attackers' sockets.
fn raise_own_limit(need: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < need {
        // Root may raise the hard limit too; anyone may go up to it.
        let target = need.max(soft);
        if setrlimit(Resource::RLIMIT_NOFILE, target, target.max(hard)).is_err() {
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
        }
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(soft >= need, "the test needs {need} descriptors, has {soft}");
}

/// A connection from `src` to 127.0.0.1:`port`, or None when refused.
fn connect_from(src: Ipv4Addr, port: u16) -> Option<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::from((src, 0)).into()).ok()?;
    s.connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)).into(), Duration::from_secs(5))
        .ok()?;
    Some(s.into())
}

/// What one attacking connection does, then holds the connection open.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Connects and sends nothing.
    Idle,
    /// Announces a large body (or starts a TLS record) and sends two bytes of it.
    Slow,
    /// Sends bytes that are neither HTTP nor TLS.
    Garbage,
}

fn attack(s: &mut TcpStream, how: Attack, tls: bool) {
    let _ = match (how, tls) {
        (Attack::Idle, _) => Ok(()),
        (Attack::Slow, false) => {
            s.write_all(b"POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\nab")
        }
        // A TLS handshake record that announces 512 bytes and sends 4.
        (Attack::Slow, true) => s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
        (Attack::Garbage, _) => s.write_all(&[0x5a; 4096]),
    };
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An EST enrolment with curl over the listener on `port`; the HTTP status.
fn est_enrol(m: &Mef, dir: &Path, port: u16, name: &str) -> String {
    let challenge = m.run(&["challenge", "add"]).trim().to_owned();
    let (_, csr) = common::key_and_csr(dir, name, name, None);
    let b64 = dir.join(format!("{name}.b64"));
    common::run("openssl", &["base64", "-in", common::p(&csr), "-out", common::p(&b64)]);
    let o = common::run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            common::p(&m.st("ca.pem")),
            "-u",
            &format!("device:{challenge}"),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", common::p(&b64)),
            &format!("https://127.0.0.1:{port}/.well-known/est/simpleenroll"),
        ],
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn enrolments_complete_while_attackers_hold_more_connections_than_the_open_file_limit() {
    common::versions();
    let total = usize::from(ATTACKERS) * 3 * PER_LISTENER;
    assert!(total > 1024, "the attack must exceed mef's open-file limit");
    raise_own_limit(total as u64 + 512);
    let scratch = tempfile::tempdir().unwrap();
    let m = Mef::start(&limited_mef(scratch.path()), &[], |_, cfg| {
        *cfg = cfg.replace("\nbasic = false\n", "\nbasic = true\n");
        assert!(cfg.contains("header_timeout_seconds = 10") && cfg.contains("body_timeout_seconds = 30"));
        *cfg = cfg
            .replace("header_timeout_seconds = 10", "header_timeout_seconds = 2")
            .replace("body_timeout_seconds = 30", "body_timeout_seconds = 3");
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", m.pid())).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    println!("mef {nofile}");
    assert!(nofile.split_whitespace().any(|w| w == "1024"), "{nofile}");

    // The attack: every address, every listener, three kinds.
    let started = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0usize;
    for a in 0..ATTACKERS {
        let src = Ipv4Addr::new(127, 0, 0, 2 + a);
        for (port, tls) in [(m.scep, false), (m.rustls, true), (m.openssl, true)] {
            for i in 0..PER_LISTENER {
                let how = [Attack::Idle, Attack::Slow, Attack::Garbage][i % 3];
                match connect_from(src, port) {
                    Some(mut s) => {
                        attack(&mut s, how, tls);
                        held.push((s, how, port));
                    }
                    None => refused += 1,
                }
            }
        }
    }
    println!(
        "attack: {} connections opened ({refused} refused at connect) in {:?}; mef holds {} descriptors",
        held.len(),
        started.elapsed(),
        open_descriptors(m.pid())
    );
    assert!(open_descriptors(m.pid()) <= 1024);

    // Meanwhile, from 127.0.0.1: SCEP and EST enrolments complete.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = Instant::now();
    let (cert, _) = common::first_certificate(&m, d, "under-attack");
    assert!(common::subject(&cert).contains("under-attack"));
    println!("SCEP enrolment under attack: {:?}", t.elapsed());
    for (port, name) in [(m.rustls, "est-rustls"), (m.openssl, "est-openssl")] {
        let t = Instant::now();
        assert_eq!(est_enrol(&m, d, port, name), "200", "{name}: {}", m.log());
        println!("EST enrolment ({name}) under attack: {:?}", t.elapsed());
    }

    // Afterwards: the server has closed every attacking connection (a read
    // sees the end of the stream or a reset) within its timeouts.
    let mut still_open = 0;
    for (s, how, port) in held.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    break false
                }
                Err(_) => break true,
            }
        };
        if !closed {
            still_open += 1;
            println!("still open: {how:?} on port {port}");
        }
    }
    assert_eq!(still_open, 0, "attacking connections the server did not close");
    drop(held);
    let rss = rss_mib(m.pid());
    println!("mef RSS after the attack: {rss} MiB (bound {MAX_RSS_MIB} MiB)");
    assert!(rss < MAX_RSS_MIB, "RSS {rss} MiB");
    let log = m.log();
    assert!(log.contains("per-address connection cap"), "{log}");
    // Still serving.
    let caps = common::run(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{}/scep?operation=GetCACaps", m.scep),
        ],
    );
    assert!(String::from_utf8_lossy(&caps.stdout).contains("POSTPKIOperation"));
}

/// One HTTP/1.1 request from `src` on a fresh connection; the status code.
fn status_from(src: Ipv4Addr, port: u16, request: &str) -> u16 {
    let mut s = connect_from(src, port).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

#[test]
fn an_address_over_its_enrolment_rate_gets_429_and_exempt_and_other_addresses_are_served() {
    common::versions();
    let m = Mef::start(std::path::Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, cfg| {
        assert!(cfg.contains("enrolments_per_second_per_address = 10\n") && cfg.contains("exempt_addresses = []"));
        *cfg = cfg
            .replace(
                "enrolments_per_second_per_address = 10\n",
                "enrolments_per_second_per_address = 1\n",
            )
            .replace(
                "enrolment_burst_per_address = 50\n",
                "enrolment_burst_per_address = 3\n",
            )
            .replace("exempt_addresses = []", "exempt_addresses = [\"127.0.0.1\"]");
    });
    // A PKIOperation whose body is not a pkiMessage: 400 while the address
    // is within its burst, 429 (body unread) once it is spent.
    let garbage = "POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd";
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let seen: Vec<u16> = (0..8).map(|_| status_from(attacker, m.scep, garbage)).collect();
    println!("127.0.0.2, 8 PKIOperations at once: {seen:?}");
    assert_eq!(&seen[..3], &[400, 400, 400], "the burst is served");
    assert!(seen[3..].iter().filter(|s| **s == 429).count() >= 4, "{seen:?}");
    // Operations that start no enrolment are not counted.
    let caps = "GET /scep?operation=GetCACaps HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(status_from(attacker, m.scep, caps), 200);
    // Another address has its own budget; the exempt one has none.
    assert_eq!(status_from(Ipv4Addr::new(127, 0, 0, 3), m.scep, garbage), 400);
    for _ in 0..8 {
        assert_eq!(status_from(Ipv4Addr::LOCALHOST, m.scep, garbage), 400);
    }
    // Counted by cause on /metrics, and logged.
    let mut s = TcpStream::connect(("127.0.0.1", m.admin)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut metrics = String::new();
    s.read_to_string(&mut metrics).unwrap();
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mef_connection_rejections_total{cause=\"enrolment_rate\"} "))
        .expect("the enrolment_rate series")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(refused, seen.iter().filter(|s| **s == 429).count() as f64);
    let log = m.log();
    assert!(log.contains("per-address enrolment rate"), "{log}");
}
