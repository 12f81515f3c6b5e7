//! Certificate requests: CertReqMessages, CertReqMsg, CertRequest and
//! CertTemplate (RFC 4211 §3, §5), as ir, cr and kur carry them.
//!
//! ```text
//! CertReqMessages ::= SEQUENCE SIZE (1..MAX) OF CertReqMsg
//!
//! CertReqMsg ::= SEQUENCE {
//!     certReq   CertRequest,
//!     popo      ProofOfPossession  OPTIONAL,
//!     regInfo   SEQUENCE SIZE(1..MAX) OF AttributeTypeAndValue OPTIONAL }
//!
//! CertRequest ::= SEQUENCE {
//!     certReqId     INTEGER,
//!     certTemplate  CertTemplate,
//!     controls      Controls OPTIONAL }
//!
//! CertTemplate ::= SEQUENCE {
//!     version      [0] Version               OPTIONAL,
//!     serialNumber [1] INTEGER               OPTIONAL,
//!     signingAlg   [2] AlgorithmIdentifier   OPTIONAL,
//!     issuer       [3] Name                  OPTIONAL,
//!     validity     [4] OptionalValidity      OPTIONAL,
//!     subject      [5] Name                  OPTIONAL,
//!     publicKey    [6] SubjectPublicKeyInfo  OPTIONAL,
//!     issuerUID    [7] UniqueIdentifier      OPTIONAL,
//!     subjectUID   [8] UniqueIdentifier      OPTIONAL,
//!     extensions   [9] Extensions            OPTIONAL }
//!
//! OptionalValidity ::= SEQUENCE {
//!     notBefore  [0] Time OPTIONAL,
//!     notAfter   [1] Time OPTIONAL } -- at least one MUST be present
//!
//! Controls  ::= SEQUENCE SIZE(1..MAX) OF AttributeTypeAndValue
//! ```
//!
//! (The CRMF module uses IMPLICIT TAGS; `Name` is a CHOICE and so is
//! tagged explicitly.) `CertTemplate` and `CertReqMsg` are ours: in `crmf`
//! 0.2.0 the template's validity is an X.509 `Validity` (both times, no
//! tags) rather than `OptionalValidity`, so a template with a validity —
//! `openssl cmp -days` sends one — does not decode, and `regInfo` is a
//! SEQUENCE OF `Attribute` rather than `AttributeTypeAndValue`.
//! `ProofOfPossession`, `OptionalValidity`, `Controls` and `CertId` are
//! `crmf`'s.

use crate::oid;
use der::asn1::{BitString, Int};
use der::{Decode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

pub use crmf::controls::{CertId, Controls};
pub use crmf::pop::{PopoSigningKey, ProofOfPossession};
pub use crmf::request::OptionalValidity;

/// CertTemplate (see the module docs).
#[derive(Clone, Debug, Default, Eq, PartialEq, Sequence)]
pub struct CertTemplate {
    /// version.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub version: Option<x509_cert::Version>,
    /// serialNumber.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub serial_number: Option<SerialNumber>,
    /// signingAlg.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub signing_alg: Option<AlgorithmIdentifierOwned>,
    /// issuer.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub issuer: Option<Name>,
    /// validity.
    #[asn1(context_specific = "4", tag_mode = "IMPLICIT", optional = "true")]
    pub validity: Option<OptionalValidity>,
    /// subject.
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub subject: Option<Name>,
    /// publicKey.
    #[asn1(context_specific = "6", tag_mode = "IMPLICIT", optional = "true")]
    pub public_key: Option<SubjectPublicKeyInfoOwned>,
    /// issuerUID.
    #[asn1(context_specific = "7", tag_mode = "IMPLICIT", optional = "true")]
    pub issuer_uid: Option<BitString>,
    /// subjectUID.
    #[asn1(context_specific = "8", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_uid: Option<BitString>,
    /// extensions.
    #[asn1(context_specific = "9", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// CertRequest (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertRequest {
    /// certReqId.
    pub cert_req_id: Int,
    /// certTemplate.
    pub cert_template: CertTemplate,
    /// controls.
    pub controls: Option<Controls>,
}

/// CertReqMsg (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertReqMsg {
    /// certReq.
    pub cert_req: CertRequest,
    /// popo.
    pub popo: Option<ProofOfPossession>,
    /// regInfo.
    pub reg_info: Option<Vec<AttributeTypeAndValue>>,
}

