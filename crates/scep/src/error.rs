//! The one error type of the crate: every failure names what was wrong.

use crate::codes::{FailInfo, MessageType, UnknownCode};
use enrolkit_keys::KeyError;

/// Why a SCEP message could not be built, parsed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScepError {
    /// The input is larger than the configured bound.
    #[error("{what} is {actual} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The size seen.
        actual: usize,
    },
    /// The BER/DER structure is broken (truncated, bad length, too deep…).
    #[error("malformed encoding: {0}")]
    Encoding(String),
    /// A structure decoded but does not have the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure.
        what: &'static str,
        /// The reason.
        reason: String,
    },
    /// A ContentInfo had another content type than the one required.
    #[error("expected content type {expected}, found {found}")]
    UnexpectedContentType {
        /// The expected type.
        expected: &'static str,
        /// The OID found.
        found: String,
    },
    /// A required authenticated attribute is missing.
    #[error("missing authenticated attribute {0}")]
    MissingAttribute(&'static str),
    /// An authenticated attribute has a bad value or is repeated.
    #[error("invalid authenticated attribute {name}: {reason}")]
    InvalidAttribute {
        /// Attribute name.
        name: &'static str,
        /// The reason.
        reason: String,
    },
    /// The messageType is not one we know.
    #[error("unknown messageType {0:?}")]
    UnknownMessageType(String),
    /// A message of this type was not expected here (e.g. a CertRep sent to the responder).
    #[error("unexpected messageType {0}")]
    UnexpectedMessageType(MessageType),
    /// The pkiStatus is not one we know.
    #[error("unknown pkiStatus {0:?}")]
    UnknownPkiStatus(String),
    /// The failInfo is not one we know.
    #[error("unknown failInfo {0:?}")]
    UnknownFailInfo(String),
    /// The SignedData has no SignerInfo, or more than one.
    #[error("expected exactly one signer, found {0}")]
    SignerCount(usize),
    /// The signer's certificate is not in the message.
    #[error("the signer's certificate is not included in the message")]
    SignerCertificateMissing,
    /// The message was signed by a certificate other than the expected one(s).
    #[error("signed by an unexpected certificate (subject {0})")]
    WrongSigner(String),
    /// An algorithm is not supported (digest, signature, key transport or content encryption).
    #[error("unsupported {kind} algorithm {oid}")]
    UnsupportedAlgorithm {
        /// Which kind of algorithm.
        kind: &'static str,
        /// Its OID or name.
        oid: String,
    },
    /// The messageDigest attribute does not match the content.
    #[error("messageDigest does not match the signed content")]
    DigestMismatch,
    /// The signature over the authenticated attributes is invalid.
    #[error("signature verification failed")]
    BadSignature,
    /// No RecipientInfo is addressed to our certificate.
    #[error("the envelope is not addressed to our certificate")]
    WrongRecipient,
    /// The envelope could not be decrypted or its plaintext is not what it should be.
    /// Deliberately uninformative: padding and parse failures look the same.
    #[error("the envelope could not be decrypted")]
    DecryptionFailed,
    /// The recipientNonce of a reply is not our senderNonce.
    #[error("recipientNonce does not match the request's senderNonce")]
    NonceMismatch,
    /// The transactionID of a reply is not the request's.
    #[error("transactionID {found:?} does not match the request's {expected:?}")]
    TransactionIdMismatch {
        /// The request's transaction ID.
        expected: String,
        /// What the reply carried.
        found: String,
    },
    /// Base64 or URL decoding failed.
    #[error("bad base64/URL encoding: {0}")]
    Base64(String),
    /// A key operation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A GetCACaps body, GetCACert body or query string is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl From<UnknownCode> for ScepError {
    fn from(e: UnknownCode) -> Self {
        match e {
            UnknownCode::MessageType(s) => ScepError::UnknownMessageType(s),
            UnknownCode::PkiStatus(s) => ScepError::UnknownPkiStatus(s),
            UnknownCode::FailInfo(s) => ScepError::UnknownFailInfo(s),
        }
    }
}

impl From<enrolkit_pkix::ber::BerError> for ScepError {
    fn from(e: enrolkit_pkix::ber::BerError) -> Self {
        match e {
            enrolkit_pkix::ber::BerError::TooLarge { what, limit, actual } => {
                ScepError::TooLarge { what, limit, actual }
            }
            enrolkit_pkix::ber::BerError::Malformed(reason) => ScepError::Encoding(reason.to_string()),
        }
    }
}

impl From<enrolkit_pkix::certs_only::CertsOnlyError> for ScepError {
    fn from(e: enrolkit_pkix::certs_only::CertsOnlyError) -> Self {
        use enrolkit_pkix::certs_only::CertsOnlyError as E;
        match e {
            E::TooLarge { what, limit, actual } => ScepError::TooLarge { what, limit, actual },
            E::Malformed(reason) => ScepError::Malformed {
                what: "certs-only SignedData",
                reason,
            },
            E::Encode(e) => ScepError::from(e),
        }
    }
}

impl From<der::Error> for ScepError {
    fn from(e: der::Error) -> Self {
        ScepError::Encoding(e.to_string())
    }
}

/// A PKCS#10 failure in SCEP's terms, so that [`ScepError::fail_info`]
/// answers a bad self-signature with badMessageCheck and an unsupported
/// algorithm with badAlg.
impl From<enrolkit_pkix::pkcs10::Pkcs10Error> for ScepError {
    fn from(e: enrolkit_pkix::pkcs10::Pkcs10Error) -> Self {
        use enrolkit_pkix::pkcs10::Pkcs10Error as P;
        match e {
            P::TooLarge { limit, actual } => ScepError::TooLarge {
                what: "PKCS#10 request",
                limit,
                actual,
            },
            P::Malformed {
                what: "challengePassword",
                reason,
            } => ScepError::InvalidAttribute {
                name: "challengePassword",
                reason,
            },
            P::Malformed { what, reason } => ScepError::Malformed { what, reason },
            P::Invalid { what, reason } => ScepError::Invalid { what, reason },
            P::BadSignature => ScepError::BadSignature,
            P::UnsupportedAlgorithm { what, oid } => ScepError::UnsupportedAlgorithm { kind: what, oid },
            P::Key(k) => ScepError::Key(k),
            other => ScepError::Encoding(other.to_string()),
        }
    }
}

impl ScepError {
    /// The failInfo a responder should answer with when a request fails this way
    /// (RFC 8894 §3.2.1.4.5).
    pub fn fail_info(&self) -> FailInfo {
        match self {
            ScepError::UnsupportedAlgorithm { .. } => FailInfo::BadAlg,
            ScepError::BadSignature
            | ScepError::DigestMismatch
            | ScepError::SignerCertificateMissing
            | ScepError::WrongSigner(_)
            | ScepError::WrongRecipient
            | ScepError::DecryptionFailed
            | ScepError::Key(_) => FailInfo::BadMessageCheck,
            ScepError::NonceMismatch | ScepError::TransactionIdMismatch { .. } => FailInfo::BadCertId,
            _ => FailInfo::BadRequest,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        ScepError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Result alias.
pub type Result<T, E = ScepError> = std::result::Result<T, E>;
