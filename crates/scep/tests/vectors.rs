//! Open every vector of `testvectors/scep/` (made by micromdm, OpenSSL and
//! Python asn1crypto — never by us) and check its fields against what those
//! independent tools recorded in MANIFEST.toml.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_scep::keys::{DigestAlgorithm, SoftwareKey};
use enrolkit_scep::pkix::pkcs10::CertificationRequest;
use enrolkit_scep::x509_cert::der::{Decode, Encode};
use enrolkit_scep::x509_cert::Certificate;
use enrolkit_scep::*;
use toml::{Table, Value};

fn manifest() -> Table {
    let text = std::fs::read_to_string(vectors_dir().join("MANIFEST.toml")).unwrap();
    text.parse::<Table>().unwrap()
}

fn files() -> Table {
    manifest()["files"].as_table().unwrap().clone()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(vectors_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn s<'a>(t: &'a Value, k: &str) -> Option<&'a str> {
    t.get(k).and_then(|v| v.as_str())
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(DigestAlgorithm::Sha256.digest(b))
}

fn key(name: &str) -> SoftwareKey {
    SoftwareKey::from_pem(&String::from_utf8(read(name)).unwrap()).unwrap()
}

fn cert(name: &str) -> Certificate {
    load_cert(&vectors_dir().join(name))
}

#[test]
fn peer_versions_are_recorded() {
    let m = manifest();
    let peers = m["peers"].as_table().unwrap();
    println!(
        "vectors made with scep {} / openssl {} / asn1crypto {}",
        peers["scep"], peers["openssl"], peers["asn1crypto"]
    );
    assert!(peers["scep"].as_str().unwrap().starts_with("2.1.0"));
}

#[test]
fn every_file_matches_its_recorded_hash() {
    for (name, f) in files() {
        if let Some(h) = s(&f, "sha256") {
            assert_eq!(
                sha256_hex(&read(&name)),
                h,
                "{name} changed since the manifest was written"
            );
        }
    }
}

#[test]
fn keys_load_and_match_their_public_key_hash() {
    for (name, f) in files() {
        if s(&f, "kind") != Some("key") {
            continue;
        }
        let k = key(&name);
        let spki = enrolkit_scep::keys::Signer::public_key(&k).to_der().unwrap();
        assert_eq!(
            sha256_hex(&spki),
            s(&f["fields"], "public_key_sha256").unwrap(),
            "{name}"
        );
    }
}

#[test]
fn every_pkimessage_opens_with_the_fields_independent_tools_saw() {
    let all = files();
    let mut opened = 0;
    for (name, f) in &all {
        if s(f, "kind") != Some("pkimessage") {
            continue;
        }
        let fields = &f["fields"];
        let der = read(name);
        let msg = PkiMessage::parse(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        msg.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            msg.message_type.code().to_string(),
            s(fields, "message_type").unwrap(),
            "{name}"
        );
        assert_eq!(
            msg.transaction_id.as_str(),
            s(fields, "transaction_id").unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(msg.sender_nonce.0),
            s(fields, "sender_nonce_hex").unwrap(),
            "{name}"
        );
        assert_eq!(
            msg.recipient_nonce.map(|n| hex::encode(n.0)).as_deref(),
            s(fields, "recipient_nonce_hex"),
            "{name}"
        );
        assert_eq!(
            msg.pki_status.map(|p| p.code().to_string()).as_deref(),
            s(fields, "pki_status"),
            "{name}"
        );
        assert_eq!(
            msg.fail_info.map(|p| p.code().to_string()).as_deref(),
            s(fields, "fail_info"),
            "{name}"
        );
        assert_eq!(msg.fail_info_text.as_deref(), s(fields, "fail_info_text"), "{name}");
        assert_eq!(
            msg.digest.oid().to_string(),
            s(fields, "signer_digest_oid").unwrap(),
            "{name}"
        );
        assert_eq!(
            enrolkit_pkix::fingerprint::sha256_der(&der::Encode::to_der(&msg.signer_certificate).unwrap()),
            s(fields, "signer_cert_sha256_fingerprint").unwrap(),
            "{name}"
        );

        if msg.message_type != MessageType::CertRep {
            // Responder side: decrypt with the RA/CA key.
            let (ck, cc) = (s(f, "decrypt_key").unwrap(), s(f, "decrypt_cert").unwrap());
            let (k, c) = (key(ck), cert(cc));
            let rk = RejectionKey::new([3; 32]);
            let responder = Responder {
                certificate: &c,
                decryptor: &k,
                signer: &k,
                rejection: &rk,
            };
            let req = responder
                .open_verified(msg.clone())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                req.content_encryption.oid().to_string(),
                s(fields, "content_encryption_oid").unwrap(),
                "{name}"
            );
            match &req.body {
                RequestBody::PkcsReq(csr) | RequestBody::RenewalReq(csr) => {
                    assert_eq!(sha256_hex(csr.der()), s(fields, "plaintext_sha256").unwrap(), "{name}");
                    if let Some(pc) = fields.get("plaintext_csr") {
                        assert_eq!(
                            csr.challenge_password().map(|p| p.as_str()),
                            s(pc, "challenge_password"),
                            "{name}"
                        );
                    }
                }
                other => panic!("{name}: unexpected body {other:?}"),
            }
        } else {
            // Client side: match against the request and, on SUCCESS, decrypt with the client key.
            let req_name = s(f, "request").unwrap();
            let req = PkiMessage::parse(&read(req_name)).unwrap();
            let sent = SentRequest {
                message_type: req.message_type,
                transaction_id: req.transaction_id.clone(),
                sender_nonce: req.sender_nonce,
            };
            let trusted = vec![cert(s(f, "verify_cert").unwrap())];
            let client_key = s(f, "decrypt_key")
                .map(key)
                .unwrap_or_else(|| SoftwareKey::generate(enrolkit_scep::keys::KeySpec::Rsa2048).unwrap());
            let requester = Requester {
                signer: &client_key,
                decryptor: &client_key,
                certificate: &to_rfc5280(&req.signer_certificate).unwrap(),
            };
            let rep = open_cert_rep(&der, &sent, &trusted, &requester).unwrap_or_else(|e| panic!("{name}: {e}"));
            match (rep, msg.pki_status.unwrap()) {
                (CertRep::Success { certificates, .. }, PkiStatus::Success) => {
                    let spki = enrolkit_scep::keys::Signer::public_key(&client_key).clone();
                    let issued = certificates
                        .iter()
                        .find(|c| c.tbs_certificate.subject_public_key_info == spki);
                    assert!(issued.is_some(), "{name}: no certificate for the client key");
                    // The same certificates openssl decrypted from this reply.
                    let theirs = enrolkit_pkix::certs_only::decode(&read(s(fields, "plaintext_file").unwrap()))
                        .unwrap()
                        .certificates;
                    assert_eq!(certificates, theirs, "{name}");
                }
                (CertRep::Pending, PkiStatus::Pending) => {}
                (CertRep::Failure { fail_info, .. }, PkiStatus::Failure) => {
                    assert_eq!(fail_info.code().to_string(), s(fields, "fail_info").unwrap())
                }
                (r, st) => panic!("{name}: {r:?} vs {st:?}"),
            }
        }
        opened += 1;
    }
    assert!(opened >= 12, "only {opened} pkiMessages in the corpus");
}

