//! The EST server (RFC 7030 with RFC 8951): an RA in front of the local CA.
//!
//! Transport-neutral like the SCEP responder: [`EstService::handle`] takes
//! the request as HTTP and TLS saw it ([`EstRequest`], with the [`TlsInfo`]
//! of its connection) and returns status, headers and body; [`crate::http`]
//! puts it on hyper behind either TLS stack.
//!
//! Authorisation of `/simpleenroll` and `/serverkeygen`, first match wins:
//! a certificate-less PSK handshake (RFC 7030 §3.3.3; the identity is known,
//! or the handshake would have failed); a TLS client certificate that chains
//! to the configured trust anchors (and, when we issued it, is neither
//! revoked nor expired); HTTP Basic with a one-time challenge or the static
//! one, when Basic is on (the oneM2M profile turns it off); the CSR's
//! challengePassword as a one-time challenge, when it does not carry the
//! channel binding; a pre-authorised CN; the verifier hook. `/simplereenroll`
//! is authorised only by a valid certificate of ours, whose Subject and
//! subjectAltName the CSR must repeat byte for byte (RFC 7030 §4.2.2) unless
//! the RA override is on.
//!
//! Under manual approval a request is held (202 + Retry-After) with its
//! terms — the EKUs decided for it (an Enrolee's grant's, or the checked
//! request's) and, for `/serverkeygen`, the key type to make — sealed next
//! to the transaction; [`EstService::approve`] issues exactly that. A held
//! `/serverkeygen` gets its key at approval; the key waits sealed in the
//! database (AES-256-GCM under a key derived from the challenge key) until
//! the client's next retry of the same CSR, which takes it (read and delete
//! in one database transaction): it is delivered once, and only over a
//! session of the credential that made the request — the same TLS client
//! certificate or PSK identity. A request with neither (a challenge alone)
//! is held only when linking is required, and its key goes only to a retry
//! whose CSR, signed by the same key, carries the retry connection's
//! channel binding; otherwise it is refused rather than held.

use crate::metrics::{self, Metrics};
use crate::ra::{
    unix, AuthRequest, Authorisation, Authoriser, Basis, Credential, CsrView, Intent, IssueNames, Policy, Protocol,
    Refusal as CoreRefusal, RefusalReason,
};
use crate::seal::Sealer;
use crate::storage::{IssuedCert, Storage, StorageError, Transaction, TxState};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use enrolkit_est::{CsrAttrs, EstPath, LinkedPassword, MediaType, Operation};
use enrolkit_keys::{DigestAlgorithm, KeyKind, KeySpec, SoftwareKey};
use enrolkit_pki::{Authority, Profile};
use enrolkit_pkix::pkcs10::CertificationRequest;
use enrolkit_tls::TlsInfo;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Largest request body accepted (a base64 PKCS#10 is a few kilobytes).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// EST-specific policy, on top of the authorisation [`Policy`] shared with SCEP.
#[derive(Debug, Clone)]
pub struct EstPolicy {
    /// Challenges, static challenge, pre-authorised CNs, verifier hook, manual approval.
    pub auth: Policy,
    /// Accept HTTP Basic (one-time or static challenge as the password).
    pub basic: bool,
    /// A client certificate chaining to the trust anchors authorises `/simpleenroll` and `/serverkeygen`.
    pub client_certificates_authorise: bool,
    /// The CSR's challengePassword must carry the connection's channel
    /// binding (RFC 7030 §3.5); `/csrattrs` then asks for it.
    pub require_linking: bool,
    /// EKUs a CSR may request besides the profile's; anything else is refused.
    pub allowed_ekus: Vec<ObjectIdentifier>,
    /// EKUs `/csrattrs` asks for (the oneM2M enrolment instructions' list).
    pub requested_ekus: Vec<ObjectIdentifier>,
    /// Retry-After sent with 202 while a request waits for an operator.
    pub retry_after: Duration,
    /// Key type `/serverkeygen` generates when the CSR's key says nothing usable.
    pub serverkeygen_key: KeySpec,
    /// The oneM2M profile (TS-0003 clause 8.3.3.3): Basic off; certificate or PSK only.
    pub onem2m: bool,
}

impl Default for EstPolicy {
    fn default() -> Self {
        EstPolicy {
            auth: Policy::default(),
            basic: false,
            client_certificates_authorise: true,
            require_linking: false,
            allowed_ekus: Vec::new(),
            requested_ekus: Vec::new(),
            retry_after: Duration::from_secs(60),
            serverkeygen_key: KeySpec::EcP256,
            onem2m: false,
        }
    }
}

/// A request as HTTP and TLS saw it.
#[derive(Debug, Clone, Copy)]
pub struct EstRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path (no query).
    pub path: &'a str,
    /// Content-Type header.
    pub content_type: Option<&'a str>,
    /// Authorization header.
    pub authorization: Option<&'a str>,
    /// Body.
    pub body: &'a [u8],
    /// The connection.
    pub tls: &'a TlsInfo,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers besides Content-Length (Content-Type first when there is a body).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl EstResponse {
    fn text(status: u16, msg: impl Into<String>) -> Self {
        let mut body = msg.into().into_bytes();
        body.push(b'\n');
        EstResponse {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body,
        }
    }

    /// A base64 body (RFC 8951: wrapped at 64 columns, and the CTE header
    /// sent anyway because older peers still need it).
    fn base64(media: MediaType, der: &[u8]) -> Self {
        EstResponse {
            status: 200,
            headers: vec![
                ("Content-Type", media.as_str().into()),
                (
                    enrolkit_est::media::CONTENT_TRANSFER_ENCODING,
                    enrolkit_est::media::BASE64.into(),
                ),
            ],
            body: enrolkit_est::body::encode_base64(der).into_bytes(),
        }
    }

    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a request did, for the log line.
#[derive(Debug, Clone, Default)]
pub struct EstOutcome {
    /// Operation name, or the path when it was not one.
    pub operation: String,
    /// Label segment.
    pub label: String,
    /// How the client authenticated.
    pub auth: String,
    /// Subject of the CSR.
    pub subject: String,
    /// What happened.
    pub outcome: String,
}

/// Grants made elsewhere that authorise an enrolment: the oneM2M Enrolment
/// Exchange (seed `002` step 8) instructs an Enrolee to enrol a certificate
/// with a given EKU list; the EST server then authorises that Enrolee's CSR
/// on the same TLS credentials and allows exactly those EKUs.
pub trait EnroleeGrants: Send + Sync {
    /// Whether `tls` is an Enrolee's session, and if so what it may enrol.
    fn certificate_grant(&self, tls: &TlsInfo, now: SystemTime) -> crate::rspf::GrantCheck;
}

impl EnroleeGrants for crate::rspf::RspfService {
    fn certificate_grant(&self, tls: &TlsInfo, now: SystemTime) -> crate::rspf::GrantCheck {
        crate::rspf::RspfService::certificate_grant(self, tls, now)
    }
}

/// A grant found for this request.
struct GrantInfo {
    /// The Enrolee's name.
    enrolee: String,
    /// EKUs granted (empty: the profile's).
    ekus: Vec<ObjectIdentifier>,
    /// The only names its certificate may carry.
    names: Vec<String>,
}

type Grant = Option<GrantInfo>;

/// What was decided about a request when it was held for an operator:
/// stored (sealed, bound to the transaction and its CSR) with it, so that
/// approval issues exactly what an immediate answer would have issued.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeldTerms {
    /// EKUs to issue: the Enrolee grant's, or the request's as checked.
    ekus: Vec<ObjectIdentifier>,
    /// The Enrolee whose grant authorised the request, if one did.
    enrolee: Option<String>,
    /// `/serverkeygen`: the key type to generate at approval.
    keygen: Option<KeySpec>,
    /// The names to issue, as the authorisation core decided (absent in
    /// terms held by an older version: the CSR's names then).
    names: Option<IssueNames>,
    /// `/serverkeygen`: who may collect the key (absent in terms held by
    /// an older version: then only a retry bound to its connection, as
    /// [`Requester::Linked`]).
    requester: Option<Requester>,
}

/// The credential a held `/serverkeygen` was asked for with: its key is
/// delivered only over a session of the same one.
#[derive(Clone, PartialEq, Eq)]
enum Requester {
    /// The TLS client certificate (SHA-256 of its DER).
    Certificate(Vec<u8>),
    /// The PSK identity.
    Psk(String),
    /// No session credential (a challenge, the verifier hook, a
    /// pre-authorised CN): a retry whose CSR, signed by the request's key,
    /// carries the channel binding of the connection it is sent on.
    Linked,
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requester::Certificate(h) => write!(f, "Certificate({})", hex::encode(h)),
            Requester::Psk(id) => write!(f, "Psk({id:?})"),
            Requester::Linked => f.write_str("Linked"),
        }
    }
}

impl Requester {
    /// The session's own credential: its trusted client certificate, else its PSK identity.
    fn of(tls: &TlsInfo) -> Option<Requester> {
        if let Some(der) = tls.trusted_peer_certificate() {
            return Some(Requester::Certificate(DigestAlgorithm::Sha256.digest(der)));
        }
        tls.psk_identity.clone().map(Requester::Psk)
    }

    /// Whether `csr` on `tls` comes from this requester (compared in constant time).
    fn matches(&self, csr: &CertificationRequest, tls: &TlsInfo) -> bool {
        use subtle::ConstantTimeEq;
        match self {
            Requester::Certificate(h) => tls
                .trusted_peer_certificate()
                .is_some_and(|der| bool::from(DigestAlgorithm::Sha256.digest(der).as_slice().ct_eq(h))),
            Requester::Psk(id) => tls
                .psk_identity
                .as_deref()
                .is_some_and(|p| bool::from(p.as_bytes().ct_eq(id.as_bytes()))),
            Requester::Linked => linked_to(csr, tls),
        }
    }
}

/// Whether the CSR's challengePassword carries this connection's channel binding.
fn linked_to(csr: &CertificationRequest, tls: &TlsInfo) -> bool {
    match (&tls.channel_binding, csr.challenge_password()) {
        (Some(b), Some(pw)) => b.matches(pw.as_str()),
        _ => false,
    }
}

