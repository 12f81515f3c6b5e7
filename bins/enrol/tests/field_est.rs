//! `enrol est` against an EST server that behaves like ones deployed in the
//! field rather than like RFC 7030 (issue I): it serves TLS 1.2 only, and
//! every base64 body it sends ends in a NUL byte that its Content-Length
//! counts. The server is a small one of this test's own: rustls for TLS,
//! OpenSSL's command line for the CA (`openssl x509 -req`) and the
//! certs-only responses (`openssl crl2pkcs7`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

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

fn openssl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    o.stdout
}

/// What `/csrattrs` answers.
#[derive(Clone, Copy)]
enum CsrAttrsAnswer {
    /// A real attribute list (challengePassword), NUL-terminated like the rest.
    NulTerminated,
    /// Bytes no base64 decoder accepts, as a broken server sends.
    Garbage,
}

/// The field-style EST server: a CA made by OpenSSL, a TLS 1.2-only
/// rustls listener, NUL-terminated base64 bodies.
struct FieldServer {
    port: u16,
    dir: tempfile::TempDir,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FieldServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A NUL-terminated base64 body of `der`, as those servers send it.
fn nul_terminated(der: &[u8]) -> Vec<u8> {
    let mut b = base64::engine::general_purpose::STANDARD.encode(der).into_bytes();
    b.push(0);
    b
}

/// Read one HTTP/1.1 request: request line, headers, Content-Length body.
fn read_request(s: &mut impl Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head.lines().next().unwrap_or("").to_owned(), body))
}

impl FieldServer {
    fn start(csrattrs: CsrAttrsAnswer) -> FieldServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca_key, ca) = (d.join("ca.key"), d.join("ca.pem"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Field EST CA",
            "-keyout",
            p(&ca_key),
            "-out",
            p(&ca),
        ]);
        let (tls_key, tls_csr, tls_cert, ext) =
            (d.join("tls.key"), d.join("tls.csr"), d.join("tls.pem"), d.join("ext"));
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            p(&tls_key),
            "-out",
            p(&tls_csr),
        ]);
        std::fs::write(&ext, "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            p(&tls_csr),
            "-CA",
            p(&ca),
            "-CAkey",
            p(&ca_key),
            "-set_serial",
            "1000",
            "-days",
            "30",
            "-extfile",
            p(&ext),
            "-out",
            p(&tls_cert),
        ]);
        let cert_der = openssl(&["x509", "-in", p(&tls_cert), "-outform", "DER"]);
        let key_der = openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", p(&tls_key), "-outform", "DER"]);
        let cacerts = openssl(&["crl2pkcs7", "-nocrl", "-certfile", p(&ca), "-outform", "DER"]);
        std::fs::write(d.join("password"), "field-secret\n").unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert_der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, dir_path) = (seen.clone(), stop.clone(), d.to_path_buf());
        let serial = AtomicU32::new(2000);
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let Some((line, body)) = read_request(&mut tls) else {
                    continue;
                };
                seen2.lock().unwrap().push(line.clone());
                let serial = serial.fetch_add(1, Ordering::SeqCst);
                let (status, ctype, body) = answer(&line, &body, csrattrs, &cacerts, &dir_path, serial);
                let mut head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                if !ctype.is_empty() {
                    head.push_str(&format!(
                        "Content-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
                    ));
                }
                head.push_str("\r\n");
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(&body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        FieldServer { port, dir, seen, stop }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn enrol(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_enrol"))
            .args([
                "est",
                "--server",
                &format!("https://127.0.0.1:{}", self.port),
                "--ta",
                p(&self.ca()),
            ])
            .args([
                "--basic-user",
                "device",
                "--basic-password-file",
                p(&self.dir.path().join("password")),
            ])
            .args(args)
            .output()
            .unwrap()
    }
}

