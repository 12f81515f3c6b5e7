//! Ke, KeId, Kre, KreId, Kc, KcId and Enrolment Target keys against
//! `testvectors/rspf/rspf.toml`: exporter output printed by OpenSSL for real
//! TLS 1.2 and 1.3 handshakes, derivations by Python's `hmac`
//! (testvectors/rspf/rspf.py), never by us.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, RelativeId, TargetId, EXPORTER_LABEL};
use enrolkit_rspf::{Fqdn, Key256, Suid, TargetFqdn};
use toml::{Table, Value};

fn vectors() -> Vec<Value> {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testvectors/rspf/rspf.toml");
    let t: Table = std::fs::read_to_string(p).unwrap().parse().unwrap();
    t["enrolment"].as_array().unwrap().clone()
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

#[test]
fn derivations_match_openssl_exports_and_python() {
    let cases = vectors();
    let tls: Vec<&str> = cases.iter().map(|c| st(c, "tls")).collect();
    assert_eq!(tls, ["1.2", "1.3"], "one vector per TLS version");
    for c in &cases {
        assert_eq!(st(c, "label"), EXPORTER_LABEL);
        let keys = EnrolmentKeys::from_export(&h(c, "export")).unwrap();
        assert_eq!(keys.ke.expose().as_slice(), h(c, "ke"));
        assert_eq!(keys.relative_ke_id.0.as_slice(), h(c, "relative_ke_id"));
        assert_eq!(keys.kre.expose().as_slice(), h(c, "kre"));
        let mef = Fqdn::new("MEF", st(c, "mef_fqdn")).unwrap();
        assert_eq!(keys.ke_id(mef).to_string(), st(c, "ke_id"));
        assert_eq!(keys.kre_id(mef).to_string(), st(c, "kre_id"));
        let maf = Fqdn::new("MAF", st(c, "maf_fqdn")).unwrap();
        let (kc, kc_id) = keys.master_credential(maf).unwrap();
        assert_eq!(kc.expose().as_slice(), h(c, "kc"));
        assert_eq!(kc_id.to_string(), st(c, "kc_id"));
        // V3.18: SUID 21/22/23 and the target's FQDN form (NFKC).
        let targets = c["target"].as_array().unwrap();
        assert_eq!(targets.len(), 15);
        for t in targets {
            let suid = Suid::from_value(t["suid"].as_integer().unwrap() as u8).unwrap();
            let fqdn = TargetFqdn::from_id(st(t, "id")).unwrap();
            assert_eq!(fqdn.as_str(), st(t, "fqdn"), "{}", st(t, "id"));
            let (k, kid) = keys.target_key(suid, &fqdn, mef).unwrap();
            assert_eq!(k.expose().as_slice(), h(t, "key"), "{} {suid}", st(t, "id"));
            assert_eq!(kid.to_string(), st(t, "key_id"));
        }
        // The change-request profile: 11/12/13 and the identifier as given.
        let old = c["change_request"].as_array().unwrap();
        assert_eq!(old.len(), 6);
        for t in old {
            let usage = CredentialUsage::parse(st(t, "usage")).unwrap();
            assert_eq!(i64::from(usage.change_request_suid()), t["suid"].as_integer().unwrap());
            let id = TargetId::new(st(t, "id")).unwrap();
            let (k, kid) = keys.target_key_change_request(usage, id, mef).unwrap();
            assert_eq!(k.expose().as_slice(), h(t, "key"), "{} {}", st(t, "id"), usage.name());
            assert_eq!(kid.to_string(), st(t, "key_id"));
        }
        // A stored record (Ke + RelativeKeId) gives the same keys.
        let again = EnrolmentKeys::from_ke(keys.ke.clone(), keys.relative_ke_id).unwrap();
        assert_eq!(again, keys);
    }
}

#[test]
fn usages_and_targets_separate_keys() {
    let keys = EnrolmentKeys::from_export(&[9u8; 48]).unwrap();
    let mef = Fqdn::new("MEF", "mef.example.com").unwrap();
    let mut seen: Vec<Key256> = vec![keys.ke.clone(), keys.kre.clone()];
    for target in ["//sp.example/CSE1", "//sp.example/CSE2", "//sp.example/CSE1/Cae"] {
        let fqdn = TargetFqdn::from_id(target).unwrap();
        for suid in Suid::MEF_ESTABLISHED {
            let (k, _) = keys.target_key(suid, &fqdn, mef).unwrap();
            assert!(!seen.contains(&k), "{target} {suid}");
            seen.push(k);
        }
        for u in CredentialUsage::ALL {
            let (k, _) = keys
                .target_key_change_request(u, TargetId::new(target).unwrap(), mef)
                .unwrap();
            assert!(!seen.contains(&k), "change request {target} {}", u.name());
            seen.push(k);
        }
    }
    // Only MEF-established SUIDs name keys derived from Ke.
    let t = TargetFqdn::from_id("//sp.example/CSE1").unwrap();
    for n in [11u8, 12, 13, 31, 43] {
        assert!(keys.target_key(Suid::from_value(n).unwrap(), &t, mef).is_err(), "{n}");
    }
    let (kc, _) = keys
        .master_credential(Fqdn::new("MAF", "maf.example.com").unwrap())
        .unwrap();
    assert!(!seen.contains(&kc));
    // A MAF co-located with the MEF still gets an identifier of its own.
    let (_, kc_id) = keys.master_credential(mef).unwrap();
    assert_ne!(kc_id, keys.ke_id(mef));
    // Spelling matters to the derivation, so it matters to equality.
    let upper = Fqdn::new("MAF", "MAF.example.com").unwrap();
    let lower = Fqdn::new("MAF", "maf.example.com").unwrap();
    assert_ne!(upper, lower);
    assert_ne!(
        keys.master_credential(upper).unwrap().0,
        keys.master_credential(lower).unwrap().0
    );
}

#[test]
fn identifiers_parse_and_bad_input_is_refused() {
    let id = KeyId::parse("272df962ec6a4e19779ee7d90ec993ca@mef.example.com").unwrap();
    assert_eq!(id.to_string(), "272DF962EC6A4E19779EE7D90EC993CA@mef.example.com");
    for bad in [
        "",
        "272DF962EC6A4E19779EE7D90EC993CA",
        "272DF962EC6A4E19779EE7D90EC993C@mef.example.com",
        "272DF962EC6A4E19779EE7D90EC993CAA@mef.example.com",
        "272DF962EC6A4E19779EE7D90EC993CG@mef.example.com",
        "272DF962EC6A4E19779EE7D90EC993CA@mef",
        "272DF962EC6A4E19779EE7D90EC993CA@mef..com",
        "é72DF962EC6A4E19779EE7D90EC993C@mef.example.com",
    ] {
        assert!(KeyId::parse(bad).is_err(), "{bad:?}");
    }
    assert!(RelativeId::from_hex("00").is_err());
    for n in [0usize, 16, 47, 49, 96] {
        assert!(EnrolmentKeys::from_export(&vec![0; n]).is_err(), "{n}");
    }
    for bad in ["", "has space", "tab\t", "ünicode", &"x".repeat(256)] {
        assert!(TargetId::new(bad).is_err(), "{bad:?}");
    }
    assert_eq!(CredentialUsage::parse("psk-esprim"), Some(CredentialUsage::PskEsPrim));
    assert_eq!(CredentialUsage::parse("13"), None, "SUIDs are not usage names");
    // The adopted mapping from the change request's security types to V3.18 SUIDs.
    let v3: Vec<u8> = CredentialUsage::ALL.iter().map(|u| u.suid().value()).collect();
    assert_eq!(v3, [22, 23, 23]);
    let cr: Vec<u8> = CredentialUsage::ALL.iter().map(|u| u.change_request_suid()).collect();
    assert_eq!(cr, [11, 12, 13]);
    assert_eq!(&CredentialUsage::PskSaef.suid().ascii(), b"22");
}
