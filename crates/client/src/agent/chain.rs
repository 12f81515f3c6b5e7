//! Certificate checks the agent makes on a clock it is handed (steps 2, 4
//! and 11): pinned trust anchors, each CA certificate against its superior,
//! and a new chain before it replaces anything.
//!
//! These are deliberately small: signatures, names, validity at `now`, and
//! the CA flag of every issuer. The TLS layer does full RFC 5280 path
//! validation for connections; this is what decides what the device keeps.

use der::{Decode, Encode};
use enrolkit_keys::SignatureAlgorithm;
use std::time::SystemTime;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

/// Why a certificate set was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No offered certificate has a pinned fingerprint.
    #[error("no CA certificate matches the pinned trust anchor fingerprint(s); offered: {}", offered.join(", "))]
    AnchorMismatch {
        /// SHA-256 fingerprints offered.
        offered: Vec<String>,
    },
    /// A CA certificate does not chain to the pinned anchor.
    #[error("CA certificate {subject:?} is not signed by the pinned anchor or a CA below it")]
    Unchained {
        /// Its subject.
        subject: String,
    },
    /// Outside its validity period at the time of the check.
    #[error("certificate {subject:?} is not valid now (valid {not_before} to {not_after})")]
    NotValidNow {
        /// Its subject.
        subject: String,
        /// notBefore.
        not_before: String,
        /// notAfter.
        not_after: String,
    },
    /// An end-entity certificate offered beside the CA certificates is not
    /// marked as a registration authority and not pinned.
    #[error("certificate {subject:?} is offered as the SCEP RA but has no RA extended key usage (id-kp-cmcRA, or Microsoft's Certificate Request Agent) and is not pinned")]
    NotAnRa {
        /// Its subject.
        subject: String,
    },
    /// The issued chain is not for our key, or does not reach the anchor.
    #[error("the new certificate chain is not acceptable: {0}")]
    BadChain(String),
}

/// SHA-256 fingerprint (lowercase hex) of a certificate.
pub fn fingerprint(cert: &Certificate) -> String {
    cert.to_der().map(|d| crate::est::fingerprint(&d)).unwrap_or_default()
}

/// Subject as a string, for messages.
pub fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// Whether `cert` carries a signature by `issuer`'s key and names it as issuer.
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let Some(alg) = SignatureAlgorithm::from_oids(&cert.signature_algorithm.oid, None) else {
        return false;
    };
    let (Ok(spki), Ok(tbs)) = (
        issuer.tbs_certificate.subject_public_key_info.to_der(),
        cert.tbs_certificate.to_der(),
    ) else {
        return false;
    };
    let Ok(spki) = spki::SubjectPublicKeyInfoRef::from_der(&spki) else {
        return false;
    };
    cert.signature
        .as_bytes()
        .is_some_and(|sig| enrolkit_keys::verify(&spki, alg, &tbs, sig).is_ok())
}

/// Whether the certificate is a CA (basicConstraints cA).
pub fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca)
}

/// id-kp-cmcRA (RFC 6402 §2.10), which `mef`'s RA certificates carry.
pub const ID_KP_CMC_RA: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

/// Microsoft's "Certificate Request Agent" EKU, which NDES RA certificates carry.
const MS_CERT_REQUEST_AGENT: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.1");

/// Whether the certificate's extended key usage names a registration
/// authority: id-kp-cmcRA (RFC 6402) or Microsoft's Certificate Request Agent.
pub fn is_marked_ra(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .and_then(|e| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|eku| eku.0.iter().any(|o| *o == ID_KP_CMC_RA || *o == MS_CERT_REQUEST_AGENT))
}

/// notBefore and notAfter.
pub fn validity(cert: &Certificate) -> (SystemTime, SystemTime) {
    let v = &cert.tbs_certificate.validity;
    (v.not_before.to_system_time(), v.not_after.to_system_time())
}

/// Clock difference tolerated on a new certificate's notBefore (a CA whose clock runs ahead).
pub const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether `cert`'s notAfter has passed at `now`.
fn expired_at(cert: &Certificate, now: SystemTime) -> bool {
    now > validity(cert).1
}

