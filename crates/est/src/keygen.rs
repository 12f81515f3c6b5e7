//! The /serverkeygen response (RFC 7030 §4.4.2): a multipart/mixed body
//! with the private key (`application/pkcs8`) and the certificate
//! (certs-only), each base64 with `Content-Transfer-Encoding: base64`.
//!
//! On the way in, the parts may come in either order, with LF or CRLF line
//! ends, with header names in any case and without Content-Transfer-Encoding;
//! a key part labelled `application/pkcs8` that actually holds a PKCS#1
//! RSAPrivateKey or a SEC1 ECPrivateKey (as libest sends) is converted to
//! PKCS#8. Encrypted keys (`smime-type=server-generated-key`) are not
//! supported.

use crate::body::{decode_base64, encode_base64, MAX_BODY};
use crate::error::{EstError, Result};
use crate::media::{multipart_boundary, multipart_content_type, MediaType, BASE64, CONTENT_TRANSFER_ENCODING};
use crate::oid;
use der::asn1::{AnyRef, UintRef};
use der::{Decode, Encode, Sequence};
use enrolkit_pkix::certs_only;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Largest multipart body parsed.
pub const MAX_MULTIPART: usize = 2 * MAX_BODY;
/// Most parts read from a multipart body.
pub const MAX_PARTS: usize = 8;
/// Most header lines read per part.
pub const MAX_PART_HEADERS: usize = 32;
/// Longest part header line.
const MAX_HEADER_LINE: usize = 1024;

/// A parsed serverkeygen response.
#[derive(Clone)]
pub struct ServerKeyGenResponse {
    /// The private key as PKCS#8 DER (converted if the server sent PKCS#1 or SEC1).
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The certificates of the certs-only part, in the order received (the
    /// issued certificate first, normally).
    pub certificates: Vec<Certificate>,
}

impl std::fmt::Debug for ServerKeyGenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subjects: Vec<String> = self
            .certificates
            .iter()
            .map(|c| c.tbs_certificate.subject.to_string())
            .collect();
        f.debug_struct("ServerKeyGenResponse")
            .field("private_key_pkcs8", &"<redacted>")
            .field("certificates", &subjects)
            .finish()
    }
}

/// A multipart boundary from 16 random bytes the caller drew.
pub fn new_boundary(random: &[u8; 16]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("est-{hex}")
}

/// Build a serverkeygen response: returns the Content-Type header value
/// (with the boundary) and the body. The key must be PKCS#8 DER.
///
/// The body holds the private key: the caller should not keep it longer
/// than it takes to send it.
pub fn encode_serverkeygen_response(
    private_key_pkcs8: &[u8],
    cert: &Certificate,
    boundary: &str,
) -> Result<(String, Vec<u8>)> {
    let content_type = multipart_content_type(boundary)?;
    pkcs8::PrivateKeyInfo::from_der(private_key_pkcs8)
        .map_err(|e| EstError::malformed("server-generated private key", format!("not PKCS#8: {e}")))?;
    let certs = certs_only::encode(std::slice::from_ref(cert), &[])?;
    let key_b64 = Zeroizing::new(encode_base64(private_key_pkcs8));
    let certs_b64 = encode_base64(&certs);
    let mut body = Zeroizing::new(String::with_capacity(key_b64.len() + certs_b64.len() + 512));
    for (media, content) in [
        (MediaType::Pkcs8, key_b64.as_str()),
        (MediaType::CertsOnly, certs_b64.as_str()),
    ] {
        body.push_str("--");
        body.push_str(boundary);
        body.push_str("\r\nContent-Type: ");
        body.push_str(media.as_str());
        body.push_str("\r\n");
        body.push_str(CONTENT_TRANSFER_ENCODING);
        body.push_str(": ");
        body.push_str(BASE64);
        body.push_str("\r\n\r\n");
        body.push_str(content);
    }
    body.push_str("--");
    body.push_str(boundary);
    body.push_str("--\r\n");
    Ok((content_type, body.as_bytes().to_vec()))
}

/// One part of a multipart body: its headers and raw content.
struct Part<'a> {
    headers: Vec<(String, String)>,
    content: &'a [u8],
}

impl Part<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A part being read: its headers so far, whether the blank line after
/// them has been seen, and where its content starts.
struct OpenPart {
    headers: Vec<(String, String)>,
    in_headers: bool,
    content_start: usize,
}

