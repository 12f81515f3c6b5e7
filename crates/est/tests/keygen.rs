//! serverkeygen multipart responses: our own output, the shapes other
//! servers send (LF, reversed parts, no CTE, PKCS#1 and SEC1 keys), errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_est::der::{Decode, Encode};
use enrolkit_est::keys::{Signer, SoftwareKey};
use enrolkit_est::x509_cert::Certificate;
use enrolkit_est::*;

fn identity() -> (SoftwareKey, Certificate) {
    let key = ec_key();
    let cert = self_signed(&key, "server-generated", 9);
    (key, cert)
}

#[test]
fn roundtrip_and_exact_shape() {
    let (key, cert) = identity();
    let pkcs8 = key.to_pkcs8_der();
    let boundary = new_boundary(&[0xa5; 16]);
    assert_eq!(boundary, format!("est-{}", "a5".repeat(16)));
    let (ct, body) = encode_serverkeygen_response(&pkcs8, &cert, &boundary).unwrap();
    assert_eq!(ct, format!("multipart/mixed; boundary={boundary}"));
    let text = String::from_utf8(body.clone()).unwrap();
    let expected_start =
        format!("--{boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    assert!(text.starts_with(&expected_start), "{text}");
    assert!(text.contains(&format!(
        "\r\n--{boundary}\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    // Every line ends in CRLF; no bare LF.
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());

    let parsed = parse_serverkeygen_response(&ct, &body).unwrap();
    assert_eq!(parsed.private_key_pkcs8.as_slice(), pkcs8.as_slice());
    assert_eq!(parsed.certificates, vec![cert.clone()]);
    let dbg = format!("{parsed:?}");
    assert!(dbg.contains("<redacted>") && dbg.contains("server-generated"), "{dbg}");
    let loaded = SoftwareKey::from_pkcs8_der(&parsed.private_key_pkcs8).unwrap();
    assert_eq!(loaded.public_key(), key.public_key());

    // LF line ends.
    let lf = text.replace("\r\n", "\n");
    let parsed = parse_serverkeygen_response(&ct, lf.as_bytes()).unwrap();
    assert_eq!(parsed.certificates, vec![cert]);
}

fn part(headers: &[&str], content: &str, eol: &str) -> String {
    let mut s = String::new();
    for h in headers {
        s.push_str(h);
        s.push_str(eol);
    }
    s.push_str(eol);
    s.push_str(content);
    s
}

/// A hand-made body, as other servers write them.
fn body(boundary: &str, parts: &[String], eol: &str, close: bool) -> Vec<u8> {
    let mut s = format!("This is the preamble.{eol}");
    for p in parts {
        s.push_str(&format!("--{boundary}{eol}{p}{eol}"));
    }
    if close {
        s.push_str(&format!("--{boundary}--{eol}epilogue{eol}"));
    }
    s.into_bytes()
}

#[test]
fn tolerant_shapes() {
    let (key, cert) = identity();
    let key_b64 = encode_base64(&key.to_pkcs8_der());
    let certs_b64 = encode_base64(&encode_certs_only(std::slice::from_ref(&cert)).unwrap()).replace("\r\n", "");
    for eol in ["\r\n", "\n"] {
        // Certificate first, lower-case header names, no CTE on the key,
        // quoted boundary with a space, single-line base64, no close delimiter.
        let parts = [
            part(
                &[
                    "content-type: application/pkcs7-mime; smime-type=certs-only",
                    "content-transfer-encoding: BASE64",
                ],
                &certs_b64,
                eol,
            ),
            part(&["CONTENT-TYPE:application/pkcs8"], &key_b64.replace("\r\n", eol), eol),
        ];
        for close in [true, false] {
            let b = body("my boundary", &parts, eol, close);
            let parsed = parse_serverkeygen_response("Multipart/Mixed; boundary=\"my boundary\"", &b).unwrap();
            assert_eq!(parsed.private_key_pkcs8.as_slice(), key.to_pkcs8_der().as_slice());
            assert_eq!(parsed.certificates, vec![cert.clone()]);
        }
    }
    // Folded header and transport padding after the delimiter.
    let parts = [
        part(
            &["Content-Type: application/pkcs8;", " charset=binary"],
            &key_b64,
            "\r\n",
        ),
        part(
            &["Content-Type: application/pkcs7-mime;", "\tsmime-type=certs-only"],
            &certs_b64,
            "\r\n",
        ),
    ];
    let b = String::from_utf8(body("b", &parts, "\r\n", true))
        .unwrap()
        .replace("--b\r\n", "--b  \r\n");
    assert!(parse_serverkeygen_response("multipart/mixed; boundary=b", b.as_bytes()).is_ok());
}

/// The PKCS#1 / SEC1 encodings of a software key, as libest sends them.
fn legacy_encodings() -> Vec<(SoftwareKey, Vec<u8>)> {
    let rsa = rsa_key();
    let pkcs1 = pkcs8::PrivateKeyInfo::from_der(&rsa.to_pkcs8_der())
        .unwrap()
        .private_key
        .to_vec();
    let ec = ec_key();
    let pkcs8 = ec.to_pkcs8_der();
    let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8).unwrap();
    let inner = sec1::EcPrivateKey::from_der(info.private_key).unwrap();
    let sec1_der = sec1::EcPrivateKey {
        parameters: Some(sec1::EcParameters::NamedCurve(oid::SECP256R1)),
        ..inner
    }
    .to_der()
    .unwrap();
    vec![(rsa, pkcs1), (ec, sec1_der)]
}

#[test]
fn pkcs1_and_sec1_keys_become_pkcs8() {
    for (key, legacy) in legacy_encodings() {
        let cert = self_signed(&key, "legacy", 5);
        let parts = [
            part(
                &["Content-Type: application/pkcs8", "Content-Transfer-Encoding: base64"],
                &encode_base64(&legacy),
                "\r\n",
            ),
            part(
                &["Content-Type: application/pkcs7-mime; smime-type=certs-only"],
                &encode_base64(&encode_certs_only(std::slice::from_ref(&cert)).unwrap()),
                "\r\n",
            ),
        ];
        let b = body("libest", &parts, "\r\n", true);
        let parsed = parse_serverkeygen_response("multipart/mixed; boundary=libest", &b).unwrap();
        let loaded = SoftwareKey::from_pkcs8_der(&parsed.private_key_pkcs8).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(parsed.certificates, vec![cert]);
    }
}

#[test]
fn sec1_without_curve_rejected() {
    let ec = ec_key();
    let info_der = ec.to_pkcs8_der();
    let info = pkcs8::PrivateKeyInfo::from_der(&info_der).unwrap();
    let inner = sec1::EcPrivateKey::from_der(info.private_key).unwrap();
    let no_params = sec1::EcPrivateKey {
        parameters: None,
        ..inner
    }
    .to_der()
    .unwrap();
    let err = keygen::to_pkcs8(&no_params).unwrap_err();
    assert!(err.to_string().contains("named curve"), "{err}");
    assert!(keygen::to_pkcs8(b"\x30\x03\x02\x01\x05").is_err());
}

#[test]
fn errors() {
    let (key, cert) = identity();
    let key_part = part(
        &["Content-Type: application/pkcs8"],
        &encode_base64(&key.to_pkcs8_der()),
        "\r\n",
    );
    let cert_part = part(
        &["Content-Type: application/pkcs7-mime; smime-type=certs-only"],
        &encode_base64(&encode_certs_only(&[cert]).unwrap()),
        "\r\n",
    );
    let ct = "multipart/mixed; boundary=x";
    let missing_cert = body("x", std::slice::from_ref(&key_part), "\r\n", true);
    assert!(parse_serverkeygen_response(ct, &missing_cert)
        .unwrap_err()
        .to_string()
        .contains("no certificate part"));
    let missing_key = body("x", std::slice::from_ref(&cert_part), "\r\n", true);
    assert!(parse_serverkeygen_response(ct, &missing_key)
        .unwrap_err()
        .to_string()
        .contains("no private key part"));
    let two_keys = body(
        "x",
        &[key_part.clone(), key_part.clone(), cert_part.clone()],
        "\r\n",
        true,
    );
    assert!(parse_serverkeygen_response(ct, &two_keys).is_err());
    // An encrypted key (RFC 7030 §4.4.2 asymmetric/symmetric) is not supported.
    let enc = part(
        &["Content-Type: application/pkcs7-mime; smime-type=server-generated-key"],
        "AAAA",
        "\r\n",
    );
    let b = body("x", &[enc, cert_part.clone()], "\r\n", true);
    assert!(matches!(
        parse_serverkeygen_response(ct, &b),
        Err(EstError::UnsupportedMediaType(_))
    ));
    // No Content-Type on a part.
    let b = body(
        "x",
        &[part(&["X-Other: 1"], "AAAA", "\r\n"), cert_part.clone()],
        "\r\n",
        true,
    );
    assert!(parse_serverkeygen_response(ct, &b).is_err());
    // Wrong boundary, wrong media type, no boundary.
    let good = body("x", &[key_part.clone(), cert_part.clone()], "\r\n", true);
    assert!(parse_serverkeygen_response("multipart/mixed; boundary=y", &good).is_err());
    assert!(parse_serverkeygen_response("application/pkcs8", &good).is_err());
    assert!(parse_serverkeygen_response("multipart/mixed", &good).is_err());
    assert!(parse_serverkeygen_response(ct, &good).is_ok());
    // Too many parts.
    let many: Vec<String> = (0..10).map(|_| key_part.clone()).collect();
    assert!(matches!(
        parse_serverkeygen_response(ct, &body("x", &many, "\r\n", true)),
        Err(EstError::TooLarge { .. })
    ));
    // Too many header lines in a part.
    let headers: Vec<String> = (0..40).map(|i| format!("X-H{i}: v")).collect();
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let b = body("x", &[part(&refs, "AAAA", "\r\n")], "\r\n", true);
    assert!(matches!(
        parse_serverkeygen_response(ct, &b),
        Err(EstError::TooLarge { .. })
    ));
    // The body ends inside headers.
    assert!(parse_serverkeygen_response(ct, b"--x\r\nContent-Type: application/pkcs8\r\n").is_err());
    // Encoding refuses a key that is not PKCS#8 and a bad boundary.
    let (key, cert) = identity();
    assert!(encode_serverkeygen_response(b"\x30\x00", &cert, "b").is_err());
    assert!(encode_serverkeygen_response(&key.to_pkcs8_der(), &cert, "").is_err());
    assert!(encode_serverkeygen_response(&key.to_pkcs8_der(), &cert, &"b".repeat(71)).is_err());
}
