//! `enrol` as a user runs it: against micromdm's `scepserver` and against `mef`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::Peer;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn enrol(args: &[&str], env: &[(&str, &str)]) -> Output {
    run(env!("CARGO_BIN_EXE_enrol"), args, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn openssl_verify(ca: &Path, cert: &Path) -> bool {
    Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap()
        .status
        .success()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn enrol_against_micromdm_scepserver() {
    let v = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "scep"])
        .output()
        .unwrap();
    println!("peer: micromdm scepserver {}", String::from_utf8_lossy(&v.stdout));
    let d = tempfile::tempdir().unwrap();
    let depot = d.path().join("depot");
    assert!(Command::new("scepserver")
        .args(["ca", "-init", "-depot", p(&depot), "-keySize", "2048"])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    let srv = Peer::spawn(
        |port| {
            let mut c = Command::new("scepserver");
            c.arg("-depot")
                .arg(&depot)
                .args(["-port", &port.to_string(), "-challenge", "micromdm-secret"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        },
        Duration::from_secs(20),
    )
    .expect("scepserver did not start");
    let url = format!("http://127.0.0.1:{}/scep", srv.port);
    // AES negotiated from the server's caps, then DES3 (offered alone, which
    // the server's caps also list).
    for (cipher, cn, expect) in [
        (None, "enrolkit-vs-micromdm", "Aes128Cbc"),
        (Some("des3"), "enrolkit-vs-micromdm-des3", "DesEde3Cbc"),
    ] {
        let (key, cert) = (d.path().join(format!("{cn}.key")), d.path().join(format!("{cn}.pem")));
        let subject = format!("CN={cn}");
        let mut args = vec![
            "scep",
            "enrol",
            "--url",
            &url,
            "--subject",
            &subject,
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ];
        if let Some(c) = cipher {
            args.extend(["--cipher", c]);
        }
        let o = enrol(&args, &[("ENROL_CHALLENGE", "micromdm-secret")]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(expect), "{}", text(&o));
        assert!(openssl_verify(&depot.join("ca.pem"), &cert));
    }
    // A wrong challenge is a one-line error and a non-zero exit.
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &url,
            "--subject",
            "CN=other",
            "--key-out",
            p(&d.path().join("k2.pem")),
            "--cert-out",
            p(&d.path().join("c2.pem")),
        ],
        &[("ENROL_CHALLENGE", "wrong")],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("refused the request: badRequest"), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1, "{}", text(&o));
}

struct Mef {
    dir: tempfile::TempDir,
    url: String,
    _p: Proc,
}

fn mef_bin() -> PathBuf {
    // The mef binary sits beside enrol in the same target directory.
    Path::new(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

fn mef(m: &Mef, args: &[&str]) -> Output {
    let cfg = m.dir.path().join("st/mef.toml");
    let mut a = vec!["-c", p(&cfg)];
    a.extend_from_slice(args);
    run(p(&mef_bin()), &a, &[])
}

fn start_mef(manual: bool) -> Mef {
    let bin = mef_bin();
    assert!(bin.exists(), "build mef first (cargo test --workspace builds it)");
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st");
    assert!(run(p(&bin), &["init", "--dir", p(&st)], &[]).status.success());
    let cfg = st.join("mef.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace("manual_approval = false", &format!("manual_approval = {manual}"))
        .replace("renewal_window_days = 14", "renewal_window_days = 400")
        .replace(
            "crl_validity_hours = 24",
            "crl_validity_hours = 24\ncrl_refresh_seconds = 1",
        )
        .replace(
            "one_time_challenges = true",
            "one_time_challenges = true\nstatic_challenge = \"shared-secret\"",
        );
    std::fs::write(&cfg, text).unwrap();
    // It holds a static challenge: mef wants it private.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut child = Command::new(&bin)
        .args([
            "-c",
            p(&cfg),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().strip_prefix("mef: listening on ").unwrap().to_owned();
    Mef {
        dir,
        url,
        _p: Proc(child),
    }
}

#[test]
fn pending_approve_poll_renew_revoke_getcrl_through_the_clis() {
    let m = start_mef(true);
    let ch = String::from_utf8(mef(&m, &["challenge", "add", "--label", "d1"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let d = m.dir.path();
    let (key, cert, chain) = (d.join("k.pem"), d.join("c.pem"), d.join("chain.pem"));
    // Manual approval: the window runs out while PENDING.
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &m.url,
            "--subject",
            "CN=d1",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
            "--poll-interval",
            "1",
            "--poll-window",
            "2",
        ],
        &[("ENROL_CHALLENGE", &ch)],
    );
    assert!(
        !o.status.success() && text(&o).contains("window exceeded"),
        "{}",
        text(&o)
    );
    assert!(!cert.exists());
    let o = enrol(
        &[
            "scep",
            "poll",
            "--url",
            &m.url,
            "--key",
            p(&key),
            "--subject",
            "CN=d1",
            "--cert-out",
            p(&cert),
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("still pending"),
        "{}",
        text(&o)
    );
    // The operator approves; the next poll gets the certificate.
    let list = String::from_utf8(mef(&m, &["scep", "pending", "list"]).stdout).unwrap();
    let fields: Vec<&str> = list.lines().next().unwrap().split_whitespace().collect();
    let o = mef(&m, &["scep", "pending", "approve", fields[0], fields[1]]);
    assert!(o.status.success(), "{}", text(&o));
    let o = enrol(
        &[
            "scep",
            "poll",
            "--url",
            &m.url,
            "--key",
            p(&key),
            "--subject",
            "CN=d1",
            "--cert-out",
            p(&cert),
            "--chain-out",
            p(&chain),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(openssl_verify(&chain, &cert));

    // Renewal with a new key, signed by the current certificate.
    let (key2, cert2) = (d.join("k2.pem"), d.join("c2.pem"));
    let o = enrol(
        &[
            "scep",
            "renew",
            "--url",
            &m.url,
            "--key",
            p(&key),
            "--cert",
            p(&cert),
            "--new-key",
            "--key-out",
            p(&key2),
            "--cert-out",
            p(&cert2),
            "--poll-interval",
            "1",
            "--poll-window",
            "2",
        ],
        &[],
    );
    // Manual approval applies to renewals too: PENDING until the window runs out.
    assert!(
        !o.status.success() && text(&o).contains("window exceeded"),
        "{}",
        text(&o)
    );
    assert!(!cert2.exists());

    // Revoke the first certificate; GetCRL lists it and OpenSSL rejects the certificate with it.
    let serial = String::from_utf8(
        Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in", p(&cert)])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let serial = serial.trim().trim_start_matches("serial=").to_ascii_lowercase();
    assert!(mef(&m, &["revoke", &serial, "--reason", "key-compromise"])
        .status
        .success());
    let crl = d.join("ca.crl");
    let o = enrol(
        &[
            "scep",
            "getcrl",
            "--url",
            &m.url,
            "--key",
            p(&key),
            "--cert",
            p(&cert),
            "--out",
            p(&crl),
        ],
        &[],
    );
    assert!(o.status.success() && text(&o).contains("(1 revoked)"), "{}", text(&o));
    let v = Command::new("openssl")
        .args([
            "verify",
            "-crl_check",
            "-CAfile",
            p(&chain),
            "-CRLfile",
            p(&crl),
            p(&cert),
        ])
        .output()
        .unwrap();
    assert!(
        !v.status.success() && text(&v).contains("certificate revoked"),
        "{}",
        text(&v)
    );
    // The same CRL (not re-signed: same number) at /crl, fetched by curl, with the reason.
    let fetched = d.join("fetched.crl");
    let c = Command::new("curl")
        .args(["-sf", "-o", p(&fetched), &m.url.replace("/scep", "/crl")])
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", text(&c));
    let crl_text = |file: &Path, form: &str| {
        let o = Command::new("openssl")
            .args([
                "crl",
                "-inform",
                form,
                "-in",
                p(file),
                "-CAfile",
                p(&chain),
                "-noout",
                "-text",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let number = |t: &str| {
        t.lines()
            .skip_while(|l| !l.contains("X509v3 CRL Number"))
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let (got, fetched_text) = (crl_text(&crl, "PEM"), crl_text(&fetched, "DER"));
    assert!(fetched_text.contains("verify OK"), "{fetched_text}");
    assert!(fetched_text.to_ascii_lowercase().contains(&serial), "{fetched_text}");
    assert!(fetched_text.contains("Key Compromise"), "{fetched_text}");
    assert_eq!(number(&got), number(&fetched_text), "{got}\n{fetched_text}");
    // mef serve keeps st/crl.der current (checked every second here).
    let file = d.join("st/crl.der");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if file.exists() && crl_text(&file, "DER").to_ascii_lowercase().contains(&serial) {
            break;
        }
        assert!(Instant::now() < deadline, "crl.der never listed {serial}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // GetCert by serial returns the same certificate.
    let got = d.join("got.pem");
    let o = enrol(
        &[
            "scep",
            "getcert",
            "--url",
            &m.url,
            "--key",
            p(&key),
            "--cert",
            p(&cert),
            "--serial",
            &serial,
            "--out",
            p(&got),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&cert).unwrap());
}

#[test]
fn renewal_and_fingerprint_pinning_without_approval() {
    let m = start_mef(false);
    let ch = String::from_utf8(mef(&m, &["challenge", "add"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let d = m.dir.path();
    let (key, cert) = (d.join("k.pem"), d.join("c.pem"));
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &m.url,
            "--ca-fingerprint",
            "ab:cd",
            "--subject",
            "CN=r1",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ],
        &[("ENROL_CHALLENGE", &ch)],
    );
    assert!(
        !o.status.success() && text(&o).contains("does not match"),
        "{}",
        text(&o)
    );
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &m.url,
            "--key-type",
            "p256",
            "--subject",
            "CN=r1",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ],
        &[("ENROL_CHALLENGE", &ch)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let k = std::fs::read_to_string(&key).unwrap();
    assert!(k.contains("BEGIN PRIVATE KEY"));
    let pubkey = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", p(&cert)])
        .output()
        .unwrap();
    assert!(text(&pubkey).contains("prime256v1"), "{}", text(&pubkey));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // Renew an RSA certificate with a new key.
    let ch2 = String::from_utf8(mef(&m, &["challenge", "add"]).stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (rk, rc) = (d.join("rk.pem"), d.join("rc.pem"));
    assert!(enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &m.url,
            "--subject",
            "CN=r2",
            "--key-out",
            p(&rk),
            "--cert-out",
            p(&rc),
            "--der"
        ],
        &[("ENROL_CHALLENGE", &ch2)]
    )
    .status
    .success());
    let (nk, nc) = (d.join("nk.pem"), d.join("nc.pem"));
    let o = enrol(
        &[
            "scep",
            "renew",
            "--url",
            &m.url,
            "--key",
            p(&rk),
            "--cert",
            p(&rc),
            "--new-key",
            "--key-out",
            p(&nk),
            "--cert-out",
            p(&nc),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(openssl_verify(&m.dir.path().join("st/ca.pem"), &nc));
    // Renewal without a new key of the certificate the PKCSReq made still
    // gets a new certificate: its own transactionID, not the one the key's
    // enrolment used (which the server would answer with that enrolment).
    let nc2 = d.join("renewed-same-key.pem");
    let o = enrol(
        &[
            "scep",
            "renew",
            "--url",
            &m.url,
            "--key",
            p(&rk),
            "--cert",
            p(&rc),
            "--cert-out",
            p(&nc2),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(openssl_verify(&m.dir.path().join("st/ca.pem"), &nc2));
    let serial = |c: &Path| {
        let c = enrolkit_files::read_certificate(c).unwrap();
        hex::encode(c.tbs_certificate.serial_number.as_bytes())
    };
    assert_ne!(
        serial(&nc2),
        serial(&rc),
        "the renewal answered with the certificate it renews"
    );
    assert_ne!(serial(&nc2), serial(&nc));
}

#[test]
fn the_load_generator_runs_and_reports() {
    let m = start_mef(false);
    let o = enrol(
        &[
            "scep",
            "bench",
            "--url",
            &m.url,
            "--clients",
            "2",
            "--total",
            "6",
            "--prefix",
            "t",
        ],
        &[("ENROL_CHALLENGE", "shared-secret")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("ok=6 failed=0") && out.contains("throughput=") && out.contains("p99="),
        "{out}"
    );
    // A wrong shared challenge: every enrolment fails, and the exit code says so.
    let o = enrol(
        &[
            "scep",
            "bench",
            "--url",
            &m.url,
            "--clients",
            "1",
            "--total",
            "2",
            "--prefix",
            "u",
        ],
        &[("ENROL_CHALLENGE", "nope")],
    );
    assert!(
        !o.status.success() && text(&o).contains("ok=0 failed=2"),
        "{}",
        text(&o)
    );
}

/// A malformed `--subject` is refused before anything is generated or
/// sent: no key file is left behind (the key used to be generated, and
/// written, before the subject was parsed).
#[test]
fn a_malformed_subject_leaves_no_key_file_behind() {
    let m = start_mef(false);
    let d = m.dir.path();
    let (key, cert) = (d.join("bad-k.pem"), d.join("bad-c.pem"));
    let o = enrol(
        &[
            "scep",
            "enrol",
            "--url",
            &m.url,
            "--subject",
            "not a distinguished name",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ],
        &[("ENROL_CHALLENGE", "shared-secret")],
    );
    assert!(!o.status.success() && text(&o).contains("--subject"), "{}", text(&o));
    assert!(!key.exists(), "a key file was left behind");
    assert!(!cert.exists());
}
