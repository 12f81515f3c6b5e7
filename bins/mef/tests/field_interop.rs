//! Deployed SCEP and EST clients that are not RFC-exact (issue I), on the
//! wire: the response bytes are read as they arrive, on a raw socket for
//! the plain HTTP listener and through `openssl s_client` for the rustls and
//! OpenSSL TLS listeners.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use enrolkit_testkit::Mef;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every header name `mef` may send, spelt as RFC 9110, RFC 7030, RFC 2045
/// and RFC 6266 spell it. A name not listed here, or listed in another
/// case, fails the test.
const CANONICAL: &[&str] = &[
    "Content-Type",
    "Content-Length",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Date",
    "WWW-Authenticate",
    "Retry-After",
    "Connection",
    "Transfer-Encoding",
];

/// The header names of a response head (status line first).
fn header_names(head: &str) -> Vec<&str> {
    head.split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect()
}

/// Split a raw response into (head, body) and check every header name is
/// canonical byte for byte; `must` lists names that must be there.
fn check(what: &str, raw: &[u8], status: u16, must: &[&str]) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{what}: expected {status}, got {:?}",
        String::from_utf8_lossy(raw)
    );
    let names = header_names(&head);
    for n in &names {
        assert!(
            CANONICAL.contains(n),
            "{what}: header name {n:?} is not in its canonical spelling (head: {head:?})"
        );
    }
    for m in must {
        assert!(names.contains(m), "{what}: no {m:?} header in {head:?}");
    }
    raw[end + 4..].to_vec()
}

/// One request on a fresh plain-HTTP connection; the raw response.
fn plain(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// One request through `openssl s_client` (TLS, no client certificate);
/// the raw decrypted response.
fn tls(port: u16, request: &[u8]) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-ign_eof",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(request).unwrap();
    let out = c.wait_with_output().unwrap();
    out.stdout
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

fn base64(data: &[u8]) -> String {
    let mut c = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
}

/// A base64 PKCS#10 for `cn` made by `openssl req`.
fn csr_b64(dir: &Path, cn: &str) -> String {
    let (_, csr) = common::key_and_csr(dir, cn, cn, None);
    let der = std::fs::read(&csr).unwrap();
    base64(&der)
}

fn start(manual: bool) -> Mef {
    Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, cfg| {
        // HTTP Basic with one-time challenges, as embedded EST clients use it.
        assert!(cfg.contains("\nbasic = false\n"), "{cfg}");
        *cfg = cfg.replace("\nbasic = false\n", "\nbasic = true\n");
        if manual {
            *cfg = cfg.replace("manual_approval = false", "manual_approval = true");
        }
    })
}

