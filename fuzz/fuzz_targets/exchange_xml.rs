//! Every oneM2M exchange message from xml input: never panic, and whatever
//! decodes re-encodes to bytes that decode to the same message (one
//! encoding per message).
#![no_main]
use enrolkit_exchange::{decode, encode, Completion, CredentialResponse, EnrolmentInstructions, EnrolmentRequest, Format, Message};
use libfuzzer_sys::fuzz_target;

fn check<M: Message + PartialEq + std::fmt::Debug>(data: &[u8], f: Format) {
    if let Ok(m) = decode::<M>(data, f) {
        let bytes = encode(&m, f).expect("a decoded message encodes");
        let again: M = decode(&bytes, f).expect("our encoding decodes");
        assert_eq!(again, m);
        assert_eq!(encode(&again, f).expect("encodes"), bytes, "encoding is stable");
    }
}

fuzz_target!(|data: &[u8]| {
    let f = Format::Xml;
    check::<EnrolmentRequest>(data, f);
    check::<EnrolmentInstructions>(data, f);
    check::<Completion>(data, f);
    check::<CredentialResponse>(data, f);
});
