//! EST operations and their request paths (RFC 7030 §3.2.2):
//! `/.well-known/est/[label/]operation`.

use crate::error::{EstError, Result};
use crate::media::MediaType;

/// The well-known path prefix of every EST request (RFC 7030 §3.2.2).
pub const WELL_KNOWN: &str = "/.well-known/est";

/// Longest request path parsed.
pub const MAX_PATH: usize = 512;
/// Longest label accepted.
pub const MAX_LABEL: usize = 128;

/// An EST operation (RFC 7030 §3.2.2, table of operation paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `/cacerts`: distribution of CA certificates (§4.1).
    CaCerts,
    /// `/simpleenroll`: enrollment of clients (§4.2.1).
    SimpleEnroll,
    /// `/simplereenroll`: re-enrollment of clients (§4.2.2).
    SimpleReenroll,
    /// `/fullcmc`: Full CMC (§4.3).
    FullCmc,
    /// `/serverkeygen`: server-side key generation (§4.4).
    ServerKeyGen,
    /// `/csrattrs`: CSR attributes (§4.5).
    CsrAttrs,
}

impl Operation {
    /// Every operation, in the order of RFC 7030's table.
    pub const ALL: [Operation; 6] = [
        Operation::CaCerts,
        Operation::SimpleEnroll,
        Operation::SimpleReenroll,
        Operation::FullCmc,
        Operation::ServerKeyGen,
        Operation::CsrAttrs,
    ];

    /// The path segment naming the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::CaCerts => "cacerts",
            Operation::SimpleEnroll => "simpleenroll",
            Operation::SimpleReenroll => "simplereenroll",
            Operation::FullCmc => "fullcmc",
            Operation::ServerKeyGen => "serverkeygen",
            Operation::CsrAttrs => "csrattrs",
        }
    }

    /// The HTTP method of the operation.
    pub fn method(&self) -> &'static str {
        match self {
            Operation::CaCerts | Operation::CsrAttrs => "GET",
            _ => "POST",
        }
    }

    /// The media type of the request body, if the operation has one.
    pub fn request_media(&self) -> Option<MediaType> {
        match self {
            Operation::CaCerts | Operation::CsrAttrs => None,
            Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeyGen => Some(MediaType::Pkcs10),
            Operation::FullCmc => Some(MediaType::CmcRequest),
        }
    }

    /// The media type of a successful response body.
    pub fn response_media(&self) -> MediaType {
        match self {
            Operation::CaCerts | Operation::SimpleEnroll | Operation::SimpleReenroll => MediaType::CertsOnly,
            Operation::FullCmc => MediaType::CmcResponse,
            Operation::ServerKeyGen => MediaType::MultipartMixed,
            Operation::CsrAttrs => MediaType::CsrAttrs,
        }
    }

    /// Look an operation up by its path segment (case-sensitive, as paths are).
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == name)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The optional label segment that selects one of several CAs on a server
/// (RFC 7030 §3.2.2): an RFC 3986 `segment-nz` made of characters that need
/// no percent-encoding, 1 to 128 of them, and not an operation name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(String);

impl Label {
    /// Validate a label.
    pub fn new(label: &str) -> Result<Label> {
        let invalid = || EstError::InvalidLabel(label.chars().take(MAX_LABEL + 8).collect());
        if label.is_empty() || label.len() > MAX_LABEL {
            return Err(invalid());
        }
        if !label.bytes().all(is_label_char) {
            return Err(invalid());
        }
        if label == "." || label == ".." || Operation::from_name(label).is_some() {
            return Err(invalid());
        }
        Ok(Label(label.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Label {
    type Err = EstError;
    fn from_str(s: &str) -> Result<Label> {
        Label::new(s)
    }
}

/// RFC 3986 `pchar` without `pct-encoded`: unreserved, sub-delims, ":" and "@".
fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c)
}

/// A parsed EST request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EstPath {
    /// The CA label, when the path has one.
    pub label: Option<Label>,
    /// The operation.
    pub operation: Operation,
}

impl EstPath {
    /// A path for `operation`, optionally under `label`.
    pub fn new(label: Option<Label>, operation: Operation) -> EstPath {
        EstPath { label, operation }
    }

    /// Parse a request path (a query or fragment, if present, is ignored).
    pub fn parse(path: &str) -> Result<EstPath> {
        if path.len() > MAX_PATH {
            return Err(EstError::TooLarge {
                what: "EST request path",
                limit: MAX_PATH,
            });
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path
            .strip_prefix(WELL_KNOWN)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| EstError::malformed("EST path", format!("does not start with {WELL_KNOWN}/")))?;
        let mut segments = rest.split('/');
        let first = segments.next().unwrap_or_default();
        let second = segments.next();
        if segments.next().is_some() {
            return Err(EstError::malformed("EST path", "too many path segments"));
        }
        let (label, op) = match second {
            None => (None, first),
            Some(op) => (Some(Label::new(first)?), op),
        };
        if op.is_empty() {
            return Err(EstError::malformed("EST path", "no operation"));
        }
        let operation = Operation::from_name(op).ok_or_else(|| EstError::UnknownOperation(op.to_owned()))?;
        Ok(EstPath { label, operation })
    }
}

impl std::fmt::Display for EstPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.label {
            Some(l) => write!(f, "{WELL_KNOWN}/{l}/{}", self.operation),
            None => write!(f, "{WELL_KNOWN}/{}", self.operation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
            let p = EstPath::new(None, op);
            assert_eq!(EstPath::parse(&p.to_string()).unwrap(), p);
        }
        assert_eq!(Operation::from_name("CACERTS"), None);
    }

    #[test]
    fn labels() {
        assert!(Label::new("arbitraryLabel1").is_ok());
        assert!(Label::new("a:b@c!$&'()*+,;=-._~").is_ok());
        assert!(Label::new("").is_err());
        assert!(Label::new("a/b").is_err());
        assert!(Label::new("a%20b").is_err());
        assert!(Label::new("a b").is_err());
        assert!(Label::new("..").is_err());
        assert!(Label::new("simpleenroll").is_err());
        assert!(Label::new(&"x".repeat(128)).is_ok());
        assert!(Label::new(&"x".repeat(129)).is_err());
    }
}
