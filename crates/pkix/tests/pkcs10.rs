//! PKCS#10 (RFC 2986): requests made by OpenSSL and Python `cryptography`
//! (testvectors/pkix/pkcs10), our own builder's output read back, proof of
//! possession, and the bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use const_oid::db::rfc5280::{ID_CE_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, Ia5String, PrintableStringRef, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use enrolkit_keys::{DigestAlgorithm, KeyKind, KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_pkix::pkcs10::{oid, CertificationRequest, Pkcs10Error, RequestParams, MAX_CSR, MAX_DEPTH};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use zeroize::Zeroizing;

fn read(file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors/pkix/pkcs10")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn name(dn: &str) -> Name {
    Name::from_str(dn).unwrap()
}

fn ec_key() -> SoftwareKey {
    SoftwareKey::generate(KeySpec::EcP256).unwrap()
}

fn rsa_key() -> SoftwareKey {
    SoftwareKey::generate(KeySpec::Rsa2048).unwrap()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// What a vector is known to hold (README.md of its directory).
struct Want {
    file: &'static str,
    subject: &'static str,
    dns: &'static [&'static str],
    ips: &'static [&'static str],
    emails: &'static [&'static str],
    uris: &'static [&'static str],
    challenge: &'static str,
    challenge_tag: Tag,
    ekus: &'static [ObjectIdentifier],
    key: KeyKind,
    signature: ObjectIdentifier,
    critical_key_usage: bool,
}

const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

const VECTORS: [Want; 4] = [
    Want {
        file: "openssl-rsa2048.der",
        subject: "CN=device-1.example,O=Example Org",
        dns: &["device-1.example", "device-1.local"],
        ips: &["192.0.2.10", "2001:db8::10"],
        emails: &[],
        uris: &[],
        challenge: "p4ssw0rd-123",
        challenge_tag: Tag::PrintableString,
        ekus: &[ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH],
        key: KeyKind::Rsa(2048),
        signature: SHA256_RSA,
        critical_key_usage: false,
    },
    Want {
        file: "openssl-p256.der",
        subject: "CN=sensor-7,O=Example Org",
        dns: &["sensor-7.example"],
        ips: &["10.1.2.3"],
        emails: &[],
        uris: &[],
        challenge: "s3cret enrolment code!",
        challenge_tag: Tag::Utf8String,
        ekus: &[ID_KP_CLIENT_AUTH],
        key: KeyKind::EcP256,
        signature: ECDSA_SHA256,
        critical_key_usage: false,
    },
    Want {
        file: "python-rsa2048.der",
        subject: "CN=gateway-3.example,O=Example Org,C=DE",
        dns: &["gateway-3.example"],
        ips: &["198.51.100.3"],
        emails: &["ops@example.com"],
        uris: &["urn:example:gateway:3"],
        challenge: "ChallengePW-42",
        challenge_tag: Tag::Utf8String,
        ekus: &[ID_KP_CLIENT_AUTH],
        key: KeyKind::Rsa(2048),
        signature: SHA256_RSA,
        critical_key_usage: true,
    },
    Want {
        file: "python-p256.der",
        subject: "CN=meter-9,O=Example Org,C=DE",
        dns: &["meter-9.example", "meter-9.local"],
        ips: &["2001:db8::9"],
        emails: &[],
        uris: &[],
        challenge: "otp-7781",
        challenge_tag: Tag::Utf8String,
        ekus: &[ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH],
        key: KeyKind::EcP256,
        signature: ECDSA_SHA256,
        critical_key_usage: true,
    },
];