#[test]
fn every_response_header_name_is_sent_in_its_canonical_spelling() {
    common::versions();
    let m = start(false);
    let scep = m.scep;
    // Plain HTTP: SCEP, the CRL, and the errors.
    for (what, req, status, must) in [
        (
            "GetCACaps",
            get("/scep?operation=GetCACaps"),
            200,
            &["Content-Type", "Content-Length", "Date"][..],
        ),
        (
            "GetCACert",
            get("/scep?operation=GetCACert"),
            200,
            &["Content-Type"][..],
        ),
        (
            "GetCACert pkiclient.exe",
            get("/cgi-bin/pkiclient.exe?operation=GetCACert"),
            200,
            &["Content-Type"][..],
        ),
        ("CRL", get("/crl"), 200, &["Content-Type"][..]),
        (
            "unknown operation",
            get("/scep?operation=Nonsense"),
            400,
            &["Content-Type"][..],
        ),
        ("unknown path", get("/nowhere"), 404, &["Content-Type"][..]),
        (
            "malformed PKIOperation",
            post(
                "/scep?operation=PKIOperation",
                &[("Content-Type", "application/x-pki-message")],
                b"\x30\x03junk",
            ),
            400,
            &["Content-Type"][..],
        ),
    ] {
        let raw = plain(scep, &req);
        check(&format!("plain {what}"), &raw, status, must);
    }
    // Both TLS listeners: EST.
    let dir = tempfile::tempdir().unwrap();
    for (stack, port) in [("rustls", m.rustls), ("OpenSSL", m.openssl)] {
        let raw = tls(port, &get("/.well-known/est/cacerts"));
        check(
            &format!("{stack} cacerts"),
            &raw,
            200,
            &["Content-Type", "Content-Transfer-Encoding", "Content-Length"],
        );
        let raw = tls(port, &get("/.well-known/est/csrattrs"));
        let status = if raw.starts_with(b"HTTP/1.1 204") { 204 } else { 200 };
        check(&format!("{stack} csrattrs"), &raw, status, &[]);
        // No credential at all: 401 with the Basic challenge.
        let csr = csr_b64(dir.path(), &format!("hdr-{stack}"));
        let raw = tls(
            port,
            &post(
                "/.well-known/est/simpleenroll",
                &[("Content-Type", "application/pkcs10")],
                csr.as_bytes(),
            ),
        );
        check(&format!("{stack} 401"), &raw, 401, &["WWW-Authenticate"]);
        // Enrolment with a one-time challenge over HTTP Basic: 200.
        let challenge = m.run(&["challenge", "add"]).trim().to_owned();
        let auth = format!("Basic {}", base64(format!("device:{challenge}").as_bytes()));
        let raw = tls(
            port,
            &post(
                "/.well-known/est/simpleenroll",
                &[("Content-Type", "application/pkcs10"), ("Authorization", &auth)],
                csr.as_bytes(),
            ),
        );
        check(
            &format!("{stack} simpleenroll"),
            &raw,
            200,
            &["Content-Type", "Content-Transfer-Encoding"],
        );
        // serverkeygen: the multipart's part headers are canonical too.
        let challenge = m.run(&["challenge", "add"]).trim().to_owned();
        let auth = format!("Basic {}", base64(format!("device:{challenge}").as_bytes()));
        let csr = csr_b64(dir.path(), &format!("kg-{stack}"));
        let raw = tls(
            port,
            &post(
                "/.well-known/est/serverkeygen",
                &[("Content-Type", "application/pkcs10"), ("Authorization", &auth)],
                csr.as_bytes(),
            ),
        );
        let body = check(&format!("{stack} serverkeygen"), &raw, 200, &["Content-Type"]);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(body.matches("\r\nContent-Type: ").count(), 2, "{stack}: {body}");
        assert_eq!(
            body.matches("\r\nContent-Transfer-Encoding: base64").count(),
            2,
            "{stack}: {body}"
        );
        assert!(
            !body.contains("content-type") && !body.contains("Content-type"),
            "{body}"
        );
    }
}

#[test]
fn a_held_request_answers_202_with_retry_after_spelt_canonically() {
    let m = start(true);
    let dir = tempfile::tempdir().unwrap();
    for (stack, port) in [("rustls", m.rustls), ("OpenSSL", m.openssl)] {
        let challenge = m.run(&["challenge", "add"]).trim().to_owned();
        let auth = format!("Basic {}", base64(format!("device:{challenge}").as_bytes()));
        let csr = csr_b64(dir.path(), &format!("held-{stack}"));
        let raw = tls(
            port,
            &post(
                "/.well-known/est/simpleenroll",
                &[("Content-Type", "application/pkcs10"), ("Authorization", &auth)],
                csr.as_bytes(),
            ),
        );
        check(&format!("{stack} held"), &raw, 202, &["Retry-After"]);
    }
}

/// A self-signed signer certificate for `key` made by `openssl req -x509`
/// with exactly the extensions in `v3` (OpenSSL config lines).
fn self_signed(dir: &Path, name: &str, key: &Path, cn: &str, v3: &str) -> std::path::PathBuf {
    let (cnf, out) = (
        dir.join(format!("{name}.x509.cnf")),
        dir.join(format!("{name}.self.pem")),
    );
    std::fs::write(
        &cnf,
        format!("[req]\ndistinguished_name = dn\nx509_extensions = v3\n[dn]\n[v3]\n{v3}\n"),
    )
    .unwrap();
    common::run(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            common::p(key),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "1",
        ]
        .into_iter()
        .chain(["-config", common::p(&cnf), "-out", common::p(&out)])
        .collect::<Vec<_>>(),
    );
    out
}

