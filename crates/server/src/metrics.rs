//! The one Prometheus registry of `mef serve`, served at `/metrics` on the
//! admin listener ([`crate::http::admin`]) in the Prometheus text format
//! (version 0.0.4, what `promtool check metrics` reads).
//!
//! | metric | type | labels | counted where |
//! |---|---|---|---|
//! | `mef_requests_total` | counter | protocol, operation, outcome | [`crate::http`], one per request, as logged |
//! | `mef_request_duration_seconds` | histogram | protocol, operation | same, head read to response |
//! | `mef_open_connections` | gauge | | [`Gate::open_connections`] at scrape time |
//! | `mef_connection_rejections_total` | counter | cause | [`Gate::rejections`] at scrape time |
//! | `mef_certificates_issued_total` | counter | protocol | the services, once the certificate is recorded |
//! | `mef_challenges_consumed_total` | counter | protocol | the services, once the challenge's use is recorded |
//! | `mef_enrolment_tokens_consumed_total` | counter | | the MEF, once the Enrolment Key is recorded |
//! | `mef_db_commit_duration_seconds` | histogram | backend | the storage ([`CommitObserver`]) |
//! | `mef_private_key_operation_duration_seconds` | histogram | key, operation | [`timed_key`] around the CA and RA keys |
//! | `mef_proxy_events_total` | counter | event | the SCEP proxy's relay ([`crate::proxy`]): `upstream-request`, `issued`, `upstream-refused`, `not-forwarded`, `polling-window-exceeded`, `upstream-unreachable`, `upstream-crl` (the upstream CA's CRL fetched and checked), `upstream-crl-failed`, `upstream-revoked` (a relayed certificate revoked upstream, revoked here too), `renewed-revoked`, `pass-panicked` (a pass of the relay panicked; the relay goes on with the next), `hold-refused` (a request refused before it was held: a cap on pending transactions), `record-altered` (a pending request whose stored record does not open: refused, not forwarded) |
//! | `mef_proxy_last_pass_timestamp_seconds` | gauge | | the SCEP proxy's relay, when a pass completed (Unix seconds; 0: none yet, or not a proxy) |
//!
//! Every label value is one of a fixed set (unknown operations are
//! `other`), so nothing a client sends can grow the registry.

use crate::http::limits::{Gate, Rejection};
use crate::storage::{Backend, CommitObserver};
use enrolkit_keys::{Decryptor, KeyError, KeyKind, PrivateKey, SignatureAlgorithm, Signer};
use enrolkit_scep::{FailInfo, PkiStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use spki::SubjectPublicKeyInfoOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The `Content-Type` of what [`Metrics::encode`] produces.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The front end a request was served by (the `protocol` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SCEP on the plain-HTTP listener.
    Scep,
    /// EST on the TLS listeners.
    Est,
    /// The oneM2M MEF (Enrolment Exchange, Key Retrieval) on the TLS listeners.
    Rspf,
    /// CMP (`/.well-known/cmp`) on the plain-HTTP listener.
    Cmp,
    /// The OCSP responder.
    Ocsp,
    /// `/crl`.
    Crl,
    /// A path none of them serves (404).
    Other,
}

impl Protocol {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Scep => "scep",
            Protocol::Est => "est",
            Protocol::Rspf => "rspf",
            Protocol::Cmp => "cmp",
            Protocol::Ocsp => "ocsp",
            Protocol::Crl => "crl",
            Protocol::Other => "other",
        }
    }
}

/// Which of the server's private keys worked (the `key` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The issuing CA's key: certificates, CRLs, OCSP responses.
    Ca,
    /// The SCEP RA's key: decrypting requests, signing replies.
    Ra,
}