#[test]
fn micromdm_renewal_is_a_renewalreq_signed_by_the_old_certificate() {
    let msg = PkiMessage::parse(&read("micromdm-renewal-req.der")).unwrap();
    assert_eq!(msg.message_type, MessageType::RenewalReq);
    assert!(same_certificate(
        &msg.signer_certificate,
        &cert("micromdm-renewal-client-old.pem")
    ));
}

#[test]
fn envelopes_from_openssl_decrypt_to_the_recorded_plaintext() {
    let mut n = 0;
    for (name, f) in files() {
        if s(&f, "kind") != Some("envelope") {
            continue;
        }
        let (k, c) = (key(s(&f, "decrypt_key").unwrap()), cert(s(&f, "decrypt_cert").unwrap()));
        let (pt, cipher) =
            open_envelope(&read(&name), &c, &k, &RejectionKey::new([4; 32])).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha256_hex(&pt), s(&f["fields"], "plaintext_sha256").unwrap(), "{name}");
        assert_eq!(
            cipher.oid().to_string(),
            s(&f["fields"], "content_encryption_oid").unwrap(),
            "{name}"
        );
        n += 1;
    }
    assert_eq!(n, 4);
    let ber = read("openssl-envelope-aes128-ber.der");
    assert_eq!(ber[1], 0x80, "the BER vector must really be indefinite-length");
}

#[test]
fn getcacaps_bodies() {
    for name in ["micromdm-getcacaps.txt", "micromdm-getcacaps-rewritten-noaes.txt"] {
        let f = &files()[name];
        let caps = Capabilities::parse(&read(name)).unwrap();
        let lines: Vec<&str> = f["fields"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(caps.iter().map(|c| c.keyword()).collect::<Vec<_>>(), lines, "{name}");
        assert!(
            caps.iter().all(|c| !matches!(c, Capability::Other(_))),
            "{name}: all keywords known"
        );
    }
}

#[test]
fn getcacert_single_and_ca_ra() {
    let single = CaCertificates::parse(Some("application/x-x509-ca-cert"), &read("micromdm-getcacert.der")).unwrap();
    assert_eq!(
        enrolkit_pkix::fingerprint::sha256(&single.ca),
        s(&files()["micromdm-getcacert.der"]["fields"], "sha256_fingerprint").unwrap()
    );
    assert!(single.ra.is_empty());

    let both = CaCertificates::parse(
        Some("application/x-x509-ca-ra-cert"),
        &read("openssl-getcacert-ca-ra.p7b.der"),
    )
    .unwrap();
    assert_eq!(both.ca, cert("openssl-ca.pem"));
    assert_eq!(both.ra, vec![cert("openssl-ra.pem")]);
    assert_eq!(both.encryption_certificate(), &cert("openssl-ra.pem"));
    assert!(both.signers().contains(&cert("openssl-ra.pem")));
    // And what we emit for the same pair is read back the same by us and by openssl.
    let (ct, body) = both.to_response().unwrap();
    assert_eq!(ct, "application/x-x509-ca-ra-cert");
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "cacert.p7b", &body);
    let printed = String::from_utf8(openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &p,
        "-print_certs",
        "-noout",
    ]))
    .unwrap();
    assert!(
        printed.contains("CN = SCEP Test CA") && printed.contains("CN = SCEP Test RA"),
        "{printed}"
    );
}

