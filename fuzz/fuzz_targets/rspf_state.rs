//! The Enrolee's kept state (`enrolment.toml`) and a GBA bootstrap file:
//! any text is either refused with an error or yields keys consistent with
//! what the file names; never a panic.
#![no_main]
use enrolkit_client::rspf::{EnrolmentState, GbaBootstrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok((state, keys)) = EnrolmentState::from_toml(text) {
        assert!(state.ke_id.starts_with(&keys.relative_ke_id.to_string()));
        assert!(state.kre_id.starts_with(&keys.relative_kre_id.to_string()));
        // What it writes back reads back the same.
        let again = state.to_toml().expect("a loaded state serialises");
        let (back, back_keys) = EnrolmentState::from_toml(&again).expect("a written state reads back");
        assert_eq!(back.ke_id, state.ke_id);
        assert_eq!(back_keys.ke.expose(), keys.ke.expose());
    }
    if let Ok(b) = GbaBootstrap::from_toml(text) {
        let _ = b.psk("mef.example.net", 0);
    }
});
