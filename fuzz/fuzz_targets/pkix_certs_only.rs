//! enrolkit-pkix certs-only decoder (BER tolerated): never panic; what
//! decodes encodes, and decodes again to the same certificates and CRLs in
//! the same order.
#![no_main]
use enrolkit_pkix::certs_only::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(got) = decode(data) {
        if let Ok(der) = encode(&got.certificates, &got.crls) {
            assert_eq!(decode(&der).expect("our encoding must decode"), got);
        }
    }
});
