//! GetCACaps (RFC 8894 §3.5.2): parse, format, and choose algorithms.

use crate::error::{Result, ScepError};
use crate::types::ContentEncryption;
use enrolkit_keys::DigestAlgorithm;
use std::fmt;

/// Largest GetCACaps body accepted.
pub const MAX_CAPS_BODY: usize = 16 * 1024;
/// Most keywords accepted in one body.
pub const MAX_CAPS_KEYWORDS: usize = 64;

/// One GetCACaps keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// "AES": AES-128 content encryption.
    Aes,
    /// "DES3": triple-DES content encryption.
    Des3,
    /// "GetNextCACert": CA rollover certificates.
    GetNextCaCert,
    /// "POSTPKIOperation": PKIOperation by HTTP POST.
    PostPkiOperation,
    /// "Renewal": RenewalReq.
    Renewal,
    /// "SHA-1".
    Sha1,
    /// "SHA-256".
    Sha256,
    /// "SHA-512".
    Sha512,
    /// "SCEPStandard": implies AES, POSTPKIOperation and SHA-256 (RFC 8894).
    ScepStandard,
    /// "Update": draft-era alias of Renewal that old servers still emit.
    Update,
    /// Any other keyword, kept verbatim (e.g. "SHA-224", "SHA-384", "MD5", "DES").
    Other(String),
}

impl Capability {
    /// Parse one keyword, case-insensitively (Windows NDES and some embedded servers vary case).
    pub fn parse(word: &str) -> Self {
        match word.to_ascii_uppercase().as_str() {
            "AES" => Self::Aes,
            "DES3" => Self::Des3,
            "GETNEXTCACERT" => Self::GetNextCaCert,
            "POSTPKIOPERATION" => Self::PostPkiOperation,
            "RENEWAL" => Self::Renewal,
            "SHA-1" | "SHA1" => Self::Sha1,
            "SHA-256" | "SHA256" => Self::Sha256,
            "SHA-512" | "SHA512" => Self::Sha512,
            "SCEPSTANDARD" => Self::ScepStandard,
            "UPDATE" => Self::Update,
            _ => Self::Other(word.to_owned()),
        }
    }
    /// The canonical spelling.
    pub fn keyword(&self) -> &str {
        match self {
            Self::Aes => "AES",
            Self::Des3 => "DES3",
            Self::GetNextCaCert => "GetNextCACert",
            Self::PostPkiOperation => "POSTPKIOperation",
            Self::Renewal => "Renewal",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
            Self::ScepStandard => "SCEPStandard",
            Self::Update => "Update",
            Self::Other(s) => s,
        }
    }
}

/// A server's capability set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    caps: Vec<Capability>,
}

impl Capabilities {
    /// From a list (duplicates removed, order kept).
    pub fn new(list: impl IntoIterator<Item = Capability>) -> Self {
        let mut caps = Vec::new();
        for c in list {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        Capabilities { caps }
    }

    /// Parse a `text/plain` GetCACaps body: keywords separated by LF, CRLF or
    /// any whitespace; empty lines ignored; unknown keywords kept as `Other`.
    pub fn parse(body: &[u8]) -> Result<Self> {
        if body.len() > MAX_CAPS_BODY {
            return Err(ScepError::TooLarge {
                what: "GetCACaps body",
                limit: MAX_CAPS_BODY,
                actual: body.len(),
            });
        }
        let text = std::str::from_utf8(body).map_err(|_| ScepError::Invalid {
            what: "GetCACaps body",
            reason: "not UTF-8 text".into(),
        })?;
        let mut out = Vec::new();
        for word in text.split_whitespace() {
            if out.len() >= MAX_CAPS_KEYWORDS {
                return Err(ScepError::TooLarge {
                    what: "GetCACaps keyword count",
                    limit: MAX_CAPS_KEYWORDS,
                    actual: out.len() + 1,
                });
            }
            if word.len() > 64 || !word.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ScepError::Invalid {
                    what: "GetCACaps keyword",
                    reason: format!("{:?}", word.chars().take(64).collect::<String>()),
                });
            }
            out.push(Capability::parse(word));
        }
        Ok(Self::new(out))
    }

    /// Whether the set holds `c`.
    pub fn has(&self, c: &Capability) -> bool {
        self.caps.contains(c)
    }

    /// The keywords.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.caps.iter()
    }

    /// AES is available (explicitly or through SCEPStandard).
    pub fn supports_aes(&self) -> bool {
        self.has(&Capability::Aes) || self.has(&Capability::ScepStandard)
    }
    /// POST is available.
    pub fn supports_post(&self) -> bool {
        self.has(&Capability::PostPkiOperation) || self.has(&Capability::ScepStandard)
    }
    /// RenewalReq is available.
    pub fn supports_renewal(&self) -> bool {
        self.has(&Capability::Renewal) || self.has(&Capability::Update)
    }

    /// Strongest content encryption both sides support, from what we offer
    /// (strongest first). "AES" (and SCEPStandard) promise AES-128-CBC only
    /// (RFC 8894 §3.5.2), so larger AES keys are never chosen from caps. With
    /// an empty set (server without GetCACaps) DES3 is the legacy assumption
    /// we can still meet; single DES is never chosen.
    pub fn choose_cipher(&self, ours: &[ContentEncryption]) -> Option<ContentEncryption> {
        ours.iter().copied().find(|c| match c {
            ContentEncryption::Aes128Cbc => self.supports_aes(),
            ContentEncryption::Aes256Cbc | ContentEncryption::Aes192Cbc => false,
            ContentEncryption::DesEde3Cbc => self.has(&Capability::Des3) || self.caps.is_empty(),
            ContentEncryption::DesCbc => false,
        })
    }

    /// Strongest digest both sides support, from what we offer (strongest
    /// first). SHA-1 only when nothing better is offered; an empty set means
    /// a legacy server, for which SHA-1 is the assumption.
    pub fn choose_digest(&self, ours: &[DigestAlgorithm]) -> Option<DigestAlgorithm> {
        ours.iter().copied().find(|d| match d {
            DigestAlgorithm::Sha512 => self.has(&Capability::Sha512),
            DigestAlgorithm::Sha256 => self.has(&Capability::Sha256) || self.has(&Capability::ScepStandard),
            DigestAlgorithm::Sha1 => self.has(&Capability::Sha1) || self.caps.is_empty(),
        })
    }
}

