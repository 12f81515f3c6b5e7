//! The one chain validator: from a target certificate through offered
//! intermediates to a pinned trust anchor, at a time the caller hands in.
//!
//! It implements the parts of RFC 5280 §6.1 that enrolkit's trust
//! decisions rest on, for pinned anchors:
//!
//! | check | RFC 5280 |
//! |---|---|
//! | a trust anchor is trusted as itself (exact DER), root or intermediate; its own issuer is never looked at | §6.1.1 (d) |
//! | every link: signature by the issuer's key, accepted algorithm, signatureAlgorithm = tbsCertificate.signature | §6.1.3 (a)(1), §4.1.1.2 |
//! | every link: the issuer's subject is the certificate's issuer name (exact match) | §6.1.3 (a)(4) |
//! | every certificate, the anchor included, valid at the given time | §6.1.3 (a)(2) |
//! | every issuer, the anchor included: basicConstraints cA | §6.1.4 (k) |
//! | every issuer: pathLenConstraint counts the non-self-issued CA certificates below it | §6.1.4 (l), (m) |
//! | every issuer: keyUsage, when present, has keyCertSign | §6.1.4 (n) |
//! | every certificate: no critical extension that is not understood | §4.2, §6.1.4 (o) |
//! | the target: extKeyUsage allows the [`Purpose`] | §4.2.1.12 |
//! | a revocation hook, called per certificate of the validated path | §6.1.3 (a)(3) |
//!
//! Not implemented (and refused when critical): name constraints, policy
//! processing. Anchors are applied the constraints of their own
//! certificate (cA, keyUsage, pathLen) as an issuer, which RFC 5937
//! allows and which every CA we talk to satisfies.
//!
//! Path building tries every candidate issuer (a CA re-certified with the
//! same name has several), depth first, with bounded input counts, a
//! bounded path length and a bounded number of signature checks; when no
//! path works it reports the failure of the attempt that got furthest.

mod error;
#[cfg(test)]
mod tests;

pub use error::PathError;

use crate::extensions::Decoded;
use crate::purpose::Purpose;
use crate::{fingerprint, signature, subject};
use std::cell::Cell;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// Longest path accepted by default (target and anchor included).
pub const MAX_PATH: usize = 8;
/// Most intermediates looked at.
pub const MAX_INTERMEDIATES: usize = 32;
/// Most anchors accepted.
pub const MAX_ANCHORS: usize = 32;
/// Most signature checks one validation may make.
pub const MAX_SIGNATURE_CHECKS: usize = 256;

/// How a path is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// What the target must be allowed to do.
    pub purpose: Purpose,
    /// Accept SHA-1 signatures (legacy peers only).
    pub allow_sha1: bool,
    /// Longest path (target and anchor included).
    pub max_path: usize,
    /// How far ahead a notBefore may be and still count as valid (a CA
    /// whose clock runs ahead of ours); zero by default.
    pub clock_skew: Duration,
}

impl Options {
    /// Defaults for `purpose`: no SHA-1, [`MAX_PATH`], no clock skew.
    pub fn new(purpose: Purpose) -> Self {
        Options {
            purpose,
            allow_sha1: false,
            max_path: MAX_PATH,
            clock_skew: Duration::ZERO,
        }
    }

    /// The same options with a tolerated clock skew on notBefore.
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// The same options accepting SHA-1 signatures (`yes`) or not.
    pub fn with_sha1(mut self, yes: bool) -> Self {
        self.allow_sha1 = yes;
        self
    }
}

/// Pinned trust anchors: certificates trusted as themselves, by their
/// exact DER (root or intermediate, self-signed or not).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Anchors {
    certs: Vec<Certificate>,
    fingerprints: Vec<String>,
}

impl Anchors {
    /// These certificates as anchors (at most [`MAX_ANCHORS`]).
    pub fn new(certs: Vec<Certificate>) -> Result<Self, PathError> {
        if certs.len() > MAX_ANCHORS {
            return Err(PathError::TooManyCertificates {
                what: "trust anchors",
                limit: MAX_ANCHORS,
                actual: certs.len(),
            });
        }
        let fingerprints = certs.iter().map(fingerprint::sha256).collect();
        Ok(Anchors { certs, fingerprints })
    }

