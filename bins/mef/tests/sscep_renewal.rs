//! Renewal as deployed SCEP clients send it (sscep `-O old.crt -K old.key`,
//! Cisco IOS, macOS): a PKCSReq — not RenewalReq — signed by the current
//! certificate, with no challengePassword. Every message is built by tools
//! we did not write: OpenSSL makes keys, CSRs and the EnvelopedData
//! (`openssl cms -encrypt`), Python asn1crypto signs the pkiMessage with
//! SCEP's attributes (`testvectors/scep/make_pkcsreq_ber.py`; OpenSSL's
//! `cms` cannot add them), curl posts it, and the CertRep is read back with
//! asn1crypto (`read_certrep_status.py`) and `openssl cms -decrypt`.
//!
//! Accepted within the renewal window for the certificate's own names;
//! refused for another name, outside the window, and once revoked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The system Python, where Debian's python3-asn1crypto and
/// python3-cryptography are installed (`.ci/run`).
const PYTHON: &str = "/usr/bin/python3";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/scep")
}

fn run(cmd: &str, args: &[&str]) -> Output {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn versions() {
    let v = |cmd: &str, args: &[&str]| String::from_utf8_lossy(&run(cmd, args).stdout).trim().to_owned();
    println!("peer: {}", v("openssl", &["version"]));
    println!(
        "peer: asn1crypto {}",
        v(PYTHON, &["-c", "import asn1crypto; print(asn1crypto.__version__)"])
    );
    println!("peer: {}", v("curl", &["--version"]).lines().next().unwrap_or(""));
}

/// An RSA key (Python signs with RSA PKCS#1 v1.5) and its CSR for `cn`,
/// with `challenge` as challengePassword when given: OpenSSL.
fn key_and_csr(dir: &Path, name: &str, cn: &str, challenge: Option<&str>) -> (PathBuf, PathBuf) {
    let (key, csr, cnf) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr.der")),
        dir.join(format!("{name}.cnf")),
    );
    let attrs = challenge
        .map(|c| format!("attributes = attrs\n[attrs]\nchallengePassword = {c}\n"))
        .unwrap_or_default();
    std::fs::write(
        &cnf,
        format!("[req]\nprompt = no\ndistinguished_name = dn\n{attrs}[dn]\nCN = {cn}\n"),
    )
    .unwrap();
    if !key.exists() {
        run("openssl", &["genrsa", "-out", p(&key), "2048"]);
    }
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            p(&key),
            "-config",
            p(&cnf),
            "-outform",
            "DER",
            "-out",
            p(&csr),
        ],
    );
    (key, csr)
}

/// A pkiMessage (PKCSReq) for `csr`, encrypted to mef's RA, signed with
/// `signer` (certificate, key); posted; the CertRep's bytes.
fn pkcsreq(m: &Mef, dir: &Path, name: &str, csr: &Path, signer: (&Path, &Path)) -> Vec<u8> {
    let (env, msg) = (dir.join(format!("{name}.env.der")), dir.join(format!("{name}.msg.der")));
    run(
        "openssl",
        &[
            "cms",
            "-encrypt",
            "-binary",
            "-aes-128-cbc",
            "-in",
            p(csr),
            "-outform",
            "DER",
            "-out",
            p(&env),
            p(&m.st("ra.pem")),
        ],
    );
    run(
        PYTHON,
        &[
            p(&vectors().join("make_pkcsreq_ber.py")),
            "--envelope",
            p(&env),
            "--csr",
            p(csr),
            "--signer-cert",
            p(signer.0),
            "--signer-key",
            p(signer.1),
            "--out",
            p(&msg),
        ],
    );
    let url = format!("http://127.0.0.1:{}/scep?operation=PKIOperation", m.scep);
    run(
        "curl",
        &[
            "-sS",
            "--fail",
            "-H",
            "Content-Type: application/x-pki-message",
            "--data-binary",
            &format!("@{}", p(&msg)),
            "-o",
            p(&dir.join(format!("{name}.rep.der"))),
            &url,
        ],
    );
    std::fs::read(dir.join(format!("{name}.rep.der"))).unwrap()
}

