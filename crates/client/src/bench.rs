//! Load generators: N concurrent clients doing full enrolments against a
//! SCEP server (PKCSReq → CertRep, pre-generated RSA keys), an EST server
//! (`/simpleenroll` over TLS, pre-generated P-256 keys) or a CMP server (ir
//! signed by a vendor certificate → ip → certConf → pkiConf, pre-generated
//! P-256 keys and pre-built irs). Keys are made before
//! the clock starts; peers are compared by running the same generator
//! against each in one session.
//!
//! The SCEP generator keeps its own cryptography out of the measured window,
//! so that it takes as little as it can of the CPU the server would use
//! (they share the machine): every PKCSReq is built (CSR signed, envelope
//! encrypted to the RA, pkiMessage signed) before the clock starts; while it
//! runs, clients only send requests and read replies; after it stops, every
//! reply is opened and checked in full — the CertRep's signature by the
//! server's RA or CA, transactionID and recipientNonce, status SUCCESS, the
//! envelope decrypted with the requester's key, a certificate for the
//! requested key signed by the CA. A reply that fails any check counts as a
//! failed enrolment, exactly as if the exchange had failed.

use crate::est::{EnrollReply, EstClient};
use crate::scep::{ClientError, Result, ScepSession};
use der::Encode;
use enrolkit_est::{CsrAttrs, Operation};
use enrolkit_keys::{DigestAlgorithm, KeySpec, SignatureAlgorithm, Signer, SoftwareKey};
use enrolkit_pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::{
    build_request, open_cert_rep, self_signed_certificate, CertRep, RequestBody, Requester, ScepError, SentRequest,
    TransactionId,
};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;

/// One prepared SCEP enrolment: the key, the self-signed certificate the
/// request is signed with (and the reply encrypted to), and the PKCSReq
/// pkiMessage, complete, with what is needed to match its reply.
struct Prepared {
    key: SoftwareKey,
    cert: Certificate,
    message: Vec<u8>,
    sent: SentRequest,
}

/// Results of a run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Enrolments that succeeded: for SCEP, whose reply passed every check.
    pub ok: usize,
    /// Anything else.
    pub failed: usize,
    /// Wall time of the measured phase.
    pub elapsed: Duration,
    /// Median latency of the successful enrolments' exchanges.
    pub p50: Duration,
    /// 99th percentile latency of the successful enrolments' exchanges.
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
/// Requests are built before the clock starts and replies checked after it
/// stops (see the module documentation); the latencies are those of the
/// exchanges whose replies passed every check.
pub fn run(
    session: &Arc<ScepSession>,
    challenge: &str,
    clients: usize,
    total: usize,
    prefix: &str,
) -> Result<BenchReport> {
    // Not measured: keys, certificates, CSRs and the signed, encrypted pkiMessages.
    let prepared = in_parallel(total, |i| prepare(session, challenge, prefix, i))?;
    let (elapsed, replies) = drive(
        &prepared,
        clients,
        || Ok(session.clone()),
        |session, p| session.client.pki_operation(&session.caps, &p.message),
    )?;
    // Not measured: open and check every reply.
    let signers = session.ca.signers();
    let checked = in_parallel(total, |i| {
        Ok(match (prepared.get(i), replies.get(i)) {
            (Some(p), Some(Some((latency, reply)))) => check(session, &signers, p, reply).then_some(*latency),
            _ => None,
        })
    })?;
    Ok(report(elapsed, checked))
}

/// Key, self-signed certificate, CSR and PKCSReq for enrolment `i`.
fn prepare(session: &ScepSession, challenge: &str, prefix: &str, i: usize) -> Result<Prepared> {
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
    let der = RequestParams {
        digest: session.digest,
        ..RequestParams::new(subject)
    }
    .with_challenge_password(Some(challenge))
    .build(&key)
    .map_err(ScepError::from)?;
    let csr = CertificationRequest::parse(&der).map_err(ScepError::from)?;
    let txid = TransactionId::from_public_key(&key.public_key().to_der().map_err(ScepError::from)?);
    let requester = Requester {
        signer: &key,
        decryptor: &key,
        certificate: &cert,
    };
    let (message, sent) = build_request(
        &requester,
        session.ca.encryption_certificate(),
        &RequestBody::PkcsReq(csr),
        &txid,
        session.cipher,
        session.digest,
        &mut rand_core::OsRng,
    )?;
    Ok(Prepared {
        key,
        cert,
        message,
        sent,
    })
}