#[test]
fn openssl_and_python_requests_parse() {
    for w in &VECTORS {
        let der = read(w.file);
        let csr = CertificationRequest::parse(&der).unwrap_or_else(|e| panic!("{}: {e}", w.file));
        assert_eq!(csr.der(), der.as_slice(), "{}", w.file);
        // RFC 4514 prints the last RDN first.
        let mut rdns: Vec<&str> = w.subject.split(',').collect();
        rdns.reverse();
        assert_eq!(csr.subject().to_string(), rdns.join(","), "{}", w.file);
        assert_eq!(csr.dns_names(), strings(w.dns), "{}", w.file);
        assert_eq!(csr.ip_addresses(), ips(w.ips), "{}", w.file);
        let names = csr.names();
        assert_eq!(names.emails, strings(w.emails), "{}", w.file);
        assert_eq!(names.uris, strings(w.uris), "{}", w.file);
        assert_eq!(
            csr.challenge_password().map(|p| p.as_str()),
            Some(w.challenge),
            "{}",
            w.file
        );
        let attr = csr.attributes().find(|a| a.oid == oid::CHALLENGE_PASSWORD).unwrap();
        assert_eq!(attr.values.get(0).unwrap().tag(), w.challenge_tag, "{}", w.file);
        assert_eq!(csr.requested_ekus(), w.ekus, "{}", w.file);
        assert_eq!(csr.key_kind().unwrap(), w.key, "{}", w.file);
        let bits = match w.key {
            KeyKind::Rsa(b) => Some(b as u32),
            KeyKind::EcP256 => None,
        };
        assert_eq!(csr.rsa_bits(), bits, "{}", w.file);
        assert_eq!(csr.signature_algorithm().oid, w.signature, "{}", w.file);
        // A critical keyUsage is requested, not refused (see the module notes).
        let ku = csr.extension(ID_CE_KEY_USAGE);
        assert_eq!(
            ku.map(|e| e.critical),
            w.critical_key_usage.then_some(true),
            "{}",
            w.file
        );
        if let Some(ku) = ku {
            let ku = KeyUsage::from_der(ku.extn_value.as_bytes()).unwrap();
            assert!(ku.digital_signature(), "{}", w.file);
        }
        assert!(csr.subject_alt_name_der().is_some(), "{}", w.file);
        let dbg = format!("{csr:?}");
        assert!(!dbg.contains(w.challenge), "{}: {dbg}", w.file);
    }
}

#[test]
fn tampered_vectors_are_refused() {
    for w in &VECTORS {
        let der = read(w.file);
        // A flipped bit in the subject: the signature no longer matches.
        let pos = der
            .windows(w.dns[0].len())
            .position(|s| s == w.dns[0].as_bytes())
            .unwrap();
        let mut tampered = der.clone();
        tampered[pos] ^= 0x01;
        assert_eq!(
            CertificationRequest::parse(&tampered).unwrap_err(),
            Pkcs10Error::BadSignature,
            "{}",
            w.file
        );
        // A flipped bit in the signature value.
        let mut tampered = der.clone();
        let n = tampered.len();
        tampered[n - 5] ^= 0x10;
        let e = CertificationRequest::parse(&tampered).unwrap_err();
        assert!(
            matches!(e, Pkcs10Error::BadSignature | Pkcs10Error::Malformed { .. }),
            "{}: {e}",
            w.file
        );
        assert!(e.to_string().contains("signature"), "{}: {e}", w.file);
    }
}

fn full_request() -> RequestParams {
    let mut r = RequestParams::new(name("CN=dev-1,O=Example"));
    r.dns_names = strings(&["dev-1.example", "dev-1.local"]);
    r.ip_addresses = ips(&["192.0.2.7", "2001:db8::7"]);
    r.ekus = vec![ID_KP_CLIENT_AUTH];
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
        let der = req.build(&key).unwrap();
        let csr = CertificationRequest::parse(&der).unwrap();
        assert_eq!(csr.der(), der.as_slice());
        assert_eq!(csr.subject(), &req.subject);
        assert_eq!(csr.dns_names(), req.dns_names);
        assert_eq!(csr.ip_addresses(), req.ip_addresses);
        assert_eq!(csr.requested_ekus(), req.ekus.as_slice());
        assert_eq!(
            csr.challenge_password().map(|s| s.as_str()),
            Some("s3cret enrolment code")
        );
        assert_eq!(csr.key_kind().unwrap(), key.kind());
        let san = SubjectAltName::from_der(csr.subject_alt_name_der().unwrap()).unwrap();
        assert!(matches!(&san.0[0], GeneralName::DnsName(d) if d.as_str() == "dev-1.example"));
        // The password never shows in Debug output.
        let dbg = format!("{csr:?} {req:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("redacted"));
        // OpenSSL agrees the self-signature verifies (when it is installed).
        if let Ok(out) = openssl_verify(&der) {
            assert!(out.contains("verify OK"), "{out}");
        }
    }
}

