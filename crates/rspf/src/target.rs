//! The Enrolment-Target-ID of TS-0003 V3.18.0 clause 10.3.7: "an FQDN"; for
//! a CSE or an AE, "the FQDN representation of the Absolute CSE-ID/AE-ID",
//! encoded as UTF-8 after NFKC normalisation.
//!
//! No clause we could find (TS-0003 V3.18.0, TS-0001 clause 7.2) says how an
//! Absolute CSE-ID or AE-ID is represented as an FQDN, so the mapping here
//! is an **enrolkit extension**, built on what TS-0001 7.2 does say: the
//! M2M-SP-ID is a domain name, an Absolute CSE-ID is `//SP-ID/CSE-ID`, and
//! an Absolute AE-ID is `//SP-ID/CSE-ID/C…` (assigned by the Registrar CSE)
//! or `//SP-ID/S…` (assigned by the Service Provider). Each identifier under
//! the SP-ID becomes one DNS label, the most specific first:
//!
//! ```text
//! //sp.example.com/CSE-1            ->  CSE-1.sp.example.com
//! //sp.example.com/CSE-1/Cae-42     ->  Cae-42.CSE-1.sp.example.com
//! //sp.example.com/Sae-7            ->  Sae-7.sp.example.com
//! maf.example.com (already an FQDN) ->  maf.example.com
//! ```
//!
//! The whole identifier is NFKC-normalised first (so a full-width `／` or
//! `．` becomes `/` or `.`), then mapped, then validated: at least two labels,
//! each 1 to 63 octets of letters and digits of any script (Unicode
//! Alphabetic or Numeric) and `-`, not starting or ending with `-`, the last
//! not all ASCII digits, 253 octets in all. No IDNA mapping is applied and
//! no A-label is converted: `xn--…` and its U-label are different targets.
//! Letter case is kept, as in [`crate::Fqdn`]: derivations use the octets.
//! SP-relative identifiers (`/CSE-ID`) are refused: the SP-ID is not known.

use crate::error::{Result, RspfError};
use unicode_normalization::UnicodeNormalization;

/// Longest identifier accepted before normalisation (NFKC can only expand
/// it; the FQDN that results is held to 253 octets).
pub const MAX_TARGET_INPUT: usize = 1024;
/// Longest FQDN form, in octets (RFC 1035 §2.3.4 without the trailing dot).
pub const MAX_TARGET_FQDN: usize = 253;
/// Longest label, in octets.
pub const MAX_TARGET_LABEL: usize = 63;

/// An Enrolment-Target-ID in its FQDN form (10.3.7), NFKC-normalised and
/// validated: what enters the usage-constrained key derivation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetFqdn(String);

fn bad<T>(why: &'static str) -> Result<T> {
    Err(RspfError::InvalidIdentifier {
        what: "Enrolment-Target-ID",
        why,
    })
}

