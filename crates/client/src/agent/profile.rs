//! Provisioning profiles: what one application security stack's credential
//! is, where it comes from and where it goes (seed `000` clause 8.3.6.3.2).
//!
//! A profile is a TOML file; [`Profile::from_toml`] refuses anything it does
//! not understand and names the field and the reason, so an operator finds
//! a typo at load time and not at three in the morning when renewal fails.
//! The README documents every field.

use super::machine::{Policy, RevocationMode};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest profile file read (a profile is a few hundred bytes).
pub const MAX_PROFILE: u64 = 64 * 1024;

/// A profile that failed to load: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile {file}: {field}: {reason}")]
pub struct ProfileError {
    /// The file (or `<inline>`).
    pub file: String,
    /// Dotted path of the offending field (`renewal.threshold_percent`), or `(file)`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The enrolment protocol a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SCEP (RFC 8894): the request is encrypted to the CA/RA certificate.
    Scep,
    /// EST (RFC 7030) over TLS: the TLS server must chain to the pinned anchor.
    Est,
    /// oneM2M RSPF (TS-0003 clause 8.3): an Enrolment Exchange with the MEF,
    /// then the certificate enrolment it instructs, over EST on a session
    /// authenticated by the same credentials (a pre-provisioned PSK, a GBA
    /// bootstrap, or Kre from the previous exchange).
    Rspf,
    /// CMPv2 (RFC 4210/9480, RFC 9483) over HTTP (RFC 6712): ir protected by
    /// a MAC secret or a vendor certificate's signature, renewal by kur
    /// signed with the current certificate.
    Cmp,
}

/// Key algorithm of the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ECDSA P-256.
    P256,
}

impl KeyType {
    /// As an `enrolkit-keys` generation spec.
    pub fn spec(self) -> enrolkit_keys::KeySpec {
        match self {
            KeyType::Rsa2048 => enrolkit_keys::KeySpec::Rsa2048,
            KeyType::Rsa3072 => enrolkit_keys::KeySpec::Rsa3072,
            KeyType::Rsa4096 => enrolkit_keys::KeySpec::Rsa4096,
            KeyType::P256 => enrolkit_keys::KeySpec::EcP256,
        }
    }
}

/// Encoding of written certificates and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// PEM (chains concatenated).
    #[default]
    Pem,
    /// DER (one object per file: the chain file holds only the first intermediate).
    Der,
}

/// A complete, validated provisioning profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Unique name; names the state directory and appears in notifications.
    pub name: String,
    /// Enrolment protocol.
    pub protocol: Protocol,
    /// Server URL (`http(s)://host[:port]/scep`, `https://host[:port][/label]` for EST).
    pub url: String,
    /// SHA-256 fingerprints (lowercase hex) of the trust anchors to pin (steps 1–2).
    pub anchors: Vec<String>,
    /// Subject and SAN templates.
    pub subject: SubjectTemplate,
    /// Key type.
    pub key_type: KeyType,
    /// Key store: `None` for files, or an RFC 7512 PKCS#11 URI.
    pub key_store: Option<String>,
    /// Credentials for the first enrolment.
    pub auth: Auth,
    /// Renewal policy.
    pub renewal: Renewal,
    /// Polling of PENDING (SCEP) and 202 (EST) answers.
    pub polling: Polling,
    /// Revocation checking.
    pub revocation: Revocation,
    /// Peer trust anchors to fetch and keep (steps 9–10).
    pub peers: Vec<Peer>,
    /// Where the credential goes.
    pub output: Output,
    /// Who to tell (step 13).
    pub notify: Notify,
    /// oneM2M RSPF settings (`protocol = "rspf"` only).
    pub rspf: Option<Rspf>,
    /// CMP settings (`protocol = "cmp"` only).
    pub cmp: Option<Cmp>,
}

/// How a CMP profile protects its first enrolment (renewal is a kur signed
/// with the current certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmp {
    /// The first enrolment's credential.
    pub credential: CmpCredential,
    /// Ask for implicitConfirm (no certConf when granted).
    pub implicit_confirm: bool,
}

/// The first-enrolment credential of a CMP profile.
#[derive(Clone, PartialEq, Eq)]
pub enum CmpCredential {
    /// A MAC with the secret in `secret_file`, named by `reference` (senderKID).
    Mac {
        /// senderKID (e.g. `mef challenge add --label`).
        reference: String,
        /// The secret's file (read as text, as it is).
        secret_file: PathBuf,
        /// The legacy PasswordBasedMac instead of PBMAC1.
        legacy_mac: bool,
    },
    /// A signature by a vendor certificate (3GPP TS 33.310 §9).
    Vendor {
        /// The certificate, then its chain for extraCerts (PEM).
        certificate: PathBuf,
        /// Its key: an absolute path or a `pkcs11:` URI.
        key: String,
    },
}

impl std::fmt::Debug for CmpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmpCredential::Mac {
                reference,
                secret_file,
                legacy_mac,
            } => f
                .debug_struct("Mac")
                .field("reference", reference)
                .field("secret_file", secret_file)
                .field("legacy_mac", legacy_mac)
                .finish(),
            // A URI's Display drops pin-value.
            CmpCredential::Vendor { certificate, key } => f
                .debug_struct("Vendor")
                .field("certificate", certificate)
                .field(
                    "key",
                    &match enrolkit_pkcs11::Pkcs11Uri::parse(key) {
                        Ok(u) => u.to_string(),
                        Err(_) if key.starts_with("pkcs11:") => "<pkcs11: URI>".to_owned(),
                        Err(_) => key.clone(),
                    },
                )
                .finish(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCmp {
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    certificate: Option<PathBuf>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    implicit_confirm: bool,
}

/// How an RSPF profile runs its Enrolment Exchange.
#[derive(Clone, PartialEq, Eq)]
pub struct Rspf {
    /// The MEF's FQDN: checked against the KeId it confirms; the NAF_Id of GBA.
    pub mef_fqdn: Option<String>,
    /// Enrolment-Token from the MEF's operator, inline …
    pub token: Option<String>,
    /// … or read from this file.
    pub token_file: Option<PathBuf>,
    /// GBA-based framework: the UE's bootstrap file (instead of `auth.psk_*`).
    pub gba: Option<PathBuf>,
    /// Certificate-based framework: the device's certificate chain (PEM) …
    pub certificate: Option<PathBuf>,
    /// … and its key: a file, or a `pkcs11:` URI (the token signs the handshake).
    pub key: Option<String>,
    /// Message encoding.
    pub format: enrolkit_exchange::Format,
    /// Where a copy of the enrolment state (KeId, Ke, derived keys;
    /// what `enrol rspf derive --state` reads) goes, with `output.key_mode`.
    pub state_output: Option<PathBuf>,
    /// The Enrolment Exchange's message set: the change request's (the
    /// default) or TS-0003 V3.18.0's, as the MEF is configured for this
    /// Enrolee (V3.18 cannot negotiate it).
    pub wire_profile: enrolkit_exchange::WireProfile,
    /// V3.18: the Enrolment Expiry (seconds) the Enrolee is configured
    /// with (its messages carry none unless a MAF lifetime comes back).
    pub enrolment_expiry: Option<u64>,
    /// V3.18: indicate Remote Management support in the request.
    pub remote_management: bool,
}

impl std::fmt::Debug for Rspf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rspf")
            .field("mef_fqdn", &self.mef_fqdn)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("gba", &self.gba)
            .field("certificate", &self.certificate)
            // A URI's Display drops pin-value.
            .field(
                "key",
                &self.key.as_ref().map(|k| match enrolkit_pkcs11::Pkcs11Uri::parse(k) {
                    Ok(u) => u.to_string(),
                    Err(_) if k.starts_with("pkcs11:") => "<pkcs11: URI>".to_owned(),
                    Err(_) => k.clone(),
                }),
            )
            .field("format", &self.format)
            .field("state_output", &self.state_output)
            .field("wire_profile", &self.wire_profile)
            .field("enrolment_expiry", &self.enrolment_expiry)
            .field("remote_management", &self.remote_management)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRspf {
    #[serde(default)]
    mef_fqdn: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    gba: Option<PathBuf>,
    #[serde(default)]
    certificate: Option<PathBuf>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default = "default_rspf_format")]
    format: String,
    #[serde(default)]
    state_output: Option<PathBuf>,
    #[serde(default)]
    wire_profile: Option<String>,
    #[serde(default)]
    enrolment_expiry_seconds: Option<u64>,
    #[serde(default)]
    remote_management: bool,
}

