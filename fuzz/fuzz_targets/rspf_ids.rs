//! oneM2M key identifiers, B-TIDs, FQDNs and target identifiers, and the
//! derivations on whatever parses: never panic, and what parses prints back
//! to itself.
#![no_main]
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, TargetId};
use enrolkit_rspf::{Suid, TargetFqdn};
use enrolkit_rspf::gba;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(id) = KeyId::parse(s) {
        let text = id.to_string();
        assert_eq!(KeyId::parse(&text).expect("formatted KeId must parse"), id);
    }
    if let Ok((rand, bsf)) = gba::parse_btid(s) {
        let mut buf = [0u8; 300];
        let text = gba::write_btid(&rand, &bsf, &mut buf).expect("B-TID must format");
        assert_eq!(text, s, "a B-TID that parses is canonical");
    }
    let keys = EnrolmentKeys::from_export(&[0x5a; 48]).expect("48 octets");
    let mef = enrolkit_rspf::Fqdn::new("MEF", "mef.example.com").expect("valid");
    if let Ok(t) = TargetId::new(s) {
        for u in CredentialUsage::ALL {
            keys.target_key_change_request(u, t, mef).expect("valid target derives");
        }
    }
    if let Ok(t) = TargetFqdn::from_id(s) {
        // The FQDN form is a fixed point: an FQDN maps to itself.
        assert_eq!(TargetFqdn::from_id(t.as_str()).expect("the FQDN form parses"), t);
        for suid in Suid::MEF_ESTABLISHED {
            keys.target_key(suid, &t, mef).expect("valid target derives");
        }
    }
    if let Ok(id) = enrolkit_rspf::PublicKeyId::parse(s) {
        // Both written forms read back as the same key.
        assert_eq!(enrolkit_rspf::PublicKeyId::parse(&id.to_ni()), Ok(id));
        assert_eq!(enrolkit_rspf::PublicKeyId::parse(&id.to_hex()), Ok(id));
    }
    if let Ok(suid) = Suid::parse(s) {
        assert_eq!(suid.to_string(), s, "a SUID that parses is canonical");
    }
    let _ = EnrolmentKeys::from_export(data);
});
