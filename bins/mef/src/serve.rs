//! `mef serve`: the plain-HTTP listener (SCEP, `/crl`, `/ocsp`), the EST
//! listeners with the MEF, the admin listener (`/metrics`, `/healthz`), and
//! the background tasks (CRL file, purge). Once every listener is bound it
//! says `mef: ready` on stdout and `READY=1` to systemd (`Type=notify`).

use enrolkit_files as files;
use enrolkit_server::config::{load_config, Res};
use enrolkit_server::metrics::Metrics;
use enrolkit_server::ra::unix;
use enrolkit_server::setup::{
    build_est, build_observed_services, build_ocsp, build_proxy_services, crl_refresh, follow_listener,
};
use enrolkit_server::ScepService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The listen addresses given on the command line (each overrides its
/// configured one).
pub(crate) struct Overrides {
    /// `--listen`.
    pub(crate) listen: Option<String>,
    /// `--est-listen`.
    pub(crate) est_listen: Option<String>,
    /// `--est-listen-openssl`.
    pub(crate) est_listen_openssl: Option<String>,
    /// `--admin-listen`.
    pub(crate) admin_listen: Option<String>,
}

pub(crate) fn serve(config: &Path, o: Overrides) -> Res {
    let Overrides {
        listen,
        est_listen,
        est_listen_openssl,
        admin_listen,
    } = o;
    let (mut cfg, base) = load_config(config)?;
    if admin_listen.is_some() {
        cfg.admin.enabled = true;
    }
    let admin_addr = admin_listen.unwrap_or(cfg.admin.listen.clone());
    if let Some(e) = cfg.est.as_mut() {
        if est_listen.is_some() {
            e.listen = est_listen;
        }
        if est_listen_openssl.is_some() {
            e.listen_openssl = est_listen_openssl;
        }
    }
    // Bound before the services are built, so that profile URLs derived from
    // the configured address can follow a `--listen` override.
    let addr = listen.clone().unwrap_or(cfg.listen.clone());
    let http_listener = std::net::TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    http_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    if listen.is_some() {
        let bound = http_listener.local_addr().map_err(|e| e.to_string())?;
        follow_listener(&mut cfg.profile, &cfg.listen, bound);
    }
    // A service manager's usual soft limit (1024) is far below what the
    // hard limit allows: take it all, then keep some in reserve.
    let open_files = enrolkit_server::http::limits::raise_open_file_limit();
    let limits = enrolkit_server::http::limits::Limits::from_config(&cfg.limits, open_files)?;
    tracing::info!(
        open_files = open_files.unwrap_or(0),
        max_connections = limits.max_connections,
        per_address = limits.max_per_address,
        "connection limits"
    );
    let gate = enrolkit_server::http::limits::Gate::new(limits);
    let metrics = Arc::new(Metrics::new().with_gate(gate.clone()));
    if cfg.proxy.is_some() && cfg.cmp.take().is_some() {
        // `mef init` writes [cmp]; a proxy holds no CA key to answer it with
        // and relays SCEP only, so the CMP server stays off.
        tracing::warn!("[cmp] is not served in [proxy] mode (no CA key): /.well-known/cmp is off");
    }
    // Proxy mode (seed 004's SCEP Client / Proxy): the upstream CA, pinned,
    // instead of ours; every admitted request is held for the relay.
    let proxy = match cfg.proxy.clone() {
        Some(p) => {
            enrolkit_server::proxy::hold_everything(&mut cfg);
            let upstream = crate::proxy::ScepUpstream::open(&p, &cfg, &base)?;
            Some((p, upstream))
        }
        None => None,
    };
    let (scep, shared) = match &proxy {
        Some((_, up)) => {
            let (ca, chain) = up.chain();
            build_proxy_services(&cfg, &base, metrics.clone(), ca, chain)?
        }
        None => build_observed_services(&cfg, &base, metrics.clone())?,
    };
    let storage = shared.storage.clone();
    let svc = Arc::new(scep);
    // No CA key in proxy mode: no OCSP responses or CRLs of our own.
    let ocsp = match &proxy {
        Some(_) => None,
        None => Some(Arc::new(build_ocsp(&cfg, &shared)?)),
    };
    if let Some((p, upstream)) = proxy {
        let records = enrolkit_server::held::RecordCheck::new(&shared.challenge_key);
        crate::proxy::spawn_relay(&p, upstream, storage.clone(), metrics.clone(), records)?;
    }
    let cmp = cfg
        .cmp
        .as_ref()
        .map(|c| enrolkit_server::setup::build_cmp(c, &cfg, &base, &shared).map(Arc::new))
        .transpose()?;
    if cfg.rspf.is_some() && cfg.est.is_none() {
        return Err("[rspf] is served on the EST listeners: configure [est] too".into());
    }
    let est = cfg
        .est
        .as_ref()
        .map(|e| build_est(e, cfg.rspf.as_ref(), &base, shared))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(http_listener).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        announce(&format!("mef: listening on http://{local}/scep"));
        if cmp.is_some() {
            announce(&format!("mef: CMP on http://{local}/.well-known/cmp"));
        }
        tracing::info!(%local, "serving SCEP, /crl and /ocsp");
        if let Some((est_svc, listeners)) = est {
            if let Some(r) = est_svc.rspf.clone() {
                tokio::spawn(purge_expired_enrolments(r));
            }
            // PSKs and Kre records added or withdrawn by other processes reach
            // the handshakes within this delay.
            tokio::spawn(enrolkit_server::handshake::keep_current(
                est_svc.handshake_keys.clone(),
                enrolkit_server::handshake::REFRESH,
            ));
            for (addr, acceptor) in listeners {
                let l = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let local = l.local_addr().map_err(|e| e.to_string())?;
                announce(&format!(
                    "mef: EST ({}) on https://{local}/.well-known/est/",
                    acceptor.backend()
                ));
                tracing::info!(%local, backend = %acceptor.backend(), "serving EST");
                let s = est_svc.clone();
                let g = gate.clone();
                tokio::spawn(async move {
                    if let Err(e) = enrolkit_server::http::serve_est(l, acceptor, s, g).await {
                        tracing::error!(error = %e, "EST listener stopped");
                    }
                });
            }
        }
        if cfg.admin.enabled {
            let l = tokio::net::TcpListener::bind(&admin_addr)
                .await
                .map_err(|e| format!("cannot listen on {admin_addr} (admin: [admin] listen, --admin-listen): {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            announce(&format!("mef: admin on http://{local}/metrics and /healthz"));
            tracing::info!(%local, "serving /metrics and /healthz");
            let services = enrolkit_server::http::admin::AdminServices {
                metrics: metrics.clone(),
                storage,
            };
            tokio::spawn(async move {
                if let Err(e) = enrolkit_server::http::admin::serve_admin(l, services).await {
                    tracing::error!(error = %e, "admin listener stopped");
                }
            });
        }
        // Every listener is bound: tell whoever started us.
        announce("mef: ready");
        notify_ready();
        if let Some(c) = cmp.clone() {
            tokio::spawn(revoke_unconfirmed(c));
        }
        if cfg.proxy.is_none() {
            tokio::spawn(keep_crl_current(
                svc.clone(),
                base.join(&cfg.crl_file),
                crl_refresh(&cfg),
            ));
        }
        tokio::select! {
            r = enrolkit_server::http::serve_http(
                listener,
                enrolkit_server::http::HttpServices { scep: svc, ocsp, cmp, metrics },
                gate,
            ) => r.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); Ok(()) }
        }
    })
}

