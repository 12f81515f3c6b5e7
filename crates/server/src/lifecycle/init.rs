//! `mef init`.

use super::{http_base_url, pem, token_store, RA_NAME, ROOT_KEY};
use crate::config::*;
use enrolkit_files as files;
use enrolkit_keys::{KeySpec, PrivateKey, Signer, SoftwareKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pki::{Authority, Profile};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use zeroize::Zeroizing;

/// What `mef init` is asked to make.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory to create.
    pub dir: PathBuf,
    /// CA key type.
    pub ca_key: KeySpec,
    /// Also create an issuing intermediate under the root.
    pub intermediate: bool,
    /// Make the CA, root and RA keys in this PKCS#11 token (a URI naming the
    /// token, with `pin-source`) instead of files.
    pub key_store: Option<String>,
    /// CA subject (RFC 4514).
    pub ca_name: String,
    /// Plain-HTTP listen address.
    pub listen: String,
    /// Base URL devices reach that listener at (CRL and OCSP URLs).
    pub http_url: Option<String>,
    /// EST listener (rustls).
    pub est_listen: String,
    /// EST listener (OpenSSL).
    pub est_listen_openssl: String,
    /// Names for the EST server's TLS certificate.
    pub hostnames: Vec<String>,
    /// The MEF's FQDN.
    pub mef_fqdn: String,
    /// PostgreSQL URL instead of SQLite.
    pub database_url: Option<String>,
    /// File holding the PostgreSQL password.
    pub database_password_file: Option<PathBuf>,
    /// TLS to PostgreSQL (`database_sslmode`).
    pub database_sslmode: Option<crate::config::DatabaseSslMode>,
    /// The CA file `verify-full` checks the server's certificate against.
    pub database_sslrootcert: Option<PathBuf>,
}

