//! PKCS#10 for EST: satisfy CSR attributes, the server's check — positive
//! and each way it can fail — and how a refused request reads as an
//! [`EstError`]. The PKCS#10 codec's own tests (build, parse, proof of
//! possession, string types, bounds) are in enrolkit-pkix's tests/pkcs10.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_est::der::asn1::SetOfVec;
use enrolkit_est::keys::{DigestAlgorithm, KeyKind, Signer, SoftwareKey};
use enrolkit_est::pkix::pkcs10::{CertificationRequest, RequestParams, MAX_CSR};
use enrolkit_est::*;
use zeroize::Zeroizing;

fn parse(der: &[u8]) -> Result<CertificationRequest> {
    Ok(CertificationRequest::parse(der)?)
}

/// What the server answers a refused request with: a bad self-signature is
/// still `BadSignature`, an oversized request still `TooLarge`.
#[test]
fn pkcs10_refusals_in_est_terms() {
    let key = ec_key();
    let mut req = RequestParams::new(name("CN=dev-1,O=Example"));
    req.dns_names = vec!["dev-1.example".into()];
    let der = req.build(&key).unwrap();
    let pos = der.windows(5).position(|w| w == b"dev-1").unwrap();
    let mut tampered = der.clone();
    tampered[pos + 4] = b'2';
    assert_eq!(parse(&tampered).unwrap_err(), EstError::BadSignature);
    assert!(matches!(parse(&vec![0u8; MAX_CSR + 1]), Err(EstError::TooLarge { .. })));
    assert!(matches!(parse(b"not a csr"), Err(EstError::Malformed { .. })));
    let mut empty = RequestParams::new(name("CN=x"));
    empty.challenge_password = Some(Zeroizing::new(String::new()));
    assert!(matches!(
        empty.build(&key).map_err(EstError::from),
        Err(EstError::Malformed { .. })
    ));
}

fn server_attrs() -> CsrAttrs {
    CsrAttrs::new()
        .with_challenge_password()
        .with_extension_request_ekus(&[oid::KP_CLIENT_AUTH])
        .unwrap()
        .with_ec_key(oid::SECP256R1)
        .unwrap()
        .with_signature_algorithm(oid::ECDSA_WITH_SHA256)
}

fn binding() -> ChannelBinding {
    ChannelBinding::tls_exporter(&[0x5a; TLS_EXPORTER_LEN]).unwrap()
}

fn enrol(key: &SoftwareKey, attrs: &CsrAttrs) -> CertificationRequest {
    let mut req = RequestParams::new(name("CN=device-7"));
    satisfy(&mut req, attrs, Some(&binding())).unwrap();
    CertificationRequest::parse(&req.build(key).unwrap()).unwrap()
}

#[test]
fn satisfy_then_check_satisfies() {
    let attrs = server_attrs();
    let key = ec_key();
    check_key(&attrs, key.kind()).unwrap();
    let mut req = RequestParams::new(name("CN=device-7"));
    req.digest = DigestAlgorithm::Sha512;
    satisfy(&mut req, &attrs, Some(&binding())).unwrap();
    assert_eq!(req.ekus, vec![oid::KP_CLIENT_AUTH]);
    assert_eq!(req.digest, DigestAlgorithm::Sha256);
    assert_eq!(
        req.challenge_password.as_deref(),
        Some(&binding().challenge_password().to_string())
    );
    let csr = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap();
    check_satisfies(&attrs, &csr).unwrap();
    assert!(binding().matches(csr.challenge_password().unwrap()));
    assert!(!ChannelBinding::tls_exporter(&[0x5b; 32])
        .unwrap()
        .matches(csr.challenge_password().unwrap()));
    // Satisfying twice adds nothing twice.
    satisfy(&mut req, &attrs, Some(&binding())).unwrap();
    assert_eq!(req.ekus, vec![oid::KP_CLIENT_AUTH]);
}

fn unsatisfied(r: Result<()>) -> String {
    match r {
        Err(EstError::Unsatisfied { what }) => what,
        other => panic!("expected Unsatisfied, got {other:?}"),
    }
}

#[test]
fn satisfy_without_binding() {
    let attrs = server_attrs();
    let mut req = RequestParams::new(name("CN=x"));
    let what = unsatisfied(satisfy(&mut req, &attrs, None));
    assert!(what.contains("challengePassword"), "{what}");
    // An enrolment code already set is kept.
    req.challenge_password = Some(Zeroizing::new("code-123".into()));
    satisfy(&mut req, &attrs, None).unwrap();
    assert_eq!(req.challenge_password.as_deref().map(String::as_str), Some("code-123"));
    // A binding wins over it.
    satisfy(&mut req, &attrs, Some(&binding())).unwrap();
    assert_eq!(
        req.challenge_password.unwrap().as_str(),
        binding().challenge_password().as_str()
    );
}

