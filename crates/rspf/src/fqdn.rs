//! Validated host names: the MEF, MAF and NAF FQDNs that go into key
//! identifiers and derivations.

use crate::error::{Result, RspfError};

/// Longest FQDN in text form (RFC 1035 §2.3.4: 255 octets on the wire,
/// 253 characters without the trailing dot).
pub const MAX_FQDN: usize = 253;
/// Longest label.
pub const MAX_LABEL: usize = 63;

/// A fully qualified domain name: dot-separated LDH labels (letters,
/// digits, hyphens; no leading or trailing hyphen), at least two labels,
/// at most 253 characters, no trailing dot. Compared case-insensitively as
/// DNS does, but derivations use it exactly as given, so both ends must be
/// configured with the same spelling.
#[derive(Debug, Clone, Copy)]
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
        Ok(Fqdn(name))
    }

    /// The name as given.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl PartialEq for Fqdn<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Fqdn<'_> {}

impl core::fmt::Display for Fqdn<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}
