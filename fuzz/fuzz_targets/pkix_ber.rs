//! enrolkit-pkix BER normaliser and checker: never panic; `check` and
//! `normalize` agree; normalised output is a fixed point and passes `check`.
#![no_main]
use enrolkit_pkix::ber::{check, normalize, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [Limits::DEFAULT, Limits::DEFAULT.with_max_depth(32).with_max_elements(64)] {
        let checked = check(data, &limits);
        let normalised = normalize(data, &limits);
        assert_eq!(checked.is_ok(), normalised.is_ok(), "check and normalize disagree: {checked:?} {normalised:?}");
        if let Ok(der) = normalised {
            let again = normalize(&der, &limits).expect("normalised output must parse");
            assert_eq!(again, der, "normalisation must be idempotent");
            check(&der, &limits).expect("normalised output must pass check");
        }
    }
});
