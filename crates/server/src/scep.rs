//! The SCEP responder: an RA in front of the local CA. Transport-neutral
//! core (`handle` takes a parsed HTTP request, returns status, type and
//! body); [`crate::http`] puts it on hyper.

use crate::storage::{IssuedCert, Storage, StorageError, Transaction, TxState};
use der::{Decode, Encode};
use enrolkit_keys::{DigestAlgorithm, PrivateKey};
use enrolkit_pki::{Authority, Profile, Revocation};
use enrolkit_scep::transport::{self, Operation, CONTENT_TYPE_CAPS, CONTENT_TYPE_PKI_MESSAGE};
use enrolkit_scep::{
    CaCertificates, Capabilities, Capability, ContentEncryption, Csr, FailInfo, Outcome, PkiMessage, Query,
    RawCertificate, RejectionKey, ReplyTo, Request, RequestBody, Responder, ScepError,
};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// How requests are authorised, as the seeds list it.
#[derive(Clone, Default)]
pub struct Policy {
    /// Accept one-time challenges provisioned with `mef challenge add`.
    pub one_time_challenges: bool,
    /// A shared static challenge (optional; weaker than one-time ones).
    pub static_challenge: Option<Zeroizing<String>>,
    /// Subject CNs authorised without a challenge.
    pub preauthorized_cns: Vec<String>,
    /// RenewalReq is accepted this long before the old certificate expires.
    pub renewal_window: Duration,
    /// Hold every authorised request for an operator (`mef scep pending approve`).
    pub manual_approval: bool,
    /// An operator's own policy: a command that gets the CSR (PEM) on stdin
    /// and `ENROL_SUBJECT`/`ENROL_TRANSACTION_ID` in its environment, and
    /// authorises the request by exiting 0. Consulted when nothing above did.
    pub verifier: Option<Verifier>,
    /// Content-encryption algorithms accepted in requests (and advertised).
    pub ciphers: Ciphers,
}

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

/// The external verifier hook.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Program to run (no shell).
    pub command: std::path::PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Killed and counted as "no" after this long.
    pub timeout: Duration,
}

impl Verifier {
    /// Run the hook for `csr_der`; `Ok(true)` when it exits 0 in time.
    pub fn verify(&self, csr_der: &[u8], subject: &str, txid: &str) -> std::io::Result<bool> {
        use std::io::Write;
        let pem = der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, csr_der)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut child = std::process::Command::new(&self.command)
            .args(&self.args)
            .env("ENROL_SUBJECT", subject)
            .env("ENROL_TRANSACTION_ID", txid)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that exits without reading stdin is not an error.
            let _ = stdin.write_all(pem.as_bytes());
        }
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("one_time_challenges", &self.one_time_challenges)
            .field("static_challenge", &self.static_challenge.as_ref().map(|_| "<set>"))
            .field("preauthorized_cns", &self.preauthorized_cns)
            .field("renewal_window", &self.renewal_window)
            .field("manual_approval", &self.manual_approval)
            .field("verifier", &self.verifier)
            .field("ciphers", &self.ciphers)
            .finish()
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
}

/// Issuance failure and its SCEP reason.
struct Refusal(FailInfo, String);

/// The responder.
pub struct ScepService {
    ca: Arc<Authority>,
    ra_cert: Certificate,
    ra_key: Arc<dyn PrivateKey>,
    rejection: RejectionKey,
    challenge_key: Zeroizing<[u8; 32]>,
    storage: Arc<dyn Storage>,
    policy: Policy,
    profile: Profile,
    crl_validity: Duration,
    caps: Capabilities,
    next_ca: Option<Certificate>,
    crl: std::sync::Mutex<Option<Arc<SignedCrl>>>,
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

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Keyed hash under which a challenge password is stored (the password itself never is).
pub fn challenge_hash(key: &[u8; 32], password: &str) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, password.as_bytes()).as_ref().to_vec()
}

