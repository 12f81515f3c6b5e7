//! The three SCEP attributes whose values are decimal codes (RFC 8894
//! §3.2.1.2–§3.2.1.4), as enums:
//!
//! ```text
//! messageType    2.16.840.1.113733.1.9.2   PrintableString  -- decimal value as a numeric text string
//! pkiStatus      2.16.840.1.113733.1.9.3   PrintableString  -- decimal value as a numeric text string
//! failInfo       2.16.840.1.113733.1.9.4   PrintableString  -- decimal value as a numeric text string
//! ```
//!
//! A leaf module: it depends on nothing else in the crate, so that the
//! crate's error type can name a [`FailInfo`] and a [`MessageType`] while
//! every other module depends on the error type (no import circle).
//! Parsing fails with [`UnknownCode`], which the error type takes through
//! `?`.

use std::fmt;

/// A code that is not one of the values RFC 8894 defines (at most 32
/// characters of it are kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownCode {
    /// An unknown messageType.
    #[error("unknown messageType {0:?}")]
    MessageType(String),
    /// An unknown pkiStatus.
    #[error("unknown pkiStatus {0:?}")]
    PkiStatus(String),
    /// An unknown failInfo.
    #[error("unknown failInfo {0:?}")]
    FailInfo(String),
}

fn truncated(s: &str) -> String {
    s.chars().take(32).collect()
}

/// SCEP messageType (RFC 8894 §3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 3: response to any request.
    CertRep,
    /// 17: renewal request signed with the existing certificate.
    RenewalReq,
    /// 19: certificate request.
    PkcsReq,
    /// 20: poll for a pending request (GetCertInitial in draft-nourse).
    CertPoll,
    /// 21: retrieve a certificate by issuer and serial.
    GetCert,
    /// 22: retrieve a CRL.
    GetCrl,
}

impl MessageType {
    /// The decimal code carried as a PrintableString.
    pub fn code(self) -> u8 {
        match self {
            Self::CertRep => 3,
            Self::RenewalReq => 17,
            Self::PkcsReq => 19,
            Self::CertPoll => 20,
            Self::GetCert => 21,
            Self::GetCrl => 22,
        }
    }
    /// Parse the PrintableString value (surrounding spaces tolerated).
    pub fn parse(s: &str) -> Result<Self, UnknownCode> {
        match s.trim() {
            "3" => Ok(Self::CertRep),
            "17" => Ok(Self::RenewalReq),
            "19" => Ok(Self::PkcsReq),
            "20" => Ok(Self::CertPoll),
            "21" => Ok(Self::GetCert),
            "22" => Ok(Self::GetCrl),
            other => Err(UnknownCode::MessageType(truncated(other))),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        };
        write!(f, "{name}({})", self.code())
    }
}

/// SCEP pkiStatus (RFC 8894 §3.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// 0: granted.
    Success,
    /// 2: rejected.
    Failure,
    /// 3: waiting for manual approval.
    Pending,
}

impl PkiStatus {
    /// The decimal code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 2,
            Self::Pending => 3,
        }
    }
    /// Parse the PrintableString value.
    pub fn parse(s: &str) -> Result<Self, UnknownCode> {
        match s.trim() {
            "0" => Ok(Self::Success),
            "2" => Ok(Self::Failure),
            "3" => Ok(Self::Pending),
            other => Err(UnknownCode::PkiStatus(truncated(other))),
        }
    }
}

/// SCEP failInfo (RFC 8894 §3.2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// 0: unrecognized or unsupported algorithm.
    BadAlg,
    /// 1: integrity check (signature) failed.
    BadMessageCheck,
    /// 2: transaction not permitted or supported.
    BadRequest,
    /// 3: signingTime not close enough to the system time.
    BadTime,
    /// 4: no certificate could be identified matching the criteria.
    BadCertId,
}

impl FailInfo {
    /// The decimal code.
    pub fn code(self) -> u8 {
        match self {
            Self::BadAlg => 0,
            Self::BadMessageCheck => 1,
            Self::BadRequest => 2,
            Self::BadTime => 3,
            Self::BadCertId => 4,
        }
    }
    /// Parse the PrintableString value.
    pub fn parse(s: &str) -> Result<Self, UnknownCode> {
        match s.trim() {
            "0" => Ok(Self::BadAlg),
            "1" => Ok(Self::BadMessageCheck),
            "2" => Ok(Self::BadRequest),
            "3" => Ok(Self::BadTime),
            "4" => Ok(Self::BadCertId),
            other => Err(UnknownCode::FailInfo(truncated(other))),
        }
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertID",
        };
        write!(f, "{name}({})", self.code())
    }
}
