//! The SCEP message layer end to end, in one process: a client builds a
//! PKCSReq for an RA, the RA opens it and answers PENDING then SUCCESS, and
//! the client opens the replies. Prints what each side sees.
//!
//! `cargo run -p enrolkit-scep --example scep_roundtrip`
use enrolkit_scep::keys::{DigestAlgorithm, KeySpec, Signer, SoftwareKey};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::x509_cert::der::Encode;
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use rand_core::OsRng;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let caps = Capabilities::parse(b"AES\nSHA-256\nSHA-512\nPOSTPKIOperation\nRenewal\nSCEPStandard\n")?;
    let cipher = caps
        .choose_cipher(&[
            ContentEncryption::Aes256Cbc,
            ContentEncryption::Aes128Cbc,
            ContentEncryption::DesEde3Cbc,
        ])
        .ok_or("no common cipher")?;
    let digest = caps
        .choose_digest(&[DigestAlgorithm::Sha512, DigestAlgorithm::Sha256])
        .ok_or("no common digest")?;
    println!(
        "GetCACaps: {:?} -> cipher {cipher:?}, digest {digest:?}",
        caps.iter().map(|c| c.keyword()).collect::<Vec<_>>()
    );

    let now = SystemTime::now();
    let ra_key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let ra_cert = self_signed_certificate(
        &ra_key,
        &Name::from_str("CN=example RA")?,
        DigestAlgorithm::Sha256,
        now,
        Duration::from_secs(86400),
        &mut OsRng,
    )?;
    let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
    let subject = Name::from_str("CN=device-0001,O=example")?;
    let signer_cert = self_signed_certificate(&key, &subject, digest, now, Duration::from_secs(3600), &mut OsRng)?;
    let csr = RequestParams {
        dns_names: vec!["device-0001.example.net".into()],
        digest,
        ..RequestParams::new(subject)
    }
    .with_challenge_password(Some("one-time-secret"))
    .build(&key)?;
    let requester = Requester {
        signer: &key,
        decryptor: &key,
        certificate: &signer_cert,
    };
    let txid = TransactionId::from_public_key(&key.public_key().to_der()?);
    let body = RequestBody::PkcsReq(CertificationRequest::parse(&csr)?);
    let (request, sent) = build_request(&requester, &ra_cert, &body, &txid, cipher, digest, &mut OsRng)?;
    println!(
        "client: PKCSReq of {} bytes, transactionID {}",
        request.len(),
        sent.transaction_id
    );

    let rk = RejectionKey::random(&mut OsRng);
    let responder = Responder {
        certificate: &ra_cert,
        decryptor: &ra_key,
        signer: &ra_key,
        rejection: &rk,
    };
    let opened = responder.open_request(&request)?;
    let RequestBody::PkcsReq(c) = &opened.body else {
        return Err("not a PKCSReq".into());
    };
    println!(
        "RA: {} from {}, subject {}, SAN {:?}, challenge present: {}",
        opened.message.message_type,
        opened.message.signer_certificate.tbs_certificate.subject,
        c.subject(),
        c.dns_names(),
        c.challenge_password().is_some()
    );
    let to = ReplyTo::from_message(&opened.message, opened.content_encryption);
    let pending = responder.reply(&to, &Outcome::Pending, &mut OsRng)?;
    println!(
        "client: first reply is {:?}",
        open_cert_rep(&pending, &sent, std::slice::from_ref(&ra_cert), &requester)?
    );
    let issued = self_signed_certificate(
        &key,
        &Name::from_str("CN=device-0001,O=example")?,
        digest,
        now,
        Duration::from_secs(86400 * 365),
        &mut OsRng,
    )?;
    let success = responder.reply(
        &to,
        &Outcome::Success {
            certificates: vec![issued],
            crls: vec![],
        },
        &mut OsRng,
    )?;
    match open_cert_rep(&success, &sent, std::slice::from_ref(&ra_cert), &requester)? {
        CertRep::Success { certificates, .. } => {
            let mine = certificates
                .iter()
                .find(|c| c.tbs_certificate.subject_public_key_info == *key.public_key())
                .ok_or("no certificate for our key")?;
            println!(
                "client: SUCCESS, certificate {} (SHA-256 {})",
                mine.tbs_certificate.subject,
                enrolkit_pkix::fingerprint::sha256(mine)
            );
        }
        other => return Err(format!("unexpected reply {other:?}").into()),
    }
    Ok(())
}
