//! What one client may hold of the server: a global connection cap and a
//! per-address cap checked at accept (the connection is closed at once
//! when over), timeouts the connection code applies, the open-file limit
//! raised to its hard value at start, a descriptor kept in reserve so that
//! running out of them never makes the accept loop spin, and one
//! rate-limited log line per cause of rejection.

use crate::config::LimitsConfig;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections accepted when the open-file limit cannot be read.
const FALLBACK_MAX_CONNECTIONS: usize = 896;
/// The fewest connections a derived cap allows.
const MIN_CONNECTIONS: usize = 16;
/// How often one cause of rejection is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The limits in force, resolved from `[limits]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Head of a request (and keep-alive idle) timeout.
    pub header_timeout: Duration,
    /// Body of a request timeout, from the end of its head.
    pub body_timeout: Duration,
    /// Longest life of a connection.
    pub connection_lifetime: Duration,
    /// Connections at once, all listeners together.
    pub max_connections: usize,
    /// Connections at once from one non-exempt address.
    pub max_per_address: usize,
    /// Addresses without a per-address cap.
    pub exempt: Vec<IpNet>,
    /// Requests on one keep-alive connection.
    pub max_requests_per_connection: usize,
    /// Enrolment operations one non-exempt address may start: per second
    /// and in a burst (`None`: no limit).
    pub enrolment_rate: Option<(NonZeroU32, NonZeroU32)>,
    /// IPv6 peers are counted by network of this prefix length (1–128).
    pub ipv6_prefix_length: u8,
}

impl Limits {
    /// Resolve `[limits]`; `open_files` is the process's soft open-file
    /// limit (after [`raise_open_file_limit`]), used when `max_connections`
    /// is 0. Refuses an exempt entry that is not an address or network.
    pub fn from_config(c: &LimitsConfig, open_files: Option<u64>) -> Result<Limits, String> {
        let mut exempt = Vec::new();
        for e in &c.exempt_addresses {
            let net = e
                .parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("limits.exempt_addresses: {e:?} is not an address or a network"))?;
            exempt.push(net);
        }
        let max_connections = match (c.max_connections, open_files) {
            (0, Some(n)) => usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_sub(c.reserved_descriptors)
                .max(MIN_CONNECTIONS),
            (0, None) => FALLBACK_MAX_CONNECTIONS,
            (n, _) => n,
        };
        if !(1..=128).contains(&c.ipv6_prefix_length) {
            return Err(format!(
                "limits.ipv6_prefix_length = {}: between 1 and 128",
                c.ipv6_prefix_length
            ));
        }
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Ok(Limits {
            header_timeout: secs(c.header_timeout_seconds),
            body_timeout: secs(c.body_timeout_seconds),
            connection_lifetime: secs(c.connection_lifetime_seconds),
            max_connections,
            max_per_address: c.max_connections_per_address.max(1),
            exempt,
            max_requests_per_connection: c.max_requests_per_connection.max(1),
            enrolment_rate: NonZeroU32::new(c.enrolments_per_second_per_address).map(|per_second| {
                (
                    per_second,
                    NonZeroU32::new(c.enrolment_burst_per_address).unwrap_or(per_second),
                )
            }),
            ipv6_prefix_length: c.ipv6_prefix_length,
        })
    }

    /// What the per-address caps and rate count `ip` as: an IPv4 address
    /// (an IPv4-mapped IPv6 one as the IPv4 it maps), or the IPv6 network
    /// of [`Limits::ipv6_prefix_length`] it is in (its first address).
    pub fn client(&self, ip: IpAddr) -> IpAddr {
        match unmapped(ip) {
            IpAddr::V6(v6) => {
                let bits = u32::from(self.ipv6_prefix_length.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults of `[limits]` never fail to resolve.
        Limits::from_config(&LimitsConfig::default(), None).unwrap_or(Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            connection_lifetime: Duration::from_secs(300),
            max_connections: FALLBACK_MAX_CONNECTIONS,
            max_per_address: 64,
            exempt: Vec::new(),
            max_requests_per_connection: 100,
            enrolment_rate: None,
            ipv6_prefix_length: 64,
        })
    }
}

/// Raise the soft open-file limit to the hard one (a service started with
/// the usual 1024 can then hold what its hard limit allows); the soft limit
/// in force afterwards, `None` when it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Why a connection or request was turned away (one log line per cause
/// per `LOG_EVERY`, 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The global connection cap.
    ConnectionCap,
    /// The per-address connection cap.
    AddressCap,
    /// No file descriptor was left to accept with.
    OutOfDescriptors,
    /// A request head did not arrive in time (or a keep-alive connection idled out).
    HeaderTimeout,
    /// A request body did not arrive in time.
    BodyTimeout,
    /// A connection reached its lifetime.
    Lifetime,
    /// A TLS handshake failed or timed out.
    Handshake,
    /// What arrived was not an HTTP/1.1 request (a head that does not
    /// parse, or is too large): the connection is closed.
    Malformed,
    /// An address started enrolment operations faster than its rate
    /// (HTTP 429).
    EnrolmentRate,
}