/// Delete Enrolment Key records once their Enrolment Expiry has passed
/// (they are refused from that moment anyway), every ten minutes.
async fn purge_expired_enrolments(r: Arc<enrolkit_server::rspf::RspfService>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let r = r.clone();
        match tokio::task::spawn_blocking(move || r.storage().purge_enrolments(unix(SystemTime::now()))).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(purged = n, "expired Enrolment Keys deleted"),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot purge expired Enrolment Keys"),
            Err(e) => tracing::error!(error = %e, "purge task failed"),
        }
    }
}

/// Revoke CMP certificates whose certConf did not come in time, every second.
async fn revoke_unconfirmed(c: Arc<enrolkit_server::cmp::CmpService>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let c = c.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || c.revoke_unconfirmed(SystemTime::now())).await {
            tracing::error!(error = %e, "unconfirmed-certificate task failed");
        }
    }
}

/// Re-sign the CRL when revocations change or half its validity has passed,
/// and write it (DER) atomically to `path` for a web server or a file share.
async fn keep_crl_current(svc: Arc<ScepService>, path: PathBuf, every: Duration) {
    let mut written = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let s = svc.clone();
        match tokio::task::spawn_blocking(move || s.current_crl(SystemTime::now())).await {
            Ok(Ok(c)) if written != Some(c.number) => match files::write_public(&path, &c.der) {
                Ok(()) => {
                    tracing::info!(crl_number = c.number, path = %path.display(), "CRL written");
                    written = Some(c.number);
                }
                Err(e) => tracing::error!(error = %e, path = %path.display(), "cannot write the CRL"),
            },
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot produce the CRL"),
            Err(e) => tracing::error!(error = %e, "CRL task failed"),
        }
    }
}

/// `READY=1` to systemd when it started us as `Type=notify` (it set
/// `NOTIFY_SOCKET`); nothing otherwise. A failure is logged, not fatal:
/// the unit's start timeout then says what went wrong.
fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    match sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        Ok(()) => tracing::debug!("READY=1 sent to the service manager"),
        Err(e) => tracing::error!(error = %e, "cannot tell the service manager we are ready"),
    }
}

/// A line on stdout for whoever started `mef serve`; a reader that has gone
/// away (closed pipe) must not take the server down with it.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