fn openssl_verify(der: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["req", "-inform", "DER", "-noout", "-verify"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(der)?;
    let out = child.wait_with_output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn emails_uris_key_usage_and_extra_attributes() {
    let key = ec_key();
    let mut req = RequestParams::new(name("CN=x"));
    req.emails = strings(&["ops@example.com"]);
    req.uris = strings(&["urn:example:x"]);
    req.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
        .unwrap();
    // unstructuredName (PKCS#9), as a protocol's own attribute.
    let unstructured = Attribute {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.2"),
        values: SetOfVec::try_from(vec![Any::encode_from(&Ia5String::new("router-1").unwrap()).unwrap()]).unwrap(),
    };
    req.attributes.push(unstructured.clone());
    let csr = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap();
    assert_eq!(csr.names().emails, req.emails);
    assert_eq!(csr.names().uris, req.uris);
    assert!(csr.extension(ID_CE_KEY_USAGE).unwrap().critical);
    assert_eq!(
        csr.attributes().find(|a| a.oid == unstructured.oid),
        Some(&unstructured)
    );
    assert!(csr.challenge_password().is_none());
    // The builder's own attributes and extensions cannot be smuggled in twice.
    let mut twice = req.clone();
    twice.attributes.push(Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::new(),
    });
    assert!(matches!(twice.build(&key), Err(Pkcs10Error::Invalid { .. })));
    let mut twice = req.clone();
    twice
        .add_extension(&KeyUsage(KeyUsages::KeyEncipherment.into()))
        .unwrap();
    assert!(matches!(twice.build(&key), Err(Pkcs10Error::Invalid { .. })));
    // ECDSA P-256 is signed with SHA-256 only.
    let mut sha512 = req.clone();
    sha512.digest = DigestAlgorithm::Sha512;
    assert!(matches!(
        sha512.build(&key),
        Err(Pkcs10Error::UnsupportedAlgorithm { .. })
    ));
}

#[test]
fn challenge_password_string_types() {
    let key = ec_key();
    let mut req = RequestParams::new(name("CN=x"));
    // Base64 is PrintableString-safe.
    req.challenge_password = Some(Zeroizing::new("AbC+/09=".into()));
    let csr = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap();
    let attr = csr.attributes().find(|a| a.oid == oid::CHALLENGE_PASSWORD).unwrap();
    assert_eq!(attr.values.get(0).unwrap().tag(), Tag::PrintableString);
    // Not printable: UTF8String.
    req.challenge_password = Some(Zeroizing::new("pässwörd_!".into()));
    let csr = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap();
    let attr = csr.attributes().find(|a| a.oid == oid::CHALLENGE_PASSWORD).unwrap();
    assert_eq!(attr.values.get(0).unwrap().tag(), Tag::Utf8String);
    assert_eq!(csr.challenge_password().unwrap().as_str(), "pässwörd_!");
    // Empty or too long.
    req.challenge_password = Some(Zeroizing::new(String::new()));
    assert!(req.build(&key).is_err());
    req.challenge_password = Some(Zeroizing::new("x".repeat(256)));
    assert!(req.build(&key).is_err());
}

#[test]
fn proof_of_possession_checked() {
    let key = ec_key();
    let der = full_request().build(&key).unwrap();
    // Change the subject: the signature no longer matches.
    let pos = der.windows(5).position(|w| w == b"dev-1").unwrap();
    let mut tampered = der.clone();
    tampered[pos + 4] = b'2';
    assert_eq!(
        CertificationRequest::parse(&tampered).unwrap_err(),
        Pkcs10Error::BadSignature
    );
    // Change the signature.
    let mut tampered = der.clone();
    let n = tampered.len();
    tampered[n - 3] ^= 0x55;
    assert!(matches!(
        CertificationRequest::parse(&tampered),
        Err(Pkcs10Error::BadSignature | Pkcs10Error::Malformed { .. })
    ));
    // Truncated, garbage.
    assert!(CertificationRequest::parse(&der[..der.len() - 1]).is_err());
    assert!(CertificationRequest::parse(b"not a csr").is_err());
    assert!(CertificationRequest::parse(&[]).is_err());
}

#[test]
fn oversize_and_over_nested_input_is_refused_clearly() {
    let e = CertificationRequest::parse(&vec![0u8; MAX_CSR + 1]).unwrap_err();
    assert_eq!(
        e,
        Pkcs10Error::TooLarge {
            limit: MAX_CSR,
            actual: MAX_CSR + 1
        }
    );
    assert!(e.to_string().contains("more than the limit of 65536"), "{e}");

    // A signed request whose extra attribute nests SEQUENCEs past the limit:
    // refused before the signature or the attribute is looked at.
    let key = ec_key();
    let mut deep = vec![0x05, 0x00];
    for _ in 0..MAX_DEPTH + 4 {
        deep = tlv(0x30, &deep);
    }
    let mut req = RequestParams::new(name("CN=deep"));
    req.attributes.push(Attribute {
        oid: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        values: SetOfVec::try_from(vec![Any::from_der(&deep).unwrap()]).unwrap(),
    });
    let der = req.build(&key).unwrap();
    let e = CertificationRequest::parse(&der).unwrap_err();
    assert_eq!(e, Pkcs10Error::TooDeep { limit: MAX_DEPTH });
    assert!(e.to_string().contains("nests deeper than 32"), "{e}");

    // BER (an indefinite length) is named as such.
    let e = CertificationRequest::parse(&[0x30, 0x80, 0x05, 0x00, 0x00, 0x00]).unwrap_err();
    assert!(e.to_string().contains("indefinite length"), "{e}");
}

#[test]
fn too_many_attributes_are_refused() {
    let key = ec_key();
    let attrs: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            Attribute {
                oid: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999").push_arc(i).unwrap(),
                values: SetOfVec::try_from(vec![Any::from(der::asn1::Null)]).unwrap(),
            }
            .to_der()
            .unwrap()
        })
        .collect();
    let der = signed(&key, tlv(0xa0, &attrs.concat()));
    assert!(matches!(
        CertificationRequest::parse(&der),
        Err(Pkcs10Error::TooMany { what: "attributes", .. })
    ));
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

