//! `mef.toml`, the reference server's configuration: the schema, read and
//! written here so that `mef`, other front ends and tests share it. What
//! the settings build is [`crate::setup`]'s; the CA lifecycle that writes a
//! new configuration is [`crate::lifecycle`]'s.

mod authorisation;
mod est;
mod limits;
mod rspf;
mod scep;

pub use authorisation::{policy, AuthorisationConfig, RaConfig, Sources, VendorConfig};
pub(crate) use est::{default_max_tls, default_min_tls, default_retry_after};
pub use est::{oids, tls_version, EstConfig};
pub use limits::LimitsConfig;
pub use rspf::{rspf_identifiers, RspfConfig, RspfEnroleeConfig, RspfTargetConfig};
pub use scep::{ciphers, ProfileConfig, ScepConfig};
pub(crate) use scep::{default_ciphers, default_crl_file, default_ocsp_validity, default_verifier_timeout};

use enrolkit_files as files;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A step of configuration or set-up that failed: a sentence for the operator.
pub type Res<T = ()> = Result<T, String>;

/// The TOML configuration.
#[derive(Serialize, Deserialize)]
pub struct Config {
    /// Plain-HTTP listener (SCEP, `/crl`, `/ocsp`), `host:port`.
    pub listen: String,
    /// The SQLite database file; or, instead, `database_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: `postgresql://user@host:port/dbname`
    /// (or libpq's `key=value` form); see `open_storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// File holding the PostgreSQL password (first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_password_file: Option<PathBuf>,
    /// The issuing CA certificate (PEM).
    pub ca_certificate: PathBuf,
    /// Its key: a file, or a `pkcs11:` URI with `pin-source`.
    pub ca_key: PathBuf,
    /// Certificates above the CA (PEM files), served with it.
    #[serde(default)]
    pub ca_chain: Vec<PathBuf>,
    /// The SCEP RA certificate (PEM).
    pub ra_certificate: PathBuf,
    /// Its key: a file, or a `pkcs11:` URI.
    pub ra_key: PathBuf,
    /// File with the 32-byte key (hex) challenge passwords are hashed under.
    pub challenge_key: PathBuf,
    /// The next CA (`mef ca next`), offered by GetNextCACert.
    #[serde(default)]
    pub next_ca_certificate: Option<PathBuf>,
    /// Key of the next CA (`mef ca next`), used by `mef ca rollover`.
    #[serde(default)]
    pub next_ca_key: Option<PathBuf>,
    /// Where `mef serve` keeps the current CRL (DER); also served at `/crl`.
    #[serde(default = "default_crl_file")]
    pub crl_file: PathBuf,
    /// `[scep]`.
    pub scep: ScepConfig,
    /// `[profile]`: issued certificates.
    pub profile: ProfileConfig,
    /// EST server; absent: SCEP only.
    #[serde(default)]
    pub est: Option<EstConfig>,
    /// oneM2M RSPF MEF on the EST listeners; absent: off.
    #[serde(default)]
    pub rspf: Option<RspfConfig>,
    /// Relaxations of the naming rules, vendor certificates, RA-POP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation: Option<AuthorisationConfig>,
    /// `[limits]`: timeouts and connection caps on every listener.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Read `path`; the second value is its directory, which relative paths
/// in it are resolved against.
pub fn load_config(path: &Path) -> Res<(Config, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((cfg, base))
}

/// Write the configuration to `path` (atomically: temporary file, fsync, rename).
pub fn save_config(path: &Path, cfg: &Config) -> Res {
    files::write_public(path, toml::to_string_pretty(cfg).map_err(|e| e.to_string())?.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn a_configuration_from_before_ocsp_still_loads() {
        let old = r#"
listen = "127.0.0.1:8080"
database = "mef.db"
ca_certificate = "ca.pem"
ca_key = "ca.key.pem"
ra_certificate = "ra.pem"
ra_key = "ra.key.pem"
challenge_key = "challenge.key"
[scep]
one_time_challenges = true
renewal_window_days = 14
manual_approval = false
crl_validity_hours = 24
[profile]
validity_days = 365
"#;
        let cfg: Config = toml::from_str(old).unwrap();
        assert_eq!(cfg.profile.crl_url, None);
        assert_eq!(cfg.profile.ocsp_url, None);
        assert_eq!(cfg.scep.ocsp_validity_minutes, 60);
    }
}
