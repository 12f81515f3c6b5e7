//! `enrol est` against `mef serve`: every operation, every authentication
//! (certificate, Basic, PSK), TLS 1.2 and 1.3 on both TLS stacks,
//! tls-unique and tls-exporter linking, 202 → approve → success, the oneM2M
//! flow; and `enrol est` against `openssl s_server` for the TLS layer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::Peer;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    PathBuf::from(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

struct Mef {
    dir: tempfile::TempDir,
    child: Child,
    rustls: u16,
    openssl: u16,
}

impl Drop for Mef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mef {
    fn start(edit: impl FnOnce(&mut toml::Table)) -> Mef {
        let bin = mef_bin();
        assert!(bin.exists(), "build mef first (cargo test --workspace builds it)");
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        assert!(Command::new(&bin)
            .args(["init", "--dir", p(&st)])
            .output()
            .unwrap()
            .status
            .success());
        let path = st.join("mef.toml");
        let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        // Unbound challenges may name DNS names under example.net (the
        // tests' dev.example.net); nothing else is admitted without a binding.
        cfg["profile"].as_table_mut().unwrap().insert(
            "allowed_dns_suffixes".into(),
            toml::Value::Array(vec!["example.net".into()]),
        );
        edit(cfg["est"].as_table_mut().unwrap());
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let mut child = Command::new(&bin)
            .args(["-c", p(&path), "serve", "--listen", "127.0.0.1:0"])
            .args(["--est-listen", "127.0.0.1:0", "--est-listen-openssl", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut rustls, mut openssl) = (0, 0);
        // Every listener is announced before "mef: ready".
        loop {
            let l = lines.next().expect("mef exited before it was ready").unwrap();
            if l == "mef: ready" {
                break;
            }
            if let Some(rest) = l.strip_prefix("mef: EST (") {
                let port = rest
                    .split(':')
                    .nth(2)
                    .unwrap()
                    .trim_end_matches("/.well-known/est/")
                    .parse()
                    .unwrap();
                if rest.starts_with("rustls") {
                    rustls = port;
                } else {
                    openssl = port;
                }
            }
        }
        Mef {
            dir,
            child,
            rustls,
            openssl,
        }
    }

    fn st(&self, f: &str) -> PathBuf {
        self.dir.path().join("st").join(f)
    }

    fn mef(&self, args: &[&str]) -> Output {
        let o = Command::new(mef_bin())
            .args(["-c", p(&self.st("mef.toml"))])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "mef {args:?}: {}", text(&o));
        if enrolkit_testkit::changes_handshake_keys(args) {
            std::thread::sleep(enrolkit_testkit::HANDSHAKE_KEYS_SETTLE);
        }
        o
    }

    fn fingerprint(&self) -> String {
        let o = Command::new("openssl")
            .args([
                "x509",
                "-in",
                p(&self.st("ca.pem")),
                "-noout",
                "-fingerprint",
                "-sha256",
            ])
            .output()
            .unwrap();
        String::from_utf8(o.stdout)
            .unwrap()
            .trim()
            .split('=')
            .nth(1)
            .unwrap()
            .to_owned()
    }

