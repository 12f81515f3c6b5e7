//! Shared by `exchange_json` and `exchange_xml`: every message type from
//! the input in one format; whatever decodes must re-encode to bytes that
//! decode to the same message, and encode again to the same bytes.
use enrolkit_exchange::{
    decode, encode, Completion, CredentialResponse, EnrolmentInstructions, EnrolmentRequest, ExchangeRequest,
    ExchangeResponses, Format, Message, Refused,
};

fn check<M: Message + PartialEq + std::fmt::Debug>(data: &[u8], f: Format) {
    if let Ok(m) = decode::<M>(data, f) {
        let bytes = encode(&m, f).expect("a decoded message encodes");
        let again: M = decode(&bytes, f).expect("our encoding decodes");
        assert_eq!(again, m);
        assert_eq!(encode(&again, f).expect("encodes"), bytes, "encoding is stable");
    }
}

/// Every message type of the exchange, from `data` in `f`.
pub fn all_messages(data: &[u8], f: Format) {
    check::<EnrolmentRequest>(data, f);
    check::<EnrolmentInstructions>(data, f);
    check::<Completion>(data, f);
    check::<CredentialResponse>(data, f);
    check::<Refused>(data, f);
    // TS-0003 V3.18.0's wire profile: the request the MEF reads, the
    // responses the Enrolee reads.
    check::<ExchangeRequest>(data, f);
    check::<ExchangeResponses>(data, f);
}
