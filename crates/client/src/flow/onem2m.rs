//! The oneM2M certificate enrolment flow (TS-0003 clause 8.3.3.3, seed
//! `002`) over EST: trust anchors, CSR attributes, key, CSR, enrolment,
//! validation, installation, one numbered [`OneM2mStep`] each. `enrol est
//! onem2m` runs it whole ([`onem2m`]); the RSPF Enrolee runs its middle
//! ([`enrol`]) and installation ([`install`]) after an Enrolment Exchange.

use super::est::{issued, key_for, request, validate_issued, EstSession, EstSettings, Wait};
use super::{write_key, write_public, OnProgress, Progress};
use crate::est::{require_ekus, EstClient};
use crate::scep::{ClientError, Result};
use enrolkit_est::{CsrAttrs, Operation};
use enrolkit_keys::{KeySpec, SoftwareKey};
use enrolkit_pkix::pkcs10::RequestParams;
use std::path::{Path, PathBuf};
use x509_cert::Certificate;

/// The steps of the seed `002` call flow as this client runs them.
#[derive(Debug, Clone, Copy)]
pub enum OneM2mStep<'a> {
    /// 1: the trust anchors, from `/cacerts` (`pinned`: by a pin or given anchors).
    TrustAnchors {
        /// Whether the anchors were pinned (a bootstrap) rather than authenticated by the session.
        pinned: bool,
    },
    /// 2: `/csrattrs` asked.
    CsrAttrsAsked,
    /// 3: what the CSR attributes ask for.
    CsrAttrs(&'a CsrAttrs),
    /// 4: the key pair generated.
    KeyPair(KeySpec),
    /// 5: the CSR built to the attributes.
    CsrBuilt,
    /// 6: `/simpleenroll` sent.
    Enrolling,
    /// 7: a certificate came back.
    Received,
    /// 8: it is for our key and chains to the trust anchors.
    Validated,
    /// 9: it carries every EKU the attributes asked for.
    Ekus,
    /// 10: the key written (0600).
    KeyInstalled,
    /// 11: the certificate written.
    CertificateInstalled,
    /// 12: the trust anchors written.
    AnchorsInstalled,
    /// 13: finished.
    Done,
}

impl OneM2mStep<'_> {
    /// The step's number in the call flow.
    pub fn number(&self) -> u32 {
        match self {
            OneM2mStep::TrustAnchors { .. } => 1,
            OneM2mStep::CsrAttrsAsked => 2,
            OneM2mStep::CsrAttrs(_) => 3,
            OneM2mStep::KeyPair(_) => 4,
            OneM2mStep::CsrBuilt => 5,
            OneM2mStep::Enrolling => 6,
            OneM2mStep::Received => 7,
            OneM2mStep::Validated => 8,
            OneM2mStep::Ekus => 9,
            OneM2mStep::KeyInstalled => 10,
            OneM2mStep::CertificateInstalled => 11,
            OneM2mStep::AnchorsInstalled => 12,
            OneM2mStep::Done => 13,
        }
    }
}

impl std::fmt::Display for OneM2mStep<'_> {
    /// What the step did, in a few words.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OneM2mStep::TrustAnchors { pinned: true } => f.write_str("trust anchors: /cacerts, pinned"),
            OneM2mStep::TrustAnchors { pinned: false } => f.write_str("trust anchors: /cacerts"),
            OneM2mStep::CsrAttrsAsked => f.write_str("CSR attributes: /csrattrs"),
            OneM2mStep::CsrAttrs(a) => write!(f, "CSR attributes: {}", crate::est::describe_attrs(a)),
            OneM2mStep::KeyPair(spec) => write!(f, "key pair: {spec:?}"),
            OneM2mStep::CsrBuilt => f.write_str("CSR built to the attributes (channel binding per connection)"),
            OneM2mStep::Enrolling => f.write_str("enrolment: /simpleenroll"),
            OneM2mStep::Received => f.write_str("certificate received"),
            OneM2mStep::Validated => f.write_str("certificate validated: our key, chains to the trust anchors"),
            OneM2mStep::Ekus => f.write_str("certificate carries the requested EKUs"),
            OneM2mStep::KeyInstalled => f.write_str("key installed (0600)"),
            OneM2mStep::CertificateInstalled => f.write_str("certificate installed"),
            OneM2mStep::AnchorsInstalled => f.write_str("trust anchors installed"),
            OneM2mStep::Done => f.write_str("done"),
        }
    }
}

