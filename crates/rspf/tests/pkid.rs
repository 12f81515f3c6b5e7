//! Raw public key identifiers (TS-0003 V3.18.0 10.1.2, RFC 6920 `ni:` URIs)
//! against `testvectors/rspf/pkid.toml`, written by Python's hashlib and
//! base64.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_rspf::PublicKeyId;
use toml::Table;

#[test]
fn ni_uris_and_hex_name_the_key_python_hashed() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testvectors/rspf/pkid.toml")).unwrap();
    let t: Table = text.parse().unwrap();
    let cases = t["pkid"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let s = |k: &str| c[k].as_str().unwrap().to_owned();
        let spki = hex::decode(s("spki")).unwrap();
        let id = PublicKeyId::of_spki(&spki);
        assert_eq!(id.to_hex(), s("sha256"));
        assert_eq!(id.to_ni(), s("ni"));
        assert_eq!(id.to_string(), s("ni"));
        assert_eq!(PublicKeyId::parse(&s("ni")).unwrap(), id);
        assert_eq!(PublicKeyId::parse(&s("sha256")).unwrap(), id);
        for same in c["same"].as_array().unwrap() {
            let same = same.as_str().unwrap();
            assert_eq!(PublicKeyId::parse(same).unwrap(), id, "{same}");
        }
        for bad in c["refused"].as_array().unwrap() {
            let bad = bad.as_str().unwrap();
            assert!(PublicKeyId::parse(bad).is_err(), "{bad}");
        }
    }
}

#[test]
fn malformed_identifiers_are_refused_with_a_reason() {
    let good = "oekVYFTgT6yJmunydRMs3Ael28TqLCrTof_G4NJTaB8";
    let why = |s: &str| PublicKeyId::parse(s).unwrap_err().to_string();
    assert!(why(&format!("ni:///sha-256-32;{}", &good[..6])).contains("truncated"));
    assert!(why(&format!("ni:///md5;{good}")).contains("only the sha-256"));
    assert!(why(&format!("ni://user@host/sha-256;{good}")).contains("authority"));
    assert!(why(&format!("ni:///sha-256;{good}?a b")).contains("query"));
    assert!(why(&format!("ni:///sha-256;{good}#frag")).contains("43 base64url"));
    assert!(why("").contains("neither"));
    assert!(why(&"0".repeat(63)).contains("neither"));
    assert!(why(&"g".repeat(64)).contains("hexadecimal"));
    assert!(why(&format!("ni:///sha-256;{good}?{}", "x".repeat(600))).contains("longer than"));
    // Non-canonical trailing bits: the last character carries 4 bits, 2 of them must be zero.
    let last_bits = format!("ni:///sha-256;{}9", &good[..42]);
    assert!(why(&last_bits).contains("canonical"), "{last_bits}");
    // Every prefix and every single-character corruption is an error, not a panic.
    let uri = format!("ni:///sha-256;{good}");
    for i in 0..uri.len() {
        let _ = PublicKeyId::parse(&uri[..i]);
        let mut b = uri.clone().into_bytes();
        b[i] ^= 0x80;
        if let Ok(s) = String::from_utf8(b) {
            let _ = PublicKeyId::parse(&s);
        }
    }
}
