//! Our builder against our opener: every message type, every cipher, and
//! each malformed-input case yielding its specific error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_scep::keys::{DigestAlgorithm, Signer};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use rand_core::OsRng;
use std::str::FromStr;

/// A request with challengePassword `pw` ("" for none: a renewal).
fn csr(id: &Identity, pw: &str) -> CertificationRequest {
    let der = RequestParams {
        dns_names: vec!["device-1.example.net".into()],
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=device-1,O=enrolkit").unwrap())
    }
    .with_challenge_password(Some(pw).filter(|p| !p.is_empty()))
    .build(&id.key)
    .unwrap();
    CertificationRequest::parse(&der).unwrap()
}

struct Setup {
    ra: Identity,
    client: Identity,
    rk: RejectionKey,
}

fn setup() -> Setup {
    Setup {
        ra: identity("enrolkit test RA"),
        client: identity("device-1"),
        rk: RejectionKey::random(&mut OsRng),
    }
}

impl Setup {
    fn responder(&self) -> Responder<'_> {
        Responder {
            certificate: &self.ra.cert,
            decryptor: &self.ra.key,
            signer: &self.ra.key,
            rejection: &self.rk,
        }
    }
    fn requester(&self) -> Requester<'_> {
        Requester {
            signer: &self.client.key,
            decryptor: &self.client.key,
            certificate: &self.client.cert,
        }
    }
    fn pkcsreq(&self, cipher: ContentEncryption, digest: DigestAlgorithm) -> (Vec<u8>, SentRequest) {
        let txid = TransactionId::from_public_key(
            &enrolkit_scep::x509_cert::der::Encode::to_der(Signer::public_key(&self.client.key)).unwrap(),
        );
        build_request(
            &self.requester(),
            &self.ra.cert,
            &RequestBody::PkcsReq(csr(&self.client, "s3cret-OTP")),
            &txid,
            cipher,
            digest,
            &mut OsRng,
        )
        .unwrap()
    }
}

#[test]
fn pkcsreq_each_cipher_and_digest_round_trips_to_success() {
    let s = setup();
    for cipher in [
        ContentEncryption::Aes128Cbc,
        ContentEncryption::Aes256Cbc,
        ContentEncryption::DesEde3Cbc,
    ] {
        for digest in [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let (der, sent) = s.pkcsreq(cipher, digest);
            let req = s.responder().open_request(&der).unwrap();
            assert_eq!(req.message.message_type, MessageType::PkcsReq);
            assert_eq!(req.message.transaction_id, sent.transaction_id);
            assert_eq!(req.message.sender_nonce, sent.sender_nonce);
            assert_eq!(req.content_encryption, cipher);
            assert_eq!(req.message.digest, digest);
            let RequestBody::PkcsReq(c) = &req.body else {
                panic!("not a PKCSReq")
            };
            assert_eq!(c.challenge_password().map(|s| s.as_str()), Some("s3cret-OTP"));
            assert_eq!(c.dns_names(), vec!["device-1.example.net".to_string()]);
            assert_eq!(c.subject().to_string(), "CN=device-1,O=enrolkit");

            let issued = identity("device-1 issued").cert;
            let to = ReplyTo::from_message(&req.message, req.content_encryption);
            let rep = s
                .responder()
                .reply(
                    &to,
                    &Outcome::Success {
                        certificates: vec![issued.clone()],
                        crls: vec![],
                    },
                    &mut OsRng,
                )
                .unwrap();
            match open_cert_rep(&rep, &sent, std::slice::from_ref(&s.ra.cert), &s.requester()).unwrap() {
                CertRep::Success { certificates, crls } => {
                    assert_eq!(certificates, vec![issued]);
                    assert!(crls.is_empty());
                }
                other => panic!("expected SUCCESS, got {other:?}"),
            }
        }
    }
}

