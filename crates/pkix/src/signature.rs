//! Which certificate signatures are accepted, and checking one link.
//!
//! RFC 5280 §4.1.1.2: "This field MUST contain the same algorithm
//! identifier as the signature field in the sequence tbsCertificate."
//! §6.1.3 (a)(1): "The signature on the certificate can be verified using
//! working_public_key_algorithm, the working_public_key, and the
//! working_public_key_parameters."
//!
//! Accepted: RSASSA-PKCS1-v1_5 with SHA-256, SHA-384 or SHA-512 (RFC 4055),
//! ECDSA with SHA-256 or SHA-384 on P-256 or P-384 (RFC 5758); with SHA-1
//! only when the caller opts in ([`crate::Options::allow_sha1`]).
//! RSASSA-PSS is not accepted (enrolkit-keys does not verify it yet).

use crate::chain::PathError;
use crate::subject;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use enrolkit_keys::{oid, x509_oid};
use x509_cert::Certificate;

/// A signature algorithm the validator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// sha1WithRSAEncryption: legacy, refused unless allowed.
    RsaSha1,
    /// sha256WithRSAEncryption.
    RsaSha256,
    /// sha384WithRSAEncryption.
    RsaSha384,
    /// sha512WithRSAEncryption.
    RsaSha512,
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
}

impl Algorithm {
    /// The algorithm a signatureAlgorithm OID names, if known.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        Some(match *o {
            oid::SHA1_WITH_RSA => Self::RsaSha1,
            oid::SHA256_WITH_RSA => Self::RsaSha256,
            x509_oid::SHA384_WITH_RSA => Self::RsaSha384,
            oid::SHA512_WITH_RSA => Self::RsaSha512,
            oid::ECDSA_WITH_SHA256 => Self::EcdsaSha256,
            x509_oid::ECDSA_WITH_SHA384 => Self::EcdsaSha384,
            _ => return None,
        })
    }

    /// Whether it hashes with SHA-1.
    pub fn is_sha1(self) -> bool {
        self == Self::RsaSha1
    }
}

/// Check that `cert` names `issuer` as its issuer (RFC 5280 §6.1.3 (a)(4):
/// exact match of the encoded names) and carries a signature by
/// `issuer`'s key with an accepted algorithm.
pub fn check_link(cert: &Certificate, issuer: &Certificate, allow_sha1: bool) -> Result<(), PathError> {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(PathError::NameMismatch {
            subject: subject(cert),
            issuer: cert.tbs_certificate.issuer.to_string(),
            candidate: subject(issuer),
        });
    }
    check_signature(cert, issuer, allow_sha1)
}

/// Check only the signature of `cert` by `issuer`'s key (not the names).
pub fn check_signature(cert: &Certificate, issuer: &Certificate, allow_sha1: bool) -> Result<(), PathError> {
    let outer = &cert.signature_algorithm;
    if *outer != cert.tbs_certificate.signature {
        return Err(PathError::AlgorithmMismatch { subject: subject(cert) });
    }
    let alg = Algorithm::from_oid(&outer.oid).ok_or_else(|| PathError::UnsupportedAlgorithm {
        subject: subject(cert),
        oid: outer.oid.to_string(),
    })?;
    if alg.is_sha1() && !allow_sha1 {
        return Err(PathError::Sha1Refused { subject: subject(cert) });
    }
    let encoding = |e: der::Error| PathError::Encoding {
        subject: subject(cert),
        reason: e.to_string(),
    };
    let spki_der = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(encoding)?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(encoding)?;
    let tbs = cert.tbs_certificate.to_der().map_err(encoding)?;
    let sig = cert.signature.as_bytes().ok_or_else(|| PathError::BadSignature {
        subject: subject(cert),
        issuer: subject(issuer),
        reason: "the signature is not a whole number of bytes".into(),
    })?;
    enrolkit_keys::verify_certificate_signature(&spki, &outer.oid, &tbs, sig).map_err(|e| PathError::BadSignature {
        subject: subject(cert),
        issuer: subject(issuer),
        reason: e.to_string(),
    })
}

/// Whether `cert` carries a verifiable signature by `issuer` under its
/// name (SHA-1 allowed): the plain predicate for callers sorting
/// certificates, not a trust decision (use [`crate::Validator`] for that).
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    check_link(cert, issuer, true).is_ok()
}
