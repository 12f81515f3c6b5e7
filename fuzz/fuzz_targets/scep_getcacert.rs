//! GetCACert body parser (single DER certificate or certs-only SignedData).
#![no_main]
use enrolkit_scep::CaCertificates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for ct in [None, Some("application/x-x509-ca-cert"), Some("application/x-x509-ca-ra-cert")] {
        if let Ok(c) = CaCertificates::parse(ct, data) {
            let _ = c.encryption_certificate();
            let _ = c.signers();
            let _ = c.to_response();
        }
    }
});
