//! Every file of `testvectors/est/` (RFC 7030 appendix and §4.5.2 examples,
//! RFC 9908 examples, and bytes made by OpenSSL, pyasn1 and Python's email
//! package, never by us) read by `enrolkit-est` and checked against what
//! `MANIFEST` records: hashes, decodings, certificate counts and order,
//! signatures, keys, multipart parts, and the expected refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_est::der::{Decode, Encode};
use enrolkit_est::keys::{self, DigestAlgorithm, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_est::x509_cert::Certificate;
use enrolkit_est::*;
use enrolkit_pkix::certs_only;
use std::path::PathBuf;
use toml::{Table, Value};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/est")
}

fn files() -> Table {
    let text = std::fs::read_to_string(dir().join("MANIFEST")).unwrap();
    text.parse::<Table>().unwrap()["files"].as_table().unwrap().clone()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn s<'a>(t: &'a Value, k: &str) -> Option<&'a str> {
    t.get(k).and_then(|v| v.as_str())
}

fn of_kind(kind: &str) -> Vec<(String, Value)> {
    let v: Vec<_> = files()
        .into_iter()
        .filter(|(_, f)| s(f, "kind") == Some(kind))
        .collect();
    assert!(!v.is_empty(), "no {kind} vectors");
    v
}

fn valid(f: &Value) -> bool {
    s(f, "expect").unwrap().starts_with("valid")
}

/// The public key (SPKI DER) of a private key file in any of the forms
/// servers send (PKCS#8, PKCS#1, SEC1).
fn public_of(key_der: &[u8]) -> Vec<u8> {
    SoftwareKey::from_der_any(key_der)
        .unwrap()
        .public_key()
        .to_der()
        .unwrap()
}

/// Check `cert`'s signature with `issuer`'s key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let alg = SignatureAlgorithm::from_oids(&cert.signature_algorithm.oid, None)
        .unwrap_or_else(|| panic!("signature algorithm {}", cert.signature_algorithm.oid));
    let spki = issuer.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let spki = enrolkit_est::x509_cert::spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap();
    keys::verify(
        &spki,
        alg,
        &cert.tbs_certificate.to_der().unwrap(),
        cert.signature.raw_bytes(),
    )
    .is_ok()
}

#[test]
fn the_manifest_covers_every_file_and_every_hash_matches() {
    let files = files();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "MANIFEST" || files.contains_key(&name),
            "{name} is not in MANIFEST"
        );
    }
    let mut hashed = 0;
    for (name, f) in &files {
        if let Some(h) = s(f, "sha256") {
            let b = read(name);
            assert_eq!(hex::encode(DigestAlgorithm::Sha256.digest(&b)), h, "{name}");
            if let Some(n) = f.get("size").and_then(Value::as_integer) {
                assert_eq!(b.len() as i64, n, "{name}");
            }
            hashed += 1;
        }
    }
    assert!(hashed > 60, "{hashed}");
}

#[test]
fn base64_bodies_decode_whatever_their_layout() {
    for (name, f) in of_kind("base64") {
        let got = decode_base64(&read(&name), MAX_BODY);
        if valid(&f) {
            let want = read(s(&f, "decodes_to").unwrap());
            assert_eq!(got.unwrap_or_else(|e| panic!("{name}: {e}")), want, "{name}");
        } else {
            let e = got.expect_err(&name).to_string();
            assert!(e.contains('*') || e.contains("base64"), "{name}: {e}");
        }
        if let Some(ct) = s(&f, "content_type") {
            MediaType::parse(ct).unwrap_or_else(|e| panic!("{name}: {ct}: {e}"));
        }
    }
    for (name, f) in of_kind("hex") {
        let text: String = String::from_utf8(read(&name))
            .unwrap()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        assert_eq!(hex::decode(text).unwrap(), read(s(&f, "decodes_to").unwrap()), "{name}");
    }
}

#[test]
fn certs_only_messages_keep_count_order_and_signatures() {
    for (name, f) in of_kind("certs-only") {
        let der = read(&name);
        let certs = certs_only::decode(&der)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .certificates;
        assert_eq!(certs.len() as i64, f["certs"].as_integer().unwrap(), "{name}");
        if let Some(list) = f.get("certs_files").and_then(Value::as_array) {
            for (c, file) in certs.iter().zip(list) {
                let want = read(file.as_str().unwrap());
                assert_eq!(c.to_der().unwrap(), want, "{name}: order or bytes of {file}");
            }
        }
        if s(&f, "signatures") == Some("verify") {
            let mut pool = certs.clone();
            if let Some(other) = s(&f, "issuers_from") {
                pool.extend(certs_only::decode(&read(other)).unwrap().certificates);
            }
            for c in &certs {
                let issuer = pool
                    .iter()
                    .find(|i| i.tbs_certificate.subject == c.tbs_certificate.issuer && signed_by(c, i));
                assert!(
                    issuer.is_some(),
                    "{name}: {} has no verifying issuer",
                    c.tbs_certificate.subject
                );
            }
        }
        // Our encoding of the same certificates reads back identically.
        let again = certs_only::decode(&certs_only::encode(&certs, &[]).unwrap())
            .unwrap()
            .certificates;
        assert_eq!(again, certs, "{name}");
    }
}

