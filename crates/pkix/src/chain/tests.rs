//! One test per rule of the validator, each with a case that passes and
//! one that fails. Certificates are made here, at a fixed time, so each
//! case can break exactly one thing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use crate::purpose::{
    ANY_EXTENDED_KEY_USAGE, ID_KP_CLIENT_AUTH, ID_KP_CMC_RA, ID_KP_SERVER_AUTH, MS_CERT_REQUEST_AGENT,
};
use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString};
use der::flagset::FlagSet;
use der::Encode;
use enrolkit_keys::{KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
use std::str::FromStr;
use std::time::UNIX_EPOCH;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

const DAY: Duration = Duration::from_secs(86400);

fn t0() -> SystemTime {
    // 2026-01-01T00:00:00Z
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// What to put in a test certificate.
#[derive(Clone)]
struct Spec {
    subject: String,
    ca: Option<(bool, Option<u8>)>,
    key_usage: Option<FlagSet<KeyUsages>>,
    eku: Option<Vec<ObjectIdentifier>>,
    not_before: SystemTime,
    not_after: SystemTime,
    alg: Option<SignatureAlgorithm>,
    extra: Vec<Extension>,
}

fn spec(subject: &str) -> Spec {
    Spec {
        subject: subject.into(),
        ca: None,
        key_usage: None,
        eku: None,
        not_before: t0() - DAY,
        not_after: t0() + 365 * DAY,
        alg: None,
        extra: vec![],
    }
}

fn ca_spec(subject: &str) -> Spec {
    Spec {
        ca: Some((true, None)),
        key_usage: Some(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        ..spec(subject)
    }
}

fn ext(id: ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
    Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

struct Made {
    key: SoftwareKey,
    cert: Certificate,
}

fn ec() -> SoftwareKey {
    SoftwareKey::generate(KeySpec::EcP256).unwrap()
}

/// A certificate for `key` described by `s`, signed by `issuer` (self-signed when None).
fn make(s: &Spec, key: SoftwareKey, issuer: Option<&Made>) -> Made {
    let subject = Name::from_str(&s.subject).unwrap();
    let (issuer_name, signer): (Name, &SoftwareKey) = match issuer {
        Some(i) => (i.cert.tbs_certificate.subject.clone(), &i.key),
        None => (subject.clone(), &key),
    };
    let alg = s.alg.unwrap_or(match signer.kind() {
        enrolkit_keys::KeyKind::EcP256 => SignatureAlgorithm::EcdsaP256Sha256,
        enrolkit_keys::KeyKind::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
    });
    let mut exts = vec![];
    if let Some((ca, path_len)) = s.ca {
        exts.push(ext(
            rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca,
                path_len_constraint: path_len,
            },
        ));
    }
    if let Some(ku) = s.key_usage {
        exts.push(ext(rfc5280::ID_CE_KEY_USAGE, true, &KeyUsage(ku)));
    }
    if let Some(eku) = &s.eku {
        exts.push(ext(rfc5280::ID_CE_EXT_KEY_USAGE, false, &ExtendedKeyUsage(eku.clone())));
    }
    exts.extend(s.extra.iter().cloned());
    let serial: [u8; 8] = rand_serial();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).unwrap(),
        signature: alg.algorithm_identifier(),
        issuer: issuer_name,
        validity: Validity {
            not_before: Time::try_from(s.not_before).unwrap(),
            not_after: Time::try_from(s.not_after).unwrap(),
        },
        subject,
        subject_public_key_info: key.public_key().clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: if exts.is_empty() { None } else { Some(exts) },
    };
    let sig = signer.sign(alg, &tbs.to_der().unwrap()).unwrap();
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&sig).unwrap(),
    };
    Made { key, cert }
}

fn rand_serial() -> [u8; 8] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    (N.fetch_add(1, Ordering::Relaxed) | 1 << 56).to_be_bytes()
}

/// Root → issuing CA → leaf, the usual shape.
struct Pki {
    root: Made,
    ica: Made,
    leaf: Made,
}

fn pki() -> Pki {
    let root = make(&ca_spec("CN=Root"), ec(), None);
    let ica = make(&ca_spec("CN=Issuing"), ec(), Some(&root));
    let leaf = make(&spec("CN=device"), ec(), Some(&ica));
    Pki { root, ica, leaf }
}

