//! Our Requester against our Responder: PBMAC1 (which OpenSSL 3.0 cannot
//! check, so the Python vectors are its independent proof), polling,
//! certConf, and the refusals a server and a client must make.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::DecodePem;
use enrolkit_cmp::keys::{DigestAlgorithm, SoftwareKey};
use enrolkit_cmp::request::ProofOfPossession;
use enrolkit_cmp::{
    header::null_dn, Answer, BodyType, CertificateOutcome, CertificateRequest, Claimed, CmpError, FailureInfo,
    GenRequest, GenResponse, MacAlgorithm, PkiBody, PkiMessage, Protect, Request, Requester, Responder, ResponseTrust,
    SharedSecret, Verified,
};
use rand_core::OsRng;
use std::path::PathBuf;
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

fn requester<'a>(secret: &'a SharedSecret) -> Requester<'a> {
    Requester {
        protect: Protect::Mac {
            secret,
            algorithm: MacAlgorithm::pbmac1(&mut OsRng),
            sender_kid: b"label-1".to_vec(),
        },
        sender: null_dn(),
        recipient: null_dn(),
        message_time: Some(std::time::SystemTime::now()),
        limits: Default::default(),
        policy: Default::default(),
    }
}

fn responder<'a>(secret: &'a SharedSecret) -> Responder<'a> {
    Responder {
        protect: Protect::Mac {
            secret,
            algorithm: MacAlgorithm::pbmac1(&mut OsRng),
            sender_kid: b"server".to_vec(),
        },
        sender: null_dn(),
        message_time: None,
        limits: Default::default(),
        policy: Default::default(),
    }
}

fn device_request(k: &SoftwareKey) -> CertificateRequest<'_> {
    CertificateRequest {
        key: k,
        subject: Some(cert("device").tbs_certificate.subject.clone()),
        extensions: None,
        old_certificate: None,
        digest: DigestAlgorithm::Sha256,
    }
}

#[test]
fn pbmac1_ir_waiting_poll_ip_cert_conf_pki_conf() {
    let secret = SharedSecret::new(b"one-time challenge");
    let (c, s) = (requester(&secret), responder(&secret));
    let k = key("device");
    let (ir, sent) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();

    // Server: PBMAC1 with senderKID, POP verified.
    let rec = s.parse(&ir).unwrap();
    assert!(
        matches!(rec.claimed(), Claimed::Mac { algorithm: MacAlgorithm::Pbmac1 { .. }, sender_kid: Some(k) } if k == b"label-1")
    );
    let to = rec.reply_to();
    let v = rec.verify_mac(&secret).unwrap();
    assert!(matches!(v.protection, Verified::Mac { .. }));
    assert!(matches!(v.request, Request::Certificate { cert_req_id: 0, .. }));
    // sender is the template subject for a MAC-protected ir (RFC 9483 §3.1).
    assert_eq!(
        v.message.header.sender_name(),
        Some(&cert("device").tbs_certificate.subject)
    );

    // waiting → pollReq → pollRep → pollReq → ip.
    let (ans, ex) = s
        .certificate_response(&to, 0, CertificateOutcome::Waiting(Some("approval".into())), &mut OsRng)
        .unwrap();
    let opened = c.open(&ans, &sent, &ResponseTrust::Mac(&secret)).unwrap();
    assert!(matches!(opened.answer, Answer::Waiting { cert_req_id: 0, .. }));
    let (poll, sent) = c.poll_req(&opened, &mut OsRng).unwrap();
    let rec = s.parse(&poll).unwrap();
    ex.check_answer(&rec.message().header).unwrap();
    let mut to = rec.reply_to();
    to.origin = Some(BodyType::Ir);
    assert!(matches!(rec.verify_mac(&secret).unwrap().request, Request::Poll(0)));
    let (ans, ex) = s.poll_response(&to, 0, 7, Some("still waiting"), &mut OsRng).unwrap();
    let opened = c.open(&ans, &sent, &ResponseTrust::Mac(&secret)).unwrap();
    assert!(matches!(opened.answer, Answer::PollAgain { check_after, .. } if check_after.as_secs() == 7));
    let (poll, sent) = c.poll_req(&opened, &mut OsRng).unwrap();
    let rec = s.parse(&poll).unwrap();
    ex.check_answer(&rec.message().header).unwrap();
    let mut to = rec.reply_to();
    to.origin = Some(BodyType::Ir);
    let issued = CertificateOutcome::Issued {
        certificate: Box::new(cert("device")),
        ca_pubs: vec![cert("operator-root")],
        chain: &[],
        implicit_confirm: false,
    };
    let (ans, ex) = s.certificate_response(&to, 0, issued, &mut OsRng).unwrap();
    assert_eq!(
        PkiMessage::parse(&ans, &Default::default()).unwrap().body.body_type(),
        BodyType::Ip
    );
    let opened = c.open(&ans, &sent, &ResponseTrust::Mac(&secret)).unwrap();
    assert!(matches!(&opened.answer, Answer::Certificate { ca_pubs, .. } if ca_pubs == &[cert("operator-root")]));

    // certConf: the server checks recipNonce and certHash.
    let (conf, sent) = c.cert_conf(&opened, None, &mut OsRng).unwrap();
    let rec = s.parse(&conf).unwrap();
    ex.check_answer(&rec.message().header).unwrap();
    let to = rec.reply_to();
    match rec.verify_mac(&secret).unwrap().request {
        Request::CertConf(st) => assert!(st[0].accepted() && st[0].matches(&cert("device")).unwrap()),
        other => panic!("{other:?}"),
    }
    let (ans, _) = s.pki_conf(&to, &mut OsRng).unwrap();
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)).unwrap().answer,
        Answer::Confirmed
    ));
    // A replayed answer to an older message of the transaction is refused (recipNonce).
    assert!(matches!(
        c.open(&ans, &opened.sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::BadRecipientNonce) | Err(CmpError::UnexpectedBody { .. })
    ));
}

