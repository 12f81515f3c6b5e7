//! Paths, Content-Type headers, multipart boundaries and Retry-After, on
//! the input as text: never panic, and what parses prints back to itself.
#![no_main]
use enrolkit_est::{multipart_boundary, EstPath, MediaType, RetryAfter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(p) = EstPath::parse(s) {
        assert_eq!(EstPath::parse(&p.to_string()).expect("canonical path must parse"), p);
    }
    if let Ok(m) = MediaType::parse(s) {
        assert_eq!(MediaType::parse(m.as_str()).expect("exact media type must parse"), m);
    }
    if let Ok(b) = multipart_boundary(s) {
        let ct = enrolkit_est::media::multipart_content_type(&b).expect("valid boundary must format");
        assert_eq!(multipart_boundary(&ct).expect("formatted content type must parse"), b);
    }
    if let Ok(r) = RetryAfter::parse(s) {
        let _ = r.delay(std::time::SystemTime::UNIX_EPOCH);
        let _ = RetryAfter::parse(&r.to_string()).expect("formatted Retry-After must parse");
    }
});