#[test]
fn check_satisfies_each_negative() {
    let attrs = server_attrs();
    let ec = ec_key();

    // No challengePassword.
    let mut req = RequestParams::new(name("CN=x"));
    req.ekus = vec![oid::KP_CLIENT_AUTH];
    let csr = CertificationRequest::parse(&req.build(&ec).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("challengePassword"));

    // No extKeyUsage at all.
    let mut req = RequestParams::new(name("CN=x"));
    req.challenge_password = Some(binding().challenge_password());
    let csr = CertificationRequest::parse(&req.build(&ec).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains(&oid::EXT_KEY_USAGE.to_string()));

    // The wrong key purpose.
    req.ekus = vec![oid::KP_SERVER_AUTH];
    let csr = CertificationRequest::parse(&req.build(&ec).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains(&oid::KP_CLIENT_AUTH.to_string()));

    // RSA where EC P-256 is required (and signed with sha256WithRSA).
    let csr = enrol(&rsa_key(), &attrs);
    let what = unsatisfied(check_satisfies(&attrs, &csr));
    assert!(what.contains("EC key on P-256") && what.contains("RSA-2048"), "{what}");

    // P-256 where P-384 is required.
    let p384 = CsrAttrs::new().with_ec_key(oid::SECP384R1).unwrap();
    let csr = enrol(&ec, &p384);
    assert!(unsatisfied(check_satisfies(&p384, &csr)).contains("P-384"));
    assert!(unsatisfied(check_key(&p384, KeyKind::EcP256)).contains("P-384"));

    // RSA-2048 where RSA-4096 is required.
    let rsa4096 = CsrAttrs::new().with_rsa_key(4096).unwrap();
    let csr = enrol(&rsa_key(), &rsa4096);
    assert!(unsatisfied(check_satisfies(&rsa4096, &csr)).contains("RSA-4096"));
    assert!(unsatisfied(check_key(&rsa4096, KeyKind::Rsa(2048))).contains("RSA-4096"));

    // Signed with SHA-256 where sha512WithRSAEncryption is required.
    let sha512 = CsrAttrs::new().with_signature_algorithm(oid::SHA512_WITH_RSA);
    let csr = enrol(&rsa_key(), &CsrAttrs::new());
    assert!(unsatisfied(check_satisfies(&sha512, &csr)).contains(&oid::SHA512_WITH_RSA.to_string()));
    // …and satisfied when the client follows it.
    let csr = enrol(&rsa_key(), &sha512);
    check_satisfies(&sha512, &csr).unwrap();

    // A required subjectAltName (to fill in) that is missing.
    let san_attrs = CsrAttrs::new()
        .with_attribute(
            oid::EXTENSION_REQ_TEMPLATE,
            enrolkit_est::der::asn1::Any::encode_from(&vec![ExtensionTemplate {
                extn_id: oid::SUBJECT_ALT_NAME,
                critical: false,
                extn_value: None,
            }])
            .unwrap(),
        )
        .unwrap();
    let csr = enrol(&ec, &CsrAttrs::new());
    assert!(unsatisfied(check_satisfies(&san_attrs, &csr)).contains(&oid::SUBJECT_ALT_NAME.to_string()));
    let mut req = RequestParams::new(name("CN=x"));
    req.dns_names = vec!["x.example".into()];
    let csr = CertificationRequest::parse(&req.build(&ec).unwrap()).unwrap();
    check_satisfies(&san_attrs, &csr).unwrap();

    // Digest enrolkit-keys does not have.
    let sha384 = CsrAttrs::new().with_signature_algorithm(oid::ECDSA_WITH_SHA384);
    let mut req = RequestParams::new(name("CN=x"));
    assert!(matches!(
        satisfy(&mut req, &sha384, None),
        Err(EstError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn template_subject_checked() {
    let cn = SingleAttributeTemplate {
        oid: oid::COMMON_NAME,
        value: None,
    };
    let o = SingleAttributeTemplate {
        oid: enrolkit_est::der::asn1::ObjectIdentifier::new_unwrap("2.5.4.10"),
        value: Some(
            enrolkit_est::der::asn1::Any::encode_from(&enrolkit_est::der::asn1::Utf8StringRef::new("Example").unwrap())
                .unwrap(),
        ),
    };
    let template = CertificationRequestInfoTemplate {
        subject: Some(vec![
            SetOfVec::try_from(vec![o]).unwrap(),
            SetOfVec::try_from(vec![cn]).unwrap(),
        ]),
        ..Default::default()
    };
    let attrs = CsrAttrs::new().with_template(template).unwrap();
    let key = ec_key();

    // O given as a PrintableString matches the template's UTF8String value.
    let csr = CertificationRequest::parse(&RequestParams::new(name("CN=d1,O=Example")).build(&key).unwrap()).unwrap();
    check_satisfies(&attrs, &csr).unwrap();
    // The CN to fill in is missing.
    let csr = CertificationRequest::parse(&RequestParams::new(name("O=Example")).build(&key).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("2.5.4.3"));
    // A different O.
    let csr = CertificationRequest::parse(&RequestParams::new(name("CN=d1,O=Other")).build(&key).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("2.5.4.10"));
    // satisfy() on an empty subject takes the valued RDNs (O), not the CN.
    let mut req = RequestParams::new(enrolkit_est::x509_cert::name::Name::default());
    satisfy(&mut req, &attrs, None).unwrap();
    assert_eq!(req.subject.to_string(), "O=Example");
}
