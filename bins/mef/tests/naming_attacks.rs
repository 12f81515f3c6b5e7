//! Issue F's attacks on the naming rule, end to end against `mef serve`
//! with tools we did not write (OpenSSL, asn1crypto, curl): each was
//! answered with a certificate by mef before the authorisation core.
//!
//! - device A's certificate as EST TLS client certificate, asking for B;
//! - a SCEP RenewalReq signed by A's certificate, asking for B;
//! - an unbound one-time challenge asking for `evilexample.com` under the
//!   allowed suffix `example.com`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{first_certificate, key_and_csr, key_and_csr_for, p, pkcsreq, run, scep_request, status, versions};
use enrolkit_testkit::Mef;
use std::path::Path;

fn start(edit: impl FnOnce(&mut String)) -> Mef {
    Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, cfg| edit(cfg))
}

/// `/simpleenroll` of `csr` with `cert`/`key` as TLS client certificate (curl): the HTTP status.
fn est_enrol(m: &Mef, dir: &Path, csr: &Path, cert: &Path, key: &Path) -> String {
    let b64 = dir.join("est.b64");
    std::fs::write(&b64, run("openssl", &["base64", "-in", p(csr)]).stdout).unwrap();
    let o = run(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            p(&m.st("ca.pem")),
            "--cert",
            p(cert),
            "--key",
            p(key),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", p(&b64)),
            &format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", m.rustls),
        ],
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn device_a_certificate_on_est_obtains_only_a_names() {
    versions();
    let m = start(|_| {});
    let dir = m.dir.path();
    let (a, a_key) = first_certificate(&m, dir, "dev-a");
    let (_, csr_b) = key_and_csr(dir, "b-by-a", "dev-b", None);
    assert_eq!(est_enrol(&m, dir, &csr_b, &a, &a_key), "403", "{}", m.log());
    let (_, csr_a) = key_and_csr(dir, "a-again", "dev-a", None);
    assert_eq!(est_enrol(&m, dir, &csr_a, &a, &a_key), "200", "{}", m.log());
    // Revoked: not even its own name.
    let serial = String::from_utf8_lossy(&run("openssl", &["x509", "-in", p(&a), "-noout", "-serial"]).stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    m.run(&["revoke", &serial]);
    let (_, csr_a2) = key_and_csr(dir, "a-revoked", "dev-a", None);
    assert_eq!(est_enrol(&m, dir, &csr_a2, &a, &a_key), "403", "{}", m.log());
}

#[test]
fn a_scep_renewalreq_by_device_a_cannot_name_device_b() {
    // Ten-day certificates: inside the 14-day renewal window at once.
    let m = start(|cfg| *cfg = cfg.replace("validity_days = 365", "validity_days = 10"));
    let dir = m.dir.path();
    let (a, a_key) = first_certificate(&m, dir, "dev-a");
    let (_, csr_b) = key_and_csr(dir, "renew-as-b", "dev-b", None);
    scep_request(&m, dir, "renew-b", "17", &csr_b, (&a, &a_key));
    assert_eq!(status(dir, "renew-b"), "pkiStatus=2 failInfo=2", "{}", m.log());
    let (_, csr_a) = key_and_csr(dir, "renew-as-a", "dev-a", None);
    scep_request(&m, dir, "renew-a", "17", &csr_a, (&a, &a_key));
    assert_eq!(status(dir, "renew-a"), "pkiStatus=0", "{}", m.log());
}

#[test]
fn an_allowed_dns_suffix_is_matched_on_whole_labels() {
    let m = start(|cfg| {
        *cfg = cfg.replace("allowed_dns_suffixes = []", "allowed_dns_suffixes = [\"example.com\"]");
        assert!(cfg.contains("\"example.com\""), "{cfg}");
    });
    let dir = m.dir.path();
    let selfsigned = |name: &str, key: &Path| {
        let c = dir.join(format!("{name}.self.pem"));
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-key",
                p(key),
                "-subj",
                "/CN=self",
                "-days",
                "1",
                "-out",
                p(&c),
            ],
        );
        c
    };
    for (name, dns, want) in [
        ("evil", "DNS:evilexample.com", "pkiStatus=2 failInfo=2"),
        ("good", "DNS:a.example.com", "pkiStatus=0"),
    ] {
        let otp = m.run(&["challenge", "add", "--label", name]).trim().to_owned();
        let (key, csr) = key_and_csr_for(dir, name, "CN = dev-s", Some(&otp), Some(dns));
        let signer = selfsigned(name, &key);
        pkcsreq(&m, dir, name, &csr, (&signer, &key));
        assert_eq!(status(dir, name), want, "{dns}: {}", m.log());
    }
}
