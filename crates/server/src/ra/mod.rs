//! The authorisation core: every decision "may this credential obtain a
//! certificate naming X" is made here, for SCEP, EST and RSPF alike (CMP
//! and the SCEP proxy plug in the same way). A front end turns its request
//! into an [`AuthRequest`] — the credentials it carries, the CSR's names
//! and key, whether it renews — calls [`Authoriser::decide`], and maps the
//! typed answer to its wire: an [`Authorisation`] says what to issue (the
//! names, the challenge to consume, hold or issue now); a [`Refusal`]
//! carries a [`RefusalReason`] each protocol maps to its own error in one
//! function. Storage keeps records and knows nothing of protocols.
//!
//! It is a module of `enrolkit-server` rather than a crate of its own
//! because it decides on the server's records (issued certificates,
//! challenges, PSK identities) through the same [`Storage`] the services
//! use; nothing of it is useful without them.
//!
//! # The ladder
//!
//! Rungs are tried in this order; the first that admits the request wins.
//! A credential that is present and refused does not end the climb (a
//! device may renew by certificate or, outside the window, by a fresh
//! challenge) except an RSPF grant and wrong Basic credentials, which are
//! final. When nothing admits, the first refusal met is the answer.
//!
//! | Credential | May obtain (default) | Relaxation |
//! |---|---|---|
//! | RSPF Enrolee grant (EST on the Enrolee's session) | CN/DNS among the grant's names (its Enrolee-ID), no IPs | — |
//! | Certificate of ours (TLS client, SCEP signer) | its own Subject and SANs; SCEP: only within `renewal_window` of expiry, then a renewal | `reenroll_may_change_names` (renewals) |
//! | Certificate chaining to `vendor_anchors` | the Subject/DNS names `vendor` templates derive from it (never the CSR's) | — |
//! | A configured RA certificate (RA-POP) | CN and DNS names matching its `may_name` patterns | — |
//! | Another TLS client certificate the listener trusts | its own Subject and SANs | — |
//! | PSK identity | the names bound by `mef psk add --subject/--dns`; unbound: CN = identity, DNS = identity | — |
//! | HTTP Basic, one-time challenge as password | the challenge's bound names; unbound: as a challengePassword | — |
//! | HTTP Basic, static challenge | CN = the Basic user | — |
//! | challengePassword, one-time | the names bound by `mef challenge add --subject/--dns`; unbound: the Subject as asked, DNS only under `allowed_dns_suffixes` (whole labels), no IPs | `allowed_dns_suffixes` |
//! | challengePassword, static | the Subject as asked, DNS under `allowed_dns_suffixes`, no IPs | `allowed_dns_suffixes` |
//! | Pre-authorised CN | that CN, DNS under `allowed_dns_suffixes`, no IPs | `preauthorized_cns` |
//! | Verifier hook | what it accepts, DNS under `allowed_dns_suffixes`, no IPs | `verifier_command` |
//!
//! Always: every certificate that authorises is valid now, and when it is
//! ours, present and unrevoked in storage; keys are RSA of 2048 bits or
//! more or ECDSA P-256/P-384 ([`keys`]); names reserved for RSPF (Enrolee-
//! and target IDs) are issued only under that Enrolee's grant or to a
//! certificate already carrying them.

//! # Adding a protocol
//!
//! A new front end (CMP, the SCEP proxy) does three things and decides
//! nothing: it names the [`Protocol`], lists the [`Credential`]s its request
//! carries (a CMP signature protection is a `Certificate` whose key signed
//! the message; a MAC protection is the challenge it was keyed with) with
//! the CSR's names as a [`CsrView`], and maps [`RefusalReason`] to its own
//! error in one function (as `scep.rs` and `est.rs` do with `From`). It
//! issues exactly [`Authorisation::names`] and consumes
//! [`Authorisation::consume`] in the transaction that records the issuance.

pub mod challenge;
pub mod decision;
pub mod keys;
pub mod names;
pub mod policy;

