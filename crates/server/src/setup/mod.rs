//! What a configuration builds: the storage, the keys, the SCEP responder,
//! the EST server with the MEF, the OCSP responder. `mef serve` and the
//! operator commands use it; so can another front end or a test.

mod cmp;
mod est;
mod rspf;

pub use cmp::{build_cmp, cmp_sealer};
pub use est::{build_est, EstServer};
pub use rspf::build_rspf;

use crate::config::{self, Config, DatabaseSslMode, ProfileConfig, Res};
use crate::handshake::{PskSealer, PskView};
use crate::keygate::KeyGate;
use crate::metrics::{timed_key, KeyRole, Metrics};
use crate::ra::Policy;
use crate::storage::postgres::PgTls;
use crate::{PgStorage, ScepService, ScepSetup, SqliteStorage, Storage};
use enrolkit_files as files;
use enrolkit_keys::PrivateKey;
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pki::{Authority, Profile, SanPolicy};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A configured key: a path (relative to the configuration's directory) or
/// a `pkcs11:` URI naming a key pair in a token.
pub fn load_key(base: &Path, named: &Path) -> Res<Box<dyn PrivateKey>> {
    let at = match named.to_str() {
        Some(s) if s.starts_with("pkcs11:") => KeyLocation::parse(s).map_err(|e| format!("{s}: {e}"))?,
        _ => KeyLocation::File(base.join(named)),
    };
    at.load().map_err(|e| format!("{at}: {e}"))
}

/// Where the PostgreSQL password comes from, first found: `database_password_file`
/// (its first line), this environment variable, the URL.
pub const PASSWORD_ENV: &str = "MEF_DATABASE_PASSWORD";

/// The server's state, for every command: PostgreSQL when `database_url` is
/// set, else the SQLite file `database` (relative to the configuration's
/// directory). Errors never contain the password.
///
/// Opening upgrades the database: the schema first, then any PSK an older
/// version stored in the clear is sealed under [`storage_key`] (so the
/// first command run after an upgrade, whichever it is, seals them).
pub fn open_storage(cfg: &Config, base: &Path) -> Res<Arc<dyn Storage>> {
    let st = open_database(cfg, base)?;
    psk_sealer(cfg, base)?
        .seal_stored(st.as_ref())
        .map_err(|e| format!("sealing PSKs: {e}"))?;
    Ok(st)
}

fn open_database(cfg: &Config, base: &Path) -> Res<Arc<dyn Storage>> {
    match (&cfg.database_url, &cfg.database) {
        (Some(_), Some(_)) => Err("set database (a SQLite file) or database_url (PostgreSQL), not both".into()),
        (None, None) => Err("no database: set database (a SQLite file) or database_url (PostgreSQL)".into()),
        (None, Some(path)) => {
            let text = path.to_string_lossy().to_ascii_lowercase();
            if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                return Err("database names a SQLite file: put a PostgreSQL URL in database_url".into());
            }
            Ok(Arc::new(
                SqliteStorage::open(&base.join(path)).map_err(|e| e.to_string())?,
            ))
        }
        (Some(url), None) => {
            let password: Option<Zeroizing<String>> = match &cfg.database_password_file {
                Some(f) => {
                    let f = base.join(f);
                    let text = Zeroizing::new(
                        std::fs::read_to_string(&f)
                            .map_err(|e| format!("database_password_file {}: {e}", f.display()))?,
                    );
                    Some(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
                }
                None => std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new),
            };
            let tls = match (cfg.database_sslmode, &cfg.database_sslrootcert) {
                (None | Some(DatabaseSslMode::Disable), _) => PgTls::Off,
                (Some(DatabaseSslMode::Require), _) => PgTls::Require,
                (Some(DatabaseSslMode::VerifyFull), Some(ca)) => PgTls::VerifyFull { ca_file: base.join(ca) },
                (Some(DatabaseSslMode::VerifyFull), None) => {
                    return Err(
                        "database_sslmode = \"verify-full\" needs database_sslrootcert (the CA's PEM file)".into(),
                    )
                }
            };
            let st = PgStorage::open_tls(
                url,
                password.as_ref().map(|p| p.as_bytes()),
                &tls,
                crate::storage::postgres::DEFAULT_MAX_CONNECTIONS,
            )
            .map_err(|e| format!("database_url: {e}"))?;
            tracing::debug!(database = st.target(), "PostgreSQL storage");
            Ok(Arc::new(st))
        }
    }
}