#[test]
fn pending_and_failure_replies_open_with_their_fields() {
    let s = setup();
    let (der, sent) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    let req = s.responder().open_request(&der).unwrap();
    let to = ReplyTo::from_message(&req.message, req.content_encryption);
    let pending = s.responder().reply(&to, &Outcome::Pending, &mut OsRng).unwrap();
    assert!(matches!(
        open_cert_rep(&pending, &sent, std::slice::from_ref(&s.ra.cert), &s.requester()).unwrap(),
        CertRep::Pending
    ));
    let msg = PkiMessage::parse(&pending).unwrap();
    assert_eq!(msg.pki_status, Some(PkiStatus::Pending));
    // "Lacks signed content": an empty eContent, which OpenSSL-based clients need.
    assert_eq!(msg.content.as_deref(), Some(&[][..]));

    let fail = s
        .responder()
        .reply(
            &to,
            &Outcome::Failure {
                fail_info: FailInfo::BadRequest,
                text: Some("challenge already used".into()),
            },
            &mut OsRng,
        )
        .unwrap();
    match open_cert_rep(&fail, &sent, std::slice::from_ref(&s.ra.cert), &s.requester()).unwrap() {
        CertRep::Failure { fail_info, text } => {
            assert_eq!(fail_info, FailInfo::BadRequest);
            assert_eq!(text.as_deref(), Some("challenge already used"));
        }
        other => panic!("expected FAILURE, got {other:?}"),
    }
}

#[test]
fn certpoll_getcert_getcrl_and_renewal_bodies_round_trip() {
    let s = setup();
    let txid = TransactionId::new("poll-1").unwrap();
    let ias = issuer_and_serial(&s.ra.cert);
    let bodies = vec![
        RequestBody::CertPoll(IssuerAndSubject {
            issuer: s.ra.cert.tbs_certificate.subject.clone(),
            subject: Name::from_str("CN=device-1").unwrap(),
        }),
        RequestBody::GetCert(ias.clone()),
        RequestBody::GetCrl(ias.clone()),
        RequestBody::RenewalReq(csr(&s.client, "")),
    ];
    for body in bodies {
        let (der, _) = build_request(
            &s.requester(),
            &s.ra.cert,
            &body,
            &txid,
            ContentEncryption::Aes128Cbc,
            DigestAlgorithm::Sha256,
            &mut OsRng,
        )
        .unwrap();
        let req = s.responder().open_request(&der).unwrap();
        assert_eq!(req.message.message_type, body.message_type());
        match (&req.body, &body) {
            (RequestBody::CertPoll(a), RequestBody::CertPoll(b)) => assert_eq!(a, b),
            (RequestBody::GetCert(a), RequestBody::GetCert(b)) | (RequestBody::GetCrl(a), RequestBody::GetCrl(b)) => {
                assert_eq!(a, b)
            }
            (RequestBody::RenewalReq(a), RequestBody::RenewalReq(b)) => assert_eq!(a.der(), b.der()),
            (a, b) => panic!("{a:?} != {b:?}"),
        }
    }
}

#[test]
fn get_form_carries_the_same_message() {
    let s = setup();
    let (der, _) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    let q = Query::parse(&format!(
        "operation=PKIOperation&message={}",
        transport::encode_get_message(&der)
    ))
    .unwrap();
    let decoded = transport::decode_get_message(q.message.as_deref().unwrap()).unwrap();
    assert_eq!(decoded, der);
    s.responder().open_request(&decoded).unwrap();
}

// ------------------------------------------------------------ malformed input

#[test]
fn truncated_messages_are_encoding_errors() {
    let s = setup();
    let (der, _) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
        let e = s.responder().open_request(&der[..cut]).unwrap_err();
        assert!(matches!(e, ScepError::Encoding(_)), "cut at {cut}: {e:?}");
        assert_eq!(e.fail_info(), FailInfo::BadRequest);
    }
}

