//! Why a PKCS#10 request (RFC 2986 CertificationRequest) could not be built
//! or parsed. Every variant names what was wrong; the protocol crates map
//! them onto their own errors (SCEP failInfo, EST HTTP status).

use enrolkit_keys::KeyError;

/// Why a PKCS#10 request could not be built, parsed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs10Error {
    /// The request is larger than [`super::MAX_CSR`].
    #[error("PKCS#10 request is {actual} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The size seen.
        actual: usize,
    },
    /// A count in the request exceeds its bound (attributes, extensions,
    /// elements of one constructed value).
    #[error("PKCS#10 request: more than {limit} {what}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// The encoding nests deeper than [`super::MAX_DEPTH`].
    #[error("PKCS#10 request nests deeper than {limit} levels")]
    TooDeep {
        /// The bound.
        limit: usize,
    },
    /// A structure does not decode or does not have the expected content.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure ("PKCS#10 request", "challengePassword", …).
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// What the caller asked to build cannot be encoded as asked.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The self-signature does not verify: no proof of possession.
    #[error("signature verification failed")]
    BadSignature,
    /// A signature algorithm or key type that is not supported.
    #[error("unsupported {what} {oid}")]
    UnsupportedAlgorithm {
        /// Which kind of algorithm.
        what: &'static str,
        /// Its OID or a description.
        oid: String,
    },
    /// The signer failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Pkcs10Error {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Pkcs10Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Pkcs10Error::Invalid {
            what,
            reason: reason.to_string(),
        }
    }
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Pkcs10Error>;
