//! `enrol scep` in the forms deployed SCEP servers expect (issue I): a
//! renewal sent as a PKCSReq signed by the current certificate, for
//! servers that do not know RenewalReq (EJBCA, Dogtag), checked on `mef`'s
//! log of the message type it received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    Command::new(env!("CARGO_BIN_EXE_enrol")).args(args).output().unwrap()
}

fn verify(ca: &Path, cert: &Path) {
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

/// The CA's SHA-256 fingerprint, by OpenSSL.
fn fingerprint(ca: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", p(ca)])
        .output()
        .unwrap();
    let t = String::from_utf8(o.stdout).unwrap();
    t.trim().rsplit('=').next().unwrap().to_owned()
}

/// The message types `mef` logged for PKIOperation, in order (logged as
/// `message_type=PKCSReq(19)`; other operations log an empty one).
fn message_types(m: &Mef) -> Vec<String> {
    m.log()
        .lines()
        .filter_map(|l| l.split("message_type=").nth(1))
        .filter(|rest| !rest.starts_with(' '))
        .map(|rest| {
            let word = rest.split_whitespace().next().unwrap_or("");
            word.split('(').next().unwrap_or(word).to_owned()
        })
        .collect()
}

/// A first certificate for `cn` by a one-time challenge bound to it.
fn first(m: &Mef, d: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let subject = format!("CN={cn}");
    let challenge = m.run(&["challenge", "add", "--subject", &subject]).trim().to_owned();
    let (key, cert) = (d.join(format!("{cn}.key")), d.join(format!("{cn}.pem")));
    let url = format!("http://127.0.0.1:{}/scep", m.scep);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "scep",
            "enrol",
            "--url",
            &url,
            "--ca-fingerprint",
            &fingerprint(&m.st("ca.pem")),
        ])
        .args(["--subject", &subject, "--key-out", p(&key), "--cert-out", p(&cert)])
        .env("ENROL_CHALLENGE", &challenge)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    (key, cert)
}

#[test]
fn renew_as_pkcsreq_is_a_pkcsreq_signed_by_the_current_certificate_and_mef_renews_it() {
    // Ten-day certificates, renewal opening 14 days before expiry: at once.
    let m = Mef::start(&mef_bin(), &[], |_, cfg| {
        *cfg = cfg.replace("validity_days = 365", "validity_days = 10");
    });
    let d = m.dir.path();
    let ca = m.st("ca.pem");
    let url = format!("http://127.0.0.1:{}/scep", m.scep);
    let fp = fingerprint(&ca);
    let (key, cert) = first(&m, d, "field-renew");
    let before = message_types(&m).len();

    let (nk, nc) = (d.join("new.key"), d.join("new.pem"));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&key),
        "--cert",
        p(&cert),
        "--new-key",
        "--key-out",
        p(&nk),
        "--cert-out",
        p(&nc),
        "--as-pkcsreq",
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    verify(&ca, &nc);
    let sent = message_types(&m);
    assert_eq!(sent[before..], ["PKCSReq"], "{sent:?}");

    // Without the flag, mef (which lists Renewal) gets a RenewalReq.
    let (nk2, nc2) = (d.join("new2.key"), d.join("new2.pem"));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&nk),
        "--cert",
        p(&nc),
        "--new-key",
        "--key-out",
        p(&nk2),
        "--cert-out",
        p(&nc2),
    ]);
    assert!(o.status.success(), "{}\n{}", text(&o), m.log());
    verify(&ca, &nc2);
    let sent = message_types(&m);
    assert_eq!(sent.last().map(String::as_str), Some("RenewalReq"), "{sent:?}");

    // A PKCSReq renewal for a certificate we did not issue is no renewal:
    // without a challenge it is refused.
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=field-renew",
        ])
        .args(["-keyout", p(&d.join("rogue.key")), "-out", p(&d.join("rogue.pem"))])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--ca-fingerprint",
        &fp,
        "--key",
        p(&d.join("rogue.key")),
        "--cert",
        p(&d.join("rogue.pem")),
        "--new-key",
        "--key-out",
        p(&d.join("r.key")),
        "--cert-out",
        p(&d.join("r.pem")),
        "--as-pkcsreq",
    ]);
    assert!(!o.status.success(), "a self-signed certificate renewed: {}", text(&o));
    assert!(!d.join("r.pem").exists());
}

/// An NDES-style SCEP server: GetCACert returns the CA and two RA
/// certificates, one for signing (keyUsage digitalSignature) and one for
/// encryption (keyEncipherment), both with Microsoft's Certificate Request
/// Agent EKU, all made by OpenSSL; requests are decrypted only with the
/// encryption key and replies signed only with the signing key (the
/// message layer is enrolkit-scep's, the issuing is `openssl x509 -req`).
mod ndes {
    use super::*;
    use enrolkit_testkit::http::{HttpStub, Request, Response};

    pub struct Ndes {
        pub stub: HttpStub,
        pub dir: tempfile::TempDir,
    }

    fn openssl(args: &[&str]) {
        let o = Command::new("openssl").args(args).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    }