#[test]
fn bit_flips_are_rejected_unless_inside_the_unauthenticated_signer_certificate() {
    let s = setup();
    let (der, _) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    // The signer certificate travels in the message; only its public key is bound by the
    // signature (RFC 8894 leaves authenticating it to policy), so flips elsewhere in it can pass.
    let cert = enrolkit_scep::x509_cert::der::Encode::to_der(&s.client.cert).unwrap();
    let start = der.windows(cert.len()).position(|w| w == cert.as_slice()).unwrap();
    let cert_range = start..start + cert.len();
    // SignedData.digestAlgorithms is an unsigned hint; the SignerInfo's digest is what is checked.
    let sha256_alg = [
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let d = der.windows(sha256_alg.len()).position(|w| w == sha256_alg).unwrap();
    let digest_set = d..d + sha256_alg.len();
    // SignedData.version (any valid CMSVersion is accepted, as OpenSSL does): the byte before the set.
    let version_byte = d - 3;
    assert_eq!(&der[version_byte - 2..=version_byte], &[0x02, 0x01, 0x01]);
    // SignerInfo.version: the last `INTEGER 1` followed by the sid SEQUENCE.
    let si_version = der.windows(4).rposition(|w| w == [0x02, 0x01, 0x01, 0x30]).unwrap() + 2;
    for i in 0..der.len() {
        let mut m = der.clone();
        m[i] ^= 0x04;
        if s.responder().open_request(&m).is_ok() {
            assert!(
                cert_range.contains(&i) || digest_set.contains(&i) || i == version_byte || i == si_version,
                "flip at byte {i} (outside the signer certificate) was accepted"
            );
        }
    }
}

#[test]
fn flipped_signature_is_bad_signature_and_flipped_content_is_digest_mismatch() {
    let s = setup();
    let (der, _) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    // The signature value is the last 256 bytes of the message.
    let mut sig = der.clone();
    let n = sig.len();
    sig[n - 10] ^= 1;
    assert_eq!(s.responder().open_request(&sig).unwrap_err(), ScepError::BadSignature);
    assert_eq!(ScepError::BadSignature.fail_info(), FailInfo::BadMessageCheck);
    // A byte in the middle of the encrypted content.
    let msg = PkiMessage::parse(&der).unwrap();
    let env = msg.content.unwrap();
    let pos = der.windows(env.len()).position(|w| w == env.as_slice()).unwrap() + env.len() - 40;
    let mut content = der.clone();
    content[pos] ^= 1;
    assert_eq!(
        s.responder().open_request(&content).unwrap_err(),
        ScepError::DigestMismatch
    );
}

#[test]
fn wrong_recipient_and_wrong_signer() {
    let s = setup();
    let other = identity("someone else");
    let (der, sent) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    let wrong = Responder {
        certificate: &other.cert,
        decryptor: &other.key,
        signer: &other.key,
        rejection: &s.rk,
    };
    assert_eq!(wrong.open_request(&der).unwrap_err(), ScepError::WrongRecipient);

    let req = s.responder().open_request(&der).unwrap();
    let to = ReplyTo::from_message(&req.message, req.content_encryption);
    let rep = s.responder().reply(&to, &Outcome::Pending, &mut OsRng).unwrap();
    let e = open_cert_rep(&rep, &sent, std::slice::from_ref(&other.cert), &s.requester()).unwrap_err();
    assert!(
        matches!(e, ScepError::WrongSigner(ref subj) if subj.contains("enrolkit test RA")),
        "{e:?}"
    );
}

#[test]
fn nonce_and_transaction_mismatch() {
    let s = setup();
    let (der, sent) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    let req = s.responder().open_request(&der).unwrap();
    let mut to = ReplyTo::from_message(&req.message, req.content_encryption);
    to.sender_nonce = Nonce([9; 16]);
    let rep = s.responder().reply(&to, &Outcome::Pending, &mut OsRng).unwrap();
    assert_eq!(
        open_cert_rep(&rep, &sent, std::slice::from_ref(&s.ra.cert), &s.requester()).unwrap_err(),
        ScepError::NonceMismatch
    );
    let mut to = ReplyTo::from_message(&req.message, req.content_encryption);
    to.transaction_id = TransactionId::new("another").unwrap();
    let rep = s.responder().reply(&to, &Outcome::Pending, &mut OsRng).unwrap();
    assert!(matches!(
        open_cert_rep(&rep, &sent, std::slice::from_ref(&s.ra.cert), &s.requester()).unwrap_err(),
        ScepError::TransactionIdMismatch { .. }
    ));
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = hay.to_vec();
    let mut i = 0;
    let mut n = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "pattern not found");
    out
}

