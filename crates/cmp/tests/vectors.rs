//! Every message in testvectors/cmp (captured from OpenSSL 3.0's `openssl
//! cmp` client and mock server, and PBMAC1 messages computed with Python)
//! parses, its protection verifies with the known secret or certificate
//! and fails with a wrong one, and the fields OpenSSL put there read back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::DecodePem;
use enrolkit_cmp::protection::mac::MacAlgorithm;
use enrolkit_cmp::{
    Answer, BodyType, Claimed, CmpError, FailureInfo, GenRequest, PkiBody, PkiMessage, PkiStatus, ProtectionPolicy,
    Request, Responder, SharedSecret, Verified,
};
use std::path::PathBuf;
use x509_cert::Certificate;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/cmp")
}
fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
fn cert(name: &str) -> Certificate {
    Certificate::from_pem(read(&format!("pki/{name}.crt"))).unwrap()
}
fn secret() -> SharedSecret {
    SharedSecret::new(String::from_utf8(read("pki/secret.txt")).unwrap().trim().as_bytes())
}
fn parse(name: &str) -> PkiMessage {
    PkiMessage::parse(&read(name), &Default::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}
fn policy() -> ProtectionPolicy {
    ProtectionPolicy::default()
}

const MAC: &[(&str, BodyType)] = &[
    ("mac-ir.der", BodyType::Ir),
    ("mac-ip.der", BodyType::Ip),
    ("mac-certConf.der", BodyType::CertConf),
    ("mac-pkiConf.der", BodyType::PkiConf),
    ("mac256-ir.der", BodyType::Ir),
    ("mac-ir-days.der", BodyType::Ir),
    ("mac-ip-days.der", BodyType::Ip),
    ("mac256-ip.der", BodyType::Ip),
    ("p10cr.der", BodyType::P10cr),
    ("p10cr-cp.der", BodyType::Cp),
    ("p10cr-certConf.der", BodyType::CertConf),
    ("p10cr-pkiConf.der", BodyType::PkiConf),
    ("genm.der", BodyType::GenM),
    ("genp.der", BodyType::GenP),
    ("poll-ir.der", BodyType::Ir),
    ("poll-ip-waiting.der", BodyType::Ip),
    ("poll-pollReq.der", BodyType::PollReq),
    ("poll-pollRep.der", BodyType::PollRep),
    ("poll-pollReq2.der", BodyType::PollReq),
    ("poll-ip.der", BodyType::Ip),
    ("poll-certConf.der", BodyType::CertConf),
    ("poll-pkiConf.der", BodyType::PkiConf),
    ("pbmac1-ir.der", BodyType::Ir),
    ("pbmac1-genm.der", BodyType::GenM),
];

/// (file, body, the protection certificate)
const SIGNED: &[(&str, BodyType, &str)] = &[
    ("sig-ir.der", BodyType::Ir, "vendor"),
    ("sig-ip.der", BodyType::Ip, "server"),
    ("sig-certConf.der", BodyType::CertConf, "vendor"),
    ("sig-pkiConf.der", BodyType::PkiConf, "server"),
    ("sig-ir-implicit.der", BodyType::Ir, "vendor"),
    ("sig-ip-implicit.der", BodyType::Ip, "server"),
    ("kur.der", BodyType::Kur, "device"),
    ("kup.der", BodyType::Kup, "server"),
    ("kur-certConf.der", BodyType::CertConf, "device"),
    ("kur-pkiConf.der", BodyType::PkiConf, "server"),
    ("cr.der", BodyType::Cr, "device"),
    ("cp.der", BodyType::Cp, "server"),
    ("cr-certConf.der", BodyType::CertConf, "device"),
    ("cr-pkiConf.der", BodyType::PkiConf, "server"),
    ("rr.der", BodyType::Rr, "device2"),
    ("rp.der", BodyType::Rp, "server"),
    ("error-ir.der", BodyType::Ir, "vendor"),
    ("error.der", BodyType::Error, "server"),
];

#[test]
fn every_vector_is_listed_and_parses() {
    let mut listed: Vec<&str> = MAC.iter().map(|m| m.0).chain(SIGNED.iter().map(|s| s.0)).collect();
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".der"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    for (name, t) in MAC
        .iter()
        .map(|(n, t)| (n, t))
        .chain(SIGNED.iter().map(|(n, t, _)| (n, t)))
    {
        assert_eq!(parse(name).body.body_type(), *t, "{name}");
    }
}

#[test]
fn mac_protection_verifies_with_the_secret_and_not_without() {
    let wrong = SharedSecret::new(b"not-the-secret");
    for (name, _) in MAC {
        let m = parse(name);
        let v = m
            .verify_mac(&secret(), &policy())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(v, Verified::Mac { .. }), "{name}");
        assert!(
            matches!(m.verify_mac(&wrong, &policy()), Err(CmpError::BadProtection)),
            "{name}"
        );
        assert!(
            matches!(m.verify_signature(&policy()), Err(CmpError::WrongIntegrity(_))),
            "{name}"
        );
    }
    // OpenSSL's defaults: PasswordBasedMac, owf SHA-256, 500 iterations, HMAC-SHA1; senderKID = -ref.
    match parse("mac-ir.der").claimed_protection(&policy()).unwrap() {
        Claimed::Mac {
            algorithm: MacAlgorithm::PasswordBasedMac {
                owf, iterations, mac, ..
            },
            sender_kid,
        } => {
            assert_eq!(owf, enrolkit_cmp::Owf::Sha256);
            assert_eq!(iterations, 500);
            assert_eq!(mac, enrolkit_cmp::HmacAlgorithm::Sha1);
            assert_eq!(sender_kid.as_deref(), Some(&b"bts-0001-ref"[..]));
        }
        other => panic!("{other:?}"),
    }
    match parse("mac256-ir.der").claimed_protection(&policy()).unwrap() {
        Claimed::Mac {
            algorithm: MacAlgorithm::PasswordBasedMac { mac, .. },
            ..
        } => assert_eq!(mac, enrolkit_cmp::HmacAlgorithm::Sha256),
        other => panic!("{other:?}"),
    }
    // The Python-made PBMAC1 messages (RFC 9481 §6.1.2).
    for name in ["pbmac1-ir.der", "pbmac1-genm.der"] {
        match parse(name).claimed_protection(&policy()).unwrap() {
            Claimed::Mac {
                algorithm:
                    MacAlgorithm::Pbmac1 {
                        salt,
                        iterations,
                        key_length,
                        prf,
                        mac,
                    },
                ..
            } => {
                assert_eq!(hex::encode(salt), "0102030405060708090a0b0c0d0e0f10");
                assert_eq!((iterations, key_length), (10_000, 32));
                assert_eq!(
                    (prf, mac),
                    (enrolkit_cmp::HmacAlgorithm::Sha256, enrolkit_cmp::HmacAlgorithm::Sha256)
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_the_protected_part_breaks_the_mac() {
    let bytes = read("mac-ir.der");
    let m = parse("mac-ir.der");
    let pp_len = m.protected_part().len();
    // Flip a bit inside the body's subject (well inside the ProtectedPart, outside the MAC parameters).
    let pos = bytes.windows(8).position(|w| w == b"bts-0001").unwrap();
    assert!(pos < pp_len);
    let mut tampered = bytes.clone();
    tampered[pos + 7] ^= 1;
    let t = PkiMessage::parse(&tampered, &Default::default()).unwrap();
    assert!(matches!(
        t.verify_mac(&secret(), &policy()),
        Err(CmpError::BadProtection)
    ));
}

#[test]
fn signature_protection_verifies_with_the_protection_certificate() {
    for (name, _, signer) in SIGNED {
        let m = parse(name);
        match m.verify_signature(&policy()).unwrap_or_else(|e| panic!("{name}: {e}")) {
            Verified::Signature { signer: s, .. } => assert_eq!(*s, cert(signer), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            matches!(m.verify_mac(&secret(), &policy()), Err(CmpError::WrongIntegrity(_))),
            "{name}"
        );
        // Another key: swap the protection certificate for a different one.
        let mut other = m.clone();
        let impostor = if *signer == "server" {
            cert("vendor")
        } else {
            cert("server")
        };
        if let Some(first) = other.extra_certs.first_mut() {
            *first = impostor;
        }
        assert!(other.verify_signature(&policy()).is_err(), "{name}");
    }
    // ecdsa-with-SHA384 on P-384 (the rr) and sha256WithRSAEncryption (the server's answers).
    assert_eq!(
        parse("rr.der").header.protection_alg.unwrap().oid,
        enrolkit_cmp::keys::x509_oid::ECDSA_WITH_SHA384
    );
    assert_eq!(
        parse("sig-ip.der").header.protection_alg.unwrap().oid,
        enrolkit_cmp::keys::oid::SHA256_WITH_RSA
    );
}

#[test]
fn corrupted_signature_is_bad_protection() {
    let mut bytes = read("sig-ip.der");
    let m = parse("sig-ip.der");
    let sig = m.protection.as_ref().unwrap().raw_bytes().to_vec();
    let pos = bytes.windows(sig.len()).position(|w| w == sig.as_slice()).unwrap();
    bytes[pos + 10] ^= 0x40;
    let t = PkiMessage::parse(&bytes, &Default::default()).unwrap();
    assert!(matches!(t.verify_signature(&policy()), Err(CmpError::BadProtection)));
}

fn server<'a>(protect: enrolkit_cmp::Protect<'a>) -> Responder<'a> {
    Responder {
        protect,
        sender: enrolkit_cmp::header::null_dn(),
        message_time: None,
        limits: Default::default(),
        policy: policy(),
    }
}

#[test]
fn the_responder_reads_openssl_requests() {
    let s = secret();
    let key = enrolkit_cmp::keys::SoftwareKey::from_pem(&String::from_utf8(read("pki/server.key")).unwrap()).unwrap();
    let server_cert = cert("server");
    let r = server(enrolkit_cmp::Protect::Signature {
        signer: &key,
        certificate: &server_cert,
        chain: &[],
        digest: enrolkit_cmp::keys::DigestAlgorithm::Sha256,
    });
    // MAC ir: POP verified, template as OpenSSL sent it.
    let rec = r.parse(&read("mac-ir.der")).unwrap();
    assert_eq!(rec.sender_kid(), Some(&b"bts-0001-ref"[..]));
    let v = rec.verify_mac(&s).unwrap();
    assert!(!v.implicit_confirm);
    match &v.request {
        Request::Certificate {
            kind,
            cert_req_id,
            msg,
            pop,
            ..
        } => {
            assert_eq!(*kind, enrolkit_cmp::CertRequestKind::Ir);
            assert_eq!(*cert_req_id, 0);
            assert_eq!(*pop, enrolkit_cmp::pop::PopKind::Signature);
            let t = &msg.cert_req.cert_template;
            assert_eq!(t.subject.as_ref().unwrap().to_string(), "CN=bts-0001,O=enrolkit");
            assert_eq!(
                t.public_key.as_ref(),
                Some(&cert("device").tbs_certificate.subject_public_key_info)
            );
        }
        other => panic!("{other:?}"),
    }
    // A template with validity (OptionalValidity, which crmf 0.2.0 cannot read) and subjectAltName.
    match r
        .parse(&read("mac-ir-days.der"))
        .unwrap()
        .verify_mac(&s)
        .unwrap()
        .request
    {
        Request::Certificate { msg, .. } => {
            let t = &msg.cert_req.cert_template;
            let v = t.validity.as_ref().expect("validity");
            let (nb, na) = (
                v.not_before.unwrap().to_unix_duration(),
                v.not_after.unwrap().to_unix_duration(),
            );
            assert_eq!(na - nb, std::time::Duration::from_secs(30 * 86_400));
            let exts = t.extensions.as_ref().expect("extensions");
            assert!(exts
                .iter()
                .any(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME));
            // The shortfall this crate works around: crmf 0.2.0's CertReqMsg does not decode it.
            let der = der::Encode::to_der(msg.as_ref()).unwrap();
            assert!(<crmf::request::CertReqMsg as der::Decode>::from_der(&der).is_err());
        }
        other => panic!("{other:?}"),
    }
    // Wrong secret: refused, with the failInfo a server sends.
    let e = r
        .parse(&read("mac-ir.der"))
        .unwrap()
        .verify_mac(&SharedSecret::new(b"x"))
        .unwrap_err();
    assert_eq!(e.failure_info(), FailureInfo::BadMessageCheck);
    // implicitConfirm asked.
    let v = r
        .parse(&read("sig-ir-implicit.der"))
        .unwrap()
        .verify_signature()
        .unwrap();
    assert!(v.implicit_confirm);
    // kur names the certificate it updates.
    let v = r.parse(&read("kur.der")).unwrap().verify_signature().unwrap();
    match v.request {
        Request::Certificate {
            old_cert_id: Some(id), ..
        } => {
            assert!(enrolkit_cmp::request::cert_id_matches(&id, &cert("device")))
        }
        other => panic!("{other:?}"),
    }
    // p10cr: the CSR, its signature verified.
    let v = r.parse(&read("p10cr.der")).unwrap().verify_mac(&s).unwrap();
    match v.request {
        Request::P10cr(csr) => assert_eq!(
            csr.public_key(),
            &cert("device").tbs_certificate.subject_public_key_info
        ),
        other => panic!("{other:?}"),
    }
    // rr: the certificate and reason.
    let v = r.parse(&read("rr.der")).unwrap().verify_signature().unwrap();
    match v.request {
        Request::Revocation(d) => {
            let (issuer, serial) = d.target().unwrap();
            let c = cert("device2");
            assert_eq!(
                (issuer, serial),
                (&c.tbs_certificate.issuer, &c.tbs_certificate.serial_number)
            );
            assert_eq!(
                d.reason().unwrap(),
                Some(enrolkit_cmp::revocation::CrlReason::KeyCompromise)
            );
        }
        other => panic!("{other:?}"),
    }
    // genm: signKeyPairTypes.
    let v = r.parse(&read("genm.der")).unwrap().verify_mac(&s).unwrap();
    match v.request {
        Request::General(g) => {
            assert!(matches!(&g[..], [GenRequest::Other(i)] if i.oid == enrolkit_cmp::oid::IT_SIGN_KEY_PAIR_TYPES))
        }
        other => panic!("{other:?}"),
    }
    // certConf: certHash is the hash of the issued certificate.
    for name in [
        "mac-certConf.der",
        "sig-certConf.der",
        "kur-certConf.der",
        "p10cr-certConf.der",
    ] {
        let rec = r.parse(&read(name)).unwrap();
        let v = if name.starts_with("mac") || name.starts_with("p10cr") {
            rec.verify_mac(&s)
        } else {
            rec.verify_signature()
        }
        .unwrap();
        match v.request {
            Request::CertConf(st) => {
                assert_eq!(st.len(), 1);
                assert!(st[0].accepted());
                assert!(st[0].matches(&cert("device")).unwrap(), "{name}");
                assert!(!st[0].matches(&cert("device2")).unwrap(), "{name}");
            }
            other => panic!("{other:?}"),
        }
    }
    // pollReq.
    let v = r.parse(&read("poll-pollReq.der")).unwrap().verify_mac(&s).unwrap();
    assert!(matches!(v.request, Request::Poll(0)));
    // A server does not take answers as requests.
    assert!(matches!(
        r.parse(&read("mac-ip.der")),
        Err(CmpError::UnexpectedBody { .. })
    ));
}

#[test]
fn answers_echo_the_transaction_and_nonce() {
    for (req, rep) in [
        ("mac-ir.der", "mac-ip.der"),
        ("mac-certConf.der", "mac-pkiConf.der"),
        ("sig-ir.der", "sig-ip.der"),
        ("kur.der", "kup.der"),
        ("rr.der", "rp.der"),
        ("genm.der", "genp.der"),
        ("poll-pollReq.der", "poll-pollRep.der"),
        ("error-ir.der", "error.der"),
    ] {
        let q = parse(req);
        let p = parse(rep);
        let ex = enrolkit_cmp::Exchange {
            transaction_id: q.header.transaction_id().unwrap().to_vec(),
            our_nonce: q.header.sender_nonce().unwrap().to_vec(),
            peer_nonce: None,
        };
        ex.check_answer(&p.header).unwrap_or_else(|e| panic!("{rep}: {e}"));
        let mut other = ex.clone();
        other.our_nonce[0] ^= 1;
        assert!(matches!(
            other.check_answer(&p.header),
            Err(CmpError::BadRecipientNonce)
        ));
        let mut other = ex.clone();
        other.transaction_id[0] ^= 1;
        assert!(matches!(
            other.check_answer(&p.header),
            Err(CmpError::TransactionIdMismatch)
        ));
    }
}

#[test]
fn openssl_answers_read_back() {
    // ip with the certificate, caPubs and extraCerts.
    match parse("sig-ip.der").body {
        PkiBody::Ip(rep) => {
            assert_eq!(rep.ca_pubs.as_deref(), Some(&[cert("operator-root")][..]));
            assert_eq!(rep.response[0].certificate().unwrap(), Some(&cert("device")));
        }
        other => panic!("{other:?}"),
    }
    assert!(parse("sig-ip.der").extra_certs.contains(&cert("operator-root")));
    assert!(parse("sig-ip-implicit.der").header.implicit_confirm());
    assert!(!parse("sig-ip.der").header.implicit_confirm());
    // waiting, then pollRep with checkAfter 1.
    match parse("poll-ip-waiting.der").body {
        PkiBody::Ip(rep) => assert_eq!(rep.response[0].status.status, PkiStatus::Waiting),
        other => panic!("{other:?}"),
    }
    match parse("poll-pollRep.der").body {
        PkiBody::PollRep(p) => assert_eq!(p[0].check_after(), std::time::Duration::from_secs(1)),
        other => panic!("{other:?}"),
    }
    // The error: rejection, badRequest, a text.
    match parse("error.der").body {
        PkiBody::Error(e) => {
            assert_eq!(e.pki_status_info.status, PkiStatus::Rejection);
            assert!(e.pki_status_info.fail_info.unwrap().contains(FailureInfo::BadRequest));
            assert!(e.pki_status_info.text().contains("error processing message"));
        }
        other => panic!("{other:?}"),
    }
    // rp accepted.
    match parse("rp.der").body {
        PkiBody::Rp(rp) => assert_eq!(rp.status[0].status, PkiStatus::Accepted),
        other => panic!("{other:?}"),
    }
    let _ = Answer::Confirmed;
}

#[test]
fn truncations_and_oversize_are_typed_errors() {
    let bytes = read("sig-ip.der");
    for cut in [0, 1, 2, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(PkiMessage::parse(&bytes[..cut], &Default::default()).is_err());
    }
    let tight = enrolkit_cmp::Limits {
        max_message: 100,
        ..Default::default()
    };
    assert!(matches!(
        PkiMessage::parse(&bytes, &tight),
        Err(CmpError::TooLarge { .. })
    ));
    let one_cert = enrolkit_cmp::Limits {
        max_certificates: 1,
        ..Default::default()
    };
    assert!(matches!(
        PkiMessage::parse(&bytes, &one_cert),
        Err(CmpError::TooMany { what: "extraCerts", .. })
    ));
}

/// Every single-bit flip and every truncation of a few vectors: typed
/// errors or a parse, never a panic, and a flipped protected bit never
/// verifies (a cheap, deterministic complement to the fuzz target).
#[test]
fn bit_flips_and_truncations_never_panic_nor_verify() {
    let tight = ProtectionPolicy {
        mac: enrolkit_cmp::MacLimits {
            max_pbm_iterations: 600,
            max_pbkdf2_iterations: 10_000,
            ..enrolkit_cmp::MacLimits::DEFAULT
        },
        allow_sha1: false,
    };
    let s = secret();
    for name in [
        "mac-ir.der",
        "sig-ip.der",
        "rr.der",
        "poll-pollRep.der",
        "error.der",
        "genp.der",
    ] {
        let bytes = read(name);
        let pp = parse(name).protected_part().len();
        for cut in 0..bytes.len() {
            let _ = PkiMessage::parse(&bytes[..cut], &Default::default());
        }
        for pos in 0..bytes.len() {
            let mut b = bytes.clone();
            b[pos] ^= 0x01;
            let Ok(m) = PkiMessage::parse(&b, &Default::default()) else {
                continue;
            };
            let mac = m.verify_mac(&s, &tight);
            let sig = m.verify_signature(&tight);
            // A flip inside the ProtectedPart (past the outer header) must break the protection.
            if pos > 4 && pos < pp && m.protected_part() != parse(name).protected_part() {
                assert!(mac.is_err() && sig.is_err(), "{name}: flip at {pos} still verifies");
            }
        }
    }
}
