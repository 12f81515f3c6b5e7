//! `[admin]` and `[log]`: how `mef serve` is operated — the admin listener
//! (`/metrics`, `/healthz`) and the format of its log.

use serde::{Deserialize, Serialize};

/// Where the admin listener is when `[admin]` does not say: loopback only,
/// since `/metrics` is for the host's own scraper or a tunnel to it.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";

/// `[admin]`: the admin listener, apart from the protocol listeners (and
/// their connection caps) so that a flood on those leaves it reachable.
/// Every field has a default, so an older `mef.toml` without the section
/// gets the listener on [`DEFAULT_ADMIN_LISTEN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// Serve the admin listener at all.
    pub enabled: bool,
    /// Its address, `host:port` (`mef serve --admin-listen` overrides it).
    pub listen: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: DEFAULT_ADMIN_LISTEN.into(),
        }
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line, the event's fields as keys (for a log shipper).
    Json,
}

/// `[log]`: the format of the log (`mef serve --log-format` overrides it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
}
