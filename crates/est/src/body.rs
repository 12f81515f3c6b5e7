//! Base64 bodies (RFC 7030 §4 as clarified by RFC 8951).
//!
//! Every EST body except the multipart envelope is base64 of DER, whatever
//! the Content-Transfer-Encoding header says (RFC 8951: the header is
//! ignored on receipt). Peers wrap at 64 or 76 columns, use CRLF or LF, add
//! trailing spaces or send one long line; all of that is accepted. What we
//! send is wrapped at 64 columns with CRLF line ends.

use crate::error::{EstError, Result};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use zeroize::Zeroizing;

/// Default bound on a decoded body (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// Characters per line of emitted base64.
pub const LINE: usize = 64;

/// Decoding engine: standard alphabet, padding optional, lenient final bits.
const TOLERANT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encoding engine: standard alphabet, padded.
const STRICT: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Whitespace skipped anywhere in a body: SP, HT, LF, VT, FF, CR.
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Most NUL bytes tolerated at the end of a body: some EST servers count a
/// C string's terminator in Content-Length (seen on `/csrattrs`).
pub const MAX_TRAILING_NULS: usize = 8;

/// The length of `input` without a tail of whitespace and at most
/// [`MAX_TRAILING_NULS`] NUL bytes (a longer run of NULs is left in place,
/// to be refused as what it is).
fn without_nul_tail(input: &[u8]) -> usize {
    let mut end = input.len();
    let mut nuls = 0usize;
    while let Some(&b) = end.checked_sub(1).and_then(|i| input.get(i)) {
        if b == 0 {
            nuls += 1;
            if nuls > MAX_TRAILING_NULS {
                return input.len();
            }
        } else if !is_ws(b) {
            break;
        }
        end -= 1;
    }
    if nuls == 0 {
        input.len()
    } else {
        end
    }
}

/// Longest input accepted for `max_decoded` bytes: base64 expansion plus a
/// quarter for line breaks and stray whitespace, plus a little slack.
fn max_encoded(max_decoded: usize) -> usize {
    let enc = max_decoded.div_ceil(3).saturating_mul(4);
    enc.saturating_add(enc / 4).saturating_add(256)
}

/// Decode an RFC 8951 base64 body of at most `max_decoded` bytes.
///
/// ASCII whitespace is ignored anywhere; trailing `=` padding is optional;
/// up to [`MAX_TRAILING_NULS`] NUL bytes at the very end (among trailing
/// whitespace) are ignored, as deployed servers send them; any other byte
/// outside the base64 alphabet is an error naming its position. The input
/// length is checked before anything is allocated.
pub fn decode_base64(input: &[u8], max_decoded: usize) -> Result<Vec<u8>> {
    let limit = max_encoded(max_decoded);
    if input.len() > limit {
        return Err(EstError::TooLarge {
            what: "base64 body",
            limit,
        });
    }
    // The body may be a private key (serverkeygen): the cleaned copy is wiped too.
    let mut clean = Zeroizing::new(Vec::with_capacity(input.len()));
    let mut padding = 0usize;
    let end = without_nul_tail(input);
    for (position, &byte) in input.iter().take(end).enumerate() {
        if is_ws(byte) {
            continue;
        }
        let ok = match byte {
            b'=' => {
                padding += 1;
                padding <= 2
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => padding == 0,
            _ => false,
        };
        if !ok {
            return Err(EstError::InvalidBase64 { position, byte });
        }
        clean.push(byte);
    }
    let data_len = clean.len() - padding;
    if data_len % 4 == 1 {
        return Err(EstError::malformed("base64 body", "truncated: one character left over"));
    }
    if padding > 0 && clean.len() % 4 != 0 {
        return Err(EstError::malformed(
            "base64 body",
            "padding does not complete a quantum",
        ));
    }
    let decoded_len = data_len / 4 * 3 + (data_len % 4).saturating_sub(1);
    if decoded_len > max_decoded {
        return Err(EstError::TooLarge {
            what: "decoded body",
            limit: max_decoded,
        });
    }
    TOLERANT
        .decode(clean.as_slice())
        .map_err(|e| EstError::malformed("base64 body", e))
}

/// Decode an EST body: the same as [`decode_base64`]. The
/// Content-Transfer-Encoding header is deliberately not an argument
/// (RFC 8951).
pub fn decode_body(input: &[u8], max_decoded: usize) -> Result<Vec<u8>> {
    decode_base64(input, max_decoded)
}

/// Encode DER as base64: standard alphabet, padded, lines of 64 characters
/// each ended by CRLF (the last one too). Empty input gives an empty string.
pub fn encode_base64(der: &[u8]) -> String {
    let flat = Zeroizing::new(STRICT.encode(der));
    let mut out = String::with_capacity(flat.len() + flat.len() / LINE * 2 + 2);
    let mut rest = flat.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(LINE));
        out.push_str(line);
        out.push_str("\r\n");
        rest = tail;
    }
    out
}

