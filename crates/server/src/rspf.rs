//! The M2M Enrolment Function of oneM2M Remote Security Provisioning
//! (TS-0003 clause 8.3, seed `001`): the Enrolment Exchange, completion
//! messages, and MEF Key Retrieval, served on the EST listeners.
//!
//! The TLS session authenticates the Enrolee by one of the three bootstrap
//! frameworks and yields the Enrolment Key by key export
//! ([`enrolkit_rspf::enrolment::EXPORTER_LABEL`]); the exchange on that
//! session records Ke, sealed under the operator's storage key with the
//! record's clear columns as associated data ([`crate::seal`]), together
//! with what it authorised. An Enrolment Target then fetches its key over
//! mutually authenticated TLS, by certificate (a name of the certificate
//! equals `From`) or by the Kre of its own enrolment (PSK identity = its
//! KreId, `From` = its Enrolee-ID).
//!
//! Pre-shared keys for the OpenSSL listener come from [`RspfService`] as a
//! [`PskStore`]: a KpmId (`mef psk add`), a KreId, or a B-TID, whose Ks_NAF
//! the GBA BSF stub supplies, all answered from memory
//! ([`crate::handshake`]): the live Kre records and the bootstraps are
//! loaded when the service is built, written through when it records one,
//! and reloaded every [`crate::handshake::REFRESH`]. **The BSF stub is a test double**: a real MEF
//! asks the operator's BSF over Zn (TS 29.109); the stub holds Ks in the
//! MEF's own database so GBA can be exercised without a mobile network.
//!
//! Paths: `POST /rspf/enrolment` (an [`EnrolmentRequest`], answered by
//! [`EnrolmentInstructions`] or [`Refused`]), `POST /rspf/completion` (a
//! [`Completion`], answered 204 or [`Refused`]), and
//! `GET /fetchCredentials/<KeID>/<SUID>` with `X-M2M-Origin` (TS-0003
//! V3.18.0 8.3.2.1 step f; the KeID must be ours) or the change request's
//! `GET /fetchCredentials/<RelativeKeId>` with `From`, answered by a
//! [`CredentialResponse`] with the fields of tables 8.3.2.1-5/-6 (and
//! `CredentialID` when configured). JSON or XML by Content-Type / Accept.
//!
//! Keys for Enrolment Targets are derived per 10.3.7 with the SUID
//! (8.3.9.9.2: 22 for SAEF, 23 for ESPrim and ESData; see
//! [`CredentialUsage`]) and the target's FQDN form ([`TargetFqdn`]); a
//! target is matched by that form, so `//sp.example.com/CSE-1` and
//! `CSE-1.sp.example.com` are one target. Enrolments recorded before
//! (their grants name SUIDs 11/12/13) keep the change-request profile
//! until they expire.

use crate::ra::{challenge_hash, common_name, unix};
use crate::scep::HttpResponse;
use crate::seal::Sealer;
use crate::storage::{GbaBootstrap, KeRecord, Storage, StorageError};
use const_oid::ObjectIdentifier;
use der::Decode;
use enrolkit_exchange::bootstrap::{EnroleeAuthentication, Framework, MefEnroleeConfig};
use enrolkit_exchange::v318::{ExchangeRequest, ExchangeResponse, ExchangeResponses, InstructionType, WireProfile};
use enrolkit_exchange::GbaFetchRequest;
use enrolkit_exchange::{
    CertificateEnrolment, CommSecurityType, Completion, CredentialResponse, DirectKey, EnrolmentInstructions,
    EnrolmentRequest, FetchRequest, Format, MafCredentialType, MafEnrolment, Message, Procedure, Refused, FETCH_PREFIX,
};
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, RelativeId, TargetId, EXPORT_LEN};
use enrolkit_rspf::gba::{btid_of_identity, naf_key, parse_btid, NafId, NafKey, UaProtocolId, RAND_LEN};
use enrolkit_rspf::suid::KeySource;
use enrolkit_rspf::{Fqdn, Key256, PublicKeyId, Suid, TargetFqdn};
use enrolkit_tls::{PskContext, PskStore, TlsInfo, TlsVersion};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;
use zeroize::Zeroizing;

/// Where the Enrolee sends its [`EnrolmentRequest`].
pub const ENROLMENT_PATH: &str = "/rspf/enrolment";
/// Where the Enrolee sends its [`Completion`] messages.
pub const COMPLETION_PATH: &str = "/rspf/completion";

/// Whether `path` is one of the MEF's RSPF resources.
pub fn is_rspf_path(path: &str) -> bool {
    path == ENROLMENT_PATH || path == COMPLETION_PATH || path.starts_with(FETCH_PREFIX)
}

/// The operation an RSPF path names (`enrolment`, `completion`, `fetch`),
/// as logged and counted; `other` for a path that is none of them.
pub fn operation_of(path: &str) -> &'static str {
    if path == ENROLMENT_PATH {
        "enrolment"
    } else if path == COMPLETION_PATH {
        "completion"
    } else if path.starts_with(FETCH_PREFIX) {
        "fetch"
    } else {
        "other"
    }
}

/// What the MEF grants an Enrolee in the exchange (step 4 of clause 8.3.3.1
/// leaves this to the MEF's "preferences"; these are ours).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grant {
    /// Certificate Enrolment over EST, when the Enrolee supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateGrant>,
    /// Remote MAF Enrolment, when the Enrolee supports MAF procedures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maf: Option<MafGrant>,
    /// Keys the Enrolee may derive directly for CSEs/AEs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct_keys: Vec<DirectKeyGrant>,
    /// Initial configuration: the Registrar CSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar_cse: Option<String>,
    /// The remote management server's URI, sent (V3.18 profile, table
    /// 8.3.2.1-4) to an Enrolee that indicates Remote Management support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_management_uri: Option<String>,
}

/// Certificate Enrolment as granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertificateGrant {
    /// Communication security types the certificate may be used for.
    #[serde(default)]
    pub security_types: Vec<CommSecurityType>,
    /// EKU OIDs the certificate gets (and the only ones its CSR may ask for).
    #[serde(default)]
    pub ekus: Vec<String>,
    /// The EST server to use, when not this MEF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est_uri: Option<String>,
}

/// Remote MAF Enrolment as granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MafGrant {
    /// The MAF's FQDN (enters Kc; the MAF fetches Kc with it as `From`).
    pub fqdn: String,
    /// Where to reach the MAF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `certificate` or `symmetricKey`.
    pub credential: MafCredentialType,
    /// Communication security types the MAF may facilitate.
    #[serde(default)]
    pub security_types: Vec<CommSecurityType>,
    /// V3.18 profile (table 8.3.2.1-3): where the Enrolee registers its
    /// Master Credential; its host must be `fqdn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_registration_uri: Option<String>,
    /// V3.18 profile: the MAF key retrieval URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_retrieval_uri: Option<String>,
    /// V3.18 profile (optional): the MAF client registration URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_registration_uri: Option<String>,
    /// V3.18 profile (optional): a PEM file of the MAF's trust anchors,
    /// sent to the Enrolee (relative to the configuration's directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_anchor: Option<String>,
}

/// One (Enrolee B-ID, communication security type) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DirectKeyGrant {
    /// Enrolee B's CSE-ID or AE-ID (FQDN form).
    pub target: String,
    /// What the key is for.
    pub security_type: CommSecurityType,
}

/// Where the MEF stands in a GBA-based enrolment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GbaArrangement {
    /// The seed's: the MEF is a NAF; the Enrolee runs the Enrolment
    /// Exchange over TLS-PSK keyed by Ks_NAF for the MEF, and Ke comes from
    /// that session.
    #[default]
    #[serde(rename = "mef-as-naf")]
    MefAsNaf,
    /// TS-0003 V3.18.0 8.3.2.3: the MEF is the BSF (Ke = Ks, KeID = B-TID);
    /// each Enrolment Target is a NAF and fetches Ks_NAF from the MEF
    /// ([`GbaFetchRequest`]); there is no Enrolment Exchange.
    #[serde(rename = "mef-as-bsf")]
    MefAsBsf,
}

/// One configured Enrolee.
#[derive(Debug, Clone)]
pub struct Enrolee {
    /// Its name (tokens are issued for it, logs name it).
    pub name: String,
    /// Table 9.2.2.3-1/-2 parameters.
    pub bootstrap: MefEnroleeConfig,
    /// What the exchange grants it.
    pub grant: Grant,
    /// Certificate-based: the trust anchors (DER) its certificate must chain to.
    pub trust_anchors: Vec<Vec<u8>>,
    /// Exempt from the forward-secrecy policy: its sessions may use a
    /// plain-PSK TLS 1.2 suite (a peer that offers only TS-0003 10.2.2's
    /// mandatory `TLS_PSK_WITH_AES_128_CBC_SHA256`).
    pub forward_secrecy_exception: bool,
    /// Which Enrolment Exchange message set it speaks (V3.18 has no version
    /// field to negotiate on).
    pub wire_profile: WireProfile,
    /// GBA: whether the MEF is a NAF (the seed) or the BSF (V3.18).
    pub gba_arrangement: GbaArrangement,
    /// The MAF's trust anchors (DER) sent in a V3.18 MAF response.
    pub maf_trust_anchors: Vec<Vec<u8>>,
}

/// Everything the service needs at start-up.
pub struct RspfSetup {
    /// The MEF's FQDN: KeId, KreId and key identifiers end in it; GBA's NAF_Id starts with it.
    pub mef_fqdn: String,
    /// The Enrolees.
    pub enrolees: Vec<Enrolee>,
    /// State.
    pub storage: Arc<dyn Storage>,
    /// The operator's key for Ke (and the BSF stub's Ks) at rest.
    pub storage_key: Zeroizing<[u8; 32]>,
    /// Key for hashing Enrolment Tokens (the challenge key; tokens are hashed under their own label).
    pub token_key: Zeroizing<[u8; 32]>,
    /// How Enrolment Targets authenticate by certificate for Key Retrieval.
    pub targets: Vec<TargetAuth>,
    /// Whether operator-provisioned PSKs (`mef psk add`) other than the
    /// Enrolees' KpmIds open TLS sessions (`[est] psk`).
    pub operator_psks: bool,
    /// Whether Key Retrieval answers carry `CredentialID` (an extension).
    pub send_credential_id: bool,
    /// The forward-secrecy policy: RSPF sessions must have an ephemeral
    /// (EC)DHE exchange (TLS 1.3, or an (EC)DHE TLS 1.2 suite) unless the
    /// Enrolee is exempt ([`Enrolee::forward_secrecy_exception`]).
    pub require_forward_secrecy: bool,
    /// The CA's subject: a certificate naming it as issuer must be one of
    /// ours, unrevoked, to identify an Enrolee or a target.
    pub ca_subject: x509_cert::name::Name,
    /// The operator PSKs in memory (KpmIds among them), shared with the EST listener.
    pub psks: Arc<crate::handshake::PskView>,
}

/// How one Enrolment Target proves, by certificate, that it is the `From`
/// it claims (TS-0003 8.3.3.6 3.b.i: its ID "is associated with the
/// credential it uses"): a pinned key, and/or a certificate naming it under
/// its own trust anchors. A target enrolled with the MEF itself may instead
/// use the Kre of its enrolment, with no configuration.
#[derive(Debug, Clone)]
pub struct TargetAuth {
    /// The target's CSE-ID, AE-ID or MAF FQDN (`X-M2M-Origin` / `From`).
    pub id: String,
    /// Its certificate's key, if pinned: SHA-256 of the SubjectPublicKeyInfo
    /// as an RFC 6920 `ni:///sha-256;…` URI (TS-0003 10.1.2) or hex.
    pub spki_sha256: Option<String>,
    /// Trust anchors (DER) its certificate must chain to; it must then name `id`.
    pub trust_anchors: Vec<Vec<u8>>,
}

/// What the EST server should make of an RSPF session (see [`RspfService::certificate_grant`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantCheck {
    /// The session is not an RSPF Enrolee's: EST's own authorisation applies.
    NotAnEnrolee,
    /// An Enrolee with a live certificate grant.
    Granted {
        /// The Enrolee's name.
        enrolee: String,
        /// EKUs granted (empty: the profile's).
        ekus: Vec<ObjectIdentifier>,
        /// The only names (subject CN, DNS SANs) its certificate may carry.
        names: Vec<String>,
    },
    /// An RSPF session that may not enrol a certificate, and why.
    Refused(String),
}

/// The MEF.
pub struct RspfService {
    mef_fqdn: String,
    enrolees: Vec<Enrolee>,
    storage: Arc<dyn Storage>,
    sealer: Sealer,
    token_key: Zeroizing<[u8; 32]>,
    targets: Vec<TargetAuth>,
    operator_psks: bool,
    send_credential_id: bool,
    require_forward_secrecy: bool,
    ca_subject: x509_cert::name::Name,
    metrics: Arc<crate::metrics::Metrics>,
    psks: Arc<crate::handshake::PskView>,
    /// Kre of live enrolments and GBA bootstraps, for handshakes.
    live: std::sync::RwLock<Live>,
    /// What `live` was last loaded at (reloads skipped while storage's
    /// handshake generation has not moved).
    generation: crate::handshake::Generation,
}

