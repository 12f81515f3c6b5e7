//! The OCSP responder (RFC 6960, in the RFC 5019 lightweight profile) for
//! the local CA: `POST /ocsp` with `application/ocsp-request`, and
//! `GET /ocsp/<url-encoded base64 request>` (RFC 6960 Appendix A.1).
//!
//! Every status is read from storage at the moment it is asked for, so a
//! `mef revoke` in another process is visible to the very next request. The
//! signature is not made per request (that would let anyone make the CA key
//! sign as fast as they can send): as in the RFC 5019 lightweight profile, a
//! response for one certificate is kept and served again, byte for byte,
//! until the certificate's status in storage changes or half its validity
//! has passed. A request with a nonce (RFC 8954) gets a fresh signature
//! echoing it while the fresh-signature budget lasts (a token bucket,
//! [`DEFAULT_FRESH_SIGNATURES_PER_SECOND`]); past it, the kept response
//! without the nonce, or `tryLater` when there is none. Transport-neutral like the
//! SCEP responder: [`OcspResponder::handle`] takes the request as the HTTP
//! layer saw it; [`crate::http`] puts it on hyper.

use crate::keygate::KeyGate;
use crate::scep::HttpResponse;
use crate::storage::{IssuedCert, Storage, StorageError};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use const_oid::AssociatedOid;
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use enrolkit_keys::DigestAlgorithm;
use enrolkit_pki::Authority;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId,
    ResponseData, RevokedInfo, SingleResponse, Version,
};

/// Where the responder answers: `POST` here, `GET` below it (`/ocsp/<request>`).
/// Point a profile's `ocsp_url` here.
pub const OCSP_PATH: &str = "/ocsp";

/// Media type of a request body (RFC 6960 Appendix C.1).
pub const CONTENT_TYPE_REQUEST: &str = "application/ocsp-request";

/// Media type of every answer (RFC 6960 Appendix C.2).
pub const CONTENT_TYPE_RESPONSE: &str = "application/ocsp-response";

pub use enrolkit_pkix::ocsp::{MAX_CERT_IDS, MAX_NONCE, MAX_REQUEST};

/// Whether `path` is the responder's: `/ocsp` or `/ocsp/<request>`.
pub fn is_ocsp_path(path: &str) -> bool {
    path == OCSP_PATH || path.strip_prefix(OCSP_PATH).is_some_and(|r| r.starts_with('/'))
}

/// The request as the transport saw it.
#[derive(Debug, Clone)]
pub struct OcspHttpRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The request path (for GET, it carries the request).
    pub path: &'a str,
    /// The Content-Type header, if any.
    pub content_type: Option<&'a str>,
    /// The body (POST).
    pub body: &'a [u8],
}

/// What one request did, for the log line.
#[derive(Debug, Clone, Default)]
pub struct OcspLog {
    /// The OCSPResponseStatus sent (`successful`, `malformedRequest`, …), or
    /// the HTTP refusal when none was sent, with the reason when it failed.
    pub outcome: String,
    /// `serial=status` for each CertID answered (`foreign` for another issuer's).
    pub certs: String,
    /// Whether a nonce was echoed.
    pub nonce: bool,
}

/// The issuer of a CertID, as this CA appears under one hash algorithm.
struct IssuerHashes {
    digest: DigestAlgorithm,
    name: Vec<u8>,
    key: Vec<u8>,
}

/// Everything the responder needs at start-up.
pub struct OcspSetup {
    /// The issuing CA: it is the issuer the responder speaks for, and its key signs.
    pub ca: Arc<Authority>,
    /// Issued certificates and revocations.
    pub storage: Arc<dyn Storage>,
    /// nextUpdate − thisUpdate of every answer: how long a client may rely on it.
    pub validity: Duration,
}

/// Fresh signatures (nonce echoes, several CertIDs, cache misses beyond the
/// kept responses) a responder makes per second at most, by default.
pub const DEFAULT_FRESH_SIGNATURES_PER_SECOND: u32 = 50;

/// Responses kept at most; when full, expired ones go, then all of them.
const MAX_KEPT: usize = 16_384;

/// A kept response for one CertID.
struct Kept {
    der: Vec<u8>,
    /// The stored status it was made from: (issued by us, revoked at, reason).
    status: StatusKey,
    /// Served until then (thisUpdate + half the validity).
    until: SystemTime,
}

/// What a kept response's status was made from; a change invalidates it.
type StatusKey = Option<(Option<i64>, Option<u8>)>;

/// Fresh signatures allowed now: a token bucket refilled by the request
/// times the responder is handed (so tests can drive it).
struct Budget {
    per_second: u32,
    tokens: f64,
    at: Option<SystemTime>,
}