#[test]
fn the_server_refuses_what_it_must() {
    let secret = SharedSecret::new(b"one-time challenge");
    let (c, s) = (requester(&secret), responder(&secret));
    let k = key("device");

    // A POP by another key.
    let (ir, _) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();
    let mut msg = PkiMessage::parse(&ir, &Default::default()).unwrap();
    if let PkiBody::Ir(reqs) = &mut msg.body {
        let other = SoftwareKey::generate(enrolkit_cmp::keys::KeySpec::EcP256).unwrap();
        reqs[0].popo = Some(enrolkit_cmp::pop::sign(&reqs[0].cert_req, &other, DigestAlgorithm::Sha256).unwrap());
    }
    let forged = PkiMessage::build(msg.header.clone(), msg.body.clone(), &c.protect, &[]).unwrap();
    let e = s.parse(&forged).unwrap().verify_mac(&secret).unwrap_err();
    assert_eq!(e.failure_info(), FailureInfo::BadPop, "{e}");

    // No POP at all.
    if let PkiBody::Ir(reqs) = &mut msg.body {
        reqs[0].popo = None;
    }
    let forged = PkiMessage::build(msg.header.clone(), msg.body.clone(), &c.protect, &[]).unwrap();
    assert!(matches!(
        s.parse(&forged).unwrap().verify_mac(&secret),
        Err(CmpError::BadPop(_))
    ));

    // raVerified is reported for the server's policy to judge, not accepted silently.
    if let PkiBody::Ir(reqs) = &mut msg.body {
        reqs[0].popo = Some(ProofOfPossession::RaVerified(der::asn1::Null));
    }
    let ra = PkiMessage::build(msg.header.clone(), msg.body.clone(), &c.protect, &[]).unwrap();
    assert!(matches!(
        s.parse(&ra).unwrap().verify_mac(&secret).unwrap().request,
        Request::Certificate {
            pop: enrolkit_cmp::pop::PopKind::RaVerified,
            ..
        }
    ));

    // A wrong secret, and an absurd PasswordBasedMac iteration count (refused before hashing).
    let (ir, _) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();
    assert!(matches!(
        s.parse(&ir).unwrap().verify_mac(&SharedSecret::new(b"x")),
        Err(CmpError::BadProtection)
    ));
    let greedy = MacAlgorithm::PasswordBasedMac {
        salt: vec![7; 16],
        owf: enrolkit_cmp::Owf::Sha256,
        iterations: 50_000_000,
        mac: enrolkit_cmp::HmacAlgorithm::Sha256,
    };
    let mut m = PkiMessage::parse(&ir, &Default::default()).unwrap();
    m.header.protection_alg = Some(greedy.algorithm_identifier().unwrap());
    assert!(matches!(
        m.verify_mac(&secret, &Default::default()),
        Err(CmpError::OutOfRange { actual: 50_000_000, .. })
    ));

    // An unprotected request.
    let mut h = msg.header.clone();
    h.protection_alg = None;
    let body = msg.body.to_der().unwrap();
    let mut inner = h.to_der_vec();
    inner.extend_from_slice(&body);
    let mut unprotected = vec![0x30];
    enrolkit_cmp::pkix::ber::push_len(&mut unprotected, inner.len());
    unprotected.extend_from_slice(&inner);
    let rec = s.parse(&unprotected).unwrap();
    assert_eq!(rec.claimed(), &Claimed::None);
    assert!(matches!(rec.verify_mac(&secret), Err(CmpError::Unprotected)));

    // The error the server sends carries the failInfo; the client reads it.
    let (ir, sent) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();
    let rec = s.parse(&ir).unwrap();
    let (err, _) = s
        .error(&rec.reply_to(), FailureInfo::NotAuthorized, "label spent", &mut OsRng)
        .unwrap();
    match c.open(&err, &sent, &ResponseTrust::Mac(&secret)).unwrap().answer {
        Answer::Error(e) => {
            assert!(e
                .pki_status_info
                .fail_info
                .unwrap()
                .contains(FailureInfo::NotAuthorized));
            assert_eq!(e.pki_status_info.text(), "label spent");
        }
        other => panic!("{other:?}"),
    }
}

