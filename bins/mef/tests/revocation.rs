//! `mef serve`'s revocation services against peers we did not write:
//! `openssl ocsp` asks the OCSP responder (POST, with and without a nonce,
//! several certificates at once) and verifies every answer; curl sends the
//! GET form and garbage; the CRL is fetched by curl from the URL the
//! certificate names and checked by `openssl crl` and `openssl verify
//! -crl_check`; `mef revoke` shows at once in both. `mef init`'s defaults
//! are what is tested: the certificates' CRL and OCSP URLs must lead to the
//! running server, so `mef init --listen` gets the port `mef serve` binds
//! (and, the test harness's way, a `serve --listen` override moves them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `testkit::Mef` with the listeners this test needs named, and EST Basic on.
struct Mef {
    inner: enrolkit_testkit::Mef,
    /// The plain-HTTP listener (SCEP, /crl, /ocsp).
    http: u16,
    /// The EST (rustls) listener, for enrolling test certificates.
    est: u16,
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

fn tool_versions() {
    for (cmd, arg) in [("openssl", "version"), ("curl", "--version")] {
        let o = Command::new(cmd).arg(arg).output().unwrap();
        println!(
            "peer: {}",
            String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("")
        );
    }
}

impl Mef {
    /// `mef init --listen 127.0.0.1:<free port> <init_args>` with EST Basic on,
    /// then `mef serve` as configured (no listen override, so the URLs `init`
    /// wrote into the profile are the server's). A port lost to another
    /// process between choosing and binding makes `serve` exit: try another.
    fn start(init_args: &[&str]) -> Mef {
        Self::start_with(init_args, false)
    }

    /// As [`Mef::start`]; with `override_listen`, the way the test harness
    /// runs mef instead: `init` with its default `--listen`, then `serve
    /// --listen 127.0.0.1:0`.
    fn start_with(init_args: &[&str], override_listen: bool) -> Mef {
        let basic = |_: &Path, cfg: &mut String| {
            let mut t: toml::Table = cfg.parse().unwrap();
            t["est"].as_table_mut().unwrap().insert("basic".into(), true.into());
            *cfg = toml::to_string(&t).unwrap();
        };
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let listen = match override_listen {
                false => format!("127.0.0.1:{port}"),
                true => "127.0.0.1:8080".into(),
            };
            let mut args = vec![
                "--listen",
                &listen,
                "--est-listen",
                "127.0.0.1:0",
                "--est-listen-openssl",
                "127.0.0.1:0",
            ];
            args.extend_from_slice(init_args);
            let serve: &[&str] = if override_listen {
                &["--listen", "127.0.0.1:0"]
            } else {
                &[]
            };
            match enrolkit_testkit::Mef::try_start(Path::new(env!("CARGO_BIN_EXE_mef")), &args, basic, serve) {
                Ok(m) if (m.scep == port || (override_listen && m.scep != 0)) && m.rustls != 0 => {
                    let (http, est) = (m.scep, m.rustls);
                    return Mef { inner: m, http, est };
                }
                Ok(m) => last = m.log(),
                Err(log) => last = log,
            }
        }
        panic!("mef serve did not start: {last}");
    }

    fn st(&self, f: &str) -> PathBuf {
        self.inner.st(f)
    }

    fn path(&self, f: &str) -> PathBuf {
        self.inner.dir.path().join(f)
    }

    fn mef(&self, args: &[&str]) -> String {
        self.inner.run(args)
    }

    fn log(&self) -> String {
        self.inner.log()
    }

    fn ocsp_url(&self) -> String {
        format!("http://127.0.0.1:{}/ocsp", self.http)
    }

