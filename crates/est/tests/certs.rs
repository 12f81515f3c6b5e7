//! certs-only Simple PKI Responses: order kept both ways, degenerate shape,
//! BER from streaming encoders, signed or malformed ones rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
use common::*;
use enrolkit_est::der::{Decode, Encode};
use enrolkit_est::x509_cert::Certificate;
use enrolkit_est::*;

fn chain() -> Vec<Certificate> {
    let a = ec_key();
    let b = rsa_key();
    let c = ec_key();
    vec![
        self_signed(&a, "leaf", 3),
        self_signed(&b, "intermediate", 2),
        self_signed(&c, "root", 1),
    ]
}

#[test]
fn roundtrip_keeps_order() {
    let certs = chain();
    let der = encode_certs_only(&certs).unwrap();
    assert_eq!(decode_certs_only(&der).unwrap(), certs);
    let mut reversed = certs.clone();
    reversed.reverse();
    let der = encode_certs_only(&reversed).unwrap();
    assert_eq!(decode_certs_only(&der).unwrap(), reversed);
}

#[test]
fn degenerate_shape() {
    let certs = chain();
    let der = encode_certs_only(&certs[..1]).unwrap();
    // Parse with the cms crate as an independent reader of the structure.
    let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
    assert_eq!(ci.content_type, oid::SIGNED_DATA);
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    assert_eq!(sd.version, cms::content_info::CmsVersion::V1);
    assert!(sd.digest_algorithms.is_empty());
    assert_eq!(sd.encap_content_info.econtent_type, oid::DATA);
    assert!(sd.encap_content_info.econtent.is_none());
    assert!(sd.crls.is_none());
    assert!(sd.signer_infos.0.is_empty());
    assert_eq!(sd.certificates.unwrap().0.len(), 1);

    let empty = encode_certs_only(&[]).unwrap();
    assert_eq!(decode_certs_only(&empty).unwrap(), Vec::<Certificate>::new());
}

/// A certs-only SignedData assembled by hand, with optional extra pieces.
fn signed_data(certs: &[Certificate], crls: Option<&[u8]>, signer_infos: &[u8]) -> Vec<u8> {
    let mut sd = tlv(0x02, &[1]);
    sd.extend(tlv(0x31, &[]));
    sd.extend(tlv(0x30, &oid::DATA.to_der().unwrap()));
    let mut c = Vec::new();
    for cert in certs {
        c.extend(cert.to_der().unwrap());
    }
    sd.extend(tlv(0xa0, &c));
    if let Some(crls) = crls {
        sd.extend(tlv(0xa1, crls));
    }
    sd.extend(tlv(0x31, signer_infos));
    let mut ci = oid::SIGNED_DATA.to_der().unwrap();
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    tlv(0x30, &ci)
}

#[test]
fn empty_crls_accepted_and_signers_rejected() {
    let certs = chain();
    assert_eq!(decode_certs_only(&signed_data(&certs, Some(&[]), &[])).unwrap(), certs);
    // A SignedData with a signerInfo is not certs-only.
    let fake_signer = tlv(0x30, &tlv(0x02, &[1]));
    let err = decode_certs_only(&signed_data(&certs, None, &fake_signer)).unwrap_err();
    assert!(matches!(err, EstError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("signerInfos"), "{err}");
}

/// Re-encode the outer ContentInfo, [0] and SignedData with indefinite
/// lengths, as streaming BER encoders do.
fn to_indefinite(der: &[u8]) -> Vec<u8> {
    fn content(tlv: &[u8]) -> &[u8] {
        let l = tlv[1];
        let skip = if l < 0x80 { 2 } else { 2 + (l & 0x7f) as usize };
        &tlv[skip..]
    }
    let ci = content(der);
    let oid_len = 2 + ci[1] as usize;
    let (oid, explicit) = ci.split_at(oid_len);
    let sd = content(explicit);
    let sd_content = content(sd);
    let mut out = vec![0x30, 0x80];
    out.extend_from_slice(oid);
    out.extend_from_slice(&[0xa0, 0x80, 0x30, 0x80]);
    out.extend_from_slice(sd_content);
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out
}

#[test]
fn ber_indefinite_lengths_accepted() {
    let certs = chain();
    let der = encode_certs_only(&certs).unwrap();
    let ber = to_indefinite(&der);
    assert_ne!(ber, der);
    assert_eq!(decode_certs_only(&ber).unwrap(), certs);
}

#[test]
fn malformed_rejected() {
    let certs = chain();
    let der = encode_certs_only(&certs).unwrap();
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(decode_certs_only(&der[..cut]).is_err(), "truncated at {cut}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(decode_certs_only(&trailing).is_err());
    // Not signedData.
    let mut ci = oid::DATA.to_der().unwrap();
    ci.extend(tlv(0xa0, &tlv(0x04, b"x")));
    assert!(decode_certs_only(&tlv(0x30, &ci)).is_err());
    // A single certificate is not a certs-only response.
    assert!(decode_certs_only(&certs[0].to_der().unwrap()).is_err());
}

#[test]
fn certificate_count_bounded() {
    let key = ec_key();
    let cert = self_signed(&key, "many", 1);
    let many = vec![cert; MAX_CERTS + 1];
    assert!(matches!(encode_certs_only(&many), Err(EstError::TooLarge { .. })));
    let der = signed_data(&many, None, &[]);
    assert!(matches!(decode_certs_only(&der), Err(EstError::TooLarge { .. })));
    assert_eq!(
        decode_certs_only(&signed_data(&many[..MAX_CERTS], None, &[]))
            .unwrap()
            .len(),
        MAX_CERTS
    );
}