/// The answer to one request line (and body).
fn answer(
    line: &str,
    body: &[u8],
    csrattrs: CsrAttrsAnswer,
    cacerts: &[u8],
    dir: &Path,
    serial: u32,
) -> (&'static str, &'static str, Vec<u8>) {
    const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";
    let path = line.split(' ').nth(1).unwrap_or("");
    match path {
        "/.well-known/est/cacerts" => ("200 OK", CERTS_ONLY, nul_terminated(cacerts)),
        "/.well-known/est/csrattrs" => match csrattrs {
            // SEQUENCE { OID challengePassword }
            CsrAttrsAnswer::NulTerminated => (
                "200 OK",
                "application/csrattrs",
                nul_terminated(&[
                    0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07,
                ]),
            ),
            CsrAttrsAnswer::Garbage => ("200 OK", "application/csrattrs", b"<html>oops</html>\0".to_vec()),
        },
        "/.well-known/est/simpleenroll" => {
            let clean: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            let Ok(csr) = base64::engine::general_purpose::STANDARD.decode(&clean) else {
                return ("400 Bad Request", "", b"bad base64".to_vec());
            };
            let (csr_file, leaf, p7) = (dir.join("req.der"), dir.join("leaf.pem"), dir.join("leaf.p7"));
            std::fs::write(&csr_file, csr).unwrap();
            openssl(&[
                "x509",
                "-req",
                "-inform",
                "DER",
                "-in",
                p(&csr_file),
                "-CA",
                p(&dir.join("ca.pem")),
                "-CAkey",
                p(&dir.join("ca.key")),
                "-set_serial",
                &serial.to_string(),
                "-days",
                "7",
                "-out",
                p(&leaf),
            ]);
            openssl(&[
                "crl2pkcs7",
                "-nocrl",
                "-certfile",
                p(&leaf),
                "-outform",
                "DER",
                "-out",
                p(&p7),
            ]);
            ("200 OK", CERTS_ONLY, nul_terminated(&std::fs::read(&p7).unwrap()))
        }
        _ => ("404 Not Found", "", Vec::new()),
    }
}

#[test]
fn enrol_est_enrols_with_a_tls12_only_server_that_nul_terminates_its_bodies() {
    println!("peer: {}", String::from_utf8_lossy(&openssl(&["version"])).trim());
    let s = FieldServer::start(CsrAttrsAnswer::NulTerminated);
    // The server really is TLS 1.2 only: a TLS 1.3-only client is refused.
    let o = Command::new("openssl")
        .args(["s_client", "-tls1_3", "-connect", &format!("127.0.0.1:{}", s.port)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success(), "TLS 1.3 accepted: {}", text(&o));

    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cacerts.pem");
    let o = s.enrol(&["cacerts", "--out", p(&out)]);
    assert!(o.status.success(), "cacerts: {}", text(&o));
    assert!(std::fs::read_to_string(&out).unwrap().contains("BEGIN CERTIFICATE"));

    let o = s.enrol(&["csrattrs"]);
    assert!(o.status.success(), "csrattrs: {}", text(&o));
    assert!(
        text(&o).contains("challengePassword") || text(&o).contains("1.2.840.113549.1.9.7"),
        "{}",
        text(&o)
    );

    let (key, cert) = (d.path().join("dev.key"), d.path().join("dev.pem"));
    let o = s.enrol(&[
        "enroll",
        "--subject",
        "CN=field-device",
        "--key-out",
        p(&key),
        "--cert-out",
        p(&cert),
    ]);
    assert!(o.status.success(), "enroll: {}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    let v = Command::new("openssl")
        .args(["verify", "-CAfile", p(&s.ca()), p(&cert)])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", text(&v));
    let seen = s.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|l| l.starts_with("POST /.well-known/est/simpleenroll")),
        "{seen:?}"
    );
}

#[test]
fn an_unusable_csrattrs_answer_does_not_stop_the_enrolment() {
    let s = FieldServer::start(CsrAttrsAnswer::Garbage);
    let d = tempfile::tempdir().unwrap();
    let (key, cert) = (d.path().join("dev.key"), d.path().join("dev.pem"));
    let o = s.enrol(&[
        "enroll",
        "--subject",
        "CN=field-device-2",
        "--key-out",
        p(&key),
        "--cert-out",
        p(&cert),
    ]);
    assert!(o.status.success(), "enroll: {}", text(&o));
    assert!(text(&o).contains("warning: /csrattrs unusable"), "{}", text(&o));
    assert!(cert.exists() && key.exists());
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter()
            .filter(|l| l.starts_with("GET /.well-known/est/csrattrs"))
            .count(),
        1,
        "{seen:?}"
    );
}