/// What handshakes need of the MEF's records, in memory.
#[derive(Default)]
struct Live {
    /// By RelativeKreId (upper-case hex).
    kre: std::collections::HashMap<String, LiveKre>,
    /// By B-TID.
    gba: std::collections::HashMap<String, GbaBootstrap>,
}

/// The Kre of one enrolment.
struct LiveKre {
    relative_ke_id: String,
    expires: i64,
    /// The record's sealed column, to skip opening it again when unchanged.
    sealed: Vec<u8>,
    kre: Key256,
    /// When this process wrote it through (kept across a reload that read
    /// the database before the record was committed).
    written: Option<std::time::Instant>,
}

/// A request as HTTP and TLS saw it.
#[derive(Debug, Clone, Copy)]
pub struct RspfRequest<'a> {
    /// Method.
    pub method: &'a str,
    /// Path (no query).
    pub path: &'a str,
    /// Content-Type.
    pub content_type: Option<&'a str>,
    /// Accept.
    pub accept: Option<&'a str>,
    /// `From`.
    pub from: Option<&'a str>,
    /// `X-M2M-Origin`.
    pub origin: Option<&'a str>,
    /// Body.
    pub body: &'a [u8],
    /// The connection.
    pub tls: &'a TlsInfo,
}

/// What a request did, for the log line.
#[derive(Debug, Clone, Default)]
pub struct RspfOutcome {
    /// `enrolment`, `completion`, `fetch`.
    pub operation: &'static str,
    /// Who asked (Enrolee name, or the `From` of a fetch).
    pub peer: String,
    /// The KeId concerned.
    pub ke_id: String,
    /// What happened (a refusal's reason).
    pub outcome: String,
}

/// A refusal: HTTP status and reason.
struct Refusal(u16, String);

fn refuse(status: u16, msg: impl Into<String>) -> Refusal {
    Refusal(status, msg.into())
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "internal error");
    Refusal(500, "internal error".into())
}

/// What an exchange authorised, as stored with the sealed Ke (and bound to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Grants {
    maf: Option<(String, MafCredentialType)>,
    /// (SUID, target as configured): 2x for V3.18 derivations, 11/12/13
    /// in records made before (the change-request profile).
    keys: Vec<(Suid, String)>,
    certificate_ekus: Option<Vec<String>>,
}

impl Grants {
    /// One line per grant: `maf FQDN`, `key SUID TARGET`, `cert EKU,EKU`.
    fn encode(&self) -> String {
        let mut s = String::new();
        if let Some((m, how)) = &self.maf {
            s.push_str(&format!("maf {m} {}\n", String::from(*how)));
        }
        for (suid, t) in &self.keys {
            s.push_str(&format!("key {suid} {t}\n"));
        }
        if let Some(e) = &self.certificate_ekus {
            s.push_str(&format!("cert {}\n", e.join(",")));
        }
        s
    }

    fn decode(s: &str) -> Result<Grants, String> {
        let mut g = Grants::default();
        for line in s.lines() {
            match line.split_once(' ') {
                Some(("maf", rest)) => {
                    let (m, how) = rest.split_once(' ').ok_or("bad maf grant")?;
                    let how = MafCredentialType::try_from(how.to_owned())?;
                    g.maf = Some((m.to_owned(), how));
                }
                Some(("key", rest)) => {
                    let (suid, target) = rest.split_once(' ').ok_or("bad key grant")?;
                    let suid = Suid::parse(suid).map_err(|_| "bad SUID in grant")?;
                    let known = match suid.source {
                        KeySource::MefEstablished => true,
                        KeySource::PreProvisioned => CredentialUsage::from_change_request_suid(suid.value()).is_some(),
                        _ => false,
                    };
                    if !known {
                        return Err("bad SUID in grant".into());
                    }
                    g.keys.push((suid, target.to_owned()));
                }
                Some(("cert", e)) => {
                    g.certificate_ekus = Some(e.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())
                }
                _ => return Err(format!("bad grant line {line:?}")),
            }
        }
        Ok(g)
    }
}

/// Associated data sealing Ke to its record.
/// The clear columns a sealed record is bound to. A record that names its
/// parent (schema version 2) binds that too, under another label, so
/// clearing the link in the database makes the record unusable rather than
/// exempt from its parent's withdrawal. Records without a parent (made
/// before, or with the bootstrap credential) keep version 1's associated
/// data, which an older `mef` sharing the database during an upgrade can
/// open; turning their empty link into none only widens what a withdrawal
/// takes.
fn ke_aad(r: &KeRecord) -> Vec<u8> {
    let base = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.relative_ke_id,
        r.relative_kre_id,
        r.enrolee,
        r.enrolee_id.as_deref().unwrap_or(""),
        r.created,
        r.expires
    );
    match r.parent.as_deref() {
        None | Some("") => format!("enrolkit rspf ke v2\n{base}"),
        Some(p) => format!("enrolkit rspf ke v3\n{base}\n{p}"),
    }
    .into_bytes()
}

fn ks_aad(b: &GbaBootstrap) -> Vec<u8> {
    format!("enrolkit gba-stub ks v1\n{}\n{}\n{}", b.btid, b.impi, b.expires).into_bytes()
}

/// The names a certificate (DER) carries: its DNS and URI subjectAltNames,
/// or its subject CN when it has none of those (RFC 6125 §6.4.4).
fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_cert::ext::pkix::name::GeneralName;
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let san = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .and_then(|e| x509_cert::ext::pkix::SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
    for n in san.map(|s| s.0).unwrap_or_default() {
        match n {
            GeneralName::DnsName(d) => names.push(d.to_string()),
            GeneralName::UniformResourceIdentifier(u) => names.push(u.to_string()),
            _ => {}
        }
    }
    if names.is_empty() {
        names.extend(common_name(&cert.tbs_certificate.subject));
    }
    names
}

/// Whether a TLS client's chain (leaf first, DER) chains to `anchors` at
/// `now` for TLS client authentication, on the one chain validator.
fn chains_to(chain: &[Vec<u8>], anchors: &[Vec<u8>], now: i64) -> Result<(), String> {
    use enrolkit_pkix::{Anchors, Options, Purpose, Validator};
    let parse = |d: &Vec<u8>| x509_cert::Certificate::from_der(d).map_err(|e| e.to_string());
    let (leaf, rest) = chain.split_first().ok_or("no client certificate")?;
    let leaf = parse(leaf)?;
    let intermediates = rest.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let anchors = Anchors::new(anchors.iter().map(parse).collect::<Result<Vec<_>, _>>()?).map_err(|e| e.to_string())?;
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
    Validator::new(&anchors, &intermediates, Options::new(Purpose::TlsClient))
        .validate(&leaf, at)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The identifier of a certificate's key (10.1.2: SHA-256 of its SPKI).
fn spki_id(der: &[u8]) -> Option<PublicKeyId> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info).ok()?;
    Some(PublicKeyId::of_spki(&spki))
}

/// Whether the certificate `der` holds the key `pin` names (an RFC 6920
/// `ni:` URI or hex; validated when the configuration was read).
fn key_matches(der: &[u8], pin: &str) -> bool {
    matches!((spki_id(der), PublicKeyId::parse(pin)), (Some(a), Ok(b)) if a == b)
}

/// The Ua protocol identifier of a GBA TLS-PSK handshake: TLS 1.3's, or
/// TLS 1.2's with the negotiated suite; `None` when a TLS 1.2 suite is
/// not known (no key is offered then).
pub fn gba_protocol(ctx: &PskContext) -> Option<UaProtocolId> {
    UaProtocolId::for_tls_psk(ctx.version == Some(TlsVersion::Tls12), ctx.cipher_suite)
}

