//! Provisioning profiles: any text either loads into a profile that passes
//! its own checks, or is refused with a field and a reason; never a panic.
#![no_main]
use enrolkit_client::agent::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Profile::from_toml(text, "fuzz.toml") {
        Ok(p) => {
            assert!(!p.anchors.is_empty(), "a loaded profile pins at least one anchor");
            assert!((1..=99).contains(&p.renewal.threshold_percent));
            assert_eq!(p.output.key_mode & 0o007, 0, "a loaded profile never lets others near the key");
        }
        Err(e) => assert!(!e.field.is_empty() && !e.reason.is_empty()),
    }
});
