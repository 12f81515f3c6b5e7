//! serverkeygen multipart parser: the input up to the first newline is the
//! Content-Type header, the rest the body. Never panic.
#![no_main]
use enrolkit_est::parse_serverkeygen_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(content_type) = std::str::from_utf8(head) else { return };
    if let Ok(r) = parse_serverkeygen_response(content_type, body) {
        assert!(!r.certificates.is_empty());
        let _ = format!("{r:?}");
    }
});
