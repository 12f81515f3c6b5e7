//! `[cmp]`: the CMP server (RFC 4210, RFC 9483) on the plain-HTTP listener
//! at `/.well-known/cmp` (RFC 6712). Present: on; absent: off.

use serde::{Deserialize, Serialize};

/// `[cmp]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmpConfig {
    /// Grant implicit confirmation to a client that asks for it (RFC 4210
    /// §5.1.1.1): the certificate is final with the ip/cp/kup, no certConf.
    #[serde(default = "yes")]
    pub grant_implicit_confirm: bool,
    /// How long an issued certificate waits for the client's certConf (then
    /// it is revoked: the client never accepted it), and a held request for
    /// its pollReq, before the transaction is forgotten.
    #[serde(default = "default_confirm_wait")]
    pub confirm_wait_seconds: u64,
    /// checkAfter of a pollRep: when a client whose request is held for an
    /// operator should ask again.
    #[serde(default = "default_check_after")]
    pub check_after_seconds: u64,
}

impl Default for CmpConfig {
    fn default() -> Self {
        CmpConfig {
            grant_implicit_confirm: true,
            confirm_wait_seconds: default_confirm_wait(),
            check_after_seconds: default_check_after(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_confirm_wait() -> u64 {
    600
}

fn default_check_after() -> u64 {
    10
}
