//! The client trust core (issue F): pinned anchors → verified chains →
//! which certificate may act as the SCEP RA, and whether an issued
//! certificate may be kept. `ScepClient`/`ScepSession`, the EST bootstrap,
//! the `enrol` CLI and the agent decide trust here, on the one chain
//! validator of `enrolkit-pkix`.
//!
//! | decision | rule |
//! |---|---|
//! | which served CA certificates are trusted | those with a pinned fingerprint, and those that chain to one (signatures verified, RFC 5280 §6.1) |
//! | which certificate may be the SCEP RA | one signed (verified, not name-matched) by a trusted CA and carrying id-kp-cmcRA or Microsoft's Certificate Request Agent, or pinned itself |
//! | whether an issued certificate is kept | it is for our key, not a CA, valid now, and chains to the pinned anchor through the served CA certificates |
//! | which certificate may sign a CMP answer | one pinned as the server's, an anchor, or one chaining to an anchor with id-kp-cmcRA ([`cmp_signer`]) |
//! | EST bootstrap (RFC 7030 §4.1.1) | only the pinned certificate and what chains to it become trust anchors; the rest is dropped and reported |
//! | the EST server after a bootstrap | its TLS certificate chains to those anchors for id-kp-serverAuth, valid now, and its subjectAltName names the host (RFC 9525, no common name) |
//!
//! Without a pin ([`Trust::InsecureFirstUse`]) the client trusts whatever
//! CA certificates the server sends, as it did before pins existed: an
//! explicit, documented choice, never the silent result of a missing pin.

use crate::scep::ClientError;
use enrolkit_pkix::{fingerprint, Anchors, Options, PathError, Purpose, ValidatedPath, Validator};
use enrolkit_scep::CaCertificates;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// How far ahead of our clock a CA's notBefore may be (a CA whose clock
/// runs ahead, a certificate issued a moment ago).
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How a client decides to trust the CA it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// SHA-256 fingerprints (normalised lowercase hex) of the certificates
    /// trusted as themselves: the CA's root, an intermediate, or the RA.
    Pinned(Vec<String>),
    /// No pin: trust the CA certificates the server sends on first use.
    /// Anyone on the path can substitute all of them; for a channel that
    /// is trusted otherwise, or to print fingerprints for an out-of-band
    /// check. Issued certificates are still checked against what was sent.
    InsecureFirstUse,
}

impl Trust {
    /// A pin as typed (colons, spaces, either case).
    pub fn pin(fingerprint: &str) -> Self {
        Trust::Pinned(vec![fingerprint::normalise(fingerprint)])
    }

    /// [`Trust::pin`] when a fingerprint is given, else [`Trust::InsecureFirstUse`].
    pub fn pinned_or_first_use(fingerprint: Option<&str>) -> Self {
        fingerprint.map_or(Trust::InsecureFirstUse, Trust::pin)
    }

    /// Whether this is [`Trust::InsecureFirstUse`].
    pub fn is_first_use(&self) -> bool {
        matches!(self, Trust::InsecureFirstUse)
    }
}

/// The options every client check uses: `purpose`, [`CLOCK_SKEW`], SHA-1
/// only when `legacy`.
pub fn options(purpose: Purpose, legacy: bool) -> Options {
    Options::new(purpose).with_clock_skew(CLOCK_SKEW).with_sha1(legacy)
}

/// A GetCACert reply sorted by trust: what the session may use.
#[derive(Debug, Clone)]
pub struct TrustedCa {
    /// The certificates by role, only trusted ones: the issuing CA, the
    /// RA(s) allowed to receive requests and sign replies, other CA
    /// certificates of the chain.
    pub certificates: CaCertificates,
    /// What issued certificates must chain to.
    pub anchors: Vec<Certificate>,
    /// Served certificates left out (not chaining to the pin, expired),
    /// with the reason.
    pub dropped: Vec<(Certificate, PathError)>,
}

fn untrusted(what: &str, cert: &Certificate, error: PathError) -> ClientError {
    ClientError::Untrusted {
        what: format!("{what} {:?}", enrolkit_pkix::subject(cert)),
        error,
    }
}

