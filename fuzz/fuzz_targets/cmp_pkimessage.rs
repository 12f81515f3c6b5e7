//! enrolkit-cmp on arbitrary bytes: the bounded PKIMessage parser, the
//! protection checks (MAC with a fixed secret under tight iteration bounds,
//! signature with the message's own certificate), the server's request
//! reader and the client's answer opener (with a transaction made to match
//! the message, so the body checks are reached). Must never panic.
#![no_main]
use enrolkit_cmp::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secret = SharedSecret::new(b"fuzz-secret");
    // Tight MAC bounds keep each execution fast; the bounds themselves are what is tested.
    let policy = ProtectionPolicy {
        mac: MacLimits {
            max_pbm_iterations: 1_000,
            max_pbkdf2_iterations: 2_000,
            ..MacLimits::DEFAULT
        },
        allow_sha1: false,
    };
    let Ok(msg) = PkiMessage::parse(data, &Limits::DEFAULT) else {
        return;
    };
    let _ = msg.claimed_protection(&policy);
    let _ = msg.verify_mac(&secret, &policy);
    let _ = msg.verify_signature(&policy);
    let _ = msg.body.to_der();
    for itav in msg.header.general_info() {
        let _ = GenRequest::from_itav(itav);
        let _ = GenResponse::from_itav(itav);
    }

    let mac = |s| Protect::Mac {
        secret: s,
        algorithm: MacAlgorithm::Pbmac1 {
            salt: vec![0; 16],
            iterations: 1_000,
            key_length: 32,
            prf: HmacAlgorithm::Sha256,
            mac: HmacAlgorithm::Sha256,
        },
        sender_kid: b"fuzz".to_vec(),
    };
    let responder = Responder {
        protect: mac(&secret),
        sender: header::null_dn(),
        message_time: None,
        limits: Limits::DEFAULT,
        policy,
    };
    if let Ok(received) = responder.parse(data) {
        let to = received.reply_to();
        let _ = received.clone().verify_mac(&secret);
        let _ = received.verify_signature();
        let _ = responder.error(&to, FailureInfo::BadRequest, "fuzz", &mut rand_core::OsRng);
    }

    let requester = Requester {
        protect: mac(&secret),
        sender: header::null_dn(),
        recipient: header::null_dn(),
        message_time: None,
        limits: Limits::DEFAULT,
        policy,
    };
    let (Some(tid), Some(recip)) = (msg.header.transaction_id(), msg.header.recip_nonce()) else {
        return;
    };
    for body_type in [
        BodyType::Ir,
        BodyType::Kur,
        BodyType::P10cr,
        BodyType::Rr,
        BodyType::GenM,
        BodyType::CertConf,
        BodyType::PollReq,
    ] {
        let sent = Sent {
            body_type,
            exchange: Exchange {
                transaction_id: tid.to_vec(),
                our_nonce: recip.to_vec(),
                peer_nonce: None,
            },
            cert_req_id: Some(0),
            public_key: None,
            implicit_confirm: true,
            origin: BodyType::Ir,
        };
        let _ = requester.open(data, &sent, &ResponseTrust::Mac(&secret));
        let _ = requester.open(data, &sent, &ResponseTrust::SignerToValidate);
    }
});
