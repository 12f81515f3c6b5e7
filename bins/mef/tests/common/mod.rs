//! SCEP messages made by tools we did not write, for the integration tests
//! of `mef`: OpenSSL makes keys, CSRs, certificates and the EnvelopedData
//! (`openssl cms -encrypt`), Python asn1crypto signs the pkiMessage with
//! SCEP's attributes (`testvectors/scep/make_pkcsreq_ber.py`; OpenSSL's
//! `cms` cannot add them), curl posts it, and the CertRep is read back with
//! asn1crypto (`read_certrep_status.py`) and `openssl cms -decrypt`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The system Python, where Debian's python3-asn1crypto and
/// python3-cryptography are installed (`.ci/run`).
pub const PYTHON: &str = "/usr/bin/python3";

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/scep")
}

pub fn run(cmd: &str, args: &[&str]) -> Output {
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

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub fn versions() {
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
pub fn key_and_csr(dir: &Path, name: &str, cn: &str, challenge: Option<&str>) -> (PathBuf, PathBuf) {
    key_and_csr_for(dir, name, &format!("CN = {cn}"), challenge, None)
}

/// As [`key_and_csr`] for a subject in OpenSSL config form (`CN = a\nO = b`)
/// and an optional subjectAltName (`DNS:x`).
pub fn key_and_csr_for(
    dir: &Path,
    name: &str,
    dn: &str,
    challenge: Option<&str>,
    san: Option<&str>,
) -> (PathBuf, PathBuf) {
    let (key, csr, cnf) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr.der")),
        dir.join(format!("{name}.cnf")),
    );
    // Every [req] key first, then the sections they name.
    let (attrs_key, attrs) = match challenge {
        Some(c) => ("attributes = attrs\n", format!("[attrs]\nchallengePassword = {c}\n")),
        None => ("", String::new()),
    };
    let (ext_key, ext) = match san {
        Some(s) => ("req_extensions = ext\n", format!("[ext]\nsubjectAltName = {s}\n")),
        None => ("", String::new()),
    };
    std::fs::write(
        &cnf,
        format!("[req]\nprompt = no\ndistinguished_name = dn\n{attrs_key}{ext_key}[dn]\n{dn}\n{attrs}{ext}"),
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
pub fn pkcsreq(m: &Mef, dir: &Path, name: &str, csr: &Path, signer: (&Path, &Path)) -> Vec<u8> {
    scep_request(m, dir, name, "19", csr, signer)
}

/// As [`pkcsreq`] with messageType `message_type` ("17": RenewalReq).
pub fn scep_request(
    m: &Mef,
    dir: &Path,
    name: &str,
    message_type: &str,
    csr: &Path,
    signer: (&Path, &Path),
) -> Vec<u8> {
    let msg = scep_message(m, dir, name, message_type, csr, signer);
    send(m, dir, name, &msg, Transport::Post)
}

/// How a pkiMessage travels (RFC 8894 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// POST with the DER body.
    Post,
    /// GET with `message=` the base64, URL-encoded (as Cisco IOS sends
    /// even to servers that offer POSTPKIOperation).
    Get,
}

/// A pkiMessage of `message_type` for `csr`, encrypted to mef's RA by
/// `openssl cms -encrypt`, signed with `signer` by asn1crypto; its file.
pub fn scep_message(
    m: &Mef,
    dir: &Path,
    name: &str,
    message_type: &str,
    csr: &Path,
    signer: (&Path, &Path),
) -> PathBuf {
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
            "--message-type",
            message_type,
        ],
    );
    msg
}

/// Send the pkiMessage in `msg` with curl; the CertRep's bytes (also in
/// `<name>.rep.der`).
pub fn send(m: &Mef, dir: &Path, name: &str, msg: &Path, how: Transport) -> Vec<u8> {
    let rep = dir.join(format!("{name}.rep.der"));
    match how {
        Transport::Post => {
            let url = format!("http://127.0.0.1:{}/scep?operation=PKIOperation", m.scep);
            run(
                "curl",
                &[
                    "-sS",
                    "--fail",
                    "-H",
                    "Content-Type: application/x-pki-message",
                    "--data-binary",
                    &format!("@{}", p(msg)),
                    "-o",
                    p(&rep),
                    &url,
                ],
            );
        }
        Transport::Get => {
            let b64 = dir.join(format!("{name}.msg.b64"));
            run("openssl", &["base64", "-A", "-in", p(msg), "-out", p(&b64)]);
            let url = format!("http://127.0.0.1:{}/scep", m.scep);
            run(
                "curl",
                &[
                    "-sS",
                    "--fail",
                    "--get",
                    "--data",
                    "operation=PKIOperation",
                    "--data-urlencode",
                    &format!("message@{}", p(&b64)),
                    "-o",
                    p(&rep),
                    &url,
                ],
            );
        }
    }
    std::fs::read(rep).unwrap()
}

/// `pkiStatus=…[ failInfo=…]` of a CertRep, by asn1crypto.
pub fn status(dir: &Path, name: &str) -> String {
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
pub fn issued(dir: &Path, name: &str, recipient: (&Path, &Path)) -> PathBuf {
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

pub fn subject(cert: &Path) -> String {
    String::from_utf8_lossy(&run("openssl", &["x509", "-in", p(cert), "-noout", "-subject"]).stdout)
        .trim()
        .to_owned()
}

pub fn serial(cert: &Path) -> String {
    let o = run("openssl", &["x509", "-in", p(cert), "-noout", "-serial"]);
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// A first enrolment with a one-time challenge, signed by a self-signed
/// certificate OpenSSL makes: the device's current certificate.
pub fn first_certificate(m: &Mef, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
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

/// An RSA CA made by OpenSSL: (certificate, key).
pub fn openssl_ca(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
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
            subject,
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
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
    std::fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    run(
        "openssl",
        &[
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
        ],
    );
    run(
        "openssl",
        &[
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
        ],
    );
    (cert, key)
}
