//! `enrol scep` in the forms deployed SCEP servers expect (issue I): a
//! renewal sent as a PKCSReq signed by the current certificate, for
//! servers that do not know RenewalReq (EJBCA, Dogtag), checked on `mef`'s
//! log of the message type it received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mef_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

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

fn enrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enrol")).args(args).output().unwrap()
}

fn verify(ca: &Path, cert: &Path) {
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

/// The CA's SHA-256 fingerprint, by OpenSSL.
fn fingerprint(ca: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", p(ca)])
        .output()
        .unwrap();
    let t = String::from_utf8(o.stdout).unwrap();
    t.trim().rsplit('=').next().unwrap().to_owned()
}

/// The message types `mef` logged for PKIOperation, in order (logged as
/// `message_type=PKCSReq(19)`; other operations log an empty one).
fn message_types(m: &Mef) -> Vec<String> {
    m.log()
        .lines()
        .filter_map(|l| l.split("message_type=").nth(1))
        .filter(|rest| !rest.starts_with(' '))
        .map(|rest| {
            let word = rest.split_whitespace().next().unwrap_or("");
            word.split('(').next().unwrap_or(word).to_owned()
        })
        .collect()
}

/// A first certificate for `cn` by a one-time challenge bound to it.
fn first(m: &Mef, d: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let subject = format!("CN={cn}");
    let challenge = m.run(&["challenge", "add", "--subject", &subject]).trim().to_owned();
    let (key, cert) = (d.join(format!("{cn}.key")), d.join(format!("{cn}.pem")));
    let url = format!("http://127.0.0.1:{}/scep", m.scep);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "scep",
            "enrol",
            "--url",
            &url,
            "--ca-fingerprint",
            &fingerprint(&m.st("ca.pem")),
        ])
        .args(["--subject", &subject, "--key-out", p(&key), "--cert-out", p(&cert)])
        .env("ENROL_CHALLENGE", &challenge)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    (key, cert)
}

#[test]
fn renew_as_pkcsreq_is_a_pkcsreq_signed_by_the_current_certificate_and_mef_renews_it() {
    // Ten-day certificates, renewal opening 14 days before expiry: at once.
    let m = Mef::start(&mef_bin(), &[], |_, cfg| {
        *cfg = cfg.replace("validity_days = 365", "validity_days = 10");
    });
    let d = m.dir.path();
    let ca = m.st("ca.pem");
    let url = format!("http://127.0.0.1:{}/scep", m.scep);
    let fp = fingerprint(&ca);
    let (key, cert) = first(&m, d, "field-renew");
    let before = message_types(&m).len();

    let (nk, nc) = (d.join("new.key"), d.join("new.pem"));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&key),
        "--cert",
        p(&cert),
        "--new-key",
        "--key-out",
        p(&nk),
        "--cert-out",
        p(&nc),
        "--as-pkcsreq",
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    verify(&ca, &nc);
    let sent = message_types(&m);
    assert_eq!(sent[before..], ["PKCSReq"], "{sent:?}");

    // Without the flag, mef (which lists Renewal) gets a RenewalReq.
    let (nk2, nc2) = (d.join("new2.key"), d.join("new2.pem"));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&nk),
        "--cert",
        p(&nc),
        "--new-key",
        "--key-out",
        p(&nk2),
        "--cert-out",
        p(&nc2),
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    verify(&ca, &nc2);
    let sent = message_types(&m);
    assert_eq!(sent.last().map(String::as_str), Some("RenewalReq"), "{sent:?}");

    // A PKCSReq renewal for a certificate we did not issue is no renewal:
    // without a challenge it is refused.
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=field-renew",
        ])
        .args(["-keyout", p(&d.join("rogue.key")), "-out", p(&d.join("rogue.pem"))])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&d.join("rogue.key")),
        "--cert",
        p(&d.join("rogue.pem")),
        "--new-key",
        "--key-out",
        p(&d.join("r.key")),
        "--cert-out",
        p(&d.join("r.pem")),
        "--as-pkcsreq",
    ]);
    assert!(!o.status.success(), "a self-signed certificate renewed: {}", text(&o));
    assert!(!d.join("r.pem").exists());
}
