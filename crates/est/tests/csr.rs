//! PKCS#10: build, satisfy CSR attributes, parse with proof of possession,
//! and the server's check — positive and each way it can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_est::der::asn1::{BitString, SetOfVec};
use enrolkit_est::der::{Decode, Encode, Tagged};
use enrolkit_est::keys::{DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_est::x509_cert::ext::pkix::name::GeneralName;
use enrolkit_est::x509_cert::ext::pkix::SubjectAltName;
use enrolkit_est::x509_cert::request::{CertReq, CertReqInfo, Version};
use enrolkit_est::*;
use std::net::IpAddr;
use zeroize::Zeroizing;

fn full_request() -> CsrRequest {
    let mut r = CsrRequest::new(name("CN=dev-1,O=Example"));
    r.dns_names = vec!["dev-1.example".into(), "dev-1.local".into()];
    r.ip_addresses = vec!["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()];
    r.ekus = vec![oid::KP_CLIENT_AUTH];
    r.challenge_password = Some(Zeroizing::new("s3cret enrolment code".into()));
    r
}

#[test]
fn build_and_parse() {
    for (key, digest) in [
        (ec_key(), DigestAlgorithm::Sha256),
        (rsa_key(), DigestAlgorithm::Sha512),
    ] {
        let mut req = full_request();
        req.digest = digest;
        let der = build_csr(&key, &req).unwrap();
        let csr = ParsedCsr::parse(&der).unwrap();
        assert_eq!(csr.der, der);
        assert_eq!(csr.subject(), &req.subject);
        assert_eq!(csr.dns_names(), req.dns_names);
        assert_eq!(csr.ip_addresses(), req.ip_addresses);
        assert_eq!(csr.requested_ekus(), req.ekus);
        assert_eq!(
            csr.challenge_password.as_deref().map(|s| s.as_str()),
            Some("s3cret enrolment code")
        );
        assert_eq!(csr.public_key_kind().unwrap(), key.kind());
        let san = SubjectAltName::from_der(&csr.subject_alt_name_der().unwrap()).unwrap();
        assert!(matches!(&san.0[0], GeneralName::DnsName(d) if d.as_str() == "dev-1.example"));
        // The password never shows in Debug output.
        let dbg = format!("{csr:?} {req:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}

#[test]
fn challenge_password_string_types() {
    let key = ec_key();
    let mut req = CsrRequest::new(name("CN=x"));
    // Base64 is PrintableString-safe.
    req.challenge_password = Some(Zeroizing::new("AbC+/09=".into()));
    let der = build_csr(&key, &req).unwrap();
    let csr = ParsedCsr::parse(&der).unwrap();
    let attr = csr
        .request
        .info
        .attributes
        .iter()
        .find(|a| a.oid == oid::CHALLENGE_PASSWORD)
        .unwrap();
    assert_eq!(
        attr.values.get(0).unwrap().tag(),
        enrolkit_est::der::Tag::PrintableString
    );
    // Not printable: UTF8String.
    req.challenge_password = Some(Zeroizing::new("pässwörd_!".into()));
    let csr = ParsedCsr::parse(&build_csr(&key, &req).unwrap()).unwrap();
    let attr = csr
        .request
        .info
        .attributes
        .iter()
        .find(|a| a.oid == oid::CHALLENGE_PASSWORD)
        .unwrap();
    assert_eq!(attr.values.get(0).unwrap().tag(), enrolkit_est::der::Tag::Utf8String);
    assert_eq!(csr.challenge_password.unwrap().as_str(), "pässwörd_!");
    // Empty or too long.
    req.challenge_password = Some(Zeroizing::new(String::new()));
    assert!(build_csr(&key, &req).is_err());
    req.challenge_password = Some(Zeroizing::new("x".repeat(256)));
    assert!(build_csr(&key, &req).is_err());
}

#[test]
fn proof_of_possession_checked() {
    let key = ec_key();
    let der = build_csr(&key, &full_request()).unwrap();
    // Change the subject: the signature no longer matches.
    let pos = der.windows(5).position(|w| w == b"dev-1").unwrap();
    let mut tampered = der.clone();
    tampered[pos + 4] = b'2';
    assert_eq!(ParsedCsr::parse(&tampered).unwrap_err(), EstError::BadSignature);
    // Change the signature.
    let mut tampered = der.clone();
    let n = tampered.len();
    tampered[n - 3] ^= 0x55;
    assert!(matches!(
        ParsedCsr::parse(&tampered),
        Err(EstError::BadSignature | EstError::Malformed { .. })
    ));
    // Truncated, garbage, oversized.
    assert!(ParsedCsr::parse(&der[..der.len() - 1]).is_err());
    assert!(ParsedCsr::parse(b"not a csr").is_err());
    assert!(matches!(
        ParsedCsr::parse(&vec![0u8; csr::MAX_CSR + 1]),
        Err(EstError::TooLarge { .. })
    ));
}

/// A CSR whose attributes SET is not in DER order still verifies: the
/// signature is checked over the bytes received, not a re-encoding.
#[test]
fn signature_checked_over_received_bytes() {
    let key = ec_key();
    let pw = enrolkit_est::x509_cert::attr::Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::try_from(vec![enrolkit_est::der::asn1::Any::encode_from(
            &enrolkit_est::der::asn1::PrintableStringRef::new("abc").unwrap(),
        )
        .unwrap()])
        .unwrap(),
    };
    let other = enrolkit_est::x509_cert::attr::Attribute {
        oid: enrolkit_est::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.2"),
        values: SetOfVec::try_from(vec![enrolkit_est::der::asn1::Any::encode_from(
            &enrolkit_est::der::asn1::Ia5String::new("x").unwrap(),
        )
        .unwrap()])
        .unwrap(),
    };
    // unstructuredName (…9.2) sorts before challengePassword (…9.7); put it after.
    let attrs = [pw.to_der().unwrap(), other.to_der().unwrap()].concat();
    let info = tlv(
        0x30,
        &[
            vec![0x02, 0x01, 0x00],
            name("CN=unsorted").to_der().unwrap(),
            key.public_key().to_der().unwrap(),
            tlv(0xa0, &attrs),
        ]
        .concat(),
    );
    let sig = key.sign(SignatureAlgorithm::EcdsaP256Sha256, &info).unwrap();
    let der = tlv(
        0x30,
        &[
            info,
            SignatureAlgorithm::EcdsaP256Sha256
                .algorithm_identifier()
                .to_der()
                .unwrap(),
            BitString::from_bytes(&sig).unwrap().to_der().unwrap(),
        ]
        .concat(),
    );
    let csr = ParsedCsr::parse(&der).unwrap();
    assert_eq!(csr.challenge_password.unwrap().as_str(), "abc");
}

#[test]
fn repeated_challenge_password_rejected() {
    let key = ec_key();
    let value =
        enrolkit_est::der::asn1::Any::encode_from(&enrolkit_est::der::asn1::PrintableStringRef::new("a").unwrap())
            .unwrap();
    let value2 =
        enrolkit_est::der::asn1::Any::encode_from(&enrolkit_est::der::asn1::PrintableStringRef::new("b").unwrap())
            .unwrap();
    let attr = enrolkit_est::x509_cert::attr::Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::try_from(vec![value, value2]).unwrap(),
    };
    let info = CertReqInfo {
        version: Version::V1,
        subject: name("CN=x"),
        public_key: key.public_key().clone(),
        attributes: SetOfVec::try_from(vec![attr]).unwrap(),
    };
    let sig = key
        .sign(SignatureAlgorithm::EcdsaP256Sha256, &info.to_der().unwrap())
        .unwrap();
    let der = CertReq {
        info,
        algorithm: SignatureAlgorithm::EcdsaP256Sha256.algorithm_identifier(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap();
    assert!(matches!(ParsedCsr::parse(&der), Err(EstError::Malformed { .. })));
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

fn enrol(key: &SoftwareKey, attrs: &CsrAttrs) -> ParsedCsr {
    let mut req = CsrRequest::new(name("CN=device-7"));
    req.satisfy(attrs, Some(&binding())).unwrap();
    ParsedCsr::parse(&build_csr(key, &req).unwrap()).unwrap()
}

#[test]
fn satisfy_then_check_satisfies() {
    let attrs = server_attrs();
    let key = ec_key();
    csr::check_key(&attrs, key.kind()).unwrap();
    let mut req = CsrRequest::new(name("CN=device-7"));
    req.digest = DigestAlgorithm::Sha512;
    req.satisfy(&attrs, Some(&binding())).unwrap();
    assert_eq!(req.ekus, vec![oid::KP_CLIENT_AUTH]);
    assert_eq!(req.digest, DigestAlgorithm::Sha256);
    assert_eq!(
        req.challenge_password.as_deref(),
        Some(&binding().challenge_password().to_string())
    );
    let csr = ParsedCsr::parse(&build_csr(&key, &req).unwrap()).unwrap();
    check_satisfies(&attrs, &csr).unwrap();
    assert!(binding().matches(csr.challenge_password.as_ref().unwrap()));
    assert!(!ChannelBinding::tls_exporter(&[0x5b; 32])
        .unwrap()
        .matches(csr.challenge_password.as_ref().unwrap()));
    // Satisfying twice adds nothing twice.
    req.satisfy(&attrs, Some(&binding())).unwrap();
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
    let mut req = CsrRequest::new(name("CN=x"));
    let what = unsatisfied(req.satisfy(&attrs, None));
    assert!(what.contains("challengePassword"), "{what}");
    // An enrolment code already set is kept.
    req.challenge_password = Some(Zeroizing::new("code-123".into()));
    req.satisfy(&attrs, None).unwrap();
    assert_eq!(req.challenge_password.as_deref().map(String::as_str), Some("code-123"));
    // A binding wins over it.
    req.satisfy(&attrs, Some(&binding())).unwrap();
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
    let mut req = CsrRequest::new(name("CN=x"));
    req.ekus = vec![oid::KP_CLIENT_AUTH];
    let csr = ParsedCsr::parse(&build_csr(&ec, &req).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("challengePassword"));

    // No extKeyUsage at all.
    let mut req = CsrRequest::new(name("CN=x"));
    req.challenge_password = Some(binding().challenge_password());
    let csr = ParsedCsr::parse(&build_csr(&ec, &req).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains(&oid::EXT_KEY_USAGE.to_string()));

    // The wrong key purpose.
    req.ekus = vec![oid::KP_SERVER_AUTH];
    let csr = ParsedCsr::parse(&build_csr(&ec, &req).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains(&oid::KP_CLIENT_AUTH.to_string()));

    // RSA where EC P-256 is required (and signed with sha256WithRSA).
    let csr = enrol(&rsa_key(), &attrs);
    let what = unsatisfied(check_satisfies(&attrs, &csr));
    assert!(what.contains("EC key on P-256") && what.contains("RSA-2048"), "{what}");

    // P-256 where P-384 is required.
    let p384 = CsrAttrs::new().with_ec_key(oid::SECP384R1).unwrap();
    let csr = enrol(&ec, &p384);
    assert!(unsatisfied(check_satisfies(&p384, &csr)).contains("P-384"));
    assert!(unsatisfied(csr::check_key(&p384, KeyKind::EcP256)).contains("P-384"));

    // RSA-2048 where RSA-4096 is required.
    let rsa4096 = CsrAttrs::new().with_rsa_key(4096).unwrap();
    let csr = enrol(&rsa_key(), &rsa4096);
    assert!(unsatisfied(check_satisfies(&rsa4096, &csr)).contains("RSA-4096"));
    assert!(unsatisfied(csr::check_key(&rsa4096, KeyKind::Rsa(2048))).contains("RSA-4096"));

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
    let mut req = CsrRequest::new(name("CN=x"));
    req.dns_names = vec!["x.example".into()];
    let csr = ParsedCsr::parse(&build_csr(&ec, &req).unwrap()).unwrap();
    check_satisfies(&san_attrs, &csr).unwrap();

    // Digest enrolkit-keys does not have.
    let sha384 = CsrAttrs::new().with_signature_algorithm(oid::ECDSA_WITH_SHA384);
    let mut req = CsrRequest::new(name("CN=x"));
    assert!(matches!(
        req.satisfy(&sha384, None),
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
    let csr = ParsedCsr::parse(&build_csr(&key, &CsrRequest::new(name("CN=d1,O=Example"))).unwrap()).unwrap();
    check_satisfies(&attrs, &csr).unwrap();
    // The CN to fill in is missing.
    let csr = ParsedCsr::parse(&build_csr(&key, &CsrRequest::new(name("O=Example"))).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("2.5.4.3"));
    // A different O.
    let csr = ParsedCsr::parse(&build_csr(&key, &CsrRequest::new(name("CN=d1,O=Other"))).unwrap()).unwrap();
    assert!(unsatisfied(check_satisfies(&attrs, &csr)).contains("2.5.4.10"));
    // satisfy() on an empty subject takes the valued RDNs (O), not the CN.
    let mut req = CsrRequest::new(enrolkit_est::x509_cert::name::Name::default());
    req.satisfy(&attrs, None).unwrap();
    assert_eq!(req.subject.to_string(), "O=Example");
}

#[test]
fn ip_only_san_is_critical_with_empty_subject() {
    let key = ec_key();
    let mut req = CsrRequest::new(enrolkit_est::x509_cert::name::Name::default());
    req.ip_addresses = vec![IpAddr::from([10, 0, 0, 1])];
    let csr = ParsedCsr::parse(&build_csr(&key, &req).unwrap()).unwrap();
    let san = csr
        .extensions()
        .unwrap()
        .into_iter()
        .find(|e| e.extn_id == oid::SUBJECT_ALT_NAME)
        .unwrap();
    assert!(san.critical);
    assert_eq!(csr.ip_addresses(), req.ip_addresses);
    assert!(csr.dns_names().is_empty());
}
