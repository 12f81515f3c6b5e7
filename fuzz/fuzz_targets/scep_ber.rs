//! BER normaliser and SET-size scanner: never panic, and normalised output is a fixed point.
#![no_main]
use enrolkit_scep::ber::{check_set_sizes, normalize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_set_sizes(data);
    if let Ok(der) = normalize(data, 1 << 20) {
        let again = normalize(&der, 1 << 20).expect("normalised output must parse");
        assert_eq!(again, der, "normalisation must be idempotent");
    }
});
