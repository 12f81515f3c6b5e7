//! `[proxy]` in `mef.toml`: `mef serve` as the SCEP Client / Proxy of
//! seed 004 (3GPP TS 33.310 §9.2.1). What it builds is [`crate::proxy`]'s.

use serde::{Deserialize, Serialize};

/// `[proxy]`: forward every request the authorisation core admits to an
/// upstream SCEP server instead of issuing it; the RA key (`ra_key`) signs
/// what goes upstream, with the RA certificate (`ra_certificate`) under
/// RA-POP, the default ([`UpstreamAuth`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The upstream SCEP URL (`http://ca.example.net/scep`).
    pub upstream: String,
    /// The upstream CA certificate's fingerprint (`sha256:…` hex, as `enrol
    /// scep --ca-fingerprint` takes it): GetCACert is trusted only when it
    /// chains to this certificate.
    pub ca_fingerprint: String,
    /// What authenticates the requests sent upstream: `"ra-pop"` (default)
    /// or `"forward-challenge"`.
    #[serde(default)]
    pub upstream_auth: UpstreamAuth,
    /// Seconds between two passes over the pending transactions.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_seconds: u64,
    /// How long a transaction is polled upstream, from when the client's
    /// request was recorded; then it is refused and notified.
    #[serde(default = "default_polling_window")]
    pub polling_window_seconds: u64,
    /// Seconds between two GetCRLs upstream (at most one per pass): the
    /// upstream CA's revocations are applied to the certificates the proxy
    /// relayed, so one the upstream revoked no longer renews here.
    #[serde(default = "default_crl_interval")]
    pub crl_interval_seconds: u64,
    /// Seconds an upstream HTTP request may take.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_seconds: u64,
    /// Notification hook (program and arguments, no shell) run when a
    /// transaction is refused upstream or its polling window runs out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_command: Vec<String>,
    /// Seconds the notification hook may run before it is killed.
    #[serde(default = "default_notify_timeout")]
    pub notify_timeout_seconds: u64,
    /// Pending (held) transactions one client may have at once, counted by
    /// the subject it asked for: a new request beyond it is refused before
    /// it is held (EST 503 with Retry-After, SCEP FAILURE); retries of a
    /// held one are answered as before.
    #[serde(default = "default_max_pending_per_client")]
    pub max_pending_per_client: u64,
    /// Pending (held) transactions in all: beyond it every new request is
    /// refused before it is held, as for `max_pending_per_client`.
    #[serde(default = "default_max_pending")]
    pub max_pending: u64,
    /// Upstream exchanges (and pending transactions read) per pass of the
    /// relay, oldest transactions first; the rest wait for the next pass.
    #[serde(default = "default_max_per_pass")]
    pub max_per_pass: usize,
}

impl ProxyConfig {
    /// The caps on held requests this configuration sets.
    pub fn hold_limit(&self) -> crate::proxy::HoldLimit {
        crate::proxy::HoldLimit {
            per_client: self.max_pending_per_client,
            total: self.max_pending,
        }
    }
}

fn default_max_pending_per_client() -> u64 {
    4
}

fn default_max_pending() -> u64 {
    10_000
}

fn default_max_per_pass() -> usize {
    64
}

/// How the proxy authenticates what it sends upstream (`upstream_auth`).
/// Either way the client's CSR goes upstream unchanged, and the reply is
/// encrypted to a certificate of the proxy's RA key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamAuth {
    /// RA-POP: the request is signed with the RA certificate, which the
    /// upstream trusts for some names (mef: `[[authorisation.ra]]`).
    #[default]
    RaPop,
    /// The client's challengePassword, carried in its CSR, is what the
    /// upstream decides on (a server that knows only a challenge, such as
    /// micromdm `scepserver -challenge`): the request is signed with a
    /// self-signed certificate of the RA key, which no server takes for a
    /// credential. A request without a challengePassword is refused at the
    /// proxy and never sent.
    ForwardChallenge,
}

fn default_poll_interval() -> u64 {
    10
}

fn default_polling_window() -> u64 {
    86400
}

fn default_crl_interval() -> u64 {
    60
}

fn default_upstream_timeout() -> u64 {
    30
}

fn default_notify_timeout() -> u64 {
    10
}
