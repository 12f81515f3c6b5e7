//! `mef ca next` and `mef ca rollover`.

use super::{key_beside, pem, token_uri, KeyMade, RA_NAME, ROOT_KEY, YEAR};
use crate::config::{load_config, save_config, Res};
use crate::ra::unix;
use crate::setup::load_key;
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_pki::Authority;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;
use x509_cert::name::Name;

/// `mef ca next`: the next CA (same subject, new key of type `key_type`):
/// a new root, or a new intermediate under the same root.
pub fn ca_next(config: &Path, key_type: KeySpec) -> Res {
    let (mut cfg, base) = load_config(config)?;
    if cfg.next_ca_certificate.is_some() {
        return Err("a next CA is already prepared (next_ca_certificate in the configuration)".into());
    }
    let current = files::read_certificate(&base.join(&cfg.ca_certificate))?;
    let subject = current.tbs_certificate.subject.clone();
    let now = SystemTime::now();
    let rng = &mut rand_core::OsRng;
    // The root key of an intermediate CA: the file init wrote, or, when the
    // keys are in a token, the pair init labelled mef-root there.
    let root_key = match cfg.ca_chain.first() {
        None => None,
        Some(root_cert) => {
            let root_at = match token_uri(&cfg.ca_key)? {
                Some(mut uri) if !base.join(ROOT_KEY).exists() => {
                    uri.object = Some("mef-root".into());
                    uri.id = None;
                    PathBuf::from(uri.to_string())
                }
                _ => PathBuf::from(ROOT_KEY),
            };
            Some((
                files::read_certificate(&base.join(root_cert))?,
                load_key(&base, &root_at)?,
            ))
        }
    };
    let (key, made) = key_beside(&cfg.ca_key, key_type, &format!("mef-ca-{}", unix(now)))?;
    let next = match root_key {
        // An intermediate: the next one is signed by the same root.
        Some((certificate, key_of_root)) => {
            let root = Authority {
                certificate,
                key: key_of_root,
                chain: Vec::new(),
            };
            root.new_intermediate(key, subject, now, YEAR * 10, rng)
        }
        None => Authority::new_root(key, subject, now, YEAR * 20, rng),
    }
    .map_err(|e| e.to_string());
    // Until the configuration names it, a pair made in the token is destroyed on any failure.
    let written = next.and_then(|next| {
        let next_key = made.store(&base, "next-ca.key.pem")?;
        files::write_public(&base.join("next-ca.pem"), pem(&next.certificate)?.as_bytes())?;
        cfg.next_ca_certificate = Some("next-ca.pem".into());
        cfg.next_ca_key = Some(next_key);
        save_config(config, &cfg)?;
        Ok(next)
    });
    let next = match written {
        Ok(n) => n,
        Err(e) => {
            made.discard();
            return Err(e);
        }
    };
    let fp = enrolkit_pkix::fingerprint::sha256(&next.certificate);
    if let KeyMade::Token(at) = &made {
        println!("next CA key generated in the token: {at}");
    }
    println!("next CA written to next-ca.pem (SHA-256 {fp}); GetNextCACert offers it once mef serve restarts");
    Ok(())
}

/// `mef ca rollover`: the prepared next CA becomes current, with a new RA.
pub fn ca_rollover(config: &Path) -> Res {
    let (mut cfg, base) = load_config(config)?;
    let (Some(next_cert), Some(next_key)) = (cfg.next_ca_certificate.clone(), cfg.next_ca_key.clone()) else {
        return Err("no next CA prepared: run `mef ca next` first".into());
    };
    let cert = files::read_certificate(&base.join(&next_cert))?;
    let next_in_token = token_uri(&next_key)?.is_some();
    let ca = Authority {
        certificate: cert,
        key: load_key(&base, &next_key)?,
        chain: Vec::new(),
    };
    let rng = &mut rand_core::OsRng;
    let stamp = unix(SystemTime::now());
    // The new RA key goes where the current one is (a token, or a file).
    let (ra_key, ra_made) = key_beside(&cfg.ra_key, KeySpec::Rsa2048, &format!("mef-ra-{stamp}"))?;
    let ra = ca
        .certify_ra(
            ra_key.spki(),
            Name::from_str(RA_NAME).map_err(|e| e.to_string())?,
            SystemTime::now(),
            YEAR * 2,
            rng,
        )
        .map_err(|e| e.to_string());
    // New files under new names, then one atomic write of the configuration
    // switches to them: a crash before it leaves the old CA in charge, after
    // it the new one. The old files stay where they are (certificates the old
    // CA issued remain valid until they expire). Token keys keep their URIs.
    // Until the configuration names it, a new RA pair in the token is
    // destroyed on any failure.
    let switched = ra.and_then(|ra| {
        let (ca_pem, ra_pem) = (
            PathBuf::from(format!("ca-{stamp}.pem")),
            PathBuf::from(format!("ra-{stamp}.pem")),
        );
        let ca_key = if next_in_token {
            next_key.clone()
        } else {
            let key = files::read_key(&base.join(&next_key))?;
            let named = PathBuf::from(format!("ca-{stamp}.key.pem"));
            files::write_private(
                &base.join(&named),
                key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes(),
            )?;
            named
        };
        files::write_public(&base.join(&ca_pem), pem(&ca.certificate)?.as_bytes())?;
        let ra_key_named = ra_made.store(&base, &format!("ra-{stamp}.key.pem"))?;
        files::write_public(&base.join(&ra_pem), pem(&ra)?.as_bytes())?;
        let old = [cfg.ca_certificate.clone(), cfg.ra_certificate.clone()];
        cfg.ca_certificate = ca_pem;
        cfg.ca_key = ca_key;
        cfg.ra_certificate = ra_pem;
        cfg.ra_key = ra_key_named;
        cfg.next_ca_certificate = None;
        cfg.next_ca_key = None;
        save_config(config, &cfg)?;
        Ok(old)
    });
    let old = match switched {
        Ok(old) => old,
        Err(e) => {
            ra_made.discard();
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(base.join(next_cert));
    if !next_in_token {
        let _ = std::fs::remove_file(base.join(next_key));
    }
    println!(
        "previous CA and RA certificates stay in {} and {}",
        old[0].display(),
        old[1].display()
    );
    let fp = enrolkit_pkix::fingerprint::sha256(&ca.certificate);
    println!("the next CA is now current (SHA-256 {fp}); restart mef serve");
    Ok(())
}
