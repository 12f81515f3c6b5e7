//! `mef.toml`, the reference server's configuration: the schema, read and
//! written here so that `mef`, other front ends and tests share it. What
//! the settings build is [`crate::setup`]'s; the CA lifecycle that writes a
//! new configuration is [`crate::lifecycle`]'s.

mod admin;
mod authorisation;
mod cmp;
mod est;
mod limits;
mod proxy;
mod rspf;
mod scep;

pub use admin::{AdminConfig, LogConfig, LogFormat, DEFAULT_ADMIN_LISTEN};
pub use authorisation::{policy, AuthorisationConfig, RaConfig, Sources, VendorConfig};
pub use cmp::CmpConfig;
pub(crate) use est::{default_max_tls, default_min_tls, default_retry_after};
pub use est::{oids, tls_version, EstConfig};
pub use limits::LimitsConfig;
pub use proxy::ProxyConfig;
pub use rspf::{rspf_identifiers, RspfConfig, RspfEnroleeConfig, RspfTargetConfig};
pub use scep::{ciphers, ProfileConfig, ScepConfig};
pub(crate) use scep::{
    default_ciphers, default_crl_file, default_ocsp_signatures, default_ocsp_validity, default_verifier_timeout,
};

use enrolkit_files as files;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A step of configuration or set-up that failed: a sentence for the operator.
pub type Res<T = ()> = Result<T, String>;

/// `database_sslmode`: TLS to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseSslMode {
    /// Plain TCP or a Unix socket.
    Disable,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS; the certificate chains to `database_sslrootcert` and names the host.
    VerifyFull,
}

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
    /// TLS to PostgreSQL: `disable` (the default), `require` (encrypted,
    /// the server's certificate unchecked) or `verify-full` (it must chain
    /// to `database_sslrootcert` and name the URL's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_sslmode: Option<DatabaseSslMode>,
    /// PEM file of the CA(s) the PostgreSQL server's certificate must chain
    /// to (`verify-full`, which needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_sslrootcert: Option<PathBuf>,
    /// File with the 32-byte key (hex) sealing PSKs at rest. Absent: `[rspf]
    /// storage_key`, else a key derived from `challenge_key`. Changing it
    /// leaves the PSKs sealed under the old key unusable (`mef psk add` them again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key: Option<PathBuf>,
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
    /// `[cmp]`: the CMP server at `/.well-known/cmp`; absent: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmp: Option<CmpConfig>,
    /// `[proxy]`: the SCEP Client / Proxy (seed 004): forward to an
    /// upstream SCEP server instead of issuing; `ca_certificate` and
    /// `ca_key` are then not read. Absent: mef is a CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    /// `[limits]`: timeouts and connection caps on every listener.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[admin]`: the admin listener (`/metrics`, `/healthz`).
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[log]`: the log's format.
    #[serde(default)]
    pub log: LogConfig,
}

impl Config {
    /// The settings of this configuration that are secrets themselves (not
    /// paths to secrets): a static challenge, a password inside
    /// `database_url`. A file holding any is kept 0600.
    pub fn secrets(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.scep.static_challenge.is_some() {
            v.push("scep.static_challenge");
        }
        if self.database_url.as_deref().is_some_and(url_has_password) {
            v.push("a password in database_url");
        }
        v
    }
}

/// Whether a PostgreSQL connection string carries a password: URL form
/// `postgresql://user:password@host`, or libpq's `password=…`.
fn url_has_password(url: &str) -> bool {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        return authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    }
    url.split_whitespace()
        .any(|kv| kv.trim_start().starts_with("password="))
}

/// Read `path`; the second value is its directory, which relative paths
/// in it are resolved against. A configuration that holds a secret
/// ([`Config::secrets`]) is refused when group or others may read it.
pub fn load_config(path: &Path) -> Res<(Config, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let secrets = cfg.secrets();
    if !secrets.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} holds {} and is readable by group or others (mode {:03o}): chmod 600 it",
                path.display(),
                secrets.join(" and "),
                mode & 0o777
            ));
        }
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((cfg, base))
}

/// Write the configuration to `path` (atomically: temporary file, fsync,
/// rename): mode 0600 when it holds a secret, else 0644.
pub fn save_config(path: &Path, cfg: &Config) -> Res {
    let text = toml::to_string_pretty(cfg).map_err(|e| e.to_string())?;
    if cfg.secrets().is_empty() {
        files::write_public(path, text.as_bytes())
    } else {
        files::write_private(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    /// A configuration from before OCSP (and before [limits]).
    const OLD: &str = r#"
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

    #[test]
    fn a_configuration_from_before_ocsp_still_loads() {
        let cfg: Config = toml::from_str(OLD).unwrap();
        assert_eq!(cfg.profile.crl_url, None);
        assert_eq!(cfg.profile.ocsp_url, None);
        assert_eq!(cfg.scep.ocsp_validity_minutes, 60);
    }

    #[test]
    fn a_configuration_from_before_the_admin_listener_gets_it_on_loopback_and_text_logs() {
        let cfg: Config = toml::from_str(OLD).unwrap();
        assert!(cfg.admin.enabled);
        assert_eq!(cfg.admin.listen, "127.0.0.1:9090");
        assert_eq!(cfg.log.format, LogFormat::Text);
        let text = format!("{OLD}[admin]\nlisten = \"[::1]:9187\"\n[log]\nformat = \"json\"\n");
        let cfg: Config = toml::from_str(&text).unwrap();
        assert_eq!(cfg.admin.listen, "[::1]:9187");
        assert!(cfg.admin.enabled, "a partial [admin] keeps the other defaults");
        assert_eq!(cfg.log.format, LogFormat::Json);
        let bad = format!("{OLD}[log]\nformat = \"xml\"\n");
        assert!(toml::from_str::<Config>(&bad).is_err());
        // Written back, the sections are there for the operator to see.
        let written = toml::to_string_pretty(&cfg).unwrap();
        assert!(
            written.contains("[admin]") && written.contains("format = \"json\""),
            "{written}"
        );
    }

    #[test]
    fn passwords_in_database_urls_are_recognised() {
        assert!(url_has_password("postgresql://mef:s3cret@db.example.net/mef"));
        assert!(url_has_password("host=db user=mef password=s3cret dbname=mef"));
        assert!(!url_has_password("postgresql://mef@db.example.net/mef"));
        assert!(!url_has_password("postgresql://db.example.net:5432/mef"));
        assert!(!url_has_password("host=db user=mef dbname=mef"));
    }

    #[test]
    fn a_configuration_with_a_secret_is_written_0600_and_refused_when_others_may_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mef.toml");
        let cfg: Config = toml::from_str(OLD).unwrap();
        save_config(&path, &cfg).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644, "no secret: public");
        let (mut cfg, _) = load_config(&path).unwrap();
        cfg.scep.static_challenge = Some("shared-secret".into());
        save_config(&path, &cfg).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(load_config(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_config(&path).err().unwrap();
        assert!(e.contains("scep.static_challenge") && e.contains("chmod 600"), "{e}");
    }
}
