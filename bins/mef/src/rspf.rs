//! `mef rspf`: Enrolment Tokens, enrolments, the GBA BSF stub.

use clap::Subcommand;
use enrolkit_files as files;
use enrolkit_server::config::{load_config, Res};
use enrolkit_server::ra::unix;
use enrolkit_server::setup::{build_rspf, build_services};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub(crate) enum RspfCmd {
    /// Enrolment Tokens (single use, bound to one enrolee).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// List recorded enrolments (KeId, enrolee, expiry, completions; never keys).
    List,
    /// Withdraw an enrolment: nothing derived from its Ke can be fetched any more.
    Revoke {
        /// The KeId.
        ke_id: String,
    },
    /// GBA BSF stub — a TEST DOUBLE standing in for the operator's BSF.
    GbaStub {
        #[command(subcommand)]
        cmd: GbaStubCmd,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCmd {
    /// Issue a token for an enrolee; prints it once (only its keyed hash is stored).
    Add {
        /// Enrolee name (`[[rspf.enrolee]] name`).
        enrolee: String,
        /// Expire after this many seconds.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// List tokens and their state.
    List,
    /// Revoke a token by id.
    Revoke {
        /// Id from `list`.
        id: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum GbaStubCmd {
    /// Simulate a GBA bootstrap (TS 33.220 4.5.2) for an IMPI: fresh Ks and
    /// RAND, kept (sealed) for the MEF's NAF role; the UE's side (B-TID, IMPI,
    /// Ks) is written to --out (0600) for `enrol rspf enrol --gba`.
    Bootstrap {
        /// The subscriber's IMPI.
        #[arg(long)]
        impi: String,
        /// The BSF's domain name (the B-TID ends in it).
        #[arg(long, default_value = "bsf.gba.example.net")]
        bsf_domain: String,
        /// Key lifetime, seconds.
        #[arg(long, default_value_t = 3600)]
        lifetime: u64,
        /// Where to write the UE's bootstrap (TOML).
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn rspf(config: &Path, cmd: RspfCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let r = cfg.rspf.as_ref().ok_or("no [rspf] section in the configuration")?;
    let (_, shared) = build_services(&cfg, &base)?;
    let svc = build_rspf(r, cfg.est.as_ref().is_some_and(|e| e.psk), &base, &shared)?;
    let st = shared.storage;
    let now = unix(SystemTime::now());
    match cmd {
        RspfCmd::Token {
            cmd: TokenCmd::Add { enrolee, expires_in },
        } => {
            let expires = expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
            let (id, token) = svc.add_token(&enrolee, now, expires)?;
            println!("{}", token.as_str());
            eprintln!("enrolment token {id} issued for {enrolee}");
        }
        RspfCmd::Token { cmd: TokenCmd::List } => {
            println!("{:>4}  {:<10}  {:<20}  enrolee", "id", "state", "created (unix)");
            for t in st.list_rspf_tokens().map_err(|e| e.to_string())? {
                println!("{:>4}  {:<10}  {:<20}  {}", t.id, t.state(now), t.created, t.label);
            }
        }
        RspfCmd::Token {
            cmd: TokenCmd::Revoke { id },
        } => {
            st.revoke_rspf_token(id).map_err(|e| e.to_string())?;
            println!("enrolment token {id} revoked");
        }
        RspfCmd::List => {
            for e in svc.enrolments(now)? {
                println!("{e}");
            }
        }
        RspfCmd::Revoke { ke_id } => {
            svc.revoke(&ke_id)?;
            println!("enrolment {ke_id} withdrawn");
        }
        RspfCmd::GbaStub {
            cmd:
                GbaStubCmd::Bootstrap {
                    impi,
                    bsf_domain,
                    lifetime,
                    out,
                },
        } => {
            let expires = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
            let (btid, ks) = svc.gba_stub_bootstrap(&impi, &bsf_domain, expires)?;
            let mut t = toml::Table::new();
            t.insert("btid".into(), btid.clone().into());
            t.insert("impi".into(), impi.clone().into());
            t.insert("ks".into(), hex::encode(ks.expose()).into());
            t.insert("expires".into(), expires.into());
            let body = Zeroizing::new(toml::to_string(&t).map_err(|e| e.to_string())?);
            if let Some(toml::Value::String(k)) = t.get_mut("ks") {
                zeroize::Zeroize::zeroize(k);
            }
            let ue = Zeroizing::new(format!(
                "# GBA bootstrap from mef's BSF STUB (a test double, not a BSF)\n{}",
                body.as_str()
            ));
            files::write_private(&out, ue.as_bytes())?;
            println!("{btid}");
            eprintln!("GBA stub bootstrap for {impi} written to {} (0600)", out.display());
        }
    }
    Ok(())
}