impl HeldTerms {
    const VERSION: &'static str = "held-terms 1";

    /// One item per line: `eku OID`, `enrolee NAME` (hex), `keygen TYPE`,
    /// `names …` (hex), `requester cert SHA256|psk IDENTITY (hex)|linked`.
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = String::from(Self::VERSION);
        for e in &self.ekus {
            out.push_str(&format!("\neku {e}"));
        }
        if let Some(n) = &self.enrolee {
            out.push_str(&format!("\nenrolee {}", hex::encode(n)));
        }
        if let Some(k) = self.keygen {
            out.push_str(&format!("\nkeygen {}", key_spec_name(k)));
        }
        if let Some(n) = &self.names {
            out.push_str(&format!("\nnames {}", hex::encode(n.encode())));
        }
        match &self.requester {
            Some(Requester::Certificate(h)) => out.push_str(&format!("\nrequester cert {}", hex::encode(h))),
            Some(Requester::Psk(id)) => out.push_str(&format!("\nrequester psk {}", hex::encode(id))),
            Some(Requester::Linked) => out.push_str("\nrequester linked"),
            None => {}
        }
        Zeroizing::new(out.into_bytes())
    }

    fn decode(b: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(b).map_err(|_| "held terms are not text")?;
        let mut lines = text.lines();
        if lines.next() != Some(Self::VERSION) {
            return Err("held terms of an unknown version".into());
        }
        let mut t = HeldTerms {
            ekus: Vec::new(),
            enrolee: None,
            keygen: None,
            names: None,
            requester: None,
        };
        for l in lines {
            match l.split_once(' ') {
                Some(("eku", o)) => t
                    .ekus
                    .push(ObjectIdentifier::new(o).map_err(|e| format!("held terms: EKU {o}: {e}"))?),
                Some(("enrolee", h)) => {
                    let raw = hex::decode(h).map_err(|e| format!("held terms: enrolee: {e}"))?;
                    t.enrolee = Some(String::from_utf8(raw).map_err(|_| "held terms: enrolee is not text")?);
                }
                Some(("names", h)) => {
                    let raw = hex::decode(h).map_err(|e| format!("held terms: names: {e}"))?;
                    t.names = Some(IssueNames::decode(&raw)?);
                }
                Some(("requester", r)) => {
                    t.requester = Some(match r.split_once(' ') {
                        Some(("cert", h)) => {
                            Requester::Certificate(hex::decode(h).map_err(|e| format!("held terms: requester: {e}"))?)
                        }
                        Some(("psk", h)) => {
                            let raw = hex::decode(h).map_err(|e| format!("held terms: requester: {e}"))?;
                            Requester::Psk(String::from_utf8(raw).map_err(|_| "held terms: PSK identity is not text")?)
                        }
                        None if r == "linked" => Requester::Linked,
                        _ => return Err(format!("held terms: requester {r:?}")),
                    })
                }
                Some(("keygen", k)) => {
                    t.keygen = Some(key_spec_from_name(k).ok_or_else(|| format!("held terms: key type {k}"))?)
                }
                _ => return Err(format!("held terms: unknown item {l:?}")),
            }
        }
        Ok(t)
    }
}

fn key_spec_name(k: KeySpec) -> &'static str {
    match k {
        KeySpec::EcP256 => "ec-p256",
        KeySpec::Rsa2048 => "rsa2048",
        KeySpec::Rsa3072 => "rsa3072",
        KeySpec::Rsa4096 => "rsa4096",
    }
}

fn key_spec_from_name(n: &str) -> Option<KeySpec> {
    [KeySpec::EcP256, KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096]
        .into_iter()
        .find(|k| key_spec_name(*k) == n)
}

/// Label of the key, derived from the challenge key, that seals held terms
/// and server-generated keys at rest. Not UTF-8, so never the input of a
/// challenge or token hash under the same key.
const SEAL_LABEL: &[u8] = b"\xffenrolkit EST: held requests and server-generated keys at rest\x00v1";

/// Associated data of a transaction's sealed terms: the transaction and its CSR.
fn terms_aad(tx: &Transaction) -> Vec<u8> {
    let mut a = b"enrolkit EST held terms\0".to_vec();
    for part in [tx.transaction_id.as_bytes(), b"\0", tx.key_id.as_bytes(), b"\0"] {
        a.extend_from_slice(part);
    }
    a.extend_from_slice(&DigestAlgorithm::Sha256.digest(&tx.csr));
    a
}

/// Whether `sealed` is the held terms this MEF sealed for `tx` (under the
/// challenge key it holds): for the proxy's relay, which forwards only
/// records this MEF made.
pub(crate) fn held_terms_open(challenge_key: &[u8; 32], tx: &Transaction, sealed: &[u8]) -> bool {
    Sealer::new(&crate::seal::derive_key(challenge_key, SEAL_LABEL))
        .and_then(|s| s.open(&terms_aad(tx), sealed))
        .is_ok()
}

/// Associated data of a transaction's sealed generated key.
fn key_aad(txid: &str, key_id: &str) -> Vec<u8> {
    let mut a = b"enrolkit EST generated key\0".to_vec();
    for part in [txid.as_bytes(), b"\0", key_id.as_bytes()] {
        a.extend_from_slice(part);
    }
    a
}

/// What a retry of an already delivered held `/serverkeygen` is told.
pub const KEY_DELIVERED: &str = "the server-generated key for this request was already delivered; send a new request";

/// Everything the service needs at start-up.
pub struct EstSetup {
    /// The issuing CA (shared with the SCEP responder).
    pub ca: Arc<Authority>,
    /// Secret for hashing challenge passwords (the same as SCEP's, so `mef
    /// challenge add` serves both); the key sealing held requests' terms and
    /// server-generated keys is derived from it, so replacing it leaves
    /// requests held before unapprovable and their keys unreadable.
    pub challenge_key: Zeroizing<[u8; 32]>,
    /// State.
    pub storage: Arc<dyn Storage>,
    /// Policy.
    pub policy: EstPolicy,
    /// Profile of issued certificates.
    pub profile: Profile,
}

/// The EST server.
pub struct EstService {
    ca: Arc<Authority>,
    auth: Authoriser,
    /// Seals held terms and server-generated keys (key derived from `challenge_key`).
    sealer: Sealer,
    storage: Arc<dyn Storage>,
    policy: EstPolicy,
    profile: Profile,
    csr_attrs: CsrAttrs,
    csr_attrs_der: Vec<u8>,
    cacerts_der: Vec<u8>,
    grants: Option<Arc<dyn EnroleeGrants>>,
    metrics: Arc<Metrics>,
}

/// A refusal: HTTP status and reason.
struct Refusal(u16, String);

impl Refusal {
    fn new(status: u16, msg: impl Into<String>) -> Self {
        Refusal(status, msg.into())
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "internal error");
    Refusal(500, "internal error".into())
}

/// How a request was authorised: the core's decision (its `consume`
/// goes with the issuance; `renews`, the serial a /simplereenroll renews,
/// makes the transaction that renewal's, so the same key renewed again
/// gets a new certificate, and a retransmission the same).
type Authorised = Authorisation;

/// The core's refusal on EST's wire, in one place: no or wrong credentials
/// 401, a bad key or a re-enrolment not repeating its names (RFC 7030
/// §4.2.2) 400, a failure 500, every other refusal 403.
impl From<CoreRefusal> for Refusal {
    fn from(r: CoreRefusal) -> Self {
        let status = match r.reason {
            RefusalReason::Unauthenticated | RefusalReason::BadCredential => 401,
            RefusalReason::KeyRefused | RefusalReason::RenewalNamesDiffer => 400,
            RefusalReason::Internal => 500,
            _ => 403,
        };
        Refusal(status, r.detail)
    }
}