pub use challenge::{challenge_hash, ChallengeMatch};
pub use decision::{Authorisation, Basis, IssueNames, Refusal, RefusalReason};
pub use names::{common_name, BoundNames, CsrView};
pub use policy::{Policy, RaAuthority, VendorPolicy, Verifier};

use crate::storage::{IssuedCert, Storage};
use der::Encode;
use names::refuse_name;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Serial number as lowercase hex (the storage key and what `mef revoke` takes).
pub fn serial_hex<P: x509_cert::certificate::Profile>(c: &x509_cert::certificate::CertificateInner<P>) -> String {
    hex::encode(c.tbs_certificate.serial_number.as_bytes())
}

/// The protocol a request came by (for the log, and the few rules that differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SCEP (RFC 8894).
    Scep,
    /// EST (RFC 7030).
    Est,
    /// oneM2M RSPF (TS-0003 8.3).
    Rspf,
    /// CMPv2 (RFC 4210, RFC 9483): a MAC protection is a
    /// [`Credential::ChallengePassword`] (the CMP challenge's secret), a
    /// signature protection a [`Credential::Certificate`]; kur is
    /// [`Intent::Renew`].
    Cmp,
}

/// What the request asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Obtain a certificate.
    Enrol,
    /// Renew the certificate that authenticates the request (SCEP
    /// RenewalReq, EST `/simplereenroll`): only a certificate of ours may.
    Renew,
}

/// A credential a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// A certificate whose key signed this request (SCEP signer) or its TLS
    /// handshake. `chain` is what came with it (leaf first, DER).
    Certificate {
        /// The certificate.
        cert: &'a Certificate,
        /// It and the certificates sent with it (DER, leaf first).
        chain: &'a [Vec<u8>],
        /// The TLS listener verified it against its client trust anchors.
        tls_verified: bool,
    },
    /// A TLS PSK identity (the handshake proved the key).
    Psk(&'a str),
    /// HTTP Basic.
    Basic {
        /// User name.
        user: &'a str,
        /// Password (a challenge).
        password: &'a str,
    },
    /// The CSR's challengePassword.
    ChallengePassword(&'a str),
    /// An RSPF Enrolee's live certificate grant on this session.
    EnroleeGrant {
        /// The Enrolee.
        enrolee: &'a str,
        /// The only names its certificate may carry.
        names: &'a [String],
    },
}

/// A request, as every front end gives it to the core.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// Which protocol.
    pub protocol: Protocol,
    /// Enrol or renew.
    pub intent: Intent,
    /// What is asked for.
    pub csr: CsrView<'a>,
    /// The credentials it carries, in any order (the ladder orders them).
    pub credentials: Vec<Credential<'a>>,
    /// Transaction, for the verifier hook's environment.
    pub transaction: &'a str,
}

/// Where a certificate stands with us.
#[derive(Debug, Clone)]
pub enum Standing {
    /// Issued by this CA, in storage, unrevoked, valid now.
    Ours(IssuedCert),
    /// Not ours; valid now.
    Foreign,
}

/// The authorisation core of one server.
pub struct Authoriser {
    ca_subject: Name,
    storage: Arc<dyn Storage>,
    challenge_key: Zeroizing<[u8; 32]>,
    policy: Policy,
}

