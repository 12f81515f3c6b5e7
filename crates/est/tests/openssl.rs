//! Interop with the OpenSSL command line, both directions: certs-only
//! responses, PKCS#10 requests, and the PKCS#1/SEC1 keys a libest
//! serverkeygen sends (compared with OpenSSL's own PKCS#8 conversion).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_est::der::DecodePem;
use enrolkit_est::keys::{Signer, SoftwareKey};
use enrolkit_est::x509_cert::Certificate;
use enrolkit_est::*;
use zeroize::Zeroizing;

fn dir() -> tempfile::TempDir {
    println!("peer: {}", String::from_utf8_lossy(&openssl(&["version"])).trim());
    tempfile::tempdir().unwrap()
}

fn chain() -> Vec<(SoftwareKey, Certificate)> {
    ["first", "second", "third"]
        .iter()
        .enumerate()
        .map(|(i, cn)| {
            let k = if i == 1 { rsa_key() } else { ec_key() };
            let c = self_signed(&k, cn, i as u8 + 1);
            (k, c)
        })
        .collect()
}

#[test]
fn openssl_certs_only_decodes_in_order() {
    let d = dir();
    let ids = chain();
    let pem: String = ids.iter().map(|(_, c)| cert_pem(c)).collect();
    let path = write(d.path(), "chain.pem", pem.as_bytes());
    let der = openssl(&["crl2pkcs7", "-nocrl", "-certfile", &path, "-outform", "DER"]);
    let certs = decode_certs_only(&der).unwrap();
    let want: Vec<Certificate> = ids.into_iter().map(|(_, c)| c).collect();
    assert_eq!(certs, want);
    // The same through base64 with 64-column lines, as a server would send it.
    assert_eq!(
        decode_certs_only(&decode_body(encode_base64(&der).as_bytes(), MAX_BODY).unwrap()).unwrap(),
        want
    );
}

#[test]
fn our_certs_only_is_read_by_openssl_in_order() {
    let d = dir();
    let certs: Vec<Certificate> = chain().into_iter().map(|(_, c)| c).collect();
    let der = encode_certs_only(&certs).unwrap();
    let path = write(d.path(), "ours.p7b", &der);
    let out = String::from_utf8(openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &path,
        "-print_certs",
        "-noout",
    ]))
    .unwrap();
    let subjects: Vec<&str> = out.lines().filter(|l| l.starts_with("subject")).collect();
    assert_eq!(subjects.len(), 3, "{out}");
    assert!(
        subjects[0].contains("first") && subjects[1].contains("second") && subjects[2].contains("third"),
        "{out}"
    );
}

#[test]
fn openssl_signed_data_is_not_certs_only() {
    let d = dir();
    let (key, cert) = chain().remove(0);
    let cert_path = write(d.path(), "c.pem", cert_pem(&cert).as_bytes());
    let key_path = write(d.path(), "k.pem", key.to_pkcs8_pem().unwrap().as_bytes());
    let data = write(d.path(), "data", b"hello");
    let der = openssl(&[
        "cms",
        "-sign",
        "-in",
        &data,
        "-signer",
        &cert_path,
        "-inkey",
        &key_path,
        "-outform",
        "DER",
        "-nodetach",
    ]);
    let err = decode_certs_only(&der).unwrap_err();
    assert!(err.to_string().contains("signerInfos"), "{err}");
}

