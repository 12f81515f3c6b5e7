//! Enrolment flows: each command of the `enrol` client as one library call
//! with typed inputs and outputs, so the CLI only parses arguments and
//! prints, and the agent and other projects run the same code.
//!
//! A flow makes the enrolment decisions (which key type `/csrattrs` asks
//! for, where a key is generated and when it is written, waiting on 202 or
//! PENDING, validating what came back before anything is written, writing
//! outputs atomically) and reports what it does as [`Progress`] events; it
//! never prints.
//!
//! | command | flow | shared with the agent |
//! |---|---|---|
//! | `enrol scep getca` | [`scep::ca_certificates`] | |
//! | `enrol scep enrol` | [`scep::enrol`] | [`scep::first_enrolment`] |
//! | `enrol scep renew` | [`scep::renew`] | ([`crate::ScepSession::renew`]) |
//! | `enrol scep poll`, `getcert`, `getcrl` | [`scep::poll`], [`scep::get_cert`], [`scep::get_crl`] | |
//! | `enrol est cacerts`, `csrattrs` | [`est::cacerts`], [`est::EstSession::csrattrs`] | |
//! | `enrol est enroll` | [`est::enroll`] | [`est::request`], [`est::key_for`] |
//! | `enrol est reenroll` | [`est::reenroll`] | [`est::request`] |
//! | `enrol est serverkeygen` | [`est::serverkeygen`] | |
//! | `enrol est onem2m` | [`onem2m::onem2m`] | |
//! | `enrol rspf enrol` | [`rspf::enrol`] | [`rspf::Exchanged`], [`rspf::certificate_enrolment`], [`rspf::EnroleeCredential`] |
//! | `enrol cmp ir`, `cr`, `kur`, `p10cr` | [`cmp::enrol`] | [`cmp::session`], [`cmp::certificate`] |
//! | `enrol cmp rr`, `genm` | [`cmp::revoke`], [`cmp::general`] | |
//! | `enrol rspf derive`, `fetch` | [`rspf::derive_key`], [`rspf::fetch_key`] | |

pub mod cmp;
pub mod est;
pub mod onem2m;
pub mod rspf;
pub mod scep;

use crate::scep::{ClientError, Result};
use der::{Encode, EncodePem};
use enrolkit_keys::SoftwareKey;
use enrolkit_pkcs11::KeyLocation;
use std::path::{Path, PathBuf};
use std::time::Duration;
use x509_cert::Certificate;

/// What a flow reports while it runs, for the caller to show (the `enrol`
/// CLI prints these; a daemon may log them). Flows never print.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A certificate the server sent was left out as untrusted, and why.
    Untrusted {
        /// The certificate.
        certificate: &'a Certificate,
        /// What the chain validator found.
        why: &'a enrolkit_pkix::PathError,
    },
    /// SCEP without a pin: the CA is trusted on first use, unauthenticated.
    FirstUse {
        /// The CA certificate now trusted.
        ca: &'a Certificate,
    },
    /// EST bootstrap: a certificate `/cacerts` served, before trust is decided.
    Offered {
        /// The certificate.
        certificate: &'a Certificate,
    },
    /// A key pair was generated inside a token.
    KeyInToken {
        /// Where it is found again (with its id).
        at: &'a KeyLocation,
    },
    /// A token key pair made for an enrolment that failed could not be destroyed.
    KeyNotDestroyed {
        /// The key pair.
        at: &'a KeyLocation,
        /// Why.
        error: &'a ClientError,
    },
    /// SCEP PENDING: poll `attempt` was made after `elapsed`.
    Pending {
        /// Polls so far.
        attempt: u32,
        /// Time since the request.
        elapsed: Duration,
    },
    /// EST 202 Accepted: `attempt` answered 202; the next one is sent after `wait`.
    Accepted {
        /// Attempts so far.
        attempt: u32,
        /// Time since the first attempt.
        elapsed: Duration,
        /// Time until the next attempt.
        wait: Duration,
    },
    /// EST `/csrattrs` was unusable; the enrolment goes on without it.
    CsrAttrsUnusable {
        /// What was wrong with the answer.
        error: &'a ClientError,
    },
    /// A step of the oneM2M certificate enrolment (seed `002`).
    OneM2m(onem2m::OneM2mStep<'a>),
    /// A step of the RSPF Enrolee (clause 8.3.3.1).
    Rspf(rspf::RspfStep<'a>),
}

/// Where a flow reports [`Progress`].
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress<'_>);

/// Where an issued certificate goes: the certificate, optionally the CA
/// certificates, in PEM or DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// The certificate.
    pub certificate: PathBuf,
    /// The CA certificates, concatenated.
    pub chain: Option<PathBuf>,
    /// DER instead of PEM.
    pub der: bool,
}

impl Outputs {
    /// Write `cert`, and `chain` when asked for, each atomically (mode 0644).
    pub fn write(&self, cert: &Certificate, chain: &[Certificate]) -> Result<()> {
        write_public(&self.certificate, &encode(std::slice::from_ref(cert), self.der)?)?;
        if let Some(p) = &self.chain {
            write_public(p, &encode(chain, self.der)?)?;
        }
        Ok(())
    }
}

/// Certificates as PEM (LF line ends) or as DER, one after the other.
pub fn encode(certs: &[Certificate], der: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in certs {
        if der {
            out.extend(c.to_der().map_err(unexpected)?);
        } else {
            out.extend(c.to_pem(der::pem::LineEnding::LF).map_err(unexpected)?.into_bytes());
        }
    }
    Ok(out)
}

/// A software key as a PKCS#8 PEM file, mode 0600, written atomically.
pub fn write_key(path: &Path, key: &SoftwareKey) -> Result<()> {
    let pem = key.to_pkcs8_pem()?;
    enrolkit_files::write_private(path, pem.as_bytes()).map_err(ClientError::Files)
}

/// A public file, mode 0644, written atomically.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    enrolkit_files::write_public(path, bytes).map_err(ClientError::Files)
}

/// The key at `at`, with the location named in the error.
pub fn load_key(at: &KeyLocation) -> Result<Box<dyn enrolkit_keys::PrivateKey>> {
    at.load().map_err(|error| ClientError::KeyStore {
        at: Some(at.to_string()),
        error,
    })
}

fn unexpected(e: impl std::fmt::Display) -> ClientError {
    ClientError::Unexpected(e.to_string())
}

#[cfg(test)]
mod tests;
