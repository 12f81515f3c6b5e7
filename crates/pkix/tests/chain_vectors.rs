//! The chain validator against certificates made by another X.509
//! implementation (Python `cryptography`, see
//! `testvectors/pkix/chains/make_chains.py` and its `VERSION`): each case
//! breaks one RFC 5280 rule, and must fail with the error that names it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use der::Decode;
use enrolkit_pkix::{Anchors, Options, PathError, Purpose, Validator};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// The time every case is validated at: 2027-06-01T00:00:00Z.
fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_811_808_000)
}

fn load(name: &str) -> Certificate {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors/pkix/chains")
        .join(name);
    let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Certificate::from_der(&der).unwrap()
}

fn validate(anchor: &str, intermediates: &[&str], target: &str, options: Options) -> Result<usize, PathError> {
    let anchors = Anchors::new(vec![load(anchor)]).unwrap();
    let inter: Vec<Certificate> = intermediates.iter().map(|n| load(n)).collect();
    Validator::new(&anchors, &inter, options)
        .validate(&load(target), at())
        .map(|p| p.certificates().len())
}

fn tls_server() -> Options {
    Options::new(Purpose::TlsServer)
}

#[test]
fn the_good_chain_validates_through_the_intermediate_to_the_root() {
    assert_eq!(
        validate("root.der", &["intermediate.der"], "leaf.der", tls_server()).unwrap(),
        3
    );
    assert_eq!(
        validate(
            "root.der",
            &["intermediate.der"],
            "leaf.der",
            Options::new(Purpose::TlsClient)
        )
        .unwrap(),
        3
    );
}

#[test]
fn an_intermediate_can_be_the_pinned_anchor() {
    assert_eq!(validate("intermediate.der", &[], "leaf.der", tls_server()).unwrap(), 2);
}

#[test]
fn without_the_intermediate_there_is_no_path() {
    let e = validate("root.der", &[], "leaf.der", tls_server()).unwrap_err();
    assert!(matches!(e, PathError::NoIssuer { .. }), "{e}");
}

#[test]
fn an_expired_certificate_is_refused() {
    let e = validate("root.der", &["intermediate.der"], "leaf-expired.der", tls_server()).unwrap_err();
    assert!(matches!(e, PathError::Expired { .. }), "{e}");
}

#[test]
fn a_not_yet_valid_certificate_is_refused() {
    let e = validate(
        "root.der",
        &["intermediate.der"],
        "leaf-not-yet-valid.der",
        tls_server(),
    )
    .unwrap_err();
    assert!(matches!(e, PathError::NotYetValid { .. }), "{e}");
}

#[test]
fn a_wrong_extended_key_usage_is_refused() {
    let e = validate("root.der", &["intermediate.der"], "leaf-client-only.der", tls_server()).unwrap_err();
    assert!(matches!(e, PathError::WrongPurpose { .. }), "{e}");
    // OCSP signing and the SCEP RA must be named; no EKU is not enough.
    for purpose in [Purpose::OcspSigning, Purpose::ScepRa] {
        let e = validate(
            "root.der",
            &["intermediate.der"],
            "leaf-no-eku.der",
            Options::new(purpose),
        )
        .unwrap_err();
        assert!(matches!(e, PathError::WrongPurpose { .. }), "{purpose}: {e}");
    }
    assert!(validate("root.der", &["intermediate.der"], "leaf-no-eku.der", tls_server()).is_ok());
    let ocsp = Options::new(Purpose::OcspSigning);
    assert!(validate("intermediate.der", &[], "leaf-ocsp-signing.der", ocsp).is_ok());
}

#[test]
fn an_issuer_without_ca_true_is_refused() {
    let e = validate(
        "root.der",
        &["intermediate.der", "not-ca.der"],
        "leaf-under-not-ca.der",
        tls_server(),
    )
    .unwrap_err();
    assert!(matches!(e, PathError::NotCa { .. }), "{e}");
}

#[test]
fn a_path_longer_than_path_len_allows_is_refused() {
    let e = validate(
        "root.der",
        &["intermediate.der", "sub-ca.der"],
        "leaf-under-sub-ca.der",
        tls_server(),
    )
    .unwrap_err();
    assert!(matches!(e, PathError::PathLenExceeded { .. }), "{e}");
    // The sub-CA pinned as the anchor is trusted as itself: no pathLen above it.
    assert_eq!(
        validate("sub-ca.der", &[], "leaf-under-sub-ca.der", tls_server()).unwrap(),
        2
    );
}

#[test]
fn an_issuer_name_that_differs_is_refused_even_though_the_key_signed_it() {
    let e = validate(
        "root.der",
        &["intermediate.der"],
        "leaf-wrong-issuer-name.der",
        tls_server(),
    )
    .unwrap_err();
    assert!(
        matches!(e, PathError::NoIssuer { .. } | PathError::NameMismatch { .. }),
        "{e}"
    );
    let e = validate("intermediate.der", &[], "leaf-wrong-issuer-name.der", tls_server()).unwrap_err();
    assert!(
        matches!(e, PathError::NoIssuer { .. } | PathError::NameMismatch { .. }),
        "{e}"
    );
}

#[test]
fn an_unknown_critical_extension_is_refused_and_a_non_critical_one_ignored() {
    let e = validate(
        "root.der",
        &["intermediate.der"],
        "leaf-unknown-critical.der",
        tls_server(),
    )
    .unwrap_err();
    assert!(matches!(e, PathError::UnknownCriticalExtension { .. }), "{e}");
    assert!(validate(
        "root.der",
        &["intermediate.der"],
        "leaf-unknown-noncritical.der",
        tls_server()
    )
    .is_ok());
}

#[test]
fn a_sha1_signature_is_refused_unless_allowed() {
    let e = validate("rsa-root.der", &[], "rsa-leaf-sha1.der", tls_server()).unwrap_err();
    assert!(matches!(e, PathError::Sha1Refused { .. }), "{e}");
    assert!(validate("rsa-root.der", &[], "rsa-leaf-sha1.der", tls_server().with_sha1(true)).is_ok());
}

#[test]
fn an_rsa_chain_with_sha384_validates_and_a_foreign_root_does_not() {
    assert_eq!(validate("rsa-root.der", &[], "rsa-leaf.der", tls_server()).unwrap(), 2);
    let e = validate("root.der", &["intermediate.der"], "rsa-leaf.der", tls_server()).unwrap_err();
    assert!(matches!(e, PathError::NoIssuer { .. }), "{e}");
}