    /// A certificate for `cn` by EST (an `openssl req` CSR, curl, HTTP Basic
    /// with a one-time challenge), written to `<name>.pem`.
    fn enrol(&self, name: &str, cn: &str) -> PathBuf {
        let key = self.path(&format!("{name}.key"));
        let csr = openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&key),
            "-subj",
            &format!("/CN={cn}"),
            "-outform",
            "DER",
        ]);
        assert!(csr.status.success(), "{}", text(&csr));
        let body = self.path(&format!("{name}.csr.b64"));
        let b64 = openssl_stdin(&["base64"], &csr.stdout);
        std::fs::write(&body, b64.stdout).unwrap();
        let challenge = self.mef(&["challenge", "add"]).trim().to_owned();
        let reply = self.path(&format!("{name}.p7.b64"));
        let (status, _) = curl(&[
            "--cacert",
            p(&self.st("ca.pem")),
            "-u",
            &format!("{name}:{challenge}"),
            "-H",
            "Content-Type: application/pkcs10",
            "--data-binary",
            &format!("@{}", p(&body)),
            "-o",
            p(&reply),
            &format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", self.est),
        ]);
        assert_eq!(status, 200, "simpleenroll: {}", self.log());
        let der = openssl_stdin(&["base64", "-d"], &std::fs::read(&reply).unwrap()).stdout;
        let pem = openssl_stdin(&["pkcs7", "-inform", "DER", "-print_certs"], &der);
        assert!(pem.status.success(), "{}", text(&pem));
        let out = self.path(&format!("{name}.pem"));
        std::fs::write(&out, pem.stdout).unwrap();
        out
    }

    /// `openssl ocsp -url <this server> <args>`.
    fn ocsp(&self, args: &[&str]) -> Output {
        let url = self.ocsp_url();
        let mut all = vec!["ocsp", "-url", url.as_str()];
        all.extend_from_slice(args);
        openssl(&all)
    }

    /// GET `url` with curl into `<name>`; the HTTP status and the response headers.
    fn get(&self, url: &str, name: &str) -> (u16, String) {
        curl(&["-o", p(&self.path(name)), url])
    }
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn openssl_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut c = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    c.wait_with_output().unwrap()
}

/// curl `args` (with `-sS`, headers to a temporary file): the status and the headers, lower-cased.
fn curl(args: &[&str]) -> (u16, String) {
    let headers = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new("curl")
        .args(["-sS", "-w", "%{http_code}", "-D", p(headers.path())])
        .args(args)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
    let h = std::fs::read_to_string(headers.path())
        .unwrap_or_default()
        .to_ascii_lowercase();
    (status, h)
}

