//! Shared helpers for the integration tests: keys, self-signed certificates,
//! the OpenSSL command line.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use enrolkit_est::der::asn1::BitString;
use enrolkit_est::der::{Encode, EncodePem};
use enrolkit_est::keys::{KeyKind, KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_est::x509_cert::name::Name;
use enrolkit_est::x509_cert::serial_number::SerialNumber;
use enrolkit_est::x509_cert::time::Validity;
use enrolkit_est::x509_cert::{Certificate, TbsCertificate};
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

pub fn ec_key() -> SoftwareKey {
    SoftwareKey::generate(KeySpec::EcP256).unwrap()
}

pub fn rsa_key() -> SoftwareKey {
    SoftwareKey::generate(KeySpec::Rsa2048).unwrap()
}

pub fn name(dn: &str) -> Name {
    Name::from_str(dn).unwrap()
}

/// A self-signed certificate for `key` with subject `CN=cn`.
pub fn self_signed(key: &SoftwareKey, cn: &str, serial: u8) -> Certificate {
    let alg = match key.kind() {
        KeyKind::EcP256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
    };
    let subject = name(&format!("CN={cn}"));
    let tbs = TbsCertificate {
        version: enrolkit_est::x509_cert::Version::V3,
        serial_number: SerialNumber::new(&[serial.max(1)]).unwrap(),
        signature: alg.algorithm_identifier(),
        issuer: subject.clone(),
        validity: Validity::from_now(Duration::from_secs(3600)).unwrap(),
        subject,
        subject_public_key_info: key.public_key().clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let sig = key.sign(alg, &tbs.to_der().unwrap()).unwrap();
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
}

pub fn cert_pem(c: &Certificate) -> String {
    c.to_pem(enrolkit_est::der::pem::LineEnding::LF).unwrap()
}

/// Run openssl with args; panic with its stderr on failure.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run openssl and return whether it succeeded (stderr discarded).
pub fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (.ci/run installs it)")
        .status
        .success()
}

/// Write `bytes` to `dir/name` and return the path as a string.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

/// DER TLV with a definite length (for hand-made test structures).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Most certificates in a certs-only response.
pub const MAX_CERTS: usize = enrolkit_pkix::certs_only::MAX_CERTS;

/// A certs-only response through enrolkit-pkix, its errors as EST reports them.
pub fn encode_certs_only(certs: &[Certificate]) -> Result<Vec<u8>, enrolkit_est::EstError> {
    Ok(enrolkit_pkix::certs_only::encode(certs, &[])?)
}

/// The certificates of a certs-only response, its errors as EST reports them.
pub fn decode_certs_only(der: &[u8]) -> Result<Vec<Certificate>, enrolkit_est::EstError> {
    Ok(enrolkit_pkix::certs_only::decode(der)?.certificates)
}
