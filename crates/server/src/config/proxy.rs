//! `[proxy]` in `mef.toml`: `mef serve` as the SCEP Client / Proxy of
//! seed 004 (3GPP TS 33.310 §9.2.1). What it builds is [`crate::proxy`]'s.

use serde::{Deserialize, Serialize};

/// `[proxy]`: forward every request the authorisation core admits to an
/// upstream SCEP server instead of issuing it; the RA certificate and key
/// (`ra_certificate`, `ra_key`) sign what goes upstream (RA-POP).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The upstream SCEP URL (`http://ca.example.net/scep`).
    pub upstream: String,
    /// The upstream CA certificate's fingerprint (`sha256:…` hex, as `enrol
    /// scep --ca-fingerprint` takes it): GetCACert is trusted only when it
    /// chains to this certificate.
    pub ca_fingerprint: String,
    /// Seconds between two passes over the pending transactions.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_seconds: u64,
    /// How long a transaction is polled upstream, from when the client's
    /// request was recorded; then it is refused and notified.
    #[serde(default = "default_polling_window")]
    pub polling_window_seconds: u64,
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
}

fn default_poll_interval() -> u64 {
    10
}

fn default_polling_window() -> u64 {
    86400
}

fn default_upstream_timeout() -> u64 {
    30
}

fn default_notify_timeout() -> u64 {
    10
}
