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

use crate::scep::{challenge_hash, common_name, serial_hex, unix, Policy};
use crate::storage::{IssuedCert, Storage, StorageError, Transaction, TxState};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use enrolkit_est::{CsrAttrs, EstPath, MediaType, Operation, ParsedCsr};
use enrolkit_keys::{DigestAlgorithm, KeyKind, KeySpec, SoftwareKey};
use enrolkit_pki::{Authority, Profile};
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
    /// RA override: `/simplereenroll` may change Subject and subjectAltName.
    pub reenroll_may_change_names: bool,
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
            reenroll_may_change_names: false,
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

/// Everything the service needs at start-up.
pub struct EstSetup {
    /// The issuing CA (shared with the SCEP responder).
    pub ca: Arc<Authority>,
    /// Secret for hashing challenge passwords (the same as SCEP's, so `mef challenge add` serves both).
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
    challenge_key: Zeroizing<[u8; 32]>,
    storage: Arc<dyn Storage>,
    policy: EstPolicy,
    profile: Profile,
    csr_attrs: CsrAttrs,
    csr_attrs_der: Vec<u8>,
    cacerts_der: Vec<u8>,
    grants: Option<Arc<dyn EnroleeGrants>>,
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

/// How a request was authorised; a consumed one-time challenge goes with the issuance.
struct Authorised {
    how: String,
    challenge: Option<Vec<u8>>,
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
        let cacerts_der = enrolkit_est::encode_certs_only(&cacerts).map_err(|e| format!("CA certificates: {e}"))?;
        Ok(EstService {
            ca: s.ca,
            challenge_key: s.challenge_key,
            storage: s.storage,
            policy: s.policy,
            profile: s.profile,
            csr_attrs: attrs,
            csr_attrs_der,
            cacerts_der,
            grants: None,
        })
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

    /// Under a grant the certificate names the Enrolee and nobody else:
    /// subject CN and DNS SANs among the granted names, no IP addresses.
    fn check_granted_names(&self, csr: &ParsedCsr, g: &GrantInfo) -> Result<(), Refusal> {
        let cn = common_name(&csr.request.info.subject);
        for n in cn.iter().chain(csr.dns_names().iter()) {
            if !g.names.contains(n) {
                return Err(Refusal::new(
                    403,
                    format!(
                        "Enrolee {} may not name {n} in its certificate (only {})",
                        g.enrolee,
                        g.names.join(", ")
                    ),
                ));
            }
        }
        if !csr.ip_addresses().is_empty() {
            return Err(Refusal::new(
                403,
                format!("Enrolee {} may not name IP addresses", g.enrolee),
            ));
        }
        Ok(())
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
            Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeyGen => {
                let csr = self.read_csr(req)?;
                log.subject = csr.request.info.subject.to_string();
                self.check_linking(&csr, req.tls)?;
                let grant = match path.operation {
                    Operation::SimpleReenroll => None,
                    _ => self.grant(req.tls, now)?,
                };
                if let Some(g) = &grant {
                    self.check_granted_names(&csr, g)?;
                }
                enrolkit_est::check_satisfies(&*self.attrs_for(&grant)?, &csr)
                    .map_err(|e| Refusal::new(400, e.to_string()))?;
                let ekus = self.check_ekus(&csr, &grant)?;
                let auth = match (&grant, path.operation) {
                    (_, Operation::SimpleReenroll) => self.authorise_reenroll(&csr, req.tls, now)?,
                    (Some(g), _) => Authorised {
                        how: format!("rspf:{}", g.enrolee),
                        challenge: None,
                    },
                    (None, _) => self.authorise(&csr, req, now)?,
                };
                log.auth = auth.how.clone();
                match path.operation {
                    Operation::ServerKeyGen => self.serverkeygen(&csr, &ekus, &auth, now),
                    _ => self.enrol(&csr, &ekus, &auth, now),
                }
            }
        }
    }

