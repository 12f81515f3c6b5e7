//! The HTTP-level vocabulary of SCEP (RFC 8894 §4): operations, media types
//! and the GET encoding of a pkiMessage. No I/O: callers own the sockets.

use crate::error::{Result, ScepError};
use base64::Engine;
use std::fmt;

/// Media type of a PKIOperation reply and POST body.
pub const CONTENT_TYPE_PKI_MESSAGE: &str = "application/x-pki-message";
/// Media type of a GetCACert reply holding a single CA certificate (DER).
pub const CONTENT_TYPE_CA_CERT: &str = "application/x-x509-ca-cert";
/// Media type of a GetCACert reply holding CA and RA certificates (certs-only SignedData).
pub const CONTENT_TYPE_CA_RA_CERT: &str = "application/x-x509-ca-ra-cert";
/// Media type of a GetNextCACert reply.
pub const CONTENT_TYPE_NEXT_CA_CERT: &str = "application/x-x509-next-ca-cert";
/// Media type of a GetCACaps reply.
pub const CONTENT_TYPE_CAPS: &str = "text/plain";

/// Largest pkiMessage accepted, in DER bytes (a PKCSReq with an RSA-4096
/// CSR and certificate is under 8 KiB; CertReps with chains stay well under this).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Largest reply a client accepts: a GetCRL CertRep can carry a large CRL.
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

/// The SCEP operations of the `operation=` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GetCACaps.
    GetCaCaps,
    /// GetCACert.
    GetCaCert,
    /// GetNextCACert.
    GetNextCaCert,
    /// PKIOperation.
    PkiOperation,
}

impl Operation {
    /// Parse the operation name (exact, as the RFC spells it; case-insensitive for old clients).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "getcacaps" => Ok(Self::GetCaCaps),
            "getcacert" => Ok(Self::GetCaCert),
            "getnextcacert" => Ok(Self::GetNextCaCert),
            "pkioperation" => Ok(Self::PkiOperation),
            _ => Err(ScepError::Invalid {
                what: "operation",
                reason: s.chars().take(40).collect(),
            }),
        }
    }
    /// The RFC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GetCaCaps => "GetCACaps",
            Self::GetCaCert => "GetCACert",
            Self::GetNextCaCert => "GetNextCACert",
            Self::PkiOperation => "PKIOperation",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed SCEP query string: `operation=…&message=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The operation.
    pub operation: Operation,
    /// The raw (still URL-encoded) `message` parameter, if any.
    pub message: Option<String>,
}

impl Query {
    /// Parse a query string (without the leading `?`). Unknown parameters are ignored.
    pub fn parse(q: &str) -> Result<Self> {
        if q.len() > MAX_MESSAGE * 2 {
            return Err(ScepError::TooLarge {
                what: "query string",
                limit: MAX_MESSAGE * 2,
                actual: q.len(),
            });
        }
        let mut operation = None;
        let mut message = None;
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "operation" => operation = Some(Operation::parse(&url_decode(v)?)?),
                "message" => message = Some(v.to_owned()),
                _ => {}
            }
        }
        let operation = operation.ok_or_else(|| ScepError::Invalid {
            what: "query",
            reason: "no operation parameter".into(),
        })?;
        Ok(Query { operation, message })
    }
}

fn url_decode(v: &str) -> Result<String> {
    percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ScepError::Base64("URL-decoded value is not UTF-8".into()))
}

/// Decode the `message` parameter of a GET PKIOperation: URL-encoded base64
/// of the DER pkiMessage. Tolerates line breaks, a `+` turned into a space
/// by form decoding, and the URL-safe alphabet.
pub fn decode_get_message(raw: &str) -> Result<Vec<u8>> {
    if raw.len() > MAX_MESSAGE * 2 {
        return Err(ScepError::TooLarge {
            what: "message parameter",
            limit: MAX_MESSAGE * 2,
            actual: raw.len(),
        });
    }
    let decoded = url_decode(raw)?;
    decode_base64_lenient(&decoded)
}

/// Base64 with or without line breaks or padding, standard or URL-safe alphabet.
pub fn decode_base64_lenient(s: &str) -> Result<Vec<u8>> {
    let cleaned: String = s
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned)
        .map_err(|e| ScepError::Base64(e.to_string()))
}

/// Encode a pkiMessage for the GET form: base64, then URL-encoded.
pub fn encode_get_message(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_get_message_round_trip() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0xfb, 0xff, 0xfe];
        let q = format!("operation=PKIOperation&message={}", encode_get_message(&der));
        let parsed = Query::parse(&q).unwrap();
        assert_eq!(parsed.operation, Operation::PkiOperation);
        assert_eq!(decode_get_message(parsed.message.as_deref().unwrap()).unwrap(), der);
    }

    #[test]
    fn lenient_base64_forms() {
        // 0xfbefbe ffffff is "++++////" in standard base64.
        let want = vec![0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff];
        for form in ["++++////", "++++\r\n////", "    ////", "----____", "++++////=="] {
            assert_eq!(decode_base64_lenient(form).unwrap(), want, "{form:?}");
        }
        assert_eq!(decode_get_message("%2B%2B%2B%2B%2F%2F%2F%2F").unwrap(), want);
        assert!(decode_base64_lenient("!!!").is_err());
    }

    #[test]
    fn bad_queries() {
        assert!(Query::parse("message=abc").is_err());
        assert!(Query::parse("operation=Nope").is_err());
        assert_eq!(
            Query::parse("operation=GetCACaps&message=CA").unwrap().operation,
            Operation::GetCaCaps
        );
    }
}