/// Whether `reply` completes the enrolment `p`: a CertRep signed by one of
/// `signers` answering this request, SUCCESS, decrypted with our key, with a
/// certificate for our key signed by the CA.
fn check(session: &ScepSession, signers: &[Certificate], p: &Prepared, reply: &[u8]) -> bool {
    let requester = Requester {
        signer: &p.key,
        decryptor: &p.key,
        certificate: &p.cert,
    };
    let Ok(rep @ CertRep::Success { .. }) = open_cert_rep(reply, &p.sent, signers, &requester) else {
        return false;
    };
    rep.certificate_for(p.key.public_key())
        .is_some_and(|c| issued_by(c, &session.ca.ca))
}

/// Whether `ca`'s key made the signature on `cert`.
fn issued_by(cert: &Certificate, ca: &Certificate) -> bool {
    let (Ok(tbs), Ok(spki)) = (
        cert.tbs_certificate.to_der(),
        ca.tbs_certificate.subject_public_key_info.to_der(),
    ) else {
        return false;
    };
    let Ok(spki) = <spki::SubjectPublicKeyInfoRef<'_> as der::Decode>::from_der(&spki) else {
        return false;
    };
    let (Some(alg), Some(sig)) = (
        SignatureAlgorithm::from_oids(&cert.signature_algorithm.oid, None),
        cert.signature.as_bytes(),
    ) else {
        return false;
    };
    cert.tbs_certificate.issuer == ca.tbs_certificate.subject && enrolkit_keys::verify(&spki, alg, &tbs, sig).is_ok()
}

/// `f(0..n)` over as many threads as there are cores (unmeasured work), in order.
fn in_parallel<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let chunk = n.div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| scope.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Result<Vec<T>>>()))
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| ClientError::Unexpected("a bench thread panicked".into()))??,
            );
        }
        Ok(all)
    })
}

/// A job's latency and result; `None` when the job failed.
type Timed<R> = Option<(Duration, R)>;

/// Run every job over `clients` threads, each with its own `worker()`.
/// Measures the wall time of the whole and the latency of each job; returns
/// them with each job's result, in job order.
fn drive<T: Sync, W: Send, R: Send>(
    jobs: &[T],
    clients: usize,
    worker: impl Fn() -> Result<W> + Sync,
    job: impl Fn(&W, &T) -> Result<R> + Sync,
) -> Result<(Duration, Vec<Timed<R>>)> {
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
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { break };
                        let t = Instant::now();
                        let r = job(&w, j).ok();
                        done.push((i, r.map(|r| (t.elapsed(), r))));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let elapsed = started.elapsed();
    let mut out: Vec<Timed<R>> = std::iter::repeat_with(|| None).take(jobs.len()).collect();
    for r in results {
        for (i, x) in r.map_err(|_| ClientError::Unexpected("a bench thread panicked".into()))? {
            if let Some(slot) = out.get_mut(i) {
                *slot = x;
            }
        }
    }
    Ok((elapsed, out))
}

