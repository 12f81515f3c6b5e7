//! RFC 8951 base64 bodies: never panic, never exceed the bound, and what
//! decodes re-encodes (64 columns) to something that decodes the same.
#![no_main]
use enrolkit_est::body::{decode_base64, encode_base64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [0usize, 48, 4096] {
        if let Ok(decoded) = decode_base64(data, max) {
            assert!(decoded.len() <= max, "decoded past the bound");
            let again = decode_base64(encode_base64(&decoded).as_bytes(), max).expect("our encoding must decode");
            assert_eq!(again, decoded);
        }
    }
});
