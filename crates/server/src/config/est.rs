//! `[est]`.

use super::Res;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[est]`: the EST server (RFC 7030). Authorisation by challenge, CN list and
/// verifier hook is shared with `[scep]`.
#[derive(Serialize, Deserialize)]
pub struct EstConfig {
    /// rustls listener: TLS 1.2/1.3 with certificates (no PSK; channel binding only with TLS 1.3).
    #[serde(default)]
    pub listen: Option<String>,
    /// OpenSSL listener: adds PSK (if `psk`) and `tls-unique` with TLS 1.2.
    #[serde(default)]
    pub listen_openssl: Option<String>,
    /// TLS server certificate chain (PEM) and key.
    pub tls_certificate: PathBuf,
    /// Its key (PEM).
    pub tls_key: PathBuf,
    /// Trust anchors for TLS client certificates (PEM files); nothing else is trusted.
    pub client_trust_anchors: Vec<PathBuf>,
    /// Lowest TLS version, `"1.2"` or `"1.3"`.
    #[serde(default = "default_min_tls")]
    pub min_tls: String,
    /// Highest TLS version.
    #[serde(default = "default_max_tls")]
    pub max_tls: String,
    /// Accept pre-shared keys (`mef psk add`) on the OpenSSL listener.
    #[serde(default)]
    pub psk: bool,
    /// Accept HTTP Basic with a one-time or the static challenge as password.
    #[serde(default)]
    pub basic: bool,
    /// Require the channel binding in the CSR's challengePassword (RFC 7030 §3.5).
    #[serde(default)]
    pub require_linking: bool,
    /// oneM2M profile (TS-0003 clause 8.3.3.3): Basic is refused.
    #[serde(default)]
    pub onem2m: bool,
    /// Hold enrolments for an operator (`mef scep pending approve`); clients get 202 + Retry-After.
    #[serde(default)]
    pub manual_approval: bool,
    /// Retry-After sent with 202.
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    /// EKU OIDs a CSR may request besides the profile's.
    #[serde(default)]
    pub allowed_ekus: Vec<String>,
    /// EKU OIDs `/csrattrs` asks for.
    #[serde(default)]
    pub requested_ekus: Vec<String>,
    /// RA override of the RFC 7030 §4.2.2 Subject/SAN check on `/simplereenroll`.
    #[serde(default)]
    pub reenroll_may_change_names: bool,
}

pub(crate) fn default_min_tls() -> String {
    "1.2".into()
}

pub(crate) fn default_max_tls() -> String {
    "1.3".into()
}

pub(crate) fn default_retry_after() -> u64 {
    60
}

/// A `min_tls`/`max_tls` value.
pub fn tls_version(v: &str) -> Res<enrolkit_tls::TlsVersion> {
    match v {
        "1.2" => Ok(enrolkit_tls::TlsVersion::Tls12),
        "1.3" => Ok(enrolkit_tls::TlsVersion::Tls13),
        other => Err(format!("est: TLS version {other:?} (use \"1.2\" or \"1.3\")")),
    }
}

/// OID strings of `est.<what>`.
pub fn oids(what: &str, v: &[String]) -> Res<Vec<const_oid::ObjectIdentifier>> {
    v.iter()
        .map(|o| const_oid::ObjectIdentifier::new(o).map_err(|e| format!("est.{what}: {o:?}: {e}")))
        .collect()
}