/// What SCEP and EST share: the CA, the state, the authorisation policy, the profile.
pub struct Shared {
    /// The issuing CA.
    pub ca: Arc<Authority>,
    /// Key challenge passwords (and Enrolment Tokens) are hashed under.
    pub challenge_key: Zeroizing<[u8; 32]>,
    /// State.
    pub storage: Arc<dyn Storage>,
    /// The authorisation policy.
    pub policy: Policy,
    /// Issued certificates' profile.
    pub profile: Profile,
    /// Where the services count issuances, challenges and tokens.
    pub metrics: Arc<Metrics>,
    /// The bound on unauthenticated private-key work, shared by SCEP and OCSP.
    pub key_gate: Arc<KeyGate>,
    /// Operator PSKs in memory, for TLS handshakes ([`crate::handshake`]).
    pub psks: Arc<PskView>,
}

/// The SCEP responder of a configuration.
pub fn build_service(cfg: &Config, base: &Path) -> Res<ScepService> {
    Ok(build_services(cfg, base)?.0)
}

/// The SCEP responder, and what the EST server and the MEF share with it
/// (their metrics go to a registry nobody reads: see [`build_observed_services`]).
pub fn build_services(cfg: &Config, base: &Path) -> Res<(ScepService, Shared)> {
    build_observed_services(cfg, base, Arc::new(Metrics::new()))
}

/// As [`build_services`], with everything counted and timed into
/// `metrics`: the services' issuances, the storage's commits, the CA and
/// RA keys' operations (`mef serve`).
pub fn build_observed_services(cfg: &Config, base: &Path, metrics: Arc<Metrics>) -> Res<(ScepService, Shared)> {
    let ca_cert = files::read_certificate(&base.join(&cfg.ca_certificate))?;
    let ca_key = timed_key(load_key(base, &cfg.ca_key)?, KeyRole::Ca, metrics.clone());
    let chain = cfg
        .ca_chain
        .iter()
        .map(|p| files::read_certificate(&base.join(p)))
        .collect::<Res<Vec<_>>>()?;
    let ca = Authority {
        certificate: ca_cert,
        key: ca_key,
        chain,
    };
    build_services_for(cfg, base, metrics, ca)
}

/// As [`build_observed_services`] for `mef serve` in proxy mode
/// (`[proxy]`): the CA is the pinned upstream one, whose key this mef does
/// not hold ([`crate::proxy::upstream_authority`]); `ca_certificate` and
/// `ca_key` are not read. Pass a configuration [`crate::proxy::hold_everything`]
/// was applied to.
pub fn build_proxy_services(
    cfg: &Config,
    base: &Path,
    metrics: Arc<Metrics>,
    upstream_ca: x509_cert::Certificate,
    upstream_chain: Vec<x509_cert::Certificate>,
) -> Res<(ScepService, Shared)> {
    let ca = crate::proxy::upstream_authority(upstream_ca, upstream_chain)?;
    build_services_for(cfg, base, metrics, ca)
}