/// A request with `attributes` (a full `[0]` element, in whatever order),
/// signed over exactly these bytes.
fn signed(key: &SoftwareKey, attributes: Vec<u8>) -> Vec<u8> {
    let info = tlv(
        0x30,
        &[
            vec![0x02, 0x01, 0x00],
            name("CN=unsorted").to_der().unwrap(),
            key.public_key().to_der().unwrap(),
            attributes,
        ]
        .concat(),
    );
    let sig = key.sign(SignatureAlgorithm::EcdsaP256Sha256, &info).unwrap();
    tlv(
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
    )
}

/// A CSR whose attributes SET is not in DER order still verifies: the
/// signature is checked over the bytes received, not a re-encoding.
#[test]
fn signature_checked_over_received_bytes() {
    let key = ec_key();
    let pw = Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::try_from(vec![Any::encode_from(&PrintableStringRef::new("abc").unwrap()).unwrap()]).unwrap(),
    };
    let other = Attribute {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.2"),
        values: SetOfVec::try_from(vec![Any::encode_from(&Ia5String::new("x").unwrap()).unwrap()]).unwrap(),
    };
    // unstructuredName (…9.2) sorts before challengePassword (…9.7); put it after.
    let attrs = [pw.to_der().unwrap(), other.to_der().unwrap()].concat();
    let der = signed(&key, tlv(0xa0, &attrs));
    let csr = CertificationRequest::parse(&der).unwrap();
    assert_eq!(csr.challenge_password().unwrap().as_str(), "abc");
}

fn sign_info(key: &SoftwareKey, info: CertReqInfo) -> Vec<u8> {
    let sig = key
        .sign(SignatureAlgorithm::EcdsaP256Sha256, &info.to_der().unwrap())
        .unwrap();
    CertReq {
        info,
        algorithm: SignatureAlgorithm::EcdsaP256Sha256.algorithm_identifier(),
        signature: BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap()
}

#[test]
fn repeated_challenge_password_rejected() {
    let key = ec_key();
    let value = Any::encode_from(&PrintableStringRef::new("a").unwrap()).unwrap();
    let value2 = Any::encode_from(&PrintableStringRef::new("b").unwrap()).unwrap();
    let attr = Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::try_from(vec![value, value2]).unwrap(),
    };
    let info = CertReqInfo {
        version: Version::V1,
        subject: name("CN=x"),
        public_key: key.public_key().clone(),
        attributes: SetOfVec::try_from(vec![attr]).unwrap(),
    };
    assert!(matches!(
        CertificationRequest::parse(&sign_info(&key, info)),
        Err(Pkcs10Error::Malformed { .. })
    ));
}

#[test]
fn undecodable_subject_alt_name_is_refused() {
    let key = ec_key();
    let mut req = RequestParams::new(name("CN=x"));
    req.extensions.push(x509_cert::ext::Extension {
        extn_id: ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: der::asn1::OctetString::new(vec![0x02, 0x01, 0x00]).unwrap(),
    });
    let e = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            Pkcs10Error::Malformed {
                what: "subjectAltName",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn ip_only_san_is_critical_with_empty_subject() {
    let key = ec_key();
    let mut req = RequestParams::new(Name::default());
    req.ip_addresses = vec![IpAddr::from([10, 0, 0, 1])];
    let csr = CertificationRequest::parse(&req.build(&key).unwrap()).unwrap();
    let san = csr.extension(ID_CE_SUBJECT_ALT_NAME).unwrap();
    assert!(san.critical);
    assert_eq!(csr.ip_addresses(), req.ip_addresses);
    assert!(csr.dns_names().is_empty());
}
