//! Interoperability with OpenSSL 3.0's CMP implementation, both ways, over
//! HTTP on 127.0.0.1 (RFC 6712 transfer: POST, application/pkixcmp):
//!
//! - our [`Requester`] against `openssl cmp`'s mock server (`-port`):
//!   MAC-protected ir + certConf, p10cr + certConf, vendor-signed ir, kur,
//!   rr, genm;
//! - `openssl cmp` (the client) against our [`Responder`] in a test
//!   thread: MAC ir with certConf, signed ir with implicitConfirm, genm,
//!   rr, and a wrong MAC secret refused.
//!
//! The keys and certificates are those of testvectors/cmp/pki. Ports are
//! chosen at run time; every process started is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::DecodePem;
use enrolkit_cmp::keys::{DigestAlgorithm, SoftwareKey};
use enrolkit_cmp::{
    header::null_dn, Answer, BodyType, CertificateOutcome, CertificateRequest, Claimed, Exchange, FailureInfo,
    GenRequest, GenResponse, MacAlgorithm, PkiStatusInfo, Protect, Request, Requester, Responder, ResponseTrust,
    SharedSecret, Verified,
};
use rand_core::OsRng;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x509_cert::Certificate;

fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors/cmp/pki")
        .join(name)
}
fn cert(name: &str) -> Certificate {
    Certificate::from_pem(std::fs::read(pki(&format!("{name}.crt"))).unwrap()).unwrap()
}
fn key(name: &str) -> SoftwareKey {
    SoftwareKey::from_pem(&std::fs::read_to_string(pki(&format!("{name}.key"))).unwrap()).unwrap()
}
fn secret_text() -> String {
    std::fs::read_to_string(pki("secret.txt")).unwrap().trim().to_owned()
}

// ------------------------------------------------------------------ HTTP

/// POST `body` to http://127.0.0.1:port/ and return the response body (HTTP/1.0, one request per connection).
fn post(port: u16, body: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/pkixcmp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP head");
    let head = String::from_utf8_lossy(&resp[..split]).to_lowercase();
    assert!(head.starts_with("http/1.") && head.contains(" 200"), "{head}");
    assert!(head.contains("application/pkixcmp"), "{head}");
    resp[split + 4..].to_vec()
}