fn anchors(c: &[&Certificate]) -> Anchors {
    Anchors::new(c.iter().map(|c| (*c).clone()).collect()).unwrap()
}

fn check(
    anchor: &[&Certificate],
    inter: &[Certificate],
    target: &Certificate,
    o: Options,
) -> Result<ValidatedPath, PathError> {
    let a = anchors(anchor);
    Validator::new(&a, inter, o).validate(target, t0())
}

fn any() -> Options {
    Options::new(Purpose::Any)
}

#[test]
fn a_leaf_chains_through_the_issuing_ca_to_the_root() {
    let p = pki();
    let path = check(&[&p.root.cert], std::slice::from_ref(&p.ica.cert), &p.leaf.cert, any()).unwrap();
    assert_eq!(
        path.certificates(),
        &[p.leaf.cert.clone(), p.ica.cert.clone(), p.root.cert.clone()]
    );
    assert_eq!(path.intermediates(), std::slice::from_ref(&p.ica.cert));
    assert_eq!(path.issuer(), Some(&p.ica.cert));
    // Without the intermediate there is no path.
    assert!(matches!(
        check(&[&p.root.cert], &[], &p.leaf.cert, any()),
        Err(PathError::NoIssuer { .. })
    ));
}

#[test]
fn an_intermediate_can_be_the_anchor_and_an_anchor_is_trusted_as_itself() {
    let p = pki();
    let path = check(&[&p.ica.cert], &[], &p.leaf.cert, any()).unwrap();
    assert_eq!(path.certificates().len(), 2);
    // A pinned end-entity certificate is its own path, whatever its EKU.
    let path = check(&[&p.leaf.cert], &[], &p.leaf.cert, Options::new(Purpose::ScepRa)).unwrap();
    assert_eq!(path.certificates(), std::slice::from_ref(&p.leaf.cert));
    // Pinning another CA does not admit it.
    let other = make(&ca_spec("CN=Issuing"), ec(), None);
    assert!(matches!(
        check(&[&other.cert], &[], &p.leaf.cert, any()),
        Err(PathError::BadSignature { .. })
    ));
}

#[test]
fn the_intermediates_may_come_in_any_order_with_junk_among_them() {
    let p = pki();
    let junk = make(&ca_spec("CN=Junk"), ec(), None);
    let inter = vec![junk.cert.clone(), p.root.cert.clone(), p.ica.cert.clone()];
    assert!(check(&[&p.root.cert], &inter, &p.leaf.cert, any()).is_ok());
}

#[test]
fn a_forged_issuer_with_the_right_name_but_another_key_is_refused() {
    // The MITM of issue F: an "RA" whose issuer name is the CA's, signed by the attacker.
    let p = pki();
    let attacker = make(&ca_spec("CN=Issuing"), ec(), None);
    let forged = make(
        &Spec {
            eku: Some(vec![ID_KP_CMC_RA]),
            ..spec("CN=RA")
        },
        ec(),
        Some(&attacker),
    );
    let e = check(&[&p.ica.cert], &[], &forged.cert, Options::new(Purpose::ScepRa)).unwrap_err();
    assert!(
        matches!(e, PathError::BadSignature { ref subject, .. } if subject == "CN=RA"),
        "{e}"
    );
    // Even with the attacker's certificate offered as an intermediate.
    let e = check(
        &[&p.root.cert],
        std::slice::from_ref(&attacker.cert),
        &forged.cert,
        any(),
    )
    .unwrap_err();
    assert!(
        matches!(e, PathError::NoIssuer { .. } | PathError::BadSignature { .. }),
        "{e}"
    );
}

#[test]
fn a_name_mismatch_is_refused_even_with_a_good_signature() {
    let p = pki();
    // Same key as the issuing CA, different name: the leaf names "CN=Issuing".
    let renamed = make(
        &ca_spec("CN=Renamed"),
        SoftwareKey::from_pkcs8_der(&p.ica.key.to_pkcs8_der()).unwrap(),
        Some(&p.root),
    );
    assert!(matches!(
        check(
            &[&p.root.cert],
            std::slice::from_ref(&renamed.cert),
            &p.leaf.cert,
            any()
        ),
        Err(PathError::NoIssuer { .. })
    ));
    assert!(matches!(
        signature::check_link(&p.leaf.cert, &renamed.cert, false),
        Err(PathError::NameMismatch { .. })
    ));
    assert!(signature::signed_by(&p.leaf.cert, &p.ica.cert));
}