#[test]
fn openssl_csr_with_challenge() {
    let f = &files()["openssl-csr-challenge.der"];
    let csr = CertificationRequest::parse(&read("openssl-csr-challenge.der")).unwrap();
    assert_eq!(
        csr.challenge_password().map(|p| p.as_str()),
        s(&f["fields"], "challenge_password")
    );
    assert_eq!(csr.subject().to_string(), s(&f["fields"], "subject").unwrap());
    let san: Vec<String> = csr.dns_names().into_iter().map(|d| format!("dns_name:{d}")).collect();
    let want: Vec<&str> = f["fields"]["san"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(san, want);
}

#[test]
fn plain_cms_signed_data_is_not_a_pkimessage() {
    assert_eq!(
        PkiMessage::parse(&read("openssl-signed.der")).unwrap_err(),
        ScepError::MissingAttribute("messageType")
    );
}

#[test]
fn we_answer_micromdm_requests_in_their_own_cipher() {
    // A micromdm PKCSReq is DES-CBC + SHA-1; our reply must be readable by the same client:
    // same cipher, encrypted to its signer certificate, and openssl (legacy provider) opens it.
    let req_der = read("micromdm-pkcsreq-caps-default.der");
    let (k, c) = (key("micromdm-ca.key.pem"), cert("micromdm-ca.pem"));
    let rk = RejectionKey::new([5; 32]);
    let responder = Responder {
        certificate: &c,
        decryptor: &k,
        signer: &k,
        rejection: &rk,
    };
    let req = responder.open_request(&req_der).unwrap();
    assert_eq!(req.content_encryption, ContentEncryption::DesCbc);
    let to = ReplyTo::from_message(&req.message, req.content_encryption);
    let issued = Certificate::from_der(&read("micromdm-getcacert.der")).unwrap();
    let rep = responder
        .reply(
            &to,
            &Outcome::Success {
                certificates: vec![issued],
                crls: vec![],
            },
            &mut rand_core::OsRng,
        )
        .unwrap();
    let back = PkiMessage::parse(&rep).unwrap();
    back.verify().unwrap();
    assert_eq!(back.recipient_nonce, Some(req.message.sender_nonce));
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "rep.der", &rep);
    let env = dir.path().join("env.der");
    openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &p,
        "-noverify",
        "-binary",
        "-out",
        env.to_str().unwrap(),
    ]);
    let printed = String::from_utf8(openssl(&[
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        env.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(printed.contains("des-cbc"), "{printed}");
}

#[test]
fn certmonger_request_with_a_long_serial_opens_and_its_reply_reaches_it() {
    // certmonger signs with a self-signed certificate whose serial is longer
    // than RFC 5280 allows; the request must still verify, and the reply must
    // be encrypted to exactly that certificate (issuer and serial as rid).
    let req_der = read("certmonger-pkcsreq.der");
    let (k, c) = (key("micromdm-ca.key.pem"), cert("micromdm-ca.pem"));
    let rk = RejectionKey::new([6; 32]);
    let responder = Responder {
        certificate: &c,
        decryptor: &k,
        signer: &k,
        rejection: &rk,
    };
    let req = responder.open_request(&req_der).unwrap();
    let serial = req
        .message
        .signer_certificate
        .tbs_certificate
        .serial_number
        .as_bytes()
        .len();
    assert!(serial > 20, "certmonger's signer serial has {serial} bytes");
    assert!(to_rfc5280(&req.message.signer_certificate).is_err());
    let RequestBody::PkcsReq(csr) = &req.body else {
        panic!("not a PKCSReq: {:?}", req.body)
    };
    assert_eq!(
        csr.challenge_password().map(|s| s.as_str()),
        Some("scep-test-challenge")
    );
    let to = ReplyTo::from_message(&req.message, req.content_encryption);
    let rep = responder
        .reply(
            &to,
            &Outcome::Success {
                certificates: vec![c.clone()],
                crls: vec![],
            },
            &mut rand_core::OsRng,
        )
        .unwrap();
    let back = PkiMessage::parse(&rep).unwrap();
    back.verify().unwrap();
    let (plain, cipher) = open_envelope(
        back.content.as_deref().unwrap(),
        &req.message.signer_certificate,
        &key("certmonger.key.pem"),
        &RejectionKey::new([7; 32]),
    )
    .unwrap();
    assert_eq!(cipher, req.content_encryption);
    let certs = enrolkit_pkix::certs_only::decode(&plain).unwrap().certificates;
    assert_eq!(certs, vec![c]);
}
