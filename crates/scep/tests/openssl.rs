//! Interop with the OpenSSL command line, both directions: what we build,
//! `openssl cms`/`req` verify and decrypt; what `openssl cms` builds, we open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_scep::keys::{DigestAlgorithm, Signer};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::x509_cert::der::Encode;
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use rand_core::OsRng;
use std::str::FromStr;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        println!("peer: {}", openssl_version());
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn put(&self, name: &str, bytes: &[u8]) -> String {
        write(self.dir.path(), name, bytes)
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
    fn identity(&self, id: &Identity, name: &str) -> (String, String) {
        (
            self.put(&format!("{name}.pem"), cert_pem(&id.cert).as_bytes()),
            self.put(&format!("{name}.key"), id.key.to_pkcs8_pem().unwrap().as_bytes()),
        )
    }
}

#[test]
fn our_pkcsreq_is_verified_and_decrypted_by_openssl_and_its_csr_verifies() {
    let f = Files::new();
    let ra = identity("RA for openssl");
    let client = identity("device-openssl");
    let (ra_pem, ra_key) = f.identity(&ra, "ra");
    for (cipher, name) in [
        (ContentEncryption::Aes128Cbc, "AES-128-CBC"),
        (ContentEncryption::Aes256Cbc, "AES-256-CBC"),
        (ContentEncryption::DesEde3Cbc, "DES-EDE3-CBC"),
    ] {
        let csr = RequestParams {
            dns_names: vec!["device.example".into()],
            digest: DigestAlgorithm::Sha256,
            ..RequestParams::new(Name::from_str("CN=device-openssl").unwrap())
        }
        .with_challenge_password(Some("otp-123456"))
        .build(&client.key)
        .unwrap();
        let requester = Requester {
            signer: &client.key,
            decryptor: &client.key,
            certificate: &client.cert,
        };
        let txid = TransactionId::from_public_key(&Signer::public_key(&client.key).to_der().unwrap());
        let (msg, _) = build_request(
            &requester,
            &ra.cert,
            &RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
            &txid,
            cipher,
            DigestAlgorithm::Sha256,
            &mut OsRng,
        )
        .unwrap();
        let msg_path = f.put("req.der", &msg);
        let env_path = f.path("env.der");
        // -noverify: the signer is self-signed (RFC 8894 §2.3); the signature itself is still checked.
        openssl(&[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            &msg_path,
            "-noverify",
            "-binary",
            "-out",
            &env_path,
        ]);
        let csr_path = f.path("csr.der");
        openssl(&[
            "cms", "-decrypt", "-inform", "DER", "-in", &env_path, "-recip", &ra_pem, "-inkey", &ra_key, "-binary",
            "-out", &csr_path,
        ]);
        assert_eq!(std::fs::read(&csr_path).unwrap(), csr, "{name}: decrypted CSR differs");
        let text = String::from_utf8(openssl(&[
            "req", "-verify", "-inform", "DER", "-in", &csr_path, "-noout", "-text",
        ]))
        .unwrap();
        assert!(
            text.contains("challengePassword") && text.contains("otp-123456"),
            "{text}"
        );
        assert!(text.contains("DNS:device.example"), "{text}");
        let envinfo = String::from_utf8(openssl(&[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", &env_path,
        ]))
        .unwrap();
        let oid_name = match cipher {
            ContentEncryption::Aes128Cbc => "aes-128-cbc",
            ContentEncryption::Aes256Cbc => "aes-256-cbc",
            _ => "des-ede3-cbc",
        };
        assert!(envinfo.contains(oid_name), "{name}: {envinfo}");
        let attrs = String::from_utf8(openssl(&[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", &msg_path,
        ]))
        .unwrap();
        assert!(
            attrs.contains("2.16.840.1.113733.1.9.2") && attrs.contains("PRINTABLESTRING:19"),
            "{attrs}"
        );
        assert!(attrs.contains(txid.as_str()), "{attrs}");
    }
}