impl Rejection {
    /// Every cause (the metrics list each, at zero too).
    pub const ALL: [Rejection; 9] = [
        Rejection::ConnectionCap,
        Rejection::AddressCap,
        Rejection::OutOfDescriptors,
        Rejection::HeaderTimeout,
        Rejection::BodyTimeout,
        Rejection::Lifetime,
        Rejection::Handshake,
        Rejection::Malformed,
        Rejection::EnrolmentRate,
    ];

    /// The cause as a metric label (`mef_connection_rejections_total{cause}`).
    pub fn label(self) -> &'static str {
        match self {
            Rejection::ConnectionCap => "connection_cap",
            Rejection::AddressCap => "address_cap",
            Rejection::OutOfDescriptors => "out_of_descriptors",
            Rejection::HeaderTimeout => "header_timeout",
            Rejection::BodyTimeout => "body_timeout",
            Rejection::Lifetime => "connection_lifetime",
            Rejection::Handshake => "tls_handshake",
            Rejection::Malformed => "malformed_request",
            Rejection::EnrolmentRate => "enrolment_rate",
        }
    }

    /// The cause as logged and counted.
    pub fn name(self) -> &'static str {
        match self {
            Rejection::ConnectionCap => "connection cap",
            Rejection::AddressCap => "per-address connection cap",
            Rejection::OutOfDescriptors => "out of file descriptors",
            Rejection::HeaderTimeout => "header timeout",
            Rejection::BodyTimeout => "body timeout",
            Rejection::Lifetime => "connection lifetime",
            Rejection::Handshake => "TLS handshake",
            Rejection::Malformed => "malformed request",
            Rejection::EnrolmentRate => "per-address enrolment rate",
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps (a dual-stack
/// listener reports IPv4 peers so).
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The gate every listener's connections pass: counts per address and in
/// all, and the rejection log.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    total: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    rejections: Mutex<HashMap<Rejection, (Option<Instant>, u64)>>,
    enrolments: Option<DefaultKeyedRateLimiter<IpAddr>>,
    enrolment_checks: AtomicUsize,
}

impl Gate {
    /// A gate applying `limits`.
    pub fn new(limits: Limits) -> Arc<Gate> {
        let enrolments = limits
            .enrolment_rate
            .map(|(per_second, burst)| RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)));
        Arc::new(Gate {
            enrolments,
            enrolment_checks: AtomicUsize::new(0),
            limits,
            total: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            rejections: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections held now.
    pub fn open_connections(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Rejections so far, by cause.
    pub fn rejections(&self) -> Vec<(Rejection, u64)> {
        self.rejections
            .lock()
            .map(|m| m.iter().map(|(k, (_, n))| (*k, *n)).collect())
            .unwrap_or_default()
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.limits.exempt.iter().any(|n| n.contains(&ip))
    }

    /// Whether `ip` may start one more enrolment operation now (a SCEP
    /// PKIOperation, an EST enrolment): exempt addresses always may, others
    /// within the configured rate and burst (an IPv6 peer's network shares
    /// them, [`Limits::client`]). A refusal is counted and
    /// logged like a connection rejection. The table of addresses is
    /// pruned of those back at a full burst every 4096 checks, so a host
    /// cycling through addresses does not grow it without end.
    pub fn allow_enrolment(&self, ip: IpAddr) -> bool {
        let Some(limiter) = &self.enrolments else { return true };
        if self.exempt(ip) {
            return true;
        }
        let ip = self.limits.client(ip);
        if self.enrolment_checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if limiter.check_key(&ip).is_ok() {
            true
        } else {
            self.reject(Rejection::EnrolmentRate, Some(ip));
            false
        }
    }

    /// Admit a connection from `ip` (counted as [`Limits::client`] says),
    /// or say which cap it is over. The permit gives the places back when
    /// dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Rejection> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::ConnectionCap);
        }
        let counted = !self.exempt(ip);
        let ip = self.limits.client(ip);
        if counted {
            let mut per = match self.per_address.lock() {
                Ok(p) => p,
                Err(p) => p.into_inner(),
            };
            let n = per.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_address {
                drop(per);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Rejection::AddressCap);
            }
            *n += 1;
        }
        Ok(Permit {
            gate: self.clone(),
            ip,
            counted,
        })
    }

    /// Count a rejection, and log it unless its cause was logged less than
    /// `LOG_EVERY` (10 s) ago (the line then says how many were not logged).
    pub fn reject(&self, cause: Rejection, peer: Option<IpAddr>) {
        let Ok(mut r) = self.rejections.lock() else { return };
        let (last, count) = r.entry(cause).or_insert((None, 0));
        *count += 1;
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            *last = Some(now);
            let total = *count;
            drop(r);
            tracing::warn!(
                cause = cause.name(),
                peer = %peer.map(|p| p.to_string()).unwrap_or_default(),
                total,
                "connection refused or closed (logged at most every 10 s per cause)"
            );
        }
    }
}

