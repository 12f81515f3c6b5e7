//! PKIStatus, PKIFailureInfo and PKIStatusInfo (RFC 4210 §5.2.3).
//!
//! ```text
//! PKIStatus ::= INTEGER {
//!     accepted (0), grantedWithMods (1), rejection (2), waiting (3),
//!     revocationWarning (4), revocationNotification (5), keyUpdateWarning (6) }
//!
//! PKIFailureInfo ::= BIT STRING {
//!     badAlg (0), badMessageCheck (1), badRequest (2), badTime (3),
//!     badCertId (4), badDataFormat (5), wrongAuthority (6), incorrectData (7),
//!     missingTimeStamp (8), badPOP (9), certRevoked (10), certConfirmed (11),
//!     wrongIntegrity (12), badRecipientNonce (13), timeNotAvailable (14),
//!     unacceptedPolicy (15), unacceptedExtension (16), addInfoNotAvailable (17),
//!     badSenderNonce (18), badCertTemplate (19), signerNotTrusted (20),
//!     transactionIdInUse (21), unsupportedVersion (22), notAuthorized (23),
//!     systemUnavail (24), systemFailure (25), duplicateCertReq (26) }
//!
//! PKIStatusInfo ::= SEQUENCE {
//!     status        PKIStatus,
//!     statusString  PKIFreeText     OPTIONAL,
//!     failInfo      PKIFailureInfo  OPTIONAL }
//! ```
//!
//! `PKIStatus` is `cmpv2`'s. `PKIFailureInfo` and `PKIStatusInfo` are ours:
//! `cmpv2` 0.2.0 gives badTime the bit of badRequest (2), so bit 3 cannot
//! be read or written with it.

use crate::header::PkiFreeText;
use der::asn1::{BitString, BitStringRef};
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer};

pub use cmpv2::status::PkiStatus;

/// One PKIFailureInfo bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum FailureInfo {
    BadAlg = 0,
    BadMessageCheck = 1,
    BadRequest = 2,
    BadTime = 3,
    BadCertId = 4,
    BadDataFormat = 5,
    WrongAuthority = 6,
    IncorrectData = 7,
    MissingTimeStamp = 8,
    BadPop = 9,
    CertRevoked = 10,
    CertConfirmed = 11,
    WrongIntegrity = 12,
    BadRecipientNonce = 13,
    TimeNotAvailable = 14,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    AddInfoNotAvailable = 17,
    BadSenderNonce = 18,
    BadCertTemplate = 19,
    SignerNotTrusted = 20,
    TransactionIdInUse = 21,
    UnsupportedVersion = 22,
    NotAuthorized = 23,
    SystemUnavail = 24,
    SystemFailure = 25,
    DuplicateCertReq = 26,
}

impl FailureInfo {
    /// All bits, in order.
    pub const ALL: [FailureInfo; 27] = [
        Self::BadAlg,
        Self::BadMessageCheck,
        Self::BadRequest,
        Self::BadTime,
        Self::BadCertId,
        Self::BadDataFormat,
        Self::WrongAuthority,
        Self::IncorrectData,
        Self::MissingTimeStamp,
        Self::BadPop,
        Self::CertRevoked,
        Self::CertConfirmed,
        Self::WrongIntegrity,
        Self::BadRecipientNonce,
        Self::TimeNotAvailable,
        Self::UnacceptedPolicy,
        Self::UnacceptedExtension,
        Self::AddInfoNotAvailable,
        Self::BadSenderNonce,
        Self::BadCertTemplate,
        Self::SignerNotTrusted,
        Self::TransactionIdInUse,
        Self::UnsupportedVersion,
        Self::NotAuthorized,
        Self::SystemUnavail,
        Self::SystemFailure,
        Self::DuplicateCertReq,
    ];

    /// The bit number.
    pub fn bit(self) -> u8 {
        self as u8
    }
}

/// A set of PKIFailureInfo bits, encoded as a DER named-bit BIT STRING
/// (trailing zero bits removed, X.690 §11.2.2). Bits above 26 that a
/// peer sets are kept but have no name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FailureInfoSet(u32);

