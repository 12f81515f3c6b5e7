//! certs-only decoder (BER tolerated): never panic; what decodes encodes,
//! and decodes again to the same certificates in the same order.
#![no_main]
use enrolkit_est::{decode_certs_only, encode_certs_only};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = decode_certs_only(data) {
        if let Ok(der) = encode_certs_only(&certs) {
            assert_eq!(decode_certs_only(&der).expect("our encoding must decode"), certs);
        }
    }
});