impl Budget {
    fn take(&mut self, now: SystemTime) -> bool {
        let cap = f64::from(self.per_second.max(1));
        if let Some(at) = self.at {
            let dt = now.duration_since(at).unwrap_or_default().as_secs_f64();
            self.tokens = (self.tokens + dt * cap).min(cap);
        } else {
            self.tokens = cap;
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The OCSP responder of the issuing CA.
pub struct OcspResponder {
    ca: Arc<Authority>,
    storage: Arc<dyn Storage>,
    validity: Duration,
    issuer: Vec<IssuerHashes>,
    /// SHA-1 of the CA's subjectPublicKey: responderID byKey, and the
    /// keyIdentifier of the authorityKeyIdentifier the CA writes.
    key_hash: Vec<u8>,
    kept: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Kept>>,
    budget: std::sync::Mutex<Budget>,
    signatures: std::sync::atomic::AtomicU64,
    key_gate: Arc<KeyGate>,
}

impl std::fmt::Debug for OcspResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder")
            .field("ca", &self.ca)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// Why a request got no successful answer.
enum Failure {
    /// The request is not one (RFC 6960 malformedRequest).
    Malformed(String),
    /// No CertID names this CA (RFC 5019 §2.2.3 unauthorized).
    Unauthorized,
    /// Storage or signing failed (internalError); the reason is logged, not sent.
    Internal(String),
    /// The fresh-signature budget is spent and nothing kept answers (tryLater).
    TryLater,
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Internal(e.to_string())
    }
}

impl From<der::Error> for Failure {
    fn from(e: der::Error) -> Self {
        Failure::Internal(format!("encoding: {e}"))
    }
}

/// The CRLReason for a stored reason code (RFC 5280 §5.3.1; 7 is unused).
fn reason(code: u8) -> Option<CrlReason> {
    Some(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

fn generalized(t: SystemTime) -> Result<OcspGeneralizedTime, der::Error> {
    Ok(OcspGeneralizedTime(GeneralizedTime::from_system_time(t)?))
}

fn status_name(s: &CertStatus) -> &'static str {
    match s {
        CertStatus::Good(_) => "good",
        CertStatus::Revoked(_) => "revoked",
        CertStatus::Unknown(_) => "unknown",
    }
}

/// An unsigned OCSPResponse with an error status (RFC 6960 §2.3: no responseBytes).
fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    let r = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // SEQUENCE { ENUMERATED status }: five bytes, built by hand should the encoder ever fail.
    r.to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

/// The request of a GET (RFC 6960 Appendix A.1): the path after `/ocsp/`,
/// percent-decoded, then base64 (standard alphabet, or the URL-safe one some
/// clients use; padding optional), at most [`MAX_REQUEST`] bytes.
pub fn decode_get(encoded: &str) -> Result<Vec<u8>, String> {
    // Base64 is 4/3 of the request and percent-encoding at most triples it.
    if encoded.len() > 4 * MAX_REQUEST {
        return Err(format!("GET request longer than {} characters", 4 * MAX_REQUEST));
    }
    let text: Vec<u8> = percent_encoding::percent_decode_str(encoded)
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        return Err("no request after /ocsp/".into());
    }
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let der = standard
        .decode(&text)
        .or_else(|_| url_safe.decode(&text))
        .map_err(|e| format!("GET request is not base64: {e}"))?;
    if der.len() > MAX_REQUEST {
        return Err(format!("request larger than {MAX_REQUEST} bytes"));
    }
    Ok(der)
}

/// Whether a POST's Content-Type is acceptable: `application/ocsp-request`
/// (parameters ignored), or none at all, which some clients send.
fn content_type_ok(ct: Option<&str>) -> bool {
    match ct {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(CONTENT_TYPE_REQUEST)),
    }
}

fn text(status: u16, msg: &str) -> HttpResponse {
    HttpResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{msg}\n").into_bytes(),
    }
}

impl OcspResponder {
    /// Build the responder: the CA's name and key hashes under SHA-1,
    /// SHA-256 and SHA-512 are computed once, for matching CertIDs.
    pub fn new(s: OcspSetup) -> Result<Self, der::Error> {
        let tbs = &s.ca.certificate.tbs_certificate;
        let name = tbs.subject.to_der()?;
        let key_bits = tbs.subject_public_key_info.subject_public_key.raw_bytes();
        let issuer = [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256, DigestAlgorithm::Sha512]
            .into_iter()
            .map(|digest| IssuerHashes {
                digest,
                name: digest.digest(&name),
                key: digest.digest(key_bits),
            })
            .collect();
        Ok(OcspResponder {
            key_hash: enrolkit_pki::key_identifier(&tbs.subject_public_key_info),
            ca: s.ca,
            storage: s.storage,
            validity: s.validity,
            issuer,
            kept: std::sync::Mutex::new(std::collections::HashMap::new()),
            budget: std::sync::Mutex::new(Budget {
                per_second: DEFAULT_FRESH_SIGNATURES_PER_SECOND,
                tokens: 0.0,
                at: None,
            }),
            signatures: std::sync::atomic::AtomicU64::new(0),
            key_gate: Arc::new(KeyGate::unbounded()),
        })
    }

    /// The same responder making at most `n` fresh signatures per second
    /// beyond the kept responses.
    pub fn with_fresh_signatures_per_second(self, n: u32) -> Self {
        if let Ok(mut b) = self.budget.lock() {
            b.per_second = n.max(1);
        }
        self
    }

