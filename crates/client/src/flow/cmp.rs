//! CMP flows (RFC 4210/9480, RFC 9483) on a [`CmpSession`]: what `enrol
//! cmp` runs, and the agent's CMP enrolment ([`session`], [`certificate`]).
//!
//! A flow builds the session from a [`Server`] and a [`Credential`] (MAC
//! with a shared secret, or a signature by a key and its certificate),
//! obtains the key to certify (generated where the caller says, written
//! before the request leaves, or an existing one), and writes outputs only
//! once [`CmpSession`] has validated the certificate and confirmed it.

use super::{OnProgress, Outputs, Progress};
use crate::cmp::{CmpClient, CmpSession, CmpTrust, Issued};
use crate::scep::{ClientError, PollPolicy, Result};
use enrolkit_cmp::general::{GenRequest, GenResponse};
use enrolkit_cmp::header::null_dn;
use enrolkit_cmp::revocation::CrlReason;
use enrolkit_cmp::{BodyType, CertificateRequest, MacAlgorithm, Protect, Requester, SharedSecret};
use enrolkit_keys::{DigestAlgorithm, KeySpec, PrivateKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pkix::pkcs10::extension_request::Names;
use rand_core::OsRng;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// Which MAC protects a MAC request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacKind {
    /// PBMAC1 (RFC 9481 §6.1.2): PBKDF2-HMAC-SHA256 and HMAC-SHA256.
    #[default]
    Pbmac1,
    /// The legacy PasswordBasedMac (RFC 4210 §5.1.3.1), all OpenSSL 3.0 speaks.
    PasswordBasedMac,
}

/// How requests are protected.
pub enum Credential {
    /// A MAC with the secret the server gave under `reference` (senderKID).
    Mac {
        /// The reference (senderKID), e.g. `mef challenge add --label`.
        reference: String,
        /// The secret.
        secret: SharedSecret,
        /// Which MAC.
        mac: MacKind,
    },
    /// A signature by `key`, whose certificate is `certificate` (a vendor
    /// certificate for a 3GPP ir, the current certificate for kur or rr),
    /// with `chain` (its issuing CAs) in extraCerts.
    Signature {
        /// The private key (a file or a token).
        key: Box<dyn PrivateKey>,
        /// Its certificate.
        certificate: Box<Certificate>,
        /// Further extraCerts.
        chain: Vec<Certificate>,
    },
}

/// Where the server is and what it is trusted as.
#[derive(Debug, Clone)]
pub struct Server {
    /// The URL (`http://host:port/.well-known/cmp`, `http://host:port/pkix/`).
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Anchors and pinned server certificates.
    pub trust: CmpTrust,
    /// Polling of a waiting request.
    pub poll: PollPolicy,
    /// The recipient name (the CA's; NULL-DN when None).
    pub recipient: Option<Name>,
    /// Write every message to this directory ([`CmpSession::dump_to`]).
    pub dump: Option<PathBuf>,
}

/// A session for `server`, protecting with `credential`.
pub fn session<'a>(server: &Server, credential: &'a Credential) -> Result<CmpSession<'a>> {
    let protect = match credential {
        Credential::Mac { reference, secret, mac } => Protect::Mac {
            secret,
            algorithm: match mac {
                MacKind::Pbmac1 => MacAlgorithm::pbmac1(&mut OsRng),
                MacKind::PasswordBasedMac => MacAlgorithm::password_based_mac(&mut OsRng),
            },
            sender_kid: reference.as_bytes().to_vec(),
        },
        Credential::Signature {
            key,
            certificate,
            chain,
        } => Protect::Signature {
            signer: key.as_signer(),
            certificate: certificate.as_ref(),
            chain,
            digest: DigestAlgorithm::Sha256,
        },
    };
    let requester = Requester {
        protect,
        sender: null_dn(),
        recipient: server
            .recipient
            .clone()
            .map_or_else(null_dn, GeneralName::DirectoryName),
        message_time: Some(SystemTime::now()),
        limits: Default::default(),
        policy: enrolkit_cmp::ProtectionPolicy {
            allow_sha1: server.trust.legacy,
            ..Default::default()
        },
    };
    let client = CmpClient::new(&server.url, server.timeout, &server.trust.anchors)?;
    let s = CmpSession::new(client, requester, server.trust.clone(), server.poll);
    Ok(match &server.dump {
        Some(d) => s.dump_to(d.clone()),
        None => s,
    })
}

/// The key to certify.
#[derive(Debug, Clone)]
pub enum NewKey {
    /// Generate one of `spec` at this location (written before the request leaves).
    Generate(KeyLocation, KeySpec),
    /// An existing key.
    Existing(KeyLocation),
}

