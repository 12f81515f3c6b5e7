//! The SCEP responder: an RA in front of the local CA. Transport-neutral
//! core (`handle` takes a parsed HTTP request, returns status, type and
//! body); [`crate::http`] puts it on hyper.

use crate::keygate::KeyGate;
use crate::metrics::{self, Metrics};
use crate::ra::Refusal as CoreRefusal;
use crate::ra::{self, AuthRequest, Authorisation, Authoriser, Credential, CsrView, Intent, IssueNames, Protocol};
use crate::storage::{IssuedCert, Storage, StorageError, Transaction, TxState};
use der::{Decode, Encode};
use enrolkit_keys::{DigestAlgorithm, PrivateKey};
use enrolkit_pki::{Authority, Profile, Revocation};
use enrolkit_pkix::pkcs10::CertificationRequest;
use enrolkit_scep::transport::{self, Operation, CONTENT_TYPE_CAPS, CONTENT_TYPE_PKI_MESSAGE};
use enrolkit_scep::{
    CaCertificates, Capabilities, Capability, ContentEncryption, FailInfo, MessageType, Outcome, PkiMessage, PkiStatus,
    Query, RawCertificate, RejectionKey, ReplyTo, Request, RequestBody, Responder, ScepError,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::ra::{unix, Policy};

/// Which content encryptions the responder accepts. A request in any other
/// cipher is refused with badAlg; GetCACaps advertises `AES` and `DES3`
/// accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ciphers {
    /// AES-128/192/256-CBC.
    pub aes: bool,
    /// DES-EDE3-CBC, for legacy clients.
    pub des3: bool,
    /// Single DES-CBC: broken, off by default; micromdm `scepclient` 2.1.0
    /// uses nothing else, whatever GetCACaps says.
    pub des: bool,
}

impl Default for Ciphers {
    fn default() -> Self {
        Ciphers {
            aes: true,
            des3: true,
            des: false,
        }
    }
}

impl Ciphers {
    /// Whether requests in `c` are accepted.
    pub fn allows(&self, c: ContentEncryption) -> bool {
        match c {
            ContentEncryption::Aes128Cbc | ContentEncryption::Aes192Cbc | ContentEncryption::Aes256Cbc => self.aes,
            ContentEncryption::DesEde3Cbc => self.des3,
            ContentEncryption::DesCbc => self.des,
        }
    }
}

/// A request as the transport saw it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    /// `true` for POST, `false` for GET.
    pub post: bool,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The body (POST).
    pub body: &'a [u8],
}

/// The answer, for the transport to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn text(status: u16, msg: impl Into<String>) -> Self {
        let mut body = msg.into().into_bytes();
        body.push(b'\n');
        HttpResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }
}

/// What a request did, for the log line.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    /// SCEP operation.
    pub operation: String,
    /// messageType, for PKIOperation.
    pub message_type: String,
    /// transactionID, for PKIOperation.
    pub transaction_id: String,
    /// Content encryption and digest the requester chose, for PKIOperation.
    pub algorithms: String,
    /// What happened.
    pub outcome: String,
    /// The pkiStatus of a PKIOperation's reply (for the metrics).
    pub pki_status: Option<PkiStatus>,
    /// Its failInfo, when it failed.
    pub fail_info: Option<FailInfo>,
}

/// Issuance failure and its SCEP reason.
struct Refusal(FailInfo, String);

impl Refusal {
    /// The FAILURE reply that carries this refusal.
    fn into_outcome(self) -> Outcome {
        Outcome::Failure {
            fail_info: self.0,
            text: Some(self.1),
        }
    }
}

/// Digests of PKCSReq/RenewalReq messages whose transaction holds the
/// request they carry: the same bytes again are a retransmission, answered
/// from storage without decrypting. Bounded (oldest forgotten first); after
/// a restart a retransmission is decrypted once and then known again.
#[derive(Default)]
struct SeenRequests {
    digests: std::collections::HashSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl SeenRequests {
    /// Requests remembered at most.
    const CAPACITY: usize = 16_384;

    fn contains(&self, d: &[u8; 32]) -> bool {
        self.digests.contains(d)
    }

    fn insert(&mut self, d: [u8; 32]) {
        if self.digests.insert(d) {
            self.order.push_back(d);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.digests.remove(&old);
                }
            }
        }
    }
}