impl EstService {
    /// Build the service.
    pub fn new(s: EstSetup) -> Result<Self, String> {
        if s.policy.onem2m && s.policy.basic {
            return Err("the oneM2M profile does not allow HTTP Basic authentication".into());
        }
        let mut attrs = CsrAttrs::new();
        if s.policy.require_linking {
            attrs = attrs.with_challenge_password();
        }
        if !s.policy.requested_ekus.is_empty() {
            attrs = attrs
                .with_extension_request_ekus(&s.policy.requested_ekus)
                .map_err(|e| format!("CSR attributes: {e}"))?;
        }
        let csr_attrs_der = attrs.to_der().map_err(|e| format!("CSR attributes: {e}"))?;
        let mut cacerts = vec![s.ca.certificate.clone()];
        cacerts.extend(s.ca.chain.iter().cloned());
        let cacerts_der =
            enrolkit_pkix::certs_only::encode(&cacerts, &[]).map_err(|e| format!("CA certificates: {e}"))?;
        let sealer = Sealer::new(&crate::seal::derive_key(&s.challenge_key, SEAL_LABEL))
            .map_err(|e| format!("sealing key: {e}"))?;
        let auth = Authoriser::new(
            s.ca.certificate.tbs_certificate.subject.clone(),
            s.storage.clone(),
            s.challenge_key,
            s.policy.auth.clone(),
        );
        Ok(EstService {
            ca: s.ca,
            auth,
            sealer,
            storage: s.storage,
            policy: s.policy,
            profile: s.profile,
            csr_attrs: attrs,
            csr_attrs_der,
            cacerts_der,
            grants: None,
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Count issuances and consumed challenges into `metrics` (those of
    /// `mef serve`; by default, a registry of its own nobody reads).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// An issuance (and the challenge it consumed, if any) is recorded.
    fn count_issued(&self, auth: &Authorised) {
        self.metrics.certificate_issued(metrics::Protocol::Est);
        if auth.consume.is_some() {
            self.metrics.challenge_consumed(metrics::Protocol::Est);
        }
    }

    /// Let `grants` authorise enrolments and fix their EKUs (the RSPF MEF).
    pub fn with_enrolee_grants(mut self, grants: Arc<dyn EnroleeGrants>) -> Self {
        self.grants = Some(grants);
        self
    }

    /// The grant behind this session: none when it is not an Enrolee's; a
    /// refusal when it is one that may not enrol.
    fn grant(&self, tls: &TlsInfo, now: SystemTime) -> Result<Grant, Refusal> {
        use crate::rspf::GrantCheck;
        match self.grants.as_ref().map(|g| g.certificate_grant(tls, now)) {
            None | Some(GrantCheck::NotAnEnrolee) => Ok(None),
            Some(GrantCheck::Refused(why)) => Err(Refusal::new(403, why)),
            Some(GrantCheck::Granted { enrolee, ekus, names }) => Ok(Some(GrantInfo { enrolee, ekus, names })),
        }
    }

    /// The CSR attributes for this request: a grant's EKUs replace the configured ones.
    fn attrs_for(&self, grant: &Grant) -> Result<std::borrow::Cow<'_, CsrAttrs>, Refusal> {
        match grant {
            Some(GrantInfo { ekus, .. }) if !ekus.is_empty() => {
                let mut attrs = CsrAttrs::new();
                if self.policy.require_linking {
                    attrs = attrs.with_challenge_password();
                }
                let attrs = attrs.with_extension_request_ekus(ekus).map_err(internal)?;
                Ok(std::borrow::Cow::Owned(attrs))
            }
            _ => Ok(std::borrow::Cow::Borrowed(&self.csr_attrs)),
        }
    }

    /// The CSR attributes `/csrattrs` returns.
    pub fn csr_attrs(&self) -> &CsrAttrs {
        &self.csr_attrs
    }

    /// Answer one EST request.
    pub fn handle(&self, req: &EstRequest<'_>, now: SystemTime) -> (EstResponse, EstOutcome) {
        let mut log = EstOutcome::default();
        let resp = match self.route(req, now, &mut log) {
            Ok(r) => r,
            Err(Refusal(status, msg)) => {
                log.outcome = format!("{status} {msg}");
                let mut r = EstResponse::text(status, msg);
                if status == 503 {
                    // A cap on held requests (proxy mode): try again later.
                    r.headers
                        .push(("Retry-After", self.policy.retry_after.as_secs().max(1).to_string()));
                }
                if status == 401 && self.policy.basic {
                    r.headers
                        .push(("WWW-Authenticate", "Basic realm=\"enrolkit EST\"".into()));
                }
                r
            }
        };
        if log.outcome.is_empty() {
            log.outcome = resp.status.to_string();
        }
        (resp, log)
    }

    fn route(&self, req: &EstRequest<'_>, now: SystemTime, log: &mut EstOutcome) -> Result<EstResponse, Refusal> {
        let path = EstPath::parse(req.path).map_err(|e| Refusal::new(404, e.to_string()))?;
        log.operation = path.operation.name().into();
        log.label = path.label.as_ref().map(|l| l.as_str().to_owned()).unwrap_or_default();
        if !req.method.eq_ignore_ascii_case(path.operation.method()) {
            return Err(Refusal::new(
                405,
                format!("{} takes {}", path.operation.name(), path.operation.method()),
            ));
        }
        match path.operation {
            Operation::CaCerts => Ok(EstResponse::base64(MediaType::CertsOnly, &self.cacerts_der)),
            Operation::CsrAttrs => {
                // A session that may not enrol still gets the server's attributes.
                let grant = self.grant(req.tls, now).unwrap_or(None);
                let attrs = self.attrs_for(&grant)?;
                if attrs.items.is_empty() {
                    Ok(EstResponse {
                        status: 204,
                        headers: vec![],
                        body: vec![],
                    })
                } else if grant.is_none() {
                    Ok(EstResponse::base64(MediaType::CsrAttrs, &self.csr_attrs_der))
                } else {
                    Ok(EstResponse::base64(
                        MediaType::CsrAttrs,
                        &attrs.to_der().map_err(internal)?,
                    ))
                }
            }
            Operation::FullCmc => Err(Refusal::new(501, "fullcmc is not implemented")),
            // A proxy forwards the client's CSR; the key it would generate
            // would never be the one the upstream certifies.
            Operation::ServerKeyGen if self.auth.policy().forwards_requests => Err(Refusal::new(
                501,
                "serverkeygen is not offered by a proxy: generate the key and use simpleenroll",
            )),
            Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeyGen => {
                let csr = self.read_csr(req)?;
                log.subject = csr.subject().to_string();
                self.check_linking(&csr, req.tls)?;
                let grant = match path.operation {
                    Operation::SimpleReenroll => None,
                    _ => self.grant(req.tls, now)?,
                };
                enrolkit_est::check_satisfies(&*self.attrs_for(&grant)?, &csr)
                    .map_err(|e| Refusal::new(400, e.to_string()))?;
                let ekus = self.check_ekus(&csr, &grant)?;
                let op = path.operation;
                let retry = match (&grant, op) {
                    (None, Operation::SimpleEnroll | Operation::ServerKeyGen) => {
                        self.retry_of_recorded(&csr, op, req.tls)?
                    }
                    _ => None,
                };
                let auth = match retry {
                    Some(a) => a,
                    None => self.authorise(&csr, req, grant.as_ref(), op == Operation::SimpleReenroll, now)?,
                };
                log.auth = auth.basis.to_string();
                let enrolee = grant.map(|g| g.enrolee);
                match path.operation {
                    Operation::ServerKeyGen => self.serverkeygen(&csr, &ekus, enrolee, &auth, req.tls, now),
                    _ => self.enrol(&csr, &ekus, enrolee, &auth, now),
                }
            }
        }
    }

    fn read_csr(&self, req: &EstRequest<'_>) -> Result<CertificationRequest, Refusal> {
        match req.content_type.map(MediaType::parse) {
            Some(Ok(MediaType::Pkcs10)) => {}
            Some(Ok(other)) => {
                return Err(Refusal::new(
                    415,
                    format!("expected Content-Type application/pkcs10, got {}", other.as_str()),
                ))
            }
            Some(Err(e)) => {
                return Err(Refusal::new(
                    415,
                    format!("expected Content-Type application/pkcs10: {e}"),
                ))
            }
            None => return Err(Refusal::new(415, "Content-Type application/pkcs10 is required")),
        }
        // RFC 8951: the body is base64 whatever Content-Transfer-Encoding says.
        let der = enrolkit_est::body::decode_base64(req.body, MAX_REQUEST_BODY)
            .map_err(|e| Refusal::new(400, format!("body is not base64: {e}")))?;
        CertificationRequest::parse(&der).map_err(|e| Refusal::new(400, format!("bad PKCS#10 request: {e}")))
    }

    /// RFC 7030 §3.5: when linking is required the challengePassword must be
    /// this connection's channel binding.
    fn check_linking(&self, csr: &CertificationRequest, tls: &TlsInfo) -> Result<(), Refusal> {
        if !self.policy.require_linking {
            return Ok(());
        }
        let Some(binding) = &tls.channel_binding else {
            return Err(Refusal::new(
                400,
                format!(
                    "identity linking needs a channel binding, and this {} {} connection has none \
                     (use TLS 1.3, or TLS 1.2 on the OpenSSL listener for tls-unique)",
                    tls.backend, tls.version
                ),
            ));
        };
        match csr.challenge_password().map(|p| p.as_str()) {
            Some(pw) if binding.matches(pw) => Ok(()),
            Some(_) => Err(Refusal::new(
                400,
                format!(
                    "challengePassword does not carry this connection's {}",
                    binding_name(binding)
                ),
            )),
            None => Err(Refusal::new(
                400,
                format!(
                    "challengePassword with the connection's {} is required",
                    binding_name(binding)
                ),
            )),
        }
    }

    /// Requested EKUs must be the profile's or explicitly allowed (or, under
    /// an Enrolee's grant, the granted ones); returns what to issue.
    fn check_ekus(&self, csr: &CertificationRequest, grant: &Grant) -> Result<Vec<ObjectIdentifier>, Refusal> {
        let requested = csr.requested_ekus().to_vec();
        if let Some(GrantInfo {
            enrolee: name,
            ekus: granted,
            ..
        }) = grant.as_ref().filter(|g| !g.ekus.is_empty())
        {
            if let Some(bad) = requested.iter().find(|e| !granted.contains(e)) {
                return Err(Refusal::new(
                    403,
                    format!("extended key usage {bad} was not granted to Enrolee {name}"),
                ));
            }
            return Ok(if requested.is_empty() {
                granted.clone()
            } else {
                requested
            });
        }
        if requested.is_empty() {
            return Ok(self.profile.extended_key_usage.clone());
        }
        if let Some(bad) = requested
            .iter()
            .find(|e| !self.profile.extended_key_usage.contains(e) && !self.policy.allowed_ekus.contains(e))
        {
            return Err(Refusal::new(403, format!("extended key usage {bad} is not allowed")));
        }
        Ok(requested)
    }

    /// The authorisation core's decision: the session's credentials (an
    /// RSPF grant, the TLS client certificate, the PSK identity), HTTP
    /// Basic when on, and the CSR's challengePassword when it is not the
    /// channel binding.
    fn authorise(
        &self,
        csr: &CertificationRequest,
        req: &EstRequest<'_>,
        grant: Option<&GrantInfo>,
        renew: bool,
        now: SystemTime,
    ) -> Result<Authorised, Refusal> {
        let tls = req.tls;
        let mut credentials = Vec::new();
        if let Some(g) = grant {
            // The MEF identified the Enrolee (by its own trust anchors, not
            // the listener's client anchors) and its grant decides alone.
            credentials.push(Credential::EnroleeGrant {
                enrolee: &g.enrolee,
                names: &g.names,
            });
            let r = AuthRequest {
                protocol: Protocol::Est,
                intent: Intent::Enrol,
                csr: CsrView::of(csr),
                credentials,
                transaction: "est",
            };
            return self.auth.decide(&r, now).map_err(Refusal::from);
        }
        if let Some(err) = &tls.peer_cert_error {
            return Err(Refusal::new(403, format!("client certificate not trusted: {err}")));
        }
        let peer = match tls.trusted_peer_certificate() {
            Some(der) if renew || self.policy.client_certificates_authorise => {
                Some(Certificate::from_der(der).map_err(|e| Refusal::new(403, format!("client certificate: {e}")))?)
            }
            _ => None,
        };
        if let Some(cert) = &peer {
            credentials.push(Credential::Certificate {
                cert,
                chain: &tls.peer_chain,
                tls_verified: true,
            });
        }
        if let Some(id) = &tls.psk_identity {
            credentials.push(Credential::Psk(id));
        }
        let basic = match (self.policy.basic, req.authorization) {
            (true, Some(h)) => {
                Some(basic_credentials(h).ok_or_else(|| Refusal::new(401, "malformed Basic credentials"))?)
            }
            _ => None,
        };
        if let Some((user, password)) = &basic {
            credentials.push(Credential::Basic { user, password });
        }
        if !self.policy.require_linking {
            if let Some(pw) = csr.challenge_password().map(|p| p.as_str()) {
                credentials.push(Credential::ChallengePassword(pw));
            }
        }
        if renew && peer.is_none() {
            return Err(Refusal::new(
                401,
                "simplereenroll needs the current certificate as TLS client certificate",
            ));
        }
        let r = AuthRequest {
            protocol: Protocol::Est,
            intent: if renew { Intent::Renew } else { Intent::Enrol },
            csr: CsrView::of(csr),
            credentials,
            transaction: "est",
        };
        let decided = self.auth.decide(&r, now).map_err(Refusal::from);
        match decided {
            Err(Refusal(401, m))
                if !self.policy.basic && basic.is_none() && tls.psk_identity.is_none() && peer.is_none() =>
            {
                Err(Refusal(
                    401,
                    format!("{m}: a client certificate from a trusted CA or a pre-shared key is needed"),
                ))
            }
            other => other,
        }
    }

    /// A retry (after 202, or a retransmission) of a request already
    /// recorded: the very same CSR bytes, whose challengePassword or
    /// credentials were checked (and a one-time challenge spent) when it was
    /// first received. Its answer comes from storage, so asking for the
    /// spent challenge again would lock the client out of its own request.
    /// Those bytes may have been seen by others (a log, a database
    /// backup), so what a held `/serverkeygen` hands over is further
    /// checked against the credential that made the request
    /// ([`Requester`]). A different CSR for the same key is authorised anew,
    /// except for a held `/serverkeygen` when it carries this connection's
    /// channel binding: signed by the request's key on this very connection,
    /// it is a retry of it (with linking, each retry's CSR differs).
    fn retry_of_recorded(
        &self,
        csr: &CertificationRequest,
        op: Operation,
        tls: &TlsInfo,
    ) -> Result<Option<Authorised>, Refusal> {
        let kid = hex::encode(DigestAlgorithm::Sha256.digest(&csr.public_key().to_der().map_err(internal)?));
        let txid = match op {
            Operation::ServerKeyGen => format!("est-keygen-{kid}"),
            _ => format!("est-{kid}"),
        };
        let Some(tx) = self.storage.transaction(&txid, &kid).map_err(internal)? else {
            return Ok(None);
        };
        let same_bytes = bool::from(subtle::ConstantTimeEq::ct_eq(tx.csr.as_slice(), csr.der()));
        let linked_retry = op == Operation::ServerKeyGen
            && linked_to(csr, tls)
            && self.storage.held_terms(&txid, &kid).map_err(internal)?.is_some();
        Ok((same_bytes || linked_retry).then(|| Authorisation {
            // Answered from storage: nothing is issued on these terms.
            basis: Basis::Retry,
            names: CsrView::of(csr).as_asked(),
            consume: None,
            renews: None,
            hold: false,
        }))
    }

    fn profile_for(&self, ekus: &[ObjectIdentifier]) -> Profile {
        let mut p = self.profile.clone();
        p.extended_key_usage = ekus.to_vec();
        p
    }

    fn issue_for(
        &self,
        names: &IssueNames,
        public_key: spki::SubjectPublicKeyInfoOwned,
        ekus: &[ObjectIdentifier],
        now: SystemTime,
    ) -> Result<Certificate, Refusal> {
        let r = enrolkit_pki::Request {
            subject: names.subject.clone(),
            public_key,
            dns_names: names.dns.clone(),
            ip_addresses: names.ips.clone(),
        };
        self.ca
            .issue(&r, &self.profile_for(ekus), now, &mut rand_core::OsRng)
            .map_err(|e| Refusal::new(403, e.to_string()))
    }

    fn enrol(
        &self,
        csr: &CertificationRequest,
        ekus: &[ObjectIdentifier],
        enrolee: Option<String>,
        auth: &Authorised,
        now: SystemTime,
    ) -> Result<EstResponse, Refusal> {
        let kid = hex::encode(DigestAlgorithm::Sha256.digest(&csr.public_key().to_der().map_err(internal)?));
        // One transaction per key, and per renewed certificate for
        // /simplereenroll: renewing without a new key must not be answered
        // with the certificate it renews.
        let txid = match &auth.renews {
            Some(serial) => format!("est-re-{kid}-{serial}"),
            None => format!("est-{kid}"),
        };
        // A repeated request (polling after 202, or a retransmission) gets
        // the stored answer; the same key with another request (another
        // CertificationRequestInfo: names, attributes) is a replay and gets
        // nothing. A new signature over the same request is a repeat.
        if let Some(tx) = self.storage.transaction(&txid, &kid).map_err(internal)? {
            if !tx.csr.is_empty() && !same_request(&tx.csr, csr) {
                return Err(Refusal::new(
                    403,
                    format!("transaction {txid} was started with another request for this key; a new request needs a new key"),
                ));
            }
            return self.answer(&tx);
        }
        let mut tx = Transaction {
            transaction_id: txid,
            key_id: kid,
            subject: csr.subject().to_string(),
            csr: csr.der().to_vec(),
            state: TxState::Pending,
            created: unix(now),
        };
        if self.policy.auth.manual_approval {
            let terms = HeldTerms {
                ekus: ekus.to_vec(),
                enrolee,
                keygen: None,
                names: Some(auth.names.clone()),
                requester: None,
            };
            return self.hold(&tx, &terms, auth, now);
        }
        let cert = self.issue_for(&auth.names, csr.public_key().clone(), ekus, now)?;
        let issued = issued_record(&cert)?;
        tx.state = TxState::Issued(issued.serial.clone());
        self.storage
            .record(&tx, auth.consume.as_deref(), Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        self.count_issued(auth);
        self.certs_only(&cert)
    }

    /// Hold a request for an operator: record it with its terms, answer 202.
    fn hold(
        &self,
        tx: &Transaction,
        terms: &HeldTerms,
        auth: &Authorised,
        now: SystemTime,
    ) -> Result<EstResponse, Refusal> {
        // Kept until the request is recorded (see HoldLimit::admit).
        let _permit = match &self.policy.auth.hold_limit {
            Some(limit) => match limit.admit(self.storage.as_ref(), &tx.subject) {
                Ok(p) => Some(p),
                Err(crate::proxy::HoldRefused::Full(why)) => {
                    self.metrics.proxy_event("hold-refused");
                    return Err(Refusal::new(503, why));
                }
                Err(crate::proxy::HoldRefused::Storage(e)) => return Err(internal(e)),
            },
            None => None,
        };
        let sealed = self.sealer.seal(&terms_aad(tx), &terms.encode()).map_err(internal)?;
        self.storage
            .record_held(tx, auth.consume.as_deref(), &sealed, unix(now))
            .map_err(refused_or_internal)?;
        if auth.consume.is_some() {
            self.metrics.challenge_consumed(metrics::Protocol::Est);
        }
        Ok(self.accepted())
    }

    /// The terms a transaction was held with.
    fn terms_of(&self, tx: &Transaction) -> Result<HeldTerms, String> {
        let sealed = self
            .storage
            .held_terms(&tx.transaction_id, &tx.key_id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "{} was held without its terms (by an older version): reject it, and let the client send a new request",
                    tx.transaction_id
                )
            })?;
        let plain = self
            .sealer
            .open(&terms_aad(tx), &sealed)
            .map_err(|e| format!("{}: held terms: {e}", tx.transaction_id))?;
        HeldTerms::decode(&plain)
    }

    /// What approving the held `tx` would issue (names, EKUs, key), for
    /// `mef scep pending list`.
    pub fn pending_terms(&self, tx: &Transaction) -> Result<String, String> {
        let csr = CertificationRequest::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
        let terms = self.terms_of(tx)?;
        let names = terms.names.clone().unwrap_or_else(|| CsrView::of(&csr).as_asked());
        let key = match terms.keygen {
            Some(k) => format!("server-generated {}", key_spec_name(k)),
            None => crate::ra::keys::key_type(csr.public_key())
                .map(|k| k.to_string())
                .unwrap_or_else(|r| r.detail),
        };
        Ok(names.describe(&terms.ekus, &key))
    }

    /// Operator approves a held `/simpleenroll`, `/simplereenroll` or
    /// `/serverkeygen`: the certificate is issued now, from the stored CSR,
    /// with the terms decided when the request was held (the EKUs an
    /// immediate issuance would have had, an Enrolee grant's included).
    /// For `/serverkeygen` the key is generated now, and kept sealed until
    /// delivered. The client gets the answer on its next attempt.
    pub fn approve(&self, txid: &str, key_id: &str, now: SystemTime) -> Result<String, String> {
        let mut key_stored = false;
        let approved = crate::scep::issue_approved(self.storage.as_ref(), txid, key_id, now, |tx| {
            // Verified on receipt; parsed (and the signature checked) again all the same.
            let csr = CertificationRequest::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
            let terms = self.terms_of(tx)?;
            let names = terms.names.clone().unwrap_or_else(|| CsrView::of(&csr).as_asked());
            let Some(spec) = terms.keygen else {
                return self
                    .issue_for(&names, csr.public_key().clone(), &terms.ekus, now)
                    .map_err(|Refusal(_, m)| m);
            };
            let key = SoftwareKey::generate(spec).map_err(|e| format!("key generation: {e}"))?;
            let cert = self
                .issue_for(
                    &names,
                    enrolkit_keys::Signer::public_key(&key).clone(),
                    &terms.ekus,
                    now,
                )
                .map_err(|Refusal(_, m)| m)?;
            let sealed = self
                .sealer
                .seal(&key_aad(txid, key_id), &key.to_pkcs8_der())
                .map_err(|e| e.to_string())?;
            // Stored before the transaction is marked issued: an issued
            // keygen transaction without a key is one already delivered.
            self.storage
                .store_generated_key(txid, key_id, &sealed)
                .map_err(|e| e.to_string())?;
            key_stored = true;
            Ok(cert)
        });
        if approved.is_err() && key_stored {
            // Decided otherwise meanwhile: the key goes.
            if let Err(e) = self.storage.take_generated_key(txid, key_id) {
                tracing::error!(error = %e, txid, "could not delete the generated key of a failed approval");
            }
        }
        approved
    }

    fn accepted(&self) -> EstResponse {
        EstResponse {
            status: 202,
            headers: vec![
                ("Retry-After", self.policy.retry_after.as_secs().max(1).to_string()),
                ("Content-Type", "text/plain; charset=utf-8".into()),
            ],
            body: b"request accepted; waiting for an operator\n".to_vec(),
        }
    }

    fn answer(&self, tx: &Transaction) -> Result<EstResponse, Refusal> {
        match &tx.state {
            TxState::Pending => Ok(self.accepted()),
            TxState::Rejected(_, why) => Err(Refusal::new(403, format!("rejected: {why}"))),
            TxState::Issued(serial) => {
                let c = self
                    .storage
                    .certificate(serial)
                    .map_err(internal)?
                    .ok_or_else(|| internal(format!("issued certificate {serial} missing")))?;
                let cert = Certificate::from_der(&c.der).map_err(internal)?;
                self.certs_only(&cert)
            }
        }
    }

    fn certs_only(&self, cert: &Certificate) -> Result<EstResponse, Refusal> {
        let der = enrolkit_pkix::certs_only::encode(std::slice::from_ref(cert), &[]).map_err(internal)?;
        Ok(EstResponse::base64(MediaType::CertsOnly, &der))
    }

    /// RFC 7030 §4.4: the server makes the key; the CSR gives the names and,
    /// through its own key's type, the type wanted.
    ///
    /// Under manual approval the request is held as `est-keygen-<kid>`, kid
    /// being the SHA-256 of the CSR's SubjectPublicKeyInfo, so a retry (the
    /// same CSR key, proving possession of it again) finds it; the key is
    /// made at approval and handed over once, to the first retry after it
    /// over a session of the credential that made the request (the same
    /// client certificate or PSK identity). A request with neither
    /// (authorised by a challenge, the hook or a pre-authorised CN) is held
    /// only when linking is required, and its key goes only to a retry
    /// whose CSR, signed by the same key, carries the retry connection's
    /// channel binding; without linking it is refused, not held.
    fn serverkeygen(
        &self,
        csr: &CertificationRequest,
        ekus: &[ObjectIdentifier],
        enrolee: Option<String>,
        auth: &Authorised,
        tls: &TlsInfo,
        now: SystemTime,
    ) -> Result<EstResponse, Refusal> {
        let spec = match csr.key_kind() {
            Ok(KeyKind::EcP256) => KeySpec::EcP256,
            Ok(KeyKind::Rsa(bits)) if bits >= 4096 => KeySpec::Rsa4096,
            Ok(KeyKind::Rsa(bits)) if bits >= 3072 => KeySpec::Rsa3072,
            Ok(KeyKind::Rsa(_)) => KeySpec::Rsa2048,
            Err(_) => self.policy.serverkeygen_key,
        };
        let csr_kid = hex::encode(DigestAlgorithm::Sha256.digest(&csr.public_key().to_der().map_err(internal)?));
        let held_txid = format!("est-keygen-{csr_kid}");
        if let Some(tx) = self.storage.transaction(&held_txid, &csr_kid).map_err(internal)? {
            if self
                .storage
                .held_terms(&held_txid, &csr_kid)
                .map_err(internal)?
                .is_some()
            {
                let terms = self.terms_of(&tx).map_err(internal)?;
                let requester = terms.requester.unwrap_or(Requester::Linked);
                if !requester.matches(csr, tls) {
                    tracing::warn!(txid = %tx.transaction_id, "held server-generated key asked for by another credential: refused");
                    return Err(Refusal::new(
                        403,
                        match requester {
                            Requester::Linked => "this request's server-generated key is delivered only to a retry whose CSR, signed by the request's key, carries this connection's channel binding (another credential cannot collect it)",
                            _ => "this request's server-generated key is delivered only over a session of the credential that made the request (the same client certificate or PSK identity)",
                        },
                    ));
                }
                return self.held_keygen_answer(&tx);
            }
            if self.policy.auth.manual_approval {
                // An immediate serverkeygen made this very key: it is not a throw-away one.
                return Err(Refusal::new(
                    400,
                    "this CSR's key was itself made by /serverkeygen; sign the request with a new key",
                ));
            }
        }
        if auth.basis == Basis::Retry {
            // Recognised as a retry of a held request that is not one.
            return Err(Refusal::new(403, "no held /serverkeygen request for this CSR"));
        }
        if self.policy.auth.manual_approval {
            let requester = match Requester::of(tls) {
                Some(r) => r,
                // check_linking made sure the CSR carries this connection's binding.
                None if self.policy.require_linking => Requester::Linked,
                None => {
                    return Err(Refusal::new(
                        403,
                        "a /serverkeygen held for approval needs a client certificate or PSK session, or \
                         require_linking so that the key goes only to a retry carrying its connection's \
                         channel binding: a challenge alone cannot collect a held key",
                    ))
                }
            };
            let tx = Transaction {
                transaction_id: held_txid,
                key_id: csr_kid,
                subject: csr.subject().to_string(),
                csr: csr.der().to_vec(),
                state: TxState::Pending,
                created: unix(now),
            };
            let terms = HeldTerms {
                ekus: ekus.to_vec(),
                enrolee,
                keygen: Some(spec),
                names: Some(auth.names.clone()),
                requester: Some(requester),
            };
            return self.hold(&tx, &terms, auth, now);
        }
        let key = SoftwareKey::generate(spec).map_err(internal)?;
        let cert = self.issue_for(&auth.names, enrolkit_keys::Signer::public_key(&key).clone(), ekus, now)?;
        let issued = issued_record(&cert)?;
        let kid = hex::encode(
            DigestAlgorithm::Sha256.digest(
                &cert
                    .tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .map_err(internal)?,
            ),
        );
        let tx = Transaction {
            transaction_id: format!("est-keygen-{kid}"),
            key_id: kid,
            subject: csr.subject().to_string(),
            csr: csr.der().to_vec(),
            state: TxState::Issued(issued.serial.clone()),
            created: unix(now),
        };
        self.storage
            .record(&tx, auth.consume.as_deref(), Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        self.count_issued(auth);
        keygen_response(&key.to_pkcs8_der(), &cert)
    }

    /// A retry of a held `/serverkeygen`: wait, refusal, or — once — key and certificate.
    fn held_keygen_answer(&self, tx: &Transaction) -> Result<EstResponse, Refusal> {
        let TxState::Issued(serial) = &tx.state else {
            return self.answer(tx);
        };
        let c = self
            .storage
            .certificate(serial)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("issued certificate {serial} missing")))?;
        let cert = Certificate::from_der(&c.der).map_err(internal)?;
        let sealed = self
            .storage
            .take_generated_key(&tx.transaction_id, &tx.key_id)
            .map_err(internal)?
            .ok_or_else(|| Refusal::new(410, KEY_DELIVERED))?;
        let pkcs8 = self
            .sealer
            .open(&key_aad(&tx.transaction_id, &tx.key_id), &sealed)
            .map_err(internal)?;
        tracing::info!(txid = %tx.transaction_id, serial = %serial, "server-generated key delivered and deleted");
        keygen_response(&pkcs8, &cert)
    }

    /// The storage (for the operator commands).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

/// The `/serverkeygen` answer: multipart/mixed, the PKCS#8 key then the certificate.
fn keygen_response(pkcs8: &[u8], cert: &Certificate) -> Result<EstResponse, Refusal> {
    let mut boundary_seed = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut boundary_seed);
    let boundary = enrolkit_est::keygen::new_boundary(&boundary_seed);
    let (content_type, body) =
        enrolkit_est::keygen::encode_serverkeygen_response(pkcs8, cert, &boundary).map_err(internal)?;
    Ok(EstResponse {
        status: 200,
        headers: vec![("Content-Type", content_type)],
        body,
    })
}

/// Whether the stored CSR `stored` asks what `csr` asks: the same subject,
/// key and attributes, whatever the signature and the challengePassword
/// (which carries a channel binding that differs on every TLS session).
fn same_request(stored: &[u8], csr: &CertificationRequest) -> bool {
    if stored == csr.der() {
        return true;
    }
    let Ok(stored) = CertificationRequest::parse(stored) else {
        return false;
    };
    let asked = |c: &CertificationRequest| -> Option<Vec<u8>> {
        let info = &c.request().info;
        let mut out = info.subject.to_der().ok()?;
        out.extend(info.public_key.to_der().ok()?);
        for a in info
            .attributes
            .iter()
            .filter(|a| a.oid != enrolkit_pkix::pkcs10::oid::CHALLENGE_PASSWORD)
        {
            out.extend(a.to_der().ok()?);
        }
        Some(out)
    };
    matches!((asked(&stored), asked(csr)), (Some(a), Some(b)) if a == b)
}

fn issued_record(cert: &Certificate) -> Result<IssuedCert, Refusal> {
    IssuedCert::from_certificate(cert).map_err(internal)
}

fn refused_or_internal(e: StorageError) -> Refusal {
    match e {
        StorageError::NotFound(m) => Refusal::new(403, m),
        other => internal(other),
    }
}

/// `(user, password)` from an `Authorization: Basic …` header.
fn basic_credentials(header: &str) -> Option<(String, Zeroizing<String>)> {
    use base64::Engine;
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 1024 {
        return None;
    }
    let raw = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?);
    let s = std::str::from_utf8(&raw).ok()?;
    let (user, pw) = s.split_once(':')?;
    Some((user.to_owned(), Zeroizing::new(pw.to_owned())))
}