    /// The certificates among `offered` whose SHA-256 fingerprint is one of
    /// `pins` (normalised lowercase hex): what an out-of-band pin admits
    /// from what a server sent. Empty when none matches.
    pub fn pinned(offered: &[Certificate], pins: &[String]) -> Self {
        let mut out = Anchors::default();
        for c in offered.iter().take(MAX_ANCHORS) {
            let fp = fingerprint::sha256(c);
            if pins.contains(&fp) && !out.fingerprints.contains(&fp) {
                out.certs.push(c.clone());
                out.fingerprints.push(fp);
            }
        }
        out
    }

    /// Whether `cert` is one of the anchors (by fingerprint).
    pub fn contains(&self, cert: &Certificate) -> bool {
        self.fingerprints.contains(&fingerprint::sha256(cert))
    }

    /// The anchor certificates.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// Their fingerprints, in the same order.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// No anchor at all.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// The revocation hook: asked about every certificate of a path that
/// passed every other check, except the anchor, with its issuer. An
/// `Err` refuses the path with [`PathError::Revoked`] and the reason.
pub trait RevocationCheck {
    /// `Ok` when `cert` (issued by `issuer`) is not known to be revoked.
    fn check(&self, cert: &Certificate, issuer: &Certificate) -> Result<(), String>;
}

/// No revocation checking (the caller checks elsewhere, or cannot).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocation;

impl RevocationCheck for NoRevocation {
    fn check(&self, _: &Certificate, _: &Certificate) -> Result<(), String> {
        Ok(())
    }
}

impl<F: Fn(&Certificate, &Certificate) -> Result<(), String>> RevocationCheck for F {
    fn check(&self, cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
        self(cert, issuer)
    }
}

/// A path that passed: the target first, the anchor last.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPath {
    certs: Vec<Certificate>,
}

impl ValidatedPath {
    /// Every certificate, target first, anchor last (one certificate when
    /// the target is itself an anchor).
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// The certificates between the target and the anchor.
    pub fn intermediates(&self) -> &[Certificate] {
        let n = self.certs.len();
        self.certs.get(1..n.saturating_sub(1)).unwrap_or(&[])
    }

    /// The anchor the path ends at.
    pub fn anchor(&self) -> Option<&Certificate> {
        self.certs.last()
    }

    /// The certificate that issued the target (None when the target is an anchor).
    pub fn issuer(&self) -> Option<&Certificate> {
        self.certs.get(1)
    }

    /// The certificates, target first.
    pub fn into_certificates(self) -> Vec<Certificate> {
        self.certs
    }
}

/// The validator: anchors, the intermediates offered with the target, and
/// the options; [`Validator::validate`] checks one target at a time.
pub struct Validator<'a> {
    anchors: &'a Anchors,
    intermediates: &'a [Certificate],
    options: Options,
    revocation: &'a dyn RevocationCheck,
}

impl std::fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("anchors", &self.anchors.fingerprints)
            .field("intermediates", &self.intermediates.len())
            .field("options", &self.options)
            .finish()
    }
}

/// The best failure so far: the one from the attempt that got furthest.
struct Failure {
    depth: usize,
    error: Option<PathError>,
}

impl Failure {
    fn note(&mut self, depth: usize, e: PathError) {
        if self.error.is_none() || depth > self.depth {
            self.depth = depth;
            self.error = Some(e);
        }
    }
}

impl<'a> Validator<'a> {
    /// A validator of paths to `anchors` through any of `intermediates`
    /// (in any order; extra ones are ignored), with no revocation checking.
    pub fn new(anchors: &'a Anchors, intermediates: &'a [Certificate], options: Options) -> Self {
        Validator {
            anchors,
            intermediates,
            options,
            revocation: &NoRevocation,
        }
    }

    /// The same validator calling `hook` for every certificate of a path.
    pub fn with_revocation(mut self, hook: &'a dyn RevocationCheck) -> Self {
        self.revocation = hook;
        self
    }