fn default_rspf_format() -> String {
    "json".into()
}

/// Subject DN and SAN templates; `{hostname}` and `{profile}` are expanded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectTemplate {
    /// commonName.
    pub cn: String,
    /// organizationName.
    #[serde(default)]
    pub o: Option<String>,
    /// organizationalUnitName.
    #[serde(default)]
    pub ou: Option<String>,
    /// countryName (two letters).
    #[serde(default)]
    pub c: Option<String>,
    /// DNS names for the subjectAltName.
    #[serde(default)]
    pub dns: Vec<String>,
}

/// First-enrolment credentials (secrets may come from files, so the profile can be world-readable).
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// SCEP challengePassword (one-time or shared), inline.
    #[serde(default)]
    pub challenge: Option<String>,
    /// ... or read from this file.
    #[serde(default)]
    pub challenge_file: Option<PathBuf>,
    /// EST HTTP Basic user name.
    #[serde(default)]
    pub username: Option<String>,
    /// EST HTTP Basic password file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// EST certificate-less TLS: PSK identity (KpmId).
    #[serde(default)]
    pub psk_identity: Option<String>,
    /// EST PSK key file (hex or raw).
    #[serde(default)]
    pub psk_file: Option<PathBuf>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("challenge", &self.challenge.as_ref().map(|_| "<redacted>"))
            .field("challenge_file", &self.challenge_file)
            .field("username", &self.username)
            .field("password_file", &self.password_file)
            .field("psk_identity", &self.psk_identity)
            .field("psk_file", &self.psk_file)
            .finish()
    }
}

/// When to renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// Renew once this share of the lifetime has elapsed (1–99).
    pub threshold_percent: u8,
    /// Spread renewals of a fleet over this further share of the lifetime (0–50).
    pub jitter_percent: u8,
    /// First retry delay after a failure.
    pub retry_min: Duration,
    /// Longest retry delay (the back-off doubles up to here).
    pub retry_max: Duration,
}

/// How long to wait for PENDING / 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// Between polls.
    pub interval: Duration,
    /// Overall.
    pub window: Duration,
}

/// Revocation checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// CRL, OCSP, both or none.
    pub mode: RevocationMode,
    /// How often to check.
    pub interval: Duration,
}

/// A peer PKI whose trust anchor (and intermediates) we keep for mutual authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Name, for logs.
    pub name: String,
    /// Protocol used to fetch its CA certificates.
    pub protocol: Protocol,
    /// Its SCEP or EST URL.
    pub url: String,
    /// Pinned SHA-256 fingerprints of its trust anchor.
    pub anchors: Vec<String>,
    /// PEM bundle written with its validated anchor and intermediates.
    pub output: PathBuf,
}

/// Where and how the credential is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Private key file (file key store only).
    pub key: Option<PathBuf>,
    /// End-entity certificate.
    pub certificate: PathBuf,
    /// Intermediates (issuing CA first).
    pub chain: Option<PathBuf>,
    /// The pinned trust anchor.
    pub trust_anchor: Option<PathBuf>,
    /// PEM or DER.
    pub format: Format,
    /// Owner (user name or numeric uid).
    pub owner: Option<String>,
    /// Group (name or numeric gid).
    pub group: Option<String>,
    /// Mode of certificate files.
    pub mode: u32,
    /// Mode of the key file (never readable by others).
    pub key_mode: u32,
}

impl Output {
    /// `owner` and `group` as numeric ids (names looked up on this
    /// machine); on failure, the field and the reason.
    pub fn ownership(&self) -> Result<super::store::Ownership, (&'static str, String)> {
        let uid = match &self.owner {
            None => None,
            Some(u) => Some(match u.parse::<u32>() {
                Ok(n) => n,
                Err(_) => nix::unistd::User::from_name(u)
                    .map_err(|e| ("output.owner", format!("{u:?}: {e}")))?
                    .ok_or_else(|| ("output.owner", format!("no user {u:?} on this machine")))?
                    .uid
                    .as_raw(),
            }),
        };
        let gid = match &self.group {
            None => None,
            Some(g) => Some(match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => nix::unistd::Group::from_name(g)
                    .map_err(|e| ("output.group", format!("{g:?}: {e}")))?
                    .ok_or_else(|| ("output.group", format!("no group {g:?} on this machine")))?
                    .gid
                    .as_raw(),
            }),
        };
        Ok(super::store::Ownership { uid, gid })
    }
}

/// Notification hook for the provisioning authority.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Command and arguments, run with `ENROL_*` variables in its environment.
    #[serde(default)]
    pub command: Vec<String>,
    /// URL that receives a JSON POST.
    #[serde(default)]
    pub url: Option<String>,
}

// ---- the file as written ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    protocol: Protocol,
    url: String,
    trust: RawTrust,
    subject: SubjectTemplate,
    #[serde(default)]
    key: RawKey,
    #[serde(default)]
    auth: Auth,
    #[serde(default)]
    renewal: RawRenewal,
    #[serde(default)]
    polling: RawPolling,
    #[serde(default)]
    revocation: RawRevocation,
    #[serde(default, rename = "peer")]
    peers: Vec<Peer>,
    output: RawOutput,
    #[serde(default)]
    notify: Notify,
    #[serde(default)]
    rspf: Option<RawRspf>,
    #[serde(default)]
    cmp: Option<RawCmp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    anchors: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    #[serde(rename = "type", default = "default_key_type")]
    key_type: KeyType,
    #[serde(default = "default_store")]
    store: String,
}

fn default_key_type() -> KeyType {
    KeyType::P256
}
fn default_store() -> String {
    "file".into()
}

