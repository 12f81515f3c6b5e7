//! Validated host names: the MEF, MAF and NAF FQDNs that go into key
//! identifiers and derivations.

use crate::error::{Result, RspfError};

/// Longest FQDN in text form (RFC 1035 §2.3.4: 255 octets on the wire,
/// 253 characters without the trailing dot).
pub const MAX_FQDN: usize = 253;
/// Longest label.
pub const MAX_LABEL: usize = 63;

/// A fully qualified domain name: dot-separated LDH labels (letters,
/// digits, hyphens; no leading or trailing hyphen), at least two labels, a
/// last label that is not all digits (so no IPv4 address), at most 253
/// characters, no trailing dot. Compared exactly, because derivations use
/// the octets as given: `MEF.example.com` and `mef.example.com` give
/// different keys, and so are different names here. Configure both ends
/// with the same spelling (lower case is the convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fqdn<'a>(&'a str);

impl<'a> Fqdn<'a> {
    /// Validate `name`; `what` says which FQDN it is in the error.
    pub fn new(what: &'static str, name: &'a str) -> Result<Self> {
        let bad = |why| Err(RspfError::InvalidFqdn { what, why });
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > MAX_FQDN {
            return bad("longer than 253 characters");
        }
        let mut labels = 0usize;
        for label in name.split('.') {
            labels += 1;
            if label.is_empty() {
                return bad("empty label (leading, trailing or double dot)");
            }
            if label.len() > MAX_LABEL {
                return bad("a label is longer than 63 characters");
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return bad("a label has a character other than letters, digits and '-'");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label starts or ends with '-'");
            }
        }
        if labels < 2 {
            return bad("not fully qualified (one label)");
        }
        if name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad("the last label is all digits (an address, not a name)");
        }
        Ok(Fqdn(name))
    }

    /// The name as given.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl core::fmt::Display for Fqdn<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}
