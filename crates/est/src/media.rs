//! The media types of EST bodies (RFC 7030 §3.2.4, §4), emitted exactly and
//! parsed tolerantly.
//!
//! Out: the exact strings of [`MediaType::as_str`] — libest compares
//! `application/pkcs7-mime; smime-type=certs-only` byte for byte, space
//! included. In: type, subtype and parameter names case-insensitive,
//! whitespace anywhere it may be, quoted values, parameters in any order,
//! unknown parameters (charset…) ignored.

use crate::error::{EstError, Result};

/// Name of the header every EST body is sent with (RFC 7030 §4, RFC 8951).
pub const CONTENT_TRANSFER_ENCODING: &str = "Content-Transfer-Encoding";
/// The only Content-Transfer-Encoding EST sends.
pub const BASE64: &str = "base64";

/// Longest Content-Type header value parsed.
pub const MAX_HEADER: usize = 1024;
/// Most parameters read from one Content-Type.
const MAX_PARAMS: usize = 16;
/// Longest multipart boundary (RFC 2046 §5.1.1).
pub const MAX_BOUNDARY: usize = 70;

/// A media type EST sends or receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// A degenerate SignedData carrying certificates (RFC 5751 `certs-only`).
    CertsOnly,
    /// A PKCS#10 certification request.
    Pkcs10,
    /// A CSR attributes response (RFC 7030 §4.5.2).
    CsrAttrs,
    /// A PKCS#8 private key (RFC 5958), in a serverkeygen response.
    Pkcs8,
    /// The serverkeygen response (RFC 7030 §4.4.2); needs a boundary parameter.
    MultipartMixed,
    /// A Full PKI Request (RFC 5272).
    CmcRequest,
    /// A Full PKI Response (RFC 5272).
    CmcResponse,
}

impl MediaType {
    /// The exact string to send in a Content-Type header (without boundary
    /// for [`MediaType::MultipartMixed`]; see [`multipart_content_type`]).
    pub fn as_str(&self) -> &'static str {
        match self {
            MediaType::CertsOnly => "application/pkcs7-mime; smime-type=certs-only",
            MediaType::Pkcs10 => "application/pkcs10",
            MediaType::CsrAttrs => "application/csrattrs",
            MediaType::Pkcs8 => "application/pkcs8",
            MediaType::MultipartMixed => "multipart/mixed",
            MediaType::CmcRequest => "application/pkcs7-mime; smime-type=CMC-request",
            MediaType::CmcResponse => "application/pkcs7-mime; smime-type=CMC-response",
        }
    }

    /// Parse a Content-Type header value. `application/pkcs7-mime` without
    /// smime-type is taken as certs-only; `x-` prefixed legacy subtypes of
    /// pkcs7-mime and pkcs10 are accepted too.
    pub fn parse(header: &str) -> Result<MediaType> {
        let parsed = ContentType::parse(header)?;
        let unsupported = || EstError::UnsupportedMediaType(header.trim().to_owned());
        let t = parsed.type_.to_ascii_lowercase();
        let s = parsed.subtype.to_ascii_lowercase();
        let m = match (t.as_str(), s.as_str()) {
            ("application", "pkcs7-mime" | "x-pkcs7-mime") => match parsed.param("smime-type") {
                None => MediaType::CertsOnly,
                Some(v) if v.eq_ignore_ascii_case("certs-only") => MediaType::CertsOnly,
                Some(v) if v.eq_ignore_ascii_case("CMC-request") => MediaType::CmcRequest,
                Some(v) if v.eq_ignore_ascii_case("CMC-response") => MediaType::CmcResponse,
                Some(_) => return Err(unsupported()),
            },
            ("application", "pkcs10" | "x-pkcs10") => MediaType::Pkcs10,
            ("application", "csrattrs") => MediaType::CsrAttrs,
            ("application", "pkcs8") => MediaType::Pkcs8,
            ("multipart", "mixed") => MediaType::MultipartMixed,
            _ => return Err(unsupported()),
        };
        Ok(m)
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `boundary` parameter of a `multipart/mixed` Content-Type, validated
/// per RFC 2046 §5.1.1 (1 to 70 characters of `bchars`, not ending in a space).
pub fn multipart_boundary(header: &str) -> Result<String> {
    let parsed = ContentType::parse(header)?;
    if !parsed.type_.eq_ignore_ascii_case("multipart") || !parsed.subtype.eq_ignore_ascii_case("mixed") {
        return Err(EstError::UnsupportedMediaType(header.trim().to_owned()));
    }
    let b = parsed
        .param("boundary")
        .ok_or_else(|| EstError::malformed("multipart/mixed Content-Type", "no boundary parameter"))?;
    validate_boundary(&b)?;
    Ok(b)
}

/// The Content-Type value for a multipart/mixed body with `boundary`
/// (quoted when the boundary holds characters a token may not).
pub fn multipart_content_type(boundary: &str) -> Result<String> {
    validate_boundary(boundary)?;
    if boundary.bytes().all(is_token_char) {
        Ok(format!("multipart/mixed; boundary={boundary}"))
    } else {
        Ok(format!("multipart/mixed; boundary=\"{boundary}\""))
    }
}

/// Check a boundary against RFC 2046 §5.1.1.
pub(crate) fn validate_boundary(b: &str) -> Result<()> {
    let bad = |reason: &str| EstError::malformed("multipart boundary", reason);
    if b.is_empty() {
        return Err(bad("empty"));
    }
    if b.len() > MAX_BOUNDARY {
        return Err(EstError::TooLarge {
            what: "multipart boundary",
            limit: MAX_BOUNDARY,
        });
    }
    if let Some(c) = b.bytes().find(|c| !is_bchar(*c)) {
        return Err(bad(&format!("character 0x{c:02x} is not allowed")));
    }
    if b.ends_with(' ') {
        return Err(bad("ends with a space"));
    }
    Ok(())
}

fn is_bchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c)
}