/// CertReqMessages.
pub type CertReqMessages = Vec<CertReqMsg>;

impl CertRequest {
    /// The control with `id`, if present.
    pub fn control(&self, id: const_oid::ObjectIdentifier) -> Option<&AttributeTypeAndValue> {
        self.controls.as_ref()?.iter().find(|c| c.oid == id)
    }

    /// The id-regCtrl-oldCertID control (RFC 4211 §6.5): which certificate a kur replaces.
    pub fn old_cert_id(&self) -> crate::Result<Option<CertId>> {
        match self.control(oid::REG_CTRL_OLD_CERT_ID) {
            None => Ok(None),
            Some(c) => CertId::from_der(&der::Encode::to_der(&c.value)?)
                .map(Some)
                .map_err(|e| crate::CmpError::malformed("oldCertID", e)),
        }
    }

    /// certReqId as an i64 (RFC 4210 uses 0 and -1; anything outside i64 is malformed).
    pub fn id(&self) -> crate::Result<i64> {
        int_to_i64(&self.cert_req_id)
    }
}

/// An id-regCtrl-oldCertID value naming `cert`.
pub fn cert_id_of(cert: &Certificate) -> CertId {
    CertId {
        issuer: GeneralName::DirectoryName(cert.tbs_certificate.issuer.clone()),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    }
}

/// Whether a CertId names `cert` (issuer as directoryName and serial).
pub fn cert_id_matches(id: &CertId, cert: &Certificate) -> bool {
    matches!(&id.issuer, GeneralName::DirectoryName(n) if *n == cert.tbs_certificate.issuer)
        && id.serial_number == cert.tbs_certificate.serial_number
}

/// A DER INTEGER as i64.
pub fn int_to_i64(i: &Int) -> crate::Result<i64> {
    let b = i.as_bytes();
    if b.is_empty() || b.len() > 8 {
        return Err(crate::CmpError::malformed("INTEGER", "outside the 64-bit range"));
    }
    let negative = b.first().is_some_and(|f| f & 0x80 != 0);
    let mut v: i64 = if negative { -1 } else { 0 };
    for byte in b {
        v = (v << 8) | i64::from(*byte);
    }
    Ok(v)
}

/// An i64 as a DER INTEGER.
pub fn i64_to_int(v: i64) -> crate::Result<Int> {
    let be = v.to_be_bytes();
    // Minimal two's complement: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 7 {
        let (Some(cur), Some(next)) = (be.get(start), be.get(start + 1)) else {
            break;
        };
        if (*cur == 0x00 && next & 0x80 == 0) || (*cur == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    Ok(Int::new(be.get(start..).unwrap_or(&be))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn integers_round_trip_minimally() {
        for v in [0i64, 1, -1, 127, 128, -128, -129, 255, 256, i64::MAX, i64::MIN] {
            let i = i64_to_int(v).unwrap();
            assert_eq!(int_to_i64(&i).unwrap(), v, "{v}");
            let der = i.to_der().unwrap();
            assert_eq!(Int::from_der(&der).unwrap(), i);
        }
        assert_eq!(i64_to_int(-1).unwrap().to_der().unwrap(), [0x02, 0x01, 0xff]);
        assert_eq!(i64_to_int(128).unwrap().to_der().unwrap(), [0x02, 0x02, 0x00, 0x80]);
    }

    #[test]
    fn template_with_optional_validity_decodes() {
        use der::asn1::GeneralizedTime;
        use x509_cert::time::Time;
        let t = CertTemplate {
            validity: Some(OptionalValidity {
                not_before: None,
                not_after: Some(Time::GeneralTime(
                    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(4_000_000_000)).unwrap(),
                )),
            }),
            subject: Some(Name::default()),
            ..Default::default()
        };
        let der = t.to_der().unwrap();
        // [4] IMPLICIT OptionalValidity, then its [1] notAfter.
        assert_eq!(der.get(2), Some(&0xa4));
        assert_eq!(CertTemplate::from_der(&der).unwrap(), t);
    }
}
