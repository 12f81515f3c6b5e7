//! GetCACert responses (RFC 8894 §4.2.1): one DER certificate, or a
//! certs-only SignedData with the CA and RA certificates.

use crate::error::{Result, ScepError};
use crate::transport::{CONTENT_TYPE_CA_CERT, CONTENT_TYPE_CA_RA_CERT};
use der::{Decode, Encode};
use enrolkit_pkix::certs_only;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// Largest GetCACert body accepted.
pub const MAX_CA_BODY: usize = 256 * 1024;
/// Most certificates accepted in one GetCACert body.
pub const MAX_CA_CERTS: usize = 16;

/// The certificates of a GetCACert reply, sorted by role.
#[derive(Debug, Clone)]
pub struct CaCertificates {
    /// The issuing CA (the one that signs end-entity certificates).
    pub ca: Certificate,
    /// The RA certificate(s), if any. Requests are encrypted to
    /// [`CaCertificates::encryption_certificate`], replies are signed by
    /// one of [`CaCertificates::signers`].
    pub ra: Vec<Certificate>,
    /// Other CA certificates (intermediates, root) in the reply.
    pub chain: Vec<Certificate>,
}

fn is_ca(c: &Certificate) -> bool {
    ext::<BasicConstraints>(c, const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .map(|b| b.ca)
        .unwrap_or(false)
}

fn key_usage(c: &Certificate) -> Option<KeyUsage> {
    ext::<KeyUsage>(c, const_oid::db::rfc5280::ID_CE_KEY_USAGE)
}

fn ext<T: for<'a> Decode<'a>>(c: &Certificate, id: const_oid::ObjectIdentifier) -> Option<T> {
    let e = c
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == id)?;
    T::from_der(e.extn_value.as_bytes()).ok()
}

impl CaCertificates {
    /// Parse a GetCACert body according to its Content-Type. A missing or
    /// unknown type is sniffed from the first bytes (some servers send
    /// `application/octet-stream`).
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self> {
        if body.len() > MAX_CA_BODY {
            return Err(ScepError::TooLarge {
                what: "GetCACert body",
                limit: MAX_CA_BODY,
                actual: body.len(),
            });
        }
        enrolkit_pkix::ber::check(body, &enrolkit_pkix::ber::Limits::DEFAULT.with_max_len(MAX_CA_BODY))?;
        let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let certs = match ct.as_deref() {
            Some(CONTENT_TYPE_CA_CERT) => {
                vec![Certificate::from_der(body).map_err(|e| ScepError::malformed("CA certificate", e))?]
            }
            Some(CONTENT_TYPE_CA_RA_CERT) => certs_only::decode(body)?.certificates,
            _ => match Certificate::from_der(body) {
                Ok(c) => vec![c],
                Err(_) => certs_only::decode(body)?.certificates,
            },
        };
        Self::classify(certs)
    }

    /// Sort certificates into CA, RA and chain. The RA is a non-CA
    /// certificate issued by the CA; the CA is the CA certificate that
    /// issued the RA (or, without RA, the CA no other certificate issued).
    pub fn classify(certs: Vec<Certificate>) -> Result<Self> {
        if certs.is_empty() {
            return Err(ScepError::Invalid {
                what: "GetCACert body",
                reason: "no certificate".into(),
            });
        }
        if certs.len() > MAX_CA_CERTS {
            return Err(ScepError::TooLarge {
                what: "GetCACert certificate count",
                limit: MAX_CA_CERTS,
                actual: certs.len(),
            });
        }
        let (cas, ras): (Vec<_>, Vec<_>) = certs.into_iter().partition(is_ca);
        if cas.is_empty() {
            // A lone non-CA certificate: a misconfigured server; accept it as the CA (micromdm-like depots always mark CA).
            let mut it = ras.into_iter();
            let ca = it.next().ok_or_else(|| ScepError::Invalid {
                what: "GetCACert body",
                reason: "no certificate".into(),
            })?;
            return Ok(CaCertificates {
                ca,
                ra: it.collect(),
                chain: Vec::new(),
            });
        }
        // The issuing CA: issuer of the RA if there is one, else the CA that issued no other CA in the set.
        let issuing_name = ras.first().map(|r| r.tbs_certificate.issuer.clone());
        let idx = match &issuing_name {
            Some(n) => cas.iter().position(|c| c.tbs_certificate.subject == *n),
            None => cas.iter().position(|c| {
                !cas.iter().any(|o| {
                    o != c
                        && o.tbs_certificate.issuer == c.tbs_certificate.subject
                        && o.tbs_certificate.subject != c.tbs_certificate.subject
                })
            }),
        }
        .unwrap_or(0);
        let mut chain = cas;
        let ca = chain.remove(idx.min(chain.len().saturating_sub(1)));
        Ok(CaCertificates { ca, ra: ras, chain })
    }

    /// The certificate to encrypt requests to: an RA certificate allowing
    /// keyEncipherment (or without keyUsage), else the CA.
    pub fn encryption_certificate(&self) -> &Certificate {
        self.ra
            .iter()
            .find(|c| {
                key_usage(c)
                    .map(|k| k.0.contains(KeyUsages::KeyEncipherment))
                    .unwrap_or(true)
            })
            .unwrap_or(&self.ca)
    }

    /// Certificates whose signature on a CertRep is acceptable: the RA(s)
    /// allowing digitalSignature, and the CA.
    pub fn signers(&self) -> Vec<Certificate> {
        let mut v: Vec<Certificate> = self
            .ra
            .iter()
            .filter(|c| {
                key_usage(c)
                    .map(|k| k.0.contains(KeyUsages::DigitalSignature))
                    .unwrap_or(true)
            })
            .cloned()
            .collect();
        v.push(self.ca.clone());
        v
    }

    /// Build the reply body and its Content-Type: the CA alone as DER when
    /// there is no RA and no chain, else certs-only with, in this order
    /// (the end-entity first, as [`certs_only`] states), the RA(s), the CA
    /// and the CA's own issuers. [`CaCertificates::parse`] reads any order.
    pub fn to_response(&self) -> Result<(&'static str, Vec<u8>)> {
        if self.ra.is_empty() && self.chain.is_empty() {
            return Ok((CONTENT_TYPE_CA_CERT, self.ca.to_der()?));
        }
        let mut all = self.ra.clone();
        all.push(self.ca.clone());
        all.extend(self.chain.iter().cloned());
        Ok((CONTENT_TYPE_CA_RA_CERT, certs_only::encode(&all, &[])?))
    }
}
