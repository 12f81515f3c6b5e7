//! enrolkit-pkix's OCSP request reader (RFC 6960 §4.1), the first thing
//! `mef`'s responder does with a POST body or a decoded GET path, from
//! anyone: never a panic; what passes holds 1 to 32 CertIDs and a nonce to
//! echo of at most 32 octets, and re-encodes.
#![no_main]
use der::{Decode, Encode};
use enrolkit_pkix::ocsp::{parse_request, MAX_CERT_IDS, MAX_NONCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = parse_request(data) else { return };
    let n = r.requests().len();
    assert!((1..=MAX_CERT_IDS).contains(&n));
    for id in r.requests() {
        let _ = id.req_cert.serial_number.as_bytes();
        let _ = id.req_cert.hash_algorithm.oid.to_string();
    }
    if let Some(nonce) = &r.nonce {
        assert!(!nonce.critical);
        let value = nonce.extn_value.as_bytes();
        let len = der::asn1::OctetString::from_der(value).map_or(value.len(), |o| o.as_bytes().len());
        assert!((1..=MAX_NONCE).contains(&len));
    }
    let _ = r.request.to_der();
});
