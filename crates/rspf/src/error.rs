//! Typed errors: each names what was wrong.

/// What went wrong in a derivation or an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RspfError {
    /// An FQDN that is not LDH labels separated by dots (RFC 1035 §2.3.1, RFC 1123 §2.1).
    #[error("invalid FQDN {what}: {why}")]
    InvalidFqdn {
        /// Which FQDN (MEF, MAF, NAF…).
        what: &'static str,
        /// Why it was refused.
        why: &'static str,
    },
    /// An identifier (CSE-ID, AE-ID, IMPI, B-TID, KeId…) outside its syntax or length.
    #[error("invalid {what}: {why}")]
    InvalidIdentifier {
        /// Which identifier.
        what: &'static str,
        /// Why it was refused.
        why: &'static str,
    },
    /// A KDF parameter longer than its two-octet length field can say (TS 33.220 B.2.1).
    #[error("KDF parameter P{index} is {len} octets; at most 65535")]
    ParameterTooLong {
        /// Index of the parameter (P0 is the first).
        index: usize,
        /// Its length.
        len: usize,
    },
    /// Exported keying material of the wrong length.
    #[error("exported keying material is {got} octets; {want} expected")]
    ExportLength {
        /// Octets received.
        got: usize,
        /// Octets needed.
        want: usize,
    },
}

/// Result with [`RspfError`].
pub type Result<T> = core::result::Result<T, RspfError>;
