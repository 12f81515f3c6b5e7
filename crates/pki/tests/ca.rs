//! The CA against OpenSSL: chains verify, extensions read as intended, CRLs
//! verify and revoke, serials are unique and long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::{Decode, Encode, EncodePem};
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use enrolkit_pki::*;
use rand_core::OsRng;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;

const YEAR: Duration = Duration::from_secs(365 * 86400);

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (.ci/run installs it)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn pem_file(dir: &Path, name: &str, certs: &[&Certificate]) -> String {
    let p = dir.join(name);
    let text: String = certs
        .iter()
        .map(|c| c.to_pem(der::pem::LineEnding::LF).unwrap())
        .collect();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn csr_vector() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/scep/openssl-csr-challenge.der"))
        .unwrap()
}

fn root(spec: KeySpec) -> Authority {
    Authority::new_root(
        Box::new(SoftwareKey::generate(spec).unwrap()),
        name("CN=enrolkit Test Root,O=enrolkit"),
        SystemTime::now(),
        YEAR * 10,
        &mut OsRng,
    )
    .unwrap()
}

#[test]
fn root_intermediate_ra_and_leaf_from_an_openssl_csr() {
    println!("peer: {}", openssl(&["version"]).1.trim());
    let dir = tempfile::tempdir().unwrap();
    let root = root(KeySpec::Rsa2048);
    let issuing = root
        .new_intermediate(
            Box::new(SoftwareKey::generate(KeySpec::Rsa2048).unwrap()),
            name("CN=enrolkit Issuing CA,O=enrolkit"),
            SystemTime::now(),
            YEAR * 5,
            &mut OsRng,
        )
        .unwrap();
    let ra_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ra = issuing
        .certify_ra(
            ra_key.public_key(),
            name("CN=enrolkit SCEP RA,O=enrolkit"),
            SystemTime::now(),
            YEAR,
            &mut OsRng,
        )
        .unwrap();

    let profile = Profile {
        crl_url: Some("http://127.0.0.1:8080/crl/issuing.crl".into()),
        ocsp_url: Some("http://127.0.0.1:8080/ocsp".into()),
        ..Profile::default()
    };
    let req = Request::from_csr_der(&csr_vector()).unwrap();
    let leaf = issuing.issue(&req, &profile, SystemTime::now(), &mut OsRng).unwrap();
    // The RA's name never appears as issuer.
    assert_eq!(leaf.tbs_certificate.issuer, issuing.certificate.tbs_certificate.subject);
    assert_ne!(leaf.tbs_certificate.issuer, ra.tbs_certificate.subject);

    let root_pem = pem_file(dir.path(), "root.pem", &[&root.certificate]);
    let int_pem = pem_file(dir.path(), "int.pem", &[&issuing.certificate]);
    let leaf_pem = pem_file(dir.path(), "leaf.pem", &[&leaf]);
    let ra_pem = pem_file(dir.path(), "ra.pem", &[&ra]);
    for cert in [&leaf_pem, &ra_pem] {
        let (ok, out) = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            &root_pem,
            "-untrusted",
            &int_pem,
            cert,
        ]);
        assert!(ok && out.contains(": OK"), "{out}");
    }
    let (ok, text) = openssl(&["x509", "-in", &leaf_pem, "-noout", "-text"]);
    assert!(ok);
    for want in [
        "DNS:device-1.example.test",
        "TLS Web Client Authentication",
        "Digital Signature, Key Encipherment",
        "URI:http://127.0.0.1:8080/crl/issuing.crl",
        "OCSP - URI:http://127.0.0.1:8080/ocsp",
        "CA:FALSE",
        "Subject: CN = device-1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let (_, ratext) = openssl(&["x509", "-in", &ra_pem, "-noout", "-text"]);
    assert!(
        ratext.contains("Digital Signature, Key Encipherment") && ratext.contains("CA:FALSE"),
        "{ratext}"
    );
    // The leaf never outlives its CA.
    let long = Profile {
        validity: YEAR * 50,
        ..Profile::default()
    };
    let capped = issuing.issue(&req, &long, SystemTime::now(), &mut OsRng).unwrap();
    assert_eq!(
        capped.tbs_certificate.validity.not_after,
        issuing.certificate.tbs_certificate.validity.not_after
    );
}

