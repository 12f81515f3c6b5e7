//! PKIBody (RFC 4210 §5.1.2): the message-specific part.
//!
//! ```text
//! PKIBody ::= CHOICE {
//!     ir       [0]  CertReqMessages,        --Initialization Request
//!     ip       [1]  CertRepMessage,         --Initialization Response
//!     cr       [2]  CertReqMessages,        --Certification Request
//!     cp       [3]  CertRepMessage,         --Certification Response
//!     p10cr    [4]  CertificationRequest,   --imported from [PKCS10]
//!     popdecc  [5]  POPODecKeyChallContent, --pop Challenge
//!     popdecr  [6]  POPODecKeyRespContent,  --pop Response
//!     kur      [7]  CertReqMessages,        --Key Update Request
//!     kup      [8]  CertRepMessage,         --Key Update Response
//!     krr      [9]  CertReqMessages,        --Key Recovery Request
//!     krp      [10] KeyRecRepContent,       --Key Recovery Response
//!     rr       [11] RevReqContent,          --Revocation Request
//!     rp       [12] RevRepContent,          --Revocation Response
//!     ccr      [13] CertReqMessages,        --Cross-Cert. Request
//!     ccp      [14] CertRepMessage,         --Cross-Cert. Response
//!     ckuann   [15] CAKeyUpdAnnContent,     --CA Key Update Ann.
//!     cann     [16] CertAnnContent,         --Certificate Ann.
//!     rann     [17] RevAnnContent,          --Revocation Ann.
//!     crlann   [18] CRLAnnContent,          --CRL Announcement
//!     pkiconf  [19] PKIConfirmContent,      --Confirmation
//!     nested   [20] NestedMessageContent,   --Nested Message
//!     genm     [21] GenMsgContent,          --General Message
//!     genp     [22] GenRepContent,          --General Response
//!     error    [23] ErrorMsgContent,        --Error Message
//!     certConf [24] CertConfirmContent,     --Certificate confirm
//!     pollReq  [25] PollReqContent,         --Polling request
//!     pollRep  [26] PollRepContent          --Polling response
//! }
//! PKIConfirmContent ::= NULL
//! ```
//!
//! The CMP module uses EXPLICIT TAGS. The bodies of the Lightweight CMP
//! Profile (RFC 9483) are decoded; the others (popdecc/popdecr, krr/krp,
//! ccr/ccp, announcements, nested) are recognised by [`BodyType`] and
//! refused with [`CmpError::UnsupportedBody`]. A p10cr's PKCS#10 request
//! is verified (its self-signature is its proof of possession) as it is
//! decoded, by [`enrolkit_pkix::pkcs10`].

use crate::confirm::CertConfirmContent;
use crate::error_msg::ErrorMsgContent;
use crate::general::InfoTypeAndValue;
use crate::poll::{PollRep, PollReq};
use crate::request::CertReqMessages;
use crate::response::CertRepMessage;
use crate::revocation::{RevDetails, RevRepContent};
use crate::{CmpError, Result};
use der::asn1::{AnyRef, ContextSpecificRef, Null};
use der::{Decode, Encode, Tag, TagMode, TagNumber, Tagged};
use enrolkit_pkix::pkcs10::CertificationRequest;
use std::fmt;

/// The 27 PKIBody alternatives, by tag number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum BodyType {
    Ir = 0,
    Ip = 1,
    Cr = 2,
    Cp = 3,
    P10cr = 4,
    Popdecc = 5,
    Popdecr = 6,
    Kur = 7,
    Kup = 8,
    Krr = 9,
    Krp = 10,
    Rr = 11,
    Rp = 12,
    Ccr = 13,
    Ccp = 14,
    Ckuann = 15,
    Cann = 16,
    Rann = 17,
    Crlann = 18,
    PkiConf = 19,
    Nested = 20,
    GenM = 21,
    GenP = 22,
    Error = 23,
    CertConf = 24,
    PollReq = 25,
    PollRep = 26,
}

