//! Certificate responses: CertRepMessage and CertResponse (RFC 4210
//! §5.3.4), as ip, cp and kup carry them.
//!
//! ```text
//! CertRepMessage ::= SEQUENCE {
//!     caPubs       [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL,
//!     response         SEQUENCE OF CertResponse }
//!
//! CertResponse ::= SEQUENCE {
//!     certReqId           INTEGER,
//!     status              PKIStatusInfo,
//!     certifiedKeyPair    CertifiedKeyPair    OPTIONAL,
//!     rspInfo             OCTET STRING        OPTIONAL }
//!
//! CertifiedKeyPair ::= SEQUENCE {
//!     certOrEncCert       CertOrEncCert,
//!     privateKey      [0] EncryptedValue      OPTIONAL,
//!     publicationInfo [1] PKIPublicationInfo  OPTIONAL }
//!
//! CertOrEncCert ::= CHOICE {
//!     certificate     [0] CMPCertificate,
//!     encryptedCert   [1] EncryptedValue }
//! ```
//!
//! `CertifiedKeyPair` is `cmpv2`'s; the two above are ours because they
//! hold our [`PkiStatusInfo`] (see [`crate::status`]). Encrypted
//! certificates (indirect POP, RFC 4210 §5.2.8.2) are not produced; one
//! received is reported by [`CertResponse::certificate`] as unsupported.

use crate::request::{i64_to_int, int_to_i64};
use crate::status::PkiStatusInfo;
use crate::{CmpError, Result};
use der::asn1::{Int, OctetString};
use der::Sequence;
use x509_cert::Certificate;

pub use cmpv2::certified_key_pair::{CertOrEncCert, CertifiedKeyPair};

/// CertRepMessage (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertRepMessage {
    /// caPubs: CA certificates the requester may trust (RFC 9483 §4.1.1: the root of a new chain).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub ca_pubs: Option<Vec<Certificate>>,
    /// response.
    pub response: Vec<CertResponse>,
}

/// CertResponse (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertResponse {
    /// certReqId (-1 answers a p10cr, RFC 4210 §5.3.4).
    pub cert_req_id: Int,
    /// status.
    pub status: PkiStatusInfo,
    /// certifiedKeyPair.
    pub certified_key_pair: Option<CertifiedKeyPair>,
    /// rspInfo.
    pub rsp_info: Option<OctetString>,
}

impl CertResponse {
    /// A granted response carrying `cert`.
    pub fn granted(cert_req_id: i64, cert: Certificate) -> Result<Self> {
        Ok(CertResponse {
            cert_req_id: i64_to_int(cert_req_id)?,
            status: PkiStatusInfo::accepted(),
            certified_key_pair: Some(CertifiedKeyPair {
                cert_or_enc_cert: CertOrEncCert::Certificate(Box::new(cert)),
                priv_key: None,
                publication_info: None,
            }),
            rsp_info: None,
        })
    }

    /// A response without certificate (waiting or rejection).
    pub fn status_only(cert_req_id: i64, status: PkiStatusInfo) -> Result<Self> {
        Ok(CertResponse {
            cert_req_id: i64_to_int(cert_req_id)?,
            status,
            certified_key_pair: None,
            rsp_info: None,
        })
    }

    /// certReqId as i64.
    pub fn id(&self) -> Result<i64> {
        int_to_i64(&self.cert_req_id)
    }

    /// The plain certificate, if one is carried.
    pub fn certificate(&self) -> Result<Option<&Certificate>> {
        match &self.certified_key_pair {
            None => Ok(None),
            Some(CertifiedKeyPair {
                cert_or_enc_cert: CertOrEncCert::Certificate(c),
                ..
            }) => Ok(Some(c)),
            Some(_) => Err(CmpError::UnsupportedBody("encryptedCert (indirect POP)".into())),
        }
    }
}
