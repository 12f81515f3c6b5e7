//! PKCS#10 parser with proof of possession, and every accessor on what passes.
#![no_main]
use enrolkit_est::{check_satisfies, CsrAttrs, ParsedCsr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(csr) = ParsedCsr::parse(data) else { return };
    let _ = csr.extensions();
    let _ = csr.dns_names();
    let _ = csr.ip_addresses();
    let _ = csr.requested_ekus();
    let _ = csr.subject_alt_name_der();
    let _ = csr.public_key_kind();
    let _ = csr.public_key_algorithm();
    let _ = csr.rsa_bits();
    let _ = format!("{csr:?}");
    let attrs = CsrAttrs::new().with_challenge_password();
    let _ = check_satisfies(&attrs, &csr);
});