impl KeyRole {
    fn label(self) -> &'static str {
        match self {
            KeyRole::Ca => "ca",
            KeyRole::Ra => "ra",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    protocol: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    protocol: &'static str,
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KeyLabels {
    key: &'static str,
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CauseLabel {
    cause: &'static str,
}

/// A histogram maker a [`Family`] can hold.
type MakeHistogram = fn() -> Histogram;

/// Request latency: 1 ms to about 16 s, doubling.
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Commits and key operations: 100 µs to about 3 s, doubling.
fn fast_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The registry and every metric in it; one per `mef serve`, shared as an
/// `Arc` by the listeners, the services, the storage and the keys.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, MakeHistogram>,
    issued: Family<ProtocolLabel, Counter>,
    challenges: Family<ProtocolLabel, Counter>,
    tokens: Counter,
    commits: Family<BackendLabel, Histogram, MakeHistogram>,
    key_operations: Family<KeyLabels, Histogram, MakeHistogram>,
    proxy: Family<ProxyLabel, Counter>,
    proxy_last_pass: Gauge,
    cmp_unconfirmed: Counter,
}

/// The `event` label of `mef_proxy_events_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabel {
    event: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero, not yet watching a listener gate.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(request_histogram as MakeHistogram),
            issued: Family::default(),
            challenges: Family::default(),
            tokens: Counter::default(),
            commits: Family::new_with_constructor(fast_histogram as MakeHistogram),
            key_operations: Family::new_with_constructor(fast_histogram as MakeHistogram),
            proxy: Family::default(),
            proxy_last_pass: Gauge::default(),
            cmp_unconfirmed: Counter::default(),
        };
        let r = &mut m.registry;
        r.register(
            "mef_requests",
            "Requests answered, by protocol, operation and outcome (HTTP status class, or the SCEP pkiStatus of a PKIOperation)",
            m.requests.clone(),
        );
        r.register_with_unit(
            "mef_request_duration",
            "Time from a request's head being read to its response, by protocol and operation",
            Unit::Seconds,
            m.latency.clone(),
        );
        r.register(
            "mef_certificates_issued",
            "Certificates issued and recorded, by protocol",
            m.issued.clone(),
        );
        r.register(
            "mef_challenges_consumed",
            "One-time challenge passwords consumed by an enrolment, by protocol",
            m.challenges.clone(),
        );
        r.register(
            "mef_enrolment_tokens_consumed",
            "oneM2M Enrolment Tokens consumed by an Enrolment Exchange",
            m.tokens.clone(),
        );
        r.register_with_unit(
            "mef_db_commit_duration",
            "Time the database took to commit a write transaction (one group commit for SQLite), by backend",
            Unit::Seconds,
            m.commits.clone(),
        );
        r.register_with_unit(
            "mef_private_key_operation_duration",
            "Time of one private-key operation, by key (ca, ra) and operation (sign, decrypt)",
            Unit::Seconds,
            m.key_operations.clone(),
        );
        r.register(
            "mef_proxy_events",
            "SCEP proxy: requests sent upstream, and transactions issued, refused upstream, not forwarded, or given up when their polling window ran out",
            m.proxy.clone(),
        );
        r.register_with_unit(
            "mef_proxy_last_pass_timestamp",
            "SCEP proxy: when the relay last completed a pass over the pending transactions (Unix time; 0: none yet)",
            Unit::Seconds,
            m.proxy_last_pass.clone(),
        );
        r.register(
            "mef_cmp_unconfirmed_revoked",
            "CMP certificates revoked as never accepted: no certConf within confirm_wait, or never delivered",
            m.cmp_unconfirmed.clone(),
        );
        m
    }

    /// A CMP certificate was revoked for want of its certConf.
    pub fn cmp_unconfirmed_revoked(&self) {
        self.cmp_unconfirmed.inc();
    }

    /// The SCEP proxy's relay completed a pass at `unix` (seconds).
    pub fn proxy_pass_completed(&self, unix: i64) {
        self.proxy_last_pass.set(unix);
    }

    /// The SCEP proxy's relay saw `event` (a fixed label value, see the module table).
    pub fn proxy_event(&self, event: &'static str) {
        self.proxy.get_or_create(&ProxyLabel { event }).inc();
    }

    /// Also export the connections `gate` holds and the ones it turned away
    /// (read from it at each scrape: the gate stays their one count).
    pub fn with_gate(mut self, gate: Arc<Gate>) -> Metrics {
        self.registry.register_collector(Box::new(GateCollector(gate)));
        self
    }

    /// One request answered: `operation` and `outcome` are label values
    /// from [`scep_operation`], [`est_operation`], [`status_class`], ….
    pub fn request(&self, protocol: Protocol, operation: &'static str, outcome: &'static str, took: Duration) {
        let protocol = protocol.label();
        self.requests
            .get_or_create(&RequestLabels {
                protocol,
                operation,
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { protocol, operation })
            .observe(took.as_secs_f64());
    }

    /// A certificate was issued and recorded.
    pub fn certificate_issued(&self, protocol: Protocol) {
        self.issued
            .get_or_create(&ProtocolLabel {
                protocol: protocol.label(),
            })
            .inc();
    }

    /// A one-time challenge password was consumed (its use recorded).
    pub fn challenge_consumed(&self, protocol: Protocol) {
        self.challenges
            .get_or_create(&ProtocolLabel {
                protocol: protocol.label(),
            })
            .inc();
    }

    /// An Enrolment Token was consumed (its Enrolment Key recorded).
    pub fn enrolment_token_consumed(&self) {
        self.tokens.inc();
    }

    /// A private-key operation of `key` took `took`.
    fn key_operation(&self, key: KeyRole, operation: &'static str, took: Duration) {
        self.key_operations
            .get_or_create(&KeyLabels {
                key: key.label(),
                operation,
            })
            .observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, backend: Backend, took: Duration, _ok: bool) {
        self.commits
            .get_or_create(&BackendLabel {
                backend: backend.label(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The gate's counts, read at each scrape.
#[derive(Debug)]
struct GateCollector(Arc<Gate>);

impl Collector for GateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let open = ConstGauge::new(i64::try_from(self.0.open_connections()).unwrap_or(i64::MAX));
        open.encode(encoder.encode_descriptor(
            "mef_open_connections",
            "Connections held now on the SCEP and EST listeners (the admin listener aside)",
            None,
            MetricType::Gauge,
        )?)?;
        let counted = self.0.rejections();
        let mut family = encoder.encode_descriptor(
            "mef_connection_rejections",
            "Connections refused or closed by the listener limits, by cause",
            None,
            MetricType::Counter,
        )?;
        // Every cause, at zero too: a rate() needs the series before the first one.
        for cause in Rejection::ALL {
            let n = counted.iter().find(|(c, _)| *c == cause).map_or(0, |(_, n)| *n);
            ConstCounter::new(n).encode(family.encode_family(&CauseLabel { cause: cause.label() })?)?;
        }
        Ok(())
    }
}

/// `key` with each signature and decryption timed into `metrics` as
/// `role`: the CA and RA keys of `mef serve`, wherever they are used.
pub fn timed_key(key: Box<dyn PrivateKey>, role: KeyRole, metrics: Arc<Metrics>) -> Box<dyn PrivateKey> {
    Box::new(TimedKey {
        inner: key,
        role,
        metrics,
    })
}

/// A private key whose operations are timed ([`timed_key`]).
struct TimedKey {
    inner: Box<dyn PrivateKey>,
    role: KeyRole,
    metrics: Arc<Metrics>,
}

impl Signer for TimedKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        Signer::public_key(self.inner.as_signer())
    }
    fn kind(&self) -> KeyKind {
        self.inner.kind()
    }
    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let started = Instant::now();
        let r = self.inner.sign(alg, message);
        self.metrics.key_operation(self.role, "sign", started.elapsed());
        r
    }
    fn supports(&self, alg: SignatureAlgorithm) -> bool {
        self.inner.supports(alg)
    }
}