#[test]
fn our_certrep_success_is_verified_and_decrypted_by_openssl() {
    let f = Files::new();
    let ra = identity("RA signing replies");
    let client = identity("device-2");
    let (ra_pem, _) = f.identity(&ra, "ra");
    let (client_pem, client_key) = f.identity(&client, "client");
    let issued = identity("device-2 issued").cert;
    let to = ReplyTo {
        transaction_id: TransactionId::new("tx-openssl-1").unwrap(),
        sender_nonce: Nonce([7; 16]),
        requester_certificate: to_raw(&client.cert).unwrap(),
        digest: DigestAlgorithm::Sha256,
        content_encryption: ContentEncryption::Aes128Cbc,
    };
    let rep = build_cert_rep(
        &to,
        &Outcome::Success {
            certificates: vec![issued.clone()],
            crls: vec![],
        },
        &ra.key,
        &ra.cert,
        &mut OsRng,
    )
    .unwrap();
    let rep_path = f.put("rep.der", &rep);
    let env_path = f.path("env.der");
    openssl(&[
        "cms", "-verify", "-inform", "DER", "-in", &rep_path, "-CAfile", &ra_pem, "-purpose", "any", "-binary", "-out",
        &env_path,
    ]);
    let p7 = f.path("certs.p7");
    openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        &env_path,
        "-recip",
        &client_pem,
        "-inkey",
        &client_key,
        "-binary",
        "-out",
        &p7,
    ]);
    let pem = String::from_utf8(openssl(&["pkcs7", "-inform", "DER", "-in", &p7, "-print_certs"])).unwrap();
    assert!(pem.contains("subject=CN = device-2 issued"), "{pem}");
    let printed = String::from_utf8(openssl(&[
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", &rep_path,
    ]))
    .unwrap();
    assert!(
        printed.contains("tx-openssl-1") && printed.contains("07 07 07 07 07 07 07 07"),
        "{printed}"
    );
}

#[test]
fn openssl_envelopes_open_with_each_cipher_including_ber_streaming() {
    let f = Files::new();
    let ra = identity("RA decrypting openssl");
    let (ra_pem, _) = f.identity(&ra, "ra");
    let plain = b"a payload that spans more than one block of the cipher...";
    let pt = f.put("plain.bin", plain);
    let rk = RejectionKey::random(&mut OsRng);
    for (flag, expect, stream) in [
        ("-aes128", ContentEncryption::Aes128Cbc, false),
        ("-aes256", ContentEncryption::Aes256Cbc, false),
        ("-des3", ContentEncryption::DesEde3Cbc, false),
        ("-aes128", ContentEncryption::Aes128Cbc, true),
    ] {
        let out = f.path("env.der");
        let mut args = vec![
            "cms", "-encrypt", "-binary", "-outform", "DER", "-in", &pt, "-out", &out, flag,
        ];
        if stream {
            args.push("-stream");
        }
        args.push(&ra_pem);
        openssl(&args);
        let der = std::fs::read(&out).unwrap();
        if stream {
            assert_eq!(der[1], 0x80, "expected an indefinite-length encoding from -stream");
        }
        let (got, cipher) = open_envelope(&der, &ra.cert, &ra.key, &rk).unwrap();
        assert_eq!(&got[..], plain);
        assert_eq!(cipher, expect);
    }
}

#[test]
fn openssl_signed_data_lacks_scep_attributes_and_says_so() {
    let f = Files::new();
    let signer = identity("plain CMS signer");
    let (pem, key) = f.identity(&signer, "signer");
    let pt = f.put("p.bin", b"content");
    let out = f.path("signed.der");
    openssl(&[
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-in",
        &pt,
        "-signer",
        &pem,
        "-inkey",
        &key,
        "-out",
        &out,
    ]);
    let e = PkiMessage::parse(&std::fs::read(&out).unwrap()).unwrap_err();
    assert_eq!(e, ScepError::MissingAttribute("messageType"));
}

#[test]
fn our_pending_and_failure_replies_pass_pkcs7_verify_as_certmonger_calls_it() {
    // certmonger verifies CertReps with PKCS7_verify(p7, ..., NULL, out, 0): `openssl smime -verify`.
    let f = Files::new();
    let ra = identity("RA for PKCS7_verify");
    let client = identity("device-pkcs7");
    let (ra_pem, _) = f.identity(&ra, "ra");
    let to = ReplyTo {
        transaction_id: TransactionId::new("tx-pkcs7").unwrap(),
        sender_nonce: Nonce([1; 16]),
        requester_certificate: to_raw(&client.cert).unwrap(),
        digest: DigestAlgorithm::Sha256,
        content_encryption: ContentEncryption::Aes128Cbc,
    };
    for outcome in [
        Outcome::Pending,
        Outcome::Failure {
            fail_info: FailInfo::BadRequest,
            text: Some("no".into()),
        },
    ] {
        let rep = build_cert_rep(&to, &outcome, &ra.key, &ra.cert, &mut OsRng).unwrap();
        let path = f.put("rep.der", &rep);
        let out = f.path("out.bin");
        openssl(&[
            "smime", "-verify", "-inform", "DER", "-in", &path, "-CAfile", &ra_pem, "-purpose", "any", "-out", &out,
        ]);
        assert_eq!(std::fs::read(&out).unwrap(), b"", "{outcome:?}");
    }
}
