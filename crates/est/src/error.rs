//! The one error type of the crate: every failure names what was wrong.

use enrolkit_keys::KeyError;

/// Why an EST message, path, header or body could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstError {
    /// A structure decoded but does not have the expected shape or content.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure (e.g. "certs-only response", "EST path").
        what: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The input is larger than the bound for it.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large (a body, a count, a header).
        what: &'static str,
        /// The limit (bytes or items, depending on `what`).
        limit: usize,
    },
    /// A base64 body holds a byte that is neither base64 nor whitespace.
    #[error("invalid base64: byte 0x{byte:02x} at position {position}")]
    InvalidBase64 {
        /// Offset of the offending byte in the input as received.
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// The last path segment is not one of the EST operations (RFC 7030 §3.2.2).
    #[error("unknown EST operation {0:?}")]
    UnknownOperation(String),
    /// The label path segment is not acceptable (RFC 7030 §3.2.2).
    #[error("invalid EST label {0:?}")]
    InvalidLabel(String),
    /// A Content-Type is not one EST uses here.
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    /// The signature of a CSR does not verify (no proof of possession).
    #[error("signature verification failed")]
    BadSignature,
    /// An algorithm (signature, key, curve, digest) is not supported.
    #[error("unsupported {what} {oid}")]
    UnsupportedAlgorithm {
        /// Which kind of algorithm.
        what: &'static str,
        /// Its OID or a description.
        oid: String,
    },
    /// A CSR does not satisfy the server's CSR attributes (RFC 7030 §4.5, RFC 9908).
    #[error("CSR does not satisfy the CSR attributes: {what}")]
    Unsatisfied {
        /// The first requirement that is not met.
        what: String,
    },
    /// A key operation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The DER structure is broken (truncated, bad length, wrong tag…).
    #[error("DER: {0}")]
    Der(#[from] der::Error),
}

impl From<enrolkit_pkix::ber::BerError> for EstError {
    fn from(e: enrolkit_pkix::ber::BerError) -> Self {
        match e {
            enrolkit_pkix::ber::BerError::TooLarge { what, limit, .. } => EstError::TooLarge { what, limit },
            enrolkit_pkix::ber::BerError::Malformed(reason) => EstError::malformed("BER/DER encoding", reason),
        }
    }
}

impl From<enrolkit_pkix::certs_only::CertsOnlyError> for EstError {
    fn from(e: enrolkit_pkix::certs_only::CertsOnlyError) -> Self {
        use enrolkit_pkix::certs_only::CertsOnlyError as E;
        match e {
            E::TooLarge { what, limit, .. } => EstError::TooLarge { what, limit },
            E::Malformed(reason) => EstError::malformed("certs-only response", reason),
            E::Encode(e) => EstError::Der(e),
        }
    }
}

impl EstError {
    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        EstError::Malformed {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn unsatisfied(what: impl Into<String>) -> Self {
        EstError::Unsatisfied { what: what.into() }
    }
}

/// A PKCS#10 failure, in this crate's terms: a bad self-signature stays
/// [`EstError::BadSignature`], a bound [`EstError::TooLarge`].
impl From<enrolkit_pkix::pkcs10::Pkcs10Error> for EstError {
    fn from(e: enrolkit_pkix::pkcs10::Pkcs10Error) -> Self {
        use enrolkit_pkix::pkcs10::Pkcs10Error as P;
        match e {
            P::TooLarge { limit, .. } => EstError::TooLarge {
                what: "PKCS#10 request",
                limit,
            },
            P::TooMany { what, limit } => EstError::TooLarge { what, limit },
            P::Malformed { what, reason } | P::Invalid { what, reason } => EstError::Malformed { what, reason },
            P::BadSignature => EstError::BadSignature,
            P::UnsupportedAlgorithm { what, oid } => EstError::UnsupportedAlgorithm { what, oid },
            P::Key(k) => EstError::Key(k),
            other => EstError::Malformed {
                what: "PKCS#10 request",
                reason: other.to_string(),
            },
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, EstError>;