fn build_services_for(cfg: &Config, base: &Path, metrics: Arc<Metrics>, ca: Authority) -> Res<(ScepService, Shared)> {
    let ra_cert = files::read_certificate(&base.join(&cfg.ra_certificate))?;
    let ra_key = timed_key(load_key(base, &cfg.ra_key)?, KeyRole::Ra, metrics.clone());
    let challenge_key = read_key32(&base.join(&cfg.challenge_key))?;
    let storage = open_storage(cfg, base)?;
    storage.observe_commits(metrics.clone());
    let psks = Arc::new(open_psks(cfg, base, storage.clone())?);
    let next_ca = cfg
        .next_ca_certificate
        .as_ref()
        .map(|p| files::read_certificate(&base.join(p)))
        .transpose()?;
    let profile = Profile {
        validity: Duration::from_secs(
            cfg.profile
                .validity_seconds
                .unwrap_or(cfg.profile.validity_days.saturating_mul(86400)),
        ),
        backdate: Duration::from_secs(cfg.profile.backdate_seconds.unwrap_or(300)),
        crl_url: cfg.profile.crl_url.clone(),
        ocsp_url: cfg.profile.ocsp_url.clone(),
        // The authorisation core decides the names (allowed_dns_suffixes is
        // its rule for credentials that bind none); the profile copies them.
        san: SanPolicy::Copy,
        ..Profile::default()
    };
    let mut policy = config::policy(
        config::Sources {
            scep: &cfg.scep,
            authorisation: cfg.authorisation.as_ref(),
            est_reenroll_may_change_names: cfg.est.as_ref().is_some_and(|e| e.reenroll_may_change_names),
            allowed_dns_suffixes: &cfg.profile.allowed_dns_suffixes,
            reserved_names: config::rspf_identifiers(cfg.rspf.as_ref()),
            forwards_requests: cfg.proxy.is_some(),
        },
        base,
    )?;
    policy.hold_limit = cfg.proxy.as_ref().map(|p| p.hold_limit());
    let key_gate = Arc::new(KeyGate::new(
        cfg.limits.key_operations,
        Duration::from_millis(cfg.limits.key_operation_wait_milliseconds),
    ));
    let ca = Arc::new(ca);
    let shared = Shared {
        ca: ca.clone(),
        challenge_key: challenge_key.clone(),
        storage: storage.clone(),
        policy: policy.clone(),
        profile: profile.clone(),
        metrics: metrics.clone(),
        key_gate: key_gate.clone(),
        psks,
    };
    let scep = ScepService::new(
        ScepSetup {
            ca,
            ra_cert,
            ra_key: Arc::from(ra_key),
            challenge_key,
            storage,
            policy,
            ciphers: config::ciphers(&cfg.scep.ciphers)?,
            profile,
            crl_validity: Duration::from_secs(cfg.scep.crl_validity_hours * 3600),
            next_ca,
        },
        &mut rand_core::OsRng,
    )
    .with_metrics(metrics)
    .with_certrep_chain(cfg.scep.certrep_chain)
    .with_key_gate(key_gate);
    Ok((scep, shared))
}

/// The key PSKs are sealed under at rest: `storage_key`, else `[rspf]
/// storage_key`, else one derived from the challenge key (which every
/// configuration has), so that a configuration with EST PSKs and no MEF
/// still seals them.
pub fn storage_key(cfg: &Config, base: &Path) -> Res<Zeroizing<[u8; 32]>> {
    match (&cfg.storage_key, &cfg.rspf) {
        (Some(p), _) => read_key32(&base.join(p)),
        (None, Some(r)) => read_key32(&base.join(&r.storage_key)),
        (None, None) => {
            let challenge = read_key32(&base.join(&cfg.challenge_key))?;
            Ok(crate::seal::derive_key(&challenge, b"\xffenrolkit storage key"))
        }
    }
}

/// What seals operator PSKs at rest: a [`PskSealer`] under [`storage_key`].
pub fn psk_sealer(cfg: &Config, base: &Path) -> Res<PskSealer> {
    PskSealer::new(&*storage_key(cfg, base)?).map_err(|e| e.to_string())
}

/// The operator PSKs of `storage` in memory, sealed under [`storage_key`]
/// (sealing any an older version stored in the clear).
pub fn open_psks(cfg: &Config, base: &Path, storage: Arc<dyn Storage>) -> Res<PskView> {
    PskView::load(storage, psk_sealer(cfg, base)?).map_err(|e| format!("PSKs: {e}"))
}

