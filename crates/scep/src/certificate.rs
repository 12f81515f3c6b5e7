//! Certificates inside SCEP messages and how a message names one: the
//! permissive [`RawCertificate`] profile and RFC 5280 conversions, and the
//! identifiers of RFC 5652 §5.3 and §6.2.1 (a signer's `sid`, a recipient's
//! `rid`):
//!
//! ```text
//! SignerIdentifier ::= CHOICE {
//!   issuerAndSerialNumber IssuerAndSerialNumber,
//!   subjectKeyIdentifier [0] SubjectKeyIdentifier }
//!
//! RecipientIdentifier ::= CHOICE {
//!   issuerAndSerialNumber IssuerAndSerialNumber,
//!   subjectKeyIdentifier [0] SubjectKeyIdentifier }
//!
//! IssuerAndSerialNumber ::= SEQUENCE {
//!   issuer Name,
//!   serialNumber CertificateSerialNumber }
//! ```

use crate::asn1::{IssuerSerial, KeyId, RawCertificate};
use crate::error::{Result, ScepError};
use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Encode};
use x509_cert::certificate::{CertificateInner, Profile};
use x509_cert::Certificate;

/// The IssuerAndSerialNumber of a certificate.
pub fn issuer_and_serial(cert: &Certificate) -> IssuerAndSerialNumber {
    IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    }
}

pub(crate) fn spki_der<P: Profile>(cert: &CertificateInner<P>) -> Result<Vec<u8>> {
    Ok(cert.tbs_certificate.subject_public_key_info.to_der()?)
}

/// Subject of a certificate as a string for errors and logs.
pub fn subject_string<P: Profile>(cert: &CertificateInner<P>) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// A certificate from a message under RFC 5280's rules (serial number at
/// most 20 octets), for callers that need one: fails on certificates only
/// the permissive profile accepts.
pub fn to_rfc5280(cert: &RawCertificate) -> Result<Certificate> {
    Certificate::from_der(&cert.to_der()?).map_err(|e| ScepError::malformed("certificate", e))
}

/// Any certificate under the permissive profile messages use (e.g. to
/// fill [`crate::ReplyTo::requester_certificate`] from a certificate at hand).
pub fn to_raw<P: Profile>(cert: &CertificateInner<P>) -> Result<RawCertificate> {
    Ok(RawCertificate::from_der(&cert.to_der()?)?)
}

/// Whether two certificates, whatever their profiles, are the same (same DER).
pub fn same_certificate<P: Profile, Q: Profile>(a: &CertificateInner<P>, b: &CertificateInner<Q>) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(x), Ok(y)) if x == y)
}

/// Whether `id` names `cert`.
pub(crate) fn identifies<P: Profile>(id: &KeyId, cert: &CertificateInner<P>) -> bool {
    match id {
        KeyId::IssuerAndSerialNumber(ias) => IssuerSerial::of(cert).is_ok_and(|ours| ours == *ias),
        KeyId::SubjectKeyIdentifier(ski) => subject_key_id(cert).as_deref() == Some(ski.as_bytes()),
    }
}

pub(crate) fn subject_key_id<P: Profile>(c: &CertificateInner<P>) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let exts = c.tbs_certificate.extensions.as_ref()?;
    let e = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)?;
    SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
        .ok()
        .map(|s| s.0.as_bytes().to_vec())
}