/// `mef init`: a new PKI, keys and configuration in `a.dir` (refused when
/// it holds a configuration already).
pub fn init(a: &InitOptions) -> Res {
    let (dir, ca_key, intermediate, ca_name, listen, hostnames, mef_fqdn) = (
        a.dir.as_path(),
        a.ca_key,
        a.intermediate,
        a.ca_name.as_str(),
        a.listen.as_str(),
        a.hostnames.as_slice(),
        a.mef_fqdn.as_str(),
    );
    let est_listen = (a.est_listen.as_str(), a.est_listen_openssl.as_str());
    let http_url = http_base_url(listen, hostnames, a.http_url.as_deref())?;
    enrolkit_rspf::Fqdn::new("MEF", mef_fqdn).map_err(|e| format!("--mef-fqdn: {e}"))?;
    if dir.join("mef.toml").exists() {
        return Err(format!(
            "{} already holds a configuration; refusing to overwrite it",
            dir.display()
        ));
    }
    files::create_private_dir(dir)?;
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86400);
    let rng = &mut rand_core::OsRng;
    let name = Name::from_str(ca_name).map_err(|e| format!("--ca-name: {e}"))?;
    let store = a.key_store.as_deref().map(token_store).transpose()?;
    // Every CA-side key: a file written here (0600), or a pair made in the token.
    let new_key = |spec: KeySpec, file: &str, label: &str| -> Res<(Box<dyn PrivateKey>, String)> {
        let at = match &store {
            None => KeyLocation::File(dir.join(file)),
            Some(uri) => {
                let mut uri = uri.clone();
                uri.object = Some(label.into());
                KeyLocation::Token(Box::new(uri))
            }
        };
        let (key, at) = at.generate(spec).map_err(|e| format!("{label} key: {e}"))?;
        let named = match at {
            KeyLocation::File(_) => file.to_owned(),
            token => token.to_string(),
        };
        Ok((key, named))
    };
    let (root_key, root_named) = new_key(ca_key, if intermediate { ROOT_KEY } else { "ca.key.pem" }, "mef-root")?;
    let root = Authority::new_root(root_key, name, now, year * 20, rng).map_err(|e| e.to_string())?;
    let mut chain = Vec::new();
    let (ca, ca_named) = if intermediate {
        let (k, named) = new_key(ca_key, "ca.key.pem", "mef-ca")?;
        let int_name = Name::from_str("CN=enrolkit MEF Issuing CA,O=enrolkit").map_err(|e| e.to_string())?;
        let int = root
            .new_intermediate(k, int_name, now, year * 10, rng)
            .map_err(|e| e.to_string())?;
        files::write_public(&dir.join("root.pem"), pem(&root.certificate)?.as_bytes())?;
        chain.push(PathBuf::from("root.pem"));
        if store.is_some() {
            println!("root CA key (for `mef ca next`): {root_named}");
        }
        (int, named)
    } else {
        (root, root_named)
    };
    // SCEP key transport needs RSA for the RA whatever the CA key is.
    let (ra_key, ra_named) = new_key(KeySpec::Rsa2048, "ra.key.pem", "mef-ra")?;
    let ra_name = Name::from_str(RA_NAME).map_err(|e| e.to_string())?;
    let ra = ca
        .certify_ra(ra_key.spki(), ra_name, now, year * 2, rng)
        .map_err(|e| e.to_string())?;
    let mut secret = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(rng, &mut secret[..]);
    // The EST server's TLS certificate, from the same CA.
    let tls_key = SoftwareKey::generate(KeySpec::EcP256).map_err(|e| e.to_string())?;
    let mut dns_names = vec!["localhost".to_string()];
    dns_names.extend(
        hostnames
            .iter()
            .filter(|h| h.parse::<std::net::IpAddr>().is_err())
            .cloned(),
    );
    let mut ip_addresses: Vec<std::net::IpAddr> = vec![std::net::Ipv4Addr::LOCALHOST.into()];
    ip_addresses.extend(hostnames.iter().filter_map(|h| h.parse::<std::net::IpAddr>().ok()));
    let tls_cert = ca
        .issue(
            &enrolkit_pki::Request {
                subject: Name::from_str("CN=enrolkit MEF EST server,O=enrolkit").map_err(|e| e.to_string())?,
                public_key: tls_key.public_key().clone(),
                dns_names,
                ip_addresses,
            },
            &Profile {
                validity: year * 2,
                key_usage: vec![enrolkit_pki::KeyUsageBits::DigitalSignature],
                extended_key_usage: vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH],
                ..Profile::default()
            },
            now,
            rng,
        )
        .map_err(|e| e.to_string())?;
    let mut tls_chain_pem = pem(&tls_cert)?;
    if intermediate {
        tls_chain_pem.push_str(&pem(&ca.certificate)?);
    }
    files::write_private(
        &dir.join("est-server.key.pem"),
        tls_key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes(),
    )?;
    files::write_public(&dir.join("est-server.pem"), tls_chain_pem.as_bytes())?;

    files::write_public(&dir.join("ca.pem"), pem(&ca.certificate)?.as_bytes())?;
    files::write_public(&dir.join("ra.pem"), pem(&ra)?.as_bytes())?;
    files::write_private(
        &dir.join("challenge.key"),
        Zeroizing::new(hex::encode(&secret[..])).as_bytes(),
    )?;
    // The RSPF storage key: replace it with the operator's own before the first enrolment.
    let mut rspf_key = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(rng, &mut rspf_key[..]);
    files::write_private(
        &dir.join("rspf.key"),
        Zeroizing::new(hex::encode(&rspf_key[..])).as_bytes(),
    )?;
    let cfg = Config {
        listen: listen.into(),
        database: a.database_url.is_none().then(|| "mef.db".into()),
        database_url: a.database_url.clone(),
        database_password_file: a.database_password_file.clone(),
        database_sslmode: a.database_sslmode,
        database_sslrootcert: a.database_sslrootcert.clone(),
        // PSKs are sealed under the same key as Ke, named here so that it
        // stays theirs whether or not [rspf] is kept.
        storage_key: Some("rspf.key".into()),
        ca_certificate: "ca.pem".into(),
        ca_key: ca_named.into(),
        ca_chain: chain,
        ra_certificate: "ra.pem".into(),
        ra_key: ra_named.into(),
        challenge_key: "challenge.key".into(),
        next_ca_certificate: None,
        next_ca_key: None,
        crl_file: default_crl_file(),
        proxy: None,
        scep: ScepConfig {
            one_time_challenges: true,
            static_challenge: None,
            preauthorized_cns: Vec::new(),
            renewal_window_days: 14,
            manual_approval: false,
            crl_validity_hours: 24,
            ocsp_validity_minutes: default_ocsp_validity(),
            ocsp_fresh_signatures_per_second: crate::config::default_ocsp_signatures(),
            crl_refresh_seconds: None,
            verifier_command: Vec::new(),
            verifier_timeout_seconds: default_verifier_timeout(),
            ciphers: default_ciphers(),
            certrep_chain: false,
        },
        profile: ProfileConfig {
            validity_days: 365,
            validity_seconds: None,
            backdate_seconds: None,
            crl_url: Some(format!("{http_url}{}", crate::http::CRL_PATH)),
            ocsp_url: Some(format!("{http_url}{}", crate::ocsp::OCSP_PATH)),
            allowed_dns_suffixes: Vec::new(),
        },
        est: Some(EstConfig {
            listen: Some(est_listen.0.into()),
            listen_openssl: Some(est_listen.1.into()),
            tls_certificate: "est-server.pem".into(),
            tls_key: "est-server.key.pem".into(),
            client_trust_anchors: vec![if intermediate {
                "root.pem".into()
            } else {
                "ca.pem".into()
            }],
            min_tls: default_min_tls(),
            max_tls: default_max_tls(),
            psk: true,
            basic: false,
            require_linking: false,
            onem2m: false,
            manual_approval: false,
            retry_after_seconds: default_retry_after(),
            allowed_ekus: Vec::new(),
            requested_ekus: Vec::new(),
            reenroll_may_change_names: false,
        }),
        rspf: Some(RspfConfig {
            mef_fqdn: mef_fqdn.into(),
            storage_key: "rspf.key".into(),
            enrolee: Vec::new(),
            target: Vec::new(),
            send_credential_id: false,
            // New configurations refuse RSPF sessions without forward secrecy.
            require_forward_secrecy: true,
        }),
        authorisation: None,
        cmp: Some(crate::config::CmpConfig::default()),
        limits: crate::config::LimitsConfig::default(),
        admin: crate::config::AdminConfig::default(),
        log: crate::config::LogConfig::default(),
    };
    crate::setup::open_storage(&cfg, dir)?;
    // 0600 when it holds a secret (a password in the database URL).
    crate::config::save_config(&dir.join("mef.toml"), &cfg)?;
    let fp = enrolkit_pkix::fingerprint::sha256(&ca.certificate);
    println!(
        "created {} (CA SHA-256 fingerprint {fp})",
        dir.join("mef.toml").display()
    );
    Ok(())
}