impl Authoriser {
    /// The core for a CA named `ca_subject`, deciding on `storage`'s records.
    pub fn new(
        ca_subject: Name,
        storage: Arc<dyn Storage>,
        challenge_key: Zeroizing<[u8; 32]>,
        policy: Policy,
    ) -> Self {
        Authoriser {
            ca_subject,
            storage,
            challenge_key,
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether `cert` may authorise anything now: within its validity, and,
    /// when it claims our CA as issuer, issued by us (in storage, the same
    /// bytes) and not revoked. Every certificate-authenticated path calls
    /// this (SCEP, EST, the RSPF exchange and Key Retrieval).
    pub fn standing(&self, cert: &Certificate, now: SystemTime) -> Result<Standing, Refusal> {
        standing(self.storage.as_ref(), &self.ca_subject, cert, now)
    }

    /// Decide a request.
    pub fn decide(&self, req: &AuthRequest<'_>, now: SystemTime) -> Result<Authorisation, Refusal> {
        keys::check_key(req.csr.public_key)?;
        let (basis, names, consume, renews) = match req.intent {
            Intent::Renew => self.renewal(req, now)?,
            Intent::Enrol => self.ladder(req, now)?,
        };
        Ok(Authorisation {
            basis,
            names,
            consume,
            renews,
            hold: self.policy.manual_approval,
        })
    }

    fn certificate<'a>(req: &'a AuthRequest<'_>) -> Option<(&'a Certificate, &'a [Vec<u8>], bool)> {
        req.credentials.iter().find_map(|c| match c {
            Credential::Certificate {
                cert,
                chain,
                tls_verified,
            } => Some((*cert, *chain, *tls_verified)),
            _ => None,
        })
    }

    /// A renewal: only a certificate of ours, for the same names.
    fn renewal(&self, req: &AuthRequest<'_>, now: SystemTime) -> Result<Decided, Refusal> {
        let Some((cert, _, _)) = Self::certificate(req) else {
            return Err(Refusal::new(
                RefusalReason::Unauthenticated,
                "a renewal is authenticated by the certificate it renews",
            ));
        };
        match self.standing(cert, now)? {
            Standing::Ours(rec) => self.renew_ours(req, cert, rec, now),
            Standing::Foreign => Err(Refusal::new(
                RefusalReason::BadCredential,
                "the certificate to renew was not issued by this CA",
            )),
        }
    }

    fn renew_ours(
        &self,
        req: &AuthRequest<'_>,
        cert: &Certificate,
        rec: IssuedCert,
        now: SystemTime,
    ) -> Result<Decided, Refusal> {
        if req.protocol == Protocol::Scep && unix(now) < rec.not_after - self.policy.renewal_window.as_secs() as i64 {
            return Err(Refusal::new(
                RefusalReason::TooEarly,
                format!(
                    "too early to renew {}: renewal opens {} days before expiry",
                    rec.serial,
                    self.policy.renewal_window.as_secs() / 86400
                ),
            ));
        }
        let names = if self.policy.reenroll_may_change_names {
            self.not_reserved(req.csr.as_asked())?
        } else {
            names::same_names_as(cert, &req.csr)?;
            req.csr.as_asked()
        };
        Ok((Basis::OwnCertificate(rec.serial.clone()), names, None, Some(rec.serial)))
    }

    /// The ordered ladder of an initial enrolment.
    fn ladder(&self, req: &AuthRequest<'_>, now: SystemTime) -> Result<Decided, Refusal> {
        let csr = &req.csr;
        let mut first_refusal: Option<Refusal> = None;
        let note = |r: Refusal, first: &mut Option<Refusal>| {
            if r.reason == RefusalReason::Internal {
                return Err(r);
            }
            first.get_or_insert(r);
            Ok(())
        };
        // 1. An RSPF grant decides alone.
        if let Some((enrolee, granted)) = req.credentials.iter().find_map(|c| match c {
            Credential::EnroleeGrant { enrolee, names } => Some((*enrolee, *names)),
            _ => None,
        }) {
            let whose = format!("Enrolee {enrolee}");
            for n in csr.common_name().iter().chain(csr.dns.iter()) {
                if !granted.contains(n) {
                    return Err(Refusal::new(
                        RefusalReason::GrantRefused,
                        format!(
                            "{whose} may not name {n} in its certificate (only {})",
                            granted.join(", ")
                        ),
                    ));
                }
            }
            names::no_ips(csr, &whose)?;
            return Ok((Basis::EnroleeGrant(enrolee.into()), csr.as_asked(), None, None));
        }
        // 2. Certificates.
        if let Some((cert, chain, tls_verified)) = Self::certificate(req) {
            match self.by_certificate(req, cert, chain, tls_verified, now) {
                Ok(Some(d)) => return Ok(d),
                Ok(None) => {}
                Err(r) => note(r, &mut first_refusal)?,
            }
        }
        // 3. PSK identity.
        if let Some(id) = req.credentials.iter().find_map(|c| match c {
            Credential::Psk(id) => Some(*id),
            _ => None,
        }) {
            let whose = format!("PSK identity {id}");
            let bound = self
                .storage
                .psk_names(id)
                .map_err(Refusal::internal)?
                .map(|s| BoundNames::decode(&s))
                .transpose()
                .map_err(Refusal::internal)?;
            let r = match bound {
                Some(b) => b.admit(csr, &whose),
                None => names::identity_name(csr, id, &whose),
            };
            match r.and_then(|n| self.not_reserved(n)) {
                Ok(n) => return Ok((Basis::Psk(id.into()), n, None, None)),
                Err(r) => note(r, &mut first_refusal)?,
            }
        }
        // 4. HTTP Basic: a challenge as password; wrong is final (401).
        if let Some((user, password)) = req.credentials.iter().find_map(|c| match c {
            Credential::Basic { user, password } => Some((*user, *password)),
            _ => None,
        }) {
            let m = self
                .check_challenge(password, now)?
                .ok_or_else(|| Refusal::new(RefusalReason::BadCredential, "Basic credentials refused"))?;
            let r = match m {
                ChallengeMatch::Static => names::identity_name(csr, user, &format!("Basic user {user}"))
                    .and_then(|n| self.not_reserved(n))
                    .map(|n| (Basis::Basic(user.into()), n, None, None)),
                m => self
                    .by_challenge(csr, m)
                    .map(|(_, n, h, r)| (Basis::Basic(user.into()), n, h, r)),
            };
            match r {
                Ok(d) => return Ok(d),
                Err(r) => note(r, &mut first_refusal)?,
            }
        }
        // 5. The CSR's challengePassword.
        if let Some(pw) = req.credentials.iter().find_map(|c| match c {
            Credential::ChallengePassword(pw) => Some(*pw),
            _ => None,
        }) {
            match self.check_challenge(pw, now)? {
                Some(m) => match self.by_challenge(csr, m) {
                    Ok(d) => return Ok(d),
                    Err(r) => note(r, &mut first_refusal)?,
                },
                None => note(challenge::wrong(), &mut first_refusal)?,
            }
        }
        // 6. A pre-authorised CN.
        if let Some(cn) = csr
            .common_name()
            .filter(|cn| self.policy.preauthorized_cns.iter().any(|p| p == cn))
        {
            let whose = format!("pre-authorised CN {cn}");
            match names::unbound(csr, &self.policy.allowed_dns_suffixes, &whose).and_then(|n| self.not_reserved(n)) {
                Ok(n) => return Ok((Basis::PreauthorisedCn(cn), n, None, None)),
                Err(r) => note(r, &mut first_refusal)?,
            }
        }
        // 7. The verifier hook, for names the unbound rule allows.
        if let Some(v) = &self.policy.verifier {
            let n = names::unbound(csr, &self.policy.allowed_dns_suffixes, "the verifier hook")
                .and_then(|n| self.not_reserved(n));
            match n {
                Ok(n) => {
                    return match v.verify(csr.der, &csr.subject.to_string(), req.transaction) {
                        Ok(true) => Ok((Basis::Verifier, n, None, None)),
                        Ok(false) => Err(first_refusal.unwrap_or_else(|| {
                            Refusal::new(RefusalReason::VerifierRefused, "refused by the verifier hook")
                        })),
                        Err(e) => Err(Refusal::internal(format!("verifier hook {}: {e}", v.command.display()))),
                    }
                }
                Err(r) => note(r, &mut first_refusal)?,
            }
        }
        Err(first_refusal.unwrap_or_else(|| {
            Refusal::new(
                RefusalReason::Unauthenticated,
                match req.protocol {
                    Protocol::Scep => "challenge password missing, wrong, expired or already used",
                    _ => "authentication required",
                },
            )
        }))
    }

    /// Check a challenge password.
    pub fn check_challenge(&self, password: &str, now: SystemTime) -> Result<Option<ChallengeMatch>, Refusal> {
        challenge::check(
            self.storage.as_ref(),
            &self.challenge_key,
            self.policy.one_time_challenges,
            self.policy.static_challenge.as_ref(),
            password,
            unix(now),
        )
    }

    fn by_challenge(&self, csr: &CsrView<'_>, m: ChallengeMatch) -> Result<Decided, Refusal> {
        match m {
            ChallengeMatch::OneTime { label, names, hash } => {
                let whose = format!("challenge {label:?}");
                let n = match names {
                    Some(b) => b.admit(csr, &whose)?,
                    None => names::unbound(csr, &self.policy.allowed_dns_suffixes, &whose)?,
                };
                Ok((Basis::OneTimeChallenge(label), self.not_reserved(n)?, Some(hash), None))
            }
            ChallengeMatch::Static => {
                let n = names::unbound(csr, &self.policy.allowed_dns_suffixes, "the static challenge")?;
                Ok((Basis::StaticChallenge, self.not_reserved(n)?, None, None))
            }
        }
    }

    /// The certificate rungs. `Ok(None)`: the certificate is no credential
    /// here (a SCEP requester's self-signed transport certificate).
    fn by_certificate(
        &self,
        req: &AuthRequest<'_>,
        cert: &Certificate,
        chain: &[Vec<u8>],
        tls_verified: bool,
        now: SystemTime,
    ) -> Result<Option<Decided>, Refusal> {
        let csr = &req.csr;
        let standing = self.standing(cert, now);
        if let Ok(Standing::Ours(rec)) = standing {
            // RFC 8894 clients and sscep renew with a PKCSReq the old
            // certificate signs: a renewal under the same rules.
            if req.protocol == Protocol::Scep {
                return self.renew_ours(req, cert, rec, now).map(Some);
            }
            let n = names::own_names(cert, csr, &format!("certificate {}", rec.serial))?;
            return Ok(Some((Basis::OwnCertificate(rec.serial), n, None, None)));
        }
        let der = cert.to_der().map_err(Refusal::internal)?;
        if let Some(ra) = self
            .policy
            .registration_authorities
            .iter()
            .find(|ra| ra.certificate.to_der().is_ok_and(|d| d == der))
        {
            standing?;
            return self.by_ra(csr, ra).map(Some);
        }
        if let Some(v) = &self.policy.vendor {
            if vendor_chain(v, cert, chain, now) {
                standing?;
                return self.by_vendor(csr, cert, v).map(Some);
            }
        }
        if tls_verified {
            standing?;
            let whose = format!("certificate {}", cert.tbs_certificate.subject);
            let n = names::own_names(cert, csr, &whose).and_then(|n| self.not_reserved(n))?;
            return Ok(Some((Basis::ForeignCertificate(serial_hex(cert)), n, None, None)));
        }
        // A SCEP signer that is neither ours, an RA, nor a vendor's: the
        // requester's own self-signed certificate, no credential. Ours
        // but refused (revoked, expired) is said so.
        match standing {
            Err(r) => Err(r),
            Ok(_) => Ok(None),
        }
    }

    fn by_ra(&self, csr: &CsrView<'_>, ra: &RaAuthority) -> Result<Decided, Refusal> {
        let who = ra.certificate.tbs_certificate.subject.to_string();
        let whose = format!("RA {who}");
        let allowed = |n: &str| ra.may_name.iter().any(|p| names::matches_pattern(n, p));
        match csr.common_name() {
            Some(cn) if allowed(&cn) => {}
            Some(cn) => return Err(refuse_name(format!("{whose} may not request CN={cn}"))),
            None => return Err(refuse_name(format!("{whose} may request only subjects with a CN"))),
        }
        if let Some(bad) = csr.dns.iter().find(|d| !allowed(d)) {
            return Err(refuse_name(format!("{whose} may not request {bad}")));
        }
        names::no_ips(csr, &whose)?;
        Ok((
            Basis::RegistrationAuthority(who),
            self.not_reserved(csr.as_asked())?,
            None,
            None,
        ))
    }

    fn by_vendor(&self, csr: &CsrView<'_>, cert: &Certificate, v: &VendorPolicy) -> Result<Decided, Refusal> {
        let refuse = |e: String| Refusal::new(RefusalReason::NameNotAuthorised, format!("vendor certificate: {e}"));
        let subject = names::template_subject(&v.subject_template, cert).map_err(refuse)?;
        let dns = v
            .dns_templates
            .iter()
            .map(|t| names::fill_template(t, cert))
            .collect::<Result<Vec<_>, _>>()
            .map_err(refuse)?;
        names::no_ips(csr, "a vendor certificate")?;
        let n = IssueNames {
            subject,
            dns,
            ips: Vec::new(),
        };
        Ok((
            Basis::VendorCertificate(cert.tbs_certificate.subject.to_string()),
            self.not_reserved(n)?,
            None,
            None,
        ))
    }

    /// Names reserved for RSPF are issued only under a grant.
    fn not_reserved(&self, n: IssueNames) -> Result<IssueNames, Refusal> {
        let cn = common_name(&n.subject);
        for name in cn.iter().chain(n.dns.iter()) {
            if self
                .policy
                .reserved_names
                .iter()
                .any(|r| names::matches_pattern(name, r) || r == name)
            {
                return Err(refuse_name(format!(
                    "{name} is an RSPF identifier: it is issued only under its Enrolee's grant"
                )));
            }
        }
        Ok(n)
    }
}

/// Where `cert` stands with the CA named `ca_subject` whose records are in
/// `storage` (see [`Authoriser::standing`]); for the paths that identify a
/// peer by certificate without an enrolment decision (RSPF).
pub fn standing(
    storage: &dyn Storage,
    ca_subject: &Name,
    cert: &Certificate,
    now: SystemTime,
) -> Result<Standing, Refusal> {
    let v = &cert.tbs_certificate.validity;
    let t = unix(now);
    if t < unix(v.not_before.to_system_time()) || t >= unix(v.not_after.to_system_time()) {
        return Err(Refusal::new(
            RefusalReason::CredentialExpired,
            format!(
                "certificate {} is not valid now (valid {} to {})",
                cert.tbs_certificate.subject, v.not_before, v.not_after
            ),
        ));
    }
    let der = cert.to_der().map_err(Refusal::internal)?;
    match storage.certificate(&serial_hex(cert)).map_err(Refusal::internal)? {
        Some(rec) if rec.der == der => {
            if rec.revoked_at.is_some() {
                return Err(Refusal::new(
                    RefusalReason::CredentialRevoked,
                    format!("certificate {} ({}) is revoked", rec.subject, rec.serial),
                ));
            }
            Ok(Standing::Ours(rec))
        }
        _ if cert.tbs_certificate.issuer == *ca_subject => Err(Refusal::new(
            RefusalReason::BadCredential,
            format!(
                "certificate {} names this CA as issuer but was not issued by it",
                cert.tbs_certificate.subject
            ),
        )),
        _ => Ok(Standing::Foreign),
    }
}

/// Whether `cert` (with the certificates sent beside it in `chain`, leaf
/// first) chains to the vendor anchors at `now`, on the one chain validator.
/// Vendor CAs publish no revocation here: validity and signatures only.
fn vendor_chain(v: &VendorPolicy, cert: &Certificate, chain: &[Vec<u8>], now: SystemTime) -> bool {
    use der::Decode;
    let parse = |d: &Vec<u8>| Certificate::from_der(d).ok();
    let Ok(anchors) = enrolkit_pkix::Anchors::new(v.anchors.iter().filter_map(parse).collect()) else {
        return false;
    };
    let intermediates: Vec<Certificate> = chain.iter().skip(1).filter_map(parse).collect();
    enrolkit_pkix::Validator::new(
        &anchors,
        &intermediates,
        enrolkit_pkix::Options::new(enrolkit_pkix::Purpose::Any),
    )
    .validate(cert, now)
    .is_ok()
}

/// Basis, names, challenge to consume, serial renewed.
type Decided = (Basis, IssueNames, Option<Vec<u8>>, Option<String>);