impl Decryptor for TimedKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        Decryptor::public_key(self.inner.as_decryptor())
    }
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let started = Instant::now();
        let r = self.inner.decrypt_pkcs1v15(ciphertext);
        self.metrics.key_operation(self.role, "decrypt", started.elapsed());
        r
    }
}

/// An HTTP status as an `outcome` label: `2xx`, `4xx`, ….
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// A SCEP operation (as logged) as an `operation` label; `invalid` when
/// the query named none.
pub fn scep_operation(logged: &str) -> &'static str {
    match enrolkit_scep::transport::Operation::parse(logged) {
        Ok(op) => op.as_str(),
        Err(_) => "invalid",
    }
}

/// The `outcome` of a SCEP request: the pkiStatus of a PKIOperation's
/// reply (`success`, `pending`, `failure:<failInfo>`), else the status class.
pub fn scep_outcome(status: u16, pki_status: Option<PkiStatus>, fail_info: Option<FailInfo>) -> &'static str {
    match (status, pki_status) {
        (200, Some(PkiStatus::Success)) => "success",
        (200, Some(PkiStatus::Pending)) => "pending",
        (200, Some(PkiStatus::Failure)) => match fail_info {
            Some(FailInfo::BadAlg) => "failure:badAlg",
            Some(FailInfo::BadMessageCheck) => "failure:badMessageCheck",
            Some(FailInfo::BadRequest) => "failure:badRequest",
            Some(FailInfo::BadTime) => "failure:badTime",
            Some(FailInfo::BadCertId) => "failure:badCertID",
            None => "failure",
        },
        _ => status_class(status),
    }
}