#[test]
fn our_csr_verifies_with_openssl() {
    let d = dir();
    let key = ec_key();
    let attrs = CsrAttrs::new()
        .with_challenge_password()
        .with_extension_request_ekus(&[oid::KP_CLIENT_AUTH])
        .unwrap();
    let mut req = enrolkit_est::pkix::pkcs10::RequestParams::new(name("CN=openssl-check,O=Example"));
    req.dns_names = vec!["device.example".into()];
    req.ip_addresses = vec!["192.0.2.1".parse().unwrap()];
    let b = ChannelBinding::tls_unique(&[9; 12]).unwrap();
    csr::satisfy(&mut req, &attrs, Some(&b)).unwrap();
    let der = req.build(&key).unwrap();
    let path = write(d.path(), "req.der", &der);
    let out = openssl(&["req", "-inform", "DER", "-in", &path, "-verify", "-noout", "-text"]);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("challengePassword") && text.contains(b.challenge_password().as_str()),
        "{text}"
    );
    assert!(
        text.contains("DNS:device.example") && text.contains("IP Address:192.0.2.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
}

#[test]
fn openssl_csr_parses_and_satisfies() {
    let d = dir();
    let key = ec_key();
    let key_path = write(d.path(), "k.pem", key.to_pkcs8_pem().unwrap().as_bytes());
    let cnf = "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\nreq_extensions = ext\n\
               [dn]\nCN = from-openssl\n[attrs]\nchallengePassword = AQEBAQEBAQEBAQEB\n\
               [ext]\nsubjectAltName = DNS:a.example, IP:10.1.2.3\nextendedKeyUsage = clientAuth\n";
    let cnf_path = write(d.path(), "req.cnf", cnf.as_bytes());
    let der = openssl(&[
        "req", "-new", "-key", &key_path, "-config", &cnf_path, "-sha256", "-outform", "DER",
    ]);
    let csr = enrolkit_est::pkix::pkcs10::CertificationRequest::parse(&der).unwrap();
    assert_eq!(csr.subject().to_string(), "CN=from-openssl");
    assert_eq!(csr.dns_names(), vec!["a.example".to_owned()]);
    assert_eq!(
        csr.ip_addresses(),
        vec!["10.1.2.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(csr.requested_ekus(), vec![oid::KP_CLIENT_AUTH]);
    let b = ChannelBinding::tls_unique(&[1; 12]).unwrap();
    assert!(b.matches(csr.challenge_password().unwrap()));
    let attrs = CsrAttrs::new()
        .with_challenge_password()
        .with_extension_request_ekus(&[oid::KP_CLIENT_AUTH])
        .unwrap()
        .with_ec_key(oid::SECP256R1)
        .unwrap()
        .with_signature_algorithm(oid::ECDSA_WITH_SHA256);
    check_satisfies(&attrs, &csr).unwrap();
}

#[test]
fn legacy_keys_convert_like_openssl() {
    let d = dir();
    // SEC1 with parameters (what `openssl ecparam -genkey` and libest write).
    let sec1 = openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-outform", "DER"]);
    let sec1_path = write(d.path(), "ec.der", &sec1);
    let want = openssl(&[
        "pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-in", &sec1_path, "-outform", "DER",
    ]);
    assert_eq!(keygen::to_pkcs8(&sec1).unwrap().as_slice(), want.as_slice());
    // PKCS#1 RSAPrivateKey.
    let pem = openssl(&["genrsa", "-traditional", "2048"]);
    let pem_path = write(d.path(), "rsa.pem", &pem);
    let pkcs1 = openssl(&["rsa", "-in", &pem_path, "-traditional", "-outform", "DER"]);
    let pkcs1_path = write(d.path(), "rsa.der", &pkcs1);
    let want = openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-inform",
        "DER",
        "-in",
        &pkcs1_path,
        "-outform",
        "DER",
    ]);
    let got: Zeroizing<Vec<u8>> = keygen::to_pkcs8(&pkcs1).unwrap();
    assert_eq!(got.as_slice(), want.as_slice());
    let key = SoftwareKey::from_pkcs8_der(&got).unwrap();
    assert!(matches!(key.kind(), enrolkit_est::keys::KeyKind::Rsa(2048)));
    // And a certificate openssl made for that key rides in a serverkeygen body.
    let cert_pem = openssl(&[
        "req", "-new", "-x509", "-key", &pem_path, "-subj", "/CN=kg", "-days", "1",
    ]);
    let cert = Certificate::from_pem(&cert_pem).unwrap();
    let (ct, body) = encode_serverkeygen_response(&got, &cert, "est-openssl").unwrap();
    let parsed = parse_serverkeygen_response(&ct, &body).unwrap();
    assert_eq!(parsed.certificates, vec![cert]);
}