    fn ra(d: &Path, name: &str, key_usage: &str, serial: &str) {
        let (key, csr, cert, ext) = (
            d.join(format!("{name}.key")),
            d.join(format!("{name}.csr")),
            d.join(format!("{name}.pem")),
            d.join(format!("{name}.ext")),
        );
        openssl(&["genrsa", "-out", p(&key), "2048"]);
        openssl(&[
            "req",
            "-new",
            "-key",
            p(&key),
            "-subj",
            &format!("/CN=NDES {name}"),
            "-out",
            p(&csr),
        ]);
        std::fs::write(
            &ext,
            format!("keyUsage = critical,{key_usage}\nextendedKeyUsage = 1.3.6.1.4.1.311.20.2.1\n"),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            p(&csr),
            "-CA",
            p(&d.join("ca.pem")),
            "-CAkey",
            p(&d.join("ca.key")),
            "-set_serial",
            serial,
            "-days",
            "30",
            "-extfile",
            p(&ext),
            "-out",
            p(&cert),
        ]);
    }

    impl Ndes {
        pub fn start() -> Ndes {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().to_path_buf();
            openssl(&["genrsa", "-out", p(&d.join("ca.key")), "2048"]);
            openssl(&[
                "req",
                "-x509",
                "-key",
                p(&d.join("ca.key")),
                "-subj",
                "/CN=NDES Test CA",
                "-days",
                "30",
                "-out",
                p(&d.join("ca.pem")),
            ]);
            ra(&d, "sign", "digitalSignature", "77");
            ra(&d, "encrypt", "keyEncipherment", "78");
            let all = d.join("all.pem");
            let pem: String = ["ca.pem", "sign.pem", "encrypt.pem"]
                .iter()
                .map(|f| std::fs::read_to_string(d.join(f)).unwrap())
                .collect();
            std::fs::write(&all, pem).unwrap();
            let cacert = d.join("cacert.p7");
            openssl(&[
                "crl2pkcs7",
                "-nocrl",
                "-certfile",
                p(&all),
                "-outform",
                "DER",
                "-out",
                p(&cacert),
            ]);
            let cacert = std::fs::read(&cacert).unwrap();
            let stub = HttpStub::start(move |req: &Request| match req.query("operation") {
                Some("GetCACaps") => Response::new(200, "text/plain", "POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n"),
                Some("GetCACert") => Response::new(200, "application/x-x509-ca-ra-cert", cacert.clone()),
                Some("PKIOperation") => pki_operation(&d, &req.body),
                _ => Response::new(400, "text/plain", "unknown operation"),
            });
            Ndes { stub, dir }
        }
    }

    fn cert(path: &Path) -> x509_cert::Certificate {
        enrolkit_files::read_certificate(path).unwrap()
    }

    fn pki_operation(d: &Path, body: &[u8]) -> Response {
        let (enc_cert, enc_key) = (
            cert(&d.join("encrypt.pem")),
            enrolkit_files::read_key(&d.join("encrypt.key")).unwrap(),
        );
        let (sign_cert, sign_key) = (
            cert(&d.join("sign.pem")),
            enrolkit_files::read_key(&d.join("sign.key")).unwrap(),
        );
        let rejection = enrolkit_scep::RejectionKey::new([7; 32]);
        let responder = enrolkit_scep::Responder {
            certificate: &enc_cert,
            decryptor: &enc_key,
            signer: &enc_key,
            rejection: &rejection,
        };
        let req = match responder.open_request(body) {
            Ok(r) => r,
            Err(e) => return Response::new(400, "text/plain", format!("cannot open: {e}")),
        };
        let enrolkit_scep::RequestBody::PkcsReq(csr) = &req.body else {
            return Response::new(400, "text/plain", "PKCSReq only");
        };
        let (csr_file, leaf) = (d.join("req.der"), d.join("leaf.pem"));
        std::fs::write(&csr_file, csr.der()).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-inform",
            "DER",
            "-in",
            p(&csr_file),
            "-CA",
            p(&d.join("ca.pem")),
            "-CAkey",
            p(&d.join("ca.key")),
            "-set_serial",
            "1001",
            "-days",
            "7",
            "-out",
            p(&leaf),
        ]);
        let issued = cert(&leaf);
        let to = enrolkit_scep::ReplyTo::from_message(&req.message, req.content_encryption);
        let outcome = enrolkit_scep::Outcome::Success {
            certificates: vec![issued],
            crls: vec![],
        };
        let rep = enrolkit_scep::build_cert_rep(&to, &outcome, &sign_key, &sign_cert, &mut rand_core::OsRng).unwrap();
        Response::new(200, "application/x-pki-message", rep)
    }
}

#[test]
fn an_ndes_style_server_with_separate_ra_signing_and_encryption_certificates() {
    let s = ndes::Ndes::start();
    let d = s.dir.path();
    let fp = fingerprint(&d.join("ca.pem"));
    let (key, cert) = (d.join("dev.key"), d.join("dev.pem"));
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "scep",
            "enrol",
            "--url",
            &s.stub.url("/certsrv/mscep/mscep.dll"),
            "--ca-fingerprint",
            &fp,
        ])
        .args([
            "--subject",
            "CN=ndes-device",
            "--key-out",
            p(&key),
            "--cert-out",
            p(&cert),
        ])
        .env("ENROL_CHALLENGE", "ndes-password")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    verify(&d.join("ca.pem"), &cert);
    let ops: Vec<String> = s
        .stub
        .requests()
        .iter()
        .filter_map(|r| r.query("operation").map(str::to_owned))
        .collect();
    // A request encrypted to the signing certificate would not open with
    // the encryption key, and a reply signed by the signing certificate
    // would be refused if the client took the encryption one as the signer:
    // the enrolment succeeding shows both choices.
    assert_eq!(ops.last().map(String::as_str), Some("PKIOperation"), "{ops:?}");
}
