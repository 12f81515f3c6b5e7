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

mod common;

use common::{first_certificate, issued, key_and_csr, p, pkcsreq, run, serial, status, subject, versions};
use enrolkit_testkit::Mef;
use std::path::Path;

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