trait ToDerVec {
    fn to_der_vec(&self) -> Vec<u8>;
}
impl ToDerVec for enrolkit_cmp::PkiHeader {
    fn to_der_vec(&self) -> Vec<u8> {
        der::Encode::to_der(self).unwrap()
    }
}

#[test]
fn the_client_refuses_what_it_must() {
    let secret = SharedSecret::new(b"one-time challenge");
    let (c, s) = (requester(&secret), responder(&secret));
    let k = key("device");
    let (ir, sent) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();
    let to = s.parse(&ir).unwrap().reply_to();

    // A certificate for another key.
    let other = CertificateOutcome::Issued {
        certificate: Box::new(cert("device2")),
        ca_pubs: vec![],
        chain: &[],
        implicit_confirm: false,
    };
    let (ans, _) = s.certificate_response(&to, 0, other, &mut OsRng).unwrap();
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::BadCertTemplate(_))
    ));

    // Another transaction's answer, and an answer not meant for our nonce.
    let good = CertificateOutcome::Issued {
        certificate: Box::new(cert("device")),
        ca_pubs: vec![],
        chain: &[],
        implicit_confirm: false,
    };
    let mut to2 = to.clone();
    to2.transaction_id[0] ^= 1;
    let (ans, _) = s.certificate_response(&to2, 0, good, &mut OsRng).unwrap();
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::TransactionIdMismatch)
    ));
    let mut to3 = to.clone();
    to3.recip_nonce = Some(vec![0; 16]);
    let (ans, _) = s.pki_conf(&to3, &mut OsRng).unwrap();
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::BadRecipientNonce)
    ));

    // A body that does not answer an ir (a genp).
    let (ans, _) = s
        .general_response(&to, &[GenResponse::CaCerts(vec![])], &mut OsRng)
        .unwrap();
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::UnexpectedBody { .. })
    ));

    // A MAC answer where a signature was expected.
    let good = CertificateOutcome::Issued {
        certificate: Box::new(cert("device")),
        ca_pubs: vec![],
        chain: &[],
        implicit_confirm: false,
    };
    let (ans, _) = s.certificate_response(&to, 0, good, &mut OsRng).unwrap();
    let pinned = [cert("server")];
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::PinnedSigner(&pinned)),
        Err(CmpError::WrongIntegrity(_))
    ));
    // …and with the secret it opens.
    assert!(matches!(
        c.open(&ans, &sent, &ResponseTrust::Mac(&secret)).unwrap().answer,
        Answer::Certificate { .. }
    ));
}