#[test]
fn every_certificate_must_be_valid_at_the_time_given() {
    let p = pki();
    let a = anchors(&[&p.root.cert]);
    let inter = [p.ica.cert.clone()];
    let v = Validator::new(&a, &inter, any());
    assert!(v.validate(&p.leaf.cert, t0()).is_ok());
    assert!(matches!(
        v.validate(&p.leaf.cert, t0() + 400 * DAY),
        Err(PathError::Expired { .. })
    ));
    assert!(matches!(
        v.validate(&p.leaf.cert, t0() - 2 * DAY),
        Err(PathError::NotYetValid { .. })
    ));
    // An expired intermediate, and an expired anchor.
    let old_ica = make(
        &Spec {
            not_after: t0() - Duration::from_secs(1),
            ..ca_spec("CN=Old")
        },
        ec(),
        Some(&p.root),
    );
    let leaf = make(&spec("CN=d2"), ec(), Some(&old_ica));
    let e = check(&[&p.root.cert], std::slice::from_ref(&old_ica.cert), &leaf.cert, any()).unwrap_err();
    assert!(
        matches!(e, PathError::Expired { ref subject, .. } if subject == "CN=Old"),
        "{e}"
    );
    let e = check(&[&old_ica.cert], &[], &leaf.cert, any()).unwrap_err();
    assert!(
        matches!(e, PathError::Expired { ref subject, .. } if subject == "CN=Old"),
        "{e}"
    );
}

#[test]
fn a_clock_skew_tolerates_a_not_before_just_ahead() {
    let p = pki();
    let early = make(
        &Spec {
            not_before: t0() + Duration::from_secs(60),
            ..spec("CN=early")
        },
        ec(),
        Some(&p.ica),
    );
    assert!(matches!(
        check(&[&p.ica.cert], &[], &early.cert, any()),
        Err(PathError::NotYetValid { .. })
    ));
    assert!(check(
        &[&p.ica.cert],
        &[],
        &early.cert,
        any().with_clock_skew(Duration::from_secs(300))
    )
    .is_ok());
}

#[test]
fn an_issuer_must_be_a_ca() {
    let p = pki();
    // An end-entity certificate of the CA signs another: refused, also as an anchor.
    let fake_ca = make(&spec("CN=EE"), ec(), Some(&p.ica));
    let below = make(&spec("CN=below"), ec(), Some(&fake_ca));
    let e = check(
        &[&p.root.cert],
        &[p.ica.cert.clone(), fake_ca.cert.clone()],
        &below.cert,
        any(),
    )
    .unwrap_err();
    assert!(
        matches!(e, PathError::NotCa { ref subject } if subject == "CN=EE"),
        "{e}"
    );
    assert!(matches!(
        check(&[&fake_ca.cert], &[], &below.cert, any()),
        Err(PathError::NotCa { .. })
    ));
    // cA = FALSE stated explicitly.
    let not_ca = make(
        &Spec {
            ca: Some((false, None)),
            ..ca_spec("CN=NotCA")
        },
        ec(),
        Some(&p.root),
    );
    let below = make(&spec("CN=b2"), ec(), Some(&not_ca));
    assert!(matches!(
        check(&[&p.root.cert], std::slice::from_ref(&not_ca.cert), &below.cert, any()),
        Err(PathError::NotCa { .. })
    ));
}

