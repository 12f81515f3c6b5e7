//! Certificates made by the OpenSSL command line for interop tests: an RSA
//! CA, and a base station's vendor certificate under it (3GPP TS 33.310 §9).
//! Shared by `mef`'s and `enrol`'s tests.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(args: &[&str]) {
    let o = Command::new("openssl").args(args).output().expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// An RSA CA made by OpenSSL: (certificate, key).
pub fn openssl_ca(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-subj",
        subject,
        "-keyout",
        p(&key),
        "-out",
        p(&cert),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    (cert, key)
}

/// A base station's vendor certificate from `ca`: (certificate, key).
pub fn vendor_device(dir: &Path, name: &str, serial_number: &str, ca: (&Path, &Path)) -> (PathBuf, PathBuf) {
    let (key, csr, cert, ext) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").expect("extension file");
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        p(&key),
        "-subj",
        &format!("/CN=eNodeB/serialNumber={serial_number}/O=Vendor"),
        "-out",
        p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(ca.0),
        "-CAkey",
        p(ca.1),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        p(&ext),
        "-out",
        p(&cert),
    ]);
    (cert, key)
}