impl fmt::Display for Capabilities {
    /// The body a server sends: one keyword per line, LF-terminated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.caps {
            writeln!(f, "{}", c.keyword())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micromdm_caps_parse_and_choose() {
        let c = Capabilities::parse(b"Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation").unwrap();
        assert!(c.supports_post() && c.supports_renewal() && c.supports_aes());
        let ours = [
            ContentEncryption::Aes256Cbc,
            ContentEncryption::Aes128Cbc,
            ContentEncryption::DesEde3Cbc,
        ];
        // "AES" means AES-128-CBC (RFC 8894 §3.5.2): AES-256 is never assumed.
        assert_eq!(c.choose_cipher(&ours), Some(ContentEncryption::Aes128Cbc));
        let d = [DigestAlgorithm::Sha512, DigestAlgorithm::Sha256, DigestAlgorithm::Sha1];
        assert_eq!(c.choose_digest(&d), Some(DigestAlgorithm::Sha256));
    }

    #[test]
    fn legacy_and_crlf_and_unknown() {
        let c = Capabilities::parse(b"DES3\r\nsha-1\r\nGetNextCACert\r\nMD5\r\n\r\n").unwrap();
        assert!(c.has(&Capability::Other("MD5".into())));
        assert!(c.has(&Capability::GetNextCaCert));
        assert_eq!(
            c.choose_cipher(&[ContentEncryption::Aes128Cbc, ContentEncryption::DesEde3Cbc]),
            Some(ContentEncryption::DesEde3Cbc)
        );
        assert_eq!(
            c.choose_digest(&[DigestAlgorithm::Sha256, DigestAlgorithm::Sha1]),
            Some(DigestAlgorithm::Sha1)
        );
        assert_eq!(c.choose_digest(&[DigestAlgorithm::Sha256]), None);
        let empty = Capabilities::parse(b"").unwrap();
        assert_eq!(
            empty.choose_cipher(&[ContentEncryption::Aes128Cbc, ContentEncryption::DesEde3Cbc]),
            Some(ContentEncryption::DesEde3Cbc)
        );
    }

    #[test]
    fn format_round_trips_and_bounds_hold() {
        let c = Capabilities::new([Capability::Aes, Capability::ScepStandard, Capability::Sha512]);
        assert_eq!(c.to_string(), "AES\nSCEPStandard\nSHA-512\n");
        assert_eq!(Capabilities::parse(c.to_string().as_bytes()).unwrap(), c);
        assert!(matches!(
            Capabilities::parse(&vec![b'A'; MAX_CAPS_BODY + 1]),
            Err(ScepError::TooLarge { .. })
        ));
        assert!(matches!(
            Capabilities::parse(&[0xff, 0xfe]),
            Err(ScepError::Invalid { .. })
        ));
        let many = "X\n".repeat(MAX_CAPS_KEYWORDS + 1);
        assert!(matches!(
            Capabilities::parse(many.as_bytes()),
            Err(ScepError::TooLarge { .. })
        ));
    }
}
