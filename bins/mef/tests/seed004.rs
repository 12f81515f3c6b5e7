//! The authorisations of seed 004 (3GPP TS 33.310 base stations), end to
//! end with tools we did not write:
//!
//! - vendor-certificate initial enrolment: an OpenSSL-made vendor CA issues
//!   a base station's vendor certificate; its PKCSReq (signed with it) and
//!   its EST `/simpleenroll` (it as TLS client certificate) obtain an
//!   operator certificate named by `[authorisation.vendor]`'s templates;
//!   renewal is signed by the operator certificate; a vendor certificate
//!   from another CA is refused;
//! - RA-POP: a request signed by a configured RA certificate obtains the
//!   names that RA may request; another certificate obtains nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{issued, key_and_csr_for, openssl_ca, p, pkcsreq, run, status, subject, vendor_device, versions};
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};

/// An RA certificate for `CN=SCEP proxy RA`, self-signed by OpenSSL with
/// id-kp-cmcRA and a fresh RSA key: (certificate, key).
fn self_signed_ra(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=SCEP proxy RA",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-addext",
            "extendedKeyUsage=1.3.6.1.5.5.7.3.28",
        ],
    );
    (cert, key)
}

fn sans(cert: &Path) -> String {
    let o = run("openssl", &["x509", "-in", p(cert), "-noout", "-ext", "subjectAltName"]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_vendor_certificate_enrols_by_scep_and_est_under_the_template() {
    versions();
    let mut vendor = None;
    let m = Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |st, cfg| {
        vendor = Some(openssl_ca(st, "vendor-ca", "/CN=Vendor Root CA/O=Vendor"));
        // Ten-day certificates: the operator certificate may renew at once.
        *cfg = cfg.replace("validity_days = 365", "validity_days = 10");
        cfg.push_str(
            "\n[authorisation.vendor]\nanchors = [\"vendor-ca.pem\"]\n\
             subject_template = \"CN={serialNumber},O=Operator\"\n\
             dns_templates = [\"{serialNumber}.ran.example.net\"]\n",
        );
    });
    let (vca, vkey) = vendor.unwrap();
    let dir = m.dir.path();
    let (bs, bs_key) = vendor_device(dir, "enb-42", "SN-0042", (&vca, &vkey));

    // SCEP: a PKCSReq signed with the vendor certificate, no challenge; the
    // CSR asks for a name of its own, the template decides. The template is
    // RFC 4514 text, most significant RDN last: the DN is O=Operator, CN=….
    let (_, csr) = key_and_csr_for(dir, "enb-42-op", "CN = whatever", None, None);
    pkcsreq(&m, dir, "vendor", &csr, (&bs, &bs_key));
    assert_eq!(status(dir, "vendor"), "pkiStatus=0", "{}", m.log());
    let op = issued(dir, "vendor", (&bs, &bs_key));
    assert_eq!(subject(&op), "subject=O = Operator, CN = SN-0042");
    assert!(sans(&op).contains("DNS:SN-0042.ran.example.net"), "{}", sans(&op));
    run("openssl", &["verify", "-CAfile", p(&m.st("ca.pem")), p(&op)]);

    // Renewal: signed by the operator certificate (seed 004 §9.2.1), its names.
    let op_key = dir.join("enb-42-op.key");
    let (_, csr) = key_and_csr_for(
        dir,
        "enb-42-op2",
        "O = Operator\nCN = SN-0042",
        None,
        Some("DNS:SN-0042.ran.example.net"),
    );
    pkcsreq(&m, dir, "renew", &csr, (&op, &op_key));
    assert_eq!(status(dir, "renew"), "pkiStatus=0", "{}", m.log());
    assert_eq!(
        subject(&issued(dir, "renew", (&op, &op_key))),
        "subject=O = Operator, CN = SN-0042"
    );

    // A vendor certificate from another CA (same names): refused.
    let (other_ca, other_key) = openssl_ca(dir, "other-ca", "/CN=Vendor Root CA/O=Vendor");
    let (fake, fake_key) = vendor_device(dir, "enb-fake", "SN-0042", (&other_ca, &other_key));
    let (_, csr) = key_and_csr_for(dir, "enb-fake-op", "CN = whatever", None, None);
    pkcsreq(&m, dir, "fake", &csr, (&fake, &fake_key));
    assert_eq!(status(dir, "fake"), "pkiStatus=2 failInfo=2");

    // EST: the vendor certificate as TLS client certificate (curl).
    let (bs2, bs2_key) = vendor_device(dir, "enb-43", "SN-0043", (&vca, &vkey));
    let est = |cert: &Path, key: &Path, name: &str| {
        let (_, csr) = key_and_csr_for(dir, name, "CN = whatever", None, None);
        let b64 = dir.join(format!("{name}.b64"));
        let o = run("openssl", &["base64", "-in", p(&csr)]);
        std::fs::write(&b64, o.stdout).unwrap();
        std::process::Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                p(&m.st("ca.pem")),
                "--cert",
                p(cert),
                "--key",
                p(key),
            ])
            .args(["-H", "Content-Type: application/pkcs10", "--data-binary"])
            .arg(format!("@{}", p(&b64)))
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", m.rustls))
            .output()
            .unwrap()
    };
    let o = est(&bs2, &bs2_key, "enb-43-op");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.trim_end().ends_with("200"), "{out}\n{}", m.log());
    let body: String = out
        .lines()
        .filter(|l| !l.trim().chars().all(|c| c.is_ascii_digit()))
        .collect();
    let der = dir.join("enb-43.p7.der");
    let b64 = dir.join("enb-43.p7.b64");
    std::fs::write(&b64, body.as_bytes()).unwrap();
    run("openssl", &["base64", "-d", "-A", "-in", p(&b64), "-out", p(&der)]);
    let pem = dir.join("enb-43-op.pem");
    run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            p(&der),
            "-print_certs",
            "-out",
            p(&pem),
        ],
    );
    let text = std::fs::read_to_string(&pem).unwrap();
    assert!(text.contains("subject=O = Operator, CN = SN-0043"), "{text}");
    assert!(m.log().contains("auth=vendor:"), "{}", m.log());
    // Another CA's vendor certificate: the TLS handshake itself fails.
    let o = est(&fake, &fake_key, "enb-fake-est");
    assert!(!String::from_utf8_lossy(&o.stdout).trim_end().ends_with("200"));
}

