//! The TS 33.220 KDF and GBA NAF keys against `testvectors/rspf/gba.toml`,
//! computed by Python's standard `hmac` (testvectors/rspf/gba.py), never by us.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_rspf::gba::{self, NafId, NafKey, UaProtocolId};
use enrolkit_rspf::{kdf, Fqdn, Key256};
use toml::{Table, Value};

fn vectors() -> Table {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testvectors/rspf/gba.toml");
    std::fs::read_to_string(p).unwrap().parse().unwrap()
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

#[test]
fn generic_kdf_matches_python() {
    let t = vectors();
    let cases = t["kdf"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let params: Vec<Vec<u8>> = c["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| hex::decode(p.as_str().unwrap()).unwrap())
            .collect();
        let chunks: Vec<[&[u8]; 1]> = params.iter().map(|p| [p.as_slice()]).collect();
        let refs: Vec<&[&[u8]]> = chunks.iter().map(|c| c.as_slice()).collect();
        let fc = u8::try_from(c["fc"].as_integer().unwrap()).unwrap();
        let got = kdf::kdf(&h(c, "key"), fc, &refs).unwrap();
        assert_eq!(got.expose().as_slice(), h(c, "out"), "{}", c["name"]);
    }
}

#[test]
fn naf_keys_match_python() {
    let t = vectors();
    for c in t["gba"].as_array().unwrap() {
        let ks: Vec<u8> = [h(c, "ck"), h(c, "ik")].concat();
        let ks = Key256::from_slice(&ks).unwrap();
        let rand: [u8; 16] = h(c, "rand").try_into().unwrap();
        let fqdn = Fqdn::new("NAF", c["naf_fqdn"].as_str().unwrap()).unwrap();
        let naf = NafId {
            fqdn,
            protocol: UaProtocolId(h(c, "ua_protocol").try_into().unwrap()),
        };
        let impi = c["impi"].as_str().unwrap();
        for (which, key) in [
            (NafKey::KsNaf, "ks_naf"),
            (NafKey::KsExtNaf, "ks_ext_naf"),
            (NafKey::KsIntNaf, "ks_int_naf"),
        ] {
            let got = gba::naf_key(which, &ks, &rand, impi, &naf).unwrap();
            assert_eq!(got.expose().as_slice(), h(c, key), "{} {key}", c["name"]);
        }
        if c["name"].as_str() == Some("mef-tls-psk") {
            assert_eq!(naf.protocol, UaProtocolId::tls_shared_key(0x00a8));
        }
        if c["name"].as_str() == Some("tls13-shared-key") {
            assert_eq!(naf.protocol, UaProtocolId::TLS13_SHARED_KEY);
        }
        // B-TID both ways.
        let bsf = Fqdn::new("BSF", c["bsf"].as_str().unwrap()).unwrap();
        let mut buf = [0u8; 300];
        let btid = gba::write_btid(&rand, &bsf, &mut buf).unwrap();
        assert_eq!(btid, c["btid"].as_str().unwrap());
        let (r, d) = gba::parse_btid(btid).unwrap();
        assert_eq!((r, d), (rand, bsf));
    }
}

#[test]
fn bad_identifiers_and_lengths_are_refused() {
    let long_label = format!("{}.example", "a".repeat(64));
    for bad in [
        "",
        "localhost",
        "a..b",
        "-a.b",
        "a-.b",
        "a_b.c",
        "a.b.",
        "1.2.3.4",
        &long_label,
    ] {
        assert!(Fqdn::new("test", bad).is_err(), "{bad:?}");
    }
    let label = "a".repeat(63);
    let long = format!("{label}.{label}.{label}.{label}.example");
    assert!(Fqdn::new("test", &long).is_err());
    assert!(Fqdn::new("test", "mef.example.com").is_ok());
    for bad in [
        "",
        "no-at-sign",
        "AAAAAAAAAAAAAAAAAAAAAA==@",
        "AAAAAAAAAAAAAAAAAAAAAB==@bsf.example",
        "AAAAAAAAAAAAAAAAAAAA@bsf.example",
        "AAAAAAAAAAAAAAAAAAAAA*==@bsf.example",
    ] {
        assert!(gba::parse_btid(bad).is_err(), "{bad:?}");
    }
    let ks = Key256::from_bytes([7; 32]);
    let naf = NafId {
        fqdn: Fqdn::new("NAF", "naf.example").unwrap(),
        protocol: UaProtocolId([1, 0, 0, 1, 1]),
    };
    assert!(gba::naf_key(NafKey::KsNaf, &ks, &[0; 16], "has space@x", &naf).is_err());
    assert!(gba::naf_key(NafKey::KsNaf, &ks, &[0; 16], &"i".repeat(254), &naf).is_err());
    let huge = vec![0u8; 65536];
    assert!(kdf::kdf(b"k", 1, &[&[&huge]]).is_err());
    assert!(kdf::kdf(b"k", 1, &[&[&huge[..65535]]]).is_ok());
    let mut small = [0u8; 10];
    assert!(gba::write_btid(&[0; 16], &Fqdn::new("BSF", "bsf.example").unwrap(), &mut small).is_err());
}

#[test]
fn keys_do_not_print_and_compare_by_value() {
    let a = Key256::from_bytes([1; 32]);
    assert_eq!(format!("{a:?}"), "Key256(<redacted>)");
    assert_eq!(a, Key256::from_bytes([1; 32]));
    assert_ne!(a, Key256::from_bytes([2; 32]));
}

/// TS 24.109 5.3.3.1.2 / TS 36.508 table 4.7H-5: the GBA_ME PSK identity is
/// `3GPP-bootstrapping` `.` B-TID; the seed's bare B-TID is read too.
#[test]
fn the_3gpp_psk_identity_form_is_written_and_both_forms_are_read() {
    let btid = "AAECAwQFBgcICQoLDA0ODw==@bsf.example.net";
    assert_eq!(gba::PSK_IDENTITY_HINT, "3GPP-bootstrapping");
    assert_eq!(gba::psk_identity(btid), format!("3GPP-bootstrapping.{btid}"));
    assert_eq!(gba::btid_of_identity(&gba::psk_identity(btid)), Some(btid));
    assert_eq!(gba::btid_of_identity(&format!("3GPP-bootstrapping{btid}")), Some(btid));
    assert_eq!(gba::btid_of_identity(btid), Some(btid));
    for other in [
        format!("3GPP-bootstrapping-uicc.{btid}"),
        format!("3GPP-bootstrapping-digest.{btid}"),
        format!("3gpp-bootstrapping.{btid}"),
        format!("3GPP-bootstrapping..{btid}"),
        "3GPP-bootstrapping.".to_owned(),
        "kpm-dev1".to_owned(),
        "00112233445566778899AABBCCDDEEFF@mef.example.net".to_owned(),
    ] {
        assert_eq!(gba::btid_of_identity(&other), None, "{other}");
    }
    // The suite enters NAF_Id: TS-0003 10.2.2's mandatory suite and an ECDHE-PSK one differ.
    assert_eq!(
        UaProtocolId::for_tls_psk(true, Some(gba::TLS_PSK_WITH_AES_128_CBC_SHA256)),
        Some(UaProtocolId([1, 0, 1, 0x00, 0xAE]))
    );
    assert_eq!(
        UaProtocolId::for_tls_psk(true, Some(0xC037)),
        Some(UaProtocolId([1, 0, 1, 0xC0, 0x37]))
    );
    assert_eq!(UaProtocolId::for_tls_psk(true, None), None);
    assert_eq!(
        UaProtocolId::for_tls_psk(false, None),
        Some(UaProtocolId::TLS13_SHARED_KEY)
    );
}
