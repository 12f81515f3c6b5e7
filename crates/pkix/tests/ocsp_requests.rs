//! OCSP requests made by OpenSSL's command line (testvectors/pkix/ocsp),
//! read within the responder's bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::Encode;
use enrolkit_pkix::ocsp::{parse_request, RequestError, MAX_CERT_IDS, MAX_REQUEST};

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../testvectors/pkix/ocsp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn openssl_requests_are_read_with_their_certids_and_nonces() {
    for (name, ids, nonce) in [
        ("one-sha1-no-nonce.der", 1, false),
        ("one-sha1-nonce.der", 1, true),
        ("three-sha256-nonce.der", 3, true),
        ("signed.der", 1, true),
    ] {
        let r = parse_request(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.requests().len(), ids, "{name}");
        assert_eq!(r.nonce.is_some(), nonce, "{name}");
        if let Some(n) = &r.nonce {
            assert!(!n.critical);
        }
    }
    let signed = parse_request(&vector("signed.der")).unwrap();
    assert!(signed.request.optional_signature.is_some());
    let three = parse_request(&vector("three-sha256-nonce.der")).unwrap();
    let serials: Vec<&[u8]> = three
        .requests()
        .iter()
        .map(|r| r.req_cert.serial_number.as_bytes())
        .collect();
    assert_eq!(serials, [&[1u8][..], &[2], &[3]]);
}

#[test]
fn bounds_and_malformed_requests_are_errors_not_panics() {
    let one = vector("one-sha1-no-nonce.der");
    for cut in 0..one.len() {
        assert!(parse_request(&one[..cut]).is_err(), "truncated at {cut}");
    }
    assert!(matches!(
        parse_request(&vec![0x30; MAX_REQUEST + 1]),
        Err(RequestError::TooLarge(_))
    ));
    // A request listing no certificate, and one listing too many.
    let mut r = parse_request(&one).unwrap().request;
    let id = r.tbs_request.request_list[0].clone();
    r.tbs_request.request_list.clear();
    assert!(matches!(
        parse_request(&r.to_der().unwrap()),
        Err(RequestError::NoCertificate)
    ));
    r.tbs_request.request_list = vec![id; MAX_CERT_IDS + 1];
    assert!(matches!(
        parse_request(&r.to_der().unwrap()),
        Err(RequestError::TooManyCertificates(n)) if n == MAX_CERT_IDS + 1
    ));
}

#[test]
fn a_nonce_over_32_octets_is_not_echoed() {
    use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
    let mut r = parse_request(&vector("one-sha1-nonce.der")).unwrap().request;
    let ext = r.tbs_request.request_extensions.as_mut().unwrap();
    let e = ext.iter_mut().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE).unwrap();
    e.extn_value =
        der::asn1::OctetString::new(der::asn1::OctetString::new(vec![7u8; 33]).unwrap().to_der().unwrap()).unwrap();
    let parsed = parse_request(&r.to_der().unwrap()).unwrap();
    assert!(parsed.nonce.is_none());
}