#[test]
fn certificates_and_keys_from_openssl_agree() {
    for (name, f) in of_kind("x509-der") {
        let c = Certificate::from_der(&read(&name)).unwrap();
        if s(&f, "self_signed") == Some("yes") {
            assert!(signed_by(&c, &c), "{name}");
        }
        if let Some(issuer) = s(&f, "issuer_cert") {
            let pem = String::from_utf8(read(issuer)).unwrap();
            let i = Certificate::load_pem_chain(pem.as_bytes()).unwrap().remove(0);
            assert!(signed_by(&c, &i), "{name} by {issuer}");
        }
        if let Some(k) = s(&f, "key") {
            assert_eq!(
                c.tbs_certificate.subject_public_key_info.to_der().unwrap(),
                public_of(&read(k)),
                "{name} vs {k}"
            );
        }
    }
    for kind in ["pkcs8-der", "pkcs1-der", "sec1-der"] {
        for (name, f) in of_kind(kind) {
            let der = read(&name);
            // The serverkeygen conversion accepts each form and yields PKCS#8
            // holding the same key.
            let p8 = keygen::to_pkcs8(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
            let from_p8 = SoftwareKey::from_pkcs8_der(&p8).unwrap().public_key().to_der().unwrap();
            assert_eq!(from_p8, public_of(&der), "{name}");
            if let Some(other) = s(&f, "same_key_as") {
                assert_eq!(public_of(&der), public_of(&read(other)), "{name} vs {other}");
            }
        }
    }
}

#[test]
fn csrs_parse_and_bad_signatures_are_refused() {
    for (name, f) in of_kind("csr") {
        let got = enrolkit_est::pkix::pkcs10::CertificationRequest::parse(&read(&name));
        if valid(&f) {
            let csr = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(k) = s(&f, "key") {
                let spki = csr.public_key().to_der().unwrap();
                assert_eq!(spki, public_of(&read(k)), "{name}");
            }
        } else {
            let e = got.expect_err(&name).to_string();
            assert!(e.contains("signature"), "{name}: {e}");
        }
    }
}

#[test]
fn csr_attributes_read_back_byte_for_byte_and_mean_what_the_rfcs_say() {
    use enrolkit_est::oid;
    for (name, f) in of_kind("csrattrs") {
        let der = read(&name);
        let attrs = CsrAttrs::from_der(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(attrs.to_der().unwrap(), der, "{name}: DER round trip");
        assert!(!attrs.is_empty(), "{name}");
        attrs.template().unwrap_or_else(|e| panic!("{name}: {e}"));
        let semantics = s(&f, "semantics").unwrap();
        // The one example MANIFEST calls wrong carries an OID where
        // Extensions belong; we read that OID rather than refuse the whole set.
        assert_eq!(
            !attrs.extension_request_oids().is_empty(),
            semantics.starts_with("wrong"),
            "{name}: {semantics}"
        );
    }
    let attrs = |n: &str| CsrAttrs::from_der(&read(n)).unwrap();
    let ec = |curve| Some(KeyRequirement::Ec { curve });

    // RFC 7030 §4.5.2 / RFC 9908 §5.2: challengePassword, P-384, macAddress
    // (1.3.6.1.1.1.1.22), ecdsa-with-SHA384.
    let mac = enrolkit_est::der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.1.1.1.22");
    let secp384r1 = enrolkit_est::der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.34");
    let sha384 = enrolkit_est::der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    for n in [
        "rfc7030-s4.5.2-csrattrs.der",
        "rfc9908-s5.2-csrattrs-rfc7030-example-corrected.der",
    ] {
        let a = attrs(n);
        assert!(a.challenge_password_requested(), "{n}");
        assert_eq!(a.key_requirement(), ec(secp384r1), "{n}");
        assert_eq!(a.signature_algorithm(), Some(sha384), "{n}");
    }
    assert_eq!(attrs("rfc7030-s4.5.2-csrattrs.der").extension_request_oids(), vec![mac]);
    // RFC 9908's correction asks for macAddress with a bare OID instead.
    let corrected = attrs("rfc9908-s5.2-csrattrs-rfc7030-example-corrected.der");
    assert!(corrected.oids().any(|o| *o == mac));
    assert!(corrected.extension_request_oids().is_empty());

    // RFC 7030 A.2: the two 2.999 attributes are carried but ignored;
    // macAddress, challengePassword, brainpoolP384r1 and sha384 are read.
    let a2 = attrs("rfc7030-a2-csrattrs.der");
    assert_eq!(
        a2.items
            .iter()
            .filter(|i| matches!(i, enrolkit_est::csrattrs::AttrOrOid::Unrecognised(_)))
            .count(),
        2
    );
    assert!(a2.challenge_password_requested());
    assert!(a2.oids().any(|o| *o == mac));

    // pyasn1-made sets.
    assert!(attrs("csrattrs-pyasn1-challengepassword.der").challenge_password_requested());
    let eku = attrs("csrattrs-pyasn1-challengepassword-extreq-eku.der");
    assert!(eku.challenge_password_requested());
    assert_eq!(eku.requested_ekus(), vec![oid::KP_CLIENT_AUTH, oid::KP_SERVER_AUTH]);
    let p256 = attrs("csrattrs-pyasn1-ecpublickey-p256-ecdsa-sha256.der");
    assert_eq!(p256.key_requirement(), ec(keys::oid::SECP256R1));
    assert_eq!(
        p256.signature_algorithm(),
        Some(SignatureAlgorithm::EcdsaP256Sha256.oid())
    );
    assert_eq!(
        attrs("csrattrs-pyasn1-rsa3072.der").key_requirement(),
        Some(KeyRequirement::Rsa { bits: Some(3072) })
    );
    let t = attrs("csrattrs-pyasn1-rfc9908-template.der").template().unwrap();
    assert!(t.is_some(), "template");

    // RFC 9908 §5.4–5.6 key requirements.
    assert_eq!(
        attrs("rfc9908-s5.4-csrattrs-rsa4096-sha256.der").key_requirement(),
        Some(KeyRequirement::Rsa { bits: Some(4096) })
    );
    assert_eq!(
        attrs("rfc9908-s5.5-csrattrs-p384-serialnumber-sha384.der").key_requirement(),
        ec(secp384r1)
    );
    let secp521r1 = enrolkit_est::der::oid::ObjectIdentifier::new_unwrap("1.3.132.0.35");
    assert_eq!(
        attrs("rfc9908-s5.6-csrattrs-p521-extras-sha512.der").key_requirement(),
        ec(secp521r1)
    );
}

#[test]
fn serverkeygen_bodies_from_other_producers_open() {
    for (name, f) in of_kind("multipart") {
        let ct = s(&f, "content_type").unwrap();
        let got = parse_serverkeygen_response(ct, &read(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parts = f["parts"].as_array().unwrap();
        let (key_file, certs_file) = (parts[0].as_str().unwrap(), parts[1].as_str().unwrap());
        let ours = SoftwareKey::from_pkcs8_der(&got.private_key_pkcs8).unwrap();
        assert_eq!(
            ours.public_key().to_der().unwrap(),
            public_of(&read(key_file)),
            "{name}"
        );
        assert_eq!(
            got.certificates,
            certs_only::decode(&read(certs_file)).unwrap().certificates,
            "{name}"
        );
    }
}

/// Split an HTTP message transcription into start line, headers, body.
fn http(text: &str) -> (String, Vec<(String, String)>, String) {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let start = lines.next().unwrap().to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines {
        match l.split_once(':') {
            Some((k, v)) if !k.contains(' ') && !k.is_empty() => {
                headers.push((k.to_ascii_lowercase(), v.trim().to_owned()))
            }
            // The RFC layout breaks long values over lines.
            _ => headers.last_mut().unwrap().1.push_str(l.trim()),
        }
    }
    (start, headers, body.to_owned())
}

#[test]
fn rfc7030_http_transcriptions_carry_paths_media_types_and_bodies_we_read() {
    for (name, f) in of_kind("http") {
        let (start, headers, body) = http(&String::from_utf8(read(&name)).unwrap());
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if let Some(rest) = start.strip_prefix("HTTP/1.1 ") {
            let status: u16 = rest[..3].parse().unwrap();
            assert!(matches!(status, 200 | 401), "{name}: {start}");
        } else {
            let mut it = start.split(' ');
            let (method, path) = (it.next().unwrap(), it.next().unwrap());
            let p = EstPath::parse(path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            assert_eq!(p.operation.method(), method, "{name}");
        }
        if let Some(ct) = header("content-type") {
            let m = MediaType::parse(ct).unwrap_or_else(|e| panic!("{name}: {ct}: {e}"));
            if m == MediaType::MultipartMixed {
                assert_eq!(multipart_boundary(ct).unwrap(), "estServerExampleBoundary");
            }
        }
        if let Some(b) = s(&f, "body_file") {
            assert_eq!(body.as_bytes(), read(b), "{name}: body");
        }
    }
}