impl Default for RawKey {
    fn default() -> Self {
        RawKey {
            key_type: default_key_type(),
            store: default_store(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRenewal {
    #[serde(default = "default_threshold")]
    threshold_percent: u64,
    #[serde(default = "default_jitter")]
    jitter_percent: u64,
    #[serde(default = "default_retry_min")]
    retry_min_seconds: u64,
    #[serde(default = "default_retry_max")]
    retry_max_seconds: u64,
}

fn default_threshold() -> u64 {
    66
}
fn default_jitter() -> u64 {
    5
}
fn default_retry_min() -> u64 {
    60
}
fn default_retry_max() -> u64 {
    6 * 3600
}

impl Default for RawRenewal {
    fn default() -> Self {
        RawRenewal {
            threshold_percent: default_threshold(),
            jitter_percent: default_jitter(),
            retry_min_seconds: default_retry_min(),
            retry_max_seconds: default_retry_max(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolling {
    #[serde(default = "default_poll_interval")]
    interval_seconds: u64,
    #[serde(default = "default_poll_window")]
    window_seconds: u64,
}

fn default_poll_interval() -> u64 {
    30
}
fn default_poll_window() -> u64 {
    3600
}

impl Default for RawPolling {
    fn default() -> Self {
        RawPolling {
            interval_seconds: default_poll_interval(),
            window_seconds: default_poll_window(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevocation {
    #[serde(default = "default_check")]
    check: String,
    #[serde(default = "default_revocation_interval")]
    interval_seconds: u64,
}

fn default_check() -> String {
    "both".into()
}
fn default_revocation_interval() -> u64 {
    3600
}

impl Default for RawRevocation {
    fn default() -> Self {
        RawRevocation {
            check: default_check(),
            interval_seconds: default_revocation_interval(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default)]
    key: Option<PathBuf>,
    certificate: PathBuf,
    #[serde(default)]
    chain: Option<PathBuf>,
    #[serde(default)]
    trust_anchor: Option<PathBuf>,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default = "default_key_mode")]
    key_mode: String,
}

fn default_mode() -> String {
    "0644".into()
}
fn default_key_mode() -> String {
    "0600".into()
}

// ---- loading and validation ---------------------------------------------

impl Profile {
    /// Load and validate a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let file = path.display().to_string();
        let err = |reason: String| ProfileError {
            file: file.clone(),
            field: "(file)".into(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > MAX_PROFILE {
            return Err(err(format!("larger than {MAX_PROFILE} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::from_toml(&text, &file)
    }

    /// Parse and validate profile text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Profile, ProfileError> {
        // Every refusal names a field and a reason: an empty key (`'' = …`)
        // names the file, an empty message says so.
        let fail = |field: &str, reason: String| ProfileError {
            file: file.to_owned(),
            field: if field.is_empty() {
                "(file)".to_owned()
            } else {
                field.to_owned()
            },
            reason: if reason.trim().is_empty() {
                "invalid".to_owned()
            } else {
                reason
            },
        };
        let de = toml::Deserializer::parse(text).map_err(|e| fail("(file)", one_line(&e.to_string())))?;
        let raw: RawProfile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            fail(
                if path == "." { "(file)" } else { &path },
                one_line(&e.into_inner().to_string()),
            )
        })?;
        raw.validate(&fail)
    }

    /// Every file the agent writes for this profile: outputs, peer bundles,
    /// the RSPF state copy. Two profiles of one agent must not share any.
    pub fn written_paths(&self) -> Vec<&Path> {
        let o = &self.output;
        let mut v: Vec<&Path> = vec![o.certificate.as_path()];
        v.extend(
            o.key
                .iter()
                .chain(o.chain.iter())
                .chain(o.trust_anchor.iter())
                .map(PathBuf::as_path),
        );
        v.extend(self.peers.iter().map(|p| p.output.as_path()));
        v.extend(self.rspf.iter().filter_map(|r| r.state_output.as_deref()));
        v
    }

    /// What only this machine can say: that `output.owner` and
    /// `output.group` name a user and a group here. Checked when the agent
    /// loads the profile, so a typo is refused then and not at the first
    /// install.
    pub fn check_host(&self, file: &str) -> Result<(), ProfileError> {
        self.output
            .ownership()
            .map(|_| ())
            .map_err(|(field, reason)| ProfileError {
                file: file.to_owned(),
                field: field.to_owned(),
                reason,
            })
    }

    /// The machine's policy for this profile.
    pub fn policy(&self) -> Policy {
        Policy {
            anchors: self.anchors.clone(),
            threshold_percent: self.renewal.threshold_percent,
            jitter_percent: self.renewal.jitter_percent,
            retry_min: self.renewal.retry_min,
            retry_max: self.renewal.retry_max,
            revocation: self.revocation.mode,
            revocation_interval: self.revocation.interval,
            peer_anchors: self.peers.iter().map(|p| p.anchors.clone()).collect(),
            generation: self.generation(),
        }
    }

    /// A digest of what defines the credential (server, anchors, subject,
    /// key): when it changes, the next cycle re-enrols (seed step 6).
    pub fn generation(&self) -> String {
        let text = format!(
            "{:?}|{}|{:?}|{:?}|{:?}|{:?}",
            self.protocol, self.url, self.anchors, self.subject, self.key_type, self.key_store
        );
        hex::encode(enrolkit_keys::DigestAlgorithm::Sha256.digest(text.as_bytes()))
            .chars()
            .take(16)
            .collect()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn seconds(
    field: &str,
    v: u64,
    min: u64,
    max: u64,
    fail: &dyn Fn(&str, String) -> ProfileError,
) -> Result<Duration, ProfileError> {
    if v < min || v > max {
        return Err(fail(field, format!("{v} is outside {min}..={max}")));
    }
    Ok(Duration::from_secs(v))
}

fn mode(field: &str, s: &str, fail: &dyn Fn(&str, String) -> ProfileError) -> Result<u32, ProfileError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let m =
        u32::from_str_radix(digits, 8).map_err(|_| fail(field, format!("{s:?} is not an octal mode like \"0640\"")))?;
    if m > 0o777 {
        return Err(fail(field, format!("{s:?} has bits beyond 0777")));
    }
    Ok(m)
}

fn fingerprints(
    field: &str,
    list: &[String],
    fail: &dyn Fn(&str, String) -> ProfileError,
) -> Result<Vec<String>, ProfileError> {
    if list.is_empty() {
        return Err(fail(
            field,
            "at least one SHA-256 fingerprint is required: the agent never trusts on first use".into(),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            let n = enrolkit_pkix::fingerprint::normalise(f);
            if n.len() != 64 || f.chars().any(|c| !(c.is_ascii_hexdigit() || c == ':' || c == ' ')) {
                Err(fail(
                    &format!("{field}[{i}]"),
                    format!("{f:?} is not a SHA-256 fingerprint (64 hex digits)"),
                ))
            } else {
                Ok(n)
            }
        })
        .collect()
}

fn url(
    field: &str,
    protocol: Protocol,
    u: &str,
    fail: &dyn Fn(&str, String) -> ProfileError,
) -> Result<(), ProfileError> {
    let authority = u
        .split_once("://")
        .map(|(_, r)| r.split('/').next().unwrap_or(""))
        .unwrap_or("");
    if authority.contains('@') {
        return Err(fail(
            field,
            "credentials in the URL would end up in logs; use [auth]".into(),
        ));
    }
    match protocol {
        Protocol::Scep | Protocol::Cmp if u.starts_with("http://") || u.starts_with("https://") => Ok(()),
        Protocol::Scep | Protocol::Cmp => Err(fail(
            field,
            format!("{u:?}: a {protocol:?} URL starts with http:// or https://"),
        )),
        Protocol::Est | Protocol::Rspf => crate::est::EstServer::parse(u)
            .map(|_| ())
            .map_err(|e| fail(field, e.to_string())),
    }
}

impl RawProfile {
    fn validate(self, fail: &dyn Fn(&str, String) -> ProfileError) -> Result<Profile, ProfileError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(fail(
                "name",
                format!(
                    "{:?}: 1–64 letters, digits, '-' or '_' (it names a directory)",
                    self.name
                ),
            ));
        }
        url("url", self.protocol, &self.url, fail)?;
        let anchors = fingerprints("trust.anchors", &self.trust.anchors, fail)?;
        if self.subject.cn.trim().is_empty() {
            return Err(fail("subject.cn", "must not be empty".into()));
        }
        if let Some(c) = &self.subject.c {
            if c.len() != 2 || !c.chars().all(|x| x.is_ascii_uppercase()) {
                return Err(fail("subject.c", format!("{c:?} is not a two-letter country code")));
            }
        }
        for (i, d) in self.subject.dns.iter().enumerate() {
            if d.is_empty() || d.len() > 253 || d.chars().any(|c| c.is_whitespace()) {
                return Err(fail(
                    &format!("subject.dns[{i}]"),
                    format!("{d:?} is not a DNS name template"),
                ));
            }
        }
        for (field, t) in
            std::iter::once(("subject.cn", &self.subject.cn)).chain(self.subject.dns.iter().map(|d| ("subject.dns", d)))
        {
            check_template(field, t, fail)?;
        }
        let key_store = match self.key.store.as_str() {
            "file" => None,
            s if s.starts_with("pkcs11:") => {
                let uri = enrolkit_pkcs11::Pkcs11Uri::parse(s).map_err(|e| fail("key.store", e.to_string()))?;
                if uri.object.is_none() {
                    return Err(fail(
                        "key.store",
                        "the URI needs object=<label>: the agent's key pairs are generated under that label".into(),
                    ));
                }
                if uri.id.is_some() {
                    return Err(fail(
                        "key.store",
                        "remove id= from the URI: each new key pair gets a fresh id, which the agent records".into(),
                    ));
                }
                if uri.module_path.is_none() && uri.module_name.is_none() {
                    return Err(fail(
                        "key.store",
                        "the URI needs ?module-path=/path/to/module.so".into(),
                    ));
                }
                if !uri.has_pin() {
                    return Err(fail(
                        "key.store",
                        "the URI needs a PIN: ?pin-source=file:/path (or pin-value=, visible in the profile)".into(),
                    ));
                }
                Some(s.to_owned())
            }
            s => {
                return Err(fail(
                    "key.store",
                    format!("{s:?}: \"file\" or a pkcs11: URI (RFC 7512)"),
                ))
            }
        };
        let a = &self.auth;
        if a.challenge.is_some() && a.challenge_file.is_some() {
            return Err(fail(
                "auth.challenge_file",
                "give challenge or challenge_file, not both".into(),
            ));
        }
        if a.username.is_some() != a.password_file.is_some() {
            return Err(fail("auth.username", "username and password_file go together".into()));
        }
        if a.psk_identity.is_some() != a.psk_file.is_some() {
            return Err(fail(
                "auth.psk_identity",
                "psk_identity and psk_file go together".into(),
            ));
        }
        match self.protocol {
            Protocol::Scep if a.username.is_some() || a.psk_identity.is_some() => {
                return Err(fail(
                    "auth",
                    "HTTP Basic and PSK are EST authentication; SCEP uses challenge".into(),
                ))
            }
            Protocol::Est if a.psk_identity.is_some() && a.username.is_some() => {
                return Err(fail("auth", "choose PSK or HTTP Basic, not both".into()))
            }
            Protocol::Rspf if a.username.is_some() || a.challenge.is_some() || a.challenge_file.is_some() => {
                return Err(fail(
                    "auth",
                    "an RSPF Enrolee authenticates with psk_identity/psk_file (KpmId/Kpm) or rspf.gba".into(),
                ))
            }
            Protocol::Cmp
                if a.username.is_some()
                    || a.psk_identity.is_some()
                    || a.challenge.is_some()
                    || a.challenge_file.is_some() =>
            {
                return Err(fail(
                    "auth",
                    "CMP authenticates with [cmp] reference/secret_file (MAC) or certificate/key (signature)".into(),
                ))
            }
            _ => {}
        }
        let rspf = rspf_settings(self.protocol, self.rspf, a, fail)?;
        let cmp = cmp_settings(self.protocol, self.cmp, fail)?;
        let r = &self.renewal;
        if !(1..=99).contains(&r.threshold_percent) {
            return Err(fail(
                "renewal.threshold_percent",
                format!("{} is outside 1..=99", r.threshold_percent),
            ));
        }
        if r.jitter_percent > 50 || r.threshold_percent + r.jitter_percent > 99 {
            return Err(fail(
                "renewal.jitter_percent",
                format!(
                    "{} must be at most 50 and leave threshold + jitter below 100",
                    r.jitter_percent
                ),
            ));
        }
        let retry_min = seconds("renewal.retry_min_seconds", r.retry_min_seconds, 1, 86400, fail)?;
        let retry_max = seconds("renewal.retry_max_seconds", r.retry_max_seconds, 1, 7 * 86400, fail)?;
        if retry_max < retry_min {
            return Err(fail(
                "renewal.retry_max_seconds",
                "smaller than retry_min_seconds".into(),
            ));
        }
        let interval = seconds(
            "polling.interval_seconds",
            self.polling.interval_seconds,
            1,
            86400,
            fail,
        )?;
        let window = seconds(
            "polling.window_seconds",
            self.polling.window_seconds,
            1,
            30 * 86400,
            fail,
        )?;
        let rmode = match self.revocation.check.as_str() {
            "crl" => RevocationMode::Crl,
            "ocsp" => RevocationMode::Ocsp,
            "both" => RevocationMode::Both,
            "none" => RevocationMode::None,
            s => return Err(fail("revocation.check", format!("{s:?}: one of crl, ocsp, both, none"))),
        };
        let rint = seconds(
            "revocation.interval_seconds",
            self.revocation.interval_seconds,
            1,
            30 * 86400,
            fail,
        )?;
        for (field, f) in [
            ("auth.challenge_file", &a.challenge_file),
            ("auth.password_file", &a.password_file),
            ("auth.psk_file", &a.psk_file),
        ] {
            if f.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(fail(field, "must be an absolute path".into()));
            }
        }
        let mut peers = Vec::new();
        for (i, p) in self.peers.into_iter().enumerate() {
            if p.protocol == Protocol::Rspf {
                return Err(fail(
                    &format!("peer[{i}].protocol"),
                    "a peer's CA certificates are fetched over scep or est".into(),
                ));
            }
            url(&format!("peer[{i}].url"), p.protocol, &p.url, fail)?;
            if !p.output.is_absolute() {
                return Err(fail(&format!("peer[{i}].output"), "must be an absolute path".into()));
            }
            let anchors = fingerprints(&format!("peer[{i}].anchors"), &p.anchors, fail)?;
            peers.push(Peer { anchors, ..p });
        }
        let o = self.output;
        let key_mode = mode("output.key_mode", &o.key_mode, fail)?;
        if key_mode & 0o007 != 0 {
            return Err(fail(
                "output.key_mode",
                format!("{:?} lets others read or write the private key", o.key_mode),
            ));
        }
        match (&key_store, &o.key) {
            (None, None) => return Err(fail("output.key", "required with the file key store".into())),
            (Some(_), Some(_)) => {
                return Err(fail(
                    "output.key",
                    "a PKCS#11 key never leaves its token: remove output.key".into(),
                ))
            }
            _ => {}
        }
        let mut paths: Vec<&PathBuf> = vec![&o.certificate];
        paths.extend(o.key.iter().chain(o.chain.iter()).chain(o.trust_anchor.iter()));
        paths.extend(rspf.iter().filter_map(|r| r.state_output.as_ref()));
        for (i, p) in paths.iter().enumerate() {
            if !p.is_absolute() {
                return Err(fail("output", format!("{} is not an absolute path", p.display())));
            }
            if paths.iter().skip(i + 1).any(|q| q == p) {
                return Err(fail("output", format!("{} is named twice", p.display())));
            }
        }
        for owner in [&o.owner, &o.group].into_iter().flatten() {
            if owner.is_empty() || owner.len() > 64 {
                return Err(fail("output.owner", format!("{owner:?} is not a user or group")));
            }
        }
        if let Some(u) = &self.notify.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(fail("notify.url", format!("{u:?} is not an http(s) URL")));
            }
        }
        let out_mode = mode("output.mode", &o.mode, fail)?;
        if out_mode & 0o022 != 0 {
            return Err(fail(
                "output.mode",
                format!("{:?} lets others replace certificates or anchors", o.mode),
            ));
        }
        Ok(Profile {
            name: self.name,
            protocol: self.protocol,
            url: self.url,
            anchors,
            subject: self.subject,
            key_type: self.key.key_type,
            key_store,
            auth: self.auth,
            renewal: Renewal {
                threshold_percent: r.threshold_percent as u8,
                jitter_percent: r.jitter_percent as u8,
                retry_min,
                retry_max,
            },
            polling: Polling { interval, window },
            revocation: Revocation {
                mode: rmode,
                interval: rint,
            },
            peers,
            output: Output {
                mode: out_mode,
                key_mode,
                key: o.key,
                certificate: o.certificate,
                chain: o.chain,
                trust_anchor: o.trust_anchor,
                format: o.format,
                owner: o.owner,
                group: o.group,
            },
            notify: self.notify,
            rspf,
            cmp,
        })
    }
}

/// The `[rspf]` section: required with `protocol = "rspf"`, refused otherwise.
fn rspf_settings(
    protocol: Protocol,
    raw: Option<RawRspf>,
    auth: &Auth,
    fail: &dyn Fn(&str, String) -> ProfileError,
) -> Result<Option<Rspf>, ProfileError> {
    let r = match (protocol, raw) {
        (Protocol::Rspf, Some(r)) => r,
        (Protocol::Rspf, None) => {
            return Err(fail(
                "rspf",
                "protocol = \"rspf\" needs an [rspf] section (at least the framework's credentials)".into(),
            ))
        }
        (_, Some(_)) => return Err(fail("rspf", "only with protocol = \"rspf\"".into())),
        (_, None) => return Ok(None),
    };
    if r.certificate.is_some() != r.key.is_some() {
        return Err(fail("rspf.certificate", "certificate and key go together".into()));
    }
    let credentials =
        usize::from(r.gba.is_some()) + usize::from(auth.psk_identity.is_some()) + usize::from(r.certificate.is_some());
    if credentials != 1 {
        return Err(fail(
            "rspf.gba",
            "give one Enrolee credential: auth.psk_identity/psk_file (pre-provisioned key), rspf.gba (GBA bootstrap) \
             or rspf.certificate/key (certificate-based)"
                .into(),
        ));
    }
    if let Some(k) = &r.key {
        if k.starts_with("pkcs11:") {
            let uri = enrolkit_pkcs11::Pkcs11Uri::parse(k).map_err(|e| fail("rspf.key", e.to_string()))?;
            if uri.object.is_none() && uri.id.is_none() {
                return Err(fail(
                    "rspf.key",
                    "the URI needs object=<label> or id= to find the key".into(),
                ));
            }
            if uri.module_path.is_none() && uri.module_name.is_none() {
                return Err(fail("rspf.key", "the URI needs ?module-path=/path/to/module.so".into()));
            }
            if !uri.has_pin() {
                return Err(fail(
                    "rspf.key",
                    "the URI needs a PIN: ?pin-source=file:/path (or pin-value=, visible in the profile)".into(),
                ));
            }
        } else if !Path::new(k).is_absolute() {
            return Err(fail("rspf.key", "an absolute path or a pkcs11: URI".into()));
        }
    }
    if let Some(m) = &r.mef_fqdn {
        enrolkit_rspf::Fqdn::new("MEF", m).map_err(|e| fail("rspf.mef_fqdn", e.to_string()))?;
    } else if r.gba.is_some() {
        return Err(fail(
            "rspf.mef_fqdn",
            "required with rspf.gba: the NAF_Id starts with it".into(),
        ));
    }
    if r.token.is_some() && r.token_file.is_some() {
        return Err(fail("rspf.token_file", "give token or token_file, not both".into()));
    }
    for (field, f) in [
        ("rspf.token_file", &r.token_file),
        ("rspf.gba", &r.gba),
        ("rspf.certificate", &r.certificate),
        ("rspf.state_output", &r.state_output),
    ] {
        if f.as_ref().is_some_and(|p| !p.is_absolute()) {
            return Err(fail(field, "must be an absolute path".into()));
        }
    }
    let format = match r.format.as_str() {
        "json" => enrolkit_exchange::Format::Json,
        "xml" => enrolkit_exchange::Format::Xml,
        s => return Err(fail("rspf.format", format!("{s:?}: json or xml"))),
    };
    use enrolkit_exchange::WireProfile;
    let wire_profile = match r.wire_profile.as_deref() {
        None => WireProfile::ChangeRequest,
        Some(w) => {
            WireProfile::parse(w).ok_or_else(|| fail("rspf.wire_profile", format!("{w:?}: change-request or v3.18")))?
        }
    };
    match wire_profile {
        WireProfile::V318 => {
            if r.token.is_some() || r.token_file.is_some() {
                return Err(fail(
                    "rspf.token",
                    "the v3.18 wire profile has no Enrolment-Token".into(),
                ));
            }
            if r.mef_fqdn.is_none() {
                return Err(fail(
                    "rspf.mef_fqdn",
                    "required with wire_profile = \"v3.18\": its messages carry no KeID to learn it from".into(),
                ));
            }
            if r.enrolment_expiry_seconds.is_none_or(|e| e == 0) {
                return Err(fail(
                    "rspf.enrolment_expiry_seconds",
                    "required with wire_profile = \"v3.18\" (the Enrolment Expiry the Enrolee is configured with, > 0)"
                        .into(),
                ));
            }
        }
        WireProfile::ChangeRequest => {
            if r.enrolment_expiry_seconds.is_some() || r.remote_management {
                return Err(fail(
                    "rspf.wire_profile",
                    "enrolment_expiry_seconds and remote_management belong to wire_profile = \"v3.18\"".into(),
                ));
            }
        }
    }
    Ok(Some(Rspf {
        mef_fqdn: r.mef_fqdn,
        token: r.token,
        token_file: r.token_file,
        gba: r.gba,
        certificate: r.certificate,
        key: r.key,
        format,
        state_output: r.state_output,
        wire_profile,
        enrolment_expiry: r.enrolment_expiry_seconds,
        remote_management: r.remote_management,
    }))
}

/// The `[cmp]` section: required with `protocol = "cmp"`, refused otherwise.
fn cmp_settings(
    protocol: Protocol,
    raw: Option<RawCmp>,
    fail: &dyn Fn(&str, String) -> ProfileError,
) -> Result<Option<Cmp>, ProfileError> {
    let r = match (protocol, raw) {
        (Protocol::Cmp, Some(r)) => r,
        (Protocol::Cmp, None) => {
            return Err(fail(
                "cmp",
                "protocol = \"cmp\" needs a [cmp] section: reference/secret_file (MAC) or certificate/key (vendor certificate)"
                    .into(),
            ))
        }
        (_, Some(_)) => return Err(fail("cmp", "only with protocol = \"cmp\"".into())),
        (_, None) => return Ok(None),
    };
    let legacy_mac = match r.mac.as_deref() {
        None | Some("pbmac1") => false,
        Some("pbm") => true,
        Some(m) => return Err(fail("cmp.mac", format!("{m:?}: pbmac1 or pbm"))),
    };
    let credential = match (r.reference, r.secret_file, r.certificate, r.key) {
        (Some(reference), Some(secret_file), None, None) => {
            if reference.is_empty() {
                return Err(fail("cmp.reference", "must not be empty".into()));
            }
            if !secret_file.is_absolute() {
                return Err(fail("cmp.secret_file", "must be an absolute path".into()));
            }
            CmpCredential::Mac {
                reference,
                secret_file,
                legacy_mac,
            }
        }
        (None, None, Some(certificate), Some(key)) => {
            if r.mac.is_some() {
                return Err(fail("cmp.mac", "only with reference/secret_file (MAC)".into()));
            }
            if !certificate.is_absolute() {
                return Err(fail("cmp.certificate", "must be an absolute path".into()));
            }
            if key.starts_with("pkcs11:") {
                let uri = enrolkit_pkcs11::Pkcs11Uri::parse(&key).map_err(|e| fail("cmp.key", e.to_string()))?;
                if uri.object.is_none() && uri.id.is_none() {
                    return Err(fail(
                        "cmp.key",
                        "the URI needs object=<label> or id= to find the key".into(),
                    ));
                }
                if uri.module_path.is_none() && uri.module_name.is_none() {
                    return Err(fail("cmp.key", "the URI needs ?module-path=/path/to/module.so".into()));
                }
            } else if !Path::new(&key).is_absolute() {
                return Err(fail("cmp.key", "an absolute path or a pkcs11: URI".into()));
            }
            CmpCredential::Vendor { certificate, key }
        }
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            return Err(fail("cmp.reference", "reference and secret_file go together".into()))
        }
        (None, None, Some(_), None) | (None, None, None, Some(_)) => {
            return Err(fail("cmp.certificate", "certificate and key go together".into()))
        }
        (None, None, None, None) => {
            return Err(fail(
                "cmp",
                "give reference/secret_file (MAC) or certificate/key (vendor certificate)".into(),
            ))
        }
        _ => {
            return Err(fail(
                "cmp",
                "give reference/secret_file (MAC) or certificate/key (vendor certificate), not both".into(),
            ))
        }
    };
    Ok(Some(Cmp {
        credential,
        implicit_confirm: r.implicit_confirm,
    }))
}

/// The placeholders a template may use.
pub const TEMPLATE_VARIABLES: [&str; 2] = ["hostname", "profile"];

fn check_template(field: &str, t: &str, fail: &dyn Fn(&str, String) -> ProfileError) -> Result<(), ProfileError> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or("");
        let close = after
            .find('}')
            .ok_or_else(|| fail(field, format!("{t:?}: unclosed '{{'")))?;
        let var = after.get(..close).unwrap_or("");
        if !TEMPLATE_VARIABLES.contains(&var) {
            return Err(fail(
                field,
                format!("{t:?}: unknown placeholder {{{var}}} (known: {{hostname}}, {{profile}})"),
            ));
        }
        rest = after.get(close + 1..).unwrap_or("");
    }
    Ok(())
}

/// Expand `{hostname}` and `{profile}` in a template already checked at load.
pub fn expand(template: &str, hostname: &str, profile: &str) -> String {
    template.replace("{hostname}", hostname).replace("{profile}", profile)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const FP: &str = "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99";

    fn minimal() -> String {
        format!(
            r#"
name = "tls"
protocol = "scep"
url = "http://127.0.0.1:8080/scep"
[trust]
anchors = ["{FP}"]
[subject]
cn = "{{hostname}}"
dns = ["{{hostname}}.example.net"]
[output]
key = "/etc/app/key.pem"
certificate = "/etc/app/cert.pem"
"#
        )
    }

    fn err(text: &str) -> ProfileError {
        Profile::from_toml(text, "p.toml").unwrap_err()
    }

    #[test]
    fn a_minimal_profile_loads_with_documented_defaults() {
        let p = Profile::from_toml(&minimal(), "p.toml").unwrap();
        assert_eq!(
            p.anchors,
            vec!["aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"]
        );
        assert_eq!(p.key_type, KeyType::P256);
        assert_eq!(p.renewal.threshold_percent, 66);
        assert_eq!(p.revocation.mode, RevocationMode::Both);
        assert_eq!(p.output.key_mode, 0o600);
        assert_eq!(p.output.mode, 0o644);
        assert_eq!(expand(&p.subject.dns[0], "dev1", "tls"), "dev1.example.net");
    }

    #[test]
    fn invalid_profiles_name_the_field_and_the_reason() {
        let cases: Vec<(String, &str, &str)> = vec![
            (
                minimal().replace("protocol = \"scep\"", "protocol = \"cmc\""),
                "protocol",
                "unknown variant",
            ),
            (minimal().replace(FP, "abc"), "trust.anchors[0]", "not a SHA-256"),
            (
                minimal().replace(&format!("[\"{FP}\"]"), "[]"),
                "trust.anchors",
                "never trusts on first use",
            ),
            (
                minimal() + "[renewal]\nthreshold_percent = 0\n",
                "renewal.threshold_percent",
                "outside 1..=99",
            ),
            (
                minimal() + "[renewal]\nthreshold_percent = 90\njitter_percent = 20\n",
                "renewal.jitter_percent",
                "below 100",
            ),
            (
                minimal() + "[revocation]\ncheck = \"sometimes\"\n",
                "revocation.check",
                "one of crl",
            ),
            (
                minimal().replace("{hostname}.example", "{host}.example"),
                "subject.dns",
                "unknown placeholder",
            ),
            (
                minimal().replace(
                    "key = \"/etc/app/key.pem\"\n",
                    "key = \"/etc/app/key.pem\"\nkey_mode = \"0644\"\n",
                ),
                "output.key_mode",
                "others",
            ),
            (minimal().replace("url = \"http", "url = \"ftp"), "url", "http://"),
            (
                minimal().replace("name = \"tls\"", "name = \"../x\""),
                "name",
                "names a directory",
            ),
            (minimal() + "[key]\nstore = \"tpm\"\n", "key.store", "pkcs11"),
            (
                minimal() + "[key]\nstore = \"pkcs11:token=t;object=k?module-path=/m.so&pin-source=file:/p\"\n",
                "output.key",
                "never leaves",
            ),
            (
                minimal() + "[key]\nstore = \"pkcs11:token=t?module-path=/m.so&pin-source=file:/p\"\n",
                "key.store",
                "object=",
            ),
            (
                minimal() + "[key]\nstore = \"pkcs11:token=t;object=k;id=%01?module-path=/m.so&pin-source=file:/p\"\n",
                "key.store",
                "remove id=",
            ),
            (
                minimal() + "[key]\nstore = \"pkcs11:token=t;object=k?pin-source=file:/p\"\n",
                "key.store",
                "module-path",
            ),
            (
                minimal() + "[key]\nstore = \"pkcs11:token=t;object=k?module-path=/m.so\"\n",
                "key.store",
                "PIN",
            ),
            (minimal() + "[key]\nstore = \"pkcs11:token=t;bogus\"\n", "key.store", ""),
            (
                minimal().replace("certificate = \"/etc/app/cert.pem\"", "certificate = \"cert.pem\""),
                "output",
                "absolute",
            ),
            (
                minimal().replace("[subject]", "[subject]\ncolour = \"red\""),
                "subject.colour",
                "unknown field",
            ),
            (
                minimal() + "[auth]\nusername = \"u\"\npassword_file = \"/p\"\n",
                "auth",
                "SCEP uses challenge",
            ),
            (
                minimal().replace("protocol = \"scep\"", "protocol = \"est\""),
                "url",
                "https://",
            ),
            (
                minimal() + "[polling]\nwindow_seconds = 0\n",
                "polling.window_seconds",
                "outside",
            ),
            ("name = ".into(), "(file)", ""),
            (
                minimal().replace("http://127", "http://user:pw@127"),
                "url",
                "credentials in the URL",
            ),
            (
                minimal() + "[auth]\nchallenge_file = \"pw.txt\"\n",
                "auth.challenge_file",
                "absolute",
            ),
            (
                minimal().replace(
                    "certificate = \"/etc/app/cert.pem\"",
                    "certificate = \"/etc/app/cert.pem\"\nmode = \"0666\"",
                ),
                "output.mode",
                "others replace",
            ),
        ];
        for (text, field, reason) in cases {
            let e = err(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(reason), "{e}");
            assert!(e.to_string().starts_with("profile p.toml: "), "{e}");
        }
    }

    #[test]
    fn the_full_example_profile_loads_every_field() {
        let text = include_str!("../../../../testvectors/agent/profile-full.toml");
        let p = Profile::from_toml(text, "profile-full.toml").unwrap();
        assert_eq!(
            (p.name.as_str(), p.protocol, p.key_type),
            ("tls-client", Protocol::Est, KeyType::Rsa3072)
        );
        assert_eq!(
            p.anchors[0],
            "03fb73af88b8f1317ddc2b8ec5b8d046ac072631f3a585d4ef5dec743e79d057"
        );
        assert_eq!(p.subject.dns.len(), 2);
        assert_eq!((p.renewal.threshold_percent, p.renewal.jitter_percent), (70, 10));
        assert_eq!(p.revocation.mode, RevocationMode::Ocsp);
        assert_eq!(p.peers[0].output, PathBuf::from("/etc/app/partner-ca.pem"));
        assert_eq!((p.output.mode, p.output.key_mode), (0o644, 0o640));
        assert_eq!(p.notify.command.len(), 2);
        assert!(p.notify.url.is_some());
    }

    #[test]
    fn the_generation_changes_with_what_defines_the_credential_only() {
        let a = Profile::from_toml(&minimal(), "p").unwrap();
        let b = Profile::from_toml(&(minimal() + "[renewal]\nthreshold_percent = 50\n"), "p").unwrap();
        let c = Profile::from_toml(&minimal().replace("{hostname}.example", "{hostname}.example2"), "p").unwrap();
        assert_eq!(a.generation(), b.generation());
        assert_ne!(a.generation(), c.generation());
    }

    fn rspf() -> String {
        minimal()
            .replace("protocol = \"scep\"", "protocol = \"rspf\"")
            .replace("http://127.0.0.1:8080/scep", "https://mef.example.net:8444")
            + "[auth]\npsk_identity = \"kpm-1\"\npsk_file = \"/etc/enrol/kpm\"\n"
            + "[rspf]\nmef_fqdn = \"mef.example.net\"\ntoken = \"t0ken\"\nstate_output = \"/etc/app/rspf.toml\"\n"
    }

    /// Found by `agent_profile` (fuzz/corpus): a key that is the empty
    /// string was refused with an empty field name.
    #[test]
    fn an_empty_key_is_refused_naming_the_file() {
        let e = Profile::from_toml("''='''='''''", "p.toml").unwrap_err();
        assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}");
        let e = Profile::from_toml(&(minimal() + "\n'' = 1\n"), "p.toml").unwrap_err();
        assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}");
    }

    #[test]
    fn an_rspf_profile_loads_and_its_mistakes_are_named() {
        let p = Profile::from_toml(&rspf(), "p.toml").unwrap();
        assert_eq!(p.protocol, Protocol::Rspf);
        let r = p.rspf.as_ref().unwrap();
        assert_eq!(r.format, enrolkit_exchange::Format::Json);
        assert_eq!(r.mef_fqdn.as_deref(), Some("mef.example.net"));
        assert!(!format!("{p:?}").contains("t0ken"), "the token is a secret");
        assert_eq!(r.wire_profile, enrolkit_exchange::WireProfile::ChangeRequest);
        let v3 = rspf().replace("token = \"t0ken\"\n", "")
            + "wire_profile = \"v3.18\"\nenrolment_expiry_seconds = 600\nremote_management = true\n";
        let v3 = Profile::from_toml(&v3, "p.toml").unwrap();
        let r3 = v3.rspf.as_ref().unwrap();
        assert_eq!(
            (r3.wire_profile, r3.enrolment_expiry, r3.remote_management),
            (enrolkit_exchange::WireProfile::V318, Some(600), true)
        );
        let cases: Vec<(String, &str, &str)> = vec![
            (rspf().replace("[rspf]\n", "[notrspf]\n"), "notrspf", "unknown field"),
            (
                rspf().split("[rspf]").next().unwrap().to_owned(),
                "rspf",
                "needs an [rspf] section",
            ),
            (minimal() + "[rspf]\n", "rspf", "only with protocol"),
            (
                rspf().replace("psk_identity = \"kpm-1\"\npsk_file = \"/etc/enrol/kpm\"\n", ""),
                "rspf.gba",
                "one Enrolee credential",
            ),
            (
                rspf() + "gba = \"/var/lib/ue/gba.toml\"\n",
                "rspf.gba",
                "one Enrolee credential",
            ),
            (
                rspf()
                    .replace("psk_identity = \"kpm-1\"\npsk_file = \"/etc/enrol/kpm\"\n", "")
                    .replace("mef_fqdn = \"mef.example.net\"\n", "gba = \"/var/lib/ue/gba.toml\"\n"),
                "rspf.mef_fqdn",
                "NAF_Id",
            ),
            (
                rspf().replace("mef.example.net\"\ntoken", "not a host!\"\ntoken"),
                "rspf.mef_fqdn",
                "",
            ),
            (rspf() + "token_file = \"/t\"\n", "rspf.token_file", "not both"),
            (
                rspf() + "wire_profile = \"v3.17\"\n",
                "rspf.wire_profile",
                "change-request or v3.18",
            ),
            (
                rspf() + "wire_profile = \"v3.18\"\nenrolment_expiry_seconds = 600\n",
                "rspf.token",
                "no Enrolment-Token",
            ),
            (
                rspf().replace("token = \"t0ken\"\n", "") + "wire_profile = \"v3.18\"\n",
                "rspf.enrolment_expiry_seconds",
                "required",
            ),
            (
                rspf()
                    .replace("token = \"t0ken\"\n", "")
                    .replace("mef_fqdn = \"mef.example.net\"\n", "")
                    + "wire_profile = \"v3.18\"\nenrolment_expiry_seconds = 600\n",
                "rspf.mef_fqdn",
                "no KeID",
            ),
            (
                rspf() + "remote_management = true\n",
                "rspf.wire_profile",
                "belong to wire_profile",
            ),
            (rspf() + "format = \"cbor\"\n", "rspf.format", "json or xml"),
            (
                rspf() + "certificate = \"/etc/dev.pem\"\n",
                "rspf.certificate",
                "go together",
            ),
            (
                rspf() + "certificate = \"/etc/dev.pem\"\nkey = \"/etc/dev.key\"\n",
                "rspf.gba",
                "one Enrolee credential",
            ),
            (
                rspf().replace("psk_identity = \"kpm-1\"\npsk_file = \"/etc/enrol/kpm\"\n", "")
                    + "certificate = \"/etc/dev.pem\"\nkey = \"dev.key\"\n",
                "rspf.key",
                "absolute",
            ),
            (
                rspf().replace("state_output = \"/etc/app/rspf.toml\"", "state_output = \"rspf.toml\""),
                "rspf.state_output",
                "absolute",
            ),
            (
                rspf().replace("/etc/app/rspf.toml", "/etc/app/cert.pem"),
                "output",
                "named twice",
            ),
            (
                rspf().replace(
                    "psk_identity = \"kpm-1\"",
                    "challenge = \"x\"\npsk_identity = \"kpm-1\"",
                ),
                "auth",
                "RSPF Enrolee",
            ),
            (
                rspf().replace("https://mef.example.net:8444", "http://mef.example.net:8444"),
                "url",
                "https://",
            ),
            (
                rspf()
                    + "[[peer]]\nname = \"p\"\nprotocol = \"rspf\"\nurl = \"https://x\"\nanchors = [\""
                    + FP
                    + "\"]\noutput = \"/etc/p.pem\"\n",
                "peer[0].protocol",
                "scep or est",
            ),
        ];
        for (text, field, reason) in cases {
            let e = err(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(reason), "{e}");
        }
    }

    #[test]
    fn owners_are_looked_up_on_this_machine() {
        let p = Profile::from_toml(
            &minimal().replace("[output]", "[output]\nowner = \"root\"\ngroup = \"0\""),
            "p",
        )
        .unwrap();
        p.check_host("p").unwrap();
        assert_eq!(
            p.output.ownership().unwrap(),
            super::super::store::Ownership {
                uid: Some(0),
                gid: Some(0)
            }
        );
        let p = Profile::from_toml(
            &minimal().replace("[output]", "[output]\nowner = \"no-such-user-here\""),
            "p",
        )
        .unwrap();
        let e = p.check_host("p").unwrap_err();
        assert_eq!(e.field, "output.owner");
        assert!(e.reason.contains("no user"), "{e}");
        let p = Profile::from_toml(
            &minimal().replace("[output]", "[output]\ngroup = \"no-such-group-here\""),
            "p",
        )
        .unwrap();
        assert_eq!(p.check_host("p").unwrap_err().field, "output.group");
    }

    #[test]
    fn secrets_are_not_shown_in_debug() {
        let p = Profile::from_toml(&(minimal() + "[auth]\nchallenge = \"s3cret-pw\"\n"), "p").unwrap();
        assert!(!format!("{p:?}").contains("s3cret-pw"));
    }

    fn cmp() -> String {
        minimal().replace("protocol = \"scep\"", "protocol = \"cmp\"").replace(
            "url = \"http://127.0.0.1:8080/scep\"",
            "url = \"http://127.0.0.1:8080/.well-known/cmp\"",
        ) + "[cmp]\ncertificate = \"/etc/enrol/vendor.pem\"\nkey = \"/etc/enrol/vendor.key\"\n"
    }

    #[test]
    fn a_cmp_profile_loads_and_its_mistakes_are_named() {
        let p = Profile::from_toml(&cmp(), "p.toml").unwrap();
        assert_eq!(p.protocol, Protocol::Cmp);
        let c = p.cmp.as_ref().unwrap();
        assert!(matches!(&c.credential, CmpCredential::Vendor { key, .. } if key == "/etc/enrol/vendor.key"));
        assert!(!c.implicit_confirm);
        let mac = cmp().replace(
            "certificate = \"/etc/enrol/vendor.pem\"\nkey = \"/etc/enrol/vendor.key\"\n",
            "reference = \"bts-7\"\nsecret_file = \"/etc/enrol/secret\"\nmac = \"pbm\"\nimplicit_confirm = true\n",
        );
        let p = Profile::from_toml(&mac, "p.toml").unwrap();
        let c = p.cmp.as_ref().unwrap();
        assert!(
            matches!(&c.credential, CmpCredential::Mac { legacy_mac: true, reference, .. } if reference == "bts-7")
        );
        assert!(c.implicit_confirm);
        for (text, field, reason) in [
            (
                cmp().split("[cmp]").next().unwrap().to_owned(),
                "cmp",
                "needs a [cmp] section",
            ),
            (minimal() + "[cmp]\nreference = \"x\"\n", "cmp", "only with protocol"),
            (
                cmp().replace("key = \"/etc/enrol/vendor.key\"\n", ""),
                "cmp.certificate",
                "go together",
            ),
            (cmp() + "reference = \"x\"\nsecret_file = \"/s\"\n", "cmp", "not both"),
            (
                cmp().replace("\"/etc/enrol/vendor.key\"", "\"vendor.key\""),
                "cmp.key",
                "absolute path",
            ),
            (mac.replace("\"pbm\"", "\"md5\""), "cmp.mac", "pbmac1 or pbm"),
            (
                mac.replace("\"/etc/enrol/secret\"", "\"secret\""),
                "cmp.secret_file",
                "absolute",
            ),
            (cmp() + "bogus = 1\n", "cmp", "unknown field"),
            (
                cmp().replace("[cmp]", "[auth]\nchallenge = \"x\"\n[cmp]"),
                "auth",
                "CMP authenticates",
            ),
            (cmp().replace("http://127.0.0.1:8080", "ftp://h"), "url", "http://"),
        ] {
            let e = err(&text);
            assert!(
                e.to_string().contains(field) && e.to_string().contains(reason),
                "{field}/{reason}: {e}"
            );
        }
    }
}
