//! `[scep]` and `[profile]`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[scep]`: the SCEP responder, and the authorisation settings EST shares.
#[derive(Serialize, Deserialize)]
pub struct ScepConfig {
    /// Accept one-time challenges (`mef challenge add`).
    pub one_time_challenges: bool,
    /// A shared static challenge (weaker than one-time ones).
    #[serde(default)]
    pub static_challenge: Option<String>,
    /// Subject CNs authorised without a challenge.
    #[serde(default)]
    pub preauthorized_cns: Vec<String>,
    /// A renewal by a certificate of ours is accepted this many days before it expires.
    pub renewal_window_days: u64,
    /// Hold every authorised request for an operator.
    pub manual_approval: bool,
    /// nextUpdate − thisUpdate of CRLs.
    pub crl_validity_hours: u64,
    /// nextUpdate − thisUpdate of OCSP answers (`/ocsp`): how long a client may
    /// rely on one. Answers are signed per request, so this bounds only how
    /// long a revocation can stay unseen by a client that caches them.
    #[serde(default = "default_ocsp_validity")]
    pub ocsp_validity_minutes: u64,
    /// Fresh OCSP signatures per second at most (nonce echoes, statuses not
    /// yet kept); repeated questions are answered from kept responses.
    #[serde(default = "default_ocsp_signatures")]
    pub ocsp_fresh_signatures_per_second: u32,
    /// How often `mef serve` checks whether the CRL must be re-signed (default:
    /// a quarter of `crl_validity_hours`, between 1 minute and 1 hour).
    #[serde(default)]
    pub crl_refresh_seconds: Option<u64>,
    /// External verifier: program and arguments; gets the CSR (PEM) on stdin, exit 0 authorises.
    #[serde(default)]
    pub verifier_command: Vec<String>,
    /// The verifier is killed (and counts as "no") after this long.
    #[serde(default = "default_verifier_timeout")]
    pub verifier_timeout_seconds: u64,
    /// Put the CA chain after the issued certificate in SUCCESS CertReps
    /// (Cisco VPN clients need it; Juniper refuses it).
    #[serde(default)]
    pub certrep_chain: bool,
    /// Content encryptions accepted: "aes", "des3", "des" (single DES, only
    /// for micromdm `scepclient`, which uses nothing else).
    #[serde(default = "default_ciphers")]
    pub ciphers: Vec<String>,
}

pub(crate) fn default_ocsp_validity() -> u64 {
    60
}

pub(crate) fn default_ocsp_signatures() -> u32 {
    crate::ocsp::DEFAULT_FRESH_SIGNATURES_PER_SECOND
}

pub(crate) fn default_crl_file() -> PathBuf {
    "crl.der".into()
}

pub(crate) fn default_verifier_timeout() -> u64 {
    10
}

pub(crate) fn default_ciphers() -> Vec<String> {
    vec!["aes".into(), "des3".into()]
}

/// The `ciphers` setting, refusing unknown names.
pub fn ciphers(names: &[String]) -> Result<crate::Ciphers, String> {
    let mut c = crate::Ciphers {
        aes: false,
        des3: false,
        des: false,
    };
    for n in names {
        match n.to_ascii_lowercase().as_str() {
            "aes" => c.aes = true,
            "des3" => c.des3 = true,
            "des" => c.des = true,
            other => {
                return Err(format!(
                    "scep.ciphers: unknown cipher {other:?} (use \"aes\", \"des3\", \"des\")"
                ))
            }
        }
    }
    if !(c.aes || c.des3 || c.des) {
        return Err("scep.ciphers: at least one cipher is needed".into());
    }
    Ok(c)
}

/// `[profile]`: what issued certificates look like.
#[derive(Serialize, Deserialize)]
pub struct ProfileConfig {
    /// Lifetime of issued certificates, in days.
    pub validity_days: u64,
    /// Lifetime in seconds instead of days (short-lived certificates; overrides validity_days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_seconds: Option<u64>,
    /// How far notBefore is set back, for devices whose clocks run slightly slow (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backdate_seconds: Option<u64>,
    /// CRL distribution point written into issued certificates (`mef init`: this server's `/crl`).
    #[serde(default)]
    pub crl_url: Option<String>,
    /// OCSP responder URL written into issued certificates' AIA (`mef init`: this server's `/ocsp`).
    #[serde(default)]
    pub ocsp_url: Option<String>,
    /// DNS names a credential binding none may ask for (whole-label suffixes).
    #[serde(default)]
    pub allowed_dns_suffixes: Vec<String>,
}