fn step(progress: OnProgress, s: OneM2mStep<'_>) {
    progress(Progress::OneM2m(s));
}

/// What `enrol est onem2m` asks for.
#[derive(Debug)]
pub struct OneM2mRequest {
    /// Subject and subjectAltName; `/csrattrs` may add to them.
    pub csr: RequestParams,
    /// The key type when `/csrattrs` does not say.
    pub key_type: KeySpec,
    /// Directory to install `key.pem` (0600), `cert.pem` and `ca.pem` into.
    pub out_dir: PathBuf,
}

/// The whole seed `002` flow over EST (`enrol est onem2m`), steps 1–13.
pub fn onem2m(settings: &EstSettings, req: &OneM2mRequest, progress: OnProgress) -> Result<Certificate> {
    step(progress, OneM2mStep::TrustAnchors { pinned: true });
    let session = EstSession::connect(settings, progress)?;
    let client = session.client(true)?;
    let (key, cert) = enrol(
        &client,
        session.anchors(),
        &req.csr,
        req.key_type,
        settings.wait,
        progress,
    )?;
    install(&req.out_dir, &key, &cert, session.anchors(), progress)?;
    step(progress, OneM2mStep::Done);
    Ok(cert)
}

/// Steps 2–9 once the trust anchors are installed: CSR attributes, a key
/// of the type they ask for (else `fallback`), a CSR satisfying them with
/// this connection's channel binding, `/simpleenroll` (waiting on 202),
/// and the checks before anything is installed: the certificate is for our
/// key, chains to `anchors`, and carries every EKU asked for.
pub fn enrol(
    client: &EstClient,
    anchors: &[Certificate],
    base: &RequestParams,
    fallback: KeySpec,
    wait: Wait,
    progress: OnProgress,
) -> Result<(SoftwareKey, Certificate)> {
    step(progress, OneM2mStep::CsrAttrsAsked);
    let attrs = client.csrattrs()?;
    step(progress, OneM2mStep::CsrAttrs(&attrs));
    let spec = key_for(&attrs, fallback)?;
    step(progress, OneM2mStep::KeyPair(spec));
    let key = SoftwareKey::generate(spec).map_err(|e| ClientError::Unexpected(e.to_string()))?;
    step(progress, OneM2mStep::CsrBuilt);
    step(progress, OneM2mStep::Enrolling);
    let reply = request(client, Operation::SimpleEnroll, base, &attrs, &key, wait, progress)?;
    let cert = issued(reply)?;
    step(progress, OneM2mStep::Received);
    validate_issued(&cert, enrolkit_keys::Signer::public_key(&key), anchors)?;
    step(progress, OneM2mStep::Validated);
    require_ekus(&cert, &attrs.requested_ekus())?;
    step(progress, OneM2mStep::Ekus);
    Ok((key, cert))
}

/// Steps 10–12: install `key.pem` (0600), `cert.pem` and `ca.pem` into
/// `out_dir` (made 0700 when missing).
pub fn install(
    out_dir: &Path,
    key: &SoftwareKey,
    cert: &Certificate,
    anchors: &[Certificate],
    progress: OnProgress,
) -> Result<()> {
    enrolkit_files::create_private_dir(out_dir).map_err(ClientError::Files)?;
    write_key(&out_dir.join("key.pem"), key)?;
    step(progress, OneM2mStep::KeyInstalled);
    write_public(
        &out_dir.join("cert.pem"),
        &super::encode(std::slice::from_ref(cert), false)?,
    )?;
    step(progress, OneM2mStep::CertificateInstalled);
    write_public(&out_dir.join("ca.pem"), &super::encode(anchors, false)?)?;
    step(progress, OneM2mStep::AnchorsInstalled);
    Ok(())
}