impl NewKey {
    /// The key, generated or loaded; a token key pair generated is reported.
    pub fn obtain(&self, progress: OnProgress) -> Result<Box<dyn PrivateKey>> {
        match self {
            NewKey::Generate(at, spec) => {
                let (key, at) = at.generate(*spec).map_err(|error| ClientError::KeyStore {
                    at: Some(at.to_string()),
                    error,
                })?;
                if let KeyLocation::Token(_) = at {
                    progress(Progress::KeyInToken { at: &at });
                }
                Ok(key)
            }
            NewKey::Existing(at) => super::load_key(at),
        }
    }
}

/// What a certificate request (ir, cr, kur, p10cr) asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    /// ir, cr, kur or p10cr.
    pub kind: BodyType,
    /// Subject (kur: the old certificate's when None, and with no DNS
    /// names its subjectAltName too).
    pub subject: Option<Name>,
    /// DNS names for the subjectAltName.
    pub dns_names: Vec<String>,
    /// kur: the certificate being updated (the signing one).
    pub old_certificate: Option<Certificate>,
    /// Ask for implicitConfirm.
    pub implicit_confirm: bool,
}

/// A certificate request as [`Ask`] says, with `key` (the agent stages its
/// own): polled while waiting, validated, confirmed.
pub fn certificate(session: &CmpSession<'_>, ask: &Ask, key: &dyn PrivateKey, progress: OnProgress) -> Result<Issued> {
    let mut polled = |attempt, elapsed| progress(Progress::Pending { attempt, elapsed });
    if ask.kind == BodyType::P10cr {
        let subject = ask
            .subject
            .clone()
            .ok_or_else(|| ClientError::Unexpected("p10cr needs a subject".into()))?;
        let csr = enrolkit_pkix::pkcs10::RequestParams {
            dns_names: ask.dns_names.clone(),
            ..enrolkit_pkix::pkcs10::RequestParams::new(subject)
        }
        .build(key.as_signer())
        .map_err(|e| ClientError::Unexpected(format!("PKCS#10: {e}")))?;
        return session.p10cr(&csr, ask.implicit_confirm, &mut polled);
    }
    let extensions = if ask.dns_names.is_empty() {
        // A kur that names nothing asks for the old certificate's names:
        // its subject (the requester's default) and its subjectAltName.
        match (&ask.old_certificate, &ask.subject) {
            (Some(old), None) => old
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
                .map(|e| vec![e.clone()]),
            _ => None,
        }
    } else {
        let names = Names {
            dns: ask.dns_names.clone(),
            ..Default::default()
        };
        let empty = ask.subject.as_ref().is_some_and(|s| s.0.is_empty());
        Some(vec![names
            .to_extension(empty)
            .map_err(|e| ClientError::Unexpected(format!("subjectAltName: {e}")))?])
    };
    let req = CertificateRequest {
        key: key.as_signer(),
        subject: ask.subject.clone(),
        extensions,
        old_certificate: ask.old_certificate.as_ref(),
        digest: DigestAlgorithm::Sha256,
    };
    session.certificate(ask.kind, &req, ask.implicit_confirm, &mut polled)
}

/// `enrol cmp ir|cr|kur|p10cr`: the key, the request, and once the
/// certificate is validated and confirmed, the outputs (certificate; chain
/// = the validated path above it, anchor included).
pub fn enrol(
    server: &Server,
    credential: &Credential,
    ask: &Ask,
    new_key: &NewKey,
    out: &Outputs,
    progress: OnProgress,
) -> Result<Issued> {
    let session = session(server, credential)?;
    let key = new_key.obtain(progress)?;
    let issued = certificate(&session, ask, key.as_ref(), progress)?;
    out.write(&issued.certificate, &issued.chain)?;
    Ok(issued)
}

/// `enrol cmp rr`: revoke `certificate` (the request signed as `credential` says).
pub fn revoke(
    server: &Server,
    credential: &Credential,
    certificate: &Certificate,
    reason: Option<CrlReason>,
) -> Result<()> {
    session(server, credential)?.revoke(certificate, reason)
}

/// `enrol cmp genm`: ask for the CA certificates and a root CA update
/// (and a certificate request template); the answers; the CA certificates
/// written to `out` (PEM) when given.
pub fn general(server: &Server, credential: &Credential, out: Option<&std::path::Path>) -> Result<Vec<GenResponse>> {
    let answers = session(server, credential)?.general(&[
        GenRequest::CaCerts,
        GenRequest::RootCaUpdate(None),
        GenRequest::CertReqTemplate,
    ])?;
    if let Some(p) = out {
        let certs: Vec<Certificate> = answers
            .iter()
            .filter_map(|a| match a {
                GenResponse::CaCerts(c) => Some(c.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        super::write_public(p, &super::encode(&certs, false)?)?;
    }
    Ok(answers)
}
