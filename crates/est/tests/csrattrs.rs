//! CSR attributes: the RFC 7030 and RFC 9908 examples, the builders and
//! readers, RFC 9908 templates, bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::tlv;
use enrolkit_est::der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef};
use enrolkit_est::der::{Decode, Encode};
use enrolkit_est::keys::KeyKind;
use enrolkit_est::x509_cert::ext::pkix::name::GeneralName;
use enrolkit_est::x509_cert::ext::pkix::SubjectAltName;
use enrolkit_est::*;

fn b64(s: &str) -> Vec<u8> {
    decode_base64(s.as_bytes(), MAX_BODY).unwrap()
}

/// RFC 7030 §4.5.2 / appendix A.2: challengePassword, an EC key on
/// secp384r1, an extensionRequest whose value is the macAddress OID, and
/// ecdsa-with-SHA384.
const RFC7030_EXAMPLE: &str =
    "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";

#[test]
fn rfc7030_appendix_a2_example() {
    let der = b64(RFC7030_EXAMPLE);
    let attrs = CsrAttrs::from_der(&der).unwrap();
    assert_eq!(attrs.items.len(), 4);
    assert!(attrs.challenge_password_requested());
    assert_eq!(
        attrs.key_requirement(),
        Some(KeyRequirement::Ec { curve: oid::SECP384R1 })
    );
    assert_eq!(attrs.signature_algorithm(), Some(oid::ECDSA_WITH_SHA384));
    // The extensionRequest holds a bare OID (macAddress, 1.3.6.1.1.1.1.22)
    // where Extensions belong: RFC 9908 calls the example incorrect. It is
    // kept readable, and yields no extension or key purpose.
    let ext_req: Vec<_> = attrs.attributes().filter(|a| a.oid == oid::EXTENSION_REQUEST).collect();
    assert_eq!(ext_req.len(), 1);
    assert_eq!(ext_req[0].values.len(), 1);
    assert_eq!(attrs.extension_request_oids(), vec![oid::MAC_ADDRESS]);
    assert!(attrs.requested_extensions().is_empty());
    assert!(attrs.requested_ekus().is_empty());
    assert_eq!(
        attrs.oids().copied().collect::<Vec<_>>(),
        vec![oid::CHALLENGE_PASSWORD, oid::ECDSA_WITH_SHA384]
    );
    assert_eq!(attrs.template().unwrap(), None);
    // Byte-for-byte re-encoding.
    assert_eq!(attrs.to_der().unwrap(), der);
    // What an enrolkit client can do with it: a P-256 key does not fit, and
    // SHA-384 is not available.
    let err = csr::check_key(&attrs, KeyKind::EcP256).unwrap_err();
    assert!(err.to_string().contains("P-384"), "{err}");
    let mut req = enrolkit_est::pkix::pkcs10::RequestParams::new(common::name("CN=x"));
    let b = ChannelBinding::tls_unique(&[1; 12]).unwrap();
    assert!(matches!(
        csr::satisfy(&mut req, &attrs, Some(&b)),
        Err(EstError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn rfc9908_examples() {
    // §5.1: a subjectAltName with an ACP otherName, in id-ExtensionReq.
    let acp = b64("MGgwZgYJKoZIhvcNAQkOMVkwVzBVBgNVHREBAf8ESzBJoEcGCCsGAQUFBwgKoDsWOXJmYzg5OTQrZmQ3MzlmYzIzYzM0NDAxMTIyMzM0NDU1MDAwMDAwMDArQGFjcC5leGFtcGxlLmNvbQ==");
    let attrs = CsrAttrs::from_der(&acp).unwrap();
    assert_eq!(attrs.to_der().unwrap(), acp);
    let exts = attrs.requested_extensions();
    assert_eq!(exts.len(), 1);
    assert_eq!(exts[0].extn_id, oid::SUBJECT_ALT_NAME);
    assert!(exts[0].critical);
    let san = SubjectAltName::from_der(exts[0].extn_value.as_ref().unwrap().as_bytes()).unwrap();
    assert!(matches!(&san.0[0], GeneralName::OtherName(_)));
    assert!(!attrs.challenge_password_requested());
    assert_eq!(attrs.key_requirement(), None);

    // §5.2: P-384, macAddress as a bare OID, ecdsa-with-SHA384.
    let attrs = CsrAttrs::from_der(&b64(
        "MDIGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiBgcrBgEBAQEWBggqhkjOPQQDAw==",
    ))
    .unwrap();
    assert!(attrs.challenge_password_requested());
    assert_eq!(
        attrs.key_requirement(),
        Some(KeyRequirement::Ec { curve: oid::SECP384R1 })
    );
    assert!(attrs.oids().any(|o| *o == oid::MAC_ADDRESS));
    assert_eq!(attrs.signature_algorithm(), Some(oid::ECDSA_WITH_SHA384));

    // §5.3: P-521, friendlyName, favouriteDrink, serialNumber, ecdsa-with-SHA512.
    let attrs = CsrAttrs::from_der(&b64(
        "MEUGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAjBgkqhkiG9w0BCRQGCgmSJomT8ixkAQUGA1UEBQYIKoZIzj0EAwQ=",
    ))
    .unwrap();
    assert_eq!(
        attrs.key_requirement(),
        Some(KeyRequirement::Ec { curve: oid::SECP521R1 })
    );
    assert_eq!(attrs.signature_algorithm(), Some(oid::ECDSA_WITH_SHA512));
    assert_eq!(attrs.oids().count(), 5);

    // §5.4: an RSA key of 4096 bits, sha256WithRSAEncryption.
    let attrs = CsrAttrs::from_der(&b64("MCkGCSqGSIb3DQEJBzARBgkqhkiG9w0BAQExBAICEAAGCSqGSIb3DQEBCw==")).unwrap();
    assert_eq!(attrs.key_requirement(), Some(KeyRequirement::Rsa { bits: Some(4096) }));
    assert_eq!(attrs.signature_algorithm(), Some(oid::SHA256_WITH_RSA));
    assert!(csr::check_key(&attrs, KeyKind::Rsa(4096)).is_ok());
    assert!(matches!(
        csr::check_key(&attrs, KeyKind::Rsa(2048)),
        Err(EstError::Unsatisfied { .. })
    ));
    assert!(matches!(
        csr::check_key(&attrs, KeyKind::EcP256),
        Err(EstError::Unsatisfied { .. })
    ));
}

#[test]
fn builders_roundtrip_and_readers() {
    let attrs = CsrAttrs::new()
        .with_challenge_password()
        .with_extension_request_ekus(&[oid::KP_CLIENT_AUTH])
        .unwrap()
        .with_extension_request_ekus(&[oid::KP_CLIENT_AUTH, oid::KP_SERVER_AUTH])
        .unwrap()
        .with_ec_key(oid::SECP256R1)
        .unwrap()
        .with_signature_algorithm(oid::ECDSA_WITH_SHA256);
    // One extensionRequest attribute, the EKU replaced rather than repeated (RFC 9908).
    assert_eq!(
        attrs.attributes().filter(|a| a.oid == oid::EXTENSION_REQUEST).count(),
        1
    );
    let der = attrs.to_der().unwrap();
    let back = CsrAttrs::from_der(&der).unwrap();
    assert_eq!(back, attrs);
    assert!(back.challenge_password_requested());
    assert_eq!(back.requested_ekus(), vec![oid::KP_CLIENT_AUTH, oid::KP_SERVER_AUTH]);
    assert_eq!(
        back.key_requirement(),
        Some(KeyRequirement::Ec { curve: oid::SECP256R1 })
    );
    assert_eq!(back.signature_algorithm(), Some(oid::ECDSA_WITH_SHA256));
    assert!(csr::check_key(&back, KeyKind::EcP256).is_ok());
    assert!(csr::check_key(&back, KeyKind::Rsa(2048)).is_err());

    let rsa = CsrAttrs::new().with_rsa_key(3072).unwrap();
    let back = CsrAttrs::from_der(&rsa.to_der().unwrap()).unwrap();
    assert_eq!(back.key_requirement(), Some(KeyRequirement::Rsa { bits: Some(3072) }));
    let bare = CsrAttrs::new().with_oid(oid::RSA_ENCRYPTION);
    assert_eq!(bare.key_requirement(), Some(KeyRequirement::Rsa { bits: None }));
    assert!(csr::check_key(&bare, KeyKind::Rsa(2048)).is_ok());

    // Empty: "no requirements".
    let empty = CsrAttrs::from_der(&[0x30, 0x00]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.to_der().unwrap(), [0x30, 0x00]);
    assert!(csr::check_key(&empty, KeyKind::EcP256).is_ok());
}

fn utf8(s: &str) -> Any {
    Any::encode_from(&Utf8StringRef::new(s).unwrap()).unwrap()
}

/// The template example of RFC 9908: CN to fill in, two OUs given,
/// an EC key on secp256r1, subjectAltName with a DNS name and an empty IP
/// address, a critical keyUsage, an extKeyUsage to fill in.
fn rfc9908_template_der() -> Vec<u8> {
    let rdn = |oid_str: &str, value: Option<&str>| {
        let mut atv = ObjectIdentifier::new_unwrap(oid_str).to_der().unwrap();
        if let Some(v) = value {
            atv.extend(tlv(0x0c, v.as_bytes()));
        }
        tlv(0x31, &tlv(0x30, &atv))
    };
    let subject = tlv(
        0x30,
        &[
            rdn("2.5.4.3", None),
            rdn("2.5.4.11", Some("myDept")),
            rdn("2.5.4.11", Some("myGroup")),
        ]
        .concat(),
    );
    let spki = tlv(
        0xa0,
        &tlv(
            0x30,
            &[oid::EC_PUBLIC_KEY.to_der().unwrap(), oid::SECP256R1.to_der().unwrap()].concat(),
        ),
    );
    let san_value = tlv(0x30, &[tlv(0x82, b"www.myServer.com"), tlv(0x87, b"")].concat());
    let san = tlv(
        0x30,
        &[oid::SUBJECT_ALT_NAME.to_der().unwrap(), tlv(0x04, &san_value)].concat(),
    );
    let ku_oid = ObjectIdentifier::new_unwrap("2.5.29.15").to_der().unwrap();
    let ku = tlv(
        0x30,
        &[ku_oid, vec![0x01, 0x01, 0xff], tlv(0x04, &[0x03, 0x02, 0x03, 0x88])].concat(),
    );
    let eku = tlv(0x30, &oid::EXT_KEY_USAGE.to_der().unwrap());
    let ext_templates = tlv(0x30, &[san, ku, eku].concat());
    let attr = tlv(
        0x30,
        &[oid::EXTENSION_REQ_TEMPLATE.to_der().unwrap(), tlv(0x31, &ext_templates)].concat(),
    );
    let template = tlv(
        0x30,
        &[vec![0x02, 0x01, 0x00], subject, spki, tlv(0xa1, &attr)].concat(),
    );
    let item = tlv(
        0x30,
        &[
            oid::CERTIFICATION_REQUEST_INFO_TEMPLATE.to_der().unwrap(),
            tlv(0x31, &template),
        ]
        .concat(),
    );
    tlv(0x30, &item)
}

#[test]
fn rfc9908_template_example() {
    let der = rfc9908_template_der();
    let attrs = CsrAttrs::from_der(&der).unwrap();
    assert_eq!(attrs.to_der().unwrap(), der);
    let t = attrs.template().unwrap().unwrap();
    assert_eq!(t.version, enrolkit_est::x509_cert::request::Version::V1);
    assert_eq!(
        t.subject_attribute_types(),
        vec![
            oid::COMMON_NAME,
            ObjectIdentifier::new_unwrap("2.5.4.11"),
            ObjectIdentifier::new_unwrap("2.5.4.11")
        ]
    );
    let subject = t.subject_name().unwrap().unwrap();
    assert_eq!(subject.0.len(), 2);
    assert_eq!(subject.to_string(), "OU=myGroup,OU=myDept");
    assert_eq!(t.key_requirement(), Some(KeyRequirement::Ec { curve: oid::SECP256R1 }));
    assert_eq!(
        attrs.key_requirement(),
        Some(KeyRequirement::Ec { curve: oid::SECP256R1 })
    );
    let exts = attrs.requested_extensions();
    assert_eq!(exts.len(), 3);
    assert_eq!(exts[0].extn_id, oid::SUBJECT_ALT_NAME);
    assert!(exts[1].critical);
    assert_eq!(exts[2].extn_id, oid::EXT_KEY_USAGE);
    assert_eq!(exts[2].extn_value, None);
    // An extKeyUsage to fill in names no key purpose.
    assert!(attrs.requested_ekus().is_empty());
    assert!(!attrs.challenge_password_requested());

    // A client applies the template: subject from the given RDNs, the
    // DNS name from the subjectAltName value (the empty IP is its to fill).
    let mut req = enrolkit_est::pkix::pkcs10::RequestParams::new(enrolkit_est::x509_cert::name::Name::default());
    csr::satisfy(&mut req, &attrs, None).unwrap();
    assert_eq!(req.subject, subject);
    assert_eq!(req.dns_names, vec!["www.myServer.com".to_owned()]);
    assert!(req.ip_addresses.is_empty());
}

#[test]
fn template_roundtrip_through_builder() {
    let eku_value = OctetString::new(
        enrolkit_est::x509_cert::ext::pkix::ExtendedKeyUsage(vec![oid::KP_CLIENT_AUTH])
            .to_der()
            .unwrap(),
    )
    .unwrap();
    let ext_req: Vec<ExtensionTemplate> = vec![
        ExtensionTemplate {
            extn_id: oid::EXT_KEY_USAGE,
            critical: false,
            extn_value: Some(eku_value),
        },
        ExtensionTemplate {
            extn_id: oid::SUBJECT_ALT_NAME,
            critical: false,
            extn_value: None,
        },
    ];
    let attr = enrolkit_est::x509_cert::attr::Attribute {
        oid: oid::EXTENSION_REQ_TEMPLATE,
        values: SetOfVec::try_from(vec![Any::encode_from(&ext_req).unwrap()]).unwrap(),
    };
    let cn = SingleAttributeTemplate {
        oid: oid::COMMON_NAME,
        value: None,
    };
    let o = SingleAttributeTemplate {
        oid: ObjectIdentifier::new_unwrap("2.5.4.10"),
        value: Some(utf8("Example")),
    };
    let template = CertificationRequestInfoTemplate {
        subject: Some(vec![
            SetOfVec::try_from(vec![o]).unwrap(),
            SetOfVec::try_from(vec![cn]).unwrap(),
        ]),
        subject_pk_info: Some(SubjectPublicKeyInfoTemplate {
            algorithm: enrolkit_est::x509_cert::spki::AlgorithmIdentifierOwned {
                oid: oid::RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
            subject_public_key: None,
        }),
        attributes: SetOfVec::try_from(vec![attr]).unwrap(),
        ..Default::default()
    };
    let attrs = CsrAttrs::new()
        .with_challenge_password()
        .with_template(template.clone())
        .unwrap();
    let back = CsrAttrs::from_der(&attrs.to_der().unwrap()).unwrap();
    assert_eq!(back, attrs);
    assert_eq!(back.template().unwrap(), Some(template));
    assert_eq!(back.requested_ekus(), vec![oid::KP_CLIENT_AUTH]);
    assert_eq!(back.key_requirement(), Some(KeyRequirement::Rsa { bits: None }));
    assert_eq!(
        back.template()
            .unwrap()
            .unwrap()
            .subject_name()
            .unwrap()
            .unwrap()
            .to_string(),
        "O=Example"
    );
}

#[test]
fn template_rsa_placeholder_gives_the_size() {
    let key = common::rsa_key();
    use enrolkit_est::keys::Signer;
    let template = CertificationRequestInfoTemplate {
        subject_pk_info: Some(SubjectPublicKeyInfoTemplate {
            algorithm: key.public_key().algorithm.clone(),
            subject_public_key: Some(key.public_key().subject_public_key.clone()),
        }),
        ..Default::default()
    };
    let attrs = CsrAttrs::new().with_template(template).unwrap();
    let back = CsrAttrs::from_der(&attrs.to_der().unwrap()).unwrap();
    assert_eq!(back.key_requirement(), Some(KeyRequirement::Rsa { bits: Some(2048) }));
}

#[test]
fn two_templates_rejected() {
    let t = CertificationRequestInfoTemplate::default();
    let attrs = CsrAttrs::new()
        .with_template(t.clone())
        .unwrap()
        .with_template(t)
        .unwrap();
    assert!(attrs.template().is_err());
}

#[test]
fn malformed_and_bounds() {
    // Not a SEQUENCE; an INTEGER item; truncated; trailing bytes.
    assert!(CsrAttrs::from_der(&[0x31, 0x00]).is_err());
    assert!(CsrAttrs::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    assert!(CsrAttrs::from_der(&[0x30, 0x05, 0x06, 0x03, 0x55]).is_err());
    assert!(CsrAttrs::from_der(&[0x30, 0x00, 0x00]).is_err());
    assert!(CsrAttrs::from_der(&[]).is_err());
    // Too many values in one attribute: refused before the SET is sorted.
    let mut values = Vec::new();
    for i in 0..=64u8 {
        values.extend(tlv(0x02, &[0x01, i]));
    }
    let attr = tlv(
        0x30,
        &[oid::CHALLENGE_PASSWORD.to_der().unwrap(), tlv(0x31, &values)].concat(),
    );
    assert!(matches!(
        CsrAttrs::from_der(&tlv(0x30, &attr)),
        Err(EstError::TooLarge { .. })
    ));
    // Too many items.
    let mut items = Vec::new();
    for _ in 0..=csrattrs::MAX_ITEMS {
        items.extend(oid::CHALLENGE_PASSWORD.to_der().unwrap());
    }
    assert!(matches!(
        CsrAttrs::from_der(&tlv(0x30, &items)),
        Err(EstError::TooLarge { .. })
    ));
    // Deep nesting.
    let mut deep = vec![0x05, 0x00];
    for _ in 0..40 {
        deep = tlv(0x30, &deep);
    }
    assert!(CsrAttrs::from_der(&deep).is_err());
}

#[test]
fn oids_beyond_const_oid_are_kept_but_malformed_ones_refused() {
    use enrolkit_est::csrattrs::AttrOrOid;
    // 2.999 (first subidentifier 1079: two bytes) as a bare OID and as an
    // attribute type: kept verbatim, ignored by the readers.
    let foreign = [
        0x30, 0x0d, 0x06, 0x02, 0x88, 0x37, 0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x03, 0x31, 0x00,
    ];
    // The second item is commonName (2.5.4.3) with an empty SET: an ordinary attribute.
    let a = CsrAttrs::from_der(&foreign).unwrap();
    assert!(matches!(a.items[0], AttrOrOid::Unrecognised(_)));
    assert!(matches!(a.items[1], AttrOrOid::Attribute(_)), "{:?}", a.items[1]);
    assert_eq!(a.oids().count(), 0);
    assert_eq!(a.to_der().unwrap(), foreign);
    let attr = [0x30, 0x09, 0x30, 0x07, 0x06, 0x02, 0x88, 0x37, 0x31, 0x01, 0x05];
    assert!(CsrAttrs::from_der(&attr).is_err(), "SET content must be whole TLVs");
    let attr = [0x30, 0x0a, 0x30, 0x08, 0x06, 0x02, 0x88, 0x37, 0x31, 0x02, 0x05, 0x00];
    let a = CsrAttrs::from_der(&attr).unwrap();
    assert!(matches!(a.items[0], AttrOrOid::Unrecognised(_)));
    assert_eq!(a.attributes().count(), 0);
    // Not a well-formed OID: a leading 0x80 pad, or a truncated subidentifier.
    for bad in [
        [0x30, 0x04, 0x06, 0x02, 0x80, 0x01],
        [0x30, 0x04, 0x06, 0x02, 0x2a, 0x86],
    ] {
        assert!(CsrAttrs::from_der(&bad).is_err(), "{bad:02x?}");
    }
}