/// Read one HTTP request from `s`: its body.
fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let split = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the request head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    assert!(head.starts_with("post "), "{head}");
    assert!(head.contains("content-type: application/pkixcmp"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("Content-Length");
    let mut body = buf[split + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0);
        body.extend_from_slice(&chunk[..n]);
    }
    body
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An `openssl cmp` mock server, killed on drop.
struct Mock(Child, u16);
impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mock(args: &[&str]) -> Mock {
    let port = free_port();
    let child = Command::new("openssl")
        .args(["cmp", "-port", &port.to_string()])
        .args(args)
        .current_dir(pki(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mock server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Mock(child, port)
}

// ------------------------------------------------- our client, their server

fn client<'a>(protect: Protect<'a>) -> Requester<'a> {
    Requester {
        protect,
        sender: null_dn(),
        recipient: null_dn(),
        message_time: Some(std::time::SystemTime::now()),
        limits: Default::default(),
        policy: Default::default(),
    }
}

#[test]
fn our_mac_ir_and_cert_conf_against_the_openssl_mock_server() {
    let secret = SharedSecret::new(secret_text().as_bytes());
    let srv_secret = format!("pass:{}", secret_text());
    let m = mock(&[
        "-srv_ref",
        "server-ref",
        "-srv_secret",
        &srv_secret,
        "-rsp_cert",
        "device.crt",
    ]);
    let device = key("device");
    // OpenSSL 3.0 has no PBMAC1: the legacy PasswordBasedMac.
    let r = client(Protect::Mac {
        secret: &secret,
        algorithm: MacAlgorithm::password_based_mac(&mut OsRng),
        sender_kid: b"bts-0001-ref".to_vec(),
    });
    let req = CertificateRequest {
        key: &device,
        subject: Some(cert("device").tbs_certificate.subject.clone()),
        extensions: None,
        old_certificate: None,
        digest: DigestAlgorithm::Sha256,
    };
    let (ir, sent) = r.certificate_request(BodyType::Ir, &req, false, &mut OsRng).unwrap();
    let ip = post(m.1, &ir);
    let opened = r.open(&ip, &sent, &ResponseTrust::Mac(&secret)).unwrap();
    let Answer::Certificate {
        certificate,
        implicit_confirm,
        ..
    } = &opened.answer
    else {
        panic!("{:?}", opened.answer)
    };
    assert_eq!(**certificate, cert("device"));
    assert!(!implicit_confirm);
    assert!(
        matches!(opened.protection, Verified::Mac { ref sender_kid, .. } if sender_kid.as_deref() == Some(&b"server-ref"[..]))
    );
    // The mock checks certHash and the nonces of our certConf.
    let (conf, sent2) = r.cert_conf(&opened, None, &mut OsRng).unwrap();
    let pkiconf = post(m.1, &conf);
    let done = r.open(&pkiconf, &sent2, &ResponseTrust::Mac(&secret)).unwrap();
    assert!(matches!(done.answer, Answer::Confirmed), "{:?}", done.answer);
    // p10cr with a PKCS#10 request made by enrolkit-pkix: cp for certReqId -1, certConf, pkiConf.
    let csr = enrolkit_cmp::pkix::pkcs10::RequestParams::new(cert("device").tbs_certificate.subject.clone())
        .build(&device)
        .unwrap();
    let (p10cr, sent) = r.p10cr(&csr, false, &mut OsRng).unwrap();
    let opened = r.open(&post(m.1, &p10cr), &sent, &ResponseTrust::Mac(&secret)).unwrap();
    assert_eq!(opened.message.body.body_type(), BodyType::Cp);
    assert!(
        matches!(&opened.answer, Answer::Certificate { cert_req_id: -1, certificate, .. } if **certificate == cert("device")),
        "{:?}",
        opened.answer
    );
    let (conf, sent2) = r.cert_conf(&opened, None, &mut OsRng).unwrap();
    let done = r.open(&post(m.1, &conf), &sent2, &ResponseTrust::Mac(&secret)).unwrap();
    assert!(matches!(done.answer, Answer::Confirmed));
    // A wrong secret does not open the mock's answer.
    let (ir, sent) = r.certificate_request(BodyType::Ir, &req, true, &mut OsRng).unwrap();
    let ip = post(m.1, &ir);
    let wrong = SharedSecret::new(b"wrong");
    assert!(matches!(
        r.open(&ip, &sent, &ResponseTrust::Mac(&wrong)),
        Err(enrolkit_cmp::CmpError::BadProtection)
    ));
}

#[test]
fn our_signed_ir_kur_rr_and_genm_against_the_openssl_mock_server() {
    let vendor_key = key("vendor");
    let vendor = cert("vendor");
    let device_key = key("device");
    let device = cert("device");
    let server = cert("server");
    let pinned = [server.clone()];

    // 3GPP style: ir signed with the vendor certificate (RSA), answer signed by the server.
    let m = mock(&[
        "-srv_cert",
        "server.crt",
        "-srv_key",
        "server.key",
        "-srv_trusted",
        "vendor-root.crt",
        "-rsp_cert",
        "device.crt",
        "-rsp_capubs",
        "operator-root.crt",
        "-grant_implicitconf",
    ]);
    let r = client(Protect::Signature {
        signer: &vendor_key,
        certificate: &vendor,
        chain: &[],
        digest: DigestAlgorithm::Sha256,
    });
    let req = CertificateRequest {
        key: &device_key,
        subject: Some(device.tbs_certificate.subject.clone()),
        extensions: None,
        old_certificate: None,
        digest: DigestAlgorithm::Sha256,
    };
    let (ir, sent) = r.certificate_request(BodyType::Ir, &req, true, &mut OsRng).unwrap();
    let opened = r
        .open(&post(m.1, &ir), &sent, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap();
    match &opened.answer {
        Answer::Certificate {
            certificate,
            ca_pubs,
            implicit_confirm,
            ..
        } => {
            assert_eq!(**certificate, device);
            assert_eq!(ca_pubs, &[cert("operator-root")]);
            assert!(implicit_confirm);
        }
        other => panic!("{other:?}"),
    }
    // A server certificate we did not pin is refused.
    let (ir, sent) = r.certificate_request(BodyType::Ir, &req, true, &mut OsRng).unwrap();
    let vendor_only = [vendor.clone()];
    assert!(r
        .open(&post(m.1, &ir), &sent, &ResponseTrust::PinnedSigner(&vendor_only))
        .is_err());
    drop(m);

    // kur, rr and genm signed with the operator certificate.
    let m = mock(&[
        "-srv_cert",
        "server.crt",
        "-srv_key",
        "server.key",
        "-srv_trusted",
        "operator-root.crt",
        "-rsp_cert",
        "device.crt",
    ]);
    let r = client(Protect::Signature {
        signer: &device_key,
        certificate: &device,
        chain: &[],
        digest: DigestAlgorithm::Sha256,
    });
    let kur = CertificateRequest {
        key: &device_key,
        subject: None,
        extensions: None,
        old_certificate: Some(&device),
        digest: DigestAlgorithm::Sha256,
    };
    let (msg, sent) = r.certificate_request(BodyType::Kur, &kur, false, &mut OsRng).unwrap();
    let opened = r
        .open(&post(m.1, &msg), &sent, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap();
    assert_eq!(opened.message.body.body_type(), BodyType::Kup);
    assert!(
        matches!(opened.answer, Answer::Certificate { .. }),
        "{:?}",
        opened.answer
    );
    let (conf, sent2) = r.cert_conf(&opened, None, &mut OsRng).unwrap();
    let done = r
        .open(&post(m.1, &conf), &sent2, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap();
    assert!(matches!(done.answer, Answer::Confirmed));

    let (msg, sent) = r
        .rr(
            &device,
            Some(enrolkit_cmp::revocation::CrlReason::Superseded),
            &mut OsRng,
        )
        .unwrap();
    let opened = r
        .open(&post(m.1, &msg), &sent, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap();
    match opened.answer {
        Answer::Revocation(s) => assert!(s.is_granted(), "{s:?}"),
        other => panic!("{other:?}"),
    }

    let (msg, sent) = r.genm(&[GenRequest::CaCerts], &mut OsRng).unwrap();
    let opened = r
        .open(&post(m.1, &msg), &sent, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap();
    match opened.answer {
        // OpenSSL 3.0's mock echoes the ITAVs it was sent.
        Answer::General(g) => assert!(matches!(&g[..], [GenResponse::CaCerts(_)]), "{g:?}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------- their client, our server

/// What the test server saw.
#[derive(Default, Debug)]
struct Log {
    bodies: Vec<BodyType>,
    errors: Vec<FailureInfo>,
    confirmed: usize,
}

/// Serve `n` requests on a fresh port with our Responder; returns the port
/// and a handle giving the log.
fn serve(n: usize) -> (u16, std::thread::JoinHandle<Log>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let secret = SharedSecret::new(secret_text().as_bytes());
        let server_key = key("server");
        let server_cert = cert("server");
        let signing = Responder {
            protect: Protect::Signature {
                signer: &server_key,
                certificate: &server_cert,
                chain: &[],
                digest: DigestAlgorithm::Sha256,
            },
            sender: null_dn(),
            message_time: Some(std::time::SystemTime::now()),
            limits: Default::default(),
            policy: Default::default(),
        };
        let mut log = Log::default();
        let mut open: HashMap<Vec<u8>, (Exchange, BodyType)> = HashMap::new();
        for _ in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let body = read_request(&mut s);
            let mac = Responder {
                protect: Protect::Mac {
                    secret: &secret,
                    algorithm: MacAlgorithm::password_based_mac(&mut OsRng),
                    sender_kid: b"server-ref".to_vec(),
                },
                sender: null_dn(),
                message_time: None,
                limits: Default::default(),
                policy: Default::default(),
            };
            let answer = handle_one(&signing, &mac, &secret, &body, &mut log, &mut open);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/pkixcmp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&answer).unwrap();
        }
        log
    });
    (port, handle)
}

fn handle_one(
    signing: &Responder<'_>,
    mac: &Responder<'_>,
    secret: &SharedSecret,
    body: &[u8],
    log: &mut Log,
    open: &mut HashMap<Vec<u8>, (Exchange, BodyType)>,
) -> Vec<u8> {
    let received = signing.parse(body).unwrap();
    let mut to = received.reply_to();
    log.bodies.push(to.request_type);
    let by_mac = matches!(received.claimed(), Claimed::Mac { .. });
    let responder = if by_mac { mac } else { signing };
    let verified = if by_mac {
        assert_eq!(received.sender_kid(), Some(&b"bts-0001-ref"[..]));
        received.verify_mac(secret)
    } else {
        received.verify_signature()
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            log.errors.push(e.failure_info());
            return signing.error_for(&to, &e, &mut OsRng).unwrap().0;
        }
    };
    if let Verified::Signature { signer, .. } = &verified.protection {
        assert!([cert("vendor"), cert("device"), cert("device2")].contains(signer));
    }
    let (der, exchange) = match &verified.request {
        Request::Certificate { cert_req_id, msg, .. } => {
            let issued = cert("device");
            assert_eq!(
                msg.cert_req.cert_template.public_key.as_ref(),
                Some(&issued.tbs_certificate.subject_public_key_info)
            );
            let outcome = CertificateOutcome::Issued {
                certificate: Box::new(issued),
                ca_pubs: vec![cert("operator-root")],
                chain: &[],
                implicit_confirm: verified.implicit_confirm,
            };
            responder
                .certificate_response(&to, *cert_req_id, outcome, &mut OsRng)
                .unwrap()
        }
        Request::CertConf(statuses) => {
            let (ex, _) = open
                .get(&to.transaction_id)
                .expect("certConf for a transaction we answered");
            ex.check_answer(&verified.message.header).unwrap();
            assert!(statuses[0].accepted() && statuses[0].matches(&cert("device")).unwrap());
            log.confirmed += 1;
            to.origin = Some(BodyType::Ir);
            responder.pki_conf(&to, &mut OsRng).unwrap()
        }
        Request::General(g) => {
            let answers: Vec<GenResponse> = g
                .iter()
                .map(|r| match r {
                    GenRequest::CaCerts => GenResponse::CaCerts(vec![cert("operator-root")]),
                    GenRequest::Other(i) => GenResponse::Other(i.clone()),
                    other => panic!("{other:?}"),
                })
                .collect();
            responder.general_response(&to, &answers, &mut OsRng).unwrap()
        }
        Request::Revocation(d) => {
            assert_eq!(d.target().unwrap().1, &cert("device2").tbs_certificate.serial_number);
            responder
                .revocation_response(&to, PkiStatusInfo::accepted(), &mut OsRng)
                .unwrap()
        }
        other => panic!("{other:?}"),
    };
    open.insert(exchange.transaction_id.clone(), (exchange, to.request_type));
    der
}

fn openssl_client(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "cmp",
            "-server",
            &format!("127.0.0.1:{port}"),
            "-keep_alive",
            "0",
            "-msg_timeout",
            "20",
        ])
        .args(args)
        .current_dir(pki(""))
        .output()
        .expect("openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn the_openssl_client_against_our_responder() {
    let tmp = std::env::temp_dir().join(format!("enrolkit-cmp-interop-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = |n: &str| tmp.join(n).to_string_lossy().into_owned();
    let secret = format!("pass:{}", secret_text());

    // MAC-protected ir, explicit confirmation: ir + certConf.
    let (port, h) = serve(2);
    let certout = out("mac.pem");
    let (ok, log) = openssl_client(
        port,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-0001-ref",
            "-secret",
            &secret,
            "-newkey",
            "device.key",
            "-subject",
            "/O=enrolkit/CN=bts-0001",
            "-certout",
            &certout,
        ],
    );
    assert!(ok, "{log}");
    let got = Certificate::from_pem(std::fs::read(&certout).unwrap()).unwrap();
    assert_eq!(got, cert("device"));
    let l = h.join().unwrap();
    assert_eq!(l.bodies, [BodyType::Ir, BodyType::CertConf]);
    assert_eq!(l.confirmed, 1);

    // Signed ir (vendor certificate) with implicitConfirm granted: one exchange; caPubs saved.
    let (port, h) = serve(1);
    let (certout, capubs) = (out("sig.pem"), out("capubs.pem"));
    let (ok, log) = openssl_client(
        port,
        &[
            "-cmd",
            "ir",
            "-cert",
            "vendor.crt",
            "-key",
            "vendor.key",
            "-srvcert",
            "server.crt",
            "-implicit_confirm",
            "-newkey",
            "device.key",
            "-subject",
            "/O=enrolkit/CN=bts-0001",
            "-certout",
            &certout,
            "-cacertsout",
            &capubs,
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(
        Certificate::from_pem(std::fs::read(&certout).unwrap()).unwrap(),
        cert("device")
    );
    assert_eq!(
        Certificate::from_pem(std::fs::read(&capubs).unwrap()).unwrap(),
        cert("operator-root")
    );
    assert_eq!(h.join().unwrap().bodies, [BodyType::Ir]);

    // genm (MAC): OpenSSL reads our genp; its -rspout is checked, not only the exit code.
    let (port, h) = serve(1);
    let rspout = out("genp.der");
    let (ok, log) = openssl_client(
        port,
        &[
            "-cmd",
            "genm",
            "-ref",
            "bts-0001-ref",
            "-secret",
            &secret,
            "-infotype",
            "signKeyPairTypes",
            "-rspout",
            &rspout,
        ],
    );
    assert!(ok, "{log}");
    assert!(log.contains("signKeyPairTypes"), "{log}");
    let genp = enrolkit_cmp::PkiMessage::parse(&std::fs::read(&rspout).unwrap(), &Default::default()).unwrap();
    assert_eq!(genp.body.body_type(), BodyType::GenP);
    h.join().unwrap();

    // rr signed with the P-384 certificate (ecdsa-with-SHA384).
    let (port, h) = serve(1);
    let (ok, log) = openssl_client(
        port,
        &[
            "-cmd",
            "rr",
            "-cert",
            "device2.crt",
            "-key",
            "device2.key",
            "-digest",
            "sha384",
            "-srvcert",
            "server.crt",
            "-oldcert",
            "device2.crt",
        ],
    );
    assert!(ok, "{log}");
    assert!(log.contains("revocation accepted"), "{log}");
    h.join().unwrap();

    // A wrong MAC secret: our error (signed, badMessageCheck) reaches OpenSSL, which fails.
    let (port, h) = serve(1);
    let (ok, log) = openssl_client(
        port,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-0001-ref",
            "-secret",
            "pass:wrong",
            "-srvcert",
            "server.crt",
            "-newkey",
            "device.key",
            "-subject",
            "/O=enrolkit/CN=bts-0001",
            "-certout",
            &out("never.pem"),
        ],
    );
    assert!(!ok, "{log}");
    assert!(log.contains("badMessageCheck"), "{log}");
    assert_eq!(h.join().unwrap().errors, [FailureInfo::BadMessageCheck]);
    let _ = std::fs::remove_dir_all(&tmp);
}
