//! Typed errors naming what was wrong.

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// Larger than [`crate::MAX_MESSAGE`].
    #[error("message of {0} octets; at most {max}", max = crate::MAX_MESSAGE)]
    TooLarge(usize),
    /// Not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// Not well-formed, or not this message's shape (unknown, repeated or
    /// missing field, wrong type): the parser's description.
    #[error("{format} {message}: {reason}")]
    Syntax {
        /// JSON or XML.
        format: &'static str,
        /// Which message.
        message: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// Well-formed but a value is out of range or inconsistent.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A media type this crate does not speak.
    #[error("unsupported media type {0:?} (application/json or application/xml)")]
    MediaType(String),
    /// Serialisation failed (a bug, or a value that cannot be written).
    #[error("cannot encode {0}")]
    Encode(String),
}

/// Result with [`ExchangeError`].
pub type Result<T> = core::result::Result<T, ExchangeError>;

/// An identifier (CSE-ID, AE-ID, MAF-ID) as `enrolkit-rspf` accepts it, the error naming `field`.
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<()> {
    enrolkit_rspf::enrolment::TargetId::new(id)
        .map(|_| ())
        .map_err(|e| invalid(field, e.to_string()))
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> ExchangeError {
    ExchangeError::Invalid {
        field,
        reason: reason.into(),
    }
}