fn binding_name(b: &enrolkit_est::ChannelBinding) -> &'static str {
    match b {
        enrolkit_est::ChannelBinding::TlsUnique(_) => "tls-unique",
        enrolkit_est::ChannelBinding::TlsExporter(_) => "tls-exporter",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::ra::{challenge_hash, serial_hex};
    use crate::storage::SqliteStorage;
    use enrolkit_keys::Signer;
    use enrolkit_pkix::pkcs10::RequestParams;
    use enrolkit_tls::{Backend, TlsVersion};
    use std::str::FromStr;
    use x509_cert::name::Name;

    const SERVER_AUTH: ObjectIdentifier = const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
    const CLIENT_AUTH: ObjectIdentifier = const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;

    /// Grants serverAuth (the profile has clientAuth only) to the session of PSK identity `kpm-dev1`.
    struct OneEnrolee;

    impl EnroleeGrants for OneEnrolee {
        fn certificate_grant(&self, tls: &TlsInfo, _: SystemTime) -> crate::rspf::GrantCheck {
            match tls.psk_identity.as_deref() {
                Some("kpm-dev1") => crate::rspf::GrantCheck::Granted {
                    enrolee: "dev1".into(),
                    ekus: vec![SERVER_AUTH],
                    names: vec!["dev1.example.net".into()],
                },
                _ => crate::rspf::GrantCheck::NotAnEnrolee,
            }
        }
    }

    fn test_ca() -> Arc<Authority> {
        Arc::new(
            Authority::new_root(
                Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
                Name::from_str("CN=EST Test CA").unwrap(),
                SystemTime::now(),
                Duration::from_secs(86400 * 30),
                &mut rand_core::OsRng,
            )
            .unwrap(),
        )
    }

    fn service(storage: Arc<dyn Storage>, manual_approval: bool) -> EstService {
        service_with(storage, manual_approval, test_ca(), |_| {})
    }

    /// A service on `ca`, its policy edited by `edit`.
    fn service_with(
        storage: Arc<dyn Storage>,
        manual_approval: bool,
        ca: Arc<Authority>,
        edit: impl FnOnce(&mut EstPolicy),
    ) -> EstService {
        let mut policy = EstPolicy {
            retry_after: Duration::from_secs(1),
            ..EstPolicy::default()
        };
        policy.auth.manual_approval = manual_approval;
        policy.auth.one_time_challenges = true;
        edit(&mut policy);
        EstService::new(EstSetup {
            ca,
            challenge_key: Zeroizing::new([9u8; 32]),
            storage,
            policy,
            profile: Profile::default(),
        })
        .unwrap()
        .with_enrolee_grants(Arc::new(OneEnrolee))
    }

    fn psk_session(identity: &str) -> TlsInfo {
        TlsInfo {
            backend: Backend::OpenSsl,
            version: TlsVersion::Tls13,
            peer_chain: vec![],
            peer_cert_error: None,
            psk_identity: Some(identity.into()),
            cipher_suite: None,
            channel_binding: None,
            exported: None,
        }
    }

    fn csr(key: &SoftwareKey, cn: &str, ekus: &[ObjectIdentifier]) -> Vec<u8> {
        let mut r = RequestParams::new(Name::from_str(&format!("CN={cn}")).unwrap());
        r.ekus = ekus.to_vec();
        r.build(key).unwrap()
    }

    fn post(svc: &EstService, op: &str, csr: &[u8], tls: &TlsInfo) -> EstResponse {
        post_with(svc, op, csr, tls, None)
    }

    fn post_with(svc: &EstService, op: &str, csr: &[u8], tls: &TlsInfo, authorization: Option<&str>) -> EstResponse {
        let body = enrolkit_est::body::encode_base64(csr);
        let path = format!("/.well-known/est/{op}");
        let req = EstRequest {
            method: "POST",
            path: &path,
            content_type: Some("application/pkcs10"),
            authorization,
            body: body.as_bytes(),
            tls,
        };
        svc.handle(&req, SystemTime::now()).0
    }

    fn kid_of(key: &SoftwareKey) -> String {
        hex::encode(DigestAlgorithm::Sha256.digest(&key.public_key().to_der().unwrap()))
    }

    fn ekus_of(cert: &Certificate) -> Vec<ObjectIdentifier> {
        let ext = cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
            .expect("an extendedKeyUsage extension");
        x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
            .unwrap()
            .0
    }

    fn body_text(r: &EstResponse) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_held_request_authorised_by_a_one_time_challenge_is_collected_by_its_retry() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage.clone(), true);
        let anonymous = TlsInfo {
            psk_identity: None,
            ..psk_session("unused")
        };
        let with_challenge = |k: &SoftwareKey, cn: &str, otp: &str| {
            let mut r = RequestParams::new(Name::from_str(&format!("CN={cn}")).unwrap());
            r.challenge_password = Some(Zeroizing::new(otp.into()));
            r.build(k).unwrap()
        };
        // A /simpleenroll. (A /serverkeygen on a challenge alone is held only
        // with channel binding: see the Issue H tests below.)
        let otp = "otp-1";
        storage
            .add_challenge(&challenge_hash(&[9u8; 32], otp), otp, 0, None)
            .unwrap();
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let der = with_challenge(&k, "enrol", otp);
        let first = post(&svc, "simpleenroll", &der, &anonymous);
        assert_eq!(first.status, 202, "{}", body_text(&first));
        // Same bytes: the held request, though its challenge is spent.
        assert_eq!(post(&svc, "simpleenroll", &der, &anonymous).status, 202);
        let kid = kid_of(&k);
        svc.approve(&format!("est-{kid}"), &kid, SystemTime::now()).unwrap();
        let done = post(&svc, "simpleenroll", &der, &anonymous);
        assert_eq!(done.status, 200, "{}", body_text(&done));
        // Another CSR for the same key with the spent challenge is not a retry.
        let other = with_challenge(&k, "someone-else", otp);
        let r = post(&svc, "simpleenroll", &other, &anonymous);
        assert_eq!(r.status, 401, "{}", body_text(&r));
    }

    /// A proxy forwards the client's CSR upstream: a server-generated key
    /// would never be the one certified, so /serverkeygen is not offered
    /// (before: held, relayed with the CSR's key, then "already delivered").
    #[test]
    fn a_forwarding_proxy_does_not_offer_serverkeygen() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("est.db")).unwrap());
        let svc = service_with(storage.clone(), true, test_ca(), |p| p.auth.forwards_requests = true);
        let key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let r = post(
            &svc,
            "serverkeygen",
            &csr(&key, "kpm-plain", &[]),
            &psk_session("kpm-plain"),
        );
        assert_eq!(r.status, 501, "{}", body_text(&r));
        assert!(storage.pending().unwrap().is_empty());
    }

    #[test]
    fn held_serverkeygen_is_generated_at_approval_sealed_at_rest_and_delivered_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("est.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&db).unwrap());
        let svc = service(storage.clone(), true);
        let tls = psk_session("kpm-plain");
        let throwaway = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        // An unbound PSK identity obtains its own name.
        let der = csr(&throwaway, "kpm-plain", &[]);

        // Held, and found again by a retry of the same CSR key.
        for _ in 0..2 {
            let r = post(&svc, "serverkeygen", &der, &tls);
            assert_eq!(r.status, 202, "{}", body_text(&r));
            assert_eq!(r.header("Retry-After"), Some("1"));
        }
        let pending = storage.pending().unwrap();
        assert_eq!(pending.len(), 1);
        let kid = kid_of(&throwaway);
        let txid = format!("est-keygen-{kid}");
        assert_eq!(
            (pending[0].transaction_id.as_str(), pending[0].key_id.as_str()),
            (txid.as_str(), kid.as_str())
        );

        let serial = svc.approve(&txid, &kid, SystemTime::now()).unwrap();
        assert!(svc
            .approve(&txid, &kid, SystemTime::now())
            .unwrap_err()
            .contains("already approved"));
        let raw = rusqlite::Connection::open(&db).unwrap();
        let sealed: Vec<u8> = raw
            .query_row("SELECT sealed FROM generated_keys WHERE txid = ?1", [&txid], |r| {
                r.get(0)
            })
            .unwrap();

        let r = post(&svc, "serverkeygen", &der, &tls);
        assert_eq!(r.status, 200, "{}", body_text(&r));
        let kc = enrolkit_est::keygen::parse_serverkeygen_response(r.header("Content-Type").unwrap(), &r.body).unwrap();
        let key = SoftwareKey::from_pkcs8_der(&kc.private_key_pkcs8).unwrap();
        let cert = &kc.certificates[0];
        assert_eq!(serial_hex(cert), serial);
        assert_eq!(&cert.tbs_certificate.subject_public_key_info, key.public_key());
        assert_ne!(key.public_key(), throwaway.public_key(), "the server made a new key");
        assert_eq!(key.kind(), KeyKind::EcP256, "of the CSR key's type");
        assert_eq!(ekus_of(cert), vec![CLIENT_AUTH], "the profile's EKUs");

        // At rest the key was sealed: neither the stored value nor the database files hold it.
        let pkcs8: &[u8] = &kc.private_key_pkcs8;
        assert!(sealed.len() > pkcs8.len());
        assert!(!contains(&sealed, pkcs8));
        let (key_aad, wrong) = (key_aad(&txid, &kid), Sealer::new(&[9u8; 32]).unwrap());
        assert!(
            wrong.open(&key_aad, &sealed).is_err(),
            "not sealed under the challenge key itself"
        );
        for f in [db.clone(), dir.path().join("est.db-wal")] {
            let bytes = std::fs::read(&f).unwrap_or_default();
            assert!(!contains(&bytes, pkcs8), "{} holds the key in the clear", f.display());
        }
        // Taken with the delivery; a second retry is refused, clearly.
        let n: i64 = raw
            .query_row("SELECT COUNT(*) FROM generated_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let r = post(&svc, "serverkeygen", &der, &tls);
        assert_eq!(r.status, 410);
        assert_eq!(body_text(&r).trim(), KEY_DELIVERED);
    }

    #[test]
    fn held_requests_are_issued_on_the_grant_they_were_held_under() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage.clone(), true);
        let tls = psk_session("kpm-dev1");
        for op in ["simpleenroll", "serverkeygen"] {
            let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
            let der = csr(&k, "dev1.example.net", &[SERVER_AUTH]);
            assert_eq!(post(&svc, op, &der, &tls).status, 202);
            let kid = kid_of(&k);
            let txid = if op == "serverkeygen" {
                format!("est-keygen-{kid}")
            } else {
                format!("est-{kid}")
            };
            // The grant's EKU is outside the profile and allowed_ekus: an
            // approval under the profile's terms would refuse it.
            svc.approve(&txid, &kid, SystemTime::now()).unwrap();
            let r = post(&svc, op, &der, &tls);
            assert_eq!(r.status, 200, "{op}: {}", body_text(&r));
            let cert = if op == "serverkeygen" {
                enrolkit_est::keygen::parse_serverkeygen_response(r.header("Content-Type").unwrap(), &r.body)
                    .unwrap()
                    .certificates
                    .remove(0)
            } else {
                let der = enrolkit_est::body::decode_base64(&r.body, MAX_REQUEST_BODY).unwrap();
                enrolkit_pkix::certs_only::decode(&der).unwrap().certificates.remove(0)
            };
            assert_eq!(ekus_of(&cert), vec![SERVER_AUTH], "{op}");
            let terms = svc
                .terms_of(&storage.transaction(&txid, &kid).unwrap().unwrap())
                .unwrap();
            assert_eq!(terms.enrolee.as_deref(), Some("dev1"));
        }
        // The same CSR outside the grant is refused at once (serverAuth is not allowed).
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let r = post(
            &svc,
            "simpleenroll",
            &csr(&k, "dev1.example.net", &[SERVER_AUTH]),
            &psk_session("other"),
        );
        assert_eq!(r.status, 403, "{}", body_text(&r));
    }

    #[test]
    fn rejected_held_serverkeygen_is_refused_with_the_reason() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage.clone(), true);
        let tls = psk_session("kpm-plain");
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let der = csr(&k, "kpm-plain", &[]);
        assert_eq!(post(&svc, "serverkeygen", &der, &tls).status, 202);
        let kid = kid_of(&k);
        let txid = format!("est-keygen-{kid}");
        storage
            .decide(
                &txid,
                &kid,
                &TxState::Rejected(RefusalReason::OperatorRejected, "not this one".into()),
                None,
                0,
            )
            .unwrap();
        let r = post(&svc, "serverkeygen", &der, &tls);
        assert_eq!(r.status, 403);
        assert!(body_text(&r).contains("rejected: not this one"), "{}", body_text(&r));
        assert!(svc
            .approve(&txid, &kid, SystemTime::now())
            .unwrap_err()
            .contains("already rejected"));
        assert_eq!(storage.take_generated_key(&txid, &kid).unwrap(), None);
    }

    #[test]
    fn a_request_held_without_terms_is_not_approved_on_guessed_ones() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage.clone(), true);
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let kid = kid_of(&k);
        // As the previous version held requests: the transaction alone.
        let tx = Transaction {
            transaction_id: format!("est-{kid}"),
            key_id: kid.clone(),
            subject: "CN=old".into(),
            csr: csr(&k, "old", &[]),
            state: TxState::Pending,
            created: 0,
        };
        storage.record(&tx, None, None, 0).unwrap();
        let e = svc.approve(&tx.transaction_id, &kid, SystemTime::now()).unwrap_err();
        assert!(e.contains("without its terms"), "{e}");
        assert_eq!(
            storage.pending().unwrap().len(),
            1,
            "still pending, for the operator to reject"
        );
        // Terms sealed for another transaction do not open for this one.
        let other = Transaction {
            transaction_id: "est-other".into(),
            ..tx.clone()
        };
        let terms = HeldTerms {
            ekus: vec![SERVER_AUTH],
            enrolee: None,
            keygen: None,
            names: None,
            requester: None,
        };
        let sealed = svc.sealer.seal(&terms_aad(&other), &terms.encode()).unwrap();
        assert!(svc.sealer.open(&terms_aad(&tx), &sealed).is_err());
    }

    #[test]
    fn held_terms_survive_their_encoding() {
        for t in [
            HeldTerms {
                ekus: vec![SERVER_AUTH, CLIENT_AUTH],
                enrolee: Some("dev 1\nx".into()),
                keygen: Some(KeySpec::Rsa3072),
                names: Some(IssueNames {
                    subject: x509_cert::name::Name::from_str("CN=dev 1,O=Example").unwrap(),
                    dns: vec!["dev-1.example.com".into()],
                    ips: vec!["192.0.2.1".parse().unwrap()],
                }),
                requester: Some(Requester::Certificate(vec![0xab; 32])),
            },
            HeldTerms {
                ekus: vec![],
                enrolee: None,
                keygen: None,
                names: None,
                requester: None,
            },
            HeldTerms {
                ekus: vec![],
                enrolee: None,
                keygen: Some(KeySpec::EcP256),
                names: None,
                requester: Some(Requester::Psk("kpm 1\n".into())),
            },
            HeldTerms {
                ekus: vec![],
                enrolee: None,
                keygen: Some(KeySpec::EcP256),
                names: None,
                requester: Some(Requester::Linked),
            },
        ] {
            assert_eq!(HeldTerms::decode(&t.encode()).unwrap(), t);
        }
        assert!(HeldTerms::decode(b"held-terms 2").is_err());
        assert!(HeldTerms::decode(b"held-terms 1\nkeygen dsa").is_err());
        assert!(HeldTerms::decode(b"held-terms 1\nwhatever").is_err());
        assert!(HeldTerms::decode(b"held-terms 1\nrequester anyone").is_err());
    }

    // ---- Issue H: a held server-generated key goes to its requester only ----

    /// The key of a `/serverkeygen` answer, and its certificate.
    fn key_and_cert(r: &EstResponse) -> (SoftwareKey, Certificate) {
        assert_eq!(r.status, 200, "{}", body_text(r));
        let mut kc =
            enrolkit_est::keygen::parse_serverkeygen_response(r.header("Content-Type").unwrap(), &r.body).unwrap();
        let key = SoftwareKey::from_pkcs8_der(&kc.private_key_pkcs8).unwrap();
        (key, kc.certificates.remove(0))
    }

    /// An anonymous session (no certificate, no PSK) with this channel binding.
    fn bound_session(binding: u8) -> TlsInfo {
        TlsInfo {
            psk_identity: None,
            channel_binding: Some(enrolkit_est::ChannelBinding::tls_exporter(&[binding; 32]).unwrap()),
            ..psk_session("unused")
        }
    }

    /// Attack: a held `/serverkeygen` was handed to whoever replayed the
    /// stored CSR bytes (the retry test compared bytes only). Now the
    /// key goes only to a session of the credential that made the request:
    /// the same PSK identity, or the same client certificate.
    #[test]
    fn a_held_key_is_not_delivered_to_another_credential_replaying_the_csr() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let ca = test_ca();
        let held = service_with(storage.clone(), true, ca.clone(), |_| {});
        let immediate = service_with(storage.clone(), false, ca, |_| {});
        // A client certificate of ours for dev-a, obtained with its PSK.
        let ka = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let cert_a = issued_cert(&post(
            &immediate,
            "simpleenroll",
            &csr(&ka, "dev-a", &[]),
            &psk_session("dev-a"),
        ));
        let anonymous = TlsInfo {
            psk_identity: None,
            ..psk_session("unused")
        };
        let mut other_cert = cert_a.clone();
        other_cert.tbs_certificate.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x7f, 1]).unwrap();
        let sessions = [
            ("PSK identity kpm-plain", psk_session("kpm-plain")),
            ("dev-a's certificate", cert_session(&cert_a)),
            ("PSK identity kpm-other", psk_session("kpm-other")),
            ("another certificate", cert_session(&other_cert)),
            ("an anonymous session", anonymous),
            ("an anonymous session with a channel binding", bound_session(1)),
        ];
        // Held for the first two: by a PSK identity, by a client certificate.
        for (owner, cn) in [(0, "kpm-plain"), (1, "dev-a")] {
            let (owner_name, owner_tls) = &sessions[owner];
            let throwaway = SoftwareKey::generate(KeySpec::EcP256).unwrap();
            let der = csr(&throwaway, cn, &[]);
            let r = post(&held, "serverkeygen", &der, owner_tls);
            assert_eq!(r.status, 202, "{owner_name}: {}", body_text(&r));
            let kid = kid_of(&throwaway);
            let txid = format!("est-keygen-{kid}");
            held.approve(&txid, &kid, SystemTime::now()).unwrap();
            // The stored bytes, as a reader of the database or of a log would have them.
            let stored = storage.transaction(&txid, &kid).unwrap().unwrap().csr;
            for (i, (name, tls)) in sessions.iter().enumerate() {
                if i == owner {
                    continue;
                }
                let r = post(&held, "serverkeygen", &stored, tls);
                assert_eq!(
                    r.status,
                    403,
                    "{owner_name}'s key replayed from {name}: {}",
                    body_text(&r)
                );
                assert!(body_text(&r).contains("credential"), "{}", body_text(&r));
            }
            // The owner still gets it, once.
            let (key, cert) = key_and_cert(&post(&held, "serverkeygen", &der, owner_tls));
            assert_eq!(&cert.tbs_certificate.subject_public_key_info, key.public_key());
            assert_eq!(post(&held, "serverkeygen", &der, owner_tls).status, 410);
        }
    }

    /// A held `/serverkeygen` authorised by a one-time challenge alone: not
    /// held without channel binding; with it, delivered only to a retry
    /// whose CSR, signed by the same key, carries the retry connection's
    /// binding. The stored bytes replayed get nothing.
    #[test]
    fn a_held_key_asked_for_with_a_challenge_alone_needs_channel_binding_on_the_retry() {
        use base64::Engine;
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let ca = test_ca();
        let otp = |s: &str| {
            storage
                .add_challenge(&challenge_hash(&[9u8; 32], s), s, 0, None)
                .unwrap();
        };
        // Without linking: refused before anything is held or spent.
        let plain = service_with(storage.clone(), true, ca.clone(), |_| {});
        let anonymous = TlsInfo {
            psk_identity: None,
            ..psk_session("unused")
        };
        otp("otp-k");
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let mut r = RequestParams::new(Name::from_str("CN=otp-device").unwrap());
        r.challenge_password = Some(Zeroizing::new("otp-k".into()));
        let with_otp = r.build(&k).unwrap();
        let refused = post(&plain, "serverkeygen", &with_otp, &anonymous);
        assert_eq!(refused.status, 403, "{}", body_text(&refused));
        assert!(
            body_text(&refused).contains("channel binding"),
            "{}",
            body_text(&refused)
        );
        assert!(storage.pending().unwrap().is_empty());
        // The challenge was not spent: it still authorises a /simpleenroll.
        assert_eq!(post(&plain, "simpleenroll", &with_otp, &anonymous).status, 202);

        // With linking: Basic carries the one-time challenge, the CSR the binding.
        let linked = service_with(storage.clone(), true, ca, |p| {
            p.require_linking = true;
            p.basic = true;
        });
        otp("otp-l");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("device:otp-l")
        );
        let signed_for = |key: &SoftwareKey, binding: u8| {
            let mut r = RequestParams::new(Name::from_str("CN=linked-device").unwrap());
            let b = enrolkit_est::ChannelBinding::tls_exporter(&[binding; 32]).unwrap();
            r.challenge_password = Some(b.challenge_password());
            r.build(key).unwrap()
        };
        let throwaway = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let first = signed_for(&throwaway, 1);
        let r = post_with(&linked, "serverkeygen", &first, &bound_session(1), Some(&basic));
        assert_eq!(r.status, 202, "{}", body_text(&r));
        let kid = kid_of(&throwaway);
        linked
            .approve(&format!("est-keygen-{kid}"), &kid, SystemTime::now())
            .unwrap();
        // The stored bytes on another connection: its binding is not theirs.
        let r = post_with(&linked, "serverkeygen", &first, &bound_session(2), Some(&basic));
        assert_eq!(r.status, 400, "{}", body_text(&r));
        // Nor once linking is switched off: the held key still needs it.
        let r = post_with(&plain, "serverkeygen", &first, &bound_session(3), Some(&basic));
        assert_eq!(r.status, 403, "{}", body_text(&r));
        let r = post(&plain, "serverkeygen", &first, &anonymous);
        assert_eq!(r.status, 403, "{}", body_text(&r));
        // Another key, bound to its connection, is a new request: the challenge is spent.
        let r = post_with(
            &linked,
            "serverkeygen",
            &signed_for(&SoftwareKey::generate(KeySpec::EcP256).unwrap(), 4),
            &bound_session(4),
            Some(&basic),
        );
        assert_eq!(r.status, 401, "{}", body_text(&r));
        // The requester: the same key, bound to the retry's connection.
        let (key, cert) = key_and_cert(&post_with(
            &linked,
            "serverkeygen",
            &signed_for(&throwaway, 5),
            &bound_session(5),
            Some(&basic),
        ));
        assert_eq!(&cert.tbs_certificate.subject_public_key_info, key.public_key());
        let again = post_with(
            &linked,
            "serverkeygen",
            &signed_for(&throwaway, 6),
            &bound_session(6),
            Some(&basic),
        );
        assert_eq!(again.status, 410, "{}", body_text(&again));
    }

    // ---- Issue F: the authorisation core on EST's wire (attack tests) ----

    fn issued_cert(r: &EstResponse) -> Certificate {
        assert_eq!(r.status, 200, "{}", body_text(r));
        let der = enrolkit_est::body::decode_base64(&r.body, 1 << 20).unwrap();
        enrolkit_pkix::certs_only::decode(&der).unwrap().certificates.remove(0)
    }

    fn cert_session(cert: &Certificate) -> TlsInfo {
        TlsInfo {
            psk_identity: None,
            peer_chain: vec![cert.to_der().unwrap()],
            ..psk_session("unused")
        }
    }

    #[test]
    fn a_client_certificate_obtains_only_its_own_names_and_not_when_revoked() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage.clone(), false);
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        // Device A's certificate, from its PSK.
        let a = issued_cert(&post(
            &svc,
            "simpleenroll",
            &csr(&k, "dev-a", &[]),
            &psk_session("dev-a"),
        ));
        let tls = cert_session(&a);
        let k2 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let r = post(&svc, "simpleenroll", &csr(&k2, "dev-b", &[]), &tls);
        assert_eq!(r.status, 403, "{}", body_text(&r));
        let r = post(&svc, "serverkeygen", &csr(&k2, "dev-b", &[]), &tls);
        assert_eq!(r.status, 403, "{}", body_text(&r));
        // Its own name: a second certificate for A.
        issued_cert(&post(&svc, "simpleenroll", &csr(&k2, "dev-a", &[]), &tls));
        // Revoked: nothing, not even its own name, nor a re-enrolment.
        storage.revoke(&serial_hex(&a), 0, 1).unwrap();
        let k3 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        for op in ["simpleenroll", "simplereenroll"] {
            let r = post(&svc, op, &csr(&k3, "dev-a", &[]), &tls);
            assert_eq!(r.status, 403, "{op}: {}", body_text(&r));
            assert!(body_text(&r).contains("revoked"), "{op}: {}", body_text(&r));
        }
    }

    #[test]
    fn psk_identities_obtain_their_bound_names_or_only_their_own() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let b = crate::ra::BoundNames::new("CN=meter-17", vec![], vec![]).unwrap();
        storage
            .add_bound_psk("kpm-17", &[1; 16], "", Some(&b.encode()), 0)
            .unwrap();
        let svc = service(storage, false);
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let r = post(&svc, "simpleenroll", &csr(&k, "meter-18", &[]), &psk_session("kpm-17"));
        assert_eq!(r.status, 403, "{}", body_text(&r));
        issued_cert(&post(
            &svc,
            "simpleenroll",
            &csr(&k, "meter-17", &[]),
            &psk_session("kpm-17"),
        ));
        let r = post(
            &svc,
            "simpleenroll",
            &csr(&k, "someone-else", &[]),
            &psk_session("kpm-free"),
        );
        assert_eq!(r.status, 403, "{}", body_text(&r));
    }

    #[test]
    fn the_same_key_with_another_request_is_a_replay_not_a_retry() {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let svc = service(storage, true);
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let tls = psk_session("kpm-free");
        let first = post(&svc, "simpleenroll", &csr(&k, "kpm-free", &[]), &tls);
        assert_eq!(first.status, 202, "{}", body_text(&first));
        // The same request signed again (ECDSA: other bytes): a retry.
        let again = csr(&k, "kpm-free", &[]);
        assert_eq!(post(&svc, "simpleenroll", &again, &tls).status, 202);
        // The same key asking for something else: refused, whatever the credential admits.
        let other = csr(&k, "kpm-free", &[const_oid::db::rfc5280::ID_KP_CLIENT_AUTH]);
        let r = post(&svc, "simpleenroll", &other, &tls);
        assert_eq!(r.status, 403, "{}", body_text(&r));
        assert!(
            body_text(&r).contains("was started with another request"),
            "{}",
            body_text(&r)
        );
    }

    /// An OpenSSL-made CSR for CN=kpm-plain with `newkey` (e.g. `rsa:1024`, `ec`).
    fn openssl_csr(newkey: &str, opts: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("csr.der");
        let st = std::process::Command::new("openssl")
            .args(["req", "-new", "-newkey", newkey])
            .args(opts)
            .args(["-nodes", "-subj", "/CN=kpm-plain", "-outform", "DER"])
            .arg("-keyout")
            .arg(dir.path().join("k.pem"))
            .arg("-out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::read(&out).unwrap()
    }

    #[test]
    fn keys_policy_certifies_rsa_2048_up_and_p256_p384_only() {
        let svc = service(Arc::new(SqliteStorage::in_memory().unwrap()), false);
        let tls = psk_session("kpm-plain");
        for (newkey, opts) in [
            ("ec", &["-pkeyopt", "ec_paramgen_curve:P-384"][..]),
            ("ec", &["-pkeyopt", "ec_paramgen_curve:P-256"][..]),
            ("rsa:3072", &[][..]),
        ] {
            let r = post(&svc, "simpleenroll", &openssl_csr(newkey, opts), &tls);
            assert_eq!(r.status, 200, "{newkey} {opts:?}: {}", body_text(&r));
        }
        let r = post(
            &svc,
            "simpleenroll",
            &openssl_csr("ec", &["-pkeyopt", "ec_paramgen_curve:P-521"]),
            &tls,
        );
        assert_eq!(r.status, 400, "{}", body_text(&r));
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused() {
        // OpenSSL makes the CSR: aws-lc will not generate RSA-1024.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("csr.der");
        let st = std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "rsa:1024",
                "-nodes",
                "-subj",
                "/CN=kpm-plain",
                "-outform",
                "DER",
            ])
            .arg("-keyout")
            .arg(dir.path().join("k.pem"))
            .arg("-out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        let der = std::fs::read(&out).unwrap();
        let svc = service(Arc::new(SqliteStorage::in_memory().unwrap()), false);
        let r = post(&svc, "simpleenroll", &der, &psk_session("kpm-plain"));
        assert_eq!(r.status, 400, "{}", body_text(&r));
        assert!(body_text(&r).contains("at least 2048"), "{}", body_text(&r));
    }
}
