//! The responder's pkiMessage opener: parse, verify, decrypt (with a fixed RA key),
//! and the client's CertRep opener on the same bytes. Must never panic.
#![no_main]
use enrolkit_keys::{KeySpec, SoftwareKey};
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use libfuzzer_sys::fuzz_target;
use std::str::FromStr;
use std::sync::OnceLock;

struct Ra {
    key: SoftwareKey,
    cert: x509_cert::Certificate,
    rk: RejectionKey,
}

fn ra() -> &'static Ra {
    static RA: OnceLock<Ra> = OnceLock::new();
    RA.get_or_init(|| {
        let key = SoftwareKey::generate(KeySpec::Rsa2048).expect("key");
        let cert = self_signed_certificate(
            &key,
            &Name::from_str("CN=fuzz RA").expect("name"),
            keys::DigestAlgorithm::Sha256,
            std::time::SystemTime::now(),
            std::time::Duration::from_secs(3600),
            &mut rand_core::OsRng,
        )
        .expect("cert");
        Ra { key, cert, rk: RejectionKey::new([1; 32]) }
    })
}

fuzz_target!(|data: &[u8]| {
    let ra = ra();
    let responder = Responder { certificate: &ra.cert, decryptor: &ra.key, signer: &ra.key, rejection: &ra.rk };
    if let Ok(msg) = PkiMessage::parse(data) {
        let _ = msg.verify();
        let _ = responder.open_verified(msg.clone());
        let sent = SentRequest { message_type: MessageType::PkcsReq, transaction_id: msg.transaction_id.clone(), sender_nonce: msg.recipient_nonce.unwrap_or(Nonce([0; 16])) };
        let requester = Requester { signer: &ra.key, decryptor: &ra.key, certificate: &ra.cert };
        if let Ok(signer) = to_rfc5280(&msg.signer_certificate) {
            let _ = open_cert_rep(data, &sent, &[signer], &requester);
        }
    }
    let _ = open_envelope(data, &ra.cert, &ra.key, &ra.rk);
    let _ = pkix::pkcs10::CertificationRequest::parse(data);
});
