//! enrolkit-pkix: a set of DER certificates (at most 8, concatenated)
//! validated as anchor (the first), intermediates and target (the last),
//! and the input as a typed fingerprint: never a panic, and a validated
//! path always ends at the anchor and starts at the target.
#![no_main]
use der::{Decode, Reader, SliceReader};
use enrolkit_pkix::{fingerprint, Anchors, Options, Purpose, Validator};
use libfuzzer_sys::fuzz_target;
use x509_cert::Certificate;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fingerprint::parse(text);
    }
    let Ok(mut r) = SliceReader::new(data) else { return };
    let mut certs = Vec::new();
    while !r.is_finished() && certs.len() < 8 {
        match Certificate::decode(&mut r) {
            Ok(c) => certs.push(c),
            Err(_) => break,
        }
    }
    let (Some(anchor), Some(target)) = (certs.first().cloned(), certs.last().cloned()) else { return };
    let Ok(anchors) = Anchors::new(vec![anchor.clone()]) else { return };
    let middle = certs.get(1..certs.len().saturating_sub(1)).unwrap_or_default().to_vec();
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    for purpose in [Purpose::Any, Purpose::TlsClient, Purpose::ScepRa, Purpose::OcspSigning] {
        if let Ok(path) = Validator::new(&anchors, &middle, Options::new(purpose)).validate(&target, at) {
            assert_eq!(path.certificates().first(), Some(&target));
            assert_eq!(path.certificates().last(), Some(&anchor));
        }
    }
});