#[test]
fn an_issuer_with_key_usage_needs_key_cert_sign() {
    let p = pki();
    let no_sign = make(
        &Spec {
            key_usage: Some(KeyUsages::DigitalSignature.into()),
            ..ca_spec("CN=NoSign")
        },
        ec(),
        Some(&p.root),
    );
    let below = make(&spec("CN=b"), ec(), Some(&no_sign));
    assert!(matches!(
        check(&[&p.root.cert], std::slice::from_ref(&no_sign.cert), &below.cert, any()),
        Err(PathError::NoCertSign { .. })
    ));
    // Without keyUsage at all, a CA may sign.
    let no_ku = make(
        &Spec {
            key_usage: None,
            ..ca_spec("CN=NoKU")
        },
        ec(),
        Some(&p.root),
    );
    let below = make(&spec("CN=b"), ec(), Some(&no_ku));
    assert!(check(&[&p.root.cert], std::slice::from_ref(&no_ku.cert), &below.cert, any()).is_ok());
}

#[test]
fn path_len_constraint_counts_the_cas_below() {
    let root = make(
        &Spec {
            ca: Some((true, Some(0))),
            ..ca_spec("CN=Root0")
        },
        ec(),
        None,
    );
    // pathLen 0: a leaf directly below is fine …
    let leaf = make(&spec("CN=direct"), ec(), Some(&root));
    assert!(check(&[&root.cert], &[], &leaf.cert, any()).is_ok());
    // … an intermediate CA below is not.
    let ica = make(&ca_spec("CN=ICA"), ec(), Some(&root));
    let leaf = make(&spec("CN=deep"), ec(), Some(&ica));
    let e = check(&[&root.cert], std::slice::from_ref(&ica.cert), &leaf.cert, any()).unwrap_err();
    assert!(
        matches!(e, PathError::PathLenExceeded { ref subject, path_len: 0, below: 1 } if subject == "CN=Root0"),
        "{e}"
    );
    // pathLen 1 allows it.
    let root1 = make(
        &Spec {
            ca: Some((true, Some(1))),
            ..ca_spec("CN=Root1")
        },
        ec(),
        None,
    );
    let ica = make(&ca_spec("CN=ICA1"), ec(), Some(&root1));
    let leaf = make(&spec("CN=deep1"), ec(), Some(&ica));
    assert!(check(&[&root1.cert], std::slice::from_ref(&ica.cert), &leaf.cert, any()).is_ok());
}

#[test]
fn the_path_length_is_bounded() {
    let root = make(&ca_spec("CN=L0"), ec(), None);
    let mut chain = vec![];
    let mut top = root;
    let mut inter = vec![];
    for i in 1..10 {
        let next = make(&ca_spec(&format!("CN=L{i}")), ec(), Some(&top));
        inter.push(next.cert.clone());
        chain.push(top);
        top = next;
    }
    let leaf = make(&spec("CN=leaf"), ec(), Some(&top));
    let e = check(&[&chain[0].cert], &inter, &leaf.cert, any()).unwrap_err();
    assert!(matches!(e, PathError::TooLong { limit: MAX_PATH }), "{e}");
    let mut o = any();
    o.max_path = 16;
    assert!(check(&[&chain[0].cert], &inter, &leaf.cert, o).is_ok());
}

#[test]
fn the_target_must_be_allowed_the_purpose() {
    let p = pki();
    let with = |eku: Option<Vec<ObjectIdentifier>>| make(&Spec { eku, ..spec("CN=t") }, ec(), Some(&p.ica)).cert;
    let ra = with(Some(vec![ID_KP_CMC_RA]));
    let ms = with(Some(vec![MS_CERT_REQUEST_AGENT]));
    let none = with(None);
    let anyeku = with(Some(vec![ANY_EXTENDED_KEY_USAGE]));
    let client = with(Some(vec![ID_KP_CLIENT_AUTH]));
    let opt = Options::new;
    let a = [&p.ica.cert];
    assert!(check(&a, &[], &ra, opt(Purpose::ScepRa)).is_ok());
    assert!(check(&a, &[], &ms, opt(Purpose::ScepRa)).is_ok());
    for bad in [&none, &anyeku, &client] {
        assert!(matches!(
            check(&a, &[], bad, opt(Purpose::ScepRa)),
            Err(PathError::WrongPurpose {
                purpose: Purpose::ScepRa,
                ..
            })
        ));
    }
    assert!(check(&a, &[], &none, opt(Purpose::TlsServer)).is_ok());
    assert!(check(&a, &[], &anyeku, opt(Purpose::TlsServer)).is_ok());
    assert!(check(&a, &[], &client, opt(Purpose::TlsClient)).is_ok());
    assert!(matches!(
        check(&a, &[], &client, opt(Purpose::TlsServer)),
        Err(PathError::WrongPurpose { .. })
    ));
    assert!(matches!(
        check(&a, &[], &with(Some(vec![ID_KP_SERVER_AUTH])), opt(Purpose::OcspSigning)),
        Err(PathError::WrongPurpose { .. })
    ));
}

