//! Why a certificate path was not accepted: one variant per rule, each
//! naming the certificate (by subject) and the reason.

/// Why the validator refused a certificate or its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// More certificates were offered than the validator looks at.
    #[error("too many {what}: {actual} (at most {limit})")]
    TooManyCertificates {
        /// Which input.
        what: &'static str,
        /// The bound.
        limit: usize,
        /// How many were given.
        actual: usize,
    },
    /// No anchor and no offered intermediate is named as this certificate's issuer.
    #[error("certificate {subject:?}: no trusted anchor or offered CA certificate is its issuer {issuer:?}")]
    NoIssuer {
        /// The certificate.
        subject: String,
        /// The issuer it names.
        issuer: String,
    },
    /// The candidate issuer's subject is not the certificate's issuer name.
    #[error("certificate {subject:?} names issuer {issuer:?}, not {candidate:?}")]
    NameMismatch {
        /// The certificate.
        subject: String,
        /// The issuer it names.
        issuer: String,
        /// The certificate tried as issuer.
        candidate: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error("certificate {subject:?} is not signed by {issuer:?}'s key: {reason}")]
    BadSignature {
        /// The certificate.
        subject: String,
        /// The issuer whose key was tried.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// signatureAlgorithm differs from tbsCertificate.signature (RFC 5280 §4.1.1.2).
    #[error("certificate {subject:?}: signatureAlgorithm differs from the signature field of tbsCertificate")]
    AlgorithmMismatch {
        /// The certificate.
        subject: String,
    },
    /// A signature algorithm the validator does not accept.
    #[error("certificate {subject:?}: signature algorithm {oid} is not accepted")]
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
        /// Its signatureAlgorithm.
        oid: String,
    },
    /// A SHA-1 signature without the legacy opt-in.
    #[error("certificate {subject:?} is signed with SHA-1, refused unless SHA-1 is explicitly allowed")]
    Sha1Refused {
        /// The certificate.
        subject: String,
    },
    /// notAfter has passed at the time of the check.
    #[error("certificate {subject:?} expired at {not_after}")]
    Expired {
        /// The certificate.
        subject: String,
        /// Its notAfter.
        not_after: String,
    },
    /// notBefore is still ahead at the time of the check (beyond the tolerated skew).
    #[error("certificate {subject:?} is not valid before {not_before}")]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Its notBefore.
        not_before: String,
    },
    /// An issuer without basicConstraints cA (RFC 5280 §6.1.4 (k)).
    #[error("certificate {subject:?} issues certificates but is not a CA (basicConstraints cA)")]
    NotCa {
        /// The issuer.
        subject: String,
    },
    /// An issuer whose keyUsage lacks keyCertSign (RFC 5280 §6.1.4 (n)).
    #[error("certificate {subject:?} issues certificates but its keyUsage lacks keyCertSign")]
    NoCertSign {
        /// The issuer.
        subject: String,
    },
    /// More CA certificates below an issuer than its pathLenConstraint allows (RFC 5280 §6.1.4 (m)).
    #[error("certificate {subject:?} allows {path_len} CA certificate(s) below it (pathLenConstraint), the path has {below}")]
    PathLenExceeded {
        /// The issuer.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u8,
        /// Non-self-issued intermediates below it.
        below: usize,
    },
    /// No path to an anchor within the length limit.
    #[error("no path of at most {limit} certificates reaches a trusted anchor")]
    TooLong {
        /// The bound.
        limit: usize,
    },
    /// The target's extKeyUsage does not allow the purpose.
    #[error("certificate {subject:?} may not act as {purpose} (extendedKeyUsage)")]
    WrongPurpose {
        /// The certificate.
        subject: String,
        /// The purpose asked for.
        purpose: crate::Purpose,
    },
    /// A critical extension the validator does not process (RFC 5280 §4.2).
    #[error("certificate {subject:?} has critical extension {oid}, which is not understood")]
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// An extension that does not decode or is present twice.
    #[error("certificate {subject:?}: extension {oid}: {reason}")]
    BadExtension {
        /// The certificate.
        subject: String,
        /// The extension.
        oid: String,
        /// What was wrong.
        reason: String,
    },
    /// The revocation hook refused a certificate on the path.
    #[error("certificate {subject:?} is refused by the revocation check: {reason}")]
    Revoked {
        /// The certificate.
        subject: String,
        /// The hook's reason.
        reason: String,
    },
    /// A certificate could not be encoded for checking.
    #[error("certificate {subject:?}: {reason}")]
    Encoding {
        /// The certificate.
        subject: String,
        /// The encoder's error.
        reason: String,
    },
    /// Path building gave up after too many signature checks (a pathological set).
    #[error("path building gave up after {limit} signature checks")]
    TooMuchWork {
        /// The bound.
        limit: usize,
    },
}
