//! Certificate checks the agent makes on a clock it is handed (steps 2, 4
//! and 11): pinned trust anchors, each CA certificate against its superior,
//! and a new chain before it replaces anything.
//!
//! The checks themselves are `enrolkit-pkix`'s one chain validator (the
//! same the library's trust core uses); what stays here is the agent's
//! reading of a served set: which certificate is the anchor, what an
//! expired extra certificate means (ignored, or a retry), and which
//! certificate may be the RA.

use crate::trust::CLOCK_SKEW;
use enrolkit_pkix::{Options, PathError, Purpose, Validator};
use std::time::SystemTime;
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
    /// A certificate signed by the anchor (or a CA below it) fails another
    /// check of the chain validator (CA flag, keyUsage, pathLen, critical
    /// extensions).
    #[error("{0}")]
    Invalid(PathError),
}

/// Subject as a string, for messages.
pub fn subject(cert: &Certificate) -> String {
    enrolkit_pkix::subject(cert)
}

/// Whether `cert` carries a signature by `issuer`'s key and names it as issuer.
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    enrolkit_pkix::signature::signed_by(cert, issuer)
}

/// Whether the certificate is a CA (basicConstraints cA).
pub fn is_ca(cert: &Certificate) -> bool {
    enrolkit_pkix::extensions::is_ca(cert)
}

/// id-kp-cmcRA (RFC 6402 §2.10), which `mef`'s RA certificates carry.
pub const ID_KP_CMC_RA: const_oid::ObjectIdentifier = enrolkit_pkix::purpose::ID_KP_CMC_RA;

/// Whether the certificate's extended key usage names a registration
/// authority: id-kp-cmcRA (RFC 6402) or Microsoft's Certificate Request Agent.
pub fn is_marked_ra(cert: &Certificate) -> bool {
    Purpose::ScepRa.allows(enrolkit_pkix::extensions::ext_key_usage(cert).as_ref())
}

/// The validator's options for the agent: any purpose, [`CLOCK_SKEW`], and
/// SHA-1 signatures accepted as they always were here (a device keeps
/// working with the CA it was given).
fn options() -> Options {
    Options::new(Purpose::Any).with_clock_skew(CLOCK_SKEW).with_sha1(true)
}

/// notBefore and notAfter.
pub fn validity(cert: &Certificate) -> (SystemTime, SystemTime) {
    let v = &cert.tbs_certificate.validity;
    (v.not_before.to_system_time(), v.not_after.to_system_time())
}

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
        let pinned = |c: &&Certificate| pins.contains(&enrolkit_pkix::fingerprint::sha256(c));
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
                offered: offered.iter().map(enrolkit_pkix::fingerprint::sha256).collect(),
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
                        // The rest of RFC 5280's checks on the path (CA
                        // flags, keyUsage, pathLen, critical extensions).
                        let anchors = enrolkit_pkix::Anchors::new(vec![anchor.clone()]).map_err(ChainError::Invalid)?;
                        let cas: Vec<Certificate> = below.iter().filter(|b| is_ca(b)).cloned().collect();
                        Validator::new(&anchors, &cas, options())
                            .validate(c, now)
                            .map_err(ChainError::Invalid)?;
                        // Any device of this CA has a certificate it signed:
                        // only one marked (or pinned) as the RA may receive
                        // our requests and answer for the CA.
                        if !is_ca(c) && !is_marked_ra(c) && !pins.contains(&enrolkit_pkix::fingerprint::sha256(c)) {
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
        let anchors =
            enrolkit_pkix::Anchors::new(vec![self.anchor.clone()]).map_err(|e| ChainError::BadChain(e.to_string()))?;
        // A CA re-certified with the same key has two certificates that
        // verify: the validator tries each and keeps the one valid now.
        let pool: Vec<Certificate> = self
            .below
            .iter()
            .chain(extra.iter())
            .filter(|c| is_ca(c))
            .take(enrolkit_pkix::chain::MAX_INTERMEDIATES)
            .cloned()
            .collect();
        let mut path = Validator::new(&anchors, &pool, options())
            .validate(leaf, now)
            .map_err(|e| {
                ChainError::BadChain(match &e {
                    PathError::NoIssuer { subject, .. }
                    | PathError::BadSignature { subject, .. }
                    | PathError::NameMismatch { subject, .. } => {
                        format!("{subject:?} is not signed by the anchor or a known CA ({e})")
                    }
                    _ => e.to_string(),
                })
            })?
            .into_certificates();
        // The anchor is not part of the chain kept.
        path.pop();
        Ok(path)
    }
}
