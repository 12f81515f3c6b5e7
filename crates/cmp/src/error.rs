//! Errors, and the PKIFailureInfo bit each maps to (RFC 4210 §5.2.3) so a
//! server answers every refusal with the protocol's own code.

use crate::body::BodyType;
use crate::status::FailureInfo;

/// Result with [`CmpError`].
pub type Result<T> = std::result::Result<T, CmpError>;

/// Everything that can go wrong building, parsing or checking a CMP message.
#[derive(Debug, thiserror::Error)]
pub enum CmpError {
    /// The input is longer than the limit.
    #[error("message of {actual} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// The size seen.
        actual: usize,
    },
    /// A counted element (requests, certificates, ITAVs…) exceeds its bound.
    #[error("{what}: {actual} present, at most {limit} accepted")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
        /// The count seen.
        actual: usize,
    },
    /// The encoding is not what the ASN.1 says.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// pvno is not cmp2000 (2) or cmp2021 (3).
    #[error("unsupported pvno {0}")]
    UnsupportedVersion(u8),
    /// A body type this crate does not handle (e.g. krr, ccr, nested).
    #[error("unsupported PKIBody {0}")]
    UnsupportedBody(String),
    /// A body type that does not belong here (e.g. an ip sent to a server).
    #[error("unexpected PKIBody {found}, expected {expected}")]
    UnexpectedBody {
        /// What the context expected.
        expected: &'static str,
        /// What arrived.
        found: BodyType,
    },
    /// An algorithm we do not implement or refuse (e.g. SHA-1 signatures).
    #[error("unsupported {kind} algorithm {oid}")]
    UnsupportedAlgorithm {
        /// "protection", "owf", "mac", "prf", "signature", "hash".
        kind: &'static str,
        /// The OID or a description.
        oid: String,
    },
    /// An iteration count, salt or key length outside what we accept.
    #[error("{what} {actual} outside the accepted range {min}..={max}")]
    OutOfRange {
        /// Which parameter.
        what: &'static str,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
        /// The value seen.
        actual: u64,
    },
    /// The message carries no protection where one is required.
    #[error("the message is not protected")]
    Unprotected,
    /// MAC protection where a signature was expected, or the reverse (failInfo wrongIntegrity).
    #[error("wrong kind of protection: {0}")]
    WrongIntegrity(&'static str),
    /// The MAC or signature does not verify (failInfo badMessageCheck).
    #[error("protection does not verify")]
    BadProtection,
    /// No certificate to check a signature with, or it does not match senderKID/sender.
    #[error("protection certificate: {0}")]
    ProtectionCertificate(String),
    /// A required header field is absent or wrong.
    #[error("header: {0}")]
    Header(&'static str),
    /// transactionID differs from the transaction's.
    #[error("transactionID does not match the transaction")]
    TransactionIdMismatch,
    /// recipNonce is absent or not the nonce we sent (failInfo badRecipientNonce).
    #[error("recipNonce is missing or does not match our senderNonce")]
    BadRecipientNonce,
    /// senderNonce is absent or of a bad size (failInfo badSenderNonce).
    #[error("senderNonce is missing or has a bad size")]
    BadSenderNonce,
    /// Proof of possession missing, unsupported or not verifying (failInfo badPOP).
    #[error("proof of possession: {0}")]
    BadPop(String),
    /// The certificate template lacks what is needed (failInfo badCertTemplate).
    #[error("certificate template: {0}")]
    BadCertTemplate(&'static str),
    /// certReqId values do not match the request's.
    #[error("certReqId {0} does not match the request")]
    CertReqIdMismatch(String),
    /// The embedded PKCS#10 request failed (p10cr).
    #[error("p10cr: {0}")]
    Pkcs10(#[from] enrolkit_pkix::pkcs10::Pkcs10Error),
    /// Key or signature operation failure.
    #[error(transparent)]
    Key(#[from] enrolkit_keys::KeyError),
    /// DER encoding failure while building.
    #[error("encoding: {0}")]
    Encoding(#[from] der::Error),
}

impl CmpError {
    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        CmpError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    /// The PKIFailureInfo bit a server reports for this error (RFC 4210
    /// §5.2.3; RFC 9483 §3.6.4 lists which a Lightweight CMP server uses).
    pub fn failure_info(&self) -> FailureInfo {
        match self {
            CmpError::TooLarge { .. }
            | CmpError::TooMany { .. }
            | CmpError::Malformed { .. }
            | CmpError::Encoding(_)
            | CmpError::CertReqIdMismatch(_) => FailureInfo::BadDataFormat,
            CmpError::UnsupportedVersion(_) => FailureInfo::UnsupportedVersion,
            CmpError::UnsupportedBody(_) | CmpError::UnexpectedBody { .. } => FailureInfo::BadRequest,
            CmpError::UnsupportedAlgorithm { .. } | CmpError::OutOfRange { .. } => FailureInfo::BadAlg,
            CmpError::Unprotected | CmpError::BadProtection => FailureInfo::BadMessageCheck,
            CmpError::WrongIntegrity(_) => FailureInfo::WrongIntegrity,
            CmpError::ProtectionCertificate(_) => FailureInfo::SignerNotTrusted,
            CmpError::Header(_) => FailureInfo::BadDataFormat,
            CmpError::TransactionIdMismatch => FailureInfo::BadRequest,
            CmpError::BadRecipientNonce => FailureInfo::BadRecipientNonce,
            CmpError::BadSenderNonce => FailureInfo::BadSenderNonce,
            CmpError::BadPop(_) => FailureInfo::BadPop,
            CmpError::BadCertTemplate(_) => FailureInfo::BadCertTemplate,
            CmpError::Pkcs10(enrolkit_pkix::pkcs10::Pkcs10Error::BadSignature) => FailureInfo::BadPop,
            CmpError::Pkcs10(_) => FailureInfo::BadDataFormat,
            CmpError::Key(enrolkit_keys::KeyError::BadSignature) => FailureInfo::BadMessageCheck,
            CmpError::Key(_) => FailureInfo::SystemFailure,
        }
    }
}
