//! Revocation: RevReqContent, RevDetails and RevRepContent (RFC 4210
//! §5.3.9, §5.3.10).
//!
//! ```text
//! RevReqContent ::= SEQUENCE OF RevDetails
//!
//! RevDetails ::= SEQUENCE {
//!     certDetails         CertTemplate,
//!     crlEntryDetails     Extensions{{...}}    OPTIONAL }
//!
//! RevRepContent ::= SEQUENCE {
//!     status       SEQUENCE SIZE (1..MAX) OF PKIStatusInfo,
//!     revCerts [0] SEQUENCE SIZE (1..MAX) OF CertId OPTIONAL,
//!     crls     [1] SEQUENCE SIZE (1..MAX) OF CertificateList OPTIONAL }
//! ```
//!
//! Our own types, over our [`CertTemplate`] and [`PkiStatusInfo`]. RFC
//! 9483 §4.2: certDetails holds the issuer and serialNumber of the
//! certificate to revoke; crlEntryDetails the reasonCode.

use crate::request::{CertId, CertTemplate};
use crate::status::PkiStatusInfo;
use crate::{oid, CmpError, Result};
use der::asn1::OctetString;
use der::{Decode, Encode, Enumerated, Sequence};
use x509_cert::crl::CertificateList;
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

/// RevDetails (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevDetails {
    /// certDetails.
    pub cert_details: CertTemplate,
    /// crlEntryDetails.
    pub crl_entry_details: Option<Extensions>,
}

/// RevRepContent (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevRepContent {
    /// status, one per RevDetails.
    pub status: Vec<PkiStatusInfo>,
    /// revCerts.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub rev_certs: Option<Vec<CertId>>,
    /// crls.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub crls: Option<Vec<CertificateList>>,
}

/// CRLReason (RFC 5280 §5.3.1), ENUMERATED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum CrlReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl RevDetails {
    /// Ask to revoke `cert` (issuer and serial, RFC 9483 §4.2), with a reason.
    pub fn for_certificate(cert: &Certificate, reason: Option<CrlReason>) -> Result<Self> {
        let crl_entry_details = match reason {
            None => None,
            Some(r) => Some(vec![Extension {
                extn_id: oid::CE_CRL_REASONS,
                critical: false,
                extn_value: OctetString::new(r.to_der()?)?,
            }]),
        };
        Ok(RevDetails {
            cert_details: CertTemplate {
                issuer: Some(cert.tbs_certificate.issuer.clone()),
                serial_number: Some(cert.tbs_certificate.serial_number.clone()),
                ..Default::default()
            },
            crl_entry_details,
        })
    }

    /// The certificate named: issuer and serialNumber, both required.
    pub fn target(&self) -> Result<(&Name, &SerialNumber)> {
        match (&self.cert_details.issuer, &self.cert_details.serial_number) {
            (Some(i), Some(s)) => Ok((i, s)),
            _ => Err(CmpError::BadCertTemplate(
                "rr certDetails needs issuer and serialNumber",
            )),
        }
    }

    /// The reasonCode in crlEntryDetails, if any.
    pub fn reason(&self) -> Result<Option<CrlReason>> {
        let Some(ext) = self
            .crl_entry_details
            .as_ref()
            .and_then(|e| e.iter().find(|x| x.extn_id == oid::CE_CRL_REASONS))
        else {
            return Ok(None);
        };
        CrlReason::from_der(ext.extn_value.as_bytes())
            .map(Some)
            .map_err(|e| CmpError::malformed("reasonCode", e))
    }
}