fn valid_at(cert: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    let (nb, na) = validity(cert);
    if now + CLOCK_SKEW < nb || now > na {
        let v = &cert.tbs_certificate.validity;
        return Err(ChainError::NotValidNow {
            subject: subject(cert),
            not_before: v.not_before.to_string(),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

/// A validated trust anchor with the CA certificates that chain to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchors {
    /// The pinned certificate.
    pub anchor: Certificate,
    /// Every other offered certificate, each checked against its superior
    /// (intermediates, and a SCEP RA certificate), superiors first.
    pub below: Vec<Certificate>,
    /// Offered certificates that had expired and were left out (an old CA
    /// certificate a server still sends after a rollover): not trusted,
    /// not used, no reason to stop.
    pub ignored: Vec<Certificate>,
}

impl Anchors {
    /// Steps 1–4: find the pinned anchor among `offered` (preferring one
    /// valid at `now`, then a self-signed root), then accept every other
    /// certificate only when it is signed by the anchor or by a CA already
    /// accepted, and valid at `now`; an end-entity certificate (a SCEP RA)
    /// must also carry an RA extended key usage or be pinned itself.
    /// An expired certificate other than the anchor is left out (in
    /// [`Anchors::ignored`]) when it does not chain to the anchor (junk a
    /// server still sends: an old root, an expired cross-certificate), or
    /// when it does but another offered certificate with its subject is
    /// valid now (a CA certificate superseded at a rollover). An expired
    /// certificate on the path to the anchor with nothing to replace it is
    /// [`ChainError::NotValidNow`], which the machine retries.
    pub fn validate(offered: &[Certificate], pins: &[String], now: SystemTime) -> Result<Anchors, ChainError> {
        let pinned = |c: &&Certificate| pins.contains(&fingerprint(c));
        let current = |c: &&Certificate| valid_at(c, now).is_ok();
        let anchor = offered
            .iter()
            .filter(pinned)
            .filter(current)
            .find(|c| signed_by(c, c))
            .or_else(|| offered.iter().filter(pinned).find(current))
            .or_else(|| offered.iter().filter(pinned).find(|c| signed_by(c, c)))
            .or_else(|| offered.iter().find(pinned))
            .cloned()
            .ok_or_else(|| ChainError::AnchorMismatch {
                offered: offered.iter().map(fingerprint).collect(),
            })?;
        valid_at(&anchor, now)?;
        let mut below: Vec<Certificate> = Vec::new();
        let mut ignored: Vec<Certificate> = Vec::new();
        let superseded = |c: &Certificate| {
            offered
                .iter()
                .any(|o| o != c && o.tbs_certificate.subject == c.tbs_certificate.subject && valid_at(o, now).is_ok())
        };
        let mut rest: Vec<&Certificate> = offered.iter().filter(|c| **c != anchor).collect();
        // Accept in rounds so the order the server sent them in does not matter.
        while !rest.is_empty() {
            let before = rest.len();
            let mut left = Vec::new();
            for c in rest {
                let superior = std::iter::once(&anchor)
                    .chain(below.iter().filter(|b| is_ca(b)))
                    .find(|i| signed_by(c, i));
                match superior {
                    Some(_) if expired_at(c, now) && superseded(c) => ignored.push(c.clone()),
                    Some(_) => {
                        valid_at(c, now)?;
                        // Any device of this CA has a certificate it signed:
                        // only one marked (or pinned) as the RA may receive
                        // our requests and answer for the CA.
                        if !is_ca(c) && !is_marked_ra(c) && !pins.contains(&fingerprint(c)) {
                            return Err(ChainError::NotAnRa { subject: subject(c) });
                        }
                        below.push(c.clone());
                    }
                    None => left.push(c),
                }
            }
            if left.len() == before {
                let (expired, unchained): (Vec<&Certificate>, Vec<&Certificate>) =
                    left.into_iter().partition(|c| expired_at(c, now));
                if let Some(c) = unchained.first() {
                    return Err(ChainError::Unchained { subject: subject(c) });
                }
                ignored.extend(expired.into_iter().cloned());
                break;
            }
            rest = left;
        }
        Ok(Anchors { anchor, below, ignored })
    }

    /// Step 11: order `issued` (the end-entity certificate first, then any
    /// intermediates the server sent) into the chain to keep, checking that
    /// the leaf certifies `public_key`, every link is signed by a CA
    /// certificate above it, the top is the anchor, and all are valid at `now`.
    /// Returns the leaf and the intermediates up to (not including) the anchor.
    pub fn chain_for(
        &self,
        leaf: &Certificate,
        extra: &[Certificate],
        public_key: &spki::SubjectPublicKeyInfoOwned,
        now: SystemTime,
    ) -> Result<Vec<Certificate>, ChainError> {
        if &leaf.tbs_certificate.subject_public_key_info != public_key {
            return Err(ChainError::BadChain("the certificate is not for our key".into()));
        }
        if is_ca(leaf) {
            return Err(ChainError::BadChain("the certificate is a CA certificate".into()));
        }
        valid_at(leaf, now).map_err(|e| ChainError::BadChain(e.to_string()))?;
        let pool: Vec<&Certificate> = self.below.iter().chain(extra.iter()).filter(|c| is_ca(c)).collect();
        let mut chain = vec![leaf.clone()];
        let mut current = leaf.clone();
        for _ in 0..8 {
            if signed_by(&current, &self.anchor) {
                return Ok(chain);
            }
            let mut issuers = pool.iter().filter(|c| signed_by(&current, c) && **c != &current);
            let Some(first) = issuers.next() else {
                return Err(ChainError::BadChain(format!(
                    "{:?} is not signed by the anchor or a known CA",
                    subject(&current)
                )));
            };
            // A CA re-certified with the same key has two certificates that
            // verify: the one valid now, if any.
            let next = std::iter::once(first)
                .chain(issuers)
                .find(|c| valid_at(c, now).is_ok())
                .unwrap_or(first);
            valid_at(next, now).map_err(|e| ChainError::BadChain(e.to_string()))?;
            chain.push((*next).clone());
            current = (*next).clone();
        }
        Err(ChainError::BadChain("chain longer than 8 certificates".into()))
    }
}
