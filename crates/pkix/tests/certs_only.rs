//! certs-only SignedData against messages OpenSSL and micromdm made
//! (testvectors/pkix, testvectors/scep): count and order as sent, CRLs
//! carried, our encoding of what we read byte for byte OpenSSL's; and the
//! bounds and refusals of the decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::{Decode, DecodePem, Encode};
use enrolkit_pkix::certs_only::{decode, encode, CertsOnly, CertsOnlyError, MAX_CERTS, MAX_CRLS};
use std::path::PathBuf;
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

fn vector(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testvectors")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn pem(path: &str) -> Certificate {
    Certificate::from_pem(vector(path)).unwrap()
}

fn der(path: &str) -> Certificate {
    Certificate::from_der(&vector(path)).unwrap()
}

fn subjects(c: &CertsOnly) -> Vec<String> {
    c.certificates.iter().map(enrolkit_pkix::subject).collect()
}

#[test]
fn openssl_end_entity_first_is_read_in_order() {
    let bytes = vector("pkix/openssl-certs-only-ee-ca.der");
    let got = decode(&bytes).unwrap();
    assert_eq!(
        got.certificates,
        vec![der("est/openssl-ee.der"), pem("est/openssl-ca.pem")]
    );
    assert!(got.crls.is_empty());
    // What we write for what we read is what OpenSSL wrote.
    assert_eq!(encode(&got.certificates, &got.crls).unwrap(), bytes);
}

#[test]
fn any_order_is_accepted_and_kept() {
    let bytes = vector("pkix/openssl-certs-only-ca-signer-ra.der");
    let got = decode(&bytes).unwrap();
    assert_eq!(
        subjects(&got),
        [
            "CN=SCEP Test CA,O=SCEP Test Vectors",
            "CN=SCEP Test Signer,O=SCEP Test Vectors",
            "CN=SCEP Test RA,O=SCEP Test Vectors"
        ]
    );
    assert_eq!(
        got.certificates,
        vec![
            pem("scep/openssl-ca.pem"),
            pem("scep/openssl-signer.pem"),
            pem("scep/openssl-ra.pem")
        ]
    );
    assert_eq!(encode(&got.certificates, &[]).unwrap(), bytes);
    // Reversed, the order written is the order given, and read back so.
    let mut reversed = got.certificates.clone();
    reversed.reverse();
    assert_eq!(decode(&encode(&reversed, &[]).unwrap()).unwrap().certificates, reversed);

    // The GetCACert body of testvectors/scep: CA, then RA.
    let getcacert = decode(&vector("scep/openssl-getcacert-ca-ra.p7b.der")).unwrap();
    assert_eq!(
        getcacert.certificates,
        vec![pem("scep/openssl-ca.pem"), pem("scep/openssl-ra.pem")]
    );
}

#[test]
fn openssl_certificates_and_crl_are_read() {
    let bytes = vector("pkix/openssl-certs-only-ra-ca-crl.der");
    let got = decode(&bytes).unwrap();
    assert_eq!(
        got.certificates,
        vec![pem("scep/openssl-ra.pem"), pem("scep/openssl-ca.pem")]
    );
    let crl = CertificateList::from_der(&vector("pkix/openssl-ca.crl.der")).unwrap();
    assert_eq!(got.crls, vec![crl.clone()]);
    let revoked = crl.tbs_cert_list.revoked_certificates.as_ref().unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].serial_number,
        got.certificates[0].tbs_certificate.serial_number
    );
    assert_eq!(encode(&got.certificates, &got.crls).unwrap(), bytes);
    // A CRL alone (SCEP GetCRL).
    let only_crl = encode(&[], std::slice::from_ref(&crl)).unwrap();
    assert_eq!(
        decode(&only_crl).unwrap(),
        CertsOnly {
            certificates: vec![],
            crls: vec![crl]
        }
    );
}

#[test]
fn micromdm_certrep_content_is_the_issued_certificate() {
    let got = decode(&vector("scep/micromdm-certrep-success-caps-default.plaintext.der")).unwrap();
    assert_eq!(got.certificates, vec![pem("scep/micromdm-client-caps-default.pem")]);
    assert!(got.crls.is_empty());
}

#[test]
fn empty_is_a_valid_message() {
    let empty = encode(&[], &[]).unwrap();
    assert_eq!(decode(&empty).unwrap(), CertsOnly::default());
    // Independent reader of the shape: the cms crate.
    let ci = cms::content_info::ContentInfo::from_der(&empty).unwrap();
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    assert_eq!(sd.version, cms::content_info::CmsVersion::V1);
    assert!(sd.certificates.is_none() && sd.crls.is_none() && sd.signer_infos.0.is_empty());
}

#[test]
fn counts_and_length_are_bounded() {
    let ca = pem("scep/openssl-ca.pem");
    let many = vec![ca.clone(); MAX_CERTS + 1];
    assert!(matches!(encode(&many, &[]), Err(CertsOnlyError::TooLarge { .. })));
    assert_eq!(
        decode(&encode(&many[..MAX_CERTS], &[]).unwrap())
            .unwrap()
            .certificates
            .len(),
        MAX_CERTS
    );
    // A message with one certificate too many, built by hand.
    let err = decode(&by_hand(&many)).unwrap_err();
    assert!(
        matches!(err, CertsOnlyError::TooLarge { limit: MAX_CERTS, .. }),
        "{err}"
    );
    assert_eq!(
        decode(&by_hand(&many[..MAX_CERTS])).unwrap().certificates.len(),
        MAX_CERTS
    );

    let crl = CertificateList::from_der(&vector("pkix/openssl-ca.crl.der")).unwrap();
    assert!(matches!(
        encode(&[], &vec![crl; MAX_CRLS + 1]),
        Err(CertsOnlyError::TooLarge { .. })
    ));
    let huge = vec![0u8; enrolkit_pkix::certs_only::MAX_LEN + 1];
    assert!(matches!(decode(&huge), Err(CertsOnlyError::TooLarge { .. })));
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    enrolkit_pkix::ber::push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A certs-only message assembled without the encoder's bounds.
fn by_hand(certs: &[Certificate]) -> Vec<u8> {
    let mut sd = tlv(0x02, &[1]);
    sd.extend(tlv(0x31, &[]));
    sd.extend(tlv(0x30, &enrolkit_pkix::certs_only::ID_DATA.to_der().unwrap()));
    let mut set = Vec::new();
    for c in certs {
        set.extend(c.to_der().unwrap());
    }
    sd.extend(tlv(0xa0, &set));
    sd.extend(tlv(0x31, &[]));
    let mut ci = enrolkit_pkix::certs_only::ID_SIGNED_DATA.to_der().unwrap();
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    tlv(0x30, &ci)
}

#[test]
fn not_certs_only_is_refused() {
    let bytes = vector("pkix/openssl-certs-only-ee-ca.der");
    for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode(&trailing).is_err());
    // A certificate alone, and a CRL alone, are not certs-only messages.
    assert!(decode(&vector("est/openssl-ee.der")).is_err());
    assert!(decode(&vector("pkix/openssl-ca.crl.der")).is_err());
    // A signed SignedData (OpenSSL `cms -sign`) is not certs-only.
    let err = decode(&vector("scep/openssl-signed.der")).unwrap_err();
    assert!(err.to_string().contains("signerInfos"), "{err}");
}