#[test]
fn every_ca_key_type_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let req = Request::from_csr_der(&csr_vector()).unwrap();
    for spec in [KeySpec::EcP256, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let ca = root(spec);
        let leaf = ca
            .issue(&req, &Profile::default(), SystemTime::now(), &mut OsRng)
            .unwrap();
        let (ok, out) = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            &pem_file(dir.path(), "ca.pem", &[&ca.certificate]),
            &pem_file(dir.path(), "leaf.pem", &[&leaf]),
        ]);
        assert!(ok, "{spec:?}: {out}");
    }
}

#[test]
fn serials_are_unique_positive_and_long() {
    let ca = root(KeySpec::EcP256);
    let req = Request::from_csr_der(&csr_vector()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        let c = ca
            .issue(&req, &Profile::default(), SystemTime::now(), &mut OsRng)
            .unwrap();
        let s = c.tbs_certificate.serial_number.as_bytes().to_vec();
        assert_eq!(s.len(), SERIAL_BYTES, "no leading zero stripped, >= 64 bits");
        assert!(s[0] & 0x80 == 0 && s[0] != 0, "positive, minimal");
        assert!(seen.insert(s), "serial reused");
    }
}

#[test]
fn san_policies() {
    let ca = root(KeySpec::EcP256);
    let req = Request::from_csr_der(&csr_vector()).unwrap();
    let refused = ca.issue(
        &req,
        &Profile {
            san: SanPolicy::Filter(vec![".example.net".into()]),
            ..Profile::default()
        },
        SystemTime::now(),
        &mut OsRng,
    );
    assert!(
        matches!(refused, Err(PkiError::Refused(ref m)) if m.contains("device-1.example.test")),
        "{refused:?}"
    );
    assert!(ca
        .issue(
            &req,
            &Profile {
                san: SanPolicy::Filter(vec![".example.test".into()]),
                ..Profile::default()
            },
            SystemTime::now(),
            &mut OsRng
        )
        .is_ok());
    let replaced = ca
        .issue(
            &req,
            &Profile {
                san: SanPolicy::Replace(vec!["fixed.example.org".into()]),
                ..Profile::default()
            },
            SystemTime::now(),
            &mut OsRng,
        )
        .unwrap();
    let der = replaced.to_der().unwrap();
    assert!(der.windows(17).any(|w| w == b"fixed.example.org"));
    assert!(!der.windows(23).any(|w| w == b"device-1.example.test\x30\x0d"));
}

#[test]
fn crl_verifies_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = root(KeySpec::Rsa2048);
    let req = Request::from_csr_der(&csr_vector()).unwrap();
    let revoked = ca
        .issue(&req, &Profile::default(), SystemTime::now(), &mut OsRng)
        .unwrap();
    let good = ca
        .issue(&req, &Profile::default(), SystemTime::now(), &mut OsRng)
        .unwrap();
    let crl = ca
        .crl(
            &[Revocation {
                serial: revoked.tbs_certificate.serial_number.clone(),
                time: SystemTime::now(),
                reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
            }],
            7,
            SystemTime::now(),
            Duration::from_secs(86400),
        )
        .unwrap();
    let crl_path = dir.path().join("ca.crl");
    std::fs::write(
        &crl_path,
        der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &crl.to_der().unwrap()).unwrap(),
    )
    .unwrap();
    let crl_s = crl_path.to_str().unwrap();
    let ca_pem = pem_file(dir.path(), "ca.pem", &[&ca.certificate]);
    let (ok, out) = openssl(&["crl", "-in", crl_s, "-CAfile", &ca_pem, "-verify", "-noout", "-text"]);
    assert!(
        ok && out.contains("verify OK") && out.contains("X509v3 CRL Number") && out.contains("Key Compromise"),
        "{out}"
    );
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        &ca_pem,
        "-CRLfile",
        crl_s,
        &pem_file(dir.path(), "r.pem", &[&revoked]),
    ]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        &ca_pem,
        "-CRLfile",
        crl_s,
        &pem_file(dir.path(), "g.pem", &[&good]),
    ]);
    assert!(ok, "{out}");
    // Round trip through our own decoder.
    let back = x509_cert::crl::CertificateList::from_der(&crl.to_der().unwrap()).unwrap();
    assert_eq!(back.tbs_cert_list.revoked_certificates.unwrap().len(), 1);
}

#[test]
fn csr_with_a_broken_signature_is_refused() {
    let mut csr = csr_vector();
    let n = csr.len();
    csr[n - 5] ^= 1;
    assert!(matches!(Request::from_csr_der(&csr), Err(PkiError::BadCsrSignature)));
    assert!(Request::from_csr_der(&csr[..n / 2]).is_err());
}
