//! PKIHeader (RFC 4210 §5.1.1, with RFC 9480 §2.20's cmp2021).
//!
//! ```text
//! PKIHeader ::= SEQUENCE {
//!     pvno                INTEGER     { cmp1999(1), cmp2000(2), cmp2021(3) },
//!     sender              GeneralName,
//!     recipient           GeneralName,
//!     messageTime     [0] GeneralizedTime         OPTIONAL,
//!     protectionAlg   [1] AlgorithmIdentifier{ALGORITHM, {...}} OPTIONAL,
//!     senderKID       [2] KeyIdentifier           OPTIONAL,
//!     recipKID        [3] KeyIdentifier           OPTIONAL,
//!     transactionID   [4] OCTET STRING            OPTIONAL,
//!     senderNonce     [5] OCTET STRING            OPTIONAL,
//!     recipNonce      [6] OCTET STRING            OPTIONAL,
//!     freeText        [7] PKIFreeText             OPTIONAL,
//!     generalInfo     [8] SEQUENCE SIZE (1..MAX) OF InfoTypeAndValue OPTIONAL }
//!
//! PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
//! ```
//!
//! Our own type: `cmpv2` 0.2.0's `Pvno` has no cmp2021 (3), which RFC 9480
//! clients send, and its free text borrows from the input.

use crate::general::InfoTypeAndValue;
use crate::oid;
use der::asn1::{GeneralizedTime, Null, OctetString};
use der::Sequence;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

/// PKIFreeText: UTF8Strings.
pub type PkiFreeText = Vec<String>;

/// pvno cmp2000: what RFC 4210 peers and OpenSSL 3.0 send.
pub const PVNO_CMP2000: u8 = 2;
/// pvno cmp2021 (RFC 9480 §2.20): required when a message uses RFC 9480
/// features (EnvelopedData, hashAlg in certStatus); we accept it.
pub const PVNO_CMP2021: u8 = 3;

/// PKIHeader (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PkiHeader {
    /// pvno.
    pub pvno: u8,
    /// sender.
    pub sender: GeneralName,
    /// recipient.
    pub recipient: GeneralName,
    /// messageTime.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub message_time: Option<GeneralizedTime>,
    /// protectionAlg.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub protection_alg: Option<AlgorithmIdentifierOwned>,
    /// senderKID.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub sender_kid: Option<OctetString>,
    /// recipKID.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub recip_kid: Option<OctetString>,
    /// transactionID.
    #[asn1(context_specific = "4", tag_mode = "EXPLICIT", optional = "true")]
    pub transaction_id: Option<OctetString>,
    /// senderNonce.
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub sender_nonce: Option<OctetString>,
    /// recipNonce.
    #[asn1(context_specific = "6", tag_mode = "EXPLICIT", optional = "true")]
    pub recip_nonce: Option<OctetString>,
    /// freeText.
    #[asn1(context_specific = "7", tag_mode = "EXPLICIT", optional = "true")]
    pub free_text: Option<PkiFreeText>,
    /// generalInfo.
    #[asn1(context_specific = "8", tag_mode = "EXPLICIT", optional = "true")]
    pub general_info: Option<Vec<InfoTypeAndValue>>,
}

/// The NULL-DN `directoryName` (RFC 4210 §5.1.1: when the sender has no name).
pub fn null_dn() -> GeneralName {
    GeneralName::DirectoryName(Name::default())
}

impl PkiHeader {
    /// A header with pvno cmp2000 and the two names; all else absent.
    pub fn new(sender: GeneralName, recipient: GeneralName) -> Self {
        PkiHeader {
            pvno: PVNO_CMP2000,
            sender,
            recipient,
            message_time: None,
            protection_alg: None,
            sender_kid: None,
            recip_kid: None,
            transaction_id: None,
            sender_nonce: None,
            recip_nonce: None,
            free_text: None,
            general_info: None,
        }
    }

    /// The generalInfo entries.
    pub fn general_info(&self) -> &[InfoTypeAndValue] {
        self.general_info.as_deref().unwrap_or(&[])
    }

    /// Whether generalInfo carries id-it-implicitConfirm (RFC 4210 §5.1.1.1).
    pub fn implicit_confirm(&self) -> bool {
        self.general_info().iter().any(|i| i.oid == oid::IT_IMPLICIT_CONFIRM)
    }

    /// Add id-it-implicitConfirm (value NULL) to generalInfo.
    pub fn set_implicit_confirm(&mut self) -> der::Result<()> {
        if !self.implicit_confirm() {
            let itav = InfoTypeAndValue {
                oid: oid::IT_IMPLICIT_CONFIRM,
                value: Some(der::Any::encode_from(&Null)?),
            };
            self.general_info.get_or_insert_with(Vec::new).push(itav);
        }
        Ok(())
    }

    /// transactionID bytes, if present.
    pub fn transaction_id(&self) -> Option<&[u8]> {
        self.transaction_id.as_ref().map(|o| o.as_bytes())
    }
    /// senderNonce bytes, if present.
    pub fn sender_nonce(&self) -> Option<&[u8]> {
        self.sender_nonce.as_ref().map(|o| o.as_bytes())
    }
    /// recipNonce bytes, if present.
    pub fn recip_nonce(&self) -> Option<&[u8]> {
        self.recip_nonce.as_ref().map(|o| o.as_bytes())
    }
    /// senderKID bytes, if present.
    pub fn sender_kid(&self) -> Option<&[u8]> {
        self.sender_kid.as_ref().map(|o| o.as_bytes())
    }
    /// The sender as a directory name, if it is one.
    pub fn sender_name(&self) -> Option<&Name> {
        match &self.sender {
            GeneralName::DirectoryName(n) => Some(n),
            _ => None,
        }
    }
}