/// Decide which certificates of a GetCACert reply (sorted by
/// [`CaCertificates::classify`], which matches names only) the client may
/// use. With a pin: CA certificates that do not chain to it are dropped;
/// an RA that is not signed by a trusted CA with an RA extended key usage
/// (or pinned) is an error, since the request, one-time challenge
/// included, would be encrypted to it. `legacy` admits SHA-1 signatures.
pub fn scep_ca(served: CaCertificates, trust: &Trust, now: SystemTime, legacy: bool) -> Result<TrustedCa, ClientError> {
    let pins = match trust {
        Trust::InsecureFirstUse => {
            let mut anchors = vec![served.ca.clone()];
            anchors.extend(served.chain.iter().cloned());
            return Ok(TrustedCa {
                certificates: served,
                anchors,
                dropped: vec![],
            });
        }
        Trust::Pinned(pins) => pins,
    };
    let mut all = vec![served.ca.clone()];
    all.extend(served.ra.iter().cloned());
    all.extend(served.chain.iter().cloned());
    let anchors = Anchors::pinned(&all, pins);
    if anchors.is_empty() {
        return Err(ClientError::FingerprintMismatch {
            expected: pins.join(", "),
            actual: all.iter().map(fingerprint::sha256).collect::<Vec<_>>().join(", "),
        });
    }
    let (cas, ees): (Vec<Certificate>, Vec<Certificate>) = all.into_iter().partition(enrolkit_pkix::extensions::is_ca);
    let ca_check = Validator::new(&anchors, &cas, options(Purpose::Any, legacy));
    let mut trusted_cas: Vec<Certificate> = Vec::new();
    let mut dropped = Vec::new();
    let mut ca_error = None;
    for c in &cas {
        match ca_check.validate(c, now) {
            Ok(_) => trusted_cas.push(c.clone()),
            Err(e) => {
                if *c == served.ca {
                    ca_error = Some(e.clone());
                }
                dropped.push((c.clone(), e));
            }
        }
    }
    // The RA: every end-entity certificate served is offered as one.
    let ra_check = Validator::new(&anchors, &cas, options(Purpose::ScepRa, legacy));
    let mut ras: Vec<(Certificate, ValidatedPath)> = Vec::new();
    let mut refused = Vec::new();
    for c in &ees {
        match ra_check.validate(c, now) {
            Ok(path) => ras.push((c.clone(), path)),
            Err(e) => refused.push((c.clone(), e)),
        }
    }
    for (c, e) in refused {
        // An expired RA certificate beside a current one (an RA renewed) is left out.
        if matches!(e, PathError::Expired { .. }) && !ras.is_empty() {
            dropped.push((c, e));
        } else {
            return Err(untrusted("the SCEP RA certificate", &c, e));
        }
    }
    // The issuing CA: the one that signed the RA (verified), else the
    // served CA when it is trusted, else the lowest trusted CA.
    let issuer_of_ra = ras
        .iter()
        .filter_map(|(_, path)| path.issuer())
        .find(|i| trusted_cas.contains(i))
        .cloned();
    let ca = match issuer_of_ra {
        Some(ca) => ca,
        None if trusted_cas.contains(&served.ca) => served.ca.clone(),
        None => {
            let lowest = trusted_cas.iter().find(|c| {
                !trusted_cas
                    .iter()
                    .any(|o| o != *c && enrolkit_pkix::signature::signed_by(o, c))
            });
            match (lowest, ras.first()) {
                (Some(c), _) => c.clone(),
                // Only the RA is pinned: its issuer, verified, is the CA.
                (None, Some((ra, _))) if enrolkit_pkix::signature::signed_by(ra, &served.ca) => {
                    trusted_cas.push(served.ca.clone());
                    served.ca.clone()
                }
                _ => {
                    return Err(untrusted(
                        "the CA certificate",
                        &served.ca,
                        ca_error.unwrap_or(PathError::NoIssuer {
                            subject: enrolkit_pkix::subject(&served.ca),
                            issuer: served.ca.tbs_certificate.issuer.to_string(),
                        }),
                    ))
                }
            }
        }
    };
    let mut anchor_certs: Vec<Certificate> = anchors.certificates().to_vec();
    if !anchors.contains(&ca) && !trusted_cas.iter().any(|c| anchors.contains(c)) {
        anchor_certs.push(ca.clone());
    }
    let chain = trusted_cas.into_iter().filter(|c| *c != ca).collect();
    Ok(TrustedCa {
        certificates: CaCertificates {
            ca,
            ra: ras.into_iter().map(|(c, _)| c).collect(),
            chain,
        },
        anchors: anchor_certs,
        dropped,
    })
}

/// Check an issued certificate before anything is written: it certifies
/// `public_key`, is not a CA certificate, and chains to `anchors` through
/// `intermediates` (the served CA certificates and any the reply carried),
/// valid at `now`. Returns the path (the certificate first).
pub fn issued(
    cert: &Certificate,
    public_key: &spki::SubjectPublicKeyInfoOwned,
    anchors: &[Certificate],
    intermediates: &[Certificate],
    now: SystemTime,
    legacy: bool,
) -> Result<ValidatedPath, ClientError> {
    let what = "the issued certificate";
    if &cert.tbs_certificate.subject_public_key_info != public_key {
        return Err(ClientError::NotOurCertificate(format!(
            "{what} {:?} is not for our key",
            enrolkit_pkix::subject(cert)
        )));
    }
    if enrolkit_pkix::extensions::is_ca(cert) {
        return Err(ClientError::NotOurCertificate(format!(
            "{what} {:?} is a CA certificate",
            enrolkit_pkix::subject(cert)
        )));
    }
    let anchors = Anchors::new(anchors.to_vec()).map_err(|e| untrusted(what, cert, e))?;
    let intermediates: Vec<Certificate> = intermediates
        .iter()
        .filter(|c| enrolkit_pkix::extensions::is_ca(c))
        .take(enrolkit_pkix::chain::MAX_INTERMEDIATES)
        .cloned()
        .collect();
    Validator::new(&anchors, &intermediates, options(Purpose::Any, legacy))
        .validate(cert, now)
        .map_err(|e| untrusted(what, cert, e))
}