#[test]
fn an_unknown_critical_extension_is_refused_and_a_non_critical_one_ignored() {
    let p = pki();
    let odd = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
    let mk = |critical| {
        make(
            &Spec {
                extra: vec![ext(odd, critical, &der::asn1::Null)],
                ..spec("CN=odd")
            },
            ec(),
            Some(&p.ica),
        )
        .cert
    };
    assert!(check(&[&p.ica.cert], &[], &mk(false), any()).is_ok());
    assert!(matches!(
        check(&[&p.ica.cert], &[], &mk(true), any()),
        Err(PathError::UnknownCriticalExtension { .. })
    ));
    // On an intermediate too.
    let odd_ca = make(
        &Spec {
            extra: vec![ext(odd, true, &der::asn1::Null)],
            ..ca_spec("CN=OddCA")
        },
        ec(),
        Some(&p.root),
    );
    let leaf = make(&spec("CN=l"), ec(), Some(&odd_ca));
    assert!(matches!(
        check(&[&p.root.cert], std::slice::from_ref(&odd_ca.cert), &leaf.cert, any()),
        Err(PathError::UnknownCriticalExtension { .. })
    ));
}

#[test]
fn sha1_is_refused_unless_allowed_and_rsa_sha512_accepted() {
    let root = make(
        &ca_spec("CN=RSA Root"),
        SoftwareKey::generate(KeySpec::Rsa2048).unwrap(),
        None,
    );
    let sha1 = make(
        &Spec {
            alg: Some(SignatureAlgorithm::RsaPkcs1Sha1),
            ..spec("CN=sha1")
        },
        ec(),
        Some(&root),
    );
    assert!(matches!(
        check(&[&root.cert], &[], &sha1.cert, any()),
        Err(PathError::Sha1Refused { .. })
    ));
    assert!(check(&[&root.cert], &[], &sha1.cert, any().with_sha1(true)).is_ok());
    let sha512 = make(
        &Spec {
            alg: Some(SignatureAlgorithm::RsaPkcs1Sha512),
            ..spec("CN=sha512")
        },
        ec(),
        Some(&root),
    );
    assert!(check(&[&root.cert], &[], &sha512.cert, any()).is_ok());
}

