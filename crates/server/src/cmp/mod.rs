//! The CMP server (RFC 4210 as updated by RFC 9480, Lightweight CMP Profile
//! RFC 9483) of `mef`: a front end of the authorisation core
//! ([`crate::ra`]) on the wire crate [`enrolkit_cmp`]. [`crate::http`]
//! serves it at `/.well-known/cmp` and `/.well-known/cmp/p/<label>`
//! (RFC 6712: POST, `application/pkixcmp`).
//!
//! | request | protection | credential given to the core | answer |
//! |---|---|---|---|
//! | ir, cr | MAC, senderKID = a CMP challenge's label | the challenge (its secret, [`secrets`]), consumed with the issuance | ip/cp, MAC |
//! | ir, cr | signature, extraCerts | the signer certificate: a vendor's (3GPP TS 33.310 §9: names from `[authorisation.vendor]`), ours (its own names) | ip/cp, signed |
//! | kur | signature by our certificate, oldCertID = it | the certificate, a renewal: the same names | kup, signed |
//! | p10cr | either | as ir, the CSR's names | cp |
//! | rr | signature by the certificate to revoke | — (its holder) | rp |
//! | genm | either | — | genp: caCerts, rootCaKeyUpdate, certReqTemplate (none) |
//! | certConf | as the request | — | pkiConf |
//! | pollReq | as the request | — | pollRep, or the ip/cp/kup once approved |
//!
//! Signed answers and every error are protected by the SCEP RA key and
//! certificate (`ra_key`, `ra_certificate`): the CMP responder's identity,
//! which a client pins (`openssl cmp -srvcert ra.pem`) or validates
//! against the CA (`-trusted ca.pem`). Answers to a MAC-protected request
//! are MAC-protected with its secret (RFC 9483 §3.2), in the family the
//! client used (PBMAC1, or the legacy PasswordBasedMac).
//!
//! Refusals of the core are errors (RFC 9483 §3.6.4) with the
//! PKIFailureInfo [`fail_info`] gives and the core's sentence.

pub mod exchanges;
pub mod secrets;

pub use secrets::SecretSealer;

use crate::keygate::KeyGate;
use crate::metrics::{self, Metrics};
use crate::ra::{
    self, AuthRequest, Authoriser, Credential, CsrView, Intent, IssueNames, Protocol, Refusal, RefusalReason, Standing,
};
use crate::storage::{IssuedCert, Storage, StorageError, Transaction, TxState};
use der::Encode;
use enrolkit_cmp::confirm::CertStatus;
use enrolkit_cmp::general::RootCaKeyUpdateContent;
use enrolkit_cmp::header::null_dn;
use enrolkit_cmp::keys::{DigestAlgorithm, PrivateKey};
use enrolkit_cmp::request::CertReqMsg;
use enrolkit_cmp::revocation::RevDetails;
use enrolkit_cmp::{
    BodyType, CertRequestKind, CertificateOutcome, Claimed, CmpError, FailureInfo, GenRequest, GenResponse,
    MacAlgorithm, PkiStatusInfo, Protect, Received, ReplyTo, Request, Responder, SharedSecret, Verified,
    VerifiedRequest,
};
use enrolkit_pki::{Authority, Profile};
use enrolkit_pkix::pkcs10::CertificationRequest;
use exchanges::{Exchanges, Open, Requester, ReserveError, Stage, PER_REQUESTER};
use rand_core::OsRng;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// RFC 6712 §3.4: the media type of requests and answers.
pub const CONTENT_TYPE: &str = "application/pkixcmp";

/// Where CMP is served (RFC 9483 §3.3 / RFC 6712 revision: `/.well-known/cmp`).
pub const CMP_PATH: &str = "/.well-known/cmp";

/// Prefix of a labelled path (`/.well-known/cmp/p/<label>`).
pub const CMP_LABEL_PREFIX: &str = "/.well-known/cmp/p/";

/// Longest path label accepted (letters, digits, `-`, `_`, `.`).
pub const MAX_PATH_LABEL: usize = 64;

/// Whether `path` is a CMP path: `Some(label)` (empty without one).
pub fn path_label(path: &str) -> Option<&str> {
    if path == CMP_PATH || path == "/.well-known/cmp/" {
        return Some("");
    }
    let label = path.strip_prefix(CMP_LABEL_PREFIX)?;
    let ok = !label.is_empty()
        && label.len() <= MAX_PATH_LABEL
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(label)
}

/// Everything the service needs.
pub struct CmpSetup {
    /// The issuing CA.
    pub ca: Arc<Authority>,
    /// The responder's certificate (the SCEP RA's).
    pub ra_cert: Certificate,
    /// Its key.
    pub ra_key: Arc<dyn PrivateKey>,
    /// The authorisation core.
    pub auth: Authoriser,
    /// State.
    pub storage: Arc<dyn Storage>,
    /// Issued certificates' profile.
    pub profile: Profile,
    /// Opens CMP challenge secrets.
    pub secrets: SecretSealer,
    /// Seals the names of held requests (the one SCEP uses).
    pub held_names: crate::held::HeldNamesSeal,
    /// The next CA certificate, offered as rootCaKeyUpdate.
    pub next_ca: Option<Certificate>,
    /// Grant implicitConfirm when asked.
    pub grant_implicit_confirm: bool,
    /// How long a transaction waits for certConf or pollReq.
    pub confirm_wait: Duration,
    /// checkAfter of a pollRep.
    pub check_after: Duration,
}

/// What a request did, for the log line and the metrics.
#[derive(Debug, Clone, Default)]
pub struct CmpOutcome {
    /// The request's body type (`ir`, `certConf`, …; empty when it did not parse).
    pub body: &'static str,
    /// transactionID, hex.
    pub transaction_id: String,
    /// How it was protected (`mac:<label>`, `signature:<subject>`).
    pub protection: String,
    /// What happened (the core's basis, or the refusal).
    pub outcome: String,
    /// The metrics' outcome: `accepted`, `waiting`, `error`.
    pub result: &'static str,
}

/// The answer, for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmpResponse {
    /// HTTP status (200 for every PKIMessage, error ones included).
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl CmpResponse {
    fn message(der: Vec<u8>) -> Self {
        CmpResponse {
            status: 200,
            content_type: CONTENT_TYPE,
            body: der,
        }
    }

    /// A transport-level refusal (no PKIMessage).
    pub fn text(status: u16, msg: &str) -> Self {
        CmpResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{msg}\n").into_bytes(),
        }
    }
}