    /// Bound fresh signatures in flight by `gate` (shared with the SCEP
    /// responder; see [`crate::keygate`]): a request finding it full is
    /// answered `tryLater`.
    pub fn with_key_gate(mut self, gate: Arc<KeyGate>) -> Self {
        self.key_gate = gate;
        self
    }

    /// Signatures made so far (each costs the CA key one operation).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Answer one HTTP request: an `application/ocsp-response` (HTTP 200)
    /// whatever the OCSP outcome, or a plain-text HTTP refusal when the
    /// request is not an OCSP exchange at all (wrong method or media type).
    pub fn handle(&self, req: &OcspHttpRequest<'_>, now: SystemTime) -> (HttpResponse, OcspLog) {
        let der = match req.method {
            "POST" if content_type_ok(req.content_type) => Ok(req.body.to_vec()),
            "POST" => {
                let log = OcspLog {
                    outcome: "415 wrong media type".into(),
                    ..OcspLog::default()
                };
                return (text(415, "an OCSP request is application/ocsp-request"), log);
            }
            "GET" => match req.path.strip_prefix(OCSP_PATH).and_then(|r| r.strip_prefix('/')) {
                Some(encoded) => decode_get(encoded),
                None => Err("GET needs the request in the path: /ocsp/<base64>".into()),
            },
            _ => {
                let log = OcspLog {
                    outcome: "405 method".into(),
                    ..OcspLog::default()
                };
                return (text(405, "only GET and POST"), log);
            }
        };
        let (body, log) = match der {
            Ok(der) => self.respond(&der, now),
            Err(e) => (
                error_response(OcspResponseStatus::MalformedRequest),
                OcspLog {
                    outcome: format!("malformedRequest: {e}"),
                    ..OcspLog::default()
                },
            ),
        };
        let resp = HttpResponse {
            status: 200,
            content_type: CONTENT_TYPE_RESPONSE,
            body,
        };
        (resp, log)
    }

    /// Answer a DER OCSPRequest with a DER OCSPResponse: signed when
    /// successful, a bare status otherwise. Never fails: what goes wrong is
    /// the response's status, and the reason is in the log record.
    pub fn respond(&self, request_der: &[u8], now: SystemTime) -> (Vec<u8>, OcspLog) {
        let mut log = OcspLog::default();
        match self.try_respond(request_der, now, &mut log) {
            Ok(der) => {
                log.outcome = enrolkit_pkix::ocsp::response_status_name(OcspResponseStatus::Successful).into();
                (der, log)
            }
            Err(f) => {
                let (status, why) = match f {
                    Failure::Malformed(why) => (OcspResponseStatus::MalformedRequest, why),
                    Failure::Unauthorized => (
                        OcspResponseStatus::Unauthorized,
                        "no CertID names this responder's CA".into(),
                    ),
                    Failure::Internal(why) => {
                        tracing::error!(error = %why, "OCSP response failed");
                        (OcspResponseStatus::InternalError, why)
                    }
                    Failure::TryLater => (
                        OcspResponseStatus::TryLater,
                        "fresh-signature budget spent or key operations busy".into(),
                    ),
                };
                log.outcome = format!("{}: {why}", enrolkit_pkix::ocsp::response_status_name(status));
                (error_response(status), log)
            }
        }
    }

    fn try_respond(&self, request_der: &[u8], now: SystemTime, log: &mut OcspLog) -> Result<Vec<u8>, Failure> {
        let req = enrolkit_pkix::ocsp::parse_request(request_der).map_err(|e| Failure::Malformed(e.to_string()))?;
        let list = req.requests();
        let nonce = req.nonce.clone();
        // One CertID of ours: what a kept response can answer.
        let single = match list {
            [r] if self.names_our_ca(&r.req_cert) => Some(&r.req_cert),
            _ => None,
        };
        let Some(id) = single else {
            // Several CertIDs, or none of ours: a fresh answer, on the budget
            // (an "unauthorized" costs no signature).
            if list.iter().any(|r| self.names_our_ca(&r.req_cert)) && !self.take_budget(now) {
                return Err(Failure::TryLater);
            }
            return self.sign_and_keep(list, nonce, now, log, None);
        };
        let serial = hex::encode(id.serial_number.as_bytes());
        let status = self.status_key(&serial)?;
        let key = id.to_der()?;
        let kept = self.kept.lock().ok().and_then(|k| {
            k.get(&key)
                .filter(|c| c.status == status && now < c.until)
                .map(|c| c.der.clone())
        });
        match (kept, nonce) {
            // The kept answer, unless a nonce asks for a fresh one and the
            // budget allows it.
            (Some(der), None) => {
                log.certs = format!("{serial}=kept");
                Ok(der)
            }
            (Some(der), Some(n)) => {
                if self.take_budget(now) {
                    match self.sign_and_keep(list, Some(n), now, log, None) {
                        Err(Failure::TryLater) => {
                            log.certs = format!("{serial}=kept (nonce not echoed: key operations busy)");
                            Ok(der)
                        }
                        signed => signed,
                    }
                } else {
                    log.certs = format!("{serial}=kept (nonce not echoed: budget spent)");
                    Ok(der)
                }
            }
            // Nothing kept: one signature from the budget; kept when it
            // echoes no nonce.
            (None, n) => {
                if !self.take_budget(now) {
                    return Err(Failure::TryLater);
                }
                let keep = if n.is_none() { Some((key, status)) } else { None };
                self.sign_and_keep(list, n, now, log, keep)
            }
        }
    }