    fn server(&self, openssl: bool) -> String {
        format!("https://127.0.0.1:{}", if openssl { self.openssl } else { self.rustls })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// `enrol est --server … --ta ca.pem <args>`.
    fn enrol(&self, openssl: bool, args: &[&str]) -> Output {
        let server = self.server(openssl);
        let ca = self.st("ca.pem");
        Command::new(env!("CARGO_BIN_EXE_enrol"))
            .args(["est", "--server", &server, "--ta", p(&ca)])
            .args(args)
            .output()
            .unwrap()
    }
}

fn openssl_verify(ca: &Path, cert: &Path) {
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

/// The subject `enroll` asks for `cn`.
fn subject_of(cn: &str) -> String {
    format!("CN={cn},O=enrolkit test")
}

/// Enrol `name` with `auth` args; returns (cert, key) paths after checking the certificate.
fn enroll(m: &Mef, openssl: bool, name: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    enroll_as(m, openssl, name, name, args)
}

/// Provision PSK identity `id` with `key_file`, bound to `subject_of(cn)` and dev.example.net.
fn bound_psk(m: &Mef, id: &str, key_file: &Path, cn: &str) {
    let o = m.mef(&[
        "psk",
        "add",
        id,
        "--key-file",
        p(key_file),
        "--subject",
        &subject_of(cn),
        "--dns",
        "dev.example.net",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// As [`enroll`], files named `name`, the certificate for `cn` (what the
/// credential may obtain).
fn enroll_as(m: &Mef, openssl: bool, name: &str, cn: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let d = m.dir.path();
    let (cert, key) = (d.join(format!("{name}.pem")), d.join(format!("{name}.key")));
    let subject = subject_of(cn);
    let mut all = vec!["enroll", "--subject", subject.as_str(), "--dns", "dev.example.net"];
    all.extend(["--key-out", p(&key), "--cert-out", p(&cert)]);
    all.extend_from_slice(args);
    let o = m.enrol(openssl, &all);
    assert!(o.status.success(), "{name}: {}\n{}", text(&o), m.log());
    openssl_verify(&m.st("ca.pem"), &cert);
    (cert, key)
}

#[test]
fn every_operation_and_authentication_against_mef() {
    let m = Mef::start(|est| {
        est.insert("basic".into(), true.into());
    });
    let d = m.dir.path();

    // Bootstrap: without a pin nothing is trusted; with the right pin the CA is written.
    let server = m.server(false);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["est", "--server", &server, "cacerts"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("SHA-256") && text(&o).contains("not trusting"),
        "{}",
        text(&o)
    );
    let wrong = "00".repeat(32);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["est", "--server", &server, "--ca-fingerprint", &wrong, "cacerts"])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("fingerprint"), "{}", text(&o));
    let ca_out = d.join("bootstrapped-ca.pem");
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "est",
            "--server",
            &server,
            "--ca-fingerprint",
            &m.fingerprint(),
            "cacerts",
            "--out",
            p(&ca_out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&ca_out).unwrap().trim(),
        std::fs::read_to_string(m.st("ca.pem")).unwrap().trim()
    );

    // Basic with a one-time challenge, TLS 1.3 and 1.2 on rustls.
    for (i, tls) in ["1.3", "1.2"].into_iter().enumerate() {
        let pwf = d.join(format!("pw{i}"));
        std::fs::write(&pwf, String::from_utf8(m.mef(&["challenge", "add"]).stdout).unwrap()).unwrap();
        enroll(
            &m,
            false,
            &format!("basic-{i}"),
            &["--tls", tls, "--basic-user", "dev", "--basic-password-file", p(&pwf)],
        );
    }

    // PSK, TLS 1.2 and 1.3, on the OpenSSL listener.
    let kf = d.join("kpm.hex");
    std::fs::write(&kf, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
    bound_psk(&m, "kpm-7", &kf, "psk-device");
    for tls in ["1.2", "1.3"] {
        enroll_as(
            &m,
            true,
            &format!("psk-{tls}"),
            "psk-device",
            &["--tls", tls, "--psk-identity", "kpm-7", "--psk-file", p(&kf)],
        );
    }
    assert!(m.log().contains("auth=psk:kpm-7"), "{}", m.log());

    // A certificate we issued authenticates further enrolments for its own
    // names, on both stacks; for another name it is refused.
    let (cert, key) = enroll_as(
        &m,
        true,
        "cert-base",
        "psk-device",
        &["--psk-identity", "kpm-7", "--psk-file", p(&kf)],
    );
    for (openssl, tls) in [(false, "1.3"), (false, "1.2"), (true, "1.3"), (true, "1.2")] {
        enroll_as(
            &m,
            openssl,
            &format!("bycert-{openssl}-{tls}"),
            "psk-device",
            &["--tls", tls, "--cert", p(&cert), "--key", p(&key)],
        );
    }
    let o = m.enrol(
        false,
        &[
            "--cert",
            p(&cert),
            "--key",
            p(&key),
            "enroll",
            "--subject",
            &subject_of("another-device"),
            "--key-out",
            p(&d.join("other.key")),
            "--cert-out",
            p(&d.join("other.pem")),
        ],
    );
    assert!(!o.status.success() && text(&o).contains("403"), "{}", text(&o));
    assert!(!d.join("other.pem").exists(), "nothing written on a refusal");

    // simplereenroll with the current certificate (same key, then a new key).
    // Without a new key the answer is still a new certificate (not the one
    // being renewed), a repeat with the same client certificate gets that
    // same answer, and renewing the renewed one gives another.
    let serial = |c: &Path| {
        let c = enrolkit_files::read_certificate(c).unwrap();
        hex::encode(c.tbs_certificate.serial_number.as_bytes())
    };
    let (re, re_key) = (d.join("re.pem"), d.join("re.key"));
    let reenroll = |current: &Path, out: &Path| {
        let o = m.enrol(
            false,
            &["--cert", p(current), "--key", p(&key), "reenroll", "--cert-out", p(out)],
        );
        assert!(o.status.success(), "{}", text(&o));
        openssl_verify(&m.st("ca.pem"), out);
        serial(out)
    };
    let renewed = reenroll(&cert, &re);
    assert_ne!(
        renewed,
        serial(&cert),
        "simplereenroll answered with the certificate it renews"
    );
    assert_eq!(
        reenroll(&cert, &d.join("re-again.pem")),
        renewed,
        "a repeat is answered alike"
    );
    let twice = reenroll(&re, &d.join("re-twice.pem"));
    assert!(twice != renewed && twice != serial(&cert));
    let o = m.enrol(
        true,
        &[
            "--cert",
            p(&cert),
            "--key",
            p(&key),
            "reenroll",
            "--key-out",
            p(&re_key),
            "--cert-out",
            p(&re),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    openssl_verify(&m.st("ca.pem"), &re);

    // serverkeygen.
    let (kg, kg_key) = (d.join("kg.pem"), d.join("kg.key"));
    let o = m.enrol(
        false,
        &[
            "--cert",
            p(&cert),
            "--key",
            p(&key),
            "serverkeygen",
            "--subject",
            &subject_of("psk-device"),
            "--key-out",
            p(&kg_key),
            "--cert-out",
            p(&kg),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    openssl_verify(&m.st("ca.pem"), &kg);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&kg_key).unwrap().permissions().mode() & 0o777, 0o600);
    let o = Command::new("openssl")
        .args(["x509", "-in", p(&kg), "-noout", "-pubkey"])
        .output()
        .unwrap();
    let o2 = Command::new("openssl")
        .args(["pkey", "-in", p(&kg_key), "-pubout"])
        .output()
        .unwrap();
    assert_eq!(o.stdout, o2.stdout, "the server-made key matches its certificate");

    // No credentials: refused with a reason.
    let o = m.enrol(
        false,
        &[
            "enroll",
            "--subject",
            "CN=nobody",
            "--key-out",
            p(&d.join("n.key")),
            "--cert-out",
            p(&d.join("n.pem")),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("401"), "{}", text(&o));
    assert!(!d.join("n.key").exists(), "nothing written on failure");

    // csrattrs: none configured.
    let o = m.enrol(false, &["csrattrs"]);
    assert!(o.status.success() && text(&o).contains("none"), "{}", text(&o));
}

#[test]
fn linking_with_tls_unique_and_tls_exporter() {
    let m = Mef::start(|est| {
        est.insert("require_linking".into(), true.into());
    });
    let d = m.dir.path();
    let kf = d.join("kpm.hex");
    std::fs::write(&kf, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf").unwrap();
    bound_psk(&m, "kpm-linked", &kf, "linked");
    let psk = ["--psk-identity", "kpm-linked", "--psk-file", p(&kf)];
    let o = m.enrol(false, &["csrattrs"]);
    assert!(text(&o).contains("challengePassword"), "{}", text(&o));
    // TLS 1.2 on OpenSSL: tls-unique; TLS 1.3: tls-exporter.
    let mut args = psk.to_vec();
    args.extend(["--tls", "1.2"]);
    enroll_as(&m, true, "unique", "linked", &args);
    let mut args = psk.to_vec();
    args.extend(["--tls", "1.3"]);
    let (cert, key) = enroll_as(&m, true, "exporter", "linked", &args);
    enroll_as(
        &m,
        false,
        "exporter-rustls",
        "linked",
        &["--tls", "1.3", "--cert", p(&cert), "--key", p(&key)],
    );
    // rustls has no tls-unique: TLS 1.2 there cannot link, and says so.
    let o = m.enrol(
        false,
        &[
            "--tls",
            "1.2",
            "--cert",
            p(&cert),
            "--key",
            p(&key),
            "enroll",
            "--subject",
            "CN=x",
            "--key-out",
            p(&d.join("x.key")),
            "--cert-out",
            p(&d.join("x.pem")),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("channel binding"), "{}", text(&o));
    let log = m.log();
    assert!(log.contains("TLSv1.2") && log.contains("TLSv1.3"), "{log}");
}

#[test]
fn accepted_202_then_approved() {
    let m = Mef::start(|est| {
        est.insert("manual_approval".into(), true.into());
        est.insert("retry_after_seconds".into(), 1.into());
        // /csrattrs asks for serverAuth, which the profile does not have.
        let server_auth = toml::Value::Array(vec!["1.3.6.1.5.5.7.3.1".into()]);
        est.insert("allowed_ekus".into(), server_auth.clone());
        est.insert("requested_ekus".into(), server_auth);
    });
    let d = m.dir.path();
    let kf = d.join("kpm.hex");
    std::fs::write(&kf, "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfb0b1b2b3b4b5b6b7b8b9babbbcbdbebf").unwrap();
    let o = m.mef(&[
        "psk",
        "add",
        "kpm-wait",
        "--key-file",
        p(&kf),
        "--subject",
        "CN=waiting",
        "--ip",
        "192.0.2.7",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (cert, key) = (d.join("w.pem"), d.join("w.key"));
    let server = m.server(true);
    let ca = m.st("ca.pem");
    let child = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "est",
            "--server",
            &server,
            "--ta",
            p(&ca),
            "--psk-identity",
            "kpm-wait",
            "--psk-file",
            p(&kf),
        ])
        .args(["--wait-window", "60", "--max-retry-interval", "1"])
        .args([
            "enroll",
            "--subject",
            "CN=waiting",
            "--ip",
            "192.0.2.7",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pending = loop {
        let out = String::from_utf8(m.mef(&["scep", "pending", "list"]).stdout).unwrap();
        if let Some(line) = out.lines().find(|l| l.contains("waiting")) {
            break line.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never pending: {}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // What approval would issue: the names, the EKUs decided when it was held, the key.
    assert!(
        pending.contains("subject=CN=waiting")
            && pending.contains("ip=192.0.2.7")
            && pending.contains("eku=1.3.6.1.5.5.7.3.1")
            && pending.contains("key=EC P-256"),
        "{pending}"
    );
    let mut f = pending.split_whitespace();
    let (tx, kid) = (f.next().unwrap().to_owned(), f.next().unwrap().to_owned());
    std::thread::sleep(Duration::from_millis(1500));
    m.mef(&["scep", "pending", "approve", &tx, &kid]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("202 accepted"), "progress shown: {}", text(&o));
    openssl_verify(&ca, &cert);
    assert!(m.log().contains("status=202"));
    // Approval issued what an immediate issuance would have: the requested
    // EKU and the IP address from the CSR.
    let x = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "extendedKeyUsage,subjectAltName",
            "-in",
            p(&cert),
        ])
        .output()
        .unwrap();
    let x = text(&x);
    assert!(x.contains("TLS Web Server Authentication"), "{x}");
    assert!(x.contains("IP Address:192.0.2.7"), "{x}");
}

#[test]
fn onem2m_flow_end_to_end() {
    let m = Mef::start(|est| {
        est.insert("onem2m".into(), true.into());
        est.insert("require_linking".into(), true.into());
        // id-kp-clientAuth and id-kp-serverAuth, as the enrolment instructions list them.
        let ekus = toml::Value::Array(vec!["1.3.6.1.5.5.7.3.2".into(), "1.3.6.1.5.5.7.3.1".into()]);
        est.insert("requested_ekus".into(), ekus.clone());
        est.insert("allowed_ekus".into(), ekus);
    });
    let d = m.dir.path();
    let kf = d.join("kpm.hex");
    std::fs::write(&kf, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf").unwrap();
    let o = m.mef(&[
        "psk",
        "add",
        "kpm-onem2m",
        "--key-file",
        p(&kf),
        "--subject",
        "CN=CAE-onem2m-1,O=enrolkit test",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = d.join("installed");
    let server = m.server(true);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["est", "--server", &server, "--ca-fingerprint", &m.fingerprint()])
        .args(["--psk-identity", "kpm-onem2m", "--psk-file", p(&kf)])
        .args([
            "onem2m",
            "--subject",
            "CN=CAE-onem2m-1,O=enrolkit test",
            "--out-dir",
            p(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    for n in 1..=13 {
        assert!(
            text(&o).contains(&format!("[{n:>2}]")),
            "step {n} missing: {}",
            text(&o)
        );
    }
    openssl_verify(&out.join("ca.pem"), &out.join("cert.pem"));
    let o = Command::new("openssl")
        .args([
            "x509",
            "-in",
            p(&out.join("cert.pem")),
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ])
        .output()
        .unwrap();
    let t = text(&o);
    assert!(
        t.contains("TLS Web Client Authentication") && t.contains("TLS Web Server Authentication"),
        "{t}"
    );
    // The oneM2M profile refuses Basic at start-up.
    let path = m.st("mef.toml");
    let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    cfg["est"].as_table_mut().unwrap().insert("basic".into(), true.into());
    std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    let o = Command::new(mef_bin())
        .args(["-c", p(&path), "serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("Basic"), "{}", text(&o));
}

#[test]
fn enrol_est_tls_layer_against_openssl_s_server() {
    let v = Command::new("openssl").arg("version").output().unwrap();
    println!("peer: {}", String::from_utf8_lossy(&v.stdout).trim());
    let m = Mef::start(|_| {});
    let d = m.dir.path();
    let kf = d.join("kpm.hex");
    std::fs::write(&kf, "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf").unwrap();
    bound_psk(&m, "kpm-s", &kf, "client");
    let (cert, key) = enroll(&m, true, "client", &["--psk-identity", "kpm-s", "--psk-file", p(&kf)]);
    // s_server with mef's TLS certificate, requiring a client certificate from our CA.
    let mut s = Peer::spawn(
        |port| {
            let mut c = Command::new("openssl");
            c.args(["s_server", "-accept", &port.to_string(), "-cert"])
                .arg(m.st("est-server.pem"))
                .arg("-key")
                .arg(m.st("est-server.key.pem"))
                .arg("-CAfile")
                .arg(m.st("ca.pem"))
                .args(["-Verify", "1", "-www"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c
        },
        Duration::from_secs(10),
    )
    .unwrap();
    let port = s.port;
    let server = format!("https://127.0.0.1:{port}");
    let ca = m.st("ca.pem");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_enrol"))
            .args(["est", "--server", &server, "--ta", p(&ca)])
            .args(extra)
            .arg("csrattrs")
            .output()
            .unwrap()
    };
    // With our certificate the handshake completes (s_server -www answers
    // with its HTML status page, which enrol rejects at the HTTP layer).
    let o = run(&["--cert", p(&cert), "--key", p(&key)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("Content-Type"),
        "TLS completed, HTTP reached: {}",
        text(&o)
    );
    // Without one, s_server refuses the handshake.
    let o = run(&[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("SSL") || text(&o).contains("TLS"), "{}", text(&o));
    let _ = s.child.kill();
    let mut log = String::new();
    s.child.stdout.take().unwrap().read_to_string(&mut log).unwrap();
    s.child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(
        log.contains("CN = client") || log.contains("CN=client"),
        "s_server saw our certificate: {log}"
    );
}

#[test]
fn the_est_load_generator_enrols_with_client_certificates() {
    // Linking required: every bench CSR carries its own connection's binding.
    let m = Mef::start(|est| {
        est.insert("require_linking".into(), true.into());
    });
    let kf = m.dir.path().join("kpm.hex");
    std::fs::write(&kf, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf").unwrap();
    bound_psk(&m, "kpm-bench", &kf, "bench-client");
    let (cert, key) = enroll(
        &m,
        true,
        "bench-client",
        &["--psk-identity", "kpm-bench", "--psk-file", p(&kf)],
    );
    for openssl in [false, true] {
        let o = m.enrol(
            openssl,
            &[
                "--cert",
                p(&cert),
                "--key",
                p(&key),
                "bench",
                "--clients",
                "3",
                "--total",
                "9",
                "--subject",
                &subject_of("bench-client"),
            ],
        );
        let out = text(&o);
        assert!(o.status.success(), "{out}\n{}", m.log());
        assert!(out.contains("ok=9 failed=0"), "{out}");
        assert!(out.contains("throughput=") && out.contains("p99="), "{out}");
    }
    // Each enrolment really reached the CA: 18 bench certificates issued,
    // authorised by the client certificate, on both TLS stacks.
    let log = m.log();
    let issued = log
        .lines()
        .filter(|l| {
            l.contains("simpleenroll")
                && l.contains("status=200")
                && l.contains("auth=cert:")
                && l.contains("subject=CN=bench-")
        })
        .count();
    assert_eq!(issued, 18, "{log}");
}

/// Provision PSK identity `id` (fixed key) and return its key file.
fn add_psk(m: &Mef, id: &str) -> PathBuf {
    let kf = m.dir.path().join(format!("{id}.hex"));
    std::fs::write(&kf, "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf").unwrap();
    m.mef(&["psk", "add", id, "--key-file", p(&kf)]);
    kf
}

/// `enrol est` on the OpenSSL listener with PSK `id`, waiting on 202 (1 s at most between tries).
fn enrol_psk(m: &Mef, id: &str, kf: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_enrol"));
    c.args(["est", "--server", &m.server(true), "--ta", p(&m.st("ca.pem"))])
        .args(["--psk-identity", id, "--psk-file", p(kf)])
        .args(["--wait-window", "60", "--max-retry-interval", "1"]);
    c
}

/// The `mef est pending list` line naming `needle`, once it is there: (transaction, key id).
fn wait_pending(m: &Mef, needle: &str) -> (String, String) {
    let started = Instant::now();
    loop {
        let out = String::from_utf8(m.mef(&["est", "pending", "list"]).stdout).unwrap();
        if let Some(line) = out.lines().find(|l| l.contains(needle)) {
            let mut f = line.split_whitespace();
            return (f.next().unwrap().to_owned(), f.next().unwrap().to_owned());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{needle} never pending: {}",
            m.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn openssl_out(args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    o.stdout
}

#[test]
fn serverkeygen_held_for_approval_is_delivered_once() {
    let m = Mef::start(|est| {
        est.insert("manual_approval".into(), true.into());
        est.insert("retry_after_seconds".into(), 1.into());
    });
    let d = m.dir.path();
    // Unbound PSK identities: each obtains CN=<identity>.
    let kf = add_psk(&m, "keygen-held");
    let kf_rejected = add_psk(&m, "keygen-rejected");
    let (key, cert, csr_key) = (d.join("kg.key"), d.join("kg.pem"), d.join("kg-csr.key"));
    let child = enrol_psk(&m, "keygen-held", &kf)
        .args(["serverkeygen", "--subject", "CN=keygen-held", "--csr-key", p(&csr_key)])
        .args(["--key-out", p(&key), "--cert-out", p(&cert)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, kid) = wait_pending(&m, "keygen-held");
    // Held under the SHA-256 of the CSR key's SubjectPublicKeyInfo.
    let csr_spki = openssl_out(&["pkey", "-in", p(&csr_key), "-pubout", "-outform", "DER"]);
    let csr_kid = hex::encode(openssl_out_stdin(&["dgst", "-sha256", "-binary"], &csr_spki));
    assert_eq!(
        (tx.as_str(), kid.as_str()),
        (format!("est-keygen-{csr_kid}").as_str(), csr_kid.as_str())
    );
    assert!(!key.exists(), "no key before approval");
    m.mef(&["est", "pending", "approve", &tx, &kid]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    assert!(text(&o).contains("202 accepted"), "progress shown: {}", text(&o));
    openssl_verify(&m.st("ca.pem"), &cert);
    // The key the server made is the certificate's, not the CSR's, and private.
    let key_pub = openssl_out(&["pkey", "-in", p(&key), "-pubout"]);
    assert_eq!(key_pub, openssl_out(&["x509", "-in", p(&cert), "-noout", "-pubkey"]));
    assert_ne!(key_pub, openssl_out(&["pkey", "-in", p(&csr_key), "-pubout"]));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Nowhere in the database in the clear (it was sealed, and is gone).
    let key_der = openssl_out(&["pkey", "-in", p(&key), "-outform", "DER"]);
    for f in ["mef.db", "mef.db-wal"] {
        let db = std::fs::read(m.st(f)).unwrap_or_default();
        assert!(!db.windows(key_der.len()).any(|w| w == key_der.as_slice()), "{f}");
    }
    // The same request again: delivered once, refused with the reason.
    let (key2, cert2) = (d.join("kg2.key"), d.join("kg2.pem"));
    let o = enrol_psk(&m, "keygen-held", &kf)
        .args(["serverkeygen", "--subject", "CN=keygen-held", "--csr-key", p(&csr_key)])
        .args(["--key-out", p(&key2), "--cert-out", p(&cert2)])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o)
            .contains("HTTP 410: the server-generated key for this request was already delivered; send a new request"),
        "{}",
        text(&o)
    );
    assert!(!key2.exists() && !cert2.exists());
    // Rejected: 403 with the operator's reason.
    let child = enrol_psk(&m, "keygen-rejected", &kf_rejected)
        .args(["serverkeygen", "--subject", "CN=keygen-rejected"])
        .args(["--key-out", p(&d.join("kr.key")), "--cert-out", p(&d.join("kr.pem"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, kid) = wait_pending(&m, "keygen-rejected");
    m.mef(&["est", "pending", "reject", &tx, &kid]);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("HTTP 403: rejected: rejected by the operator"),
        "{}",
        text(&o)
    );
    assert!(!d.join("kr.key").exists());
    let log = m.log();
    assert!(log.contains("status=202") && log.contains("status=410"), "{log}");
}

fn openssl_out_stdin(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    o.stdout
}
