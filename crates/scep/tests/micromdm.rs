//! Live interop with micromdm's `scepserver` (Debian package `scep`): the
//! requests we build are accepted and answered, and we open its replies.
//! `.ci/run` installs the peer; curl carries the HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_scep::keys::{DigestAlgorithm, Signer};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::x509_cert::der::Encode;
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use enrolkit_testkit::Peer;
use rand_core::OsRng;
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

struct Server {
    _peer: Peer,
    url: String,
    _dir: tempfile::TempDir,
}

fn scepserver_version() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "scep"])
        .output()
        .expect("dpkg-query");
    format!("micromdm scep {}", String::from_utf8_lossy(&out.stdout))
}

fn start(challenge: &str) -> Server {
    println!("peer: {}", scepserver_version());
    let dir = tempfile::tempdir().unwrap();
    let depot = dir.path().join("depot");
    let st = Command::new("scepserver")
        .args(["ca", "-init", "-depot", depot.to_str().unwrap(), "-keySize", "2048"])
        .stdout(Stdio::null())
        .status()
        .expect("scepserver must be installed (.ci/run installs Debian's scep package)");
    assert!(st.success());
    let log = dir.path().join("server.log");
    let peer = Peer::spawn(
        |port| {
            let mut c = Command::new("scepserver");
            c.arg("-depot")
                .arg(&depot)
                .args(["-port", &port.to_string(), "-challenge", challenge, "-debug"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            c
        },
        Duration::from_secs(20),
    )
    .expect("scepserver did not start listening");
    let url = format!("http://127.0.0.1:{}/scep", peer.port);
    Server {
        _peer: peer,
        url,
        _dir: dir,
    }
}

/// GET or POST with curl; returns (content-type, body).
fn http(url: &str, post: Option<&Path>) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (hdr, body) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "-D"]).arg(&hdr).arg("-o").arg(&body);
    if let Some(p) = post {
        cmd.args(["-H", "Content-Type: application/x-pki-message", "--data-binary"])
            .arg(format!("@{}", p.display()));
    }
    let out = cmd.arg(url).output().expect("curl must be installed");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let headers = std::fs::read_to_string(&hdr).unwrap();
    let ct = headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    (ct, std::fs::read(&body).unwrap())
}

fn enrol(server: &Server, challenge: &str, cipher: ContentEncryption) -> CertRep {
    // micromdm refuses a second certificate for the same DN: one CN per enrolment.
    let cn = format!("enrolkit-interop-{cipher:?}");
    let (ct, caps_body) = http(&format!("{}?operation=GetCACaps", server.url), None);
    assert!(ct.starts_with("text/plain"), "{ct}");
    let caps = Capabilities::parse(&caps_body).unwrap();
    assert!(caps.supports_post() && caps.supports_aes());
    let (ct, ca_body) = http(&format!("{}?operation=GetCACert", server.url), None);
    let ca = CaCertificates::parse(Some(&ct), &ca_body).unwrap();

    let client = identity(&cn);
    let csr = RequestParams {
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str(&format!("CN={cn}")).unwrap())
    }
    .with_challenge_password(Some(challenge))
    .build(&client.key)
    .unwrap();
    let requester = Requester {
        signer: &client.key,
        decryptor: &client.key,
        certificate: &client.cert,
    };
    let txid = TransactionId::from_public_key(&client.key.public_key().to_der().unwrap());
    let (msg, sent) = build_request(
        &requester,
        ca.encryption_certificate(),
        &RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
        &txid,
        cipher,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("req.der");
    std::fs::write(&p, &msg).unwrap();
    let (ct, rep) = http(&format!("{}?operation=PKIOperation", server.url), Some(&p));
    assert_eq!(ct, "application/x-pki-message");
    let rep = open_cert_rep(&rep, &sent, &ca.signers(), &requester).unwrap();
    if let CertRep::Success { .. } = &rep {
        let issued = rep
            .certificate_for(client.key.public_key())
            .expect("a certificate for our key");
        // openssl agrees it chains to the server's CA.
        let ca_path = write(dir.path(), "ca.pem", cert_pem(&ca.ca).as_bytes());
        let leaf = write(dir.path(), "leaf.pem", cert_pem(issued).as_bytes());
        let out = openssl(&["verify", "-CAfile", &ca_path, &leaf]);
        assert!(String::from_utf8_lossy(&out).contains(": OK"));
    }
    rep
}

#[test]
fn micromdm_scepserver_accepts_our_pkcsreq_with_each_cipher() {
    let server = start("interop-secret");
    for cipher in [
        ContentEncryption::Aes128Cbc,
        ContentEncryption::Aes256Cbc,
        ContentEncryption::DesEde3Cbc,
    ] {
        match enrol(&server, "interop-secret", cipher) {
            CertRep::Success { .. } => {}
            other => panic!(
                "{cipher:?}: expected SUCCESS, got {other:?}; server log:\n{}",
                std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default()
            ),
        }
    }
}

#[test]
fn micromdm_scepserver_refusal_is_a_failure_we_read() {
    let server = start("right-secret");
    match enrol(&server, "wrong-secret", ContentEncryption::Aes128Cbc) {
        CertRep::Failure { fail_info, .. } => assert_eq!(fail_info, FailInfo::BadRequest),
        other => panic!("expected FAILURE, got {other:?}"),
    }
}
