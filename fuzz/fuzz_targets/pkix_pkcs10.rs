//! enrolkit-pkix's PKCS#10 parser (RFC 2986) with proof of possession, every
//! accessor on what passes, and EST's check against CSR attributes — the
//! readers SCEP, EST, the RA and the CA put a request through. Never a
//! panic; what passes is the input byte for byte. (Replaces `est_csr`.)
//!
//! Mutated requests rarely keep a valid signature, so half the inputs are
//! signed here: when the first byte is odd, the rest is taken as the
//! contents of the attributes `[0]` of a CertificationRequestInfo that a
//! fixed P-256 key signs, which brings the challengePassword,
//! extensionRequest, subjectAltName and extKeyUsage readers within reach.
#![no_main]
use der::Encode;
use enrolkit_est::{check_satisfies, CsrAttrs};
use enrolkit_keys::{KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_pkix::pkcs10::{bounds, CertificationRequest};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static SoftwareKey {
    static KEY: OnceLock<SoftwareKey> = OnceLock::new();
    KEY.get_or_init(|| SoftwareKey::generate(KeySpec::EcP256).expect("key"))
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else if n < 0x10000 {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    } else {
        v.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

/// A request over `attributes` (the contents of `[0]`), signed by the fixed key.
fn signed(attributes: &[u8]) -> Option<Vec<u8>> {
    let key = key();
    let mut body = vec![0x02, 0x01, 0x00, 0x30, 0x00];
    body.extend(key.public_key().to_der().ok()?);
    body.extend(tlv(0xa0, attributes));
    let info = tlv(0x30, &body);
    let alg = SignatureAlgorithm::EcdsaP256Sha256;
    let sig = key.sign(alg, &info).ok()?;
    let mut outer = info;
    outer.extend(alg.algorithm_identifier().to_der().ok()?);
    outer.extend(der::asn1::BitString::from_bytes(&sig).ok()?.to_der().ok()?);
    Some(tlv(0x30, &outer))
}

fn exercise(data: &[u8]) {
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
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => {
            if let Some(req) = signed(rest) {
                exercise(&req);
            }
        }
        _ => exercise(data),
    }
});
