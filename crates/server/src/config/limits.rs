//! `[limits]`: what one client may hold of `mef` on every listener.

use serde::{Deserialize, Serialize};

/// `[limits]`: timeouts and connection caps, shared by the plain-HTTP,
/// rustls and OpenSSL listeners. Every field has a default, so an older
/// `mef.toml` without the section gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// A request's head must arrive within this (and a keep-alive
    /// connection may sit idle this long before the next one).
    pub header_timeout_seconds: u64,
    /// A request's body must arrive within this once its head has.
    pub body_timeout_seconds: u64,
    /// A connection is closed after this long whatever it does (a client
    /// that never reads its response holds nothing longer).
    pub connection_lifetime_seconds: u64,
    /// Connections held at once over all listeners; 0: the open-file limit
    /// less [`LimitsConfig::reserved_descriptors`].
    pub max_connections: usize,
    /// Connections held at once by one address (exempt ones aside).
    pub max_connections_per_address: usize,
    /// Addresses or networks (`10.0.0.0/8`, `::1`) without a per-address
    /// cap: a load balancer, the benchmark host.
    pub exempt_addresses: Vec<String>,
    /// Requests served on one keep-alive connection before it is closed.
    pub max_requests_per_connection: usize,
    /// File descriptors kept free for the database, keys and hooks when
    /// `max_connections` is derived from the open-file limit.
    pub reserved_descriptors: usize,
    /// Private-key work for unauthenticated requests (SCEP PKIOperations,
    /// fresh OCSP signatures) in flight at once; 0: unbounded. Issuance for
    /// authenticated requests is not counted, so a token is never starved
    /// for it.
    pub key_operations: usize,
    /// How long such a request waits for its turn before it is answered
    /// "busy" (HTTP 503 for SCEP, `tryLater` for OCSP).
    pub key_operation_wait_milliseconds: u64,
    /// SCEP PKIOperations and EST enrolments one address may start per
    /// second (exempt addresses aside; HTTP 429 beyond); 0: no limit.
    pub enrolments_per_second_per_address: u32,
    /// How many of those one address may start at once before the rate
    /// applies.
    pub enrolment_burst_per_address: u32,
    /// IPv6 peers are counted by network of this prefix length for the
    /// per-address caps and rate (one host usually holds a whole /64, so
    /// counting single IPv6 addresses would cap nothing); 128: by address.
    pub ipv6_prefix_length: u8,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            connection_lifetime_seconds: 300,
            max_connections: 0,
            max_connections_per_address: 64,
            exempt_addresses: Vec::new(),
            max_requests_per_connection: 100,
            reserved_descriptors: 128,
            key_operations: 4,
            key_operation_wait_milliseconds: 2000,
            enrolments_per_second_per_address: 10,
            enrolment_burst_per_address: 50,
            ipv6_prefix_length: 64,
        }
    }
}