/// The responder.
pub struct ScepService {
    ca: Arc<Authority>,
    ra_cert: Certificate,
    ra_key: Arc<dyn PrivateKey>,
    rejection: RejectionKey,
    /// Seals the names held requests are to be issued with.
    held_names: crate::held::HeldNamesSeal,
    auth: Authoriser,
    ciphers: Ciphers,
    storage: Arc<dyn Storage>,
    profile: Profile,
    crl_validity: Duration,
    caps: Capabilities,
    next_ca: Option<Certificate>,
    crl: std::sync::Mutex<Option<Arc<SignedCrl>>>,
    metrics: Arc<Metrics>,
    certrep_chain: bool,
    key_gate: Arc<KeyGate>,
    seen: std::sync::Mutex<SeenRequests>,
}

/// A CRL as signed, with what it was made from so that it is re-signed only
/// when that changes or half its validity has passed.
#[derive(Debug)]
pub struct SignedCrl {
    /// The CRL.
    pub crl: x509_cert::crl::CertificateList,
    /// Its DER encoding (served at `/crl`).
    pub der: Vec<u8>,
    /// thisUpdate.
    pub this_update: SystemTime,
    /// cRLNumber.
    pub number: u64,
    revoked: Vec<(String, i64, Option<u8>)>,
}

/// The CRLReason for a stored reason code (RFC 5280 §5.3.1; 7 is unused).
fn crl_reason(code: u8) -> Option<x509_cert::ext::pkix::crl::CrlReason> {
    use x509_cert::ext::pkix::crl::CrlReason as R;
    Some(match code {
        0 => R::Unspecified,
        1 => R::KeyCompromise,
        2 => R::CaCompromise,
        3 => R::AffiliationChanged,
        4 => R::Superseded,
        5 => R::CessationOfOperation,
        6 => R::CertificateHold,
        8 => R::RemoveFromCRL,
        9 => R::PrivilegeWithdrawn,
        10 => R::AaCompromise,
        _ => return None,
    })
}

/// transactionID prefixes of the EST and CMP transactions kept in the same
/// table (`mef scep pending` tells them apart by it).
const OTHER_PROTOCOL_PREFIXES: [&str; 2] = ["est-", "cmp-"];

fn key_id(c: &RawCertificate) -> String {
    let spki = c.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default();
    hex::encode(DigestAlgorithm::Sha256.digest(&spki))
}

/// Everything the service needs at start-up.
pub struct ScepSetup {
    /// The issuing CA.
    pub ca: Arc<Authority>,
    /// The RA certificate (requests are encrypted to it, replies signed by it).
    pub ra_cert: Certificate,
    /// The RA key.
    pub ra_key: Arc<dyn PrivateKey>,
    /// Secret for hashing challenge passwords.
    pub challenge_key: Zeroizing<[u8; 32]>,
    /// State.
    pub storage: Arc<dyn Storage>,
    /// Authorisation.
    pub policy: Policy,
    /// Content encryptions accepted (and advertised).
    pub ciphers: Ciphers,
    /// Profile of issued certificates.
    pub profile: Profile,
    /// Lifetime of CRLs served by GetCRL.
    pub crl_validity: Duration,
    /// The rollover CA certificate for GetNextCACert, if any.
    pub next_ca: Option<Certificate>,
}

