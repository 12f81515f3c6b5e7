//! GetCACaps body parser and algorithm choice.
#![no_main]
use enrolkit_scep::keys::DigestAlgorithm;
use enrolkit_scep::{Capabilities, ContentEncryption};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Capabilities::parse(data) {
        let _ = c.choose_cipher(&[ContentEncryption::Aes256Cbc, ContentEncryption::Aes128Cbc, ContentEncryption::DesEde3Cbc]);
        let _ = c.choose_digest(&[DigestAlgorithm::Sha512, DigestAlgorithm::Sha256, DigestAlgorithm::Sha1]);
        let again = Capabilities::parse(c.to_string().as_bytes()).expect("formatted caps must parse");
        assert_eq!(again, c);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(q) = enrolkit_scep::Query::parse(s) {
            if let Some(m) = q.message {
                let _ = enrolkit_scep::transport::decode_get_message(&m);
            }
        }
    }
});
