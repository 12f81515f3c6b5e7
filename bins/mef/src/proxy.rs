//! `mef serve` in proxy mode (`[proxy]`): the upstream SCEP server, reached
//! with enrolkit-client's [`ScepSession`], as the relay's [`Upstream`], and
//! the thread that runs the relay. The relay itself is
//! `enrolkit_server::proxy`'s.

use enrolkit_client::{ClientError, ScepClient, ScepSession, Trust};
use enrolkit_keys::PrivateKey;
use enrolkit_pkix::pkcs10::CertificationRequest;
use enrolkit_server::config::{Config, ProxyConfig, Res};
use enrolkit_server::metrics::Metrics;
use enrolkit_server::proxy::{Forwarded, Notifier, Relay, Upstream};
use enrolkit_server::ra::Verifier;
use enrolkit_server::setup::load_key;
use enrolkit_server::Storage;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// The upstream SCEP server: requests signed with the proxy's RA
/// certificate and key (RA-POP).
pub(crate) struct ScepUpstream {
    session: ScepSession,
    ra_key: Box<dyn PrivateKey>,
    ra_cert: Certificate,
}

impl ScepUpstream {
    /// GetCACaps and GetCACert of `p.upstream`, trusted only under the
    /// pinned `p.ca_fingerprint`; the RA identity is `ra_certificate` and
    /// `ra_key` (a file or a `pkcs11:` URI).
    pub(crate) fn open(p: &ProxyConfig, cfg: &Config, base: &Path) -> Res<Self> {
        let client = ScepClient::new(&p.upstream, Duration::from_secs(p.upstream_timeout_seconds.max(1)))
            .map_err(|e| format!("proxy.upstream: {e}"))?;
        let session = ScepSession::open(client, &Trust::pin(&p.ca_fingerprint))
            .map_err(|e| format!("proxy.upstream {}: {e}", p.upstream))?;
        let ra_cert = enrolkit_files::read_certificate(&base.join(&cfg.ra_certificate))?;
        let ra_key = load_key(base, &cfg.ra_key)?;
        Ok(ScepUpstream {
            session,
            ra_key,
            ra_cert,
        })
    }

    /// The upstream CA certificate and those above it, as pinned.
    pub(crate) fn chain(&self) -> (Certificate, Vec<Certificate>) {
        (self.session.ca.ca.clone(), self.session.ca.chain.clone())
    }
}

impl Upstream for ScepUpstream {
    fn forward(&self, csr: &[u8]) -> Forwarded {
        let csr = match CertificationRequest::parse(csr) {
            Ok(c) => c,
            Err(e) => return Forwarded::Refused(format!("the stored CSR does not parse: {e}")),
        };
        match self.session.relay(self.ra_key.as_ref(), &self.ra_cert, &csr) {
            Ok(Some(cert)) => Forwarded::Issued(Box::new(cert)),
            Ok(None) => Forwarded::Pending,
            Err(ClientError::Refused { fail_info, text }) => Forwarded::Refused(format!(
                "failInfo {fail_info}{}",
                text.map(|t| format!(" ({t})")).unwrap_or_default()
            )),
            Err(e) => Forwarded::Unreachable(e.to_string()),
        }
    }
}

/// Start the relay on a thread of its own (the upstream client blocks):
/// one pass over the pending transactions every `poll_interval_seconds`.
pub(crate) fn spawn_relay(
    p: &ProxyConfig,
    upstream: ScepUpstream,
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
) -> Res {
    let hook = p.notify_command.split_first().map(|(command, args)| Verifier {
        command: command.into(),
        args: args.to_vec(),
        timeout: Duration::from_secs(p.notify_timeout_seconds.max(1)),
    });
    let relay = Relay::new(
        storage,
        Box::new(upstream),
        Duration::from_secs(p.polling_window_seconds),
        Notifier { hook, metrics },
    );
    let every = Duration::from_secs(p.poll_interval_seconds.max(1));
    std::thread::Builder::new()
        .name("proxy-relay".into())
        .spawn(move || loop {
            match relay.pass(SystemTime::now()) {
                Ok(r) if r.forwarded > 0 || r.refused > 0 => tracing::info!(
                    forwarded = r.forwarded,
                    issued = r.issued,
                    pending = r.pending,
                    refused = r.refused,
                    "proxy: pass over pending requests"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "proxy: pass failed"),
            }
            std::thread::sleep(every);
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the proxy relay: {e}"))
}