/// An EST operation (as logged) as an `operation` label; `other` for a
/// path that names none.
pub fn est_operation(logged: &str) -> &'static str {
    enrolkit_est::Operation::ALL
        .iter()
        .find(|op| op.name() == logged)
        .map_or("other", |op| op.name())
}

/// An RSPF operation (as logged) as an `operation` label.
pub fn rspf_operation(logged: &'static str) -> &'static str {
    match logged {
        "enrolment" | "completion" | "fetch" => logged,
        _ => "other",
    }
}

/// An OCSP request's method as an `operation` label (`GET`, `POST`).
pub fn ocsp_operation(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use crate::config::LimitsConfig;
    use crate::http::limits::Limits;
    use enrolkit_keys::{KeySpec, SoftwareKey};

    /// The value of the sample `name{labels}` (labels as printed), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn requests_are_counted_by_protocol_operation_and_outcome_with_their_latency() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request(Protocol::Scep, "GetCACaps", "2xx", Duration::from_millis(2));
        }
        m.request(
            Protocol::Scep,
            "PKIOperation",
            "failure:badRequest",
            Duration::from_millis(40),
        );
        m.request(Protocol::Est, "simpleenroll", "2xx", Duration::from_secs(20));
        let t = m.encode().unwrap();
        assert_eq!(
            sample(
                &t,
                r#"mef_requests_total{protocol="scep",operation="GetCACaps",outcome="2xx"}"#
            ),
            Some(3.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_requests_total{protocol="scep",operation="PKIOperation",outcome="failure:badRequest"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_request_duration_seconds_count{protocol="scep",operation="GetCACaps"}"#
            ),
            Some(3.0)
        );
        // 2 ms is exactly a bound, and buckets are "less than or equal".
        assert_eq!(
            sample(
                &t,
                r#"mef_request_duration_seconds_bucket{protocol="scep",operation="GetCACaps",le="0.002"}"#
            ),
            Some(3.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_request_duration_seconds_bucket{protocol="scep",operation="GetCACaps",le="0.001"}"#
            ),
            Some(0.0)
        );
        // 20 s is beyond the last bucket: only +Inf holds it.
        assert_eq!(
            sample(
                &t,
                r#"mef_request_duration_seconds_bucket{protocol="est",operation="simpleenroll",le="16.384"}"#
            ),
            Some(0.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_request_duration_seconds_bucket{protocol="est",operation="simpleenroll",le="+Inf"}"#
            ),
            Some(1.0)
        );
        assert!(t.contains("# TYPE mef_requests_total counter"), "{t}");
        assert!(t.contains("# TYPE mef_request_duration_seconds histogram"), "{t}");
    }

    #[test]
    fn issuance_challenges_tokens_and_commits_are_counted() {
        let m = Arc::new(Metrics::new());
        m.certificate_issued(Protocol::Scep);
        m.certificate_issued(Protocol::Est);
        m.certificate_issued(Protocol::Est);
        m.challenge_consumed(Protocol::Est);
        m.enrolment_token_consumed();
        let observer: Arc<dyn CommitObserver> = m.clone();
        observer.committed(Backend::Sqlite, Duration::from_micros(150), true);
        observer.committed(Backend::Sqlite, Duration::from_millis(5), true);
        let t = m.encode().unwrap();
        assert_eq!(
            sample(&t, r#"mef_certificates_issued_total{protocol="est"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&t, r#"mef_certificates_issued_total{protocol="scep"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&t, r#"mef_challenges_consumed_total{protocol="est"}"#),
            Some(1.0)
        );
        assert_eq!(sample(&t, r#"mef_challenges_consumed_total{protocol="scep"}"#), None);
        assert_eq!(sample(&t, "mef_enrolment_tokens_consumed_total"), Some(1.0));
        assert_eq!(
            sample(&t, r#"mef_db_commit_duration_seconds_count{backend="sqlite"}"#),
            Some(2.0)
        );
        let sum = sample(&t, r#"mef_db_commit_duration_seconds_sum{backend="sqlite"}"#).unwrap();
        assert!((sum - 0.00515).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn the_gate_is_read_at_each_scrape_with_every_cause_present() {
        let c = LimitsConfig {
            max_connections: 10,
            ..LimitsConfig::default()
        };
        let gate = Gate::new(Limits::from_config(&c, None).unwrap());
        let m = Metrics::new().with_gate(gate.clone());
        let t = m.encode().unwrap();
        assert_eq!(sample(&t, "mef_open_connections"), Some(0.0), "{t}");
        for cause in Rejection::ALL {
            let series = format!(r#"mef_connection_rejections_total{{cause="{}"}}"#, cause.label());
            assert_eq!(sample(&t, &series), Some(0.0), "{series} in {t}");
        }
        let _a = gate.admit("127.0.0.2".parse().unwrap()).unwrap();
        let _b = gate.admit("127.0.0.3".parse().unwrap()).unwrap();
        gate.reject(Rejection::BodyTimeout, None);
        gate.reject(Rejection::BodyTimeout, None);
        gate.reject(Rejection::Malformed, None);
        let t = m.encode().unwrap();
        assert_eq!(sample(&t, "mef_open_connections"), Some(2.0));
        assert_eq!(
            sample(&t, r#"mef_connection_rejections_total{cause="body_timeout"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&t, r#"mef_connection_rejections_total{cause="malformed_request"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&t, r#"mef_connection_rejections_total{cause="header_timeout"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn a_timed_key_still_signs_and_decrypts_as_the_key_and_is_timed() {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let m = Arc::new(Metrics::new());
        let key = timed_key(
            Box::new(SoftwareKey::generate(KeySpec::Rsa2048).unwrap()),
            KeyRole::Ra,
            m.clone(),
        );
        let sig = key.sign(SignatureAlgorithm::RsaPkcs1Sha256, b"message").unwrap();
        // The subjectPublicKey BIT STRING holds the RSAPublicKey the verifier takes.
        let bits = key.spki().subject_public_key.raw_bytes();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, bits)
            .verify(b"message", &sig)
            .unwrap();
        // A decryption that fails (not a PKCS#1 block) is timed too.
        assert!(key.decrypt_pkcs1v15(&[0u8; 256]).is_err());
        let t = m.encode().unwrap();
        assert_eq!(
            sample(
                &t,
                r#"mef_private_key_operation_duration_seconds_count{key="ra",operation="sign"}"#
            ),
            Some(1.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_private_key_operation_duration_seconds_count{key="ra",operation="decrypt"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &t,
                r#"mef_private_key_operation_duration_seconds_count{key="ca",operation="sign"}"#
            ),
            None
        );
    }

    #[test]
    fn label_values_come_from_fixed_sets() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(99), "other");
        assert_eq!(scep_operation("GetCACaps"), "GetCACaps");
        assert_eq!(scep_operation("pkioperation"), "PKIOperation");
        assert_eq!(scep_operation(""), "invalid");
        assert_eq!(scep_operation("GetEverything"), "invalid");
        assert_eq!(est_operation("simpleenroll"), "simpleenroll");
        assert_eq!(est_operation("/.well-known/est/../../etc/passwd"), "other");
        assert_eq!(rspf_operation("fetch"), "fetch");
        assert_eq!(rspf_operation(""), "other");
        assert_eq!(ocsp_operation("POST"), "POST");
        assert_eq!(ocsp_operation("DELETE"), "other");
        assert_eq!(scep_outcome(200, Some(PkiStatus::Success), None), "success");
        assert_eq!(scep_outcome(200, Some(PkiStatus::Pending), None), "pending");
        assert_eq!(
            scep_outcome(200, Some(PkiStatus::Failure), Some(FailInfo::BadMessageCheck)),
            "failure:badMessageCheck"
        );
        // A reply that could not be built is the 500 it was sent as.
        assert_eq!(scep_outcome(500, Some(PkiStatus::Success), None), "5xx");
        assert_eq!(scep_outcome(200, None, None), "2xx");
    }
}