/// Serial number as lowercase hex (the storage key and what `mef revoke` takes).
pub fn serial_hex<P: x509_cert::certificate::Profile>(c: &x509_cert::certificate::CertificateInner<P>) -> String {
    hex::encode(c.tbs_certificate.serial_number.as_bytes())
}

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
        if s.policy.ciphers.aes {
            caps.push(Capability::Aes);
        }
        if s.policy.ciphers.des3 {
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
        if s.policy.ciphers.aes {
            caps.push(Capability::ScepStandard);
        }
        if s.next_ca.is_some() {
            caps.push(Capability::GetNextCaCert);
        }
        ScepService {
            ca: s.ca,
            ra_cert: s.ra_cert,
            ra_key: s.ra_key,
            rejection: RejectionKey::random(rng),
            challenge_key: s.challenge_key,
            storage: s.storage,
            policy: s.policy,
            profile: s.profile,
            crl_validity: s.crl_validity,
            caps: Capabilities::new(caps),
            next_ca: s.next_ca,
            crl: std::sync::Mutex::new(None),
        }
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
            let certs = enrolkit_scep::build_certs_only(std::slice::from_ref(next), &[])?;
            enrolkit_scep::pkcs7::sign_data(&certs, self.ra_key.as_ref(), &self.ra_cert, DigestAlgorithm::Sha256)
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
        let opened = msg.verify().and_then(|()| self.responder().open_verified(msg.clone()));
        let (reply_to, outcome) = match opened {
            Err(e) => (
                ReplyTo::from_message(&msg, ContentEncryption::Aes128Cbc),
                Outcome::Failure {
                    fail_info: e.fail_info(),
                    text: Some(e.to_string()),
                },
            ),
            Ok(req) => {
                log.algorithms = format!("{:?}/{:?}", req.content_encryption, req.message.digest);
                let to = ReplyTo::from_message(&req.message, req.content_encryption);
                let outcome = match self
                    .check_cipher(req.content_encryption)
                    .and_then(|()| self.dispatch(&req, now))
                {
                    Ok(o) => o,
                    Err(Refusal(fail_info, text)) => Outcome::Failure {
                        fail_info,
                        text: Some(text),
                    },
                };
                (to, outcome)
            }
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

    fn check_cipher(&self, c: ContentEncryption) -> Result<(), Refusal> {
        if self.policy.ciphers.allows(c) {
            Ok(())
        } else {
            Err(Refusal(
                FailInfo::BadAlg,
                format!("content encryption {c:?} is not accepted by this server"),
            ))
        }
    }

    fn dispatch(&self, req: &Request, now: SystemTime) -> Result<Outcome, Refusal> {
        let kid = key_id(&req.message.signer_certificate);
        let txid = req.message.transaction_id.as_str();
        match &req.body {
            RequestBody::PkcsReq(csr) | RequestBody::RenewalReq(csr) => {
                // A retransmission gets the same answer, never a second certificate.
                if let Some(tx) = self.storage.transaction(txid, &kid).map_err(internal)? {
                    return self.answer(&tx);
                }
                let renewal = matches!(req.body, RequestBody::RenewalReq(_));
                let challenge = if renewal {
                    self.authorise_renewal(&req.message.signer_certificate, now)?;
                    None
                } else {
                    self.authorise(csr, txid, now)?
                };
                self.enrol(txid, &kid, csr, challenge.as_deref(), now)
            }
            RequestBody::CertPoll(_) => match self.storage.transaction(txid, &kid).map_err(internal)? {
                Some(tx) => self.answer(&tx),
                None => Err(Refusal(
                    FailInfo::BadCertId,
                    format!("no transaction {txid} for this key"),
                )),
            },
            RequestBody::GetCert(ias) => {
                if ias.issuer != self.ca.certificate.tbs_certificate.subject {
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
                if ias.issuer != self.ca.certificate.tbs_certificate.subject {
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
            TxState::Rejected(fi, why) => Err(Refusal(
                FailInfo::parse(&fi.to_string()).unwrap_or(FailInfo::BadRequest),
                why.clone(),
            )),
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

    /// The certificates of a SUCCESS reply: the issued one only. DER sorts a
    /// SET OF, so a chain would lose its order, and clients such as micromdm's
    /// take the first certificate as theirs; the chain comes from GetCACert.
    fn success_certs(&self, cert: Certificate) -> Vec<Certificate> {
        vec![cert]
    }

    /// Returns the hash of the one-time challenge to consume, if that is what authorised it.
    fn authorise(&self, csr: &Csr, txid: &str, now: SystemTime) -> Result<Option<Vec<u8>>, Refusal> {
        if let Some(pw) = csr.challenge_password.as_deref() {
            if self.policy.one_time_challenges {
                let h = challenge_hash(&self.challenge_key, pw);
                if self.storage.challenge_usable(&h, unix(now)).map_err(internal)? {
                    return Ok(Some(h));
                }
            }
            if let Some(shared) = &self.policy.static_challenge {
                if bool::from(subtle::ConstantTimeEq::ct_eq(shared.as_bytes(), pw.as_bytes())) {
                    return Ok(None);
                }
            }
        }
        let cn = common_name(&csr.request.info.subject);
        if cn
            .as_deref()
            .is_some_and(|cn| self.policy.preauthorized_cns.iter().any(|p| p == cn))
        {
            return Ok(None);
        }
        if let Some(v) = &self.policy.verifier {
            return match v.verify(&csr.der, &csr.request.info.subject.to_string(), txid) {
                Ok(true) => Ok(None),
                Ok(false) => Err(Refusal(FailInfo::BadRequest, "refused by the verifier hook".into())),
                Err(e) => Err(internal_msg(format!("verifier hook {}: {e}", v.command.display()))),
            };
        }
        Err(Refusal(
            FailInfo::BadRequest,
            "challenge password missing, wrong, expired or already used".into(),
        ))
    }

    fn authorise_renewal(&self, signer: &RawCertificate, now: SystemTime) -> Result<(), Refusal> {
        let serial = serial_hex(signer);
        let ours = self.storage.certificate(&serial).map_err(internal)?;
        let ours = match ours {
            Some(c) if c.der == signer.to_der().unwrap_or_default() => c,
            _ => {
                return Err(Refusal(
                    FailInfo::BadRequest,
                    "RenewalReq not signed by a certificate this CA issued".into(),
                ))
            }
        };
        if ours.revoked_at.is_some() {
            return Err(Refusal(
                FailInfo::BadRequest,
                "the certificate to renew is revoked".into(),
            ));
        }
        let t = unix(now);
        if t >= ours.not_after {
            return Err(Refusal(
                FailInfo::BadRequest,
                "the certificate to renew has expired".into(),
            ));
        }
        if t < ours.not_after - self.policy.renewal_window.as_secs() as i64 {
            return Err(Refusal(FailInfo::BadRequest, "too early to renew".into()));
        }
        Ok(())
    }

    fn enrol(
        &self,
        txid: &str,
        kid: &str,
        csr: &Csr,
        challenge: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Outcome, Refusal> {
        let subject = csr.request.info.subject.to_string();
        let mut tx = Transaction {
            transaction_id: txid.into(),
            key_id: kid.into(),
            subject,
            csr: csr.der.clone(),
            state: TxState::Pending,
            created: unix(now),
        };
        if self.policy.manual_approval {
            self.storage
                .record(&tx, challenge, None, unix(now))
                .map_err(refused_or_internal)?;
            return Ok(Outcome::Pending);
        }
        let cert = self.issue(csr, now)?;
        let issued = issued_record(&cert)?;
        tx.state = TxState::Issued(issued.serial.clone());
        self.storage
            .record(&tx, challenge, Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        Ok(Outcome::Success {
            certificates: self.success_certs(cert),
            crls: vec![],
        })
    }

    /// Issue for a CSR that `Csr::parse` has already verified (no second parse).
    fn issue(&self, csr: &Csr, now: SystemTime) -> Result<Certificate, Refusal> {
        let r = enrolkit_pki::Request {
            subject: csr.request.info.subject.clone(),
            public_key: csr.request.info.public_key.clone(),
            dns_names: csr.dns_names(),
            ip_addresses: Vec::new(),
        };
        self.ca
            .issue(&r, &self.profile, now, &mut rand_core::OsRng)
            .map_err(|e| Refusal(FailInfo::BadRequest, e.to_string()))
    }

    /// Operator approves a pending request: the certificate is issued now.
    pub fn approve(&self, txid: &str, key_id: &str, now: SystemTime) -> Result<String, String> {
        issue_approved(self.storage.as_ref(), txid, key_id, now, |tx| {
            // Stored CSRs were verified on receipt; parse (and verify) again all the same.
            let csr = Csr::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
            self.issue(&csr, now).map_err(|Refusal(_, m)| m)
        })
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

/// The first CN of a name, as text.
pub(crate) fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|a| a.oid == const_oid::db::rfc4519::CN)
        .and_then(|a| std::str::from_utf8(a.value.value()).ok().map(str::to_owned))
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