/// One admitted connection's places in the counts.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    ip: IpAddr,
    counted: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.counted {
            let mut per = match self.gate.per_address.lock() {
                Ok(p) => p,
                Err(p) => p.into_inner(),
            };
            if let Some(n) = per.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per.remove(&self.ip);
                }
            }
        }
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A descriptor held in reserve: when `accept` fails for want of
/// descriptors, it is given up so that the waiting connection can be
/// accepted and closed at once (instead of the listener staying readable
/// and the accept loop spinning), then taken again.
#[derive(Debug)]
pub struct Reserve(Option<std::fs::File>);

impl Reserve {
    /// Take the reserve descriptor (`/dev/null`).
    pub fn new() -> Reserve {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Give the descriptor up for a moment.
    pub fn release(&mut self) {
        self.0 = None;
    }

    /// Take it again (if a descriptor is free by now).
    pub fn retake(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Reserve::new()
    }
}

/// Whether an accept error means the process (or system) has no
/// descriptor left.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::EMFILE) | Some(nix::libc::ENFILE))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gate(total: usize, per: usize, exempt: &[&str]) -> Arc<Gate> {
        let c = LimitsConfig {
            max_connections: total,
            max_connections_per_address: per,
            exempt_addresses: exempt.iter().map(|s| s.to_string()).collect(),
            ..LimitsConfig::default()
        };
        Gate::new(Limits::from_config(&c, None).unwrap())
    }

    #[test]
    fn enrolments_are_rate_limited_per_address_and_exempt_addresses_are_not() {
        let c = LimitsConfig {
            enrolments_per_second_per_address: 1,
            enrolment_burst_per_address: 3,
            exempt_addresses: vec!["10.0.0.0/8".into()],
            ..LimitsConfig::default()
        };
        let g = Gate::new(Limits::from_config(&c, None).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        // The burst, then refusals (a second would have to pass for one more).
        let allowed: Vec<bool> = (0..6).map(|_| g.allow_enrolment(a)).collect();
        assert_eq!(allowed, [true, true, true, false, false, false]);
        // The same address seen through a dual-stack listener is the same.
        assert!(!g.allow_enrolment("::ffff:192.0.2.1".parse().unwrap()));
        assert!(g.allow_enrolment("192.0.2.2".parse().unwrap()), "its own budget");
        assert!(
            (0..100).all(|_| g.allow_enrolment("10.9.8.7".parse().unwrap())),
            "exempt"
        );
        let refused = g.rejections().into_iter().find(|(c, _)| *c == Rejection::EnrolmentRate);
        assert_eq!(refused, Some((Rejection::EnrolmentRate, 4)));
        // Off when the rate is 0.
        let off = Gate::new(
            Limits::from_config(
                &LimitsConfig {
                    enrolments_per_second_per_address: 0,
                    ..LimitsConfig::default()
                },
                None,
            )
            .unwrap(),
        );
        assert!((0..1000).all(|_| off.allow_enrolment(a)));
    }

    #[test]
    fn one_address_gets_its_share_and_gives_it_back() {
        let g = gate(100, 2, &[]);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let p1 = g.admit(a).unwrap();
        let _p2 = g.admit(a).unwrap();
        assert_eq!(g.admit(a).unwrap_err(), Rejection::AddressCap);
        let _p3 = g.admit(b).unwrap();
        assert_eq!(g.open_connections(), 3);
        drop(p1);
        assert_eq!(g.open_connections(), 2);
        let _p4 = g.admit(a).unwrap();
    }

    #[test]
    fn the_global_cap_holds_for_everyone_and_exempt_addresses_skip_only_the_per_address_cap() {
        let g = gate(3, 1, &["10.0.0.0/8", "::1"]);
        let lb: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<Permit> = (0..3).map(|_| g.admit(lb).unwrap()).collect();
        assert_eq!(g.admit(lb).unwrap_err(), Rejection::ConnectionCap);
        assert_eq!(
            g.admit("192.0.2.1".parse().unwrap()).unwrap_err(),
            Rejection::ConnectionCap
        );
        drop(held);
        let _v6 = g.admit("::1".parse().unwrap()).unwrap();
        let _v6b = g.admit("::1".parse().unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:10.9.9.9".parse().unwrap();
        let _m = g.admit(mapped).unwrap();
        assert_eq!(g.open_connections(), 3);
    }

    /// One host holds a whole IPv6 /64: counted by single addresses, it
    /// had as many connections and enrolments as it cared to pick
    /// addresses for.
    #[test]
    fn ipv6_peers_share_the_caps_and_the_rate_of_their_network() {
        let g = gate(100, 2, &[]);
        let same_64: Vec<IpAddr> = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let _a = g.admit(same_64[0]).unwrap();
        let _b = g.admit(same_64[1]).unwrap();
        assert_eq!(g.admit(same_64[2]).unwrap_err(), Rejection::AddressCap);
        // Another /64 has its own share; IPv4 (and IPv4-mapped) by address.
        let _c = g.admit("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let _d = g.admit("192.0.2.7".parse().unwrap()).unwrap();
        let _e = g.admit("::ffff:192.0.2.7".parse().unwrap()).unwrap();
        assert_eq!(
            g.admit("192.0.2.7".parse().unwrap()).unwrap_err(),
            Rejection::AddressCap,
            "a mapped address is the IPv4 address it maps"
        );
        // The enrolment rate too.
        let c = LimitsConfig {
            enrolments_per_second_per_address: 1,
            enrolment_burst_per_address: 2,
            ..LimitsConfig::default()
        };
        let r = Gate::new(Limits::from_config(&c, None).unwrap());
        assert!(r.allow_enrolment(same_64[0]));
        assert!(r.allow_enrolment(same_64[1]));
        assert!(!r.allow_enrolment(same_64[2]));
        assert!(r.allow_enrolment("2001:db8:1:3::1".parse().unwrap()));
        // 128: by address; out of range refused.
        let by_address = Limits::from_config(
            &LimitsConfig {
                ipv6_prefix_length: 128,
                ..LimitsConfig::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(by_address.client(same_64[2]), same_64[2]);
        assert_eq!(
            Limits::default().client(same_64[2]),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        for bad in [0, 129] {
            let c = LimitsConfig {
                ipv6_prefix_length: bad,
                ..LimitsConfig::default()
            };
            assert!(Limits::from_config(&c, None)
                .unwrap_err()
                .contains("ipv6_prefix_length"));
        }
    }

    #[test]
    fn a_derived_cap_keeps_descriptors_in_reserve_and_bad_exemptions_are_refused() {
        let l = Limits::from_config(&LimitsConfig::default(), Some(1024)).unwrap();
        assert_eq!(l.max_connections, 1024 - 128);
        let l = Limits::from_config(&LimitsConfig::default(), Some(64)).unwrap();
        assert_eq!(l.max_connections, MIN_CONNECTIONS);
        let bad = LimitsConfig {
            exempt_addresses: vec!["lb.example.net".into()],
            ..LimitsConfig::default()
        };
        assert!(Limits::from_config(&bad, None).unwrap_err().contains("lb.example.net"));
    }

    #[test]
    fn rejections_are_counted_per_cause() {
        let g = gate(1, 1, &[]);
        for _ in 0..5 {
            g.reject(Rejection::AddressCap, None);
        }
        g.reject(Rejection::BodyTimeout, None);
        let mut r = g.rejections();
        r.sort_by_key(|(c, _)| c.name());
        assert_eq!(r, vec![(Rejection::BodyTimeout, 1), (Rejection::AddressCap, 5)]);
    }
}