/// RFC 9110 token characters.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A parsed Content-Type: type, subtype and parameters (names lowercased).
struct ContentType {
    type_: String,
    subtype: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    fn param(&self, name: &str) -> Option<String> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    fn parse(header: &str) -> Result<ContentType> {
        if header.len() > MAX_HEADER {
            return Err(EstError::TooLarge {
                what: "Content-Type header",
                limit: MAX_HEADER,
            });
        }
        let bad = |reason: String| EstError::malformed("Content-Type", reason);
        let mut cur = Cursor {
            s: header.as_bytes(),
            pos: 0,
        };
        cur.skip_ws();
        let type_ = cur.token();
        if type_.is_empty() {
            return Err(bad("no media type".into()));
        }
        cur.skip_ws();
        if !cur.eat(b'/') {
            return Err(bad("no '/' between type and subtype".into()));
        }
        cur.skip_ws();
        let subtype = cur.token();
        if subtype.is_empty() {
            return Err(bad("no subtype".into()));
        }
        let mut params = Vec::new();
        loop {
            cur.skip_ws();
            if cur.at_end() {
                break;
            }
            if !cur.eat(b';') {
                return Err(bad(format!("unexpected character at position {}", cur.pos)));
            }
            cur.skip_ws();
            if cur.at_end() {
                break; // A trailing ';' is harmless.
            }
            if cur.peek() == Some(b';') {
                continue;
            }
            let name = cur.token().to_ascii_lowercase();
            if name.is_empty() {
                return Err(bad(format!("bad parameter name at position {}", cur.pos)));
            }
            cur.skip_ws();
            if !cur.eat(b'=') {
                return Err(bad(format!("parameter {name} has no value")));
            }
            cur.skip_ws();
            let value = if cur.peek() == Some(b'"') {
                cur.quoted()
                    .ok_or_else(|| bad(format!("unterminated quoted value of {name}")))?
            } else {
                cur.token()
            };
            if params.len() >= MAX_PARAMS {
                return Err(EstError::TooLarge {
                    what: "Content-Type parameters",
                    limit: MAX_PARAMS,
                });
            }
            params.push((name, value));
        }
        Ok(ContentType { type_, subtype, params })
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }
    fn token(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or_default()).into_owned()
    }
    /// A quoted-string (RFC 9110 §5.6.4) starting at the opening quote.
    fn quoted(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    out.push(self.peek()?);
                    self.pos += 1;
                }
                c => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_strings_roundtrip() {
        for m in [
            MediaType::CertsOnly,
            MediaType::Pkcs10,
            MediaType::CsrAttrs,
            MediaType::Pkcs8,
            MediaType::MultipartMixed,
            MediaType::CmcRequest,
            MediaType::CmcResponse,
        ] {
            assert_eq!(MediaType::parse(m.as_str()).unwrap(), m);
        }
    }

    #[test]
    fn tolerant() {
        for h in [
            "application/pkcs7-mime;smime-type=certs-only",
            "Application/PKCS7-MIME ; SMIME-Type = \"certs-only\"",
            "application/pkcs7-mime; name=cert.p7c; smime-type=certs-only",
            "application/pkcs7-mime",
            "application/x-pkcs7-mime; smime-type=certs-only;",
        ] {
            assert_eq!(MediaType::parse(h).unwrap(), MediaType::CertsOnly, "{h}");
        }
        assert_eq!(
            MediaType::parse("application/csrattrs; charset=utf-8").unwrap(),
            MediaType::CsrAttrs
        );
        assert!(matches!(
            MediaType::parse("application/pkcs7-mime; smime-type=server-generated-key"),
            Err(EstError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            MediaType::parse("text/plain"),
            Err(EstError::UnsupportedMediaType(_))
        ));
        assert!(matches!(MediaType::parse("garbage"), Err(EstError::Malformed { .. })));
        assert!(matches!(MediaType::parse(""), Err(EstError::Malformed { .. })));
    }

    #[test]
    fn boundaries() {
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=est-1234").unwrap(),
            "est-1234"
        );
        assert_eq!(
            multipart_boundary("Multipart/Mixed;Boundary=\"a b:c\"").unwrap(),
            "a b:c"
        );
        assert!(multipart_boundary("multipart/mixed").is_err());
        assert!(multipart_boundary("multipart/mixed; boundary=\"\"").is_err());
        assert!(multipart_boundary("multipart/mixed; boundary=\"ab \"").is_err());
        let long = "a".repeat(71);
        assert!(matches!(
            multipart_boundary(&format!("multipart/mixed; boundary={long}")),
            Err(EstError::TooLarge { .. })
        ));
        assert!(multipart_boundary("application/pkcs8; boundary=x").is_err());
        assert_eq!(
            multipart_content_type("a b").unwrap(),
            "multipart/mixed; boundary=\"a b\""
        );
    }
}