/// A refusal on CMP's wire: failInfo and a sentence.
#[derive(Debug, Clone)]
struct Refused(FailureInfo, String);

impl From<Refusal> for Refused {
    fn from(r: Refusal) -> Self {
        Refused(fail_info(r.reason), r.detail)
    }
}

impl From<CmpError> for Refused {
    fn from(e: CmpError) -> Self {
        Refused(e.failure_info(), e.to_string())
    }
}

fn internal(e: impl std::fmt::Display) -> Refused {
    tracing::error!(error = %e, "internal error");
    Refused(FailureInfo::SystemFailure, "internal error".into())
}

fn storage_refusal(e: StorageError) -> Refused {
    match e {
        StorageError::NotFound(m) => Refused(FailureInfo::BadRequest, m),
        StorageError::Conflict(m) => Refused(FailureInfo::TransactionIdInUse, m),
        other => internal(other),
    }
}

/// The core's refusal as a PKIFailureInfo (RFC 4210 §5.2.3), in one place.
pub fn fail_info(reason: RefusalReason) -> FailureInfo {
    match reason {
        RefusalReason::Unauthenticated | RefusalReason::BadCredential => FailureInfo::NotAuthorized,
        RefusalReason::CredentialRevoked => FailureInfo::CertRevoked,
        RefusalReason::CredentialExpired => FailureInfo::SignerNotTrusted,
        RefusalReason::TooEarly => FailureInfo::NotAuthorized,
        RefusalReason::NameNotAuthorised | RefusalReason::RenewalNamesDiffer => FailureInfo::BadCertTemplate,
        RefusalReason::KeyRefused => FailureInfo::BadAlg,
        RefusalReason::GrantRefused | RefusalReason::VerifierRefused | RefusalReason::OperatorRejected => {
            FailureInfo::NotAuthorized
        }
        // Only a proxy refuses these; CMP is not served in proxy mode.
        RefusalReason::UpstreamRefused => FailureInfo::BadRequest,
        RefusalReason::PollingWindowExceeded => FailureInfo::SystemUnavail,
        RefusalReason::Internal => FailureInfo::SystemFailure,
    }
}

/// How a verified request was protected, with what answering it needs.
enum Protection {
    /// MAC with the secret of this challenge.
    Mac {
        label: String,
        secret: SharedSecret,
        pbmac1: bool,
    },
    /// Signature by this certificate (and these extraCerts).
    Signature {
        signer: Box<Certificate>,
        chain: Vec<Vec<u8>>,
    },
}

impl Protection {
    fn requester(&self) -> Result<Requester, Refused> {
        Ok(match self {
            Protection::Mac { label, .. } => Requester::Mac(label.clone()),
            Protection::Signature { signer, .. } => Requester::Signer(signer.to_der().map_err(internal)?),
        })
    }

    fn describe(&self) -> String {
        match self {
            Protection::Mac { label, .. } => format!("mac:{label}"),
            Protection::Signature { signer, .. } => format!("signature:{}", signer.tbs_certificate.subject),
        }
    }
}

/// Unconfirmed certificates revoked per sweep at most (one a second).
const SWEEP_BATCH: usize = 256;

/// Seconds a stored confirmation deadline lies past the in-memory one.
const CONFIRM_GRACE_SECS: i64 = 2;

/// A certificate [`CmpService::revoke_unconfirmed`] is to revoke.
#[derive(Debug)]
struct Due {
    serial: String,
    /// transactionID (hex), when known.
    transaction_id: String,
    /// Why, for the log.
    why: &'static str,
}

/// Revocation reason of a certificate its requester rejected or never
/// confirmed: cessationOfOperation (RFC 5280 §5.3.1).
const REASON_NOT_CONFIRMED: u8 = 5;

/// The CMP server.
pub struct CmpService {
    s: CmpSetup,
    exchanges: Exchanges,
    /// Certificates to revoke at the next sweep (a revocation that failed,
    /// one issued but not delivered). Grows only while the database refuses
    /// revocations, by the certificates issued meanwhile.
    revoke_later: std::sync::Mutex<Vec<Due>>,
    metrics: Arc<Metrics>,
    key_gate: Arc<KeyGate>,
}

impl CmpService {
    /// The service.
    pub fn new(s: CmpSetup) -> Self {
        CmpService {
            s,
            exchanges: Exchanges::default(),
            revoke_later: std::sync::Mutex::new(Vec::new()),
            metrics: Arc::new(Metrics::new()),
            key_gate: Arc::new(KeyGate::unbounded()),
        }
    }

    /// Count issuances and consumed challenges into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Bound the requests doing private-key work at once (shared with SCEP and OCSP).
    pub fn with_key_gate(mut self, gate: Arc<KeyGate>) -> Self {
        self.key_gate = gate;
        self
    }