/// `pkiStatus=…[ failInfo=…]` of a CertRep, by asn1crypto.
fn status(dir: &Path, name: &str) -> String {
    let o = run(
        PYTHON,
        &[
            p(&vectors().join("read_certrep_status.py")),
            p(&dir.join(format!("{name}.rep.der"))),
        ],
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The certificate of a SUCCESS CertRep, opened with OpenSSL by the recipient (the signer).
fn issued(dir: &Path, name: &str, recipient: (&Path, &Path)) -> PathBuf {
    let (inner, certs, pem) = (
        dir.join(format!("{name}.inner.der")),
        dir.join(format!("{name}.certs.der")),
        dir.join(format!("{name}.pem")),
    );
    let rep = dir.join(format!("{name}.rep.der"));
    let listed = dir.join(format!("{name}.listed.pem"));
    run(
        "openssl",
        &[
            "cms",
            "-verify",
            "-noverify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            p(&rep),
            "-out",
            p(&inner),
        ],
    );
    run(
        "openssl",
        &[
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            p(&inner),
            "-recip",
            p(recipient.0),
            "-inkey",
            p(recipient.1),
            "-out",
            p(&certs),
        ],
    );
    run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            p(&certs),
            "-print_certs",
            "-out",
            p(&listed),
        ],
    );
    // The one certificate, without print_certs' subject/issuer lines.
    run("openssl", &["x509", "-in", p(&listed), "-out", p(&pem)]);
    pem
}

fn subject(cert: &Path) -> String {
    String::from_utf8_lossy(&run("openssl", &["x509", "-in", p(cert), "-noout", "-subject"]).stdout)
        .trim()
        .to_owned()
}

fn serial(cert: &Path) -> String {
    let o = run("openssl", &["x509", "-in", p(cert), "-noout", "-serial"]);
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// A first enrolment with a one-time challenge, signed by a self-signed
/// certificate OpenSSL makes: the device's current certificate.
fn first_certificate(m: &Mef, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let otp = m.run(&["challenge", "add", "--label", cn]).trim().to_owned();
    let (key, csr) = key_and_csr(dir, cn, cn, Some(&otp));
    let selfsigned = dir.join(format!("{cn}.self.pem"));
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            p(&key),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "1",
            "-out",
            p(&selfsigned),
        ],
    );
    pkcsreq(m, dir, &format!("{cn}-first"), &csr, (&selfsigned, &key));
    assert_eq!(status(dir, &format!("{cn}-first")), "pkiStatus=0", "{}", m.log());
    (issued(dir, &format!("{cn}-first"), (&selfsigned, &key)), key)
}

#[test]
fn an_sscep_style_pkcsreq_renews_within_the_window_for_its_own_names_only() {
    versions();
    // Ten-day certificates, renewal opening 14 days before expiry: at once.
    let m = Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, cfg| {
        *cfg = cfg.replace("validity_days = 365", "validity_days = 10");
    });
    let dir = m.dir.path();
    let (old, old_key) = first_certificate(&m, dir, "dev-a");

    // sscep -O old.crt -K old.key: PKCSReq, new key, no challenge, signer = the old certificate.
    let (_, csr) = key_and_csr(dir, "dev-a-new", "dev-a", None);
    pkcsreq(&m, dir, "renew", &csr, (&old, &old_key));
    assert_eq!(status(dir, "renew"), "pkiStatus=0", "{}", m.log());
    let renewed = issued(dir, "renew", (&old, &old_key));
    assert_eq!(subject(&renewed), "subject=CN = dev-a");
    assert_ne!(serial(&renewed), serial(&old));
    run("openssl", &["verify", "-CAfile", p(&m.st("ca.pem")), p(&renewed)]);
    assert!(m.log().contains("basis=cert:"), "{}", m.log());

    // The same, asking for another device's name: FAILURE badRequest (2).
    let (_, csr_b) = key_and_csr(dir, "dev-b-new", "dev-b", None);
    pkcsreq(&m, dir, "steal", &csr_b, (&old, &old_key));
    assert_eq!(status(dir, "steal"), "pkiStatus=2 failInfo=2");

    // Revoked: refused.
    m.run(&["revoke", &serial(&old)]);
    let (_, csr2) = key_and_csr(dir, "dev-a-again", "dev-a", None);
    pkcsreq(&m, dir, "revoked", &csr2, (&old, &old_key));
    assert_eq!(status(dir, "revoked"), "pkiStatus=2 failInfo=2");
}

#[test]
fn an_sscep_style_pkcsreq_outside_the_window_is_refused() {
    // A year's certificate, a 14-day window: too early.
    let m = Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, _| {});
    let dir = m.dir.path();
    let (old, old_key) = first_certificate(&m, dir, "dev-c");
    let (_, csr) = key_and_csr(dir, "dev-c-new", "dev-c", None);
    pkcsreq(&m, dir, "early", &csr, (&old, &old_key));
    assert_eq!(status(dir, "early"), "pkiStatus=2 failInfo=2");
    assert!(m.log().contains("too early to renew"), "{}", m.log());
}
