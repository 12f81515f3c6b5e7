//! Raw public key identifiers (TS-0003 V3.18.0 clause 10.1.2): the SHA-256
//! of a key's DER SubjectPublicKeyInfo, written as an RFC 6920 Named
//! Information URI, `ni:///sha-256;<base64url of the digest, no padding>`.
//!
//! enrolkit first took these identifiers as 64 hexadecimal digits; that form
//! is still read (an enrolkit extension, so existing configurations keep
//! working), and both name the same key. What is accepted:
//!
//! - `ni://[authority]/sha-256;<43 base64url characters>`, optionally
//!   followed by `?query`: RFC 6920 section 3's syntax. The authority and
//!   query say where the object might be found or how; they do not change
//!   which key is named, so they are ignored once well-formed. The
//!   algorithm name is compared ignoring ASCII case; the value must be
//!   canonical base64url (no `=` padding, no stray bits), 32 octets.
//! - 64 hexadecimal digits, either case.
//!
//! Truncated suites of the RFC 6920 registry (`sha-256-128`, `-120`, `-96`,
//! `-64`, `-32`) are refused: a truncated digest does not identify a key
//! strongly enough to authenticate it. Input is bounded ([`MAX_PKID`]).

use crate::error::{Result, RspfError};
use base64::Engine;

/// Longest identifier read, in octets (authority and query included).
pub const MAX_PKID: usize = 512;

/// A public key identifier: the SHA-256 of a DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyId(pub [u8; 32]);

fn bad<T>(why: &'static str) -> Result<T> {
    Err(RspfError::InvalidIdentifier {
        what: "public key identifier",
        why,
    })
}

impl PublicKeyId {
    /// Read an RFC 6920 `ni:` URI with `sha-256`, or 64 hexadecimal digits.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() > MAX_PKID {
            return bad("longer than 512 octets");
        }
        let b = s.as_bytes();
        if b.len() >= 3 && b.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(b"ni:")) {
            return Self::parse_ni(s.get(3..).unwrap_or(""));
        }
        if b.len() != 64 {
            return bad("neither an ni:///sha-256;… URI (RFC 6920) nor 64 hexadecimal digits");
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
            match pair {
                [h, l] => match (d(*h), d(*l)) {
                    (Some(h), Some(l)) => *o = (h << 4) | l,
                    _ => return bad("not a hexadecimal digit"),
                },
                _ => return bad("odd length"),
            }
        }
        Ok(PublicKeyId(out))
    }

    /// `rest` is what follows `ni:`.
    fn parse_ni(rest: &str) -> Result<Self> {
        let Some(after) = rest.strip_prefix("//") else {
            return bad("an ni URI is ni://[authority]/alg;value");
        };
        let Some((authority, path)) = after.split_once('/') else {
            return bad("an ni URI is ni://[authority]/alg;value");
        };
        // RFC 3986 reg-name / host:port characters only; no userinfo.
        if !authority
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~:[]".contains(&c))
        {
            return bad("the authority of the ni URI is not a host[:port]");
        }
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        if query.is_some_and(|q| !q.bytes().all(|c| c.is_ascii_graphic() && c != b'#')) {
            return bad("the query of the ni URI has spaces, controls or a fragment");
        }
        let Some((alg, value)) = path.split_once(';') else {
            return bad("an ni URI is ni://[authority]/alg;value");
        };
        if !alg.eq_ignore_ascii_case("sha-256") {
            if alg.len() > 8 && alg.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("sha-256-")) {
                return bad("a truncated SHA-256 does not identify a key strongly enough");
            }
            return bad("only the sha-256 algorithm names a public key here");
        }
        if value.len() != 43 {
            return bad("a sha-256 value is 43 base64url characters (no padding)");
        }
        let mut out = [0u8; 33];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(value.as_bytes(), &mut out) {
            Ok(32) => {}
            _ => return bad("the value is not canonical base64url of 32 octets"),
        }
        let mut id = [0u8; 32];
        for (d, s) in id.iter_mut().zip(out.iter()) {
            *d = *s;
        }
        Ok(PublicKeyId(id))
    }

    /// The identifier of the key whose DER SubjectPublicKeyInfo is `spki`.
    pub fn of_spki(spki: &[u8]) -> Self {
        use sha2::Digest;
        PublicKeyId(sha2::Sha256::digest(spki).into())
    }

    /// `ni:///sha-256;…`, the form of 10.1.2.
    pub fn to_ni(&self) -> String {
        format!(
            "ni:///sha-256;{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0)
        )
    }

    /// 64 lower-case hexadecimal digits (the older form).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl core::fmt::Display for PublicKeyId {
    /// The `ni:` form.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_ni())
    }
}
