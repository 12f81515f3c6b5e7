//! RFC 8951 base64 bodies: every line-break style real peers send, and the
//! failures that must be reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use enrolkit_est::{decode_base64, decode_body, encode_base64, EstError, MAX_BODY};

fn sample() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn flat(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn wrap(s: &str, width: usize, eol: &str) -> String {
    s.as_bytes()
        .chunks(width)
        .map(|c| format!("{}{eol}", std::str::from_utf8(c).unwrap()))
        .collect()
}

#[test]
fn crlf_lf_single_line_and_76_columns() {
    let data = sample();
    let f = flat(&data);
    for body in [
        wrap(&f, 64, "\r\n"),
        wrap(&f, 64, "\n"),
        wrap(&f, 76, "\r\n"), // globalsign/est
        wrap(&f, 76, "\n"),
        f.clone(), // OpenXPKI: one line
        format!("{f}\n"),
    ] {
        assert_eq!(decode_base64(body.as_bytes(), MAX_BODY).unwrap(), data);
        assert_eq!(decode_body(body.as_bytes(), MAX_BODY).unwrap(), data);
    }
}

#[test]
fn trailing_and_stray_whitespace() {
    let data = sample();
    let f = flat(&data);
    // libest's csrattrs output ended in a space.
    let body = format!("{} \r\n", wrap(&f, 64, " \r\n"));
    assert_eq!(decode_base64(body.as_bytes(), MAX_BODY).unwrap(), data);
    let body = format!("\t\x0b\x0c {}\r\n\r\n", f);
    assert_eq!(decode_base64(body.as_bytes(), MAX_BODY).unwrap(), data);
}

#[test]
fn missing_padding() {
    for n in 0..10usize {
        let data: Vec<u8> = (0..n as u8).collect();
        let f = flat(&data);
        assert_eq!(decode_base64(f.trim_end_matches('=').as_bytes(), 64).unwrap(), data);
        assert_eq!(decode_base64(f.as_bytes(), 64).unwrap(), data);
    }
}

#[test]
fn garbage_byte_is_named_with_its_position() {
    let body = b"MIIB\r\nAB-D\r\n";
    assert_eq!(
        decode_base64(body, MAX_BODY),
        Err(EstError::InvalidBase64 {
            position: 8,
            byte: b'-'
        })
    );
    // A NUL inside the body is garbage; a trailing one (a C string's
    // terminator, as deployed servers send it) is tolerated, see src/body.rs.
    assert!(matches!(
        decode_base64(b"MI\0I", 10),
        Err(EstError::InvalidBase64 { position: 2, byte: 0 })
    ));
    // URL-safe alphabet is not base64 here.
    assert!(matches!(
        decode_base64(b"ab_d", 10),
        Err(EstError::InvalidBase64 { position: 2, .. })
    ));
    // Data after padding.
    assert!(matches!(
        decode_base64(b"AA==AAAA", 10),
        Err(EstError::InvalidBase64 { position: 4, .. })
    ));
    let err = decode_base64(b"AB-D", 10).unwrap_err().to_string();
    assert!(err.contains("position 2"), "{err}");
}

#[test]
fn oversized() {
    // Rejected on length alone, before decoding.
    let big = vec![b'A'; 10_000];
    assert!(matches!(decode_base64(&big, 100), Err(EstError::TooLarge { .. })));
    // Within the input slack but decoding to more than allowed.
    let data = vec![0u8; 120];
    let body = encode_base64(&data);
    assert!(matches!(
        decode_base64(body.as_bytes(), 100),
        Err(EstError::TooLarge { .. })
    ));
    assert_eq!(decode_base64(body.as_bytes(), 120).unwrap(), data);
}

#[test]
fn emitted_lines_are_64_columns_crlf() {
    let data = sample();
    let out = encode_base64(&data);
    assert!(out.ends_with("\r\n"));
    let lines: Vec<&str> = out.split_terminator("\r\n").collect();
    assert_eq!(lines.concat(), flat(&data));
    for (i, l) in lines.iter().enumerate() {
        if i + 1 < lines.len() {
            assert_eq!(l.len(), 64);
        } else {
            assert!(!l.is_empty() && l.len() <= 64);
        }
        assert!(!l.contains('\n') && !l.contains('\r'));
    }
}