    /// The storage (for the operator commands).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.s.storage
    }

    /// Revoke (cessationOfOperation) every certificate whose certConf did
    /// not arrive within `confirm_wait`: its requester never accepted it
    /// (RFC 9483 §4.1.1: a missing certConf is handled like a rejection),
    /// so it is not left valid for whoever holds its key; and every one a
    /// rejecting certConf could not revoke at the time. `mef serve` calls
    /// this every second; a revocation the storage fails is kept and tried
    /// again at the next call. A certificate revoked meanwhile (by its
    /// holder's rr, by the operator) counts as done. Returns how many were
    /// revoked.
    pub fn revoke_unconfirmed(&self, now: SystemTime) -> usize {
        // The table's expired entries go; what to revoke is in storage.
        drop(self.exchanges.unconfirmed());
        let due: Vec<Due> = std::mem::take(&mut *self.revoke_later.lock().unwrap_or_else(|p| p.into_inner()));
        let mut revoked = 0;
        match self.s.storage.unconfirmed_due(ra::unix(now), SWEEP_BATCH) {
            Ok(rows) => {
                for (serial, transaction_id) in rows {
                    // Taken off the list and revoked in one database
                    // transaction, unless a certConf (or another mef)
                    // settled it meanwhile: exactly one of them goes on.
                    let why = "not confirmed (no certConf) within confirm_wait";
                    match self
                        .s
                        .storage
                        .revoke_unconfirmed(&serial, ra::unix(now), REASON_NOT_CONFIRMED)
                    {
                        Ok(None) => {}
                        Ok(Some(true)) => {
                            revoked += 1;
                            self.metrics.cmp_unconfirmed_revoked();
                            tracing::warn!(serial = %serial, transaction_id = %transaction_id, why, "CMP certificate revoked");
                        }
                        Ok(Some(false)) => {
                            tracing::info!(serial = %serial, transaction_id = %transaction_id, why, "CMP certificate to revoke was already revoked");
                        }
                        // Neither happened: the next sweep tries again.
                        Err(e) => {
                            tracing::error!(serial = %serial, error = %e, "cannot revoke an unconfirmed CMP certificate: retrying")
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the unconfirmed CMP certificates: retrying"),
        }
        for d in due {
            match self.s.storage.revoke(&d.serial, ra::unix(now), REASON_NOT_CONFIRMED) {
                Ok(()) => {
                    revoked += 1;
                    self.metrics.cmp_unconfirmed_revoked();
                    tracing::warn!(serial = %d.serial, transaction_id = %d.transaction_id, why = d.why, "CMP certificate revoked");
                    let _ = self.s.storage.confirmation_settled(&d.serial);
                }
                // Already revoked (or never recorded): nothing left to do.
                Err(StorageError::NotFound(_)) => {
                    tracing::info!(serial = %d.serial, transaction_id = %d.transaction_id, why = d.why, "CMP certificate to revoke was already revoked");
                    let _ = self.s.storage.confirmation_settled(&d.serial);
                }
                Err(e) => {
                    tracing::error!(serial = %d.serial, why = d.why, error = %e, "cannot revoke a CMP certificate: retrying");
                    self.revoke_later.lock().unwrap_or_else(|p| p.into_inner()).push(d);
                }
            }
        }
        revoked
    }

    /// Record that `serial` (transactionID `txid`, raw) waits for its
    /// certConf for `confirm_wait` from `now` (plus a grace second, so the
    /// in-memory transaction always ends first).
    fn await_confirmation(&self, serial: &str, txid: &[u8], now: SystemTime) -> Result<(), Refused> {
        self.s
            .storage
            .await_confirmation(serial, &hex::encode(txid), self.confirm_deadline(now))
            .map_err(storage_refusal)
    }

    /// `confirm_wait` from `now`, plus the grace seconds (Unix seconds).
    fn confirm_deadline(&self, now: SystemTime) -> i64 {
        ra::unix(now)
            .saturating_add(i64::try_from(self.s.confirm_wait.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(CONFIRM_GRACE_SECS)
    }

    /// Revoke `serial` at the next [`CmpService::revoke_unconfirmed`], for `why`.
    fn revoke_later(&self, serial: &str, why: &'static str) {
        self.revoke_later.lock().unwrap_or_else(|p| p.into_inner()).push(Due {
            serial: serial.to_owned(),
            transaction_id: String::new(),
            why,
        });
    }

    fn signing(&self, now: SystemTime) -> Responder<'_> {
        Responder {
            protect: Protect::Signature {
                signer: self.s.ra_key.as_signer(),
                certificate: &self.s.ra_cert,
                chain: &[],
                digest: DigestAlgorithm::Sha256,
            },
            sender: null_dn(),
            message_time: Some(now),
            limits: Default::default(),
            policy: Default::default(),
        }
    }

    /// Answer one CMP request (the body of a POST).
    pub fn handle(&self, body: &[u8], now: SystemTime) -> (CmpResponse, CmpOutcome) {
        let mut log = CmpOutcome::default();
        // Parsing, MAC derivation and the answer's signature are work for a
        // sender nobody has authenticated yet.
        let Some(_permit) = self.key_gate.enter() else {
            log.outcome = "503 private-key operations busy".into();
            log.result = "error";
            return (CmpResponse::text(503, "busy: retry later"), log);
        };
        let signing = self.signing(now);
        let received = match signing.parse(body) {
            Ok(r) => r,
            Err(e) => {
                log.outcome = format!("unparsed: {e}");
                return (
                    self.error(&ReplyTo::unparsed(&mut OsRng), Refused::from(e), &mut log, now),
                    log,
                );
            }
        };
        let to = received.reply_to();
        log.body = to.request_type.name();
        log.transaction_id = hex::encode(&to.transaction_id);
        let (verified, protection) = match self.verify(received, now) {
            Ok(v) => v,
            Err(r) => return (self.error(&to, r, &mut log, now), log),
        };
        log.protection = protection.describe();
        match self.dispatch(&verified, &protection, &mut log, now) {
            Ok(der) => (CmpResponse::message(der), log),
            Err(r) => (self.error(&to, r, &mut log, now), log),
        }
    }

    /// An error message signed by the RA key.
    fn error(&self, to: &ReplyTo, r: Refused, log: &mut CmpOutcome, now: SystemTime) -> CmpResponse {
        let Refused(fail, text) = r;
        if log.outcome.is_empty() {
            log.outcome = format!("error {fail:?}: {text}");
        }
        log.result = "error";
        match self.signing(now).error(to, fail, &text, &mut OsRng) {
            Ok((der, _)) => CmpResponse::message(der),
            Err(e) => {
                tracing::error!(error = %e, "cannot sign a CMP error");
                CmpResponse::text(500, "internal error")
            }
        }
    }

    /// Check the protection: a MAC with the secret of the CMP challenge
    /// its senderKID names, or a signature by its first extraCerts
    /// certificate (whose trust is the core's to decide).
    fn verify(&self, received: Received, now: SystemTime) -> Result<(VerifiedRequest, Protection), Refused> {
        match received.claimed().clone() {
            Claimed::Mac { algorithm, sender_kid } => {
                let label = sender_kid
                    .as_deref()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Refused(
                            FailureInfo::BadMessageCheck,
                            "MAC protection without a senderKID".into(),
                        )
                    })?;
                // The MAC's key derivation is the costly step an anonymous
                // sender can ask for: it is done only for a secret that can
                // still be used. A request opening a transaction needs a
                // usable challenge; certConf and pollReq, a transaction this
                // label opened. Unknown, spent and wrong look alike outside.
                let usable = |secret: &SharedSecret| -> Result<bool, Refused> {
                    let body = received.reply_to();
                    Ok(match body.request_type {
                        BodyType::CertConf | BodyType::PollReq => self
                            .exchanges
                            .is_open_for(&body.transaction_id, &Requester::Mac(label.clone())),
                        _ => match std::str::from_utf8(secret.expose()) {
                            Ok(text) => matches!(
                                self.s.auth.check_challenge(text, now)?,
                                Some(ra::ChallengeMatch::OneTime { label: ref l, .. }) if *l == label
                            ),
                            Err(_) => false,
                        },
                    })
                };
                let secret = match self
                    .s
                    .secrets
                    .secret(self.s.storage.as_ref(), &label)
                    .map_err(internal)?
                {
                    Some(secret) if usable(&secret)? => secret,
                    found => {
                        tracing::info!(
                            label,
                            known = found.is_some(),
                            "CMP MAC: no usable challenge for this senderKID; nothing derived"
                        );
                        return Err(Refused::from(enrolkit_cmp::CmpError::BadProtection));
                    }
                };
                let pbmac1 = matches!(algorithm, MacAlgorithm::Pbmac1 { .. });
                let v = received.verify_mac(&secret)?;
                Ok((v, Protection::Mac { label, secret, pbmac1 }))
            }
            Claimed::Signature { .. } => {
                let v = received.verify_signature()?;
                let Verified::Signature { signer, extra_certs } = &v.protection else {
                    return Err(internal("a signature verified as something else"));
                };
                let mut chain = vec![signer.to_der().map_err(internal)?];
                for c in extra_certs {
                    chain.push(c.to_der().map_err(internal)?);
                }
                let signer = signer.clone();
                Ok((v, Protection::Signature { signer, chain }))
            }
            Claimed::None => Err(Refused(
                FailureInfo::BadMessageCheck,
                "unprotected request: protect it with a MAC or a signature".into(),
            )),
        }
    }

    /// The responder for an answer to a request protected by `p`.
    fn answering<'a>(&'a self, p: &'a Protection, now: SystemTime) -> Responder<'a> {
        match p {
            Protection::Mac {
                label, secret, pbmac1, ..
            } => Responder {
                protect: Protect::Mac {
                    secret,
                    algorithm: if *pbmac1 {
                        MacAlgorithm::pbmac1(&mut OsRng)
                    } else {
                        MacAlgorithm::password_based_mac(&mut OsRng)
                    },
                    sender_kid: label.as_bytes().to_vec(),
                },
                sender: GeneralNameOf::directory(&self.s.ra_cert),
                message_time: Some(now),
                limits: Default::default(),
                policy: Default::default(),
            },
            Protection::Signature { .. } => self.signing(now),
        }
    }

    fn dispatch(
        &self,
        v: &VerifiedRequest,
        p: &Protection,
        log: &mut CmpOutcome,
        now: SystemTime,
    ) -> Result<Vec<u8>, Refused> {
        let to = v.reply_to();
        let responder = self.answering(p, now);
        match &v.request {
            Request::Certificate {
                kind,
                cert_req_id,
                msg,
                old_cert_id,
                pop,
                ..
            } => {
                let origin = to.request_type;
                if let (CertRequestKind::Kur, Protection::Signature { signer, .. }, Some(id)) = (kind, p, old_cert_id) {
                    if !enrolkit_cmp::request::cert_id_matches(id, signer) {
                        return Err(Refused(
                            FailureInfo::BadCertId,
                            "kur: oldCertID is not the certificate that signed the request".into(),
                        ));
                    }
                }
                let mut asked = Asked::template(msg, *kind, p)?;
                asked.ra_verified = matches!(pop, enrolkit_cmp::pop::PopKind::RaVerified);
                self.certificate(v, p, &responder, origin, *cert_req_id, &asked, log, now)
            }
            Request::P10cr(csr) => {
                let asked = Asked::csr(csr);
                self.certificate(v, p, &responder, BodyType::P10cr, -1, &asked, log, now)
            }
            Request::Revocation(d) => self.revoke(d, p, &responder, &to, log, now),
            Request::General(g) => {
                let answers = g.iter().filter_map(|r| self.general(r)).collect::<Vec<_>>();
                log.outcome = format!("genp with {} answers", answers.len());
                log.result = "accepted";
                Ok(responder.general_response(&to, &answers, &mut OsRng)?.0)
            }
            Request::CertConf(statuses) => self.confirm(v, p, statuses, &responder, log),
            Request::Poll(id) => self.poll(v, p, *id, &responder, log),
        }
    }

    fn general(&self, r: &GenRequest) -> Option<GenResponse> {
        match r {
            GenRequest::CaCerts => {
                let mut certs = vec![self.s.ca.certificate.clone()];
                certs.extend(self.s.ca.chain.iter().cloned());
                Some(GenResponse::CaCerts(certs))
            }
            GenRequest::RootCaUpdate(_) => Some(GenResponse::RootCaKeyUpdate(self.s.next_ca.clone().map(|c| {
                Box::new(RootCaKeyUpdateContent {
                    new_with_new: c,
                    new_with_old: None,
                    old_with_new: None,
                })
            }))),
            // We impose no template beyond the naming rules: "no template" (RFC 9483 §4.3.3).
            GenRequest::CertReqTemplate => Some(GenResponse::CertReqTemplate(None)),
            // RFC 4210 §5.3.19: what the server does not know it leaves out.
            GenRequest::Other(_) => None,
        }
    }

    /// The credentials a certificate request carries.
    fn credentials<'a>(p: &'a Protection, secret_text: Option<&'a str>) -> Vec<Credential<'a>> {
        match p {
            Protection::Mac { .. } => secret_text.map(Credential::ChallengePassword).into_iter().collect(),
            Protection::Signature { signer, chain } => vec![Credential::Certificate {
                cert: signer,
                chain,
                tls_verified: false,
            }],
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn certificate(
        &self,
        v: &VerifiedRequest,
        p: &Protection,
        responder: &Responder<'_>,
        origin: BodyType,
        cert_req_id: i64,
        asked: &Asked,
        log: &mut CmpOutcome,
        now: SystemTime,
    ) -> Result<Vec<u8>, Refused> {
        let mut to = v.reply_to();
        // The transaction's place is taken before anything is decided,
        // issued or consumed: a request that could not be followed up
        // (full table, a requester holding too many, a transactionID
        // another request is using) costs no certificate and no challenge.
        let reservation = self
            .exchanges
            .reserve(to.transaction_id.clone(), p.requester()?)
            .map_err(|e| match e {
                ReserveError::InUse => Refused(
                    FailureInfo::TransactionIdInUse,
                    "transactionID in use: a new request needs a new transaction".into(),
                ),
                ReserveError::Full => Refused(FailureInfo::SystemUnavail, "too many open transactions".into()),
                ReserveError::RequesterBusy => Refused(
                    FailureInfo::SystemUnavail,
                    format!(
                        "this credential has {PER_REQUESTER} transactions waiting for certConf or pollReq: \
                         finish them first"
                    ),
                ),
            })?;
        if asked.ra_verified && !matches!(p, Protection::Signature { .. }) {
            return Err(ra_verified_refused());
        }
        let secret_text = match p {
            Protection::Mac { secret, .. } => Some(
                std::str::from_utf8(secret.expose())
                    .map_err(|_| Refused(FailureInfo::NotAuthorized, "the CMP secret is not text".into()))?,
            ),
            Protection::Signature { .. } => None,
        };
        let txid = format!("cmp-{}", hex::encode(&to.transaction_id));
        let renew = origin == BodyType::Kur;
        if renew && !matches!(p, Protection::Signature { .. }) {
            return Err(Refused(
                FailureInfo::NotAuthorized,
                "kur is authenticated by the certificate it updates (signature protection)".into(),
            ));
        }
        let view = asked.view();
        let req = AuthRequest {
            protocol: Protocol::Cmp,
            intent: if renew { Intent::Renew } else { Intent::Enrol },
            csr: view.clone(),
            credentials: Self::credentials(p, secret_text),
            transaction: &txid,
        };
        let auth = self.s.auth.decide(&req, now)?;
        // raVerified (RFC 4211 §4.1) is an RA's word that it checked the
        // key's possession: taken only from an RA we trust (RA-POP).
        if asked.ra_verified && !matches!(auth.basis, ra::Basis::RegistrationAuthority(_)) {
            return Err(ra_verified_refused());
        }
        tracing::info!(txid, basis = %auth.basis, "authorised");
        log.outcome = format!("basis={}", auth.basis);
        let key_id = key_id(view.public_key)?;
        let mut tx = Transaction {
            transaction_id: txid.clone(),
            key_id: key_id.clone(),
            subject: auth.names.subject.to_string(),
            // A CMP transaction keeps the key to certify (SubjectPublicKeyInfo,
            // DER) where SCEP and EST keep the CSR: what approval issues for.
            csr: view.public_key.to_der().map_err(internal)?,
            state: TxState::Pending,
            created: ra::unix(now),
        };
        let requester = p.requester()?;
        if auth.hold {
            let names = self.s.held_names.seal(&tx, &auth.names).map_err(internal)?;
            self.s
                .storage
                .record_held(&tx, auth.consume.as_deref(), &names, ra::unix(now))
                .map_err(storage_refusal)?;
            if auth.consume.is_some() {
                self.metrics.challenge_consumed(metrics::Protocol::Cmp);
            }
            let (der, exchange) = responder.certificate_response(
                &to,
                cert_req_id,
                CertificateOutcome::Waiting(Some("held for an operator's approval; poll".into())),
                &mut OsRng,
            )?;
            reservation.fill(Open::new(
                exchange,
                origin,
                cert_req_id,
                requester,
                Stage::Held { key_id },
                self.s.confirm_wait,
            ));
            log.result = "waiting";
            return Ok(der);
        }
        let cert = self.issue(view.public_key, &auth.names, now)?;
        let issued = IssuedCert::from_certificate(&cert).map_err(internal)?;
        if !(v.implicit_confirm && self.s.grant_implicit_confirm) {
            // Its revocation, should no certConf come, is recorded before
            // the certificate is: no moment where it could be left valid.
            self.await_confirmation(&issued.serial, &to.transaction_id, SystemTime::now())?;
        }
        tx.state = TxState::Issued(issued.serial.clone());
        self.s
            .storage
            .record(&tx, auth.consume.as_deref(), Some(&issued), ra::unix(now))
            .map_err(|e| {
                // Not recorded, not sent: nothing waits for it.
                let _ = self.s.storage.confirmation_settled(&issued.serial);
                storage_refusal(e)
            })?;
        self.metrics.certificate_issued(metrics::Protocol::Cmp);
        if auth.consume.is_some() {
            self.metrics.challenge_consumed(metrics::Protocol::Cmp);
        }
        log.outcome = format!("{} issued {}", log.outcome, issued.serial);
        log.result = "accepted";
        to.origin = Some(origin);
        let serial = issued.serial.clone();
        let (der, open) = self
            .deliver(
                v.implicit_confirm,
                &to,
                origin,
                cert_req_id,
                cert,
                issued.serial,
                requester,
                responder,
            )
            .inspect_err(|_| {
                // Issued and recorded but never sent: not left valid.
                self.revoke_later(&serial, "issued but its answer failed");
            })?;
        if let Some(open) = open {
            reservation.fill(open);
        }
        Ok(der)
    }

    /// The ip/cp/kup carrying `cert`, and the transaction to keep open
    /// for its certConf (none when implicit confirmation is granted).
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        implicit_asked: bool,
        to: &ReplyTo,
        origin: BodyType,
        cert_req_id: i64,
        cert: Certificate,
        serial: String,
        requester: Requester,
        responder: &Responder<'_>,
    ) -> Result<(Vec<u8>, Option<Open>), Refused> {
        let implicit = implicit_asked && self.s.grant_implicit_confirm;
        let mut chain = vec![self.s.ca.certificate.clone()];
        chain.extend(self.s.ca.chain.iter().cloned());
        // caPubs: the root the new certificate chains to (RFC 9483 §4.1.1).
        let root = chain.last().cloned().into_iter().collect();
        let (der, exchange) = responder.certificate_response(
            to,
            cert_req_id,
            CertificateOutcome::Issued {
                certificate: Box::new(cert.clone()),
                ca_pubs: root,
                chain: &chain,
                implicit_confirm: implicit,
            },
            &mut OsRng,
        )?;
        let open = (!implicit).then(|| {
            Open::new(
                exchange,
                origin,
                cert_req_id,
                requester,
                Stage::Confirm {
                    certificate: Box::new(cert),
                    serial,
                },
                self.s.confirm_wait,
            )
        });
        Ok((der, open))
    }

    fn issue(
        &self,
        key: &spki::SubjectPublicKeyInfoOwned,
        names: &IssueNames,
        now: SystemTime,
    ) -> Result<Certificate, Refused> {
        let r = enrolkit_pki::Request {
            subject: names.subject.clone(),
            public_key: key.clone(),
            dns_names: names.dns.clone(),
            ip_addresses: names.ips.clone(),
        };
        self.s
            .ca
            .issue(&r, &self.s.profile, now, &mut OsRng)
            .map_err(|e| Refused(FailureInfo::BadCertTemplate, e.to_string()))
    }

    /// The open transaction of a follow-up (certConf, pollReq), checked
    /// before it is taken out of the table: same transactionID, recipNonce
    /// our last senderNonce, same protection, and whatever `body` checks of
    /// the follow-up's content. A follow-up that fails any check leaves the
    /// transaction as it was: a forged or malformed certConf neither ends
    /// the genuine client's transaction nor saves its certificate from
    /// revocation when confirm_wait ends.
    fn follow_up(
        &self,
        v: &VerifiedRequest,
        p: &Protection,
        body: impl FnOnce(&Open) -> Result<(), Refused>,
    ) -> Result<Open, Refused> {
        let to = v.reply_to();
        let requester = p.requester()?;
        let taken = self.exchanges.take_matching(&to.transaction_id, |open| {
            open.exchange.check_answer(&v.message.header).map_err(Refused::from)?;
            if requester != open.requester {
                return Err(Refused(
                    FailureInfo::NotAuthorized,
                    "protected by another credential than the request".into(),
                ));
            }
            body(open)
        })?;
        taken.ok_or_else(|| {
            Refused(
                FailureInfo::BadRequest,
                "no open transaction with this transactionID (unknown, finished or timed out)".into(),
            )
        })
    }

    fn confirm(
        &self,
        v: &VerifiedRequest,
        p: &Protection,
        statuses: &[CertStatus],
        responder: &Responder<'_>,
        log: &mut CmpOutcome,
    ) -> Result<Vec<u8>, Refused> {
        let open = self.follow_up(v, p, |open| {
            let Stage::Confirm { certificate, .. } = &open.stage else {
                return Err(Refused(
                    FailureInfo::BadRequest,
                    "certConf before the certificate was sent".into(),
                ));
            };
            let [status] = statuses else {
                return Err(Refused(
                    FailureInfo::BadRequest,
                    "certConf with other than one CertStatus".into(),
                ));
            };
            if status.id()? != open.cert_req_id || !status.matches(certificate)? {
                return Err(Refused(
                    FailureInfo::BadCertId,
                    "certConf does not name the certificate sent (certReqId, certHash)".into(),
                ));
            }
            Ok(())
        })?;
        let (Stage::Confirm { serial, .. }, [status]) = (&open.stage, statuses) else {
            // Checked by follow_up.
            return Err(internal("certConf checked but not for a certificate"));
        };
        if status.accepted() {
            // Taken off the revocation list, unless the sweep took it first
            // (confirm_wait passed meanwhile: it is being revoked).
            match self.s.storage.confirmation_settled(serial) {
                Ok(true) => log.outcome = format!("confirmed {serial}"),
                Ok(false) => {
                    return Err(Refused(
                        FailureInfo::BadRequest,
                        "certConf too late: confirm_wait passed and the certificate is revoked".into(),
                    ))
                }
                Err(e) => {
                    // The client may send its certConf again.
                    let _ = self.exchanges.restore(v.reply_to().transaction_id, open.clone());
                    return Err(storage_refusal(e));
                }
            }
        } else {
            // RFC 4210 §5.3.18: the client rejects the certificate; it is revoked.
            match self
                .s
                .storage
                .revoke(serial, ra::unix(SystemTime::now()), REASON_NOT_CONFIRMED)
            {
                Ok(()) | Err(StorageError::NotFound(_)) => {
                    let _ = self.s.storage.confirmation_settled(serial);
                    log.outcome = format!("rejected by the client: {serial} revoked");
                }
                Err(e) => {
                    // Revoked later by revoke_unconfirmed, whatever the client does now.
                    self.revoke_later(serial, "rejected by its certConf");
                    return Err(internal(e));
                }
            }
        }
        log.result = "accepted";
        let mut to = v.reply_to();
        to.origin = Some(open.origin);
        Ok(responder.pki_conf(&to, &mut OsRng)?.0)
    }

    fn poll(
        &self,
        v: &VerifiedRequest,
        p: &Protection,
        id: i64,
        responder: &Responder<'_>,
        log: &mut CmpOutcome,
    ) -> Result<Vec<u8>, Refused> {
        // Checked before the transaction is taken: a pollReq for a
        // certificate awaiting certConf, or for another certReqId, leaves it.
        let open = self.follow_up(v, p, |open| {
            if !matches!(open.stage, Stage::Held { .. }) {
                return Err(Refused(
                    FailureInfo::BadRequest,
                    "pollReq for a transaction that is not waiting".into(),
                ));
            }
            if id != open.cert_req_id {
                return Err(Refused(FailureInfo::BadCertId, "pollReq for another certReqId".into()));
            }
            Ok(())
        })?;
        let Stage::Held { key_id } = &open.stage else {
            return Err(internal("pollReq checked but not for a held request"));
        };
        let mut to = v.reply_to();
        to.origin = Some(open.origin);
        let txid = format!("cmp-{}", hex::encode(&to.transaction_id));
        let tx = match self.s.storage.transaction(&txid, key_id) {
            Ok(Some(tx)) => tx,
            Ok(None) => return Err(internal(format!("held transaction {txid} missing"))),
            Err(e) => {
                // The client may poll again.
                let _ = self.exchanges.restore(to.transaction_id.clone(), open.clone());
                return Err(storage_refusal(e));
            }
        };
        match &tx.state {
            TxState::Pending => {
                let (der, exchange) = responder.poll_response(
                    &to,
                    id,
                    self.s.check_after.as_secs(),
                    Some("waiting for an operator"),
                    &mut OsRng,
                )?;
                let again = Open::new(
                    exchange,
                    open.origin,
                    id,
                    open.requester,
                    open.stage,
                    self.s.confirm_wait,
                );
                if !self.exchanges.restore(to.transaction_id.clone(), again) {
                    return Err(Refused(FailureInfo::SystemUnavail, "too many open transactions".into()));
                }
                log.outcome = "still held".into();
                log.result = "waiting";
                Ok(der)
            }
            TxState::Rejected(reason, why) => Err(Refused(fail_info(*reason), why.clone())),
            TxState::Issued(serial) => {
                let rec = match self.s.storage.certificate(serial) {
                    Ok(Some(rec)) => rec,
                    Ok(None) => return Err(internal(format!("issued certificate {serial} missing"))),
                    Err(e) => {
                        // The client may poll again.
                        let _ = self.exchanges.restore(to.transaction_id.clone(), open.clone());
                        return Err(storage_refusal(e));
                    }
                };
                if rec.revoked_at.is_some() {
                    return Err(Refused(
                        FailureInfo::CertRevoked,
                        "the approved certificate was revoked (not collected and confirmed in time)".into(),
                    ));
                }
                let cert = <Certificate as der::Decode>::from_der(&rec.der)
                    .map_err(internal)
                    .inspect_err(|_| self.revoke_later(serial, "approved but not deliverable"))?;
                let implicit = v.implicit_confirm && self.s.grant_implicit_confirm;
                // Before anything is sent: final now (implicit confirmation),
                // or confirm_wait from now — unless the sweep took it already.
                let waiting = if implicit {
                    self.s.storage.confirmation_settled(serial)
                } else {
                    self.s
                        .storage
                        .extend_confirmation(serial, self.confirm_deadline(SystemTime::now()))
                };
                match waiting {
                    Ok(true) => {}
                    Ok(false) => {
                        // Claimed by the sweep (being revoked), or approved
                        // by a build that kept no confirmation record:
                        // either way it is not left valid uncollected.
                        self.revoke_later(serial, "approved, not collected in time");
                        return Err(Refused(
                            FailureInfo::CertRevoked,
                            "the approved certificate was not collected in time and is being revoked".into(),
                        ));
                    }
                    Err(e) => {
                        // The client may poll again.
                        let _ = self.exchanges.restore(to.transaction_id.clone(), open.clone());
                        return Err(storage_refusal(e));
                    }
                }
                log.outcome = format!("approved: {serial}");
                log.result = "accepted";
                let (der, next) = self
                    .deliver(
                        v.implicit_confirm,
                        &to,
                        open.origin,
                        id,
                        cert,
                        serial.clone(),
                        open.requester,
                        responder,
                    )
                    .inspect_err(|_| self.revoke_later(serial, "approved but its answer failed"))?;
                if let Some(next) = next {
                    if !self.exchanges.restore(to.transaction_id.clone(), next) {
                        // Not delivered and not tracked for its certConf:
                        // it must not stay valid unconfirmed.
                        self.revoke_later(serial, "approved but its certConf could not be awaited");
                        return Err(Refused(FailureInfo::SystemUnavail, "too many open transactions".into()));
                    }
                }
                Ok(der)
            }
        }
    }

    /// rr: revocation by the certificate's holder, who signs the request
    /// with it (RFC 9483 §4.2).
    fn revoke(
        &self,
        d: &RevDetails,
        p: &Protection,
        responder: &Responder<'_>,
        to: &ReplyTo,
        log: &mut CmpOutcome,
        now: SystemTime,
    ) -> Result<Vec<u8>, Refused> {
        let Protection::Signature { signer, .. } = p else {
            return Err(Refused(
                FailureInfo::NotAuthorized,
                "rr is signed by the certificate to revoke".into(),
            ));
        };
        let (issuer, serial) = d.target()?;
        if *issuer != signer.tbs_certificate.issuer || *serial != signer.tbs_certificate.serial_number {
            return Err(Refused(
                FailureInfo::NotAuthorized,
                "a certificate is revoked only by its holder: sign the rr with it".into(),
            ));
        }
        let rec = match self.s.auth.standing(signer, now)? {
            Standing::Ours(rec) => rec,
            Standing::Foreign => {
                return Err(Refused(
                    FailureInfo::BadCertId,
                    "the certificate was not issued by this CA".into(),
                ))
            }
        };
        let reason = d.reason()?.map_or(0, |r| r as u8);
        // A holder states why it gives the certificate up; removeFromCRL
        // (8) would un-revoke it for CRL users, certificateHold (6) and the
        // CA's own reasons are not the holder's to choose (RFC 5280 §5.3.1).
        if !HOLDER_REVOCATION_REASONS.contains(&reason) {
            return Err(Refused(
                FailureInfo::BadRequest,
                format!(
                    "revocation reason {reason} is not one a holder may give \
                     (unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn)"
                ),
            ));
        }
        self.s
            .storage
            .revoke(&rec.serial, ra::unix(now), reason)
            .map_err(storage_refusal)?;
        log.outcome = format!("revoked {} (reason {reason})", rec.serial);
        log.result = "accepted";
        Ok(responder
            .revocation_response(to, PkiStatusInfo::accepted(), &mut OsRng)?
            .0)
    }

    /// Operator approves a held CMP request: the certificate is issued on
    /// the names decided when it was held; the client collects it by pollReq.
    pub fn approve(&self, txid: &str, key_id: &str, now: SystemTime) -> Result<String, String> {
        crate::scep::issue_approved(self.s.storage.as_ref(), txid, key_id, now, |tx| {
            let (key, names) = self.held(tx)?;
            let cert = self.issue(&key, &names, now).map_err(|Refused(_, m)| m)?;
            // Collected by pollReq and confirmed within confirm_wait, or revoked.
            let serial = crate::ra::serial_hex(&cert);
            let wire_txid = hex::decode(tx.transaction_id.trim_start_matches("cmp-")).unwrap_or_default();
            self.await_confirmation(&serial, &wire_txid, now)
                .map_err(|Refused(_, m)| m)?;
            Ok(cert)
        })
    }

    /// What approving the held `tx` would issue, for `mef scep pending list`.
    pub fn pending_terms(&self, tx: &Transaction) -> Result<String, String> {
        let (key, names) = self.held(tx)?;
        let kind = ra::keys::key_type(&key)
            .map(|k| k.to_string())
            .unwrap_or_else(|r| r.detail);
        Ok(names.describe(&self.s.profile.extended_key_usage, &kind))
    }

    fn held(&self, tx: &Transaction) -> Result<(spki::SubjectPublicKeyInfoOwned, IssueNames), String> {
        let key = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&tx.csr)
            .map_err(|e| format!("stored key: {e}"))?;
        // The transaction's key id is the hash of the key it was decided
        // for: a stored key changed since is not issued for.
        if key_id(&key).map_err(|Refused(_, m)| m)? != tx.key_id {
            return Err(format!(
                "{}: the stored key does not match its key id",
                tx.transaction_id
            ));
        }
        let terms = self
            .s
            .storage
            .held_terms(&tx.transaction_id, &tx.key_id)
            .map_err(|e| e.to_string())?
            .ok_or("no terms were recorded with this request")?;
        Ok((key, self.s.held_names.open(tx, &terms)?))
    }
}

/// Revocation reasons a holder may give in an rr (RFC 5280 §5.3.1):
/// unspecified, keyCompromise, affiliationChanged, superseded,
/// cessationOfOperation, privilegeWithdrawn.
const HOLDER_REVOCATION_REASONS: [u8; 6] = [0, 1, 3, 4, 5, 9];

/// The refusal of a raVerified POP from anyone but a trusted RA.
fn ra_verified_refused() -> Refused {
    Refused(
        FailureInfo::BadPop,
        "raVerified proof of possession is accepted only from a configured RA: sign the request with the key".into(),
    )
}

/// The key id of a CMP transaction: SHA-256 of the SubjectPublicKeyInfo, hex.
fn key_id(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<String, Refused> {
    Ok(hex::encode(
        DigestAlgorithm::Sha256.digest(&spki.to_der().map_err(internal)?),
    ))
}

/// The sender of a MAC-protected answer: the responder's name.
struct GeneralNameOf;

impl GeneralNameOf {
    fn directory(c: &Certificate) -> x509_cert::ext::pkix::name::GeneralName {
        x509_cert::ext::pkix::name::GeneralName::DirectoryName(c.tbs_certificate.subject.clone())
    }
}

/// What a certificate request asks for, as the core reads it.
struct Asked {
    der: Vec<u8>,
    subject: x509_cert::name::Name,
    public_key: spki::SubjectPublicKeyInfoOwned,
    dns: Vec<String>,
    ips: Vec<std::net::IpAddr>,
    san_der: Option<Vec<u8>>,
    /// The template's or CSR's extensions.
    extensions: Vec<x509_cert::ext::Extension>,
    /// The POP is raVerified (an RA vouches), not the key's own signature.
    ra_verified: bool,
}

impl Asked {
    /// From an ir/cr/kur CertTemplate (proof of possession already
    /// checked). A kur without a subject asks for the names of the
    /// certificate it updates (RFC 4211 §5: absent fields are the CA's to fill).
    fn template(msg: &CertReqMsg, kind: CertRequestKind, p: &Protection) -> Result<Self, Refused> {
        let t = &msg.cert_req.cert_template;
        let public_key = enrolkit_cmp::pop::template_key(msg)?.clone();
        let old = match (kind, p) {
            (CertRequestKind::Kur, Protection::Signature { signer, .. }) => Some(signer),
            _ => None,
        };
        let (subject, extensions) = match (&t.subject, old) {
            (Some(s), _) => (s.clone(), t.extensions.clone().unwrap_or_default()),
            (None, Some(o)) => (
                o.tbs_certificate.subject.clone(),
                o.tbs_certificate.extensions.clone().unwrap_or_default(),
            ),
            (None, None) => {
                return Err(Refused(
                    FailureInfo::BadCertTemplate,
                    "the certificate template has no subject".into(),
                ))
            }
        };
        let san_der = extensions
            .iter()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
            .map(|e| e.extn_value.as_bytes().to_vec());
        let (dns, ips) = ra::names::extension_sans(&extensions);
        Ok(Asked {
            der: msg.to_der().map_err(internal)?,
            subject,
            public_key,
            dns,
            ips,
            san_der,
            extensions,
            ra_verified: false,
        })
    }

    /// From a p10cr's CSR (its signature verified by the parser).
    fn csr(csr: &CertificationRequest) -> Self {
        Asked {
            der: csr.der().to_vec(),
            subject: csr.subject().clone(),
            public_key: csr.public_key().clone(),
            dns: csr.dns_names(),
            ips: csr.ip_addresses(),
            san_der: csr.subject_alt_name_der().map(<[u8]>::to_vec),
            extensions: csr.extensions().to_vec(),
            ra_verified: false,
        }
    }

    fn view(&self) -> CsrView<'_> {
        CsrView {
            der: &self.der,
            subject: &self.subject,
            public_key: &self.public_key,
            dns: self.dns.clone(),
            ips: self.ips.clone(),
            san_der: self.san_der.as_deref(),
            extensions: &self.extensions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmp_paths_and_labels() {
        assert_eq!(path_label("/.well-known/cmp"), Some(""));
        assert_eq!(path_label("/.well-known/cmp/p/bts"), Some("bts"));
        assert_eq!(path_label("/.well-known/cmp/p/"), None);
        assert_eq!(path_label("/.well-known/cmp/p/a/b"), None);
        assert_eq!(path_label("/.well-known/cmpx"), None);
        assert_eq!(path_label(&format!("/.well-known/cmp/p/{}", "a".repeat(65))), None);
    }

    #[test]
    fn every_refusal_has_a_failure_info() {
        assert_eq!(fail_info(RefusalReason::BadCredential), FailureInfo::NotAuthorized);
        assert_eq!(
            fail_info(RefusalReason::RenewalNamesDiffer),
            FailureInfo::BadCertTemplate
        );
        assert_eq!(fail_info(RefusalReason::CredentialRevoked), FailureInfo::CertRevoked);
        assert_eq!(fail_info(RefusalReason::KeyRefused), FailureInfo::BadAlg);
        assert_eq!(fail_info(RefusalReason::Internal), FailureInfo::SystemFailure);
    }
}