impl ScepService {
    /// Build the service; `rng` seeds the implicit-rejection secret.
    pub fn new(s: ScepSetup, rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut caps = Vec::new();
        if s.ciphers.aes {
            caps.push(Capability::Aes);
        }
        if s.ciphers.des3 {
            caps.push(Capability::Des3);
        }
        caps.extend([
            Capability::PostPkiOperation,
            Capability::Renewal,
            Capability::Sha1,
            Capability::Sha256,
            Capability::Sha512,
        ]);
        // SCEPStandard promises AES (RFC 8894 §3.5.2): only with AES on.
        if s.ciphers.aes {
            caps.push(Capability::ScepStandard);
        }
        if s.next_ca.is_some() {
            caps.push(Capability::GetNextCaCert);
        }
        let ca_subject = s.ca.certificate.tbs_certificate.subject.clone();
        ScepService {
            ca: s.ca,
            ra_cert: s.ra_cert,
            ra_key: s.ra_key,
            rejection: RejectionKey::random(rng),
            held_names: crate::held::HeldNamesSeal::new(&s.challenge_key),
            auth: Authoriser::new(ca_subject, s.storage.clone(), s.challenge_key, s.policy),
            ciphers: s.ciphers,
            storage: s.storage,
            profile: s.profile,
            crl_validity: s.crl_validity,
            caps: Capabilities::new(caps),
            next_ca: s.next_ca,
            crl: std::sync::Mutex::new(None),
            metrics: Arc::new(Metrics::new()),
            certrep_chain: false,
            key_gate: Arc::new(KeyGate::unbounded()),
            seen: std::sync::Mutex::new(SeenRequests::default()),
        }
    }

    /// Count issuances and consumed challenges into `metrics` (those of
    /// `mef serve`; by default, a registry of its own nobody reads).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Bound the PKIOperations doing private-key work at once by `gate`
    /// (shared with the OCSP responder; see [`crate::keygate`]).
    pub fn with_key_gate(mut self, gate: Arc<KeyGate>) -> Self {
        self.key_gate = gate;
        self
    }

    /// The storage (for the operator commands).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Answer one SCEP HTTP request.
    pub fn handle(&self, req: &HttpRequest<'_>, now: SystemTime) -> (HttpResponse, Outcomes) {
        let mut log = Outcomes::default();
        let query = match Query::parse(req.query) {
            Ok(q) => q,
            Err(e) => {
                log.outcome = format!("400 {e}");
                return (HttpResponse::text(400, e.to_string()), log);
            }
        };
        log.operation = query.operation.to_string();
        let resp = match query.operation {
            Operation::GetCaCaps => HttpResponse {
                status: 200,
                content_type: CONTENT_TYPE_CAPS,
                body: self.caps.to_string().into_bytes(),
            },
            Operation::GetCaCert => self.ca_certs(),
            Operation::GetNextCaCert => self.next_ca_cert(),
            Operation::PkiOperation => {
                let body = if req.post {
                    Ok(req.body.to_vec())
                } else {
                    match query.message.as_deref() {
                        Some(m) => transport::decode_get_message(m),
                        None => Err(ScepError::Invalid {
                            what: "query",
                            reason: "PKIOperation without message".into(),
                        }),
                    }
                };
                match body {
                    Ok(b) => self.pki_operation(&b, now, &mut log),
                    Err(e) => HttpResponse::text(400, e.to_string()),
                }
            }
        };
        if log.outcome.is_empty() {
            log.outcome = resp.status.to_string();
        }
        (resp, log)
    }

    fn ca_certs(&self) -> HttpResponse {
        let cc = CaCertificates {
            ca: self.ca.certificate.clone(),
            ra: vec![self.ra_cert.clone()],
            chain: self.ca.chain.clone(),
        };
        match cc.to_response() {
            Ok((ct, body)) => HttpResponse {
                status: 200,
                content_type: ct,
                body,
            },
            Err(e) => HttpResponse::text(500, format!("cannot encode CA certificates: {e}")),
        }
    }

    fn next_ca_cert(&self) -> HttpResponse {
        let Some(next) = &self.next_ca else {
            return HttpResponse::text(404, "no rollover CA certificate is configured");
        };
        let signed = || -> Result<Vec<u8>, ScepError> {
            let certs = enrolkit_pkix::certs_only::encode(std::slice::from_ref(next), &[])?;
            enrolkit_scep::sign_data(&certs, self.ra_key.as_ref(), &self.ra_cert, DigestAlgorithm::Sha256)
        };
        match signed() {
            Ok(body) => HttpResponse {
                status: 200,
                content_type: transport::CONTENT_TYPE_NEXT_CA_CERT,
                body,
            },
            Err(e) => HttpResponse::text(500, format!("cannot sign the rollover certificate: {e}")),
        }
    }