#[test]
fn a_tampered_certificate_or_mismatched_algorithm_is_refused() {
    let p = pki();
    let mut tampered = p.leaf.cert.clone();
    tampered.tbs_certificate.subject = Name::from_str("CN=someone-else").unwrap();
    assert!(matches!(
        check(&[&p.ica.cert], &[], &tampered, any()),
        Err(PathError::BadSignature { .. })
    ));
    let mut mismatched = p.leaf.cert.clone();
    mismatched.signature_algorithm = SignatureAlgorithm::RsaPkcs1Sha256.algorithm_identifier();
    assert!(matches!(
        check(&[&p.ica.cert], &[], &mismatched, any()),
        Err(PathError::AlgorithmMismatch { .. })
    ));
    let mut unknown = p.leaf.cert.clone();
    let oid = ObjectIdentifier::new_unwrap("1.2.3.4");
    unknown.signature_algorithm.oid = oid;
    unknown.tbs_certificate.signature.oid = oid;
    assert!(matches!(
        check(&[&p.ica.cert], &[], &unknown, any()),
        Err(PathError::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn the_revocation_hook_sees_every_certificate_below_the_anchor_and_can_refuse() {
    let p = pki();
    let a = anchors(&[&p.root.cert]);
    let inter = [p.ica.cert.clone()];
    let seen = std::cell::RefCell::new(vec![]);
    let record = |c: &Certificate, i: &Certificate| {
        seen.borrow_mut().push((subject(c), subject(i)));
        Ok(())
    };
    Validator::new(&a, &inter, any())
        .with_revocation(&record)
        .validate(&p.leaf.cert, t0())
        .unwrap();
    assert_eq!(
        *seen.borrow(),
        vec![
            ("CN=device".to_string(), "CN=Issuing".to_string()),
            ("CN=Issuing".to_string(), "CN=Root".to_string())
        ]
    );
    let ica_fp = fingerprint::sha256(&p.ica.cert);
    let refuse = move |c: &Certificate, _: &Certificate| {
        if fingerprint::sha256(c) == ica_fp {
            Err("revoked (keyCompromise)".to_string())
        } else {
            Ok(())
        }
    };
    let e = Validator::new(&a, &inter, any())
        .with_revocation(&refuse)
        .validate(&p.leaf.cert, t0())
        .unwrap_err();
    assert!(
        matches!(e, PathError::Revoked { ref subject, .. } if subject == "CN=Issuing"),
        "{e}"
    );
}

#[test]
fn a_re_certified_ca_is_found_among_several_candidates() {
    // Two certificates for the issuing CA's name and key: one expired, one current.
    let p = pki();
    let same_key = || SoftwareKey::from_pkcs8_der(&p.ica.key.to_pkcs8_der()).unwrap();
    let expired = make(
        &Spec {
            not_before: t0() - 400 * DAY,
            not_after: t0() - DAY,
            ..ca_spec("CN=Issuing")
        },
        same_key(),
        Some(&p.root),
    );
    let inter = vec![expired.cert.clone(), p.ica.cert.clone()];
    let path = check(&[&p.root.cert], &inter, &p.leaf.cert, any()).unwrap();
    assert_eq!(path.issuer(), Some(&p.ica.cert));
    // With only the expired one, the error says so.
    let e = check(
        &[&p.root.cert],
        std::slice::from_ref(&expired.cert),
        &p.leaf.cert,
        any(),
    )
    .unwrap_err();
    assert!(matches!(e, PathError::Expired { .. }), "{e}");
}

#[test]
fn input_counts_are_bounded_and_loops_end() {
    let p = pki();
    let many = vec![p.ica.cert.clone(); MAX_INTERMEDIATES + 1];
    assert!(matches!(
        check(&[&p.root.cert], &many, &p.leaf.cert, any()),
        Err(PathError::TooManyCertificates { .. })
    ));
    assert!(Anchors::new(vec![p.root.cert.clone(); MAX_ANCHORS + 1]).is_err());
    // Two CAs that certify each other, neither anchored: no path, no hang.
    let a_key = ec();
    let b_key = ec();
    let a_self = make(
        &ca_spec("CN=A"),
        SoftwareKey::from_pkcs8_der(&a_key.to_pkcs8_der()).unwrap(),
        None,
    );
    let b_by_a = make(
        &ca_spec("CN=B"),
        SoftwareKey::from_pkcs8_der(&b_key.to_pkcs8_der()).unwrap(),
        Some(&a_self),
    );
    let b_self = Made {
        key: b_key,
        cert: b_by_a.cert.clone(),
    };
    let a_by_b = make(&ca_spec("CN=A"), a_key, Some(&b_self));
    let leaf = make(&spec("CN=l"), ec(), Some(&b_by_a));
    let e = check(
        &[&p.root.cert],
        &[a_by_b.cert.clone(), b_by_a.cert.clone()],
        &leaf.cert,
        any(),
    )
    .unwrap_err();
    assert!(
        matches!(e, PathError::NoIssuer { .. } | PathError::TooLong { .. }),
        "{e}"
    );
}

#[test]
fn garbage_never_panics() {
    let p = pki();
    let mut c = p.leaf.cert.clone();
    c.signature = BitString::new(3, vec![0xff, 0xf8]).unwrap();
    assert!(check(&[&p.ica.cert], &[], &c, any()).is_err());
    let mut c = p.leaf.cert.clone();
    c.tbs_certificate.extensions = Some(vec![Extension {
        extn_id: rfc5280::ID_CE_BASIC_CONSTRAINTS,
        critical: true,
        extn_value: OctetString::new(vec![0x30, 0x80]).unwrap(),
    }]);
    assert!(matches!(
        check(&[&p.ica.cert], &[], &c, any()),
        Err(PathError::BadExtension { .. })
    ));
}