impl BodyType {
    const NAMES: [&'static str; 27] = [
        "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr", "kur", "kup", "krr", "krp", "rr", "rp", "ccr", "ccp",
        "ckuann", "cann", "rann", "crlann", "pkiconf", "nested", "genm", "genp", "error", "certConf", "pollReq",
        "pollRep",
    ];
    const ALL: [BodyType; 27] = [
        Self::Ir,
        Self::Ip,
        Self::Cr,
        Self::Cp,
        Self::P10cr,
        Self::Popdecc,
        Self::Popdecr,
        Self::Kur,
        Self::Kup,
        Self::Krr,
        Self::Krp,
        Self::Rr,
        Self::Rp,
        Self::Ccr,
        Self::Ccp,
        Self::Ckuann,
        Self::Cann,
        Self::Rann,
        Self::Crlann,
        Self::PkiConf,
        Self::Nested,
        Self::GenM,
        Self::GenP,
        Self::Error,
        Self::CertConf,
        Self::PollReq,
        Self::PollRep,
    ];

    /// The tag number.
    pub fn number(self) -> u8 {
        self as u8
    }
    /// From a tag number.
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.get(usize::from(n)).copied()
    }
    /// The RFC's name ("ir", "certConf", …).
    pub fn name(self) -> &'static str {
        Self::NAMES.get(usize::from(self.number())).copied().unwrap_or("?")
    }
    /// Whether a client sends this body (a request or certConf/pollReq).
    pub fn is_request(self) -> bool {
        matches!(
            self,
            Self::Ir
                | Self::Cr
                | Self::P10cr
                | Self::Kur
                | Self::Krr
                | Self::Rr
                | Self::Ccr
                | Self::GenM
                | Self::CertConf
                | Self::PollReq
                | Self::Popdecr
        )
    }
}

impl fmt::Display for BodyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PKIBody, the alternatives this crate handles.
#[derive(Clone, Debug)]
pub enum PkiBody {
    /// ir: initialization request.
    Ir(CertReqMessages),
    /// ip: initialization response.
    Ip(CertRepMessage),
    /// cr: certification request.
    Cr(CertReqMessages),
    /// cp: certification response.
    Cp(CertRepMessage),
    /// p10cr: a PKCS#10 request, its signature verified.
    P10cr(Box<CertificationRequest>),
    /// kur: key update request.
    Kur(CertReqMessages),
    /// kup: key update response.
    Kup(CertRepMessage),
    /// rr: revocation request.
    Rr(Vec<RevDetails>),
    /// rp: revocation response.
    Rp(RevRepContent),
    /// pkiconf.
    PkiConf,
    /// genm.
    GenM(Vec<InfoTypeAndValue>),
    /// genp.
    GenP(Vec<InfoTypeAndValue>),
    /// error.
    Error(ErrorMsgContent),
    /// certConf.
    CertConf(CertConfirmContent),
    /// pollReq.
    PollReq(Vec<PollReq>),
    /// pollRep.
    PollRep(Vec<PollRep>),
}

impl PkiBody {
    /// Which alternative.
    pub fn body_type(&self) -> BodyType {
        match self {
            Self::Ir(_) => BodyType::Ir,
            Self::Ip(_) => BodyType::Ip,
            Self::Cr(_) => BodyType::Cr,
            Self::Cp(_) => BodyType::Cp,
            Self::P10cr(_) => BodyType::P10cr,
            Self::Kur(_) => BodyType::Kur,
            Self::Kup(_) => BodyType::Kup,
            Self::Rr(_) => BodyType::Rr,
            Self::Rp(_) => BodyType::Rp,
            Self::PkiConf => BodyType::PkiConf,
            Self::GenM(_) => BodyType::GenM,
            Self::GenP(_) => BodyType::GenP,
            Self::Error(_) => BodyType::Error,
            Self::CertConf(_) => BodyType::CertConf,
            Self::PollReq(_) => BodyType::PollReq,
            Self::PollRep(_) => BodyType::PollRep,
        }
    }