/// The report for a run of `elapsed` whose enrolments succeeded with these
/// latencies (`None`: failed).
fn report(elapsed: Duration, outcomes: Vec<Option<Duration>>) -> BenchReport {
    let failed = outcomes.iter().filter(|o| o.is_none()).count();
    let mut lat: Vec<Duration> = outcomes.into_iter().flatten().collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    BenchReport {
        ok: lat.len(),
        failed,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// Run `total` EST `/simpleenroll` requests over `clients` threads, each
/// with its own client from `client()` (so each has its own TLS credentials
/// and runtime); one TLS connection per enrolment, as the client always
/// does. CSRs satisfy `attrs` (including linking, built per connection);
/// subjects are `CN=<prefix>-<n>`, or all `subject` when given (a server
/// authorising a client certificate for its own names only, as mef does).
pub fn run_est(
    client: impl Fn() -> Result<EstClient> + Sync,
    attrs: &CsrAttrs,
    clients: usize,
    total: usize,
    prefix: &str,
    subject: Option<&Name>,
) -> Result<BenchReport> {
    let mut prepared = Vec::with_capacity(total);
    for i in 0..total {
        let key = SoftwareKey::generate(KeySpec::EcP256)?;
        let request = RequestParams::new(match subject {
            Some(s) => s.clone(),
            None => bench_subject(prefix, i)?,
        });
        prepared.push((key, request));
    }
    let (elapsed, results) = drive(&prepared, clients, &client, |c: &EstClient, (key, request)| {
        let reply = c.enroll(Operation::SimpleEnroll, &mut |binding| {
            let mut r = request.clone();
            enrolkit_est::satisfy(&mut r, attrs, binding)?;
            Ok(r.build(key).map_err(enrolkit_est::EstError::from)?)
        })?;
        Ok(matches!(reply, EnrollReply::Issued(_)))
    })?;
    let outcomes = results
        .into_iter()
        .map(|r| r.and_then(|(latency, issued)| issued.then_some(latency)))
        .collect();
    Ok(report(elapsed, outcomes))
}

/// What a CMP load run sends: irs signed by vendor certificates (3GPP TS
/// 33.310 §9, which needs no per-enrolment secret), for `subject`. The
/// enrolments are spread over the devices in turn: a server bounds the
/// transactions one credential holds open (mef: 4), as one base station
/// never runs many at once.
pub struct CmpBench<'a> {
    /// The CMP URL.
    pub url: &'a str,
    /// Vendor keys and certificates, one per simulated base station.
    pub devices: &'a [(SoftwareKey, Certificate)],
    /// What the server's protection certificate and the issued certificates must chain to.
    pub anchors: &'a [Certificate],
    /// The requested subject.
    pub subject: &'a Name,
}

/// Run `total` CMP enrolments over `clients` threads: each is an ir (built
/// and signed before the clock starts), the ip opened (its signature
/// verified: the certConf needs its certificate), a certConf signed and
/// sent, the pkiConf opened. After the clock stops, each answer's signer is
/// checked against the anchors ([`crate::trust::cmp_signer`]) and each
/// certificate for its key and chain ([`crate::trust::issued`]); a failure
/// counts as a failed enrolment.
pub fn run_cmp(b: &CmpBench<'_>, clients: usize, total: usize) -> Result<BenchReport> {
    use enrolkit_cmp::{Answer, BodyType, CertificateRequest, Protect, Requester, ResponseTrust, Verified};
    if b.devices.is_empty() {
        return Err(ClientError::Unexpected(
            "a CMP bench needs at least one vendor certificate".into(),
        ));
    }
    let device = |i: usize| {
        b.devices
            .get(i % b.devices.len())
            .ok_or_else(|| ClientError::Unexpected("no vendor certificate".into()))
    };
    fn requester((key, certificate): &(SoftwareKey, Certificate)) -> Requester<'_> {
        Requester {
            protect: Protect::Signature {
                signer: key,
                certificate,
                chain: &[],
                digest: DigestAlgorithm::Sha256,
            },
            sender: enrolkit_cmp::header::null_dn(),
            recipient: enrolkit_cmp::header::null_dn(),
            message_time: Some(SystemTime::now()),
            limits: Default::default(),
            policy: Default::default(),
        }
    }
    // Not measured: keys and the signed irs.
    let prepared = in_parallel(total, |i| {
        let key = SoftwareKey::generate(KeySpec::EcP256)?;
        let req = CertificateRequest {
            key: &key,
            subject: Some(b.subject.clone()),
            extensions: None,
            old_certificate: None,
            digest: DigestAlgorithm::Sha256,
        };
        let (message, sent) =
            requester(device(i)?).certificate_request(BodyType::Ir, &req, false, &mut rand_core::OsRng)?;
        Ok((i, key, message, sent))
    })?;
    let (elapsed, results) = drive(
        &prepared,
        clients,
        || crate::cmp::CmpClient::new(b.url, Duration::from_secs(60), &[]),
        |c, (i, _, message, sent)| {
            let r = requester(device(*i)?);
            let opened = r.open(&c.transfer(message)?, sent, &ResponseTrust::SignerToValidate)?;
            let Answer::Certificate { certificate, .. } = &opened.answer else {
                return Err(ClientError::Unexpected("no certificate".into()));
            };
            let (conf, s2) = r.cert_conf(&opened, None, &mut rand_core::OsRng)?;
            let done = r.open(&c.transfer(&conf)?, &s2, &ResponseTrust::SignerToValidate)?;
            if !matches!(done.answer, Answer::Confirmed) {
                return Err(ClientError::Unexpected("no pkiConf".into()));
            }
            let Verified::Signature { signer, extra_certs } = opened.protection else {
                return Err(ClientError::Unexpected("an unsigned ip".into()));
            };
            Ok((signer, extra_certs, certificate.clone(), opened.message.extra_certs))
        },
    )?;
    // Not measured: who signed, and whether each certificate is ours and chains to the anchors.
    let now = SystemTime::now();
    let checked = in_parallel(total, |i| {
        Ok(match (prepared.get(i), results.get(i)) {
            (Some((_, key, _, _)), Some(Some((latency, (signer, extra, cert, chain))))) => {
                let signer_ok = crate::trust::cmp_signer(signer, extra, b.anchors, &[], now, false).is_ok();
                let cert_ok = crate::trust::issued(cert, key.public_key(), b.anchors, chain, now, false).is_ok();
                (signer_ok && cert_ok).then_some(*latency)
            }
            _ => None,
        })
    })?;
    Ok(report(elapsed, checked))
}