/// Whether the certificate that signed a CMP answer may speak for the CA:
/// it is pinned itself (`pinned`, e.g. `enrol cmp --server-cert`), is one
/// of `anchors`, or chains to them through the answer's `extra_certs`,
/// valid at `now`, with id-kp-cmcRA in its extKeyUsage (RFC 9483 §3.3: a
/// CMP RA's protection certificate; any device certificate of the CA would
/// otherwise pass for the server). `legacy` admits SHA-1 signatures.
pub fn cmp_signer(
    signer: &Certificate,
    extra_certs: &[Certificate],
    anchors: &[Certificate],
    pinned: &[Certificate],
    now: SystemTime,
    legacy: bool,
) -> Result<(), ClientError> {
    let what = "the CMP server's protection certificate";
    if pinned.contains(signer) || anchors.contains(signer) {
        return Ok(());
    }
    let anchors = Anchors::new(anchors.to_vec()).map_err(|e| untrusted(what, signer, e))?;
    let intermediates: Vec<Certificate> = extra_certs
        .iter()
        .filter(|c| enrolkit_pkix::extensions::is_ca(c))
        .take(enrolkit_pkix::chain::MAX_INTERMEDIATES)
        .cloned()
        .collect();
    Validator::new(&anchors, &intermediates, options(Purpose::ScepRa, legacy))
        .validate(signer, now)
        .map(|_| ())
        .map_err(|e| untrusted(what, signer, e))
}

/// What an EST bootstrap (RFC 7030 §4.1.1) may trust of a `/cacerts` reply.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The pinned certificate(s) and the certificates that chain to them:
    /// the explicit trust anchor database from now on.
    pub trusted: Vec<Certificate>,
    /// The rest, with why each was left out.
    pub dropped: Vec<(Certificate, PathError)>,
}

/// Sort a bootstrap `/cacerts` reply: only the certificate with a pinned
/// fingerprint and those that chain to it (verified, valid at `now`) are
/// trusted. No pinned certificate among them is an error.
pub fn est_bootstrap(offered: &[Certificate], pins: &[String], now: SystemTime) -> Result<Bootstrap, ClientError> {
    let anchors = Anchors::pinned(offered, pins);
    if anchors.is_empty() {
        return Err(ClientError::FingerprintMismatch {
            expected: pins.join(", "),
            actual: offered.iter().map(fingerprint::sha256).collect::<Vec<_>>().join(", "),
        });
    }
    let pool: Vec<Certificate> = offered
        .iter()
        .filter(|c| enrolkit_pkix::extensions::is_ca(c))
        .take(enrolkit_pkix::chain::MAX_INTERMEDIATES)
        .cloned()
        .collect();
    let v = Validator::new(&anchors, &pool, options(Purpose::Any, false));
    let mut out = Bootstrap {
        trusted: vec![],
        dropped: vec![],
    };
    for c in offered {
        match v.validate(c, now) {
            Ok(_) if !out.trusted.contains(c) => out.trusted.push(c.clone()),
            Ok(_) => {}
            Err(e) => out.dropped.push((c.clone(), e)),
        }
    }
    Ok(out)
}

/// Check, after the fact, the TLS server an unauthenticated bootstrap
/// connection reached (RFC 7030 §4.1.1: "the client MUST ... verify the
/// TLS server certificate" once `/cacerts` has given it the explicit trust
/// anchors): `peer_chain` (DER, end entity first, as the server sent it)
/// chains to `anchors` for a TLS server at `now`, and the end entity is
/// for `host` by its subjectAltName.
pub fn tls_server(
    peer_chain: &[Vec<u8>],
    anchors: &[Certificate],
    host: &str,
    now: SystemTime,
) -> Result<ValidatedPath, ClientError> {
    use der::Decode;
    let mut certs = Vec::with_capacity(peer_chain.len());
    for der in peer_chain.iter().take(enrolkit_pkix::chain::MAX_INTERMEDIATES + 1) {
        certs.push(
            Certificate::from_der(der)
                .map_err(|e| ClientError::ServerNotPinned(format!("a certificate it sent does not decode: {e}")))?,
        );
    }
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Err(ClientError::ServerNotPinned("the server sent no certificate".into()));
    };
    let anchors = Anchors::new(anchors.to_vec()).map_err(|e| ClientError::ServerNotPinned(e.to_string()))?;
    let path = Validator::new(&anchors, intermediates, options(Purpose::TlsServer, false))
        .validate(leaf, now)
        .map_err(|e| ClientError::ServerNotPinned(e.to_string()))?;
    enrolkit_pkix::hostname::verify(leaf, host).map_err(|e| ClientError::ServerNotPinned(e.to_string()))?;
    Ok(path)
}

#[cfg(test)]
mod tests;
