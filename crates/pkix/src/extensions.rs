//! The certificate extensions the validator acts on (RFC 5280 §4.2), and
//! which critical extensions it understands.
//!
//! §4.2: "A certificate-using system MUST reject the certificate if it
//! encounters a critical extension it does not recognize or a critical
//! extension that contains information that it cannot process."
//!
//! - basicConstraints (§4.2.1.9): `cA` and `pathLenConstraint`.
//! - keyUsage (§4.2.1.3): `keyCertSign` on an issuer.
//! - extKeyUsage (§4.2.1.12): the purpose of the target.
//! - subjectAltName, subjectKeyIdentifier, authorityKeyIdentifier: understood
//!   (they constrain nothing the validator decides).
//!
//! An extension present twice is refused (§4.2: "A certificate MUST NOT
//! include more than one instance of a particular extension"), as is one
//! that does not decode.

use crate::chain::PathError;
use crate::subject;
use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// Extensions whose criticality the validator honours.
pub const UNDERSTOOD: [ObjectIdentifier; 6] = [
    rfc5280::ID_CE_BASIC_CONSTRAINTS,
    rfc5280::ID_CE_KEY_USAGE,
    rfc5280::ID_CE_EXT_KEY_USAGE,
    rfc5280::ID_CE_SUBJECT_ALT_NAME,
    rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
    rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
];

/// The extensions of one certificate the validator acts on, decoded once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// basicConstraints, if present.
    pub basic_constraints: Option<BasicConstraints>,
    /// keyUsage, if present.
    pub key_usage: Option<KeyUsage>,
    /// extKeyUsage, if present.
    pub ext_key_usage: Option<ExtendedKeyUsage>,
}

impl Decoded {
    /// Decode `cert`'s extensions, refusing duplicates, undecodable ones
    /// and critical ones not in [`UNDERSTOOD`].
    pub fn of(cert: &Certificate) -> Result<Self, PathError> {
        let mut out = Decoded::default();
        let mut seen: Vec<&ObjectIdentifier> = Vec::new();
        for e in cert.tbs_certificate.extensions.iter().flatten() {
            if seen.contains(&&e.extn_id) {
                return Err(PathError::BadExtension {
                    subject: subject(cert),
                    oid: e.extn_id.to_string(),
                    reason: "present more than once".into(),
                });
            }
            seen.push(&e.extn_id);
            if e.critical && !UNDERSTOOD.contains(&e.extn_id) {
                return Err(PathError::UnknownCriticalExtension {
                    subject: subject(cert),
                    oid: e.extn_id.to_string(),
                });
            }
            let bad = |err: der::Error| PathError::BadExtension {
                subject: subject(cert),
                oid: e.extn_id.to_string(),
                reason: err.to_string(),
            };
            let value = e.extn_value.as_bytes();
            match e.extn_id {
                rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                    out.basic_constraints = Some(BasicConstraints::from_der(value).map_err(bad)?)
                }
                rfc5280::ID_CE_KEY_USAGE => out.key_usage = Some(KeyUsage::from_der(value).map_err(bad)?),
                rfc5280::ID_CE_EXT_KEY_USAGE => {
                    out.ext_key_usage = Some(ExtendedKeyUsage::from_der(value).map_err(bad)?)
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// basicConstraints cA is asserted.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.as_ref().is_some_and(|b| b.ca)
    }

    /// keyUsage is absent or allows keyCertSign.
    pub fn may_sign_certificates(&self) -> bool {
        self.key_usage
            .as_ref()
            .is_none_or(|k| k.0.contains(KeyUsages::KeyCertSign))
    }
}

/// The extension `id` of `cert`, decoded as `T`: `None` when absent, the
/// decoding error when it does not decode (the first instance; the
/// validator refuses a repeated one).
pub fn find<'a, T: Decode<'a>>(cert: &'a Certificate, id: ObjectIdentifier) -> Option<der::Result<T>> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == id)
        .map(|e| T::from_der(e.extn_value.as_bytes()))
}

/// Whether `cert` asserts basicConstraints cA (false when the extension is
/// absent or does not decode): a sorting predicate, not a trust decision.
pub fn is_ca(cert: &Certificate) -> bool {
    find::<BasicConstraints>(cert, rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(Result::ok)
        .is_some_and(|b| b.ca)
}

/// `cert`'s extKeyUsage, if present and decodable.
pub fn ext_key_usage(cert: &Certificate) -> Option<ExtendedKeyUsage> {
    find(cert, rfc5280::ID_CE_EXT_KEY_USAGE).and_then(Result::ok)
}
