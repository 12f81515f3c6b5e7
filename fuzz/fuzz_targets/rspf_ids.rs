//! oneM2M key identifiers, B-TIDs, FQDNs and target identifiers, and the
//! derivations on whatever parses: never panic, and what parses prints back
//! to itself.
#![no_main]
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, TargetId};
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
    if let Ok(t) = TargetId::new(s) {
        let keys = EnrolmentKeys::from_export(&[0x5a; 48]).expect("48 octets");
        let mef = enrolkit_rspf::Fqdn::new("MEF", "mef.example.com").expect("valid");
        for u in CredentialUsage::ALL {
            keys.target_key(u, t, mef).expect("valid target derives");
        }
    }
    let _ = EnrolmentKeys::from_export(data);
});