impl FailureInfoSet {
    /// No bit set.
    pub const fn empty() -> Self {
        FailureInfoSet(0)
    }
    /// One bit.
    pub fn of(f: FailureInfo) -> Self {
        FailureInfoSet(1 << f.bit())
    }
    /// This set and `f`.
    pub fn with(self, f: FailureInfo) -> Self {
        FailureInfoSet(self.0 | 1 << f.bit())
    }
    /// Whether `f` is set.
    pub fn contains(self, f: FailureInfo) -> bool {
        self.0 & (1 << f.bit()) != 0
    }
    /// The named bits set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = FailureInfo> {
        FailureInfo::ALL.into_iter().filter(move |f| self.contains(*f))
    }
    /// The raw bits (bit n of PKIFailureInfo is `1 << n`).
    pub fn bits(self) -> u32 {
        self.0
    }
    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn to_bit_string(self) -> der::Result<BitString> {
        let highest = 32 - self.0.leading_zeros() as usize; // number of significant bits
        let nbytes = highest.div_ceil(8);
        let mut bytes = vec![0u8; nbytes];
        for (i, b) in bytes.iter_mut().enumerate() {
            for j in 0..8 {
                let n = i * 8 + j;
                if n < 32 && self.0 & (1 << n) != 0 {
                    *b |= 0x80 >> j;
                }
            }
        }
        let unused = (nbytes * 8 - highest) as u8;
        BitString::new(unused, bytes)
    }

    fn from_bit_string(bs: &BitStringRef<'_>) -> Self {
        let mut v = 0u32;
        for (n, bit) in bs.bits().enumerate().take(32) {
            if bit {
                v |= 1 << n;
            }
        }
        FailureInfoSet(v)
    }
}

impl From<FailureInfo> for FailureInfoSet {
    fn from(f: FailureInfo) -> Self {
        FailureInfoSet::of(f)
    }
}

impl FixedTag for FailureInfoSet {
    const TAG: Tag = Tag::BitString;
}

impl<'a> DecodeValue<'a> for FailureInfoSet {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let bs = BitStringRef::decode_value(reader, header)?;
        Ok(Self::from_bit_string(&bs))
    }
}

impl EncodeValue for FailureInfoSet {
    fn value_len(&self) -> der::Result<Length> {
        self.to_bit_string()?.value_len()
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.to_bit_string()?.encode_value(writer)
    }
}

/// PKIStatusInfo (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiStatusInfo {
    /// status.
    pub status: PkiStatus,
    /// statusString.
    pub status_string: Option<PkiFreeText>,
    /// failInfo.
    pub fail_info: Option<FailureInfoSet>,
}

impl PkiStatusInfo {
    /// `accepted`, nothing else.
    pub fn accepted() -> Self {
        PkiStatusInfo {
            status: PkiStatus::Accepted,
            status_string: None,
            fail_info: None,
        }
    }
    /// `waiting` (the request is pending; the client polls).
    pub fn waiting(text: Option<&str>) -> Self {
        PkiStatusInfo {
            status: PkiStatus::Waiting,
            status_string: text.map(|t| vec![t.to_owned()]),
            fail_info: None,
        }
    }
    /// `rejection` with failure bits and an optional text.
    pub fn rejection(fail_info: impl Into<FailureInfoSet>, text: Option<&str>) -> Self {
        PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: text.map(|t| vec![t.to_owned()]),
            fail_info: Some(fail_info.into()),
        }
    }
    /// Whether the status grants (accepted or grantedWithMods).
    pub fn is_granted(&self) -> bool {
        matches!(self.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods)
    }
    /// statusString joined with "; " (for messages).
    pub fn text(&self) -> String {
        self.status_string.as_ref().map(|v| v.join("; ")).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn failure_info_encodes_as_named_bits() {
        // badRequest (bit 2): one byte 0b0010_0000 with 5 unused bits.
        let der = FailureInfoSet::of(FailureInfo::BadRequest).to_der().unwrap();
        assert_eq!(der, [0x03, 0x02, 0x05, 0x20]);
        // badTime (bit 3) is its own bit (cmpv2 0.2.0 confuses it with badRequest).
        let der = FailureInfoSet::of(FailureInfo::BadTime).to_der().unwrap();
        assert_eq!(der, [0x03, 0x02, 0x04, 0x10]);
        let set = FailureInfoSet::of(FailureInfo::BadPop).with(FailureInfo::DuplicateCertReq);
        let back = FailureInfoSet::from_der(&set.to_der().unwrap()).unwrap();
        assert_eq!(back, set);
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            [FailureInfo::BadPop, FailureInfo::DuplicateCertReq]
        );
        assert_eq!(FailureInfoSet::empty().to_der().unwrap(), [0x03, 0x01, 0x00]);
    }
}
