//! `mef scep pending` / `mef est pending`: requests held for an operator,
//! shown as what approval would issue, approved or rejected.

use crate::escape;
use clap::Subcommand;
use enrolkit_server::config::{load_config, Res};
use enrolkit_server::ra::unix;
use enrolkit_server::setup::{build_cmp, build_est, build_service, build_services, open_storage};
use std::path::Path;
use std::time::SystemTime;

#[derive(Subcommand)]
pub(crate) enum ScepCmd {
    /// Requests waiting for approval.
    Pending {
        #[command(subcommand)]
        cmd: PendingCmd,
    },
}

#[derive(Subcommand)]
pub(crate) enum PendingCmd {
    /// List pending requests.
    List,
    /// Approve: issue the certificate; the client gets it on its next poll.
    Approve {
        /// Transaction ID.
        transaction: String,
        /// Key id (from `list`).
        key_id: String,
    },
    /// Reject: the client gets FAILURE on its next poll.
    Reject {
        /// Transaction ID.
        transaction: String,
        /// Key id (from `list`).
        key_id: String,
    },
}

pub(crate) fn pending(config: &Path, cmd: PendingCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    match cmd {
        PendingCmd::List => {
            // What approval would issue, as each service decided it when it held the request.
            let (scep, shared) = build_services(&cfg, &base)?;
            let cmp = cfg
                .cmp
                .as_ref()
                .map(|c| build_cmp(c, &cfg, &base, &shared))
                .transpose()?;
            let est = match &cfg.est {
                Some(e) => Some(build_est(e, cfg.rspf.as_ref(), &base, shared)?.0),
                None => None,
            };
            for tx in scep.storage().pending().map_err(|e| e.to_string())? {
                let terms = match (&est, &cmp) {
                    (Some(svc), _) if tx.transaction_id.starts_with("est-") => svc.est.pending_terms(&tx),
                    (_, Some(c)) if tx.transaction_id.starts_with("cmp-") => c.pending_terms(&tx),
                    _ => scep.pending_terms(&tx),
                };
                println!(
                    "{} {} {}",
                    escape(&tx.transaction_id),
                    tx.key_id,
                    escape(&terms.unwrap_or_else(|e| format!("(cannot tell: {e})")))
                );
            }
        }
        PendingCmd::Approve { transaction, key_id } => {
            if cfg.proxy.is_some() {
                return Err(format!(
                    "this mef is a SCEP proxy: the upstream CA decides {transaction}, the proxy forwards it (`reject` still refuses it here)"
                ));
            }
            // EST requests (`est-…`, `est-keygen-…`) are issued by the EST
            // service, on the terms it held them with (EKUs, an Enrolee's
            // grant, the key type to generate), not SCEP's.
            let serial = match (&cfg.est, transaction.starts_with("est-")) {
                // CMP requests (`cmp-…`) are issued by the CMP service, on the
                // names and key it held them with; the client polls for it.
                _ if transaction.starts_with("cmp-") => {
                    let c = cfg
                        .cmp
                        .as_ref()
                        .ok_or("a CMP transaction, and [cmp] is not configured")?;
                    let (_, shared) = build_services(&cfg, &base)?;
                    build_cmp(c, &cfg, &base, &shared)?.approve(&transaction, &key_id, SystemTime::now())?
                }
                (Some(est), true) => {
                    let (_, shared) = build_services(&cfg, &base)?;
                    let (svc, _) = build_est(est, cfg.rspf.as_ref(), &base, shared)?;
                    svc.est.approve(&transaction, &key_id, SystemTime::now())?
                }
                _ => build_service(&cfg, &base)?.approve(&transaction, &key_id, SystemTime::now())?,
            };
            println!("approved {transaction}: certificate {serial}");
        }
        PendingCmd::Reject { transaction, key_id } => {
            let st = open_storage(&cfg, &base)?;
            st.decide(
                &transaction,
                &key_id,
                &enrolkit_server::storage::TxState::Rejected(
                    enrolkit_server::ra::RefusalReason::OperatorRejected,
                    "rejected by the operator".into(),
                ),
                None,
                unix(SystemTime::now()),
            )
            .map_err(|e| e.to_string())?;
            // A key left (sealed) by an approval that did not complete goes with the rejection.
            if transaction.starts_with("est-keygen-") {
                if let Err(e) = st.take_generated_key(&transaction, &key_id) {
                    eprintln!("mef: warning: {transaction} is rejected, but a key stored for it was not deleted: {e}");
                }
            }
            println!("rejected {transaction}");
        }
    }
    Ok(())
}
