//! Certificate confirmation: CertConfirmContent and CertStatus (RFC 4210
//! §5.3.18, with RFC 9480 §2.10's hashAlg).
//!
//! ```text
//! CertConfirmContent ::= SEQUENCE OF CertStatus
//!
//! CertStatus ::= SEQUENCE {
//!     certHash    OCTET STRING,
//!     certReqId   INTEGER,
//!     statusInfo  PKIStatusInfo OPTIONAL,
//!     hashAlg [0] AlgorithmIdentifier{DIGEST-ALGORITHM, {...}} OPTIONAL }
//! ```
//!
//! certHash is "the hash of the certificate, using the same hash algorithm
//! as is used to create and verify the certificate signature" unless
//! hashAlg (pvno cmp2021) names another. Our own type: `cmpv2` 0.2.0 has no
//! hashAlg.

use crate::request::{i64_to_int, int_to_i64};
use crate::status::PkiStatusInfo;
use crate::{oid, CmpError, Result};
use der::asn1::{Int, OctetString};
use der::{Encode, Sequence};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

/// CertStatus (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertStatus {
    /// certHash.
    pub cert_hash: OctetString,
    /// certReqId.
    pub cert_req_id: Int,
    /// statusInfo: absent means accepted.
    pub status_info: Option<PkiStatusInfo>,
    /// hashAlg (pvno 3 only).
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub hash_alg: Option<AlgorithmIdentifierOwned>,
}

/// CertConfirmContent.
pub type CertConfirmContent = Vec<CertStatus>;

/// A hash algorithm certHash can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertHash {
    /// SHA-1 (certificates signed with SHA-1).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl CertHash {
    /// The hash of a certificate's signature algorithm (RFC 4210 §5.3.18).
    pub fn for_certificate(cert: &Certificate) -> Result<Self> {
        use enrolkit_keys::{oid as k, x509_oid as x};
        Ok(match cert.signature_algorithm.oid {
            k::SHA1_WITH_RSA => CertHash::Sha1,
            k::SHA256_WITH_RSA | k::ECDSA_WITH_SHA256 => CertHash::Sha256,
            x::SHA384_WITH_RSA | x::ECDSA_WITH_SHA384 => CertHash::Sha384,
            k::SHA512_WITH_RSA => CertHash::Sha512,
            o => {
                return Err(CmpError::UnsupportedAlgorithm {
                    kind: "hash",
                    oid: format!("for certificates signed with {o}"),
                })
            }
        })
    }
    /// From a hashAlg OID.
    pub fn from_oid(o: &const_oid::ObjectIdentifier) -> Option<Self> {
        Some(match *o {
            oid::SHA1 => CertHash::Sha1,
            oid::SHA256 => CertHash::Sha256,
            oid::SHA384 => CertHash::Sha384,
            oid::SHA512 => CertHash::Sha512,
            _ => return None,
        })
    }
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            CertHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            CertHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            CertHash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            CertHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// The certHash of `cert` (with its signature's hash).
pub fn cert_hash(cert: &Certificate) -> Result<Vec<u8>> {
    Ok(CertHash::for_certificate(cert)?.digest(&cert.to_der()?))
}

impl CertStatus {
    /// Accept (statusInfo absent) or reject `cert`.
    pub fn new(cert_req_id: i64, cert: &Certificate, status: Option<PkiStatusInfo>) -> Result<Self> {
        Ok(CertStatus {
            cert_hash: OctetString::new(cert_hash(cert)?)?,
            cert_req_id: i64_to_int(cert_req_id)?,
            status_info: status,
            hash_alg: None,
        })
    }

    /// certReqId as i64.
    pub fn id(&self) -> Result<i64> {
        int_to_i64(&self.cert_req_id)
    }

    /// Whether the requester accepts the certificate (statusInfo absent or granted).
    pub fn accepted(&self) -> bool {
        self.status_info.as_ref().is_none_or(|s| s.is_granted())
    }

    /// Whether certHash is the hash of `cert` (with hashAlg if present,
    /// else the certificate's signature hash), compared in constant time.
    pub fn matches(&self, cert: &Certificate) -> Result<bool> {
        let alg = match &self.hash_alg {
            Some(a) => CertHash::from_oid(&a.oid).ok_or_else(|| CmpError::UnsupportedAlgorithm {
                kind: "hash",
                oid: a.oid.to_string(),
            })?,
            None => CertHash::for_certificate(cert)?,
        };
        let want = alg.digest(&cert.to_der()?);
        Ok(bool::from(subtle::ConstantTimeEq::ct_eq(
            self.cert_hash.as_bytes(),
            &want[..],
        )))
    }
}