    /// Take one fresh signature from the budget.
    fn take_budget(&self, now: SystemTime) -> bool {
        self.budget.lock().map(|mut b| b.take(now)).unwrap_or(false)
    }

    /// The stored status of `serial` as a cache key (None: unknown to us).
    fn status_key(&self, serial: &str) -> Result<StatusKey, Failure> {
        Ok(self
            .storage
            .certificate(serial)?
            .filter(|c| self.issued_by_us(c))
            .map(|c| (c.revoked_at, c.reason)))
    }

    /// Sign a response for `list` (echoing `nonce` when given) and, when
    /// `keep` names its CertID and status, keep it.
    fn sign_and_keep(
        &self,
        list: &[x509_ocsp::Request],
        nonce: Option<Extension>,
        now: SystemTime,
        log: &mut OcspLog,
        keep: Option<(Vec<u8>, StatusKey)>,
    ) -> Result<Vec<u8>, Failure> {
        let this_update = generalized(now)?;
        let next_update = generalized(now + self.validity)?;
        let mut responses = Vec::with_capacity(list.len());
        let mut ours = 0usize;
        let mut statuses = Vec::with_capacity(list.len());
        for r in list {
            let id = &r.req_cert;
            let serial = hex::encode(id.serial_number.as_bytes());
            // A CertID for another issuer is answered unknown when the request
            // also asks about ours (RFC 6960 §2.2: "unknown" covers an issuer
            // this responder does not serve); see below for when none is ours.
            let (status, shown) = if self.names_our_ca(id) {
                ours += 1;
                let s = self.status_of(&serial)?;
                let shown = status_name(&s);
                (s, shown)
            } else {
                (CertStatus::unknown(), "foreign")
            };
            statuses.push(format!("{serial}={shown}"));
            responses.push(SingleResponse {
                // Echoed as received, hash algorithm parameters included, so
                // that the client matches it byte for byte.
                cert_id: id.clone(),
                cert_status: status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            });
        }
        log.certs = statuses.join(",");
        // RFC 5019 §2.2.3: a responder that is not authoritative for the
        // certificate asked about answers "unauthorized". When no CertID names
        // this CA, that is the honest answer, and the CA key signs nothing
        // about certificates it never saw (a signed "unknown" would invite
        // clients to treat this responder as one for that issuer).
        if ours == 0 {
            return Err(Failure::Unauthorized);
        }
        log.nonce = nonce.is_some();
        let tbs = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(self.key_hash.clone())?),
            produced_at: this_update,
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let alg = self.ca.signature_algorithm();
        let Some(_permit) = self.key_gate.enter() else {
            return Err(Failure::TryLater);
        };
        let signature = self
            .ca
            .key
            .sign(alg, &tbs.to_der()?)
            .map_err(|e| Failure::Internal(format!("signing: {e}")))?;
        self.signatures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: alg.algorithm_identifier(),
            signature: BitString::from_bytes(&signature)?,
            // Signed by the CA itself: the client has its certificate already.
            certs: None,
        };
        let der = OcspResponse::successful(basic)?.to_der()?;
        if let (Some((key, status)), Ok(mut kept)) = (keep, self.kept.lock()) {
            if kept.len() >= MAX_KEPT {
                kept.retain(|_, c| now < c.until);
                if kept.len() >= MAX_KEPT {
                    kept.clear();
                }
            }
            kept.insert(
                key,
                Kept {
                    der: der.clone(),
                    status,
                    until: now + self.validity / 2,
                },
            );
        }
        Ok(der)
    }

    /// Whether a CertID names this CA: a hash algorithm we know, and both
    /// the name and key hashes equal to ours under it.
    fn names_our_ca(&self, id: &CertId) -> bool {
        let params_ok = match &id.hash_algorithm.parameters {
            None => true,
            Some(p) => p.is_null(),
        };
        params_ok
            && DigestAlgorithm::from_oid(&id.hash_algorithm.oid).is_some_and(|d| {
                self.issuer.iter().any(|h| {
                    h.digest == d
                        && h.name.as_slice() == id.issuer_name_hash.as_bytes()
                        && h.key.as_slice() == id.issuer_key_hash.as_bytes()
                })
            })
    }

    /// Good, revoked or unknown, from storage at this moment.
    fn status_of(&self, serial: &str) -> Result<CertStatus, Failure> {
        let Some(c) = self.storage.certificate(serial)? else {
            return Ok(CertStatus::unknown());
        };
        if !self.issued_by_us(&c) {
            // The same serial from an earlier CA (rollover keeps the name): not ours to vouch for.
            return Ok(CertStatus::unknown());
        }
        Ok(match c.revoked_at {
            None => CertStatus::good(),
            Some(at) => CertStatus::Revoked(RevokedInfo {
                revocation_time: generalized(UNIX_EPOCH + Duration::from_secs(at.max(0).unsigned_abs()))?,
                revocation_reason: c.reason.and_then(reason),
            }),
        })
    }

    /// Whether a stored certificate was issued by the current CA key: same
    /// issuer name, and an authorityKeyIdentifier (when present) of our key.
    fn issued_by_us(&self, c: &IssuedCert) -> bool {
        let Ok(cert) = Certificate::from_der(&c.der) else {
            tracing::warn!(serial = %c.serial, "stored certificate does not parse");
            return false;
        };
        let tbs = &cert.tbs_certificate;
        if tbs.issuer != self.ca.certificate.tbs_certificate.subject {
            return false;
        }
        let aki = tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == AuthorityKeyIdentifier::OID)
            .and_then(|e| AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).ok());
        match aki.and_then(|a| a.key_identifier) {
            Some(kid) => kid.as_bytes() == self.key_hash.as_slice(),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use crate::storage::{SqliteStorage, Transaction, TxState};
    use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
    use enrolkit_keys::{KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
    use enrolkit_pki::{Profile, Request};
    use std::str::FromStr;
    use x509_cert::name::Name;
    use x509_ocsp::ext::Nonce;
    use x509_ocsp::OcspRequest;

    struct Fixture {
        ca: Arc<Authority>,
        storage: Arc<SqliteStorage>,
        responder: OcspResponder,
        leaf: Certificate,
    }

    fn authority(spec: KeySpec, name: &str) -> Authority {
        let key = SoftwareKey::generate(spec).unwrap();
        Authority::new_root(
            Box::new(key),
            Name::from_str(name).unwrap(),
            SystemTime::now(),
            Duration::from_secs(86400 * 30),
            &mut rand_core::OsRng,
        )
        .unwrap()
    }

    fn issue(ca: &Authority, storage: &SqliteStorage, cn: &str) -> Certificate {
        let key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let req = Request {
            subject: Name::from_str(&format!("CN={cn}")).unwrap(),
            public_key: key.public_key().clone(),
            dns_names: vec![],
            ip_addresses: vec![],
        };
        let cert = ca
            .issue(&req, &Profile::default(), SystemTime::now(), &mut rand_core::OsRng)
            .unwrap();
        let issued = IssuedCert::from_certificate(&cert).unwrap();
        let tx = Transaction {
            transaction_id: format!("tx-{cn}"),
            key_id: issued.serial.clone(),
            subject: issued.subject.clone(),
            csr: vec![],
            state: TxState::Issued(issued.serial.clone()),
            created: 0,
        };
        storage.record(&tx, None, Some(&issued), 0).unwrap();
        cert
    }

    fn fixture(spec: KeySpec) -> Fixture {
        let ca = Arc::new(authority(spec, "CN=OCSP Test CA,O=enrolkit"));
        let storage = Arc::new(SqliteStorage::in_memory().unwrap());
        let leaf = issue(&ca, &storage, "leaf");
        let responder = OcspResponder::new(OcspSetup {
            ca: ca.clone(),
            storage: storage.clone(),
            validity: Duration::from_secs(3600),
        })
        .unwrap();
        Fixture {
            ca,
            storage,
            responder,
            leaf,
        }
    }

    fn cert_id(issuer: &Certificate, serial: &[u8], digest: DigestAlgorithm) -> CertId {
        let tbs = &issuer.tbs_certificate;
        CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid: digest.oid(),
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: OctetString::new(digest.digest(&tbs.subject.to_der().unwrap())).unwrap(),
            issuer_key_hash: OctetString::new(
                digest.digest(tbs.subject_public_key_info.subject_public_key.raw_bytes()),
            )
            .unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).unwrap(),
        }
    }

    fn request(ids: Vec<CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
        let exts = nonce.map(|n| {
            vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(Nonce::new(n.to_vec()).unwrap().to_der().unwrap()).unwrap(),
            }]
        });
        OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: ids
                    .into_iter()
                    .map(|req_cert| x509_ocsp::Request {
                        req_cert,
                        single_request_extensions: None,
                    })
                    .collect(),
                request_extensions: exts,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    /// Parse a successful response and check its signature with the CA key.
    fn basic(ca: &Authority, der: &[u8]) -> BasicOcspResponse {
        let r = OcspResponse::from_der(der).unwrap();
        assert_eq!(r.response_status, OcspResponseStatus::Successful);
        let bytes = r.response_bytes.unwrap();
        assert_eq!(bytes.response_type, const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC);
        let b = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        let alg = SignatureAlgorithm::from_oids(&b.signature_algorithm.oid, None).unwrap();
        assert_eq!(alg, ca.signature_algorithm());
        let spki_der = ca.certificate.tbs_certificate.subject_public_key_info.to_der().unwrap();
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap();
        enrolkit_keys::verify(
            &spki,
            alg,
            &b.tbs_response_data.to_der().unwrap(),
            b.signature.as_bytes().unwrap(),
        )
        .expect("response signature verifies with the CA key");
        b
    }

    fn status(der: &[u8]) -> OcspResponseStatus {
        OcspResponse::from_der(der).unwrap().response_status
    }

    #[test]
    fn a_repeated_request_costs_no_signature_until_the_status_or_the_clock_moves() {
        let f = fixture(KeySpec::EcP256);
        let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let id = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha256);
        let t0 = SystemTime::now();
        let (first, _) = f.responder.respond(&request(vec![id.clone()], None), t0);
        for i in 1..200u64 {
            let (again, log) = f
                .responder
                .respond(&request(vec![id.clone()], None), t0 + Duration::from_millis(i));
            assert_eq!(again, first, "the kept response, byte for byte");
            assert!(log.certs.ends_with("=kept"), "{}", log.certs);
        }
        assert_eq!(f.responder.signatures(), 1, "200 requests, one signature");
        // Revoked in storage: the next answer is new and says so.
        f.storage.revoke(&hex::encode(&serial), 1_700_000_000, 1).unwrap();
        let (revoked, _) = f
            .responder
            .respond(&request(vec![id.clone()], None), t0 + Duration::from_secs(1));
        assert!(matches!(
            basic(&f.ca, &revoked).tbs_response_data.responses[0].cert_status,
            CertStatus::Revoked(_)
        ));
        assert_eq!(f.responder.signatures(), 2);
        // Half the validity (an hour) later: signed anew, still current.
        let later = t0 + Duration::from_secs(1801);
        let (fresh, _) = f.responder.respond(&request(vec![id], None), later);
        assert_ne!(fresh, revoked);
        assert_eq!(f.responder.signatures(), 3);
        let b = basic(&f.ca, &fresh);
        assert!(b.tbs_response_data.responses[0].this_update.0.to_system_time() >= later - Duration::from_secs(1));
    }

    #[test]
    fn a_full_key_gate_answers_try_later_or_the_kept_response_and_signs_nothing() {
        let f = fixture(KeySpec::EcP256);
        let gate = Arc::new(KeyGate::new(1, Duration::from_millis(20)));
        let responder = OcspResponder::new(OcspSetup {
            ca: f.ca.clone(),
            storage: f.storage.clone(),
            validity: Duration::from_secs(3600),
        })
        .unwrap()
        .with_key_gate(gate.clone());
        let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let id = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha256);
        let now = SystemTime::now();
        // The one permit is held (a SCEP decryption, say): nothing kept yet,
        // so the answer is tryLater, and no signature is made.
        let held = gate.enter().unwrap();
        let (busy, log) = responder.respond(&request(vec![id.clone()], None), now);
        assert_eq!(status(&busy), OcspResponseStatus::TryLater, "{}", log.outcome);
        assert!(log.outcome.contains("busy"), "{}", log.outcome);
        assert_eq!(responder.signatures(), 0);
        drop(held);
        let (kept, _) = responder.respond(&request(vec![id.clone()], None), now);
        basic(&f.ca, &kept);
        assert_eq!(responder.signatures(), 1);
        // Full again: a nonce asks for a fresh answer, the kept one is sent.
        let _held = gate.enter().unwrap();
        let (answer, log) = responder.respond(&request(vec![id], Some(b"0123456789abcdef")), now);
        assert_eq!(answer, kept, "{}", log.certs);
        assert!(log.certs.contains("key operations busy"), "{}", log.certs);
        assert_eq!(responder.signatures(), 1);
    }

    #[test]
    fn nonces_and_unknown_serials_cannot_make_the_ca_key_sign_past_its_budget() {
        let f = fixture(KeySpec::EcP256);
        let responder = OcspResponder::new(OcspSetup {
            ca: f.ca.clone(),
            storage: f.storage.clone(),
            validity: Duration::from_secs(3600),
        })
        .unwrap()
        .with_fresh_signatures_per_second(10);
        let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let id = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha1);
        let t0 = SystemTime::now();
        let (kept, _) = responder.respond(&request(vec![id.clone()], None), t0);
        // A flood of nonces within one second: ten fresh answers echo theirs,
        // the rest get the kept one without a nonce.
        let mut echoed = 0;
        for i in 0..500u32 {
            let nonce = [(i % 251) as u8; 16];
            let (der, log) = responder.respond(&request(vec![id.clone()], Some(&nonce)), t0);
            assert_eq!(status(&der), OcspResponseStatus::Successful);
            if log.nonce {
                echoed += 1;
            } else {
                assert_eq!(der, kept);
            }
        }
        assert!(echoed <= 10, "{echoed} fresh signatures in one second");
        assert!(responder.signatures() <= 11);
        // Random serials (never kept, never the same): past the budget, tryLater.
        let mut try_later = 0;
        for i in 0..200u32 {
            let id = cert_id(&f.ca.certificate, &(1_000_000 + i).to_be_bytes(), DigestAlgorithm::Sha1);
            let (der, _) = responder.respond(&request(vec![id], None), t0);
            if status(&der) == OcspResponseStatus::TryLater {
                try_later += 1;
            }
        }
        assert!(try_later >= 190, "{try_later}");
        assert!(responder.signatures() <= 11);
        // A second later the budget is back.
        let (der, log) = responder.respond(&request(vec![id], Some(&[9u8; 16])), t0 + Duration::from_secs(1));
        assert_eq!(status(&der), OcspResponseStatus::Successful);
        assert!(log.nonce);
    }

    #[test]
    fn good_then_revoked_with_sha1_and_sha256_cert_ids() {
        for spec in [KeySpec::EcP256, KeySpec::Rsa2048] {
            let f = fixture(spec);
            let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
            let now = SystemTime::now();
            for digest in [DigestAlgorithm::Sha1, DigestAlgorithm::Sha256] {
                let id = cert_id(&f.ca.certificate, &serial, digest);
                let (der, log) = f.responder.respond(&request(vec![id.clone()], None), now);
                assert_eq!(log.outcome, "successful");
                let b = basic(&f.ca, &der);
                let r = &b.tbs_response_data;
                assert_eq!(r.responses.len(), 1);
                assert_eq!(r.responses[0].cert_id, id);
                assert!(matches!(r.responses[0].cert_status, CertStatus::Good(_)));
                assert_eq!(
                    r.responder_id,
                    ResponderId::ByKey(
                        OctetString::new(enrolkit_pki::key_identifier(
                            &f.ca.certificate.tbs_certificate.subject_public_key_info
                        ))
                        .unwrap()
                    )
                );
                let this = r.responses[0].this_update.0.to_system_time();
                let next = r.responses[0].next_update.unwrap().0.to_system_time();
                assert_eq!(next.duration_since(this).unwrap(), Duration::from_secs(3600));
                assert!(r.response_extensions.is_none(), "no nonce asked, none sent");
            }
            // Revoked in storage (as `mef revoke` does): the next answer says so, no restart.
            f.storage.revoke(&hex::encode(&serial), 1_700_000_000, 1).unwrap();
            let id = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha1);
            let (der, _) = f.responder.respond(&request(vec![id], None), now);
            let b = basic(&f.ca, &der);
            match &b.tbs_response_data.responses[0].cert_status {
                CertStatus::Revoked(info) => {
                    assert_eq!(
                        info.revocation_time.0.to_system_time(),
                        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
                    );
                    assert_eq!(info.revocation_reason, Some(CrlReason::KeyCompromise));
                }
                other => panic!("expected revoked, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_serial_and_nonce_echo() {
        let f = fixture(KeySpec::EcP256);
        let id = cert_id(&f.ca.certificate, &[0x12, 0x34], DigestAlgorithm::Sha1);
        let nonce = [7u8; 16];
        let (der, log) = f.responder.respond(&request(vec![id], Some(&nonce)), SystemTime::now());
        assert!(log.nonce);
        assert_eq!(log.certs, "1234=unknown");
        let b = basic(&f.ca, &der);
        assert!(matches!(
            b.tbs_response_data.responses[0].cert_status,
            CertStatus::Unknown(_)
        ));
        assert_eq!(b.nonce().unwrap(), Nonce::new(nonce.to_vec()).unwrap());
        // A nonce longer than RFC 8954's 32 octets is not echoed (and not signed).
        let id = cert_id(&f.ca.certificate, &[0x12, 0x34], DigestAlgorithm::Sha1);
        let (der, log) = f
            .responder
            .respond(&request(vec![id], Some(&[1u8; 33])), SystemTime::now());
        assert!(!log.nonce);
        assert!(basic(&f.ca, &der).nonce().is_none());
    }

    #[test]
    fn another_issuer_is_unauthorized_alone_and_unknown_beside_ours() {
        let f = fixture(KeySpec::EcP256);
        let other = authority(KeySpec::EcP256, "CN=Someone Else,O=elsewhere");
        let theirs = cert_id(&other.certificate, &[0x01], DigestAlgorithm::Sha1);
        let (der, log) = f
            .responder
            .respond(&request(vec![theirs.clone()], None), SystemTime::now());
        assert_eq!(status(&der), OcspResponseStatus::Unauthorized);
        assert!(OcspResponse::from_der(&der).unwrap().response_bytes.is_none());
        assert!(log.outcome.starts_with("unauthorized"), "{}", log.outcome);
        // Our CA's name with another key (a rollover CA): not ours either.
        let mut same_name = theirs.clone();
        same_name.issuer_name_hash = cert_id(&f.ca.certificate, &[1], DigestAlgorithm::Sha1).issuer_name_hash;
        let (der, _) = f.responder.respond(&request(vec![same_name], None), SystemTime::now());
        assert_eq!(status(&der), OcspResponseStatus::Unauthorized);
        // Mixed: ours answered, theirs unknown.
        let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let ours = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha256);
        let (der, log) = f
            .responder
            .respond(&request(vec![ours, theirs], None), SystemTime::now());
        let b = basic(&f.ca, &der);
        assert!(matches!(
            b.tbs_response_data.responses[0].cert_status,
            CertStatus::Good(_)
        ));
        assert!(matches!(
            b.tbs_response_data.responses[1].cert_status,
            CertStatus::Unknown(_)
        ));
        assert!(log.certs.ends_with("01=foreign"), "{}", log.certs);
    }

    #[test]
    fn a_certificate_of_a_previous_ca_with_the_same_name_is_unknown() {
        let f = fixture(KeySpec::EcP256);
        // The old CA had our name but another key; its certificate sits in the same database.
        let old = authority(KeySpec::EcP256, "CN=OCSP Test CA,O=enrolkit");
        let old_leaf = issue(&old, &f.storage, "old");
        let serial = old_leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let id = cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha1);
        let (der, _) = f.responder.respond(&request(vec![id], None), SystemTime::now());
        assert!(matches!(
            basic(&f.ca, &der).tbs_response_data.responses[0].cert_status,
            CertStatus::Unknown(_)
        ));
    }

    #[test]
    fn malformed_requests_get_unsigned_malformed_request() {
        let f = fixture(KeySpec::EcP256);
        let now = SystemTime::now();
        let empty = request(vec![], None);
        let too_many = request(
            (0..=MAX_CERT_IDS as u8)
                .map(|i| cert_id(&f.ca.certificate, &[i + 1], DigestAlgorithm::Sha1))
                .collect(),
            None,
        );
        let mut truncated = request(vec![cert_id(&f.ca.certificate, &[1], DigestAlgorithm::Sha1)], None);
        truncated.truncate(truncated.len() - 3);
        for bad in [
            b"hello".to_vec(),
            vec![],
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            empty,
            too_many,
            truncated,
            vec![0u8; MAX_REQUEST + 1],
        ] {
            let (der, log) = f.responder.respond(&bad, now);
            assert_eq!(der, vec![0x30, 0x03, 0x0a, 0x01, 0x01], "{}", log.outcome);
            assert!(log.outcome.starts_with("malformedRequest: "), "{}", log.outcome);
        }
    }

    #[test]
    fn http_forms() {
        let f = fixture(KeySpec::EcP256);
        let now = SystemTime::now();
        let serial = f.leaf.tbs_certificate.serial_number.as_bytes().to_vec();
        let der = request(vec![cert_id(&f.ca.certificate, &serial, DigestAlgorithm::Sha1)], None);
        let post = |ct: Option<&str>, body: &[u8]| {
            f.responder.handle(
                &OcspHttpRequest {
                    method: "POST",
                    path: "/ocsp",
                    content_type: ct,
                    body,
                },
                now,
            )
        };
        let (r, _) = post(Some("application/ocsp-request"), &der);
        assert_eq!((r.status, r.content_type), (200, CONTENT_TYPE_RESPONSE));
        assert!(matches!(
            basic(&f.ca, &r.body).tbs_response_data.responses[0].cert_status,
            CertStatus::Good(_)
        ));
        assert_eq!(post(None, &der).0.status, 200);
        assert_eq!(post(Some("text/plain"), &der).0.status, 415);
        // GET: standard base64, percent-encoded; also raw '/' and '+', and URL-safe, unpadded.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let encoded: String =
            percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC).to_string();
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
        for form in [encoded, b64, url_safe] {
            let path = format!("/ocsp/{form}");
            let (r, log) = f.responder.handle(
                &OcspHttpRequest {
                    method: "GET",
                    path: &path,
                    content_type: None,
                    body: &[],
                },
                now,
            );
            assert_eq!(r.status, 200, "{}", log.outcome);
            assert_eq!(log.outcome, "successful", "{form}");
            basic(&f.ca, &r.body);
        }
        for bad in ["/ocsp", "/ocsp/", "/ocsp/!!!notbase64", "/ocsp/aGVsbG8="] {
            let (r, log) = f.responder.handle(
                &OcspHttpRequest {
                    method: "GET",
                    path: bad,
                    content_type: None,
                    body: &[],
                },
                now,
            );
            assert_eq!(r.status, 200);
            assert_eq!(
                status(&r.body),
                OcspResponseStatus::MalformedRequest,
                "{bad}: {}",
                log.outcome
            );
        }
        let long = format!("/ocsp/{}", "A".repeat(4 * MAX_REQUEST + 1));
        assert!(decode_get(long.trim_start_matches("/ocsp/")).is_err());
        let (r, _) = f.responder.handle(
            &OcspHttpRequest {
                method: "PUT",
                path: "/ocsp",
                content_type: None,
                body: &der,
            },
            now,
        );
        assert_eq!(r.status, 405);
        assert!(is_ocsp_path("/ocsp") && is_ocsp_path("/ocsp/abc"));
        assert!(!is_ocsp_path("/ocspx") && !is_ocsp_path("/crl"));
    }
}