/// The value of one `openssl x509 -noout <flag>` line, e.g. the serial or a URI.
fn x509(cert: &Path, args: &[&str]) -> String {
    let mut all = vec!["x509", "-in", p(cert), "-noout"];
    all.extend_from_slice(args);
    let o = openssl(&all);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

fn serial(cert: &Path) -> String {
    x509(cert, &["-serial"])
        .trim()
        .strip_prefix("serial=")
        .unwrap()
        .to_owned()
}

/// The CRL distribution point URI the certificate names.
fn crl_url(cert: &Path) -> String {
    let ext = x509(cert, &["-ext", "crlDistributionPoints"]);
    ext.lines()
        .find_map(|l| l.trim().strip_prefix("URI:"))
        .unwrap_or_else(|| panic!("no CRL distribution point URI in {ext}"))
        .to_owned()
}

/// Every byte but letters and digits as %XX (RFC 3986), as RFC 6960 A.1 asks of the base64.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Fetch the CRL from `url` with curl, check it with `openssl crl` against
/// `ca_file`, and write it as PEM to `crl.pem` for `openssl verify`; its text.
fn fetch_crl(m: &Mef, url: &str, ca_file: &Path) -> String {
    let (status, headers) = m.get(url, "crl.der");
    assert_eq!(status, 200, "{}", m.log());
    assert!(headers.contains("content-type: application/pkix-crl"), "{headers}");
    let crl = m.path("crl.der");
    let o = openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-CAfile", p(ca_file), "-noout"]);
    assert!(
        o.status.success() && text(&o).contains("verify OK"),
        "openssl crl: {}",
        text(&o)
    );
    let o = openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-out", p(&m.path("crl.pem"))]);
    assert!(o.status.success(), "{}", text(&o));
    text(&openssl(&["crl", "-inform", "DER", "-in", p(&crl), "-noout", "-text"]))
}

/// `openssl verify -crl_check` of `leaf` with the fetched CRL.
fn verify_with_crl(m: &Mef, ca_args: &[&str], leaf: &Path) -> Output {
    let crl = m.path("crl.pem");
    let mut args = vec!["verify", "-crl_check", "-CRLfile", p(&crl)];
    args.extend_from_slice(ca_args);
    args.push(p(leaf));
    openssl(&args)
}

#[test]
fn openssl_ocsp_and_crl_against_mef() {
    tool_versions();
    let m = Mef::start(&[]);
    let ca = m.st("ca.pem");
    let leaf = m.enrol("leaf", "ocsp-device-1");
    let sibling = m.enrol("sibling", "ocsp-device-2");

    // mef init's defaults: the certificate points at this server.
    let ocsp_uri = x509(&leaf, &["-ocsp_uri"]).trim().to_owned();
    assert_eq!(ocsp_uri, m.ocsp_url());
    let crl_uri = crl_url(&leaf);
    assert_eq!(crl_uri, format!("http://127.0.0.1:{}/crl", m.http));

    // Good, with OpenSSL's nonce: verified against the CA, nonce echoed.
    let o = m.ocsp(&["-issuer", p(&ca), "-cert", p(&leaf), "-CAfile", p(&ca), "-resp_text"]);
    let t = text(&o);
    println!("{t}");
    assert!(o.status.success(), "{t}");
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains(&format!("{}: good", p(&leaf))), "{t}");
    assert!(t.contains("OCSP Nonce"), "{t}");
    assert!(!t.contains("WARNING"), "{t}");
    assert!(t.contains("Next Update:"), "{t}");
    assert!(t.contains("Signature Algorithm: sha256WithRSAEncryption"), "{t}");
    // responderID byKey: the CA key's SHA-1, as the certificate's AKI has it.
    let aki = x509(&leaf, &["-ext", "authorityKeyIdentifier"]);
    let kid: String = aki
        .lines()
        .map(str::trim)
        .find(|l| l.len() > 40 && l.chars().all(|c| c.is_ascii_hexdigit() || c == ':'))
        .unwrap_or_else(|| panic!("{aki}"))
        .replace(':', "");
    assert!(t.contains(&format!("Responder Id: {kid}")), "{kid} in {t}");

    // Without a nonce.
    let o = m.ocsp(&[
        "-no_nonce",
        "-issuer",
        p(&ca),
        "-cert",
        p(&leaf),
        "-CAfile",
        p(&ca),
        "-resp_text",
    ]);
    let t = text(&o);
    assert!(o.status.success() && t.contains("Response verify OK"), "{t}");
    assert!(t.contains(": good") && !t.contains("OCSP Nonce"), "{t}");

    // GET (RFC 6960 A.1), which `openssl ocsp` cannot send: the request by
    // openssl, the GET by curl, the response checked by openssl.
    let req = m.path("req.der");
    let o = openssl(&[
        "ocsp",
        "-no_nonce",
        "-issuer",
        p(&ca),
        "-cert",
        p(&leaf),
        "-reqout",
        p(&req),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let b64 = String::from_utf8(openssl(&["base64", "-A", "-in", p(&req)]).stdout).unwrap();
    let (status, headers) = m.get(&format!("{}/{}", m.ocsp_url(), percent_encode(b64.trim())), "get.der");
    assert_eq!(status, 200, "{}", m.log());
    assert!(headers.contains("content-type: application/ocsp-response"), "{headers}");
    let get = m.path("get.der");
    let o = openssl(&[
        "ocsp",
        "-respin",
        p(&get),
        "-issuer",
        p(&ca),
        "-cert",
        p(&leaf),
        "-CAfile",
        p(&ca),
    ]);
    let t = text(&o);
    assert!(t.contains("Response verify OK") && t.contains(": good"), "GET: {t}");

    // The CRL from the certificate's URL: verified, empty, and `openssl verify -crl_check` passes.
    let crl_text = fetch_crl(&m, &crl_uri, &ca);
    assert!(crl_text.contains("No Revoked Certificates"), "{crl_text}");
    let o = verify_with_crl(&m, &["-CAfile", p(&ca)], &leaf);
    assert!(o.status.success(), "before revocation: {}", text(&o));

    // Revoke: the very next OCSP answer and CRL say so (no restart, no wait).
    let leaf_serial = serial(&leaf);
    m.mef(&["revoke", &leaf_serial, "--reason", "key-compromise"]);
    let o = m.ocsp(&[
        "-issuer",
        p(&ca),
        "-cert",
        p(&leaf),
        "-cert",
        p(&sibling),
        "-CAfile",
        p(&ca),
    ]);
    let t = text(&o);
    println!("{t}");
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains(&format!("{}: revoked", p(&leaf))), "{t}");
    assert!(t.contains("Reason: keyCompromise"), "{t}");
    assert!(t.contains(&format!("{}: good", p(&sibling))), "{t}");
    let crl_text = fetch_crl(&m, &crl_uri, &ca);
    assert!(
        crl_text.contains(&format!("Serial Number: {leaf_serial}")),
        "{crl_text}"
    );
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    let sibling_serial = serial(&sibling);
    assert!(!crl_text.contains(&sibling_serial), "only the revoked one is listed");
    let o = verify_with_crl(&m, &["-CAfile", p(&ca)], &leaf);
    assert!(!o.status.success(), "after revocation: {}", text(&o));
    assert!(text(&o).contains("certificate revoked"), "{}", text(&o));
    let o = verify_with_crl(&m, &["-CAfile", p(&ca)], &sibling);
    assert!(o.status.success(), "{}", text(&o));

    // A serial this CA never issued: unknown, in a verified response.
    let o = m.ocsp(&["-issuer", p(&ca), "-serial", "0x1234", "-CAfile", p(&ca)]);
    let t = text(&o);
    assert!(t.contains("Response verify OK") && t.contains("0x1234: unknown"), "{t}");

    // Another CA's certificate: unauthorized (RFC 5019 §2.2.3), unsigned.
    let other_key = m.path("other.key");
    let other = m.path("other.pem");
    let o = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p(&other_key),
        "-subj",
        "/CN=Somebody Else's CA",
        "-days",
        "1",
        "-out",
        p(&other),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = m.ocsp(&["-issuer", p(&other), "-serial", "0x01", "-CAfile", p(&ca)]);
    assert!(text(&o).contains("Responder Error: unauthorized (6)"), "{}", text(&o));

    // Garbage: malformedRequest (unsigned), and the server goes on answering.
    let garbage = m.path("garbage.bin");
    std::fs::write(&garbage, b"this is not an OCSP request\x30\x82\xff\xff").unwrap();
    let (status, headers) = curl(&[
        "-H",
        "Content-Type: application/ocsp-request",
        "--data-binary",
        &format!("@{}", p(&garbage)),
        "-o",
        p(&m.path("malformed.der")),
        &m.ocsp_url(),
    ]);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: application/ocsp-response"), "{headers}");
    assert_eq!(
        std::fs::read(m.path("malformed.der")).unwrap(),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    let o = openssl(&[
        "ocsp",
        "-respin",
        p(&m.path("malformed.der")),
        "-resp_text",
        "-noverify",
    ]);
    assert!(
        text(&o).contains("Responder Error: malformedrequest (1)"),
        "{}",
        text(&o)
    );
    // An oversized body is refused before it is read in full; a wrong method too.
    let big = m.path("big.bin");
    std::fs::write(&big, vec![0x30u8; 64 * 1024]).unwrap();
    let (status, _) = curl(&[
        "-H",
        "Content-Type: application/ocsp-request",
        "--data-binary",
        &format!("@{}", p(&big)),
        "-o",
        "/dev/null",
        &m.ocsp_url(),
    ]);
    assert_eq!(status, 413);
    let (status, _) = curl(&["-X", "PUT", "-o", "/dev/null", &m.ocsp_url()]);
    assert_eq!(status, 405);
    let o = m.ocsp(&["-issuer", p(&ca), "-cert", p(&sibling), "-CAfile", p(&ca)]);
    let t = text(&o);
    assert!(
        t.contains("Response verify OK") && t.contains(": good"),
        "still serving: {t}"
    );

    // One log line per request.
    let log = m.log();
    assert!(log.contains("outcome=malformedRequest"), "{log}");
    assert!(
        log.contains(&format!("{}=revoked", leaf_serial.to_ascii_lowercase())),
        "{log}"
    );
    assert!(log.contains("outcome=unauthorized"), "{log}");
}

#[test]
fn p256_intermediate_signs_ecdsa_answers() {
    tool_versions();
    let m = Mef::start(&["--ca-key", "p256", "--intermediate"]);
    let (ca, root) = (m.st("ca.pem"), m.st("root.pem"));
    let leaf = m.enrol("leaf", "ecdsa-device");
    assert_eq!(x509(&leaf, &["-ocsp_uri"]).trim(), m.ocsp_url());

    let ask = || {
        let o = m.ocsp(&[
            "-issuer",
            p(&ca),
            "-cert",
            p(&leaf),
            "-CAfile",
            p(&root),
            "-verify_other",
            p(&ca),
            "-resp_text",
        ]);
        text(&o)
    };
    let t = ask();
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains("Signature Algorithm: ecdsa-with-SHA256"), "{t}");
    assert!(t.contains(&format!("{}: good", p(&leaf))), "{t}");

    let chain = ["-CAfile", p(&root), "-untrusted", p(&ca)];
    fetch_crl(&m, &crl_url(&leaf), &ca);
    let o = verify_with_crl(&m, &chain, &leaf);
    assert!(o.status.success(), "{}", text(&o));

    m.mef(&["revoke", &serial(&leaf), "--reason", "superseded"]);
    let t = ask();
    assert!(t.contains("Response verify OK"), "{t}");
    assert!(t.contains(": revoked") && t.contains("Reason: superseded"), "{t}");
    let crl_text = fetch_crl(&m, &crl_url(&leaf), &ca);
    assert!(crl_text.contains(&serial(&leaf)), "{crl_text}");
    let o = verify_with_crl(&m, &chain, &leaf);
    assert!(text(&o).contains("certificate revoked"), "{}", text(&o));
}

#[test]
fn urls_follow_a_serve_listen_override() {
    // The harness's way: init says 127.0.0.1:8080, serve binds another port.
    let m = Mef::start_with(&[], true);
    assert_ne!(m.http, 8080);
    let ca = m.st("ca.pem");
    let leaf = m.enrol("leaf", "moved-device");
    assert_eq!(x509(&leaf, &["-ocsp_uri"]).trim(), m.ocsp_url());
    assert_eq!(crl_url(&leaf), format!("http://127.0.0.1:{}/crl", m.http));
    let o = m.ocsp(&["-issuer", p(&ca), "-cert", p(&leaf), "-CAfile", p(&ca)]);
    let t = text(&o);
    assert!(t.contains("Response verify OK") && t.contains(": good"), "{t}");
    fetch_crl(&m, &crl_url(&leaf), &ca);
    // The configuration keeps what init wrote.
    let cfg = std::fs::read_to_string(m.st("mef.toml")).unwrap();
    assert!(cfg.contains("ocsp_url = \"http://127.0.0.1:8080/ocsp\""), "{cfg}");
    assert!(m.log().contains("profile URL follows --listen"), "{}", m.log());
}
