//! `mef serve` in proxy mode (`[proxy]`): the upstream SCEP server, reached
//! with enrolkit-client's [`ScepSession`], as the relay's [`Upstream`], and
//! the thread that runs the relay. The relay itself is
//! `enrolkit_server::proxy`'s.

use enrolkit_client::scep::redact_userinfo;
use enrolkit_client::{ClientError, ScepClient, ScepSession, Trust};
use enrolkit_keys::PrivateKey;
use enrolkit_pkix::pkcs10::CertificationRequest;
use enrolkit_scep::{self_signed_certificate, TransactionId};
use enrolkit_server::config::{Config, ProxyConfig, Res, UpstreamAuth};
use enrolkit_server::metrics::Metrics;
use enrolkit_server::proxy::{Forwarded, Notifier, Relay, Upstream, UpstreamRevocation};
use enrolkit_server::ra::Verifier;
use enrolkit_server::setup::load_key;
use enrolkit_server::Storage;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// The upstream SCEP server: requests signed with the proxy's RA key,
/// under the RA certificate (RA-POP) or a self-signed certificate
/// (forwarding the client's challengePassword), as `upstream_auth` says.
pub(crate) struct ScepUpstream {
    session: ScepSession,
    ra_key: Box<dyn PrivateKey>,
    ra_cert: Certificate,
    auth: UpstreamAuth,
}

/// How long a self-signed signer certificate is valid (made anew for every
/// upstream message, so it never expires in use).
const SELF_SIGNED_LIFETIME: Duration = Duration::from_secs(7 * 86400);

impl ScepUpstream {
    /// GetCACaps and GetCACert of `p.upstream`, trusted only under the
    /// pinned `p.ca_fingerprint`; the RA identity is `ra_certificate` and
    /// `ra_key` (a file or a `pkcs11:` URI).
    pub(crate) fn open(p: &ProxyConfig, cfg: &Config, base: &Path) -> Res<Self> {
        // Never a redirect: what the RA key signs goes to the configured URL.
        let client = ScepClient::without_redirects(&p.upstream, Duration::from_secs(p.upstream_timeout_seconds.max(1)))
            .map_err(|e| format!("proxy.upstream: {e}"))?;
        let session = ScepSession::open(client, &Trust::pin(&p.ca_fingerprint))
            .map_err(|e| format!("proxy.upstream {}: {e}", redact_userinfo(&p.upstream)))?;
        let ra_cert = enrolkit_files::read_certificate(&base.join(&cfg.ra_certificate))?;
        let ra_key = load_key(base, &cfg.ra_key)?;
        Ok(ScepUpstream {
            session,
            ra_key,
            ra_cert,
            auth: p.upstream_auth,
        })
    }

    /// The upstream CA certificate and those above it, as pinned.
    pub(crate) fn chain(&self) -> (Certificate, Vec<Certificate>) {
        (self.session.ca.ca.clone(), self.session.ca.chain.clone())
    }

    /// The stored CSR, the certificate to sign the message about it with,
    /// and the transactionID; `Err`: what to answer without sending anything.
    fn prepare(&self, csr: &[u8], txid: &str) -> Result<(CertificationRequest, Certificate, TransactionId), Forwarded> {
        let txid = TransactionId::new(txid)
            .map_err(|e| Forwarded::NotSent(format!("upstream transactionID {txid:?}: {e}")))?;
        let csr = CertificationRequest::parse(csr)
            .map_err(|e| Forwarded::NotSent(format!("the stored CSR does not parse: {e}")))?;
        let signer = match self.auth {
            UpstreamAuth::RaPop => self.ra_cert.clone(),
            UpstreamAuth::ForwardChallenge => {
                if csr.challenge_password().is_none() {
                    return Err(Forwarded::NotSent(
                        "the CSR carries no challengePassword, and upstream_auth = \"forward-challenge\" \
                         authenticates by the client's challengePassword alone"
                            .into(),
                    ));
                }
                // The RA certificate would be RA-POP at an upstream that
                // trusts it: a self-signed certificate of the same key
                // (RFC 8894 §2.3) is no credential, so the challenge decides.
                self_signed_certificate(
                    self.ra_key.as_signer(),
                    &self.ra_cert.tbs_certificate.subject,
                    self.session.signing_digest(self.ra_key.as_ref()),
                    SystemTime::now() - Duration::from_secs(300),
                    SELF_SIGNED_LIFETIME,
                    &mut rand_core::OsRng,
                )
                .map_err(|e| Forwarded::NotSent(format!("cannot make the self-signed signer certificate: {e}")))?
            }
        };
        Ok((csr, signer, txid))
    }

    fn answer(r: Result<Option<Certificate>, ClientError>) -> Forwarded {
        match r {
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

impl Upstream for ScepUpstream {
    fn revocations(&self) -> Result<Vec<UpstreamRevocation>, String> {
        let entries = self
            .session
            .relay_crl(self.ra_key.as_ref(), &self.ra_cert, SystemTime::now())
            .map_err(|e| e.to_string())?;
        Ok(entries
            .into_iter()
            .map(|e| UpstreamRevocation {
                serial: hex::encode(e.serial.as_bytes()),
                at: e
                    .time
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                reason: e.reason.map_or(0, |r| r as u8),
            })
            .collect())
    }

    fn request(&self, csr: &[u8], txid: &str) -> Forwarded {
        match self.prepare(csr, txid) {
            Ok((csr, signer, txid)) => Self::answer(self.session.relay(self.ra_key.as_ref(), &signer, &csr, &txid)),
            Err(not_sent) => not_sent,
        }
    }

    fn poll(&self, csr: &[u8], txid: &str) -> Forwarded {
        match self.prepare(csr, txid) {
            Ok((csr, signer, txid)) => {
                Self::answer(self.session.relay_poll(self.ra_key.as_ref(), &signer, &csr, &txid))
            }
            Err(not_sent) => not_sent,
        }
    }
}

/// Start the relay on a thread of its own (the upstream client blocks):
/// one supervised pass over at most `max_per_pass` pending transactions
/// every `poll_interval_seconds`.
pub(crate) fn spawn_relay(
    p: &ProxyConfig,
    upstream: ScepUpstream,
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    records: enrolkit_server::held::RecordCheck,
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
    )
    .crl_interval(Duration::from_secs(p.crl_interval_seconds))
    .max_per_pass(p.max_per_pass)
    .records(records);
    let every = Duration::from_secs(p.poll_interval_seconds.max(1));
    std::thread::Builder::new()
        .name("proxy-relay".into())
        .spawn(move || loop {
            // Supervised: a panic inside a pass is logged and counted, and
            // the next pass runs (the thread must not die: clients would be
            // answered 202 for ever).
            match relay.supervised_pass(SystemTime::now()) {
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