/// Lines of `body` as (start, end of content without EOL, start of next line).
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= body.len() {
            return None;
        }
        let start = pos;
        let nl = body
            .get(start..)
            .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
            .map(|i| start + i);
        let (mut end, next) = match nl {
            Some(i) => (i, i + 1),
            None => (body.len(), body.len()),
        };
        if nl.is_some() && end > start && body.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        pos = next;
        Some((start, end, next))
    })
}

fn trim_lwsp(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b.get(end - 1), Some(b' ' | b'\t')) {
        end -= 1;
    }
    b.get(..end).unwrap_or_default()
}

/// Split a multipart body into parts (RFC 2046 §5.1.1). The preamble and
/// epilogue are skipped; a missing close delimiter ends the last part at the
/// end of the body.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>> {
    let bad = |reason: String| EstError::malformed("multipart body", reason);
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts: Vec<Part<'a>> = Vec::new();
    let mut current: Option<OpenPart> = None;
    // Where the previous line's EOL started (the content of a part ends there).
    let mut prev_eol = 0usize;
    let mut closed = false;
    for (start, end, next) in lines(body) {
        let line = body.get(start..end).unwrap_or_default();
        let is_close = trim_lwsp(line) == close.as_bytes();
        let is_delim = is_close || trim_lwsp(line) == delimiter.as_bytes();
        if is_delim {
            if let Some(open) = current.take() {
                if open.in_headers {
                    return Err(bad("a part ends inside its headers".into()));
                }
                let content_end = prev_eol.max(open.content_start);
                parts.push(Part {
                    headers: open.headers,
                    content: body.get(open.content_start..content_end).unwrap_or_default(),
                });
            }
            if is_close {
                closed = true;
                break;
            }
            if parts.len() >= MAX_PARTS {
                return Err(EstError::TooLarge {
                    what: "multipart parts",
                    limit: MAX_PARTS,
                });
            }
            current = Some(OpenPart {
                headers: Vec::new(),
                in_headers: true,
                content_start: next,
            });
        } else if let Some(OpenPart {
            headers,
            in_headers,
            content_start,
        }) = current.as_mut()
        {
            if *in_headers {
                if line.is_empty() {
                    *in_headers = false;
                    *content_start = next;
                } else if line.len() > MAX_HEADER_LINE {
                    return Err(EstError::TooLarge {
                        what: "multipart part header line",
                        limit: MAX_HEADER_LINE,
                    });
                } else if matches!(line.first(), Some(b' ' | b'\t')) {
                    // Folded continuation of the previous header.
                    let (_, v) = headers
                        .last_mut()
                        .ok_or_else(|| bad("continuation line before any header".into()))?;
                    v.push(' ');
                    v.push_str(String::from_utf8_lossy(line).trim());
                } else {
                    if headers.len() >= MAX_PART_HEADERS {
                        return Err(EstError::TooLarge {
                            what: "multipart part headers",
                            limit: MAX_PART_HEADERS,
                        });
                    }
                    let text = String::from_utf8_lossy(line);
                    let (name, value) = text
                        .split_once(':')
                        .ok_or_else(|| bad(format!("part header line without ':' at byte {start}")))?;
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
            }
        }
        prev_eol = end;
    }
    if !closed {
        if let Some(open) = current.take() {
            if open.in_headers {
                return Err(bad("the body ends inside part headers".into()));
            }
            parts.push(Part {
                headers: open.headers,
                content: body.get(open.content_start..).unwrap_or_default(),
            });
        }
    }
    if parts.is_empty() {
        return Err(bad(format!("no part delimited by {delimiter:?}")));
    }
    Ok(parts)
}

/// Content of a part: base64 whatever the CTE says (RFC 8951), except that
/// an explicit `binary` or `8bit` part that is not base64 is taken raw.
fn part_bytes(part: &Part<'_>) -> Result<Zeroizing<Vec<u8>>> {
    match decode_base64(part.content, MAX_BODY) {
        Ok(v) => Ok(Zeroizing::new(v)),
        Err(e) => {
            let raw = part
                .header(CONTENT_TRANSFER_ENCODING)
                .is_some_and(|c| c.eq_ignore_ascii_case("binary") || c.eq_ignore_ascii_case("8bit"));
            if raw && part.content.first() == Some(&0x30) {
                Ok(Zeroizing::new(part.content.to_vec()))
            } else {
                Err(e)
            }
        }
    }
}