#[test]
fn pkioperation_by_get_is_served_to_a_client_that_was_offered_post() {
    common::versions();
    let m = start(false);
    let caps = plain(m.scep, &get("/scep?operation=GetCACaps"));
    let caps = String::from_utf8_lossy(&caps);
    assert!(caps.contains("POSTPKIOperation"), "{caps}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let otp = m
        .run(&["challenge", "add", "--subject", "CN=cisco-get"])
        .trim()
        .to_owned();
    let (key, csr) = common::key_and_csr(d, "cisco", "cisco-get", Some(&otp));
    let signer = self_signed(d, "cisco", &key, "cisco-get", "subjectKeyIdentifier = hash");
    let msg = common::scep_message(&m, d, "cisco", "19", &csr, (&signer, &key));
    common::send(&m, d, "cisco", &msg, common::Transport::Get);
    assert_eq!(common::status(d, "cisco"), "pkiStatus=0", "{}", m.log());
    let cert = common::issued(d, "cisco", (&signer, &key));
    assert_eq!(common::subject(&cert), "subject=CN = cisco-get");
}

#[test]
fn a_self_signed_signer_with_a_critical_authority_key_identifier_is_accepted() {
    // Windows' SCEP client signs with a self-signed certificate whose
    // AuthorityKeyIdentifier is marked critical (RFC 5280 says it MUST NOT be).
    let m = start(false);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let otp = m
        .run(&["challenge", "add", "--subject", "CN=windows-device"])
        .trim()
        .to_owned();
    let (key, csr) = common::key_and_csr(d, "win", "windows-device", Some(&otp));
    let signer = self_signed(
        d,
        "win",
        &key,
        "windows-device",
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = critical,keyid:always",
    );
    let text = common::run("openssl", &["x509", "-in", common::p(&signer), "-noout", "-text"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Authority Key Identifier: critical"),
        "the signer must carry a critical AKI"
    );
    common::pkcsreq(&m, d, "win", &csr, (&signer, &key));
    assert_eq!(common::status(d, "win"), "pkiStatus=0", "{}", m.log());
    let cert = common::issued(d, "win", (&signer, &key));
    assert_eq!(common::subject(&cert), "subject=CN = windows-device");
}

/// The subjects of the certificates in a PEM file, in order.
fn subjects(pem: &Path) -> Vec<String> {
    std::fs::read_to_string(pem)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("subject="))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_ca_chain_in_a_certrep_is_a_per_server_setting_with_the_issued_certificate_first() {
    // Cisco VPN clients need the chain in the CertRep, Juniper refuses it,
    // micromdm's client takes the first certificate as its own.
    for chain in [false, true] {
        let m = Mef::start(Path::new(env!("CARGO_BIN_EXE_mef")), &[], |_, cfg| {
            assert!(cfg.contains("certrep_chain = false"), "{cfg}");
            *cfg = cfg.replace("certrep_chain = false", &format!("certrep_chain = {chain}"));
            // micromdm scepclient 2.1.0 encrypts with single DES whatever GetCACaps says.
            *cfg = cfg.replacen("\"des3\",", "\"des3\",\n    \"des\",", 1);
        });
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // asn1crypto + OpenSSL: the order of the certificates as sent.
        let otp = m
            .run(&["challenge", "add", "--subject", "CN=chain-device"])
            .trim()
            .to_owned();
        let (key, csr) = common::key_and_csr(d, "chain", "chain-device", Some(&otp));
        let signer = self_signed(d, "chain", &key, "chain-device", "subjectKeyIdentifier = hash");
        common::pkcsreq(&m, d, "chain", &csr, (&signer, &key));
        assert_eq!(common::status(d, "chain"), "pkiStatus=0", "{}", m.log());
        common::issued(d, "chain", (&signer, &key));
        let listed = subjects(&d.join("chain.listed.pem"));
        let expected: Vec<String> = if chain {
            vec![
                "CN = chain-device".into(),
                common::subject(&m.st("ca.pem")).trim_start_matches("subject=").into(),
            ]
        } else {
            vec!["CN = chain-device".into()]
        };
        assert_eq!(listed, expected, "certrep_chain = {chain}");
        // micromdm scepclient keeps the first certificate: still its own.
        let otp = m
            .run(&["challenge", "add", "--label", "micromdm-chain"])
            .trim()
            .to_owned();
        let url = format!("http://127.0.0.1:{}/scep", m.scep);
        let o = Command::new("scepclient")
            .current_dir(d)
            .args([
                "-server-url",
                &url,
                "-challenge",
                &otp,
                "-private-key",
                "mk.pem",
                "-certificate",
                "mc.pem",
            ])
            .args(["-cn", "micromdm-chain"])
            .output()
            .expect("scepclient (Debian's scep package)");
        assert!(
            o.status.success(),
            "scepclient: {}{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            m.log()
        );
        assert_eq!(
            common::subject(&d.join("mc.pem")),
            "subject=C = US, O = scep-client, OU = MDM, CN = micromdm-chain",
            "certrep_chain = {chain}"
        );
    }
}