#[test]
fn unknown_algorithms_are_named() {
    let s = setup();
    let (der, _) = s.pkcsreq(ContentEncryption::Aes128Cbc, DigestAlgorithm::Sha256);
    // sha256 (2.16.840.1.101.3.4.2.1) -> sha224 (…2.4): the digest is unknown to us.
    let sha256 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let sha224 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
    let e = s
        .responder()
        .open_request(&replace_all(&der, &sha256, &sha224))
        .unwrap_err();
    assert!(
        matches!(e, ScepError::UnsupportedAlgorithm { kind: "digest", .. }),
        "{e:?}"
    );
    assert_eq!(e.fail_info(), FailInfo::BadAlg);
    // aes128-CBC (…4.1.2) -> aes128-ECB (…4.1.1) in the envelope.
    let env = seal_envelope(b"hello", &s.ra.cert, ContentEncryption::Aes128Cbc, &mut OsRng).unwrap();
    let aes_cbc = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
    let aes_ecb = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x01];
    let e = open_envelope(&replace_all(&env, &aes_cbc, &aes_ecb), &s.ra.cert, &s.ra.key, &s.rk).unwrap_err();
    assert!(
        matches!(
            e,
            ScepError::UnsupportedAlgorithm {
                kind: "content encryption",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn bad_key_transport_and_bad_ciphertext_fail_identically() {
    let s = setup();
    let env = seal_envelope(&[0x30, 0x00], &s.ra.cert, ContentEncryption::Aes128Cbc, &mut OsRng).unwrap();
    let (pt, _) = open_envelope(&env, &s.ra.cert, &s.ra.key, &s.rk).unwrap();
    assert_eq!(&pt[..], &[0x30, 0x00]);
    // The RSA block sits right after the rsaEncryption AlgorithmIdentifier: flip a byte in it.
    let rsa_alg = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let p = env.windows(rsa_alg.len()).position(|w| w == rsa_alg).unwrap() + rsa_alg.len() + 4 + 20;
    let mut bad_key = env.clone();
    bad_key[p] ^= 0x01;
    let mut bad_ct = env.clone();
    let n = bad_ct.len();
    bad_ct[n - 1] ^= 0x01;
    let e1 = open_envelope(&bad_key, &s.ra.cert, &s.ra.key, &s.rk).unwrap_err();
    let e2 = open_envelope(&bad_ct, &s.ra.cert, &s.ra.key, &s.rk).unwrap_err();
    assert_eq!(e1, ScepError::DecryptionFailed);
    assert_eq!(e2, ScepError::DecryptionFailed);
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![0u8; transport::MAX_MESSAGE + 1];
    assert!(matches!(
        PkiMessage::parse(&big).unwrap_err(),
        ScepError::TooLarge { .. }
    ));
}

#[test]
fn getcacert_ca_alone_and_ca_ra() {
    let s = setup();
    let single = CaCertificates {
        ca: s.ra.cert.clone(),
        ra: vec![],
        chain: vec![],
    };
    let (ct, body) = single.to_response().unwrap();
    assert_eq!(ct, "application/x-x509-ca-cert");
    let parsed = CaCertificates::parse(Some(ct), &body).unwrap();
    assert_eq!(parsed.ca, s.ra.cert);
    assert_eq!(parsed.encryption_certificate(), &s.ra.cert);
    assert!(CaCertificates::parse(Some(ct), &body[..body.len() - 3]).is_err());
    assert!(CaCertificates::parse(None, b"garbage").is_err());
}