/// Parse a serverkeygen response from its Content-Type header value and body.
pub fn parse_serverkeygen_response(content_type: &str, body: &[u8]) -> Result<ServerKeyGenResponse> {
    if body.len() > MAX_MULTIPART {
        return Err(EstError::TooLarge {
            what: "serverkeygen response",
            limit: MAX_MULTIPART,
        });
    }
    let boundary = multipart_boundary(content_type)?;
    let parts = split_parts(body, &boundary)?;
    let mut key: Option<Zeroizing<Vec<u8>>> = None;
    let mut certificates: Option<Vec<Certificate>> = None;
    for part in &parts {
        let ct = part
            .header("Content-Type")
            .ok_or_else(|| EstError::malformed("serverkeygen part", "no Content-Type"))?;
        match MediaType::parse(ct)? {
            MediaType::Pkcs8 => {
                if key.is_some() {
                    return Err(EstError::malformed("serverkeygen response", "two private key parts"));
                }
                key = Some(to_pkcs8(&part_bytes(part)?)?);
            }
            MediaType::CertsOnly => {
                if certificates.is_some() {
                    return Err(EstError::malformed("serverkeygen response", "two certificate parts"));
                }
                certificates = Some(certs_only::decode(&part_bytes(part)?)?.certificates);
            }
            _ => return Err(EstError::UnsupportedMediaType(ct.to_owned())),
        }
    }
    let private_key_pkcs8 = key.ok_or_else(|| EstError::malformed("serverkeygen response", "no private key part"))?;
    let certificates =
        certificates.ok_or_else(|| EstError::malformed("serverkeygen response", "no certificate part"))?;
    if certificates.is_empty() {
        return Err(EstError::malformed(
            "serverkeygen response",
            "the certificate part is empty",
        ));
    }
    Ok(ServerKeyGenResponse {
        private_key_pkcs8,
        certificates,
    })
}

/// PKCS#1 RSAPrivateKey (RFC 8017 appendix A.1.2), only to recognise one.
#[derive(Sequence)]
#[allow(dead_code)]
struct RsaPrivateKey<'a> {
    version: UintRef<'a>,
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
    private_exponent: UintRef<'a>,
    prime1: UintRef<'a>,
    prime2: UintRef<'a>,
    exponent1: UintRef<'a>,
    exponent2: UintRef<'a>,
    coefficient: UintRef<'a>,
    #[asn1(optional = "true")]
    other_prime_infos: Option<AnyRef<'a>>,
}

/// A private key as PKCS#8: kept as is if it already is, else wrapped from
/// PKCS#1 (RSA) or SEC1 (EC, the curve taken from its parameters).
pub fn to_pkcs8(der_bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if pkcs8::PrivateKeyInfo::from_der(der_bytes).is_ok() {
        return Ok(Zeroizing::new(der_bytes.to_vec()));
    }
    if RsaPrivateKey::from_der(der_bytes).is_ok() {
        let null = AnyRef::NULL;
        let alg = spki::AlgorithmIdentifierRef {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(null),
        };
        return Ok(Zeroizing::new(pkcs8::PrivateKeyInfo::new(alg, der_bytes).to_der()?));
    }
    if let Ok(ec) = sec1::EcPrivateKey::from_der(der_bytes) {
        let curve = ec.parameters.and_then(|p| p.named_curve()).ok_or_else(|| {
            EstError::malformed(
                "server-generated private key",
                "SEC1 ECPrivateKey without a named curve in its parameters",
            )
        })?;
        let inner = sec1::EcPrivateKey {
            private_key: ec.private_key,
            parameters: None,
            public_key: ec.public_key,
        };
        let inner_der = Zeroizing::new(inner.to_der()?);
        let alg = spki::AlgorithmIdentifierRef {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&curve)),
        };
        return Ok(Zeroizing::new(pkcs8::PrivateKeyInfo::new(alg, &inner_der).to_der()?));
    }
    Err(EstError::malformed(
        "server-generated private key",
        "neither PKCS#8, PKCS#1 RSAPrivateKey nor SEC1 ECPrivateKey",
    ))
}