    /// Validate `target` at time `at`: the path from it to an anchor.
    pub fn validate(&self, target: &Certificate, at: SystemTime) -> Result<ValidatedPath, PathError> {
        if self.intermediates.len() > MAX_INTERMEDIATES {
            return Err(PathError::TooManyCertificates {
                what: "intermediate certificates",
                limit: MAX_INTERMEDIATES,
                actual: self.intermediates.len(),
            });
        }
        if self.anchors.contains(target) {
            self.valid_at(target, at)?;
            return Ok(ValidatedPath {
                certs: vec![target.clone()],
            });
        }
        let decoded = Decoded::of(target)?;
        self.valid_at(target, at)?;
        if !self.options.purpose.allows(decoded.ext_key_usage.as_ref()) {
            return Err(PathError::WrongPurpose {
                subject: subject(target),
                purpose: self.options.purpose,
            });
        }
        let budget = Cell::new(MAX_SIGNATURE_CHECKS);
        let mut failure = Failure { depth: 0, error: None };
        let mut path = vec![target];
        if self.build(&mut path, at, &budget, &mut failure) {
            for pair in path.windows(2) {
                if let [cert, issuer] = pair {
                    self.revocation
                        .check(cert, issuer)
                        .map_err(|reason| PathError::Revoked {
                            subject: subject(cert),
                            reason,
                        })?;
                }
            }
            return Ok(ValidatedPath {
                certs: path.into_iter().cloned().collect(),
            });
        }
        Err(failure.error.unwrap_or(PathError::TooLong {
            limit: self.options.max_path,
        }))
    }

    /// Extend `path` (whose last certificate needs an issuer) until it
    /// ends at an anchor; true when it does (`path` is then the result).
    fn build<'p>(
        &self,
        path: &mut Vec<&'p Certificate>,
        at: SystemTime,
        budget: &Cell<usize>,
        failure: &mut Failure,
    ) -> bool
    where
        'a: 'p,
    {
        let Some(&current) = path.last() else {
            return false;
        };
        let depth = path.len();
        let issuer_name = &current.tbs_certificate.issuer;
        let candidates: Vec<(&'p Certificate, bool)> = self
            .anchors
            .certs
            .iter()
            .map(|c| (c, true))
            .chain(self.intermediates.iter().map(|c| (c, false)))
            .filter(|(c, _)| c.tbs_certificate.subject == *issuer_name)
            .filter(|(c, anchor)| *anchor || !path.contains(c))
            .collect();
        if candidates.is_empty() {
            failure.note(
                depth,
                PathError::NoIssuer {
                    subject: subject(current),
                    issuer: issuer_name.to_string(),
                },
            );
            return false;
        }
        for (candidate, is_anchor) in candidates {
            // An anchor is trusted as itself: an intermediate with an
            // anchor's DER is the anchor.
            let is_anchor = is_anchor || self.anchors.contains(candidate);
            let left = budget.get();
            if left == 0 {
                failure.note(
                    usize::MAX,
                    PathError::TooMuchWork {
                        limit: MAX_SIGNATURE_CHECKS,
                    },
                );
                return false;
            }
            budget.set(left - 1);
            if let Err(e) = signature::check_signature(current, candidate, self.options.allow_sha1)
                .and_then(|()| self.issuer_checks(candidate, path, at))
            {
                failure.note(depth, e);
                continue;
            }
            path.push(candidate);
            if is_anchor {
                return true;
            }
            if path.len() >= self.options.max_path {
                failure.note(
                    depth + 1,
                    PathError::TooLong {
                        limit: self.options.max_path,
                    },
                );
            } else if self.build(path, at, budget, failure) {
                return true;
            }
            path.pop();
        }
        false
    }

    /// What `issuer` must be to sign the last certificate of `path`.
    fn issuer_checks(&self, issuer: &Certificate, path: &[&Certificate], at: SystemTime) -> Result<(), PathError> {
        let d = Decoded::of(issuer)?;
        if !d.is_ca() {
            return Err(PathError::NotCa {
                subject: subject(issuer),
            });
        }
        if !d.may_sign_certificates() {
            return Err(PathError::NoCertSign {
                subject: subject(issuer),
            });
        }
        if let Some(path_len) = d.basic_constraints.as_ref().and_then(|b| b.path_len_constraint) {
            let below = path
                .iter()
                .skip(1)
                .filter(|c| c.tbs_certificate.subject != c.tbs_certificate.issuer)
                .count();
            if below > usize::from(path_len) {
                return Err(PathError::PathLenExceeded {
                    subject: subject(issuer),
                    path_len,
                    below,
                });
            }
        }
        self.valid_at(issuer, at)
    }

    fn valid_at(&self, cert: &Certificate, at: SystemTime) -> Result<(), PathError> {
        let v = &cert.tbs_certificate.validity;
        if at + self.options.clock_skew < v.not_before.to_system_time() {
            return Err(PathError::NotYetValid {
                subject: subject(cert),
                not_before: v.not_before.to_string(),
            });
        }
        if at > v.not_after.to_system_time() {
            return Err(PathError::Expired {
                subject: subject(cert),
                not_after: v.not_after.to_string(),
            });
        }
        Ok(())
    }
}
