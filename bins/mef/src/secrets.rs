//! `mef challenge` and `mef psk`: the operator's one-time challenges and
//! pre-shared keys, each optionally bound to the names it may obtain.

use crate::escape;
use clap::Subcommand;
use enrolkit_files as files;
use enrolkit_server::config::{load_config, Res};
use enrolkit_server::ra::{challenge_hash, unix};
use enrolkit_server::setup::{cmp_sealer, open_storage, psk_sealer, read_key32};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub(crate) enum ChallengeCmd {
    /// Provision a challenge; prints it once (it is stored only as a keyed hash).
    Add {
        /// Label (device name) for `list`.
        #[arg(long, default_value = "")]
        label: String,
        /// Use this value instead of a generated one.
        #[arg(long)]
        value: Option<String>,
        /// Expire after this many seconds.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Bind the challenge to this subject (RFC 4514, e.g. `CN=device-1`):
        /// it then authorises only a request for it (and --dns names).
        #[arg(long)]
        subject: Option<String>,
        /// A DNS name the bound request may carry (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        dns: Vec<String>,
        /// An IP address the bound request may carry (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        ip: Vec<std::net::IpAddr>,
        /// A CMP challenge: the shared secret of a MAC-protected ir/cr
        /// whose senderKID is --label (required). Its secret is kept sealed
        /// under the storage key (a MAC is checked with the secret itself).
        #[arg(long, requires = "label")]
        cmp: bool,
    },
    /// List challenges and their state.
    List,
    /// Revoke a challenge by id.
    Revoke {
        /// Id from `list`.
        id: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum PskCmd {
    /// Provision a PSK identity. The key comes from --key-file (raw bytes, or
    /// hex) or is generated (32 bytes) and printed once in hex.
    Add {
        /// psk_identity (in oneM2M, the KpmId).
        identity: String,
        /// File holding the key.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Label (device name) for `list`.
        #[arg(long, default_value = "")]
        label: String,
        /// Bind the identity to this subject (RFC 4514); without it, the
        /// identity obtains only `CN=<identity>`.
        #[arg(long)]
        subject: Option<String>,
        /// A DNS name the bound identity may obtain (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        dns: Vec<String>,
        /// An IP address the bound identity may obtain (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        ip: Vec<std::net::IpAddr>,
    },
    /// List PSK identities (never the keys).
    List,
    /// Remove a PSK identity.
    Remove {
        /// psk_identity.
        identity: String,
    },
}

/// `--subject`/`--dns` as a binding, checked.
fn bound_names(
    subject: Option<&str>,
    dns: Vec<String>,
    ips: Vec<std::net::IpAddr>,
) -> Res<Option<enrolkit_server::ra::BoundNames>> {
    subject
        .map(|s| enrolkit_server::ra::BoundNames::new(s, dns, ips))
        .transpose()
}

/// A stored binding, as listed.
fn shown_names(stored: Option<&str>) -> String {
    match stored.map(enrolkit_server::ra::BoundNames::decode) {
        None => String::new(),
        Some(Ok(b)) => format!(" [{}]", escape(&b.to_string())),
        Some(Err(e)) => format!(" [{e}]"),
    }
}

pub(crate) fn challenge(config: &Path, cmd: ChallengeCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let st = open_storage(&cfg, &base)?;
    let now = unix(SystemTime::now());
    match cmd {
        ChallengeCmd::Add {
            label,
            value,
            expires_in,
            subject,
            dns,
            ip,
            cmp,
        } => {
            let names = bound_names(subject.as_deref(), dns, ip)?;
            if cmp && label.is_empty() {
                return Err("a CMP challenge needs --label: it is the client's senderKID (-ref)".into());
            }
            let key = read_key32(&base.join(&cfg.challenge_key))?;
            let value = Zeroizing::new(match value {
                Some(v) => v,
                None => {
                    let mut b = [0u8; 15];
                    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
                    hex::encode(b)
                }
            });
            let hash = challenge_hash(&key, &value);
            let names = names.as_ref().map(|n| n.encode());
            let expires = expires_in.map(|s| now + s as i64);
            let id = if cmp {
                // Sealed before it reaches the database.
                let sealed = cmp_sealer(&cfg, &base)?
                    .seal(&label, value.as_bytes())
                    .map_err(|e| e.to_string())?;
                st.add_cmp_challenge(&hash, &label, names.as_deref(), &sealed, now, expires)
            } else {
                st.add_bound_challenge(&hash, &label, names.as_deref(), now, expires)
            }
            .map_err(|e| e.to_string())?;
            println!("{}", value.as_str());
            eprintln!(
                "challenge {id} added{}",
                if label.is_empty() {
                    String::new()
                } else {
                    format!(" for {label}")
                }
            );
        }
        ChallengeCmd::List => {
            println!(
                "{:>4}  {:<10}  {:<20}  label [bound names]",
                "id", "state", "created (unix)"
            );
            for c in st.list_challenges().map_err(|e| e.to_string())? {
                println!(
                    "{:>4}  {:<10}  {:<20}  {}{}",
                    c.id,
                    c.state(now),
                    c.created,
                    escape(&c.label),
                    shown_names(c.names.as_deref())
                );
            }
        }
        ChallengeCmd::Revoke { id } => {
            st.revoke_challenge(id).map_err(|e| e.to_string())?;
            println!("challenge {id} revoked");
        }
    }
    Ok(())
}

/// `mef psk`. A PSK added here reaches a running `mef serve` within
/// [`enrolkit_server::handshake::REFRESH`].
pub(crate) fn psk(config: &Path, cmd: PskCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let st = open_storage(&cfg, &base)?;
    match cmd {
        PskCmd::Add {
            identity,
            key_file,
            label,
            subject,
            dns,
            ip,
        } => {
            let names = bound_names(subject.as_deref(), dns, ip)?;
            if identity.is_empty() || identity.len() > 128 {
                return Err("a PSK identity is 1 to 128 bytes".into());
            }
            let (key, generated) = match key_file {
                Some(f) => (files::read_secret(&f)?, false),
                None => {
                    let mut k = Zeroizing::new(vec![0u8; 32]);
                    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
                    (k, true)
                }
            };
            if key.len() < 16 || key.len() > 64 {
                return Err(format!("a PSK is 16 to 64 bytes, this one is {}", key.len()));
            }
            // Sealed under the storage key before it reaches the database.
            psk_sealer(&cfg, &base)?.store(
                st.as_ref(),
                &identity,
                &key,
                &label,
                names.as_ref().map(|n| n.encode()).as_deref(),
                unix(SystemTime::now()),
            )?;
            if generated {
                println!("{}", Zeroizing::new(hex::encode(&key[..])).as_str());
            }
            eprintln!("PSK identity {identity} added");
        }
        PskCmd::List => {
            for p in st.list_psks().map_err(|e| e.to_string())? {
                println!(
                    "{}  {}  {}{}",
                    escape(&p.identity),
                    p.created,
                    escape(&p.label),
                    shown_names(p.names.as_deref())
                );
            }
        }
        PskCmd::Remove { identity } => {
            st.remove_psk(&identity).map_err(|e| e.to_string())?;
            println!("PSK identity {identity} removed");
        }
    }
    Ok(())
}
