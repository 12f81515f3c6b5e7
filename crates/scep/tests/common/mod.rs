//! Shared helpers for the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use enrolkit_scep::keys::{DigestAlgorithm, KeySpec, SoftwareKey};
use enrolkit_scep::x509_cert::der::{DecodePem, EncodePem};
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::x509_cert::Certificate;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// A key and a self-signed certificate for it.
pub struct Identity {
    pub key: SoftwareKey,
    pub cert: Certificate,
}

pub fn identity(cn: &str) -> Identity {
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let name = Name::from_str(&format!("CN={cn}")).unwrap();
    let cert = enrolkit_scep::self_signed_certificate(
        &key,
        &name,
        DigestAlgorithm::Sha256,
        SystemTime::now() - Duration::from_secs(60),
        Duration::from_secs(86400),
        &mut rand_core::OsRng,
    )
    .unwrap();
    Identity { key, cert }
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/scep")
}

pub fn cert_pem(c: &Certificate) -> String {
    c.to_pem(enrolkit_scep::x509_cert::der::pem::LineEnding::LF).unwrap()
}

pub fn load_cert(path: &Path) -> Certificate {
    Certificate::from_pem(std::fs::read(path).unwrap()).unwrap()
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

pub fn openssl_version() -> String {
    String::from_utf8_lossy(&openssl(&["version"])).trim().to_owned()
}

/// Write `bytes` to `dir/name` and return the path as a string.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}
