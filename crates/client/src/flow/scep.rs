//! SCEP flows (RFC 8894) on a [`ScepSession`]: what `enrol scep` runs.
//!
//! The session ([`open`]) has settled the algorithms and which CA and RA
//! certificates are trusted; these flows add the key (generated where the
//! caller says, stored before the request leaves so that a PENDING request
//! can be polled from a later run), the wait on PENDING, and the outputs,
//! written only once [`ScepSession`] has validated the certificate.

use super::{write_public, OnProgress, Outputs, Progress};
use crate::scep::{PollPolicy, RenewalForm, Result, ScepClient, ScepSession};
use crate::trust::Trust;
use der::Encode;
use enrolkit_keys::{KeySpec, PrivateKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pkix::pkcs10::RequestParams;
use enrolkit_scep::{CaCertificates, ContentEncryption};
use std::path::Path;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// The key type of a new key for a renewal (`--new-key`): SCEP renewal
/// signs with the key, and key transport is RSA.
pub const RENEWAL_KEY: KeySpec = KeySpec::Rsa2048;

/// GetCACaps and GetCACert, and the trust decision ([`ScepSession::open_with`]);
/// reports each served certificate left out, and a trust on first use.
pub fn open(
    client: ScepClient,
    trust: &Trust,
    ciphers: &[ContentEncryption],
    progress: OnProgress,
) -> Result<ScepSession> {
    let session = ScepSession::open_with(client, trust, ciphers)?;
    untrusted(&session.dropped, progress);
    if trust.is_first_use() {
        progress(Progress::FirstUse { ca: &session.ca.ca });
    }
    Ok(session)
}

fn untrusted(dropped: &[(Certificate, enrolkit_pkix::PathError)], progress: OnProgress) {
    for (certificate, why) in dropped {
        progress(Progress::Untrusted { certificate, why });
    }
}

/// The certificates of a GetCACert reply by role (`CA`, `RA`, `chain`), in
/// the order they are shown and written.
pub fn by_role(ca: &CaCertificates) -> Vec<(&'static str, &Certificate)> {
    let mut all = vec![("CA", &ca.ca)];
    all.extend(ca.ra.iter().map(|c| ("RA", c)));
    all.extend(ca.chain.iter().map(|c| ("chain", c)));
    all
}

/// GetCACert, and what of it is trusted under `trust`
/// ([`ScepClient::ca_certs`]); written as PEM to `out` when given.
pub fn ca_certificates(
    client: &ScepClient,
    trust: &Trust,
    out: Option<&Path>,
    progress: OnProgress,
) -> Result<CaCertificates> {
    let trusted = client.ca_certs(trust)?;
    untrusted(&trusted.dropped, progress);
    let ca = trusted.certificates;
    if let Some(p) = out {
        let all: Vec<Certificate> = by_role(&ca).into_iter().map(|(_, c)| c.clone()).collect();
        write_public(p, &super::encode(&all, false)?)?;
    }
    Ok(ca)
}

/// What a first enrolment (`enrol scep enrol`) asks for.
#[derive(Debug)]
pub struct EnrolRequest {
    /// The subject.
    pub subject: Name,
    /// DNS names for the subjectAltName.
    pub dns_names: Vec<String>,
    /// The challenge password, if any.
    pub challenge: Option<Zeroizing<String>>,
    /// The key type to generate.
    pub key_type: KeySpec,
    /// Where the key is generated: a file (written before the request
    /// leaves) or a token object.
    pub key_out: KeyLocation,
    /// How long and how often to poll while PENDING.
    pub poll: PollPolicy,
}

/// First enrolment: a new key at `req.key_out`, a PKCSReq, polling while
/// PENDING; the validated certificate and the CA certificates go to `out`.
pub fn enrol(session: &ScepSession, req: &EnrolRequest, out: &Outputs, progress: OnProgress) -> Result<Certificate> {
    // The key is stored before the request leaves, so a PENDING request can be polled later.
    let (key, at) = req.key_out.generate(req.key_type)?;
    if let KeyLocation::Token(_) = at {
        progress(Progress::KeyInToken { at: &at });
    }
    let challenge = req.challenge.as_ref().map(|c| c.as_str());
    let cert = first_enrolment(
        session,
        key.as_ref(),
        &req.subject,
        &req.dns_names,
        challenge,
        req.poll,
        progress,
    )?;
    finish(session, &cert, out)?;
    Ok(cert)
}

/// The PKCSReq of a first enrolment for `key` (the session's digest),
/// polled while PENDING; the certificate is validated
/// ([`ScepSession::check_issued`]) before it is returned. The agent's SCEP
/// enrolment runs this too.
pub fn first_enrolment(
    session: &ScepSession,
    key: &dyn PrivateKey,
    subject: &Name,
    dns_names: &[String],
    challenge: Option<&str>,
    poll: PollPolicy,
    progress: OnProgress,
) -> Result<Certificate> {
    let params = RequestParams {
        dns_names: dns_names.to_vec(),
        digest: session.digest,
        ..RequestParams::new(subject.clone())
    }
    .with_challenge_password(challenge);
    session.enrol(key, &params, poll, &mut |attempt, elapsed| {
        progress(Progress::Pending { attempt, elapsed })
    })
}

/// What a renewal (`enrol scep renew`) needs.
#[derive(Debug)]
pub struct RenewRequest {
    /// The current key (it signs the RenewalReq).
    pub key: KeyLocation,
    /// The current certificate.
    pub current: Certificate,
    /// Where a new key ([`RENEWAL_KEY`]) is generated; `None` re-certifies the current key.
    pub new_key: Option<KeyLocation>,
    /// RenewalReq or PKCSReq.
    pub form: RenewalForm,
    /// How long and how often to poll while PENDING.
    pub poll: PollPolicy,
}

/// Renewal: a RenewalReq (or PKCSReq, [`RenewalForm`]) signed with the current key and certificate, for
/// a new key or the current one, polled while PENDING; the validated
/// certificate and the CA certificates go to `out`.
pub fn renew(session: &ScepSession, req: &RenewRequest, out: &Outputs, progress: OnProgress) -> Result<Certificate> {
    let current_key = req.key.load()?;
    let next_key = match &req.new_key {
        Some(at) => {
            let (k, at) = at.generate(RENEWAL_KEY)?;
            if let KeyLocation::Token(_) = at {
                progress(Progress::KeyInToken { at: &at });
            }
            k
        }
        None => req.key.load()?,
    };
    let issued = session.renew(
        current_key.as_ref(),
        &req.current,
        next_key.as_ref(),
        req.form,
        req.poll,
        &mut |attempt, elapsed| progress(Progress::Pending { attempt, elapsed }),
    )?;
    finish(session, &issued, out)?;
    Ok(issued)
}

/// One CertPoll for a request made earlier with the key at `key`
/// ([`ScepSession::poll_once`]); the certificate, once issued, goes to `out`.
/// `None`: still pending.
pub fn poll(
    session: &ScepSession,
    key: &KeyLocation,
    subject: &Name,
    renewing: Option<&Certificate>,
    out: &Outputs,
) -> Result<Option<Certificate>> {
    let k = key.load()?;
    let issued = session.poll_once(k.as_ref(), subject, renewing)?;
    if let Some(cert) = &issued {
        finish(session, cert, out)?;
    }
    Ok(issued)
}

/// GetCert with our key and certificate: the certificate with `serial`, written (PEM) to `out`.
pub fn get_cert(
    session: &ScepSession,
    key: &KeyLocation,
    cert: &Certificate,
    serial: &[u8],
    out: &Path,
) -> Result<Certificate> {
    let c = session.get_cert(key.load()?.as_ref(), cert, serial)?;
    write_public(out, &super::encode(std::slice::from_ref(&c), false)?)?;
    Ok(c)
}

/// GetCRL with our key and certificate: the CRL of its issuer, written (PEM) to `out`.
pub fn get_crl(session: &ScepSession, key: &KeyLocation, cert: &Certificate, out: &Path) -> Result<CertificateList> {
    let crl = session.get_crl(key.load()?.as_ref(), cert)?;
    let der_bytes = crl.to_der().map_err(super::unexpected)?;
    let pem = der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der_bytes).map_err(super::unexpected)?;
    write_public(out, pem.as_bytes())?;
    Ok(crl)
}

/// Write an issued certificate and the session's CA certificates (the CA, then the rest of its chain).
fn finish(session: &ScepSession, cert: &Certificate, out: &Outputs) -> Result<()> {
    let mut chain = vec![session.ca.ca.clone()];
    chain.extend(session.ca.chain.iter().cloned());
    out.write(cert, &chain)
}
