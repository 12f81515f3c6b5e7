//! A load generator for SCEP servers: N concurrent clients, each with
//! pre-generated RSA keys and CSRs, doing full PKCSReq → CertRep exchanges.
//! Peers are compared by running it against each in the same session.

use crate::scep::{ClientError, Result, ScepSession};
use der::Encode;
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
        let subject =
            Name::from_str(&format!("CN={prefix}-{i}")).map_err(|e| ClientError::Unexpected(e.to_string()))?;
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
    let prepared = Arc::new(prepared);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (session, prepared, next) = (session.clone(), prepared.clone(), next.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut failed = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = prepared.get(i) else { break };
                    let t = Instant::now();
                    match one(&session, p) {
                        Ok(true) => lat.push(t.elapsed()),
                        _ => failed += 1,
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failed = 0;
    for h in handles {
        let (l, f) = h
            .join()
            .map_err(|_| ClientError::Unexpected("a bench thread panicked".into()))?;
        lat.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed();
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
