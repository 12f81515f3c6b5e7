//! The client trust core under attack (issue F): a man-in-the-middle on
//! the plain-HTTP SCEP path, a server that hides its capabilities, an EST
//! `/cacerts` carrying a certificate that does not chain to the pin. Each
//! was seen passing the attack through before the fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_client::{PollPolicy, ScepClient, ScepSession, Trust};
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use enrolkit_pki::Authority;
use enrolkit_pkix::pkcs10::RequestParams;
use enrolkit_scep::CaCertificates;
use enrolkit_testkit::http::{self, HttpStub, Response};
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;

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
    Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(args)
        .env("ENROL_CHALLENGE", "shared-secret")
        .output()
        .unwrap()
}

fn static_challenge(cfg: &mut String) {
    *cfg = cfg.replace(
        "one_time_challenges = true",
        "one_time_challenges = true\nstatic_challenge = \"shared-secret\"",
    );
}

fn fingerprint(c: &Certificate) -> String {
    enrolkit_pkix::fingerprint::sha256_der(&der::Encode::to_der(c).unwrap())
}

/// An attacker's CA with the real CA's name, and an "RA" it certified:
/// issuer name = the CA's subject, id-kp-cmcRA, signed by the attacker.
fn forged_ra(ca: &Certificate) -> Certificate {
    let now = SystemTime::now() - Duration::from_secs(3600);
    let rng = &mut rand_core::OsRng;
    let attacker = Authority::new_root(
        Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
        ca.tbs_certificate.subject.clone(),
        now,
        Duration::from_secs(30 * 86400),
        rng,
    )
    .unwrap();
    let ra_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ra = attacker
        .certify_ra(
            ra_key.public_key(),
            Name::from_str("CN=mef RA").unwrap(),
            now,
            Duration::from_secs(30 * 86400),
            rng,
        )
        .unwrap();
    assert_eq!(ra.tbs_certificate.issuer, ca.tbs_certificate.subject);
    ra
}

/// A MITM in front of `mef`: GetCACaps forwarded, GetCACert answered with
/// the real CA and a forged RA, anything else (a PKIOperation) recorded
/// and refused.
fn mitm(mef: &Mef) -> (HttpStub, String) {
    let ca = enrolkit_files::read_certificate(&mef.st("ca.pem")).unwrap();
    let pin = fingerprint(&ca);
    let (ct, body) = CaCertificates {
        ca: ca.clone(),
        ra: vec![forged_ra(&ca)],
        chain: vec![],
    }
    .to_response()
    .unwrap();
    let port = mef.scep;
    let stub = HttpStub::start(move |req| match req.query("operation") {
        Some("GetCACaps") => http::get(port, &req.target),
        Some("GetCACert") => Response::new(200, ct, body.clone()),
        _ => Response::new(500, "text/plain", "MITM: got the request"),
    });
    (stub, pin)
}

fn pki_operations(stub: &HttpStub) -> usize {
    stub.requests()
        .iter()
        .filter(|r| r.query("operation") == Some("PKIOperation"))
        .count()
}

#[test]
fn scep_session_refuses_a_forged_ra_named_like_the_ca_before_sending_anything() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| static_challenge(cfg));
    let (stub, pin) = mitm(&mef);
    let client = ScepClient::new(&stub.url("/scep"), Duration::from_secs(10)).unwrap();
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let params = RequestParams {
        digest: enrolkit_keys::DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=victim").unwrap())
    }
    .with_challenge_password(Some("shared-secret"));
    let poll = PollPolicy {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(1),
    };
    let outcome =
        ScepSession::open(client, &Trust::pin(&pin)).and_then(|s| s.enrol(&key, &params, poll, &mut |_, _| {}));
    let sent = pki_operations(&stub);
    let err = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(sent, 0, "the request reached the MITM ({err})");
    assert!(err.contains("CN=mef RA") && err.contains("not signed"), "{err}");
}

