//! The CMP server of `[cmp]`.

use super::{load_key, storage_key, Shared};
use crate::cmp::{CmpService, CmpSetup, SecretSealer};
use crate::config::{CmpConfig, Config, Res};
use crate::metrics::{timed_key, KeyRole};
use crate::ra::Authoriser;
use enrolkit_files as files;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest `confirm_wait_seconds`: a transaction waits at most a week.
const MAX_CONFIRM_WAIT: u64 = 7 * 86400;

/// What seals the secrets of CMP challenges: a [`SecretSealer`] under [`storage_key`].
pub fn cmp_sealer(cfg: &Config, base: &Path) -> Res<SecretSealer> {
    SecretSealer::new(&*storage_key(cfg, base)?).map_err(|e| e.to_string())
}

/// The CMP server from `[cmp]`: the SCEP RA certificate and key protect
/// its answers; CA, storage, policy and profile are the ones SCEP and EST
/// share.
pub fn build_cmp(c: &CmpConfig, cfg: &Config, base: &Path, shared: &Shared) -> Res<CmpService> {
    if !(1..=MAX_CONFIRM_WAIT).contains(&c.confirm_wait_seconds) {
        return Err(format!(
            "[cmp] confirm_wait_seconds = {}: between 1 and {MAX_CONFIRM_WAIT} (a week)",
            c.confirm_wait_seconds
        ));
    }
    let ra_cert = files::read_certificate(&base.join(&cfg.ra_certificate))?;
    let ra_key = timed_key(load_key(base, &cfg.ra_key)?, KeyRole::Ra, shared.metrics.clone());
    let next_ca = cfg
        .next_ca_certificate
        .as_ref()
        .map(|p| files::read_certificate(&base.join(p)))
        .transpose()?;
    let auth = Authoriser::new(
        shared.ca.certificate.tbs_certificate.subject.clone(),
        shared.storage.clone(),
        shared.challenge_key.clone(),
        shared.policy.clone(),
    );
    Ok(CmpService::new(CmpSetup {
        ca: shared.ca.clone(),
        ra_cert,
        ra_key: Arc::from(ra_key),
        auth,
        storage: shared.storage.clone(),
        profile: shared.profile.clone(),
        secrets: cmp_sealer(cfg, base)?,
        held_names: crate::held::HeldNamesSeal::new(&shared.challenge_key),
        next_ca,
        grant_implicit_confirm: c.grant_implicit_confirm,
        confirm_wait: Duration::from_secs(c.confirm_wait_seconds),
        check_after: Duration::from_secs(c.check_after_seconds),
    })
    .with_metrics(shared.metrics.clone())
    .with_key_gate(shared.key_gate.clone()))
}