impl RspfService {
    /// Build the service, refusing a configuration that could not work.
    pub fn new(s: RspfSetup) -> Result<Self, String> {
        Fqdn::new("MEF", &s.mef_fqdn).map_err(|e| format!("rspf.mef-fqdn: {e}"))?;
        for (i, e) in s.enrolees.iter().enumerate() {
            let at = |m: String| format!("rspf enrolee {:?}: {m}", e.name);
            if e.name.is_empty() || e.name.len() > 64 || !e.name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(at("a name is 1 to 64 printable characters".into()));
            }
            e.bootstrap.validate().map_err(|x| at(x.to_string()))?;
            check_grant(&e.grant).map_err(at)?;
            check_v318(e).map_err(at)?;
            if e.gba_arrangement == GbaArrangement::MefAsBsf && e.bootstrap.framework != Framework::GbaBased {
                return Err(at("gba-arrangement = \"mef-as-bsf\" is for gba-based Enrolees".into()));
            }
            let others: Vec<&Enrolee> = s.enrolees.iter().take(i).collect();
            if others.iter().any(|o| o.name == e.name) {
                return Err(at("name used twice".into()));
            }
            if e.bootstrap.kpm_id.is_some() && others.iter().any(|o| o.bootstrap.kpm_id == e.bootstrap.kpm_id) {
                return Err(at("kpm-id used by another enrolee".into()));
            }
            if e.bootstrap.impi.is_some() && others.iter().any(|o| o.bootstrap.impi == e.bootstrap.impi) {
                return Err(at("impi used by another enrolee".into()));
            }
            // Key Retrieval by Kre trusts the Enrolee-ID as the target's identity.
            if e.bootstrap.enrolee_id.is_some()
                && others.iter().any(|o| o.bootstrap.enrolee_id == e.bootstrap.enrolee_id)
            {
                return Err(at("enrolee-id used by another enrolee".into()));
            }
            if e.grant.certificate.is_some() && e.bootstrap.enrolee_id.is_none() {
                return Err(at(
                    "a certificate grant needs enrolee-id: the certificate may name only the Enrolee".into(),
                ));
            }
            match &e.bootstrap.authentication {
                Some(EnroleeAuthentication::DeviceCertificate { .. })
                | Some(EnroleeAuthentication::EntityCertificate { .. })
                    if e.trust_anchors.is_empty() =>
                {
                    return Err(at("the trust anchor holds no certificate".into()))
                }
                Some(EnroleeAuthentication::EntityCertificate { .. }) if e.bootstrap.enrolee_id.is_none() => {
                    return Err(at(
                        "entity-certificate authentication needs enrolee-id (the certificate must name it)".into(),
                    ))
                }
                _ => {}
            }
        }
        for (i, t) in s.targets.iter().enumerate() {
            let at = |m: &str| format!("rspf target {:?}: {m}", t.id);
            TargetId::new(&t.id).map_err(|e| at(&e.to_string()))?;
            if t.spki_sha256.is_none() && t.trust_anchors.is_empty() {
                return Err(at("give spki-sha256, trust-anchor, or both"));
            }
            if let Some(pin) = &t.spki_sha256 {
                PublicKeyId::parse(pin).map_err(|e| at(&format!("spki-sha256: {e}")))?;
            }
            if s.targets.iter().take(i).any(|o| o.id == t.id) {
                return Err(at("listed twice"));
            }
        }
        let svc = RspfService {
            sealer: Sealer::new(&s.storage_key).map_err(|e| e.to_string())?,
            mef_fqdn: s.mef_fqdn,
            enrolees: s.enrolees,
            storage: s.storage,
            token_key: s.token_key,
            targets: s.targets,
            operator_psks: s.operator_psks,
            send_credential_id: s.send_credential_id,
            require_forward_secrecy: s.require_forward_secrecy,
            ca_subject: s.ca_subject,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            psks: s.psks,
            live: std::sync::RwLock::new(Live::default()),
            generation: crate::handshake::Generation::default(),
        };
        crate::handshake::Refresh::refresh(&svc).map_err(|e| format!("rspf: loading enrolments: {e}"))?;
        Ok(svc)
    }

    /// Reload the live Kre records and the GBA bootstraps from storage,
    /// opening only the records that changed since the last load.
    fn reload_live(&self) -> Result<(), String> {
        let started = std::time::Instant::now();
        let now = unix(SystemTime::now());
        let recs = self.storage.enrolments().map_err(|e| e.to_string())?;
        let gba = self.storage.gba_bootstraps().map_err(|e| e.to_string())?;
        let mut next = Live::default();
        {
            let old = self.live.read().map_err(|_| "lock poisoned".to_owned())?;
            for rec in recs.into_iter().filter(|r| r.expires > now) {
                if let Some(o) = old.kre.get(&rec.relative_kre_id).filter(|o| o.sealed == rec.sealed) {
                    next.kre.insert(
                        rec.relative_kre_id,
                        LiveKre {
                            relative_ke_id: o.relative_ke_id.clone(),
                            expires: rec.expires,
                            sealed: rec.sealed,
                            kre: o.kre.clone(),
                            written: None,
                        },
                    );
                    continue;
                }
                match self.open(&rec) {
                    Ok((keys, _)) => {
                        next.kre.insert(
                            rec.relative_kre_id.clone(),
                            LiveKre {
                                relative_ke_id: rec.relative_ke_id,
                                expires: rec.expires,
                                sealed: rec.sealed,
                                kre: keys.kre.clone(),
                                written: None,
                            },
                        );
                    }
                    Err(Refusal(_, why)) => {
                        tracing::warn!(relative_ke_id = %rec.relative_ke_id, reason = %why, "enrolment record does not open: its Kre is refused")
                    }
                }
            }
            // Written through after this load read the database: not lost.
            for (id, o) in &old.kre {
                if o.written.is_some_and(|w| w >= started) && !next.kre.contains_key(id) {
                    next.kre.insert(
                        id.clone(),
                        LiveKre {
                            relative_ke_id: o.relative_ke_id.clone(),
                            expires: o.expires,
                            sealed: o.sealed.clone(),
                            kre: o.kre.clone(),
                            written: o.written,
                        },
                    );
                }
            }
            next.gba = gba
                .into_iter()
                .filter(|b| b.expires > now)
                .map(|b| (b.btid.clone(), b))
                .collect();
            // A bootstrap made here after the load read the database is kept
            // (bootstraps are never withdrawn, only expire).
            for (id, b) in old.gba.iter().filter(|(_, b)| b.expires > now) {
                next.gba.entry(id.clone()).or_insert_with(|| b.clone());
            }
        }
        *self.live.write().map_err(|_| "lock poisoned".to_owned())? = next;
        Ok(())
    }

    /// The Kre of the live enrolment whose KreId is `identity`, from memory.
    fn live_kre(&self, identity: &str, now: i64) -> Option<Zeroizing<Vec<u8>>> {
        let id = KeyId::parse(identity).ok()?;
        if id.fqdn.as_str() != self.mef_fqdn {
            return None;
        }
        let live = self.live.read().ok()?;
        let k = live.kre.get(&id.relative.to_string())?;
        (k.expires > now).then(|| Zeroizing::new(k.kre.expose().to_vec()))
    }

    /// Count consumed Enrolment Tokens into `metrics` (those of `mef
    /// serve`; by default, a registry of its own nobody reads).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The MEF's FQDN (checked in `new`).
    fn fqdn(&self) -> Result<Fqdn<'_>, Refusal> {
        Fqdn::new("MEF", &self.mef_fqdn).map_err(internal)
    }

    /// Answer one request.
    pub fn handle(&self, req: &RspfRequest<'_>, now: SystemTime) -> (HttpResponse, RspfOutcome) {
        let mut log = RspfOutcome::default();
        let reply_format = reply_format(req);
        let result = if req.path == ENROLMENT_PATH {
            log.operation = "enrolment";
            self.post_only(req).and_then(|()| self.enrolment(req, now, &mut log))
        } else if req.path == COMPLETION_PATH {
            log.operation = "completion";
            self.post_only(req).and_then(|()| self.completion(req, now, &mut log))
        } else {
            log.operation = "fetch";
            return self.fetch(req, now, &mut log, reply_format);
        };
        let resp = match result {
            Ok(r) => r,
            Err(Refusal(status, msg)) => {
                tracing::warn!(operation = log.operation, peer = %log.peer, reason = %msg, "RSPF refusal");
                log.outcome = format!("{status} {msg}");
                message(status, &Refused::new(msg), reply_format)
            }
        };
        if log.outcome.is_empty() {
            log.outcome = resp.status.to_string();
        }
        (resp, log)
    }

    fn post_only(&self, req: &RspfRequest<'_>) -> Result<(), Refusal> {
        if req.method.eq_ignore_ascii_case("POST") {
            Ok(())
        } else {
            Err(refuse(405, format!("{} takes POST", req.path)))
        }
    }

    /// The Enrolee the TLS session authenticated.
    fn identify(&self, tls: &TlsInfo, now: i64) -> Result<&Enrolee, Refusal> {
        self.identify_with_kre(tls, now).map(|(e, _)| e)
    }

    /// As [`Self::identify`], with the enrolment whose Kre authenticated
    /// the session when it was one (a re-enrolment's parent, looked up
    /// once so the decision and the record agree).
    fn identify_with_kre(&self, tls: &TlsInfo, now: i64) -> Result<(&Enrolee, Option<KeyedRecord>), Refusal> {
        let find = |f: &dyn Fn(&Enrolee) -> bool| self.enrolees.iter().find(|e| f(e));
        if let Some(id) = &tls.psk_identity {
            if let Some(e) = find(&|e| {
                e.bootstrap.framework == Framework::PreProvisionedSymmetricKey
                    && e.bootstrap.kpm_id.as_deref() == Some(id.as_str())
            }) {
                return Ok((e, None));
            }
            // The seed's bare B-TID, or TS 24.109's "3GPP-bootstrapping" form.
            if let Some(btid) = btid_of_identity(id) {
                if let Some(b) = self.storage.gba_bootstrap(btid).map_err(internal)? {
                    if b.expires <= now {
                        return Err(refuse(403, "the GBA bootstrap (B-TID) has expired"));
                    }
                    // The handshake succeeded, so both ends derived Ks_NAF for the
                    // suite it negotiated (NAF_Id names it): any offered suite will do.
                    if let Some(e) = find(&|e| {
                        e.bootstrap.framework == Framework::GbaBased && e.bootstrap.impi.as_deref() == Some(&b.impi)
                    }) {
                        return Ok((e, None));
                    }
                }
            }
            if let Some(rec) = self.kre_record(id, now)? {
                if let Some(e) = find(&|e| e.name == rec.rec.enrolee) {
                    return Ok((e, Some(rec)));
                }
            }
            return Err(refuse(403, format!("PSK identity {id} is not a configured Enrolee's")));
        }
        let Some(leaf) = tls.peer_chain.first() else {
            return Err(refuse(
                403,
                "no Enrolee credential on this TLS session (a certificate, a KpmId or a B-TID)",
            ));
        };
        self.check_standing(leaf, now)?;
        let names = certificate_names(leaf);
        let chains = |e: &Enrolee| chains_to(&tls.peer_chain, &e.trust_anchors, now).is_ok();
        let matched = find(&|e| match &e.bootstrap.authentication {
            Some(EnroleeAuthentication::RawPublicKey { public_key_id }) => key_matches(leaf, public_key_id),
            Some(EnroleeAuthentication::DeviceCertificate { device_id, .. }) => {
                names.iter().any(|n| n == device_id) && chains(e)
            }
            Some(EnroleeAuthentication::EntityCertificate { .. }) => {
                e.bootstrap
                    .enrolee_id
                    .as_ref()
                    .is_some_and(|id| names.iter().any(|n| n == id))
                    && chains(e)
            }
            None => false,
        });
        matched
            .map(|e| (e, None))
            .ok_or_else(|| refuse(403, "the TLS client certificate is not a configured Enrolee's"))
    }

    /// The forward-secrecy policy (`[rspf] require_forward_secrecy`): with
    /// a plain-PSK TLS 1.2 suite, whoever later learns the PSK (Kpm, Kre,
    /// Ks_NAF) can recompute the session's keys and so Ke; such a session is
    /// refused, naming the policy, unless `enrolee` is exempt.
    fn check_forward_secrecy(&self, tls: &TlsInfo, enrolee: Option<&Enrolee>) -> Result<(), Refusal> {
        if !self.require_forward_secrecy || tls.forward_secret() || enrolee.is_some_and(|e| e.forward_secrecy_exception)
        {
            return Ok(());
        }
        let suite = match tls.cipher_suite {
            Some(n) => format!("{} suite {n:#06X}", tls.version),
            None => format!("{} with an unreported suite", tls.version),
        };
        let exception = match enrolee {
            Some(e) => format!(
                "; for an Enrolee that offers only plain-PSK suites, set forward-secrecy-exception = true on the [[rspf.enrolee]] named {}",
                e.name
            ),
            None => String::new(),
        };
        Err(refuse(
            403,
            format!(
                "refused by the forward-secrecy policy ([rspf] require_forward_secrecy): {suite} has no (EC)DHE key exchange, so whoever later learns the pre-shared key could recover this session's keys{exception}"
            ),
        ))
    }

    /// A certificate identifies a peer only while it is valid and, when it
    /// is ours, unrevoked (the authorisation core's rule, on every path).
    fn check_standing(&self, leaf: &[u8], now: i64) -> Result<(), Refusal> {
        let cert = x509_cert::Certificate::from_der(leaf)
            .map_err(|e| refuse(403, format!("the TLS client certificate does not parse: {e}")))?;
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64);
        crate::ra::standing(self.storage.as_ref(), &self.ca_subject, &cert, at)
            .map(|_| ())
            .map_err(|r| refuse(403, format!("the TLS client certificate: {}", r.detail)))
    }

    /// The live record whose KreId is `identity` (`HEX@mef-fqdn`).
    fn kre_record(&self, identity: &str, now: i64) -> Result<Option<KeyedRecord>, Refusal> {
        let Ok(id) = KeyId::parse(identity) else {
            return Ok(None);
        };
        if id.fqdn.as_str() != self.mef_fqdn {
            return Ok(None);
        }
        let Some(rec) = self
            .storage
            .enrolment_by_kre(&id.relative.to_string())
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if rec.expires <= now {
            return Ok(None);
        }
        // Only an intact record (sealed under our key, these columns) identifies.
        self.open(&rec)?;
        Ok(Some(KeyedRecord { rec }))
    }

    /// Ke and the grants of a record, if the record is intact (sealed under
    /// our key, with these clear columns).
    fn open(&self, rec: &KeRecord) -> Result<(EnrolmentKeys, Grants), Refusal> {
        let plain = self.sealer.open(&ke_aad(rec), &rec.sealed).map_err(internal)?;
        let (ke, grants) = plain
            .split_at_checked(32)
            .ok_or_else(|| internal("sealed record too short"))?;
        let rel = RelativeId::from_hex(&rec.relative_ke_id).map_err(internal)?;
        let keys = EnrolmentKeys::from_ke(Key256::from_slice(ke).ok_or_else(|| internal("sealed Ke length"))?, rel)
            .map_err(internal)?;
        if keys.relative_kre_id.to_string() != rec.relative_kre_id {
            return Err(internal("stored RelativeKreId does not match Ke"));
        }
        let grants = std::str::from_utf8(grants)
            .map_err(internal)
            .and_then(|g| Grants::decode(g).map_err(internal))?;
        Ok((keys, grants))
    }

    fn seal(&self, rec: &KeRecord, keys: &EnrolmentKeys, grants: &Grants) -> Result<Vec<u8>, Refusal> {
        let mut plain = Zeroizing::new(keys.ke.expose().to_vec());
        plain.extend_from_slice(grants.encode().as_bytes());
        self.sealer.seal(&ke_aad(rec), &plain).map_err(internal)
    }

    /// Tokens are hashed under the challenge key with their own label, so a
    /// token's hash never equals a challenge's.
    fn token_hash(&self, token: &str) -> Vec<u8> {
        challenge_hash(
            &self.token_key,
            &Zeroizing::new(format!("rspf-enrolment-token\0{token}")),
        )
    }

    fn enrolment(
        &self,
        req: &RspfRequest<'_>,
        now: SystemTime,
        log: &mut RspfOutcome,
    ) -> Result<HttpResponse, Refusal> {
        let format = request_format(req)?;
        let t = unix(now);
        // Who asks decides which message set the body is in (V3.18 has no
        // version field to tell).
        let (enrolee, parent_rec) = self.identify_with_kre(req.tls, t)?;
        log.peer = enrolee.name.clone();
        // Before anything is spent or recorded: Ke from a session without
        // forward secrecy is recoverable from the PSK alone.
        self.check_forward_secrecy(req.tls, Some(enrolee))?;
        let bad = |e: enrolkit_exchange::ExchangeError| {
            refuse(
                400,
                format!(
                    "{e} (Enrolee {} speaks the {} profile)",
                    enrolee.name,
                    enrolee.wire_profile.name()
                ),
            )
        };
        let (request, remote_management) = match enrolee.wire_profile {
            WireProfile::ChangeRequest => (
                enrolkit_exchange::decode::<EnrolmentRequest>(req.body, format).map_err(bad)?,
                false,
            ),
            WireProfile::V318 => {
                let r: ExchangeRequest = enrolkit_exchange::decode(req.body, format).map_err(bad)?;
                let as_cr = EnrolmentRequest {
                    supports_certificate_enrolment: r.certificate_enrolment,
                    supports_maf_procedures: r.maf_enrolment,
                    enrolment_token: None,
                };
                (as_cr, r.remote_management)
            }
        };
        // Re-enrolment on a live Kre (clause 8.3.1.2: Kre authenticates the
        // Enrolee "when re-enrolling to obtain fresh credentials") needs no
        // new token: the enrolment Kre came from already spent one.
        let by_kre = parent_rec.is_some();
        let token_hash = match (&request.enrolment_token, enrolee.bootstrap.token_required) {
            (Some(tok), _) => Some(self.token_hash(tok)),
            (None, true) if !by_kre => return Err(refuse(403, "an Enrolment-Token is required for this Enrolee")),
            (None, _) => None,
        };
        let exported = req
            .tls
            .exported
            .as_ref()
            .filter(|e| e.expose().len() == EXPORT_LEN)
            .ok_or_else(|| internal("the listener exports no Enrolment Key material"))?;
        let keys = EnrolmentKeys::from_export(exported.expose()).map_err(internal)?;
        let ke_id = keys.ke_id(self.fqdn()?).to_string();
        log.ke_id = ke_id.clone();
        let mut expires = t.saturating_add(i64::try_from(enrolee.bootstrap.enrolment_expiry).unwrap_or(i64::MAX));
        // Re-enrolment with Kre never outlives the enrolment that Kre came
        // from, and is withdrawn with it (the link is kept).
        let mut parent = String::new();
        if let Some(p) = parent_rec {
            expires = expires.min(p.rec.expires);
            parent = p.rec.relative_ke_id;
        }
        let (instructions, grants) = self.instructions(enrolee, &request, ke_id, (t, expires));
        let mut rec = KeRecord {
            relative_ke_id: keys.relative_ke_id.to_string(),
            relative_kre_id: keys.relative_kre_id.to_string(),
            enrolee: enrolee.name.clone(),
            enrolee_id: enrolee.bootstrap.enrolee_id.clone(),
            created: t,
            expires,
            sealed: Vec::new(),
            completions: String::new(),
            parent: Some(parent),
        };
        rec.sealed = self.seal(&rec, &keys, &grants)?;
        let recorded = self.storage.record_enrolment(&rec, token_hash.as_deref(), t);
        if recorded.is_ok() {
            // Its Kre opens handshakes at once, without a database lookup.
            if let Ok(mut live) = self.live.write() {
                live.kre.insert(
                    rec.relative_kre_id.clone(),
                    LiveKre {
                        relative_ke_id: rec.relative_ke_id.clone(),
                        expires: rec.expires,
                        sealed: rec.sealed.clone(),
                        kre: keys.kre.clone(),
                        written: Some(std::time::Instant::now()),
                    },
                );
            }
        }
        match recorded {
            Ok(()) if token_hash.is_some() => self.metrics.enrolment_token_consumed(),
            Ok(()) => {}
            Err(StorageError::NotFound(m)) => return Err(refuse(403, m)),
            Err(StorageError::Conflict(m)) => return Err(refuse(409, m)),
            Err(e) => return Err(internal(e)),
        }
        log.outcome = format!("200 {}", describe(&instructions));
        match enrolee.wire_profile {
            WireProfile::ChangeRequest => Ok(message(200, &instructions, format)),
            WireProfile::V318 => {
                let responses = v318_responses(enrolee, &instructions, remote_management);
                Ok(message(200, &responses, format))
            }
        }
    }

    fn instructions(
        &self,
        e: &Enrolee,
        req: &EnrolmentRequest,
        ke_id: String,
        (now, expires): (i64, i64),
    ) -> (EnrolmentInstructions, Grants) {
        let g = &e.grant;
        let mut grants = Grants::default();
        let certificate_enrolment = match (&g.certificate, req.supports_certificate_enrolment) {
            (Some(c), true) => {
                grants.certificate_ekus = Some(c.ekus.clone());
                Some(CertificateEnrolment {
                    security_type: c.security_types.clone(),
                    eku: c.ekus.clone(),
                    est_uri: c.est_uri.clone(),
                })
            }
            _ => None,
        };
        let maf_enrolment = match (&g.maf, req.supports_maf_procedures) {
            // Authenticating to the MAF by certificate needs the certificate.
            (Some(m), true) if m.credential == MafCredentialType::SymmetricKey || certificate_enrolment.is_some() => {
                grants.maf = Some((m.fqdn.clone(), m.credential));
                Some(MafEnrolment {
                    credential_type: m.credential,
                    maf_fqdn: m.fqdn.clone(),
                    maf_uri: m.uri.clone(),
                    security_type: m.security_types.clone(),
                })
            }
            _ => None,
        };
        let direct_key: Vec<DirectKey> = g
            .direct_keys
            .iter()
            .map(|d| DirectKey {
                target_id: d.target.clone(),
                security_type: d.security_type,
            })
            .collect();
        grants.keys = direct_key
            .iter()
            .map(|d| (d.security_type.credential_usage().suid(), d.target_id.clone()))
            .collect();
        let instructions = EnrolmentInstructions {
            ke_id,
            enrolment_expiry: u64::try_from(expires.saturating_sub(now)).unwrap_or(0),
            enrolee_id: e.bootstrap.enrolee_id.clone(),
            certificate_enrolment,
            maf_enrolment,
            direct_key,
            registrar_cse: g.registrar_cse.clone(),
        };
        (instructions, grants)
    }

    fn completion(
        &self,
        req: &RspfRequest<'_>,
        now: SystemTime,
        log: &mut RspfOutcome,
    ) -> Result<HttpResponse, Refusal> {
        let format = request_format(req)?;
        let c: Completion = enrolkit_exchange::decode(req.body, format).map_err(|e| refuse(400, e.to_string()))?;
        let t = unix(now);
        let enrolee = self.identify(req.tls, t)?;
        log.peer = enrolee.name.clone();
        self.check_forward_secrecy(req.tls, Some(enrolee))?;
        log.ke_id = c.ke_id.clone();
        let id = KeyId::parse(&c.ke_id).map_err(|e| refuse(400, e.to_string()))?;
        let rec = self
            .storage
            .enrolment(&id.relative.to_string())
            .map_err(internal)?
            .filter(|r| r.enrolee == enrolee.name && id.fqdn.as_str() == self.mef_fqdn)
            .ok_or_else(|| refuse(404, format!("no enrolment {} of this Enrolee", c.ke_id)))?;
        if rec.expires <= t {
            return Err(refuse(410, "the Enrolment Key has expired"));
        }
        let (_, grants) = self.open(&rec)?;
        let granted = match c.procedure {
            Procedure::CertificateEnrolment => grants.certificate_ekus.is_some(),
            Procedure::MafEnrolment => grants.maf.is_some(),
        };
        if !granted {
            return Err(refuse(409, "that procedure was not part of this enrolment"));
        }
        let procedure: String = c.procedure.into();
        self.storage
            .complete_enrolment(&rec.relative_ke_id, &procedure, c.success, t)
            .map_err(internal)?;
        log.outcome = format!("204 {procedure} {}", if c.success { "ok" } else { "failed" });
        Ok(HttpResponse {
            status: 204,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
        })
    }

    fn fetch(
        &self,
        req: &RspfRequest<'_>,
        now: SystemTime,
        log: &mut RspfOutcome,
        format: Format,
    ) -> (HttpResponse, RspfOutcome) {
        let resp = match self.fetch_inner(req, now, log) {
            Ok(r) => r,
            Err(Refusal(status, reason)) => {
                tracing::warn!(
                    from = %log.peer,
                    ke_id = %log.ke_id,
                    tls = %tls_identity(req.tls),
                    reason = %reason,
                    "key retrieval refused"
                );
                log.outcome = format!("{status} {reason}");
                (status, CredentialResponse::Error { reason })
            }
        };
        let (status, body) = resp;
        if log.outcome.is_empty() {
            log.outcome = status.to_string();
        }
        (message(status, &body, format), log.clone())
    }

    fn fetch_inner(
        &self,
        req: &RspfRequest<'_>,
        now: SystemTime,
        log: &mut RspfOutcome,
    ) -> Result<(u16, CredentialResponse), Refusal> {
        if !req.method.eq_ignore_ascii_case("GET") {
            return Err(refuse(405, "fetchCredentials takes GET"));
        }
        log.peer = req.origin.or(req.from).unwrap_or("").chars().take(80).collect();
        // A B-TID as key identifier: the MEF as BSF (V3.18 8.3.2.3).
        if let Some(g) =
            GbaFetchRequest::parse(req.path, req.origin, req.from).map_err(|e| refuse(400, e.to_string()))?
        {
            return self.fetch_gba(req.tls, &g, unix(now), log);
        }
        let fr = FetchRequest::parse(req.path, req.origin, req.from).map_err(|e| refuse(400, e.to_string()))?;
        let t = unix(now);
        let fqdn = self.fqdn()?;
        log.ke_id = KeyId {
            relative: fr.relative_ke_id,
            fqdn,
        }
        .to_string();
        // V3.18's full KeID names its MEF: only ours are answered here.
        if let Some(m) = &fr.mef_fqdn {
            if !m.eq_ignore_ascii_case(&self.mef_fqdn) {
                return Err(refuse(
                    404,
                    format!("the KeID names MEF {m}, not this one ({})", self.mef_fqdn),
                ));
            }
        }
        // Who asks first: a peer that is no target learns nothing, not even
        // whether a KeId exists.
        self.check_requestor(req.tls, &fr.from, t)?;
        let rec = self
            .storage
            .enrolment(&fr.relative_ke_id.to_string())
            .map_err(internal)?
            .ok_or_else(|| refuse(404, "unknown KeId"))?;
        if rec.expires <= t {
            return Err(refuse(410, "the Enrolment Key has expired (Enrolment Expiry)"));
        }
        let (keys, grants) = self.open(&rec)?;
        let lifetime = u64::try_from(rec.expires - t).unwrap_or(0);
        let success = |credential, id: KeyId<'_>| CredentialResponse::Success {
            credential,
            credential_id: self.send_credential_id.then(|| id.to_string()),
            enrolee_id: rec.enrolee_id.clone(),
            lifetime,
        };
        // The MAF (no SUID, or none needed): Kc and KcId.
        if grants
            .maf
            .as_ref()
            .is_some_and(|(m, how)| *m == fr.from && *how == MafCredentialType::SymmetricKey)
            && fr.suid.is_none()
        {
            let maf = Fqdn::new("MAF", &fr.from).map_err(internal)?;
            let (kc, kc_id) = keys.master_credential(maf).map_err(internal)?;
            log.outcome = "200 master credential".into();
            return Ok((200, success(kc, kc_id)));
        }
        let mine: Vec<Suid> = grants
            .keys
            .iter()
            .filter(|(suid, target)| match suid.source {
                // The change-request profile matched the identifier as given.
                KeySource::PreProvisioned => *target == fr.from,
                _ => same_target(target, &fr.from),
            })
            .map(|(suid, _)| *suid)
            .collect();
        let suid = match (fr.suid, mine.as_slice()) {
            (_, []) => return Err(refuse(403, format!("{} is not authorised for this KeId", fr.from))),
            (Some(u), m) if m.contains(&u) => u,
            (Some(u), _) => {
                return Err(refuse(
                    403,
                    format!("{} is not authorised for SUID {u} keys of this KeId", fr.from),
                ))
            }
            (None, [one]) => *one,
            (None, _) => {
                return Err(refuse(
                    400,
                    "several SUIDs are authorised for this target: name one with /<SUID>",
                ))
            }
        };
        let (key, key_id) = match CredentialUsage::from_change_request_suid(suid.value()) {
            Some(usage) if suid.source == KeySource::PreProvisioned => {
                let target = TargetId::new(&fr.from).map_err(|e| refuse(400, e.to_string()))?;
                keys.target_key_change_request(usage, target, fqdn).map_err(internal)?
            }
            _ => {
                let target = TargetFqdn::from_id(&fr.from).map_err(|e| refuse(400, e.to_string()))?;
                keys.target_key(suid, &target, fqdn).map_err(internal)?
            }
        };
        log.outcome = format!("200 SUID {suid} key");
        Ok((200, success(key, key_id)))
    }

    /// TS-0003 V3.18.0 8.3.2.3 with the MEF as the BSF: the Enrolment
    /// Target is the NAF and gets Ks_NAF for NAF_Id = its FQDN form and the
    /// Ua protocol identifier it names ([`GbaFetchRequest`], our stand-in
    /// for Zn). Only for an Enrolee configured with `gba-arrangement =
    /// "mef-as-bsf"`, and only for a NAF its grant names (a direct-key
    /// target or its MAF).
    fn fetch_gba(
        &self,
        tls: &TlsInfo,
        g: &GbaFetchRequest,
        t: i64,
        log: &mut RspfOutcome,
    ) -> Result<(u16, CredentialResponse), Refusal> {
        log.ke_id = g.btid.clone();
        self.check_requestor(tls, &g.from, t)?;
        let b = self
            .storage
            .gba_bootstrap(&g.btid)
            .map_err(internal)?
            .ok_or_else(|| refuse(404, "unknown B-TID"))?;
        if b.expires <= t {
            return Err(refuse(410, "the GBA bootstrap (B-TID) has expired"));
        }
        let e = self
            .enrolees
            .iter()
            .find(|e| e.bootstrap.framework == Framework::GbaBased && e.bootstrap.impi.as_deref() == Some(&b.impi))
            .ok_or_else(|| refuse(404, "no configured Enrolee has this B-TID's IMPI"))?;
        if e.gba_arrangement != GbaArrangement::MefAsBsf {
            return Err(refuse(
                403,
                format!(
                    "Enrolee {} has the MEF as NAF (the seed's arrangement): its targets fetch by KeId after the Enrolment Exchange",
                    e.name
                ),
            ));
        }
        let named = e.grant.maf.as_ref().is_some_and(|m| same_target(&m.fqdn, &g.from))
            || e.grant.direct_keys.iter().any(|d| same_target(&d.target, &g.from));
        if !named {
            return Err(refuse(
                403,
                format!("{} is not a NAF Enrolee {}'s grant names", g.from, e.name),
            ));
        }
        let target = TargetFqdn::from_id(&g.from).map_err(|x| refuse(400, x.to_string()))?;
        let naf_fqdn = Fqdn::new("NAF", target.as_str()).map_err(|x| refuse(400, format!("NAF_Id: {x}")))?;
        let (rand, _) = parse_btid(&g.btid).map_err(|x| refuse(400, x.to_string()))?;
        let ks = self.sealer.open(&ks_aad(&b), &b.sealed_ks).map_err(internal)?;
        let ks = Key256::from_slice(&ks).ok_or_else(|| internal("Ks is not 32 octets"))?;
        let naf = NafId {
            fqdn: naf_fqdn,
            protocol: UaProtocolId(g.ua),
        };
        let key = naf_key(NafKey::KsNaf, &ks, &rand, &b.impi, &naf).map_err(internal)?;
        log.outcome = "200 Ks_NAF (MEF as BSF)".into();
        Ok((
            200,
            CredentialResponse::Success {
                credential: key,
                credential_id: None,
                enrolee_id: e.bootstrap.enrolee_id.clone(),
                lifetime: u64::try_from(b.expires - t).unwrap_or(0),
            },
        ))
    }

    /// TS-0003 8.3.3.6 step 3.b.i: the `From` value must be the identity the
    /// TLS session authenticated: the Enrolee-ID of the enrolment whose Kre
    /// keyed the session, or a certificate configured for that target
    /// ([`TargetAuth`]: its pinned key, or a chain to its own anchors that
    /// names it). Any other certificate, even one from our CA, proves nothing
    /// about who the target is. Identities are compared as Enrolment Targets
    /// ([`same_target`]).
    fn check_requestor(&self, tls: &TlsInfo, from: &str, now: i64) -> Result<(), Refusal> {
        if let Some(id) = &tls.psk_identity {
            let Some(k) = self.kre_record(id, now)? else {
                return Err(refuse(
                    403,
                    "key retrieval needs a target certificate or a KreId as TLS identity",
                ));
            };
            // Keyed by Kre: the policy of the Enrolee whose Kre it is.
            let owner = self.enrolees.iter().find(|e| e.name == k.rec.enrolee);
            self.check_forward_secrecy(tls, owner)?;
            if k.rec.enrolee_id.as_deref().is_some_and(|e| same_target(e, from)) {
                return Ok(());
            }
            return Err(refuse(403, "the TLS identity (KreId) does not belong to the requestor"));
        }
        let leaf = tls
            .peer_chain
            .first()
            .ok_or_else(|| refuse(403, "key retrieval needs mutual authentication (no client certificate)"))?;
        self.check_forward_secrecy(tls, None)?;
        self.check_standing(leaf, now)?;
        let target = self.targets.iter().find(|t| same_target(&t.id, from)).ok_or_else(|| {
            refuse(
                403,
                format!("no certificate credential is configured for target {from}"),
            )
        })?;
        if let Some(pin) = &target.spki_sha256 {
            if !key_matches(leaf, pin) {
                return Err(refuse(
                    403,
                    "the TLS client certificate's key is not the one pinned for the requestor",
                ));
            }
        }
        if !target.trust_anchors.is_empty() {
            chains_to(&tls.peer_chain, &target.trust_anchors, now).map_err(|e| {
                refuse(
                    403,
                    format!("the TLS client certificate does not chain to the requestor's trust anchor: {e}"),
                )
            })?;
            if !certificate_names(leaf).iter().any(|n| same_target(n, from)) {
                return Err(refuse(403, "the TLS client certificate does not name the requestor"));
            }
        }
        Ok(())
    }

    /// Whether `tls` is an RSPF session: an Enrolee's credentials, or a PSK
    /// identity only RSPF hands out (a KreId, a B-TID). Such a session may
    /// enrol a certificate only under a live grant, and only in its own name.
    pub fn certificate_grant(&self, tls: &TlsInfo, now: SystemTime) -> GrantCheck {
        let t = unix(now);
        let rspf_identity = tls
            .psk_identity
            .as_deref()
            .is_some_and(|id| btid_of_identity(id).is_some() || KeyId::parse(id).is_ok());
        let enrolee = match self.identify(tls, t) {
            Ok(e) => e,
            Err(Refusal(_, why)) if rspf_identity => return GrantCheck::Refused(why),
            Err(_) => return GrantCheck::NotAnEnrolee,
        };
        if let Err(Refusal(_, why)) = self.check_forward_secrecy(tls, Some(enrolee)) {
            return GrantCheck::Refused(why);
        }
        let refused = |why: &str| GrantCheck::Refused(format!("Enrolee {}: {why}", enrolee.name));
        let rec = match self.storage.latest_enrolment(&enrolee.name, t) {
            Ok(Some(r)) => r,
            Ok(None) => return refused("no live enrolment: run the Enrolment Exchange first"),
            Err(e) => {
                tracing::error!(error = %e, "enrolment lookup failed");
                return refused("enrolment lookup failed");
            }
        };
        let Ok((_, grants)) = self.open(&rec) else {
            return refused("its enrolment record does not open");
        };
        let Some(ekus) = grants.certificate_ekus else {
            return refused("certificate enrolment was not granted");
        };
        let Some(name) = enrolee.bootstrap.enrolee_id.clone() else {
            return refused("no enrolee-id to name the certificate with");
        };
        GrantCheck::Granted {
            enrolee: enrolee.name.clone(),
            ekus: ekus.iter().filter_map(|o| ObjectIdentifier::new(o).ok()).collect(),
            names: vec![name],
        }
    }

    /// Issue an Enrolment Token for `enrolee`: returns it (shown once; only its keyed hash is kept).
    pub fn add_token(&self, enrolee: &str, now: i64, expires: Option<i64>) -> Result<(i64, Zeroizing<String>), String> {
        if !self.enrolees.iter().any(|e| e.name == enrolee) {
            return Err(format!("no enrolee named {enrolee:?} in the configuration"));
        }
        let mut b = [0u8; 18];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        // Hex, like challenge passwords: a token must never begin with '-'
        // (a command line would read it as an option; base64url did 1 in 64).
        let token = Zeroizing::new(hex::encode(b));
        zeroize::Zeroize::zeroize(&mut b);
        let id = self
            .storage
            .add_rspf_token(&self.token_hash(&token), enrolee, now, expires)
            .map_err(|e| e.to_string())?;
        Ok((id, token))
    }

    /// GBA BSF stub (test double): a new bootstrap for `impi` under the BSF
    /// domain `bsf`: fresh Ks and RAND; returns the B-TID and Ks for the
    /// UE side (which a real UE derives from its AKA run).
    pub fn gba_stub_bootstrap(&self, impi: &str, bsf: &str, expires: i64) -> Result<(String, Key256), String> {
        enrolkit_rspf::gba::check_impi(impi).map_err(|e| e.to_string())?;
        let bsf = Fqdn::new("BSF", bsf).map_err(|e| e.to_string())?;
        let mut rand = [0u8; RAND_LEN];
        let mut ks = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut rand);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut ks);
        let ks = Key256::from_bytes(ks);
        let mut buf = [0u8; 300];
        let btid = enrolkit_rspf::gba::write_btid(&rand, &bsf, &mut buf)
            .map_err(|e| e.to_string())?
            .to_owned();
        let mut b = GbaBootstrap {
            btid: btid.clone(),
            impi: impi.to_owned(),
            expires,
            sealed_ks: Vec::new(),
        };
        b.sealed_ks = self.sealer.seal(&ks_aad(&b), ks.expose()).map_err(|e| e.to_string())?;
        self.storage.add_gba_bootstrap(&b).map_err(|e| e.to_string())?;
        if let Ok(mut live) = self.live.write() {
            live.gba.insert(b.btid.clone(), b);
        }
        Ok((btid, ks))
    }

    /// Ks_NAF for a B-TID, as the BSF would hand it to this NAF over Zn.
    fn gba_psk(&self, identity: &str, ctx: &PskContext, now: i64) -> Option<Zeroizing<Vec<u8>>> {
        let btid = btid_of_identity(identity)?;
        let (rand, _) = parse_btid(btid).ok()?;
        let b = self.live.read().ok()?.gba.get(btid)?.clone();
        if b.expires <= now {
            tracing::info!(btid, "GBA bootstrap expired");
            return None;
        }
        // With the MEF as the BSF it is no NAF: no session is keyed by Ks_NAF for it.
        if self.enrolees.iter().any(|e| {
            e.bootstrap.impi.as_deref() == Some(b.impi.as_str()) && e.gba_arrangement == GbaArrangement::MefAsBsf
        }) {
            tracing::info!(
                btid,
                "GBA bootstrap of an Enrolee with the MEF as BSF: no TLS session with the MEF"
            );
            return None;
        }
        let ks = self.sealer.open(&ks_aad(&b), &b.sealed_ks).ok()?;
        let ks = Key256::from_slice(&ks)?;
        let naf = NafId {
            fqdn: self.fqdn().ok()?,
            protocol: gba_protocol(ctx)?,
        };
        let k = naf_key(NafKey::KsNaf, &ks, &rand, &b.impi, &naf).ok()?;
        Some(Zeroizing::new(k.expose().to_vec()))
    }

    /// One line per recorded enrolment for the operator: KeId, enrolee,
    /// state, expiry, what it authorised, completions. Never a key.
    pub fn enrolments(&self, now: i64) -> Result<Vec<String>, String> {
        let recs = self.storage.enrolments().map_err(|e| e.to_string())?;
        Ok(recs
            .iter()
            .map(|r| {
                let state = if r.expires <= now { "expired" } else { "live" };
                let grants = match self.open(r) {
                    Ok((_, g)) => g.encode().lines().collect::<Vec<_>>().join("; "),
                    Err(_) => "RECORD DOES NOT OPEN: altered, or another storage key".into(),
                };
                let done = r.completions.lines().collect::<Vec<_>>().join("; ");
                let from = match r.parent.as_deref() {
                    Some("") => String::new(),
                    Some(p) => format!("  (re-enrolled on the Kre of {p}@{})", self.mef_fqdn),
                    None => "  (made before parents were recorded)".into(),
                };
                format!(
                    "{}@{}  {}  {state} until {}  [{grants}]  [{done}]{from}",
                    r.relative_ke_id, self.mef_fqdn, r.enrolee, r.expires
                )
            })
            .collect())
    }

    /// Withdraw an enrolment: its Ke, and every key derived from it, can no
    /// longer be fetched, nor its Kre used.
    pub fn revoke(&self, ke_id: &str) -> Result<(), String> {
        let r = self.revoke_records(ke_id);
        // Whatever was deleted, or not, the view follows the database.
        if let Err(e) = self.reload_live() {
            tracing::warn!(error = %e, "reloading the live enrolments after a withdrawal failed");
        }
        r
    }

    fn revoke_records(&self, ke_id: &str) -> Result<(), String> {
        let id = KeyId::parse(ke_id).map_err(|e| e.to_string())?;
        if id.fqdn.as_str() != self.mef_fqdn {
            return Err(format!("{ke_id} is not a KeId of this MEF ({})", self.mef_fqdn));
        }
        let relative = id.relative.to_string();
        let all = self.storage.enrolments().map_err(|e| e.to_string())?;
        if !all.iter().any(|r| r.relative_ke_id == relative) {
            return self.storage.delete_enrolment(&relative).map_err(|e| e.to_string());
        }
        // Children first: a crash part-way leaves the parent, so running the
        // command again finds the rest.
        let mut gone: Vec<String> = Vec::new();
        for r in descendants(&all, &relative).iter().rev() {
            self.storage
                .delete_enrolment(&r.relative_ke_id)
                .map_err(|e| e.to_string())?;
            gone.push(r.relative_ke_id.clone());
        }
        // A re-enrolment recorded while this ran names a parent that was
        // still there (the storage refuses one whose parent is gone): look
        // again until none is left.
        loop {
            let all = self.storage.enrolments().map_err(|e| e.to_string())?;
            let late: Vec<String> = all
                .iter()
                .filter(|r| r.parent.as_ref().is_some_and(|p| gone.contains(p)))
                .flat_map(|r| descendants(&all, &r.relative_ke_id))
                .map(|r| r.relative_ke_id.clone())
                .filter(|id| !gone.contains(id))
                .collect();
            if late.is_empty() {
                return Ok(());
            }
            for id in late.iter().rev() {
                match self.storage.delete_enrolment(id) {
                    Ok(()) | Err(StorageError::NotFound(_)) => gone.push(id.clone()),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

/// The enrolment `root` and every enrolment made from it, transitively, in
/// the order found (the root first). A re-enrolment on Kre needs no token,
/// so withdrawing an enrolment must withdraw what was made from it. Records
/// that name their parent are followed by that link; a record made before
/// the link was kept (`parent` is `None`) is taken as a child of any
/// enrolment in the set of the same Enrolee made no later that it does not
/// outlive (a Kre child never outlives its parent): the fail-safe reading,
/// which may withdraw an unrelated enrolment made in the same second.
fn descendants<'a>(all: &'a [KeRecord], root: &str) -> Vec<&'a KeRecord> {
    use std::collections::{HashMap, HashSet};
    let mut linked: HashMap<&str, Vec<&KeRecord>> = HashMap::new();
    let mut unlinked: HashMap<&str, Vec<&KeRecord>> = HashMap::new();
    for r in all {
        match r.parent.as_deref() {
            Some(p) => linked.entry(p).or_default().push(r),
            None => unlinked.entry(r.enrolee.as_str()).or_default().push(r),
        }
    }
    let mut out: Vec<&KeRecord> = all.iter().filter(|r| r.relative_ke_id == root).take(1).collect();
    let mut seen: HashSet<&str> = out.iter().map(|r| r.relative_ke_id.as_str()).collect();
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        let by_link = linked.get(p.relative_ke_id.as_str()).into_iter().flatten();
        let by_time = unlinked
            .get(p.enrolee.as_str())
            .into_iter()
            .flatten()
            .filter(|r| r.created >= p.created && r.expires <= p.expires);
        for &r in by_link.chain(by_time) {
            if seen.insert(r.relative_ke_id.as_str()) {
                out.push(r);
            }
        }
        i += 1;
    }
    out
}

struct KeyedRecord {
    rec: KeRecord,
}

/// Pre-shared keys of the OpenSSL listener: the Enrolees' KpmIds (→ Kpm,
/// provisioned by `mef psk add`) and, when `[est] psk` is on, any other
/// provisioned identity; then KreIds of live enrolments (→ Kre); then
/// B-TIDs (→ Ks_NAF from the BSF stub).
impl PskStore for RspfService {
    fn psk(&self, identity: &str, ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>> {
        let now = unix(SystemTime::now());
        let kpm_id = self
            .enrolees
            .iter()
            .any(|e| e.bootstrap.kpm_id.as_deref() == Some(identity));
        if let Some(k) = self.psks.key(identity) {
            return (kpm_id || self.operator_psks).then_some(k);
        }
        if let Some(k) = self.live_kre(identity, now) {
            return Some(k);
        }
        self.gba_psk(identity, ctx, now)
    }

    /// `3GPP-bootstrapping` (TS 24.109 5.3.3.1.2 d) when a GBA Enrolee is configured.
    fn identity_hint(&self) -> Option<String> {
        self.enrolees
            .iter()
            .any(|e| e.bootstrap.framework == Framework::GbaBased)
            .then(|| enrolkit_rspf::gba::PSK_IDENTITY_HINT.to_owned())
    }
}

/// Whether two identifiers name one Enrolment Target: equal as given, or
/// equal in FQDN form (10.3.7: the form the key is derived with, so two
/// spellings of it would get the same key anyway).
fn same_target(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (TargetFqdn::from_id(a), TargetFqdn::from_id(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Reloads the live Kre records and GBA bootstraps (the operator PSKs are
/// their own [`crate::handshake::PskView`]).
impl crate::handshake::Refresh for RspfService {
    fn refresh(&self) -> Result<(), String> {
        self.generation
            .reload_if_moved(self.storage.as_ref(), || self.reload_live())
            .map(drop)
    }
}

fn check_grant(g: &Grant) -> Result<(), String> {
    if g.certificate.is_none() && g.maf.is_none() && g.direct_keys.is_empty() {
        return Err("grant: nothing to provision (certificate, maf or direct-keys)".into());
    }
    if let Some(c) = &g.certificate {
        for o in &c.ekus {
            ObjectIdentifier::new(o).map_err(|e| format!("grant.certificate.ekus: {o:?}: {e}"))?;
        }
    }
    if let Some(m) = &g.maf {
        Fqdn::new("MAF", &m.fqdn).map_err(|e| format!("grant.maf.fqdn: {e}"))?;
    }
    for (i, d) in g.direct_keys.iter().enumerate() {
        TargetId::new(&d.target).map_err(|e| format!("grant.direct-keys.target: {e}"))?;
        let fqdn = TargetFqdn::from_id(&d.target).map_err(|e| format!("grant.direct-keys.target: {e}"))?;
        if g.direct_keys.iter().take(i).any(|x| x == d) {
            return Err(format!("grant.direct-keys: {} listed twice", d.target));
        }
        // One (SUID, Enrolment-Target-ID) is one key (10.3.7).
        let suid = d.security_type.credential_usage().suid();
        if let Some(x) = g.direct_keys.iter().take(i).find(|x| {
            x.security_type.credential_usage().suid() == suid
                && TargetFqdn::from_id(&x.target).ok().as_ref() == Some(&fqdn)
        }) {
            return Err(format!(
                "grant.direct-keys: {} {} and {} {} are one key (SUID {suid}, target {fqdn}): grant one",
                x.target,
                x.security_type.name(),
                d.target,
                d.security_type.name()
            ));
        }
    }
    if let Some(r) = &g.registrar_cse {
        TargetId::new(r).map_err(|e| format!("grant.registrar-cse: {e}"))?;
    }
    Ok(())
}

fn describe(i: &EnrolmentInstructions) -> String {
    let mut parts = Vec::new();
    if i.certificate_enrolment.is_some() {
        parts.push("certificate".to_string());
    }
    if let Some(m) = &i.maf_enrolment {
        parts.push(format!("maf {}", m.maf_fqdn));
    }
    if !i.direct_key.is_empty() {
        parts.push(format!("{} direct keys", i.direct_key.len()));
    }
    if parts.is_empty() {
        "nothing granted".into()
    } else {
        parts.join(", ")
    }
}

/// The V3.18 responses (tables 8.3.2.1-2/-3/-4, then the end of the
/// exchange) for what `i` grants `e`. The configuration was checked to
/// hold every URI a granted instruction needs ([`check_v318`]).
fn v318_responses(e: &Enrolee, i: &EnrolmentInstructions, remote_management: bool) -> ExchangeResponses {
    use base64::Engine;
    let mut response = Vec::new();
    if let Some(c) = &i.certificate_enrolment {
        response.push(ExchangeResponse {
            uri: c.est_uri.clone(),
            ..ExchangeResponse::bare(InstructionType::CertificateEnrolment)
        });
    }
    if let (Some(m), Some(g)) = (&i.maf_enrolment, &e.grant.maf) {
        response.push(ExchangeResponse {
            credential_type: Some(m.credential_type),
            maf_key_registration_uri: g.key_registration_uri.clone(),
            maf_key_retrieval_uri: g.key_retrieval_uri.clone(),
            client_registration_uri: g.client_registration_uri.clone(),
            trust_anchor: e
                .maf_trust_anchors
                .iter()
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d))
                .collect(),
            lifetime: Some(i.enrolment_expiry),
            ..ExchangeResponse::bare(InstructionType::MafEnrolment)
        });
    }
    if let (true, Some(u)) = (remote_management, &e.grant.remote_management_uri) {
        response.push(ExchangeResponse {
            uri: Some(u.clone()),
            ..ExchangeResponse::bare(InstructionType::RemoteManagement)
        });
    }
    response.push(ExchangeResponse::bare(InstructionType::EndOfExchange));
    ExchangeResponses { response }
}

/// What an Enrolee on the V3.18 profile needs configured: no token (V3.18
/// has none), an EST URI for a certificate grant (table 8.3.2.1-2's URI),
/// MAF key registration and retrieval URIs whose host is the MAF-FQDN.
fn check_v318(e: &Enrolee) -> Result<(), String> {
    use enrolkit_exchange::v318::uri_host;
    if e.wire_profile != WireProfile::V318 {
        if e.grant.remote_management_uri.is_some() {
            return Err("grant.remote-management-uri is sent only in the v3.18 wire profile".into());
        }
        return Ok(());
    }
    if e.bootstrap.token_required {
        return Err("token-required: the v3.18 wire profile has no Enrolment-Token".into());
    }
    if e.grant.certificate.as_ref().is_some_and(|c| c.est_uri.is_none()) {
        return Err("grant.certificate.est-uri is required by the v3.18 wire profile (table 8.3.2.1-2's URI)".into());
    }
    if let Some(m) = &e.grant.maf {
        let (Some(reg), Some(_)) = (&m.key_registration_uri, &m.key_retrieval_uri) else {
            return Err(
                "grant.maf.key-registration-uri and key-retrieval-uri are required by the v3.18 wire profile".into(),
            );
        };
        if uri_host(reg) != Some(m.fqdn.as_str()) {
            return Err(format!(
                "grant.maf.key-registration-uri: its host must be the MAF-FQDN {} (the Enrolee derives Km with it)",
                m.fqdn
            ));
        }
    }
    // What the responses will carry must pass the message's own checks.
    let probe = v318_responses(
        e,
        &EnrolmentInstructions {
            ke_id: "00000000000000000000000000000000@probe.invalid".into(),
            enrolment_expiry: e.bootstrap.enrolment_expiry,
            enrolee_id: None,
            certificate_enrolment: e.grant.certificate.as_ref().map(|c| CertificateEnrolment {
                security_type: Vec::new(),
                eku: Vec::new(),
                est_uri: c.est_uri.clone(),
            }),
            maf_enrolment: e.grant.maf.as_ref().map(|m| MafEnrolment {
                credential_type: m.credential,
                maf_fqdn: m.fqdn.clone(),
                maf_uri: None,
                security_type: Vec::new(),
            }),
            direct_key: Vec::new(),
            registrar_cse: None,
        },
        true,
    );
    probe.validate().map_err(|x| format!("v3.18 responses: {x}"))
}

fn tls_identity(tls: &TlsInfo) -> String {
    if let Some(id) = &tls.psk_identity {
        return format!("psk:{id}");
    }
    match tls.peer_chain.first() {
        Some(c) => format!("cert:{}", certificate_names(c).join("|")),
        None => "none".into(),
    }
}

fn request_format(req: &RspfRequest<'_>) -> Result<Format, Refusal> {
    let ct = req
        .content_type
        .ok_or_else(|| refuse(415, "Content-Type application/json or application/xml is required"))?;
    Format::from_media_type(ct).map_err(|e| refuse(415, e.to_string()))
}

/// The answer's format: the request's, else what Accept prefers, else JSON.
fn reply_format(req: &RspfRequest<'_>) -> Format {
    if let Some(f) = req.content_type.and_then(|c| Format::from_media_type(c).ok()) {
        return f;
    }
    match req.accept {
        Some(a) if a.contains("xml") && !a.contains("json") => Format::Xml,
        _ => Format::Json,
    }
}

fn message<M: Message>(status: u16, m: &M, format: Format) -> HttpResponse {
    match enrolkit_exchange::encode(m, format) {
        Ok(body) => HttpResponse {
            status,
            content_type: format.media_type(),
            body: body.to_vec(),
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the answer");
            HttpResponse {
                status: 500,
                content_type: "text/plain; charset=utf-8",
                body: b"internal error\n".to_vec(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_survive_their_encoding() {
        let g = Grants {
            maf: Some(("maf.example.net".into(), MafCredentialType::SymmetricKey)),
            keys: vec![
                (CredentialUsage::PskSaef.suid(), "cse-b.example.net".into()),
                (CredentialUsage::PskEsData.suid(), "//sp.example.net/CSE-c/Cae-1".into()),
            ],
            certificate_ekus: Some(vec!["1.3.6.1.5.5.7.3.2".into()]),
        };
        assert_eq!(
            g.encode(),
            "maf maf.example.net symmetricKey\nkey 22 cse-b.example.net\nkey 23 //sp.example.net/CSE-c/Cae-1\ncert 1.3.6.1.5.5.7.3.2\n"
        );
        assert_eq!(Grants::decode(&g.encode()).unwrap(), g);
        assert_eq!(Grants::decode("").unwrap(), Grants::default());
        // Records made before V3.18 SUIDs keep their change-request numbers.
        let old = Grants::decode("key 12 cse-b.example.net\n").unwrap();
        assert_eq!(
            old.keys,
            [(Suid::from_value(12).unwrap(), "cse-b.example.net".to_owned())]
        );
        for bad in ["key 99 x", "key 14 x", "key 31 x", "key 41 x", "key 2 x"] {
            assert!(Grants::decode(bad).is_err(), "{bad}");
        }
        assert!(Grants::decode("nonsense").is_err());
    }

    fn rec(id: &str, enrolee: &str, created: i64, expires: i64, parent: Option<&str>) -> KeRecord {
        KeRecord {
            relative_ke_id: id.into(),
            relative_kre_id: format!("R{id}"),
            enrolee: enrolee.into(),
            enrolee_id: None,
            created,
            expires,
            sealed: vec![],
            completions: String::new(),
            parent: parent.map(str::to_owned),
        }
    }

    #[test]
    fn withdrawal_follows_the_kre_lineage() {
        let all = vec![
            rec("A", "alice", 100, 1000, Some("")),
            // Made on A's Kre, and on that one's in turn.
            rec("B", "alice", 200, 1000, Some("A")),
            rec("C", "alice", 300, 900, Some("B")),
            // Made afresh in the same second as A, expiring earlier: kept
            // (the time rule alone would have taken it).
            rec("D", "alice", 100, 500, Some("")),
            // A record from before links were kept, which could be A's child.
            rec("E", "alice", 150, 800, None),
            // Could not be A's child: outlives it.
            rec("F", "alice", 150, 2000, None),
            rec("G", "bob", 200, 1000, Some("")),
            rec("H", "bob", 300, 900, None),
        ];
        let ids = |root: &str| {
            descendants(&all, root)
                .iter()
                .map(|r| r.relative_ke_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("A"), ["A", "B", "E", "C"]);
        assert_eq!(ids("B"), ["B", "C"]);
        assert_eq!(ids("D"), ["D"]);
        assert_eq!(ids("G"), ["G", "H"]);
        assert!(ids("Z").is_empty());
        // A cycle (only a tampered database could hold one) ends.
        let cycle = vec![rec("X", "x", 1, 9, Some("Y")), rec("Y", "x", 1, 9, Some("X"))];
        assert_eq!(descendants(&cycle, "X").len(), 2);
    }

    #[test]
    fn a_record_bound_to_its_parent_does_not_open_without_it() {
        let linked = rec("A", "alice", 1, 2, Some("P"));
        let legacy = rec("A", "alice", 1, 2, None);
        let fresh = rec("A", "alice", 1, 2, Some(""));
        assert_ne!(ke_aad(&linked), ke_aad(&legacy));
        assert_ne!(ke_aad(&linked), ke_aad(&fresh));
        // A bootstrap enrolment stays readable by an older mef.
        assert_eq!(ke_aad(&fresh), ke_aad(&legacy));
        // What records made before the link was kept are bound to is unchanged.
        assert_eq!(ke_aad(&legacy), b"enrolkit rspf ke v2\nA\nRA\nalice\n\n1\n2".to_vec());
    }

    #[test]
    fn gba_protocol_follows_the_negotiation() {
        let c = |version, cipher_suite| PskContext { version, cipher_suite };
        assert_eq!(
            gba_protocol(&c(Some(TlsVersion::Tls13), None)),
            Some(UaProtocolId::TLS13_SHARED_KEY)
        );
        assert_eq!(gba_protocol(&c(None, None)), Some(UaProtocolId::TLS13_SHARED_KEY));
        assert_eq!(
            gba_protocol(&c(Some(TlsVersion::Tls12), Some(0x00a8))),
            Some(UaProtocolId([1, 0, 1, 0x00, 0xa8]))
        );
        assert_eq!(
            gba_protocol(&c(Some(TlsVersion::Tls12), Some(0x00ae))),
            Some(UaProtocolId([1, 0, 1, 0x00, 0xae]))
        );
        // TLS 1.2 with no suite known: no key, rather than a guessed one.
        assert_eq!(gba_protocol(&c(Some(TlsVersion::Tls12), None)), None);
    }
}

/// Issue F: a certificate identifies an Enrolee or a target only while it
/// stands (valid, and ours unrevoked), on the exchange and Key Retrieval.
#[cfg(test)]
mod standing_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::storage::{IssuedCert, SqliteStorage, Transaction, TxState};
    use der::Encode;
    use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
    use enrolkit_pki::{Authority, Profile};
    use enrolkit_tls::{Backend, TlsVersion};
    use std::str::FromStr;
    use std::time::Duration;
    use x509_cert::name::Name;

    struct World {
        /// The body POSTed (default: a change-request enrolment request).
        body: Option<Vec<u8>>,
        svc: RspfService,
        storage: Arc<dyn Storage>,
        ca: Authority,
    }

    fn world() -> World {
        let now = SystemTime::now();
        let ca = Authority::new_root(
            Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
            Name::from_str("CN=MEF CA").unwrap(),
            now,
            Duration::from_secs(86400 * 30),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
        let anchor = ca.certificate.to_der().unwrap();
        let bootstrap: MefEnroleeConfig = serde_json::from_value(serde_json::json!({
            "framework": "certificate-based",
            "enrolment-target": "cse-m.example.net",
            "enrolee-id": "ae-77.example.net",
            "enrolment-expiry": 3600,
            "authentication": { "kind": "entity-certificate", "trust-anchor": "ca.pem" },
        }))
        .unwrap();
        let svc = RspfService::new(RspfSetup {
            mef_fqdn: "mef.example.net".into(),
            enrolees: vec![Enrolee {
                name: "ae-77".into(),
                bootstrap,
                grant: serde_json::from_value(serde_json::json!({
                    "direct-keys": [{ "target": "cse-m.example.net", "security-type": "ESPrim" }],
                }))
                .unwrap(),
                trust_anchors: vec![anchor.clone()],
                forward_secrecy_exception: false,
                wire_profile: WireProfile::ChangeRequest,
                gba_arrangement: GbaArrangement::MefAsNaf,
                maf_trust_anchors: Vec::new(),
            }],
            storage: storage.clone(),
            storage_key: Zeroizing::new([3; 32]),
            token_key: Zeroizing::new([4; 32]),
            targets: vec![TargetAuth {
                id: "cse-m.example.net".into(),
                spki_sha256: None,
                trust_anchors: vec![anchor],
            }],
            operator_psks: false,
            send_credential_id: false,
            require_forward_secrecy: true,
            ca_subject: ca.certificate.tbs_certificate.subject.clone(),
            psks: Arc::new(
                crate::handshake::PskView::load(storage.clone(), crate::handshake::PskSealer::new(&[3; 32]).unwrap())
                    .unwrap(),
            ),
        })
        .unwrap();
        World {
            svc,
            storage,
            ca,
            body: None,
        }
    }

    impl World {
        /// A certificate of the MEF's CA naming `name`, recorded as issued.
        fn issue(&self, name: &str) -> x509_cert::Certificate {
            let cert = self.sign(name);
            let issued = IssuedCert::from_certificate(&cert).unwrap();
            let tx = Transaction {
                transaction_id: format!("tx-{name}"),
                key_id: name.into(),
                subject: name.into(),
                csr: vec![],
                state: TxState::Issued(issued.serial.clone()),
                created: 0,
            };
            self.storage.record(&tx, None, Some(&issued), 0).unwrap();
            cert
        }

        /// A certificate signed with the MEF CA's key but never recorded
        /// (the key used outside mef, or a database restored from before).
        fn sign(&self, name: &str) -> x509_cert::Certificate {
            let key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
            self.ca
                .issue(
                    &enrolkit_pki::Request {
                        subject: Name::from_str(&format!("CN={name}")).unwrap(),
                        public_key: key.public_key().clone(),
                        dns_names: vec![name.into()],
                        ip_addresses: vec![],
                    },
                    &Profile::default(),
                    SystemTime::now(),
                    &mut rand_core::OsRng,
                )
                .unwrap()
        }

        fn ask(&self, cert: &x509_cert::Certificate, method: &str, path: &str, from: Option<&str>) -> HttpResponse {
            self.call(cert, method, path, (None, from), SystemTime::now())
        }

        /// One request with (`X-M2M-Origin`, `From`) at `now`.
        fn call(
            &self,
            cert: &x509_cert::Certificate,
            method: &str,
            path: &str,
            (origin, from): (Option<&str>, Option<&str>),
            now: SystemTime,
        ) -> HttpResponse {
            self.call_over(cert, method, path, (origin, from), now, (TlsVersion::Tls13, None))
        }

        /// As [`World::call`], on a session of `version` and `suite`.
        fn call_over(
            &self,
            cert: &x509_cert::Certificate,
            method: &str,
            path: &str,
            (origin, from): (Option<&str>, Option<&str>),
            now: SystemTime,
            (version, suite): (TlsVersion, Option<u16>),
        ) -> HttpResponse {
            let tls = TlsInfo {
                backend: Backend::OpenSsl,
                version,
                peer_chain: vec![cert.to_der().unwrap()],
                peer_cert_error: None,
                psk_identity: None,
                cipher_suite: suite,
                channel_binding: None,
                exported: Some(enrolkit_tls::Exported::from_secret(Zeroizing::new(vec![7; EXPORT_LEN]))),
            };
            let cr = br#"{"supportsCertificateEnrolment":false,"supportsMafProcedures":false}"#;
            let body = self.body.as_deref().unwrap_or(cr);
            self.svc
                .handle(
                    &RspfRequest {
                        method,
                        path,
                        content_type: Some("application/json"),
                        accept: Some("application/json"),
                        from,
                        origin,
                        body,
                        tls: &tls,
                    },
                    now,
                )
                .0
        }
    }

    fn text(r: &HttpResponse) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[test]
    fn a_revoked_certificate_of_ours_is_no_enrolee_and_no_target() {
        let w = world();
        let enrolee = w.issue("ae-77.example.net");
        let target = w.issue("cse-m.example.net");
        let fetch = "/fetchCredentials/00112233445566778899AABBCCDDEEFF/12";
        // Standing: the exchange goes through, the fetch fails for want of a KeId.
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 200, "{}", text(&r));
        let r = w.ask(&target, "GET", fetch, Some("cse-m.example.net"));
        assert_eq!(r.status, 404, "authenticated, then no such KeId: {}", text(&r));
        // Revoked in the MEF's storage: both refused, saying why.
        for c in [&enrolee, &target] {
            w.storage.revoke(&crate::ra::serial_hex(c), 1, 1).unwrap();
        }
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("revoked"), "{}", text(&r));
        let r = w.ask(&target, "GET", fetch, Some("cse-m.example.net"));
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("revoked"), "{}", text(&r));
    }

    #[test]
    fn a_certificate_claiming_our_ca_but_not_issued_by_us_identifies_nobody() {
        // Chains to the Enrolee's anchor (our CA) and names it, but storage
        // has no record of it, so nobody can say it is unrevoked.
        let w = world();
        let cert = w.sign("ae-77.example.net");
        let r = w.ask(&cert, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("not issued by it"), "{}", text(&r));
        let target = w.sign("cse-m.example.net");
        let fetch = "/fetchCredentials/00112233445566778899AABBCCDDEEFF/12";
        let r = w.ask(&target, "GET", fetch, Some("cse-m.example.net"));
        assert_eq!(r.status, 403, "{}", text(&r));
    }

    /// TS-0003 V3.18.0 8.3.2.1 step f and tables 8.3.2.1-5/-6, on the wire:
    /// the exact request forms and the exact answer bytes.
    #[test]
    fn key_retrieval_v3_18_and_change_request_forms() {
        use base64::Engine;
        let w = world();
        let enrolee = w.issue("ae-77.example.net");
        let target = w.issue("cse-m.example.net");
        let t0 = std::time::UNIX_EPOCH + Duration::from_secs(unix(SystemTime::now()) as u64);
        let r = w.call(&enrolee, "POST", ENROLMENT_PATH, (None, None), t0);
        assert_eq!(r.status, 200, "{}", text(&r));
        // The key both ends derive: SUID 23 (ESPrim), target in FQDN form.
        let keys = EnrolmentKeys::from_export(&[7; EXPORT_LEN]).unwrap();
        let mef = Fqdn::new("MEF", "mef.example.net").unwrap();
        let ke_id = keys.ke_id(mef).to_string();
        let (key, key_id) = keys
            .target_key(
                Suid::from_value(23).unwrap(),
                &TargetFqdn::from_id("cse-m.example.net").unwrap(),
                mef,
            )
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.expose());
        let want = format!(r#"{{"Status":true,"Credential":"{b64}","EnroleeID":"ae-77.example.net","Lifetime":3590}}"#);
        let t1 = t0 + Duration::from_secs(10);
        // V3.18: /fetchCredentials/<KeID>/<SUID>, requestor in X-M2M-Origin.
        let v3 = format!("/fetchCredentials/{ke_id}/23");
        let r = w.call(&target, "GET", &v3, (Some("cse-m.example.net"), None), t1);
        assert_eq!((r.status, text(&r)), (200, want.clone()));
        assert_eq!(r.content_type, "application/json");
        // The change request: /fetchCredentials/<RelativeKeId>, requestor in From; same key.
        let cr = format!("/fetchCredentials/{}", keys.relative_ke_id);
        let r = w.call(&target, "GET", &cr, (None, Some("cse-m.example.net")), t1);
        assert_eq!((r.status, text(&r)), (200, want));
        // Another MEF's KeID, a SUID not granted, a relative id with a SUID of the grant.
        let other = format!("/fetchCredentials/{}@mef.example.org/23", keys.relative_ke_id);
        let r = w.call(&target, "GET", &other, (Some("cse-m.example.net"), None), t1);
        assert_eq!(r.status, 404, "{}", text(&r));
        assert_eq!(
            text(&r),
            r#"{"Status":false,"ErrorString":"the KeID names MEF mef.example.org, not this one (mef.example.net)"}"#
        );
        let r = w.call(
            &target,
            "GET",
            &format!("/fetchCredentials/{ke_id}/22"),
            (Some("cse-m.example.net"), None),
            t1,
        );
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("SUID 22"), "{}", text(&r));
        // The old 11/12/13 mean pre-provisioned keys in V3.18: not what this enrolment granted.
        let r = w.call(
            &target,
            "GET",
            &format!("/fetchCredentials/{ke_id}/12"),
            (Some("cse-m.example.net"), None),
            t1,
        );
        assert_eq!(r.status, 403, "{}", text(&r));
        // Two different requestors named at once.
        let r = w.call(
            &target,
            "GET",
            &v3,
            (Some("cse-m.example.net"), Some("other.example.net")),
            t1,
        );
        assert_eq!(r.status, 400, "{}", text(&r));
        // With CredentialID configured, it comes after Credential.
        let mut svc = w;
        svc.svc.send_credential_id = true;
        let r = svc.call(&target, "GET", &v3, (Some("cse-m.example.net"), None), t1);
        assert_eq!(
            text(&r),
            format!(
                r#"{{"Status":true,"Credential":"{b64}","CredentialID":"{key_id}","EnroleeID":"ae-77.example.net","Lifetime":3590}}"#
            )
        );
    }

    /// TS-0003 V3.18.0 10.1.2: a raw public key is named by an RFC 6920
    /// `ni:` URI; both the Enrolee's public-key-id and a target's pin take it.
    #[test]
    fn raw_public_key_identifiers_in_ni_form_identify_enrolees_and_targets() {
        let mut w = world();
        let enrolee = w.issue("ae-77.example.net");
        let target = w.issue("cse-m.example.net");
        let other = w.issue("cse-x.example.net");
        let id_of = |c: &x509_cert::Certificate| {
            PublicKeyId::of_spki(&der::Encode::to_der(&c.tbs_certificate.subject_public_key_info).unwrap())
        };
        let ni = id_of(&enrolee).to_ni();
        assert!(ni.starts_with("ni:///sha-256;") && ni.len() == 14 + 43, "{ni}");
        let raw = |id: String| Some(EnroleeAuthentication::RawPublicKey { public_key_id: id });
        // Another key's identifier: no Enrolee.
        w.svc.enrolees[0].bootstrap.authentication = raw(id_of(&other).to_ni());
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 403, "{}", text(&r));
        w.svc.enrolees[0].bootstrap.authentication = raw(ni);
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 200, "{}", text(&r));
        // The target pinned by an ni URI with an authority (which names no other key).
        let keys = EnrolmentKeys::from_export(&[7; EXPORT_LEN]).unwrap();
        let mef = Fqdn::new("MEF", "mef.example.net").unwrap();
        let path = format!("/fetchCredentials/{}/23", keys.ke_id(mef));
        let pin = id_of(&target).to_ni().replace("ni:///", "ni://keys.example.net/");
        w.svc.targets[0] = TargetAuth {
            id: "cse-m.example.net".into(),
            spki_sha256: Some(pin),
            trust_anchors: vec![],
        };
        let r = w.ask(&target, "GET", &path, Some("cse-m.example.net"));
        assert_eq!(r.status, 200, "{}", text(&r));
        w.svc.targets[0].spki_sha256 = Some(id_of(&other).to_ni());
        let r = w.ask(&target, "GET", &path, Some("cse-m.example.net"));
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(text(&r).contains("not the one pinned"), "{}", text(&r));
    }

    #[test]
    fn a_pin_that_is_no_key_identifier_is_refused_at_start() {
        let w = world();
        for (pin, why) in [
            ("ni:///sha-256-128;AAAAAAAAAAAAAAAAAAAAAA", "truncated"),
            ("ni:///sha-256;AAAA", "43 base64url"),
            ("abcd", "neither"),
        ] {
            let setup = RspfSetup {
                mef_fqdn: "mef.example.net".into(),
                enrolees: vec![],
                storage: w.storage.clone(),
                storage_key: Zeroizing::new([3; 32]),
                token_key: Zeroizing::new([4; 32]),
                targets: vec![TargetAuth {
                    id: "cse-m.example.net".into(),
                    spki_sha256: Some(pin.into()),
                    trust_anchors: vec![],
                }],
                operator_psks: false,
                send_credential_id: false,
                require_forward_secrecy: true,
                ca_subject: w.ca.certificate.tbs_certificate.subject.clone(),
                psks: Arc::new(
                    crate::handshake::PskView::load(
                        w.storage.clone(),
                        crate::handshake::PskSealer::new(&[3; 32]).unwrap(),
                    )
                    .unwrap(),
                ),
            };
            let e = RspfService::new(setup).err().unwrap();
            assert!(e.contains("spki-sha256") && e.contains(why), "{pin}: {e}");
        }
    }

    /// The forward-secrecy policy: a TLS 1.2 session without (EC)DHE is
    /// refused for the exchange, the completion and Key Retrieval, naming
    /// the policy, unless the Enrolee is exempt; (EC)DHE and TLS 1.3 pass.
    #[test]
    fn sessions_without_forward_secrecy_are_refused_naming_the_policy() {
        let mut w = world();
        let enrolee = w.issue("ae-77.example.net");
        let target = w.issue("cse-m.example.net");
        let now = SystemTime::now();
        let plain = (TlsVersion::Tls12, Some(0x00AE));
        let r = w.call_over(&enrolee, "POST", ENROLMENT_PATH, (None, None), now, plain);
        assert_eq!(r.status, 403, "{}", text(&r));
        let t = text(&r);
        assert!(
            t.contains("forward-secrecy policy ([rspf] require_forward_secrecy)")
                && t.contains("0x00AE")
                && t.contains("forward-secrecy-exception = true on the [[rspf.enrolee]] named ae-77"),
            "{t}"
        );
        // An unreported TLS 1.2 suite counts as none.
        let r = w.call_over(
            &enrolee,
            "POST",
            ENROLMENT_PATH,
            (None, None),
            now,
            (TlsVersion::Tls12, None),
        );
        assert_eq!(r.status, 403, "{}", text(&r));
        // ECDHE-PSK-AES128-CBC-SHA256, TLS 1.3: admitted.
        let r = w.call_over(
            &enrolee,
            "POST",
            ENROLMENT_PATH,
            (None, None),
            now,
            (TlsVersion::Tls12, Some(0xC037)),
        );
        assert_eq!(r.status, 200, "{}", text(&r));
        // Every session here exports the same bytes, so a second admitted
        // exchange meets the first one's record (409): past the policy.
        let past_the_policy = |r: &HttpResponse| r.status == 409 && text(r).contains("already recorded");
        let r = w.call(&enrolee, "POST", ENROLMENT_PATH, (None, None), now);
        assert!(past_the_policy(&r), "{}", text(&r));
        // Key Retrieval by certificate over a plain-PSK suite: refused, with no exception to offer.
        let keys = EnrolmentKeys::from_export(&[7; EXPORT_LEN]).unwrap();
        let path = format!(
            "/fetchCredentials/{}/23",
            keys.ke_id(Fqdn::new("MEF", "mef.example.net").unwrap())
        );
        let r = w.call_over(&target, "GET", &path, (Some("cse-m.example.net"), None), now, plain);
        assert_eq!(r.status, 403, "{}", text(&r));
        assert!(
            text(&r).contains("forward-secrecy policy") && !text(&r).contains("exception"),
            "{}",
            text(&r)
        );
        // The exception admits this Enrolee's plain-PSK session; the policy off admits all.
        w.svc.enrolees[0].forward_secrecy_exception = true;
        let r = w.call_over(&enrolee, "POST", ENROLMENT_PATH, (None, None), now, plain);
        assert!(past_the_policy(&r), "{}", text(&r));
        w.svc.enrolees[0].forward_secrecy_exception = false;
        let r = w.call_over(&enrolee, "POST", ENROLMENT_PATH, (None, None), now, plain);
        assert_eq!(r.status, 403, "{}", text(&r));
        w.svc.require_forward_secrecy = false;
        let r = w.call_over(&enrolee, "POST", ENROLMENT_PATH, (None, None), now, plain);
        assert!(past_the_policy(&r), "{}", text(&r));
    }

    /// Issue 17 item 5: an Enrolee configured for the V3.18 wire profile
    /// gets table 8.3.2.1-1's request read and one response per granted
    /// instruction, then the end of the exchange, exactly; a change-request
    /// body from it is refused naming the profile; the grant still lets the
    /// target fetch its key.
    #[test]
    fn a_v3_18_enrolee_gets_one_response_per_instruction_then_the_end() {
        let mut w = world();
        let enrolee = w.issue("ae-77.example.net");
        let target = w.issue("cse-m.example.net");
        {
            let e = &mut w.svc.enrolees[0];
            e.wire_profile = WireProfile::V318;
            e.grant = serde_json::from_value(serde_json::json!({
                "direct-keys": [{ "target": "cse-m.example.net", "security-type": "ESPrim" }],
                "remote-management-uri": "coaps://dm.example.net:5684",
                "certificate": { "ekus": ["1.3.6.1.5.5.7.3.2"], "est-uri": "https://est.example.net:8443" },
                "maf": {
                    "fqdn": "maf.example.net", "credential": "symmetricKey",
                    "key-registration-uri": "https://maf.example.net/keyRegistration",
                    "key-retrieval-uri": "https://maf.example.net/keyRetrieval",
                },
            }))
            .unwrap();
            check_v318(e).unwrap();
        }
        // A change-request body from a V3.18 Enrolee.
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 400, "{}", text(&r));
        assert!(text(&r).contains("speaks the v3.18 profile"), "{}", text(&r));
        w.body = Some(br#"{"certificateEnrolment":true,"mafEnrolment":true,"remoteManagement":true}"#.to_vec());
        let r = w.ask(&enrolee, "POST", ENROLMENT_PATH, None);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(
            text(&r),
            concat!(
                r#"{"response":["#,
                r#"{"instructionType":"certificateEnrolment","uri":"https://est.example.net:8443"},"#,
                r#"{"instructionType":"mafEnrolment","credentialType":"symmetricKey","#,
                r#""mafKeyRegistrationUri":"https://maf.example.net/keyRegistration","#,
                r#""mafKeyRetrievalUri":"https://maf.example.net/keyRetrieval","lifetime":3600},"#,
                r#"{"instructionType":"remoteManagement","uri":"coaps://dm.example.net:5684"},"#,
                r#"{"instructionType":"endOfExchange"}]}"#
            )
        );
        // The target fetches the key of the granted SUID (23) by the V3.18 path.
        let keys = EnrolmentKeys::from_export(&[7; EXPORT_LEN]).unwrap();
        let path = format!(
            "/fetchCredentials/{}/23",
            keys.ke_id(Fqdn::new("MEF", "mef.example.net").unwrap())
        );
        let r = w.ask(&target, "GET", &path, Some("cse-m.example.net"));
        assert_eq!(r.status, 200, "{}", text(&r));
        // What a V3.18 Enrolee cannot be configured with.
        let e = &mut w.svc.enrolees[0];
        e.bootstrap.token_required = true;
        assert!(check_v318(e).unwrap_err().contains("no Enrolment-Token"));
        e.bootstrap.token_required = false;
        e.grant.maf.as_mut().unwrap().key_registration_uri = Some("https://other.example.net/r".into());
        assert!(check_v318(e).unwrap_err().contains("MAF-FQDN maf.example.net"));
        e.grant.maf = None;
        e.grant.certificate.as_mut().unwrap().est_uri = None;
        assert!(check_v318(e).unwrap_err().contains("est-uri"));
        e.wire_profile = WireProfile::ChangeRequest;
        assert!(check_v318(e).unwrap_err().contains("only in the v3.18"));
    }

    #[test]
    fn a_grant_of_one_key_twice_is_refused() {
        // ESPrim and ESData share SUID 23; an absolute CSE-ID and its FQDN form are one target.
        let g: Grant = serde_json::from_value(serde_json::json!({
            "direct-keys": [
                { "target": "//sp.example.net/CSE-1", "security-type": "ESPrim" },
                { "target": "CSE-1.sp.example.net", "security-type": "ESData" },
            ],
        }))
        .unwrap();
        let e = check_grant(&g).unwrap_err();
        assert!(e.contains("one key (SUID 23, target CSE-1.sp.example.net)"), "{e}");
        let g: Grant = serde_json::from_value(serde_json::json!({
            "direct-keys": [
                { "target": "//sp.example.net/CSE-1", "security-type": "SAEF" },
                { "target": "//sp.example.net/CSE-1", "security-type": "ESData" },
            ],
        }))
        .unwrap();
        assert!(check_grant(&g).is_ok());
        let g: Grant = serde_json::from_value(serde_json::json!({
            "direct-keys": [{ "target": "/CSE-1", "security-type": "SAEF" }],
        }))
        .unwrap();
        assert!(check_grant(&g).unwrap_err().contains("SP-relative"));
    }
}