    fn read_csr(&self, req: &EstRequest<'_>) -> Result<ParsedCsr, Refusal> {
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
        ParsedCsr::parse(&der).map_err(|e| Refusal::new(400, format!("bad PKCS#10 request: {e}")))
    }

    /// RFC 7030 §3.5: when linking is required the challengePassword must be
    /// this connection's channel binding.
    fn check_linking(&self, csr: &ParsedCsr, tls: &TlsInfo) -> Result<(), Refusal> {
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
        match csr.challenge_password.as_deref() {
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
    fn check_ekus(&self, csr: &ParsedCsr, grant: &Grant) -> Result<Vec<ObjectIdentifier>, Refusal> {
        let requested = csr.requested_ekus();
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

    fn authorise(&self, csr: &ParsedCsr, req: &EstRequest<'_>, now: SystemTime) -> Result<Authorised, Refusal> {
        let tls = req.tls;
        if let Some(id) = &tls.psk_identity {
            return Ok(Authorised {
                how: format!("psk:{id}"),
                challenge: None,
            });
        }
        if let Some(err) = &tls.peer_cert_error {
            return Err(Refusal::new(403, format!("client certificate not trusted: {err}")));
        }
        if let (true, Some(der)) = (
            self.policy.client_certificates_authorise,
            tls.trusted_peer_certificate(),
        ) {
            let cert = Certificate::from_der(der).map_err(|e| Refusal::new(403, format!("client certificate: {e}")))?;
            self.check_not_revoked(&cert)?;
            return Ok(Authorised {
                how: format!("cert:{}", cert.tbs_certificate.subject),
                challenge: None,
            });
        }
        if let (true, Some(h)) = (self.policy.basic, req.authorization) {
            let (user, password) =
                basic_credentials(h).ok_or_else(|| Refusal::new(401, "malformed Basic credentials"))?;
            if let Some(challenge) = self.check_challenge(&password, now)? {
                return Ok(Authorised {
                    how: format!("basic:{user}"),
                    challenge,
                });
            }
            return Err(Refusal::new(401, "Basic credentials refused"));
        }
        if !self.policy.require_linking {
            if let Some(pw) = csr.challenge_password.as_deref() {
                if let Some(challenge) = self.check_challenge(pw, now)? {
                    return Ok(Authorised {
                        how: "challengePassword".into(),
                        challenge,
                    });
                }
            }
        }
        let cn = common_name(&csr.request.info.subject);
        if cn
            .as_deref()
            .is_some_and(|cn| self.policy.auth.preauthorized_cns.iter().any(|p| p == cn))
        {
            return Ok(Authorised {
                how: "preauthorised-cn".into(),
                challenge: None,
            });
        }
        if let Some(v) = &self.policy.auth.verifier {
            let subject = csr.request.info.subject.to_string();
            return match v.verify(&csr.der, &subject, "est") {
                Ok(true) => Ok(Authorised {
                    how: "verifier".into(),
                    challenge: None,
                }),
                Ok(false) => Err(Refusal::new(403, "refused by the verifier hook")),
                Err(e) => Err(internal(format!("verifier hook {}: {e}", v.command.display()))),
            };
        }
        if self.policy.basic {
            Err(Refusal::new(401, "authentication required"))
        } else {
            Err(Refusal::new(
                401,
                "authentication required: a client certificate from a trusted CA or a pre-shared key",
            ))
        }
    }

    /// `Some(hash to consume)` for a usable one-time challenge, `Some(None)` for the static one.
    #[allow(clippy::option_option)]
    fn check_challenge(&self, password: &str, now: SystemTime) -> Result<Option<Option<Vec<u8>>>, Refusal> {
        if self.policy.auth.one_time_challenges {
            let h = challenge_hash(&self.challenge_key, password);
            if self.storage.challenge_usable(&h, unix(now)).map_err(internal)? {
                return Ok(Some(Some(h)));
            }
        }
        if let Some(shared) = &self.policy.auth.static_challenge {
            if bool::from(subtle::ConstantTimeEq::ct_eq(shared.as_bytes(), password.as_bytes())) {
                return Ok(Some(None));
            }
        }
        Ok(None)
    }

    fn check_not_revoked(&self, cert: &Certificate) -> Result<Option<IssuedCert>, Refusal> {
        if cert.tbs_certificate.issuer != self.ca.certificate.tbs_certificate.subject {
            return Ok(None);
        }
        let ours = self.storage.certificate(&serial_hex(cert)).map_err(internal)?;
        if let Some(c) = &ours {
            if c.revoked_at.is_some() {
                return Err(Refusal::new(403, "client certificate is revoked"));
            }
        }
        Ok(ours)
    }

    fn authorise_reenroll(&self, csr: &ParsedCsr, tls: &TlsInfo, now: SystemTime) -> Result<Authorised, Refusal> {
        if let Some(err) = &tls.peer_cert_error {
            return Err(Refusal::new(403, format!("client certificate not trusted: {err}")));
        }
        let der = tls.trusted_peer_certificate().ok_or_else(|| {
            Refusal::new(
                401,
                "simplereenroll needs the current certificate as TLS client certificate",
            )
        })?;
        let cert = Certificate::from_der(der).map_err(|e| Refusal::new(403, format!("client certificate: {e}")))?;
        let ours = self
            .check_not_revoked(&cert)?
            .filter(|c| c.der == der)
            .ok_or_else(|| Refusal::new(403, "the client certificate was not issued by this CA"))?;
        if unix(now) >= ours.not_after {
            return Err(Refusal::new(403, "the certificate to renew has expired"));
        }
        if !self.policy.reenroll_may_change_names {
            let cert_subject = cert.tbs_certificate.subject.to_der().map_err(internal)?;
            let csr_subject = csr.request.info.subject.to_der().map_err(internal)?;
            if cert_subject != csr_subject {
                return Err(Refusal::new(
                    400,
                    format!(
                        "Subject {} differs from the current certificate's {} (RFC 7030 §4.2.2)",
                        csr.request.info.subject, cert.tbs_certificate.subject
                    ),
                ));
            }
            let cert_san = cert
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
                .map(|e| e.extn_value.as_bytes().to_vec());
            if cert_san != csr.subject_alt_name_der() {
                return Err(Refusal::new(
                    400,
                    "subjectAltName differs from the current certificate's (RFC 7030 §4.2.2)",
                ));
            }
        }
        Ok(Authorised {
            how: format!("reenroll:{}", ours.serial),
            challenge: None,
        })
    }

    fn profile_for(&self, ekus: &[ObjectIdentifier]) -> Profile {
        let mut p = self.profile.clone();
        p.extended_key_usage = ekus.to_vec();
        p
    }

    fn issue_for(
        &self,
        csr: &ParsedCsr,
        public_key: spki::SubjectPublicKeyInfoOwned,
        ekus: &[ObjectIdentifier],
        now: SystemTime,
    ) -> Result<Certificate, Refusal> {
        let r = enrolkit_pki::Request {
            subject: csr.request.info.subject.clone(),
            public_key,
            dns_names: csr.dns_names(),
            ip_addresses: csr.ip_addresses(),
        };
        self.ca
            .issue(&r, &self.profile_for(ekus), now, &mut rand_core::OsRng)
            .map_err(|e| Refusal::new(403, e.to_string()))
    }

    fn enrol(
        &self,
        csr: &ParsedCsr,
        ekus: &[ObjectIdentifier],
        auth: &Authorised,
        now: SystemTime,
    ) -> Result<EstResponse, Refusal> {
        let kid = hex::encode(DigestAlgorithm::Sha256.digest(&csr.request.info.public_key.to_der().map_err(internal)?));
        let txid = format!("est-{kid}");
        // A repeated request (polling after 202, or a retransmission) gets the stored answer.
        if let Some(tx) = self.storage.transaction(&txid, &kid).map_err(internal)? {
            return self.answer(&tx);
        }
        let mut tx = Transaction {
            transaction_id: txid,
            key_id: kid,
            subject: csr.request.info.subject.to_string(),
            csr: csr.der.clone(),
            state: TxState::Pending,
            created: unix(now),
        };
        if self.policy.auth.manual_approval {
            self.storage
                .record(&tx, auth.challenge.as_deref(), None, unix(now))
                .map_err(refused_or_internal)?;
            return Ok(self.accepted());
        }
        let cert = self.issue_for(csr, csr.request.info.public_key.clone(), ekus, now)?;
        let issued = issued_record(&cert)?;
        tx.state = TxState::Issued(issued.serial.clone());
        self.storage
            .record(&tx, auth.challenge.as_deref(), Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        self.certs_only(&cert)
    }

    /// Operator approves a held `/simpleenroll`: the certificate is issued
    /// now, from the stored CSR, with the same checks and the same names and
    /// EKUs an immediate issuance would have had. The client gets it on its
    /// next attempt.
    pub fn approve(&self, txid: &str, key_id: &str, now: SystemTime) -> Result<String, String> {
        crate::scep::issue_approved(self.storage.as_ref(), txid, key_id, now, |tx| {
            // Verified on receipt; parsed (and the signature checked) again all the same.
            let csr = ParsedCsr::parse(&tx.csr).map_err(|e| format!("stored CSR: {e}"))?;
            let ekus = self.check_ekus(&csr, &None).map_err(|Refusal(_, m)| m)?;
            self.issue_for(&csr, csr.request.info.public_key.clone(), &ekus, now)
                .map_err(|Refusal(_, m)| m)
        })
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
        let der = enrolkit_est::encode_certs_only(std::slice::from_ref(cert)).map_err(internal)?;
        Ok(EstResponse::base64(MediaType::CertsOnly, &der))
    }

    /// RFC 7030 §4.4: the server makes the key; the CSR gives the names and,
    /// through its own key's type, the type wanted.
    fn serverkeygen(
        &self,
        csr: &ParsedCsr,
        ekus: &[ObjectIdentifier],
        auth: &Authorised,
        now: SystemTime,
    ) -> Result<EstResponse, Refusal> {
        if self.policy.auth.manual_approval {
            return Err(Refusal::new(
                501,
                "serverkeygen is not offered while requests wait for manual approval",
            ));
        }
        let spec = match csr.public_key_kind() {
            Ok(KeyKind::EcP256) => KeySpec::EcP256,
            Ok(KeyKind::Rsa(bits)) if bits >= 4096 => KeySpec::Rsa4096,
            Ok(KeyKind::Rsa(bits)) if bits >= 3072 => KeySpec::Rsa3072,
            Ok(KeyKind::Rsa(_)) => KeySpec::Rsa2048,
            Err(_) => self.policy.serverkeygen_key,
        };
        let key = SoftwareKey::generate(spec).map_err(internal)?;
        let cert = self.issue_for(csr, enrolkit_keys::Signer::public_key(&key).clone(), ekus, now)?;
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
            subject: csr.request.info.subject.to_string(),
            csr: csr.der.clone(),
            state: TxState::Issued(issued.serial.clone()),
            created: unix(now),
        };
        self.storage
            .record(&tx, auth.challenge.as_deref(), Some(&issued), unix(now))
            .map_err(refused_or_internal)?;
        let mut boundary_seed = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut boundary_seed);
        let boundary = enrolkit_est::keygen::new_boundary(&boundary_seed);
        let (content_type, body) =
            enrolkit_est::keygen::encode_serverkeygen_response(&key.to_pkcs8_der(), &cert, &boundary)
                .map_err(internal)?;
        Ok(EstResponse {
            status: 200,
            headers: vec![("Content-Type", content_type)],
            body,
        })
    }

    /// The storage (for the operator commands).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
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