impl TargetFqdn {
    /// From an Absolute CSE-ID, an Absolute AE-ID or an FQDN (a MAF's, or
    /// a CSE's or AE's already in FQDN form).
    pub fn from_id(id: &str) -> Result<Self> {
        if id.is_empty() {
            return bad("empty");
        }
        if id.len() > MAX_TARGET_INPUT {
            return bad("longer than 1024 octets");
        }
        let n: String = id.nfkc().collect();
        let fqdn = if let Some(rest) = n.strip_prefix("//") {
            let Some((sp, path)) = rest.split_once('/') else {
                return bad("an absolute ID has a CSE-ID or AE-ID after the SP-ID (//SP-ID/CSE-ID)");
            };
            let (first, second) = match path.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (path, None),
            };
            if let Some(s) = second {
                if s.contains('/') {
                    return bad("more than //SP-ID/CSE-ID/AE-ID: a resource path, not an identifier");
                }
                if !s.starts_with('C') {
                    return bad("an AE-ID under a CSE-ID starts with 'C' (TS-0001 7.2)");
                }
            }
            if first.contains('.') || second.is_some_and(|s| s.contains('.')) {
                return bad("a CSE-ID or AE-ID with '.' has no single-label FQDN form");
            }
            match second {
                Some(ae) => format!("{ae}.{first}.{sp}"),
                None => format!("{first}.{sp}"),
            }
        } else if n.starts_with('/') {
            return bad("an SP-relative ID: give the absolute form //SP-ID/…");
        } else {
            n
        };
        check_fqdn(&fqdn)?;
        Ok(TargetFqdn(fqdn))
    }

    /// The FQDN form (UTF-8, NFKC).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Display for TargetFqdn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_fqdn(s: &str) -> Result<()> {
    if s.len() > MAX_TARGET_FQDN {
        return bad("the FQDN form is longer than 253 octets");
    }
    let mut labels = 0usize;
    let mut last = "";
    for label in s.split('.') {
        labels += 1;
        last = label;
        if label.is_empty() {
            return bad("an empty label (leading, trailing or double dot, or an empty ID)");
        }
        if label.len() > MAX_TARGET_LABEL {
            return bad("a label is longer than 63 octets");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric()))
        {
            return bad("a label has a character other than letters, digits and '-'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    if labels < 2 {
        return bad("not an FQDN (one label) nor an absolute CSE-ID/AE-ID");
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the last label is all digits (an address, not a name)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> String {
        TargetFqdn::from_id(s)
            .map(|t| t.0)
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn absolute_ids_map_to_labels_under_the_sp_id() {
        assert_eq!(f("//sp.example.com/CSE-1"), "CSE-1.sp.example.com");
        assert_eq!(f("//sp.example.com/CSE-1/Cae-42"), "Cae-42.CSE-1.sp.example.com");
        assert_eq!(f("//sp.example.com/Sae-7"), "Sae-7.sp.example.com");
        assert_eq!(f("maf.example.com"), "maf.example.com");
        // An FQDN and the absolute ID it represents are the same target.
        assert_eq!(f("CSE-1.sp.example.com"), f("//sp.example.com/CSE-1"));
    }

    #[test]
    fn nfkc_comes_first() {
        // Full-width solidus and full stop, the "fi" ligature, full-width letters.
        assert_eq!(f("／／sp．example．com／CSE-\u{FB01}"), "CSE-fi.sp.example.com");
        assert_eq!(f("ｍａｆ.example.com"), "maf.example.com");
        // Composed and decomposed é are one target.
        assert_eq!(f("caf\u{e9}.example.com"), f("cafe\u{301}.example.com"));
        assert_eq!(f("caf\u{e9}.example.com"), "caf\u{e9}.example.com");
    }

    #[test]
    fn what_has_no_fqdn_form_is_refused() {
        for bad in [
            "",
            "CSE-1",
            "/CSE-1",
            "/CSE-1/Cae",
            "//sp.example.com",
            "//sp.example.com/",
            "//sp.example.com/CSE-1/Sae",
            "//sp.example.com/CSE-1/Cae/x",
            "//sp.example.com/CSE.1",
            "//sp.example.com/CSE_1",
            "//sp.example.com//Cae",
            "has space.example.com",
            "-x.example.com",
            "x.example.123",
            "x..example.com",
            "tab\t.example.com",
        ] {
            assert!(f(bad).starts_with("ERR"), "{bad:?} gave {}", f(bad));
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        assert!(f(&long_label).starts_with("ERR"));
        let long = format!("{}example.com", "abcdefghi.".repeat(25));
        assert!(long.len() > 253 && f(&long).starts_with("ERR"));
        assert!(f(&"a".repeat(MAX_TARGET_INPUT + 1)).starts_with("ERR"));
        // NFKC expands U+FDFA to 18 characters; the result is still bounded.
        let wide = format!("{}.example.com", "\u{FDFA}".repeat(300));
        assert!(wide.len() <= MAX_TARGET_INPUT && f(&wide).starts_with("ERR"));
    }
}
