//! `mef serve`'s EST server against clients we did not write: curl and
//! OpenSSL drive every operation (base64 with and without line breaks, with
//! and without Content-Transfer-Encoding), `openssl s_client -psk` completes
//! certificate-less handshakes, and bad requests are refused with the right
//! status while the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

struct Mef {
    dir: tempfile::TempDir,
    child: Child,
    /// rustls listener port.
    est: u16,
    /// OpenSSL listener port.
    est_openssl: u16,
}

impl Drop for Mef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn tool_versions() {
    let v = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    println!("peer: {}", v("openssl", &["version"]));
    println!("peer: {}", v("curl", &["--version"]));
}

impl Mef {
    /// `mef init`, `edit` the configuration's `[est]` table, `mef serve` on free ports.
    fn start(edit: impl FnOnce(&mut toml::Table)) -> Mef {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let out = Command::new(env!("CARGO_BIN_EXE_mef"))
            .args(["init", "--dir", p(&st)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let path = st.join("mef.toml");
        let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        edit(cfg["est"].as_table_mut().unwrap());
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mef"))
            .args(["-c", p(&path), "serve", "--listen", "127.0.0.1:0"])
            .args(["--est-listen", "127.0.0.1:0", "--est-listen-openssl", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut ports = Vec::new();
        // Every listener is announced before "mef: ready".
        loop {
            let l = lines.next().expect("mef exited before it was ready").unwrap();
            if l == "mef: ready" {
                break;
            }
            if let Some(rest) = l.strip_prefix("mef: EST (") {
                let port: u16 = rest
                    .split(':')
                    .nth(2)
                    .unwrap()
                    .trim_end_matches("/.well-known/est/")
                    .parse()
                    .unwrap();
                ports.push((rest.starts_with("rustls"), port));
            }
        }
        let est = ports.iter().find(|(r, _)| *r).unwrap().1;
        let est_openssl = ports.iter().find(|(r, _)| !*r).unwrap().1;
        Mef {
            dir,
            child,
            est,
            est_openssl,
        }
    }

    fn st(&self, f: &str) -> PathBuf {
        self.dir.path().join("st").join(f)
    }

    fn mef(&self, args: &[&str]) -> Output {
        let o = Command::new(env!("CARGO_BIN_EXE_mef"))
            .args(["-c", p(&self.st("mef.toml"))])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mef {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if enrolkit_testkit::changes_handshake_keys(args) {
            std::thread::sleep(enrolkit_testkit::HANDSHAKE_KEYS_SETTLE);
        }
        o
    }

    fn challenge(&self) -> String {
        String::from_utf8(self.mef(&["challenge", "add"]).stdout)
            .unwrap()
            .trim()
            .to_owned()
    }

    fn url(&self, op: &str) -> String {
        format!("https://127.0.0.1:{}/.well-known/est/{op}", self.est)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn alive(&self) {
        let r = curl(self, &["--cacert", p(&self.st("ca.pem")), &self.url("cacerts")]);
        assert_eq!(r.status, 200, "server stopped serving: {}", self.log());
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn curl(m: &Mef, args: &[&str]) -> Reply {
    let h = m.dir.path().join("headers.txt");
    let b = m.dir.path().join("body.bin");
    let o = Command::new("curl")
        .args(["-sS", "-D", p(&h), "-o", p(&b), "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
    Reply {
        status,
        headers: std::fs::read_to_string(&h).unwrap_or_default().to_ascii_lowercase(),
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    c.wait_with_output().unwrap()
}

/// `openssl base64 -d` of an EST body (wrapped at 64 columns by mef).
fn unbase64(body: &[u8]) -> Vec<u8> {
    let o = openssl(&["base64", "-d"], Some(body));
    assert!(o.status.success());
    o.stdout
}

/// A CSR by `openssl req` (EC P-256), DER, and its key file.
fn openssl_csr(dir: &Path, name: &str, subject: &str) -> (Vec<u8>, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let o = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ]
        .into_iter()
        .chain(["-keyout", p(&key), "-subj", subject, "-outform", "DER"])
        .collect::<Vec<_>>(),
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (o.stdout, key)
}

fn base64_wrapped(der: &[u8]) -> Vec<u8> {
    openssl(&["base64"], Some(der)).stdout
}

fn base64_one_line(der: &[u8]) -> Vec<u8> {
    openssl(&["base64", "-A"], Some(der)).stdout
}

/// The certificates of a certs-only body, as PEM, via `openssl pkcs7`.
fn certs_pem(der: &[u8]) -> String {
    let o = openssl(&["pkcs7", "-inform", "DER", "-print_certs"], Some(der));
    assert!(
        o.status.success(),
        "openssl pkcs7: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn verify(ca: &Path, cert_pem: &str, dir: &Path) {
    let f = dir.join("to-verify.pem");
    std::fs::write(&f, cert_pem).unwrap();
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(&f)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn post(m: &Mef, op: &str, body: &[u8], extra: &[&str]) -> Reply {
    let f = m.dir.path().join("req.b64");
    std::fs::write(&f, body).unwrap();
    let data = format!("@{}", p(&f));
    let ca = m.st("ca.pem");
    let url = m.url(op);
    let mut args = vec!["--cacert", p(&ca), "--data-binary", data.as_str()];
    args.extend_from_slice(extra);
    args.push(url.as_str());
    curl(m, &args)
}

#[test]
fn curl_and_openssl_drive_every_operation() {
    tool_versions();
    let m = Mef::start(|est| {
        est.insert("basic".into(), true.into());
    });
    let dir = m.dir.path();
    let ca = m.st("ca.pem");

    // /cacerts: certs-only, base64, CTE sent, exact media type.
    let r = curl(&m, &["--cacert", p(&ca), &m.url("cacerts")]);
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: application/pkcs7-mime; smime-type=certs-only"),
        "{}",
        r.headers
    );
    assert!(r.headers.contains("content-transfer-encoding: base64"));
    assert!(
        r.body.split(|b| *b == b'\n').all(|l| l.len() <= 65),
        "base64 lines wrapped at 64"
    );
    let pem = certs_pem(&unbase64(&r.body));
    assert!(pem.contains("enrolkit MEF Root CA"), "{pem}");

    // /csrattrs with nothing configured: 204.
    let r = curl(&m, &["--cacert", p(&ca), &m.url("csrattrs")]);
    assert_eq!(r.status, 204);

    // /simpleenroll with HTTP Basic (one-time challenge as password), in the
    // four body layouts RFC 8951 allows.
    let mut first = None;
    for (i, (wrapped, cte)) in [(true, true), (false, true), (true, false), (false, false)]
        .into_iter()
        .enumerate()
    {
        let (csr, key) = openssl_csr(dir, &format!("d{i}"), &format!("/CN=curl-device-{i}/O=interop"));
        let body = if wrapped {
            base64_wrapped(&csr)
        } else {
            base64_one_line(&csr)
        };
        let creds = format!("device-{i}:{}", m.challenge());
        let mut extra = vec!["-u", creds.as_str(), "-H", "Content-Type: application/pkcs10"];
        if cte {
            extra.extend(["-H", "Content-Transfer-Encoding: base64"]);
        }
        let r = post(&m, "simpleenroll", &body, &extra);
        assert_eq!(
            r.status,
            200,
            "wrapped={wrapped} cte={cte}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let pem = certs_pem(&unbase64(&r.body));
        assert!(pem.contains(&format!("curl-device-{i}")));
        verify(&ca, &pem, dir);
        if first.is_none() {
            let cert = dir.join("d0.pem");
            std::fs::write(&cert, &pem).unwrap();
            first = Some((cert, key));
        }
    }
    let (cert0, key0) = first.unwrap();

    // A used challenge does not work twice.
    let (csr, _) = openssl_csr(dir, "reuse", "/CN=reuse");
    let creds = format!("x:{}", m.challenge());
    let ok = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&csr),
        &["-u", &creds, "-H", "Content-Type: application/pkcs10"],
    );
    assert_eq!(ok.status, 200);
    let (csr, _) = openssl_csr(dir, "reuse2", "/CN=reuse2");
    let again = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&csr),
        &["-u", &creds, "-H", "Content-Type: application/pkcs10"],
    );
    assert_eq!(again.status, 401, "{}", String::from_utf8_lossy(&again.body));
    assert!(again.headers.contains("www-authenticate: basic"));

    // /simplereenroll authenticated by the certificate just issued (TLS client certificate).
    let (csr, _) = openssl_csr(dir, "re", "/CN=curl-device-0/O=interop");
    let r = post(
        &m,
        "simplereenroll",
        &base64_wrapped(&csr),
        &[
            "--cert",
            p(&cert0),
            "--key",
            p(&key0),
            "-H",
            "Content-Type: application/pkcs10",
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    verify(&ca, &certs_pem(&unbase64(&r.body)), dir);
    // … and refused when the Subject changes (RFC 7030 §4.2.2).
    let (csr, _) = openssl_csr(dir, "re2", "/CN=someone-else/O=interop");
    let r = post(
        &m,
        "simplereenroll",
        &base64_wrapped(&csr),
        &[
            "--cert",
            p(&cert0),
            "--key",
            p(&key0),
            "-H",
            "Content-Type: application/pkcs10",
        ],
    );
    assert_eq!(r.status, 400);
    assert!(
        String::from_utf8_lossy(&r.body).contains("Subject"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    // /serverkeygen: multipart/mixed, PKCS#8 key part then certs-only part.
    let (csr, _) = openssl_csr(dir, "kg", "/CN=curl-device-0/O=interop");
    let r = post(
        &m,
        "serverkeygen",
        &base64_wrapped(&csr),
        &[
            "--cert",
            p(&cert0),
            "--key",
            p(&key0),
            "-H",
            "Content-Type: application/pkcs10",
        ],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.headers.contains("content-type: multipart/mixed; boundary="),
        "{}",
        r.headers
    );
    let text = String::from_utf8(r.body.clone()).unwrap();
    let parts: Vec<&str> = text.split("\r\n\r\n").collect();
    assert!(
        parts[0]
            .to_ascii_lowercase()
            .contains("content-type: application/pkcs8"),
        "{text}"
    );
    let key_b64: String = parts[1].split("\r\n--").next().unwrap().to_owned();
    let key_der = unbase64(key_b64.as_bytes());
    let o = openssl(&["pkey", "-inform", "DER", "-noout", "-text"], Some(&key_der));
    assert!(
        o.status.success(),
        "server-generated key: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cert_b64 = parts[2].split("\r\n--").next().unwrap();
    let pem = certs_pem(&unbase64(cert_b64.as_bytes()));
    assert!(pem.contains("curl-device-0"));
    verify(&ca, &pem, dir);

    // Bad input, each with its status and a reason; the server keeps serving.
    let creds = format!("bad:{}", m.challenge());
    let (csr, _) = openssl_csr(dir, "bad", "/CN=bad");
    let r = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&csr),
        &["-u", &creds, "-H", "Content-Type: text/plain"],
    );
    assert_eq!(r.status, 415);
    let r = post(
        &m,
        "simpleenroll",
        b"this is not base64 !!!",
        &["-u", &creds, "-H", "Content-Type: application/pkcs10"],
    );
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("base64"));
    let mut broken = csr.clone();
    let n = broken.len();
    broken[n - 5] ^= 0x55;
    let r = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&broken),
        &["-u", &creds, "-H", "Content-Type: application/pkcs10"],
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&csr),
        &["-u", "x:wrong-challenge", "-H", "Content-Type: application/pkcs10"],
    );
    assert_eq!(r.status, 401);
    // A client certificate from a CA we do not trust.
    let (rogue_key, rogue_cert) = (dir.join("rogue.key"), dir.join("rogue.pem"));
    let o = openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ]
        .into_iter()
        .chain(["-keyout", p(&rogue_key), "-out", p(&rogue_cert), "-subj", "/CN=rogue"])
        .collect::<Vec<_>>(),
        None,
    );
    assert!(o.status.success());
    let r = post(
        &m,
        "simpleenroll",
        &base64_wrapped(&csr),
        &[
            "--cert",
            p(&rogue_cert),
            "--key",
            p(&rogue_key),
            "-H",
            "Content-Type: application/pkcs10",
        ],
    );
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("not trusted"));
    let r = curl(&m, &["--cacert", p(&ca), &m.url("nosuchop")]);
    assert_eq!(r.status, 404);
    let r = curl(&m, &["--cacert", p(&ca), "-X", "POST", &m.url("cacerts")]);
    assert_eq!(r.status, 405);
    m.alive();
    assert!(m.log().contains("operation=simpleenroll"), "one log line per request");
}

fn s_client(port: u16, args: &[&str]) -> Output {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec!["s_client", "-connect", connect.as_str(), "-ign_eof"];
    all.extend_from_slice(args);
    openssl(
        &all,
        Some(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn openssl_s_client_completes_psk_handshakes() {
    tool_versions();
    let m = Mef::start(|_| {});
    let key_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let kf = m.dir.path().join("kpm.hex");
    std::fs::write(&kf, key_hex).unwrap();
    m.mef(&["psk", "add", "kpm-0001", "--key-file", p(&kf), "--label", "device 1"]);
    let listed = String::from_utf8(m.mef(&["psk", "list"]).stdout).unwrap();
    assert!(listed.contains("kpm-0001") && !listed.contains(key_hex));
    // Sealed at rest: neither the database file nor its WAL holds the key.
    let key = hex::decode(key_hex).unwrap();
    for f in ["mef.db", "mef.db-wal"] {
        let bytes = std::fs::read(m.st(f)).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_slice()),
            "{f} holds the PSK"
        );
    }

    // TLS 1.2, a PSK cipher suite: no certificates at all.
    let o = s_client(
        m.est_openssl,
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            "kpm-0001",
            "-psk",
            key_hex,
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("HTTP/1.1 200"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("PSK-AES128-GCM-SHA256"));
    // TLS 1.3 with the same PSK.
    let o = s_client(
        m.est_openssl,
        &["-tls1_3", "-psk_identity", "kpm-0001", "-psk", key_hex],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("HTTP/1.1 200"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A wrong key does not get through.
    let wrong = "ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let o = s_client(
        m.est_openssl,
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            "kpm-0001",
            "-psk",
            wrong,
        ],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("HTTP/1.1 200"));
    // An unknown identity neither.
    let o = s_client(
        m.est_openssl,
        &[
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256",
            "-psk_identity",
            "nobody",
            "-psk",
            key_hex,
        ],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("HTTP/1.1 200"));
    m.alive();
}
