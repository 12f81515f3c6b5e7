//! Load generators: N concurrent clients doing full enrolments against a
//! SCEP server (PKCSReq → CertRep, pre-generated RSA keys) or an EST server
//! (`/simpleenroll` over TLS, pre-generated P-256 keys). Keys are made before
//! the clock starts; peers are compared by running the same generator
//! against each in one session.

use crate::est::{EnrollReply, EstClient};
use crate::scep::{ClientError, Result, ScepSession};
use der::Encode;
use enrolkit_est::{CsrAttrs, CsrRequest, Operation};
use enrolkit_keys::{DigestAlgorithm, KeySpec, Signer, SoftwareKey};
use enrolkit_scep::{
    build_csr, build_request, open_cert_rep, self_signed_certificate, CertRep, Csr, CsrParams, RequestBody, Requester,
    ScepError, TransactionId,
};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;

/// One prepared request: key, self-signed certificate and CSR.
struct Prepared {
    key: SoftwareKey,
    cert: Certificate,
    csr: Csr,
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Enrolments that returned SUCCESS.
    pub ok: usize,
    /// Anything else.
    pub failed: usize,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl BenchReport {
    /// Successful enrolments per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One `key=value` line (what `enrol … bench` prints and the scripts parse).
    pub fn summary(&self, url: &str, clients: usize) -> String {
        format!(
            "url={url} clients={clients} ok={} failed={} elapsed={:.2}s throughput={:.1}/s p50={:.1}ms p99={:.1}ms",
            self.ok,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0
        )
    }
}

/// `CN=<prefix>-<i>`: unique per enrolment (some servers refuse duplicate DNs).
fn bench_subject(prefix: &str, i: usize) -> Result<Name> {
    Name::from_str(&format!("CN={prefix}-{i}")).map_err(|e| ClientError::Unexpected(e.to_string()))
}

/// Run `total` enrolments over `clients` threads with the shared `challenge`.
/// Subjects are `CN=<prefix>-<n>` (unique: some servers refuse duplicate DNs).
pub fn run(
    session: &Arc<ScepSession>,
    challenge: &str,
    clients: usize,
    total: usize,
    prefix: &str,
) -> Result<BenchReport> {
    // Preparation (key generation) is not measured.
    let mut prepared = Vec::with_capacity(total);
    for i in 0..total {
        let key = SoftwareKey::generate(KeySpec::Rsa2048)?;
        let subject = bench_subject(prefix, i)?;
        let cert = self_signed_certificate(
            &key,
            &subject,
            DigestAlgorithm::Sha256,
            SystemTime::now() - Duration::from_secs(60),
            Duration::from_secs(86400),
            &mut rand_core::OsRng,
        )?;
        let csr = Csr::parse(&build_csr(
            &key,
            &CsrParams {
                subject,
                challenge_password: Some(challenge),
                dns_names: vec![],
                digest: session.digest,
            },
        )?)?;
        prepared.push(Prepared { key, cert, csr });
    }
    drive(&prepared, clients, || Ok(session.clone()), |session, p| one(session, p))
}

/// Run every job over `clients` threads, each with its own `worker()`;
/// `job` says whether the enrolment succeeded. Measures wall time and the
/// latency of each successful job.
fn drive<T: Sync, W: Send>(
    jobs: &[T],
    clients: usize,
    worker: impl Fn() -> Result<W> + Sync,
    job: impl Fn(&W, &T) -> Result<bool> + Sync,
) -> Result<BenchReport> {
    let next = AtomicUsize::new(0);
    // Workers (connections, runtimes) are set up before the clock starts.
    let workers = (0..clients.max(1)).map(|_| worker()).collect::<Result<Vec<W>>>()?;
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|w| {
                let (next, job) = (&next, &job);
                scope.spawn(move || {
                    let mut lat = Vec::new();
                    let mut failed = 0usize;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { break };
                        let t = Instant::now();
                        match job(&w, j) {
                            Ok(true) => lat.push(t.elapsed()),
                            _ => failed += 1,
                        }
                    }
                    (lat, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let elapsed = started.elapsed();
    let mut lat = Vec::new();
    let mut failed = 0;
    for r in results {
        let (l, f) = r.map_err(|_| ClientError::Unexpected("a bench thread panicked".into()))?;
        lat.extend(l);
        failed += f;
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Ok(BenchReport {
        ok: lat.len(),
        failed,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

/// Run `total` EST `/simpleenroll` requests over `clients` threads, each
/// with its own client from `client()` (so each has its own TLS credentials
/// and runtime); one TLS connection per enrolment, as the client always
/// does. CSRs satisfy `attrs` (including linking, built per connection);
/// subjects are `CN=<prefix>-<n>`.
pub fn run_est(
    client: impl Fn() -> Result<EstClient> + Sync,
    attrs: &CsrAttrs,
    clients: usize,
    total: usize,
    prefix: &str,
) -> Result<BenchReport> {
    let mut prepared = Vec::with_capacity(total);
    for i in 0..total {
        let key = SoftwareKey::generate(KeySpec::EcP256)?;
        let request = CsrRequest {
            subject: bench_subject(prefix, i)?,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            ekus: Vec::new(),
            challenge_password: None,
            digest: DigestAlgorithm::Sha256,
        };
        prepared.push((key, request));
    }
    drive(&prepared, clients, &client, |c: &EstClient, (key, request)| {
        let reply = c.enroll(Operation::SimpleEnroll, &mut |binding| {
            let mut r = request.clone();
            r.satisfy(attrs, binding)?;
            Ok(enrolkit_est::build_csr(key, &r)?)
        })?;
        Ok(matches!(reply, EnrollReply::Issued(_)))
    })
}

fn one(session: &ScepSession, p: &Prepared) -> Result<bool> {
    let requester = Requester {
        signer: &p.key,
        decryptor: &p.key,
        certificate: &p.cert,
    };
    let txid = TransactionId::from_public_key(&p.key.public_key().to_der().map_err(ScepError::from)?);
    let (der_bytes, sent) = build_request(
        &requester,
        session.ca.encryption_certificate(),
        &RequestBody::PkcsReq(p.csr.clone()),
        &txid,
        session.cipher,
        session.digest,
        &mut rand_core::OsRng,
    )?;
    let reply = session.client.pki_operation(&session.caps, &der_bytes)?;
    Ok(matches!(
        open_cert_rep(&reply, &sent, &session.ca.signers(), &requester)?,
        CertRep::Success { .. }
    ))
}