    /// DER: `[n] EXPLICIT` around the content.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        fn wrap<T: der::EncodeValue + Tagged>(n: BodyType, value: &T) -> Result<Vec<u8>> {
            Ok(ContextSpecificRef {
                tag_number: TagNumber::new(n.number()),
                tag_mode: TagMode::Explicit,
                value,
            }
            .to_der()?)
        }
        let t = self.body_type();
        match self {
            Self::Ir(v) | Self::Cr(v) | Self::Kur(v) => wrap(t, v),
            Self::Ip(v) | Self::Cp(v) | Self::Kup(v) => wrap(t, v),
            Self::P10cr(c) => wrap(t, &AnyRef::try_from(c.der())?),
            Self::Rr(v) => wrap(t, v),
            Self::Rp(v) => wrap(t, v),
            Self::PkiConf => wrap(t, &Null),
            Self::GenM(v) | Self::GenP(v) => wrap(t, v),
            Self::Error(v) => wrap(t, v),
            Self::CertConf(v) => wrap(t, v),
            Self::PollReq(v) => wrap(t, v),
            Self::PollRep(v) => wrap(t, v),
        }
    }

    /// Decode one PKIBody TLV (DER).
    pub fn from_der(tlv: &[u8]) -> Result<Self> {
        let any = AnyRef::from_der(tlv).map_err(|e| CmpError::malformed("PKIBody", e))?;
        let number = match any.tag() {
            Tag::ContextSpecific {
                constructed: true,
                number,
            } => number.value(),
            t => return Err(CmpError::malformed("PKIBody", format!("tag {t}"))),
        };
        let body_type =
            BodyType::from_number(number).ok_or_else(|| CmpError::malformed("PKIBody", format!("[{number}]")))?;
        let inner = any.value();
        fn dec<'a, T: Decode<'a>>(inner: &'a [u8], what: &'static str) -> Result<T> {
            T::from_der(inner).map_err(|e| CmpError::malformed(what, e))
        }
        Ok(match body_type {
            BodyType::Ir => Self::Ir(dec(inner, "ir")?),
            BodyType::Cr => Self::Cr(dec(inner, "cr")?),
            BodyType::Kur => Self::Kur(dec(inner, "kur")?),
            BodyType::Ip => Self::Ip(dec(inner, "ip")?),
            BodyType::Cp => Self::Cp(dec(inner, "cp")?),
            BodyType::Kup => Self::Kup(dec(inner, "kup")?),
            BodyType::P10cr => Self::P10cr(Box::new(CertificationRequest::parse(inner)?)),
            BodyType::Rr => Self::Rr(dec(inner, "rr")?),
            BodyType::Rp => Self::Rp(dec(inner, "rp")?),
            BodyType::PkiConf => {
                let _: Null = dec(inner, "pkiconf")?;
                Self::PkiConf
            }
            BodyType::GenM => Self::GenM(dec(inner, "genm")?),
            BodyType::GenP => Self::GenP(dec(inner, "genp")?),
            BodyType::Error => Self::Error(dec(inner, "error")?),
            BodyType::CertConf => Self::CertConf(dec(inner, "certConf")?),
            BodyType::PollReq => Self::PollReq(dec(inner, "pollReq")?),
            BodyType::PollRep => Self::PollRep(dec(inner, "pollRep")?),
            other => return Err(CmpError::UnsupportedBody(other.name().to_owned())),
        })
    }

    /// The number of repeated elements a bound applies to: requests,
    /// responses, revocations, ITAVs, statuses, poll entries.
    pub(crate) fn element_count(&self) -> usize {
        match self {
            Self::Ir(v) | Self::Cr(v) | Self::Kur(v) => v.len(),
            Self::Ip(v) | Self::Cp(v) | Self::Kup(v) => v.response.len(),
            Self::P10cr(_) | Self::PkiConf | Self::Error(_) => 1,
            Self::Rr(v) => v.len(),
            Self::Rp(v) => v.status.len(),
            Self::GenM(v) | Self::GenP(v) => v.len(),
            Self::CertConf(v) => v.len(),
            Self::PollReq(v) => v.len(),
            Self::PollRep(v) => v.len(),
        }
    }

    /// Certificates carried in the body (caPubs, genp caCerts are counted separately).
    pub(crate) fn ca_pubs_count(&self) -> usize {
        match self {
            Self::Ip(v) | Self::Cp(v) | Self::Kup(v) => v.ca_pubs.as_ref().map_or(0, Vec::len),
            _ => 0,
        }
    }
}