/// A 256-bit key kept as 64 hex digits in `path` (challenge key, RSPF storage key).
pub fn read_key32(path: &Path) -> Res<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| format!("{}: not hexadecimal", path.display()))?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(format!("{}: must hold 32 bytes (64 hex digits)", path.display()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The CA's OCSP responder on the plain-HTTP listener: answers from the
/// database at request time, signed by the CA key.
pub fn build_ocsp(cfg: &Config, shared: &Shared) -> Res<crate::ocsp::OcspResponder> {
    if cfg.scep.ocsp_validity_minutes == 0 {
        return Err("scep.ocsp_validity_minutes must be at least 1".into());
    }
    crate::ocsp::OcspResponder::new(crate::ocsp::OcspSetup {
        ca: shared.ca.clone(),
        storage: shared.storage.clone(),
        validity: Duration::from_secs(cfg.scep.ocsp_validity_minutes.saturating_mul(60)),
    })
    .map(|r| {
        r.with_fresh_signatures_per_second(cfg.scep.ocsp_fresh_signatures_per_second)
            .with_key_gate(shared.key_gate.clone())
    })
    .map_err(|e| format!("OCSP responder: {e}"))
}

/// `serve --listen` moves the plain-HTTP listener; profile URLs that `mef
/// init` derived from the configured `listen` (`http://<listen>/crl` and
/// `/ocsp`) move with it, so that issued certificates keep naming this
/// server. URLs set any other way stay as they are, and so do all of them
/// when the bound address is unspecified (0.0.0.0 is no place to send a device).
pub fn follow_listener(profile: &mut ProfileConfig, configured: &str, bound: std::net::SocketAddr) {
    if bound.ip().is_unspecified() {
        return;
    }
    let from = format!("http://{configured}/");
    for url in [&mut profile.crl_url, &mut profile.ocsp_url].into_iter().flatten() {
        let Some(path) = url.strip_prefix(&from) else {
            continue;
        };
        let moved = format!("http://{bound}/{path}");
        tracing::info!(from = %url, to = %moved, "profile URL follows --listen");
        *url = moved;
    }
}

/// How often `mef serve` checks the CRL: the configured interval, else a
/// quarter of the CRL's validity (at most an hour), so a revocation reaches
/// the CRL file within that time and the CRL never goes stale.
pub fn crl_refresh(cfg: &Config) -> Duration {
    match cfg.scep.crl_refresh_seconds {
        Some(s) => Duration::from_secs(s.max(1)),
        None => Duration::from_secs((cfg.scep.crl_validity_hours * 3600 / 4).clamp(60, 3600)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn init_derived_urls_follow_a_listen_override() {
        let mut p: ProfileConfig = toml::from_str(
            "validity_days = 1\ncrl_url = \"http://127.0.0.1:8080/crl\"\nocsp_url = \"http://127.0.0.1:8080/ocsp\"\n",
        )
        .unwrap();
        follow_listener(&mut p, "127.0.0.1:8080", "127.0.0.1:40123".parse().unwrap());
        assert_eq!(p.crl_url.as_deref(), Some("http://127.0.0.1:40123/crl"));
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:40123/ocsp"));
        // URLs the operator set (another host, another port) are left alone.
        p.crl_url = Some("http://pki.example/crl".into());
        p.ocsp_url = Some("http://127.0.0.1:80801/ocsp".into());
        follow_listener(&mut p, "127.0.0.1:8080", "127.0.0.1:40124".parse().unwrap());
        assert_eq!(p.crl_url.as_deref(), Some("http://pki.example/crl"));
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:80801/ocsp"));
        // Nor does anything follow an unspecified address.
        p.ocsp_url = Some("http://127.0.0.1:8080/ocsp".into());
        follow_listener(&mut p, "127.0.0.1:8080", "0.0.0.0:9".parse().unwrap());
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:8080/ocsp"));
    }
}