/// Base64 without line breaks (for header-sized values such as a channel binding).
pub(crate) fn encode_flat(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_64_with_crlf() {
        let data: Vec<u8> = (0..=255).collect();
        let s = encode_base64(&data);
        let lines: Vec<&str> = s.split("\r\n").collect();
        assert_eq!(lines.last(), Some(&""));
        for l in &lines[..lines.len() - 2] {
            assert_eq!(l.len(), 64);
        }
        assert!(s.ends_with("\r\n"));
        assert_eq!(decode_base64(s.as_bytes(), 256).unwrap(), data);
        assert_eq!(encode_base64(&[]), "");
        assert_eq!(encode_base64(&[0; 48]).len(), 66);
    }

    #[test]
    fn tolerant_decode() {
        assert_eq!(decode_base64(b"AQID", 3).unwrap(), [1, 2, 3]);
        assert_eq!(decode_base64(b"AQI", 3).unwrap(), [1, 2]);
        assert_eq!(decode_base64(b"AQI=", 3).unwrap(), [1, 2]);
        assert_eq!(decode_base64(b"AQ", 3).unwrap(), [1]);
        assert_eq!(decode_base64(b" A Q\r\n=\x0b=\x0c\t", 3).unwrap(), [1]);
        assert_eq!(decode_base64(b"", 3).unwrap(), Vec::<u8>::new());
        assert_eq!(
            decode_base64(b"AQ*D", 3),
            Err(EstError::InvalidBase64 {
                position: 2,
                byte: b'*'
            })
        );
        assert!(matches!(
            decode_base64(b"AQ=D", 3),
            Err(EstError::InvalidBase64 { position: 3, .. })
        ));
        assert!(decode_base64(b"AQ===", 3).is_err());
        assert!(decode_base64(b"A", 3).is_err());
        assert!(decode_base64(b"AQI==", 3).is_err());
        assert!(matches!(decode_base64(b"AQIDBA", 3), Err(EstError::TooLarge { .. })));
    }

    #[test]
    fn a_nul_terminated_body_is_read_but_a_nul_inside_is_not() {
        // As a deployed EST server sends /csrattrs: the C string's NUL counted in Content-Length.
        assert_eq!(decode_base64(b"AQID\0", 3).unwrap(), [1, 2, 3]);
        assert_eq!(
            decode_base64(
                b"AQID
\0", 3
            )
            .unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            decode_base64(
                b"AQI=\0
\0",
                3
            )
            .unwrap(),
            [1, 2]
        );
        assert_eq!(
            decode_base64(&[b'A', b'Q', b'I', b'D', 0, 0, 0, 0, 0, 0, 0, 0], 3).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            decode_base64(&[b'A', b'Q', b'I', b'D', 0, 0, 0, 0, 0, 0, 0, 0, 0], 3),
            Err(EstError::InvalidBase64 { position: 4, byte: 0 })
        );
        assert_eq!(
            decode_base64(b"AQ\0ID", 3),
            Err(EstError::InvalidBase64 { position: 2, byte: 0 })
        );
        assert_eq!(decode_base64(b"\0", 3).unwrap(), Vec::<u8>::new());
    }
}