#[test]
fn signed_kur_and_genm_with_typed_info_values() {
    let device_key = key("device");
    let device = cert("device");
    let server_key = key("server");
    let server = cert("server");
    let c = Requester {
        protect: Protect::Signature {
            signer: &device_key,
            certificate: &device,
            chain: &[],
            digest: DigestAlgorithm::Sha256,
        },
        sender: null_dn(),
        recipient: null_dn(),
        message_time: None,
        limits: Default::default(),
        policy: Default::default(),
    };
    let s = Responder {
        protect: Protect::Signature {
            signer: &server_key,
            certificate: &server,
            chain: &[],
            digest: DigestAlgorithm::Sha256,
        },
        sender: null_dn(),
        message_time: None,
        limits: Default::default(),
        policy: Default::default(),
    };
    let kur = CertificateRequest {
        key: &device_key,
        subject: None,
        extensions: None,
        old_certificate: Some(&device),
        digest: DigestAlgorithm::Sha256,
    };
    let (msg, sent) = c.certificate_request(BodyType::Kur, &kur, true, &mut OsRng).unwrap();
    let rec = s.parse(&msg).unwrap();
    let to = rec.reply_to();
    let v = rec.verify_signature().unwrap();
    assert!(matches!(&v.protection, Verified::Signature { signer, .. } if **signer == device));
    assert!(v.implicit_confirm);
    match &v.request {
        Request::Certificate {
            old_cert_id: Some(id),
            msg,
            ..
        } => {
            assert!(enrolkit_cmp::request::cert_id_matches(id, &device));
            assert_eq!(
                msg.cert_req.cert_template.subject.as_ref(),
                Some(&device.tbs_certificate.subject)
            );
        }
        other => panic!("{other:?}"),
    }
    let issued = CertificateOutcome::Issued {
        certificate: Box::new(device.clone()),
        ca_pubs: vec![cert("operator-root")],
        chain: &[],
        implicit_confirm: true,
    };
    let (ans, _) = s.certificate_response(&to, 0, issued, &mut OsRng).unwrap();
    let pinned = [server.clone()];
    let opened = c.open(&ans, &sent, &ResponseTrust::PinnedSigner(&pinned)).unwrap();
    assert_eq!(opened.message.body.body_type(), BodyType::Kup);
    // caPubs only go in an ip (RFC 4210 §5.3.4); implicit confirmation granted.
    assert!(
        matches!(&opened.answer, Answer::Certificate { ca_pubs, implicit_confirm: true, .. } if ca_pubs.is_empty())
    );

    // genm for CA certificates, root CA update and the request template.
    let (msg, sent) = c
        .genm(
            &[
                GenRequest::CaCerts,
                GenRequest::RootCaUpdate(Some(Box::new(cert("operator-root")))),
                GenRequest::CertReqTemplate,
            ],
            &mut OsRng,
        )
        .unwrap();
    let rec = s.parse(&msg).unwrap();
    let to = rec.reply_to();
    let asked = match rec.verify_signature().unwrap().request {
        Request::General(g) => g,
        other => panic!("{other:?}"),
    };
    assert_eq!(asked[0], GenRequest::CaCerts);
    assert_eq!(
        asked[1],
        GenRequest::RootCaUpdate(Some(Box::new(cert("operator-root"))))
    );
    assert_eq!(asked[2], GenRequest::CertReqTemplate);
    let template = enrolkit_cmp::general::CertReqTemplateContent {
        cert_template: enrolkit_cmp::request::CertTemplate {
            subject: Some(device.tbs_certificate.subject.clone()),
            ..Default::default()
        },
        key_spec: None,
    };
    let answers = [
        GenResponse::CaCerts(vec![cert("operator-root")]),
        GenResponse::RootCaKeyUpdate(None),
        GenResponse::CertReqTemplate(Some(Box::new(template.clone()))),
    ];
    let (ans, _) = s.general_response(&to, &answers, &mut OsRng).unwrap();
    match c
        .open(&ans, &sent, &ResponseTrust::PinnedSigner(&pinned))
        .unwrap()
        .answer
    {
        Answer::General(g) => assert_eq!(g, answers),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_mac_client_reads_the_signed_error_of_a_server_that_could_not_check_its_mac() {
    let secret = SharedSecret::new(b"one-time challenge");
    let c = requester(&secret);
    let server_key = key("server");
    let server = cert("server");
    let s = Responder {
        protect: Protect::Signature {
            signer: &server_key,
            certificate: &server,
            chain: &[],
            digest: DigestAlgorithm::Sha256,
        },
        sender: null_dn(),
        message_time: None,
        limits: Default::default(),
        policy: Default::default(),
    };
    let k = key("device");
    let (ir, sent) = c
        .certificate_request(BodyType::Ir, &device_request(&k), false, &mut OsRng)
        .unwrap();
    let rec = s.parse(&ir).unwrap();
    let to = rec.reply_to();
    let e = rec.verify_mac(&SharedSecret::new(b"spent or unknown")).unwrap_err();
    let (err, _) = s.error_for(&to, &e, &mut OsRng).unwrap();
    let pinned = [server.clone()];
    match c
        .open(&err, &sent, &ResponseTrust::MacOrPinnedSigner(&secret, &pinned))
        .unwrap()
        .answer
    {
        Answer::Error(m) => assert!(m
            .pki_status_info
            .fail_info
            .unwrap()
            .contains(FailureInfo::BadMessageCheck)),
        other => panic!("{other:?}"),
    }
    // Signed by a certificate that is not pinned: refused.
    let vendor = [cert("vendor")];
    assert!(matches!(
        c.open(&err, &sent, &ResponseTrust::MacOrPinnedSigner(&secret, &vendor)),
        Err(CmpError::ProtectionCertificate(_))
    ));
    // Mac-only trust does not take a signature.
    assert!(matches!(
        c.open(&err, &sent, &ResponseTrust::Mac(&secret)),
        Err(CmpError::WrongIntegrity(_))
    ));
}
