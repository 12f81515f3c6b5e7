//! Operating `mef serve`: the admin listener's `/metrics` after SCEP and
//! EST traffic from clients we did not write (OpenSSL + asn1crypto + curl
//! for SCEP, curl for EST), checked by Prometheus's own `promtool`;
//! `/healthz`; JSON logs; `READY=1` to a service manager.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use enrolkit_testkit::Mef;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn mef_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mef"))
}

/// EST with HTTP Basic and one-time challenges, as embedded clients use it.
fn basic_est(_: &Path, cfg: &mut String) {
    assert!(cfg.contains("\nbasic = false\n"), "{cfg}");
    *cfg = cfg.replace("\nbasic = false\n", "\nbasic = true\n");
}

/// One request on a fresh plain-HTTP connection; the raw response.
fn plain(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

/// `curl` GET of an admin path: (status, body).
fn admin(m: &Mef, path: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:{}{path}", m.admin),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "curl: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

/// The value of the sample `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Feed `text` to `promtool check metrics`; its verdict and what it said.
fn promtool(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), said)
}

#[test]
fn metrics_count_what_scep_and_est_clients_did_and_promtool_accepts_them() {
    common::versions();
    let m = Mef::start(mef_bin(), &[], basic_est);
    assert_ne!(m.admin, 0, "no admin listener announced");
    let dir = tempfile::tempdir().unwrap();

    // Before any traffic: the families are there, the gate's at zero.
    let (status, before) = admin(&m, "/metrics");
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        sample(&before, r#"mef_connection_rejections_total{cause="malformed_request"}"#),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, r#"mef_certificates_issued_total{protocol="scep"}"#),
        None
    );

    // Three GetCACaps, one GetCACert, one unknown path, one malformed PKIOperation.
    for _ in 0..3 {
        assert!(plain(m.scep, &get("/scep?operation=GetCACaps")).starts_with("HTTP/1.1 200"));
    }
    assert!(plain(m.scep, &get("/cgi-bin/pkiclient.exe?operation=GetCACert")).starts_with("HTTP/1.1 200"));
    assert!(plain(m.scep, &get("/nowhere")).starts_with("HTTP/1.1 404"));
    let junk = b"\x30\x03junk";
    let mut bad = format!(
        "POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        junk.len()
    )
    .into_bytes();
    bad.extend_from_slice(junk);
    assert!(plain(m.scep, &bad).starts_with("HTTP/1.1 400"));
    // Bytes that are not HTTP on the plain listener, and not TLS on the rustls one.
    let _ = plain(m.scep, b"\x16\x03\x01\x00\x05hello\r\n\r\n");
    let _ = plain(m.rustls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");

    // A SCEP enrolment with a one-time challenge (OpenSSL, asn1crypto, curl).
    let (cert, _) = common::first_certificate(&m, dir.path(), "ops-scep-1");
    assert!(common::subject(&cert).contains("ops-scep-1"));

    // An EST enrolment with a one-time challenge over HTTP Basic (curl).
    let (_, csr) = common::key_and_csr(dir.path(), "ops-est-1", "ops-est-1", None);
    let pem = dir.path().join("ops-est-1.csr.b64");
    common::run("openssl", &["base64", "-in", common::p(&csr), "-out", common::p(&pem)]);
    let otp = m.run(&["challenge", "add"]).trim().to_owned();
    let o = common::run(
        "curl",
        &[
            "-sS",
            "-k",
            "--fail",
            "-u",
            &format!("device:{otp}"),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", common::p(&pem)),
            &format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", m.rustls),
        ],
    );
    assert!(!o.stdout.is_empty(), "EST returned no certificate");

    // Two idle connections held open while scraping.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", m.scep)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let (status, text) = admin(&m, "/metrics");
    assert_eq!(status, 200);
    let s = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(
        s(r#"mef_requests_total{protocol="scep",operation="GetCACaps",outcome="2xx"}"#),
        3.0
    );
    assert_eq!(
        s(r#"mef_requests_total{protocol="scep",operation="GetCACert",outcome="2xx"}"#),
        1.0
    );
    assert_eq!(
        s(r#"mef_requests_total{protocol="other",operation="none",outcome="4xx"}"#),
        1.0
    );
    assert_eq!(
        s(r#"mef_requests_total{protocol="scep",operation="PKIOperation",outcome="4xx"}"#),
        1.0
    );
    assert_eq!(
        s(r#"mef_requests_total{protocol="scep",operation="PKIOperation",outcome="success"}"#),
        1.0
    );
    assert_eq!(
        s(r#"mef_requests_total{protocol="est",operation="simpleenroll",outcome="2xx"}"#),
        1.0
    );
    assert_eq!(
        s(r#"mef_request_duration_seconds_count{protocol="scep",operation="GetCACaps"}"#),
        3.0
    );
    assert_eq!(s(r#"mef_certificates_issued_total{protocol="scep"}"#), 1.0);
    assert_eq!(s(r#"mef_certificates_issued_total{protocol="est"}"#), 1.0);
    assert_eq!(s(r#"mef_challenges_consumed_total{protocol="scep"}"#), 1.0);
    assert_eq!(s(r#"mef_challenges_consumed_total{protocol="est"}"#), 1.0);
    assert_eq!(s(r#"mef_connection_rejections_total{cause="malformed_request"}"#), 1.0);
    assert_eq!(s(r#"mef_connection_rejections_total{cause="tls_handshake"}"#), 1.0);
    assert!(s("mef_open_connections") >= 2.0, "{text}");
    // The SCEP enrolment: the RA decrypted the request and signed the
    // reply; the CA signed two certificates.
    assert!(s(r#"mef_private_key_operation_duration_seconds_count{key="ra",operation="decrypt"}"#) >= 1.0);
    assert!(s(r#"mef_private_key_operation_duration_seconds_count{key="ra",operation="sign"}"#) >= 1.0);
    assert!(s(r#"mef_private_key_operation_duration_seconds_count{key="ca",operation="sign"}"#) >= 2.0);
    // Both issuances were committed (SQLite's group commit).
    assert!(s(r#"mef_db_commit_duration_seconds_count{backend="sqlite"}"#) >= 2.0);
    drop(idle);

    let (ok, said) = promtool(&text);
    assert!(ok, "promtool check metrics refused the scrape: {said}\n{text}");

    assert_eq!(admin(&m, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(admin(&m, "/other").0, 404);
}

#[test]
fn promtool_is_a_real_check() {
    // What promtool refuses, so that its verdict above means something.
    let (ok, said) = promtool("# TYPE x counter\nx_total{a=\"1\" 3\n");
    assert!(!ok, "promtool accepted a malformed exposition: {said}");
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let m = Mef::try_start(
        mef_bin(),
        &[],
        |_, _| {},
        &[
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
    )
    .unwrap();
    assert!(plain(m.scep, &get("/scep?operation=GetCACaps")).starts_with("HTTP/1.1 200"));
    let mut found = None;
    for _ in 0..50 {
        found = m
            .log()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .find(|v| v["message"] == "scep");
        if found.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = found.unwrap_or_else(|| panic!("no scep request logged:\n{}", m.log()));
    assert_eq!(line["operation"], "GetCACaps", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
}

#[test]
fn the_service_manager_is_told_ready_once_every_listener_is_bound() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("notify");
    let manager = UnixDatagram::bind(&sock).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let m = Mef::try_start_env(
        mef_bin(),
        &[],
        |_, _| {},
        &[
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            "127.0.0.1:0",
        ],
        &[("NOTIFY_SOCKET", sock.to_str().unwrap())],
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).expect("no notification from mef serve");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    // Told ready: every listener accepts.
    for port in [m.scep, m.rustls, m.openssl, m.admin] {
        TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("port {port}: {e}"));
    }
}

#[test]
fn a_taken_admin_port_stops_mef_serve_with_the_setting_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let e = Mef::try_start(
        mef_bin(),
        &[],
        |_, _| {},
        &[
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            "127.0.0.1:0",
            "--admin-listen",
            &addr,
        ],
    )
    .unwrap_err();
    assert!(e.contains(&addr) && e.contains("--admin-listen"), "{e}");
}