#[test]
fn enrol_scep_refuses_a_forged_ra_named_like_the_ca_before_sending_anything() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| static_challenge(cfg));
    let (stub, pin) = mitm(&mef);
    let d = tempfile::tempdir().unwrap();
    let (key, cert) = (d.path().join("k.pem"), d.path().join("c.pem"));
    let url = stub.url("/scep");
    let o = enrol(&[
        "scep",
        "enrol",
        "--url",
        &url,
        "--ca-fingerprint",
        &pin,
        "--subject",
        "CN=victim",
        "--key-out",
        p(&key),
        "--cert-out",
        p(&cert),
    ]);
    assert_eq!(pki_operations(&stub), 0, "the request reached the MITM: {}", text(&o));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("CN=mef RA") && text(&o).contains("not signed"),
        "{}",
        text(&o)
    );
    assert!(!cert.exists() && !key.exists(), "nothing is written");
    // Straight to mef, the same command enrols: the refusal was the MITM's doing.
    let o = enrol(&[
        "scep",
        "enrol",
        "--url",
        &format!("http://127.0.0.1:{}/scep", mef.scep),
        "--ca-fingerprint",
        &pin,
        "--subject",
        "CN=victim",
        "--key-out",
        p(&key),
        "--cert-out",
        p(&cert),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A server whose GetCACaps fails: everything else goes to `mef`.
fn no_caps(mef: &Mef) -> HttpStub {
    let port = mef.scep;
    HttpStub::start(move |req| match req.query("operation") {
        Some("GetCACaps") => Response::new(500, "text/plain", "internal error"),
        _ if req.method == "GET" => http::get(port, &req.target),
        _ => Response::new(405, "text/plain", "GET only"),
    })
}

#[test]
fn a_failed_getcacaps_is_no_silent_downgrade_to_des3_and_sha1() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| static_challenge(cfg));
    let stub = no_caps(&mef);
    let d = tempfile::tempdir().unwrap();
    let (key, cert) = (d.path().join("k.pem"), d.path().join("c.pem"));
    let url = stub.url("/scep");
    let args = [
        "scep",
        "enrol",
        "--url",
        &url,
        "--subject",
        "CN=legacy",
        "--key-out",
        p(&key),
        "--cert-out",
        p(&cert),
    ];
    let o = enrol(&args);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("GetCACaps") && text(&o).contains("--legacy"),
        "{}",
        text(&o)
    );
    assert_eq!(pki_operations(&stub), 0);
    assert!(!cert.exists());
    let mut legacy = args.to_vec();
    legacy.insert(2, "--legacy");
    let o = enrol(&legacy);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("DesEde3Cbc") && text(&o).contains("Sha1"),
        "{}",
        text(&o)
    );
    assert_eq!(pki_operations(&stub), 1);
}

/// A self-signed CA certificate made by OpenSSL: what an attacker (or a
/// careless server) adds to `/cacerts`.
fn openssl_ca(dir: &Path, cn: &str) -> PathBuf {
    let (k, c) = (dir.join(format!("{cn}.key")), dir.join(format!("{cn}.pem")));
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "30",
            "-keyout",
            p(&k),
            "-out",
            p(&c),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl req: {}", text(&o));
    c
}

#[test]
fn est_bootstrap_trusts_and_writes_only_the_pinned_chain() {
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        openssl_ca(st, "Attacker CA");
        *cfg = cfg.replace("ca_chain = []", "ca_chain = [\"Attacker CA.pem\"]");
    });
    let ca = enrolkit_files::read_certificate(&mef.st("ca.pem")).unwrap();
    let attacker = enrolkit_files::read_certificate(&mef.st("Attacker CA.pem")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("bundle.pem");
    let server = format!("https://127.0.0.1:{}", mef.rustls);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "est",
            "--server",
            &server,
            "--ca-fingerprint",
            &fingerprint(&ca),
            "cacerts",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let written = enrolkit_files::read_certificates(&out).unwrap();
    assert!(
        !written.contains(&attacker),
        "the attacker's certificate was written:\n{}",
        text(&o)
    );
    assert_eq!(written, vec![ca], "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("Attacker CA") && stderr.contains("not trusted"),
        "the dropped certificate is reported: {stderr}"
    );
}
