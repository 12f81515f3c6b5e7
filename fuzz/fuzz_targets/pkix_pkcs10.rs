//! enrolkit-pkix's PKCS#10 parser (RFC 2986) with proof of possession, every
//! accessor on what passes, and EST's check against CSR attributes — the
//! readers SCEP, EST, the RA and the CA put a request through. Never a
//! panic; what passes is the input byte for byte. (Replaces `est_csr`.)
#![no_main]
use enrolkit_est::{check_satisfies, CsrAttrs};
use enrolkit_pkix::pkcs10::{bounds, CertificationRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bounds::check_shape(data);
    let Ok(csr) = CertificationRequest::parse(data) else { return };
    assert_eq!(csr.der(), data, "a parsed request keeps the bytes it was verified over");
    let _ = csr.subject().to_string();
    let _ = csr.public_key();
    let _ = csr.signature_algorithm();
    let _ = csr.challenge_password();
    let _ = csr.attributes().count();
    let _ = csr.extensions();
    let _ = csr.subject_alt_names();
    let names = csr.names();
    let _ = names.to_extension(csr.subject().0.is_empty());
    let _ = csr.dns_names();
    let _ = csr.ip_addresses();
    let _ = csr.requested_ekus();
    let _ = csr.subject_alt_name_der();
    let _ = csr.key_kind();
    let _ = csr.public_key_algorithm();
    let _ = csr.rsa_bits();
    let _ = format!("{csr:?}");
    let _ = enrolkit_pki::Request::from_csr(&csr);
    let attrs = CsrAttrs::new().with_challenge_password();
    let _ = check_satisfies(&attrs, &csr);
});