    fn responder(&self) -> Responder<'_> {
        Responder {
            certificate: &self.ra_cert,
            decryptor: self.ra_key.as_ref(),
            signer: self.ra_key.as_ref(),
            rejection: &self.rejection,
        }
    }

    fn pki_operation(&self, der_bytes: &[u8], now: SystemTime, log: &mut Outcomes) -> HttpResponse {
        if der_bytes.len() > transport::MAX_MESSAGE {
            log.outcome = "413 too large".into();
            return HttpResponse::text(413, format!("pkiMessage larger than {} bytes", transport::MAX_MESSAGE));
        }
        let msg = match PkiMessage::parse(der_bytes) {
            Ok(m) => m,
            Err(e) => {
                log.outcome = format!("400 {e}");
                return HttpResponse::text(400, format!("not a SCEP pkiMessage: {e}"));
            }
        };
        log.message_type = msg.message_type.to_string();
        log.transaction_id = msg.transaction_id.to_string();
        // Everything below may use the RA key (a decryption, the reply's
        // signature) for a sender nobody has authenticated yet.
        let Some(_permit) = self.key_gate.enter() else {
            log.outcome = "503 private-key operations busy".into();
            return HttpResponse::text(503, "busy: too many requests are using the RA key; retry later");
        };
        let digest: [u8; 32] = DigestAlgorithm::Sha256.digest(der_bytes).try_into().unwrap_or([0; 32]);
        let failed = |e: ScepError| Outcome::Failure {
            fail_info: e.fail_info(),
            text: Some(e.to_string()),
        };
        let (reply_to, outcome) = match msg.verify() {
            Err(e) => (ReplyTo::from_message(&msg, ContentEncryption::Aes128Cbc), failed(e)),
            Ok(()) => match self.stored_answer(&msg, &digest) {
                Some((cipher, outcome)) => {
                    log.algorithms = format!("{cipher:?}/{:?} (stored answer, envelope not decrypted)", msg.digest);
                    (ReplyTo::from_message(&msg, cipher), outcome)
                }
                None => match self.responder().open_verified(msg.clone()) {
                    Err(e) => (ReplyTo::from_message(&msg, ContentEncryption::Aes128Cbc), failed(e)),
                    Ok(req) => {
                        log.algorithms = format!("{:?}/{:?}", req.content_encryption, req.message.digest);
                        let to = ReplyTo::from_message(&req.message, req.content_encryption);
                        let outcome = self
                            .check_cipher(req.content_encryption)
                            .and_then(|()| self.dispatch(&req, &digest, now))
                            .unwrap_or_else(Refusal::into_outcome);
                        (to, outcome)
                    }
                },
            },
        };
        (log.pki_status, log.fail_info) = match &outcome {
            Outcome::Success { .. } => (Some(PkiStatus::Success), None),
            Outcome::Pending => (Some(PkiStatus::Pending), None),
            Outcome::Failure { fail_info, .. } => (Some(PkiStatus::Failure), Some(*fail_info)),
        };
        log.outcome = match &outcome {
            Outcome::Success { .. } => "SUCCESS".into(),
            Outcome::Pending => "PENDING".into(),
            Outcome::Failure { fail_info, text } => format!("FAILURE {fail_info}: {}", text.as_deref().unwrap_or("")),
        };
        match self.responder().reply(&reply_to, &outcome, &mut rand_core::OsRng) {
            Ok(body) => HttpResponse {
                status: 200,
                content_type: CONTENT_TYPE_PKI_MESSAGE,
                body,
            },
            Err(e) => {
                log.outcome = format!("500 {e}");
                HttpResponse::text(500, format!("cannot build the reply: {e}"))
            }
        }
    }

    /// The answer to a retransmission, found before any private-key
    /// operation: a CertPoll, or a PKCSReq or RenewalReq whose exact bytes
    /// were seen before ([`SeenRequests`]), whose signature (already
    /// verified, so the sender holds the key) names a transaction this key
    /// started, gets the stored answer, encrypted with the cipher the
    /// envelope names, without the RA decrypting the envelope. Replaying a
    /// captured request (or polling) then costs a signature verification,
    /// not an RSA decryption. A request re-built with a fresh envelope is
    /// decrypted, so that its CSR can be compared with the transaction's
    /// ([`ScepService::dispatch`]). `None`: the full path decides.
    fn stored_answer(&self, msg: &PkiMessage, digest: &[u8; 32]) -> Option<(ContentEncryption, Outcome)> {
        let known = match msg.message_type {
            MessageType::CertPoll => true,
            MessageType::PkcsReq | MessageType::RenewalReq => {
                self.seen.lock().map(|s| s.contains(digest)).unwrap_or(false)
            }
            _ => false,
        };
        let txid = msg.transaction_id.as_str();
        if !known || OTHER_PROTOCOL_PREFIXES.iter().any(|p| txid.starts_with(p)) {
            return None;
        }
        let tx = self
            .storage
            .transaction(msg.transaction_id.as_str(), &key_id(&msg.signer_certificate))
            .ok()??;
        let cipher = msg.content_encryption().ok()?;
        self.check_cipher(cipher).ok()?;
        Some((cipher, self.answer(&tx).unwrap_or_else(Refusal::into_outcome)))
    }

    /// Remember a request whose transaction now holds it.
    fn remember(&self, digest: &[u8; 32]) {
        if let Ok(mut s) = self.seen.lock() {
            s.insert(*digest);
        }
    }

    fn check_cipher(&self, c: ContentEncryption) -> Result<(), Refusal> {
        if self.ciphers.allows(c) {
            Ok(())
        } else {
            Err(Refusal(
                FailInfo::BadAlg,
                format!("content encryption {c:?} is not accepted by this server"),
            ))
        }
    }

    /// Answer an opened request; `digest` is the SHA-256 of its pkiMessage
    /// bytes, remembered when its transaction holds its request.
    fn dispatch(&self, req: &Request, digest: &[u8; 32], now: SystemTime) -> Result<Outcome, Refusal> {
        let kid = key_id(&req.message.signer_certificate);
        let txid = req.message.transaction_id.as_str();
        // EST and CMP transactions share the table under these prefixes:
        // a SCEP transactionID never reaches theirs.
        if let Some(p) = OTHER_PROTOCOL_PREFIXES.iter().find(|p| txid.starts_with(*p)) {
            return Err(Refusal(
                FailInfo::BadRequest,
                format!("transactionID prefix {p:?} is reserved for another protocol's transactions"),
            ));
        }
        match &req.body {
            RequestBody::PkcsReq(csr) | RequestBody::RenewalReq(csr) => {
                // A retransmission gets the same answer, never a second
                // certificate; the same transaction with another request is
                // a replay and gets nothing.
                if let Some(tx) = self.storage.transaction(txid, &kid).map_err(internal)? {
                    if !tx.csr.is_empty() && tx.csr != csr.der() {
                        return Err(Refusal(
                            FailInfo::BadRequest,
                            format!("transaction {txid} was started with another request; a new request needs a new transaction"),
                        ));
                    }
                    self.remember(digest);
                    return self.answer(&tx);
                }
                let renewal = matches!(req.body, RequestBody::RenewalReq(_));
                let auth = self.authorise(req, csr, renewal, now).map_err(Refusal::from)?;
                let outcome = self.enrol(txid, &kid, csr, &auth, now)?;
                self.remember(digest);
                Ok(outcome)
            }
            RequestBody::CertPoll(_) => match self.storage.transaction(txid, &kid).map_err(internal)? {
                Some(tx) => self.answer(&tx),
                None => Err(Refusal(
                    FailInfo::BadCertId,
                    format!("no transaction {txid} for this key"),
                )),
            },
            RequestBody::GetCert(ias) => {
                if !self.names_this_ca(&ias.issuer) {
                    return Err(Refusal(FailInfo::BadCertId, "issuer is not this CA".into()));
                }
                let serial = hex::encode(ias.serial_number.as_bytes());
                let c = self
                    .storage
                    .certificate(&serial)
                    .map_err(internal)?
                    .ok_or_else(|| Refusal(FailInfo::BadCertId, format!("no certificate {serial}")))?;
                let cert = Certificate::from_der(&c.der).map_err(|e| internal_msg(e.to_string()))?;
                Ok(Outcome::Success {
                    certificates: vec![cert],
                    crls: vec![],
                })
            }
            RequestBody::GetCrl(ias) => {
                if !self.names_this_ca(&ias.issuer) {
                    return Err(Refusal(FailInfo::BadCertId, "issuer is not this CA".into()));
                }
                let crl = self.current_crl(now).map_err(internal_msg)?;
                Ok(Outcome::Success {
                    certificates: vec![],
                    crls: vec![crl.crl.clone()],
                })
            }
        }
    }

    /// Whether `issuer`, in a GetCert or GetCRL IssuerAndSerialNumber, names
    /// this CA: its own name, or our RA's, which a client that took the RA
    /// certificate from GetCACert for the CA sends (serials are ours and
    /// unique, so the alias cannot reach another CA's certificate).
    fn names_this_ca(&self, issuer: &x509_cert::name::Name) -> bool {
        *issuer == self.ca.certificate.tbs_certificate.subject || *issuer == self.ra_cert.tbs_certificate.subject
    }

    /// The CRL of everything revoked so far. Signed anew (with the next CRL
    /// number) only when the revocations in storage changed — `mef revoke`
    /// runs in another process, so storage is what is compared — or half the
    /// CRL's validity has passed; otherwise the same CRL is returned, so
    /// GetCRL and `/crl` cost no signature and CRL numbers do not race ahead.
    pub fn current_crl(&self, now: SystemTime) -> Result<Arc<SignedCrl>, String> {
        let revoked = self
            .storage
            .revoked()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| (r.serial, r.revoked_at.unwrap_or(0), r.reason))
            .collect::<Vec<_>>();
        let mut cached = self.crl.lock().map_err(|_| "CRL cache poisoned".to_string())?;
        if let Some(c) = cached.as_ref() {
            let fresh = now >= c.this_update && now < c.this_update + self.crl_validity / 2;
            if fresh && c.revoked == revoked {
                return Ok(c.clone());
            }
        }
        let list = revoked
            .iter()
            .map(|(serial, at, reason)| {
                // A revoked serial that cannot be listed is an error, never an omission.
                let bytes = hex::decode(serial).map_err(|e| format!("stored serial {serial}: {e}"))?;
                Ok(Revocation {
                    serial: x509_cert::serial_number::SerialNumber::new(&bytes)
                        .map_err(|e| format!("stored serial {serial}: {e}"))?,
                    time: UNIX_EPOCH + Duration::from_secs((*at).max(0) as u64),
                    reason: reason.and_then(crl_reason),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let number = self.storage.next_crl_number().map_err(|e| e.to_string())?;
        let crl = self
            .ca
            .crl(&list, number, now, self.crl_validity)
            .map_err(|e| e.to_string())?;
        let signed = Arc::new(SignedCrl {
            der: crl.to_der().map_err(|e| e.to_string())?,
            crl,
            this_update: now,
            number,
            revoked,
        });
        *cached = Some(signed.clone());
        Ok(signed)
    }

    fn answer(&self, tx: &Transaction) -> Result<Outcome, Refusal> {
        match &tx.state {
            TxState::Pending => Ok(Outcome::Pending),
            TxState::Rejected(_, why) => Err(Refusal(FailInfo::BadRequest, why.clone())),
            TxState::Issued(serial) => {
                let c = self
                    .storage
                    .certificate(serial)
                    .map_err(internal)?
                    .ok_or_else(|| internal_msg(format!("issued certificate {serial} missing")))?;
                let cert = Certificate::from_der(&c.der).map_err(|e| internal_msg(e.to_string()))?;
                Ok(Outcome::Success {
                    certificates: self.success_certs(cert),
                    crls: vec![],
                })
            }
        }
    }

    /// The certificates of a SUCCESS reply: the issued one first (clients
    /// such as micromdm's take the first certificate as theirs), then, when
    /// [`ScepService::with_certrep_chain`] asked for it, the CA and its chain.
    fn success_certs(&self, cert: Certificate) -> Vec<Certificate> {
        let mut certs = vec![cert];
        if self.certrep_chain {
            certs.push(self.ca.certificate.clone());
            certs.extend(self.ca.chain.iter().cloned());
        }
        certs
    }

    /// Whether a SUCCESS CertRep carries the CA chain after the issued
    /// certificate. Deployed clients disagree: Cisco VPN clients need it,
    /// Juniper refuses it; off by default (the chain is GetCACert's job).
    pub fn with_certrep_chain(mut self, on: bool) -> Self {
        self.certrep_chain = on;
        self
    }

    /// The authorisation core's decision on a PKCSReq or RenewalReq: the
    /// signer certificate (a renewal's, a vendor's, an RA's, or the
    /// requester's self-signed one, which proves nothing) and the CSR's
    /// challengePassword are its credentials.
    fn authorise(
        &self,
        req: &Request,
        csr: &CertificationRequest,
        renewal: bool,
        now: SystemTime,
    ) -> Result<Authorisation, CoreRefusal> {
        let signer_der = [req.message.signer_certificate.to_der().map_err(CoreRefusal::internal)?];
        // A signer that does not parse as RFC 5280 (the Raw profile admits
        // more) is a requester's transport certificate, no credential.
        let signer = Certificate::from_der(&signer_der[0]).ok();
        let mut credentials = Vec::new();
        if let Some(cert) = &signer {
            credentials.push(Credential::Certificate {
                cert,
                chain: &signer_der,
                tls_verified: false,
            });
        }
        if let Some(pw) = csr.challenge_password().map(|p| p.as_str()) {
            credentials.push(Credential::ChallengePassword(pw));
        }
        let r = AuthRequest {
            protocol: Protocol::Scep,
            intent: if renewal { Intent::Renew } else { Intent::Enrol },
            csr: CsrView::of(csr),
            credentials,
            transaction: req.message.transaction_id.as_str(),
        };
        self.auth.decide(&r, now)
    }

    fn enrol(
        &self,
        txid: &str,
        kid: &str,
        csr: &CertificationRequest,
        auth: &Authorisation,
        now: SystemTime,
    ) -> Result<Outcome, Refusal> {
        tracing::info!(txid, basis = %auth.basis, "authorised");
        let challenge = auth.consume.as_deref();
        let subject = csr.subject().to_string();
        let mut tx = Transaction {
            transaction_id: txid.into(),
            key_id: kid.into(),
            subject,
            csr: csr.der().to_vec(),
            state: TxState::Pending,
            created: unix(now),
        };
        if auth.hold {
            // Kept until the request is recorded (see HoldLimit::admit).
            let _permit = match &self.auth.policy().hold_limit {
                Some(limit) => match limit.admit(self.storage.as_ref(), &tx.subject) {
                    Ok(p) => Some(p),
                    Err(crate::proxy::HoldRefused::Full(why)) => {
                        self.metrics.proxy_event("hold-refused");
                        return Err(Refusal(FailInfo::BadRequest, why));
                    }
                    Err(crate::proxy::HoldRefused::Storage(e)) => return Err(internal_msg(e)),
                },
                None => None,
            };
            // What approval will issue is decided now and kept with it, sealed.
            let names = self.held_names.seal(&tx, &auth.names).map_err(internal_msg)?;
            self.storage
                .record_held(&tx, challenge, &names, unix(now))
                .map_err(refused_or_internal)?;
            if challenge.is_some() {
                self.metrics.challenge_consumed(metrics::Protocol::Scep);
            }
            return Ok(Outcome::Pending);
        }
        let cert = self.issue(csr, &auth.names, now)?;
        let issued = issued_record(&cert)?;
        tx.state = TxState::Issued(issued.serial.clone());
        self.storage
            .record(&tx, challenge, Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        self.metrics.certificate_issued(metrics::Protocol::Scep);
        if challenge.is_some() {
            self.metrics.challenge_consumed(metrics::Protocol::Scep);
        }
        Ok(Outcome::Success {
            certificates: self.success_certs(cert),
            crls: vec![],
        })
    }

    /// Issue for a CSR that `CertificationRequest::parse` has already verified (no second
    /// parse), with the names the authorisation core decided.
    fn issue(&self, csr: &CertificationRequest, names: &IssueNames, now: SystemTime) -> Result<Certificate, Refusal> {
        let r = enrolkit_pki::Request {
            subject: names.subject.clone(),
            public_key: csr.public_key().clone(),
            dns_names: names.dns.clone(),
            ip_addresses: names.ips.clone(),
        };
        self.ca
            .issue(&r, &self.profile, now, &mut rand_core::OsRng)
            .map_err(|e| Refusal(FailInfo::BadRequest, e.to_string()))
    }

    /// Operator approves a pending request: the certificate is issued now.
    pub fn approve(&self, txid: &str, key_id: &str, now: SystemTime) -> Result<String, String> {
        issue_approved(self.storage.as_ref(), txid, key_id, now, |tx| {
            // Stored CSRs were verified on receipt; parse (and verify) again all the same.
            let csr = CertificationRequest::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
            let names = self.held_names(tx, &csr)?;
            self.issue(&csr, &names, now).map_err(|Refusal(_, m)| m)
        })
    }
}

impl ScepService {
    /// What approving the held `tx` would issue (names, EKUs, key), for
    /// `mef scep pending list`.
    pub fn pending_terms(&self, tx: &Transaction) -> Result<String, String> {
        let csr = CertificationRequest::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
        let names = self.held_names(tx, &csr)?;
        let key = ra::keys::key_type(csr.public_key())
            .map(|k| k.to_string())
            .unwrap_or_else(|r| r.detail);
        Ok(names.describe(&self.profile.extended_key_usage, &key))
    }

    /// The names a held request is to be issued with: decided when it was
    /// held and sealed with it. A request held without them (by a build
    /// from before names were recorded, or inserted in the database) is
    /// not approved on names guessed from its CSR.
    pub fn held_names(&self, tx: &Transaction, _csr: &CertificationRequest) -> Result<IssueNames, String> {
        match self
            .storage
            .held_terms(&tx.transaction_id, &tx.key_id)
            .map_err(|e| e.to_string())?
        {
            Some(t) => self.held_names.open(tx, &t),
            None => Err(format!(
                "{}: no names were recorded with this request (held by an older mef, or inserted in the \
                 database): refused; reject it and let the client enrol again",
                tx.transaction_id
            )),
        }
    }
}

/// A refusal of the core on SCEP's wire: failInfo badRequest with the
/// reason (RFC 8894 §3.2.1.4 has no closer code for any of them; badAlg
/// is for algorithms a server does not implement, not keys it refuses).
impl From<CoreRefusal> for Refusal {
    fn from(r: CoreRefusal) -> Self {
        Refusal(FailInfo::BadRequest, r.detail)
    }
}

/// An operator's approval, for both services: load the transaction, let
/// `issue` make the certificate from it, record the issuance as the
/// transaction's answer. Returns the serial number.
pub(crate) fn issue_approved(
    storage: &dyn Storage,
    txid: &str,
    key_id: &str,
    now: SystemTime,
    issue: impl FnOnce(&Transaction) -> Result<Certificate, String>,
) -> Result<String, String> {
    let tx = storage
        .transaction(txid, key_id)
        .map_err(|e| e.to_string())?
        .ok_or("no such transaction")?;
    // Decided once: nothing is signed for a transaction already issued or
    // rejected (and `decide` refuses, atomically, one decided meanwhile).
    match &tx.state {
        TxState::Pending => {}
        TxState::Issued(serial) => return Err(format!("{txid} was already approved (certificate {serial})")),
        TxState::Rejected(_, why) => return Err(format!("{txid} was already rejected ({why})")),
    }
    let cert = issue(&tx)?;
    let issued = IssuedCert::from_certificate(&cert).map_err(|e| e.to_string())?;
    storage
        .decide(
            txid,
            key_id,
            &TxState::Issued(issued.serial.clone()),
            Some(&issued),
            unix(now),
        )
        .map_err(|e| e.to_string())?;
    Ok(issued.serial)
}

fn issued_record(cert: &Certificate) -> Result<IssuedCert, Refusal> {
    IssuedCert::from_certificate(cert).map_err(|e| internal_msg(e.to_string()))
}

fn internal(e: StorageError) -> Refusal {
    internal_msg(e.to_string())
}

fn internal_msg(m: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %m, "internal error");
    Refusal(FailInfo::BadRequest, "internal error".into())
}

fn refused_or_internal(e: StorageError) -> Refusal {
    match e {
        StorageError::NotFound(m) => Refusal(FailInfo::BadRequest, m),
        other => internal(other),
    }
}