#[test]
fn ra_pop_a_configured_ra_obtains_its_names_and_another_nothing() {
    let mut ra = None;
    let m = Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |st, cfg| {
        // The proxy's RA certificate: self-signed by OpenSSL, with id-kp-cmcRA.
        let (cert, key) = self_signed_ra(st, "proxy-ra");
        ra = Some((cert, key));
        cfg.push_str("\n[[authorisation.ra]]\ncertificate = \"proxy-ra.pem\"\nmay_name = [\"*.ran.example.net\"]\n");
    });
    let (ra_cert, ra_key) = ra.unwrap();
    let dir = m.dir.path();
    // The base station's CSR (its own key), forwarded by the RA, signed by the RA.
    let (_, csr) = key_and_csr_for(dir, "bs-7", "CN = bs-7.ran.example.net", None, None);
    pkcsreq(&m, dir, "ra-ok", &csr, (&ra_cert, &ra_key));
    assert_eq!(status(dir, "ra-ok"), "pkiStatus=0", "{}", m.log());
    assert_eq!(
        subject(&issued(dir, "ra-ok", (&ra_cert, &ra_key))),
        "subject=CN = bs-7.ran.example.net"
    );
    // A name outside what the RA may request.
    let (_, csr) = key_and_csr_for(dir, "core", "CN = core.example.net", None, None);
    pkcsreq(&m, dir, "ra-out", &csr, (&ra_cert, &ra_key));
    assert_eq!(status(dir, "ra-out"), "pkiStatus=2 failInfo=2");
    // An RA nobody configured (same subject, another key).
    let (other, other_key) = self_signed_ra(dir, "other-ra");
    let (_, csr) = key_and_csr_for(dir, "bs-8", "CN = bs-8.ran.example.net", None, None);
    pkcsreq(&m, dir, "ra-other", &csr, (&other, &other_key));
    assert_eq!(status(dir, "ra-other"), "pkiStatus=2 failInfo=2");
}
