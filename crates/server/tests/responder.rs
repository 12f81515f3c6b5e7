//! The SCEP responder core driven by enrolkit-scep as the client, through
//! `ScepService::handle` (the same entry point hyper calls).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::Encode;
use enrolkit_keys::{DigestAlgorithm, KeySpec, Signer, SoftwareKey};
use enrolkit_pki::{Authority, Profile};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::*;
use enrolkit_server::ra::{challenge_hash, serial_hex, unix};
use enrolkit_server::{Ciphers, HttpRequest, Policy, ScepService, ScepSetup, SqliteStorage, Storage};
use rand_core::OsRng;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

const DAY: Duration = Duration::from_secs(86400);
const KEY: [u8; 32] = [7; 32];

struct World {
    svc: ScepService,
    storage: Arc<SqliteStorage>,
    ca: CaCertificates,
    /// RA decryptions so far (the envelope of every request not answered
    /// from storage).
    decrypts: Arc<AtomicUsize>,
    /// Held by a test, the RA key's decryptions wait.
    hold: Arc<Mutex<()>>,
}

/// The RA key, counting its decryptions; each waits while the test holds
/// `hold`.
struct CountingKey {
    inner: SoftwareKey,
    decrypts: Arc<AtomicUsize>,
    hold: Arc<Mutex<()>>,
}

impl Signer for CountingKey {
    fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
        Signer::public_key(&self.inner)
    }
    fn kind(&self) -> enrolkit_keys::KeyKind {
        self.inner.kind()
    }
    fn sign(&self, alg: enrolkit_keys::SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, enrolkit_keys::KeyError> {
        self.inner.sign(alg, message)
    }
    fn supports(&self, alg: enrolkit_keys::SignatureAlgorithm) -> bool {
        self.inner.supports(alg)
    }
}

impl enrolkit_keys::Decryptor for CountingKey {
    fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
        Signer::public_key(&self.inner)
    }
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, enrolkit_keys::KeyError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        let _wait = self.hold.lock();
        self.inner.decrypt_pkcs1v15(ciphertext)
    }
}

fn world(policy: Policy, validity: Duration) -> World {
    world_with(policy, validity, None)
}

fn world_with(policy: Policy, validity: Duration, next_ca: Option<Certificate>) -> World {
    world_ciphers(policy, validity, next_ca, Ciphers::default())
}

fn world_ciphers(policy: Policy, validity: Duration, next_ca: Option<Certificate>, ciphers: Ciphers) -> World {
    let now = SystemTime::now();
    let ca = Authority::new_root(
        Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
        Name::from_str("CN=Test CA").unwrap(),
        now,
        DAY * 3650,
        &mut OsRng,
    )
    .unwrap();
    let ra_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ra_cert = ca
        .certify_ra(
            ra_key.public_key(),
            Name::from_str("CN=Test RA").unwrap(),
            now,
            DAY * 365,
            &mut OsRng,
        )
        .unwrap();
    let storage = Arc::new(SqliteStorage::in_memory().unwrap());
    let decrypts = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(Mutex::new(()));
    let cas = CaCertificates {
        ca: ca.certificate.clone(),
        ra: vec![ra_cert.clone()],
        chain: vec![],
    };
    let svc = ScepService::new(
        ScepSetup {
            ca: Arc::new(ca),
            ra_cert,
            ra_key: Arc::new(CountingKey {
                inner: ra_key,
                decrypts: decrypts.clone(),
                hold: hold.clone(),
            }),
            challenge_key: Zeroizing::new(KEY),
            storage: storage.clone(),
            policy,
            ciphers,
            profile: Profile {
                validity,
                ..Profile::default()
            },
            crl_validity: DAY,
            next_ca,
        },
        &mut OsRng,
    );
    World {
        svc,
        storage,
        ca: cas,
        decrypts,
        hold,
    }
}

fn one_time() -> Policy {
    Policy {
        one_time_challenges: true,
        renewal_window: DAY * 14,
        ..Policy::default()
    }
}

struct Device {
    key: SoftwareKey,
    cert: Certificate,
    cn: String,
}

fn device(cn: &str) -> Device {
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let cert = self_signed_certificate(
        &key,
        &Name::from_str(&format!("CN={cn}")).unwrap(),
        DigestAlgorithm::Sha256,
        SystemTime::now(),
        DAY,
        &mut OsRng,
    )
    .unwrap();
    Device {
        key,
        cert,
        cn: cn.into(),
    }
}

impl World {
    fn challenge(&self, pw: &str) {
        self.storage
            .add_challenge(&challenge_hash(&KEY, pw), pw, unix(SystemTime::now()), None)
            .unwrap();
    }
    fn post(&self, der: &[u8]) -> (u16, Vec<u8>) {
        let (r, _) = self.svc.handle(
            &HttpRequest {
                post: true,
                query: "operation=PKIOperation",
                body: der,
            },
            SystemTime::now(),
        );
        (r.status, r.body)
    }
    /// Build a request with `signer` (its key and certificate), send it, open the reply.
    fn exchange(&self, d: &Device, signer_cert: &Certificate, body: RequestBody, txid: &str) -> CertRep {
        self.exchange_in(d, signer_cert, body, txid, ContentEncryption::Aes128Cbc)
    }
    fn exchange_in(
        &self,
        d: &Device,
        signer_cert: &Certificate,
        body: RequestBody,
        txid: &str,
        cipher: ContentEncryption,
    ) -> CertRep {
        let requester = Requester {
            signer: &d.key,
            decryptor: &d.key,
            certificate: signer_cert,
        };
        let (der, sent) = build_request(
            &requester,
            self.ca.encryption_certificate(),
            &body,
            &TransactionId::new(txid).unwrap(),
            cipher,
            DigestAlgorithm::Sha256,
            &mut OsRng,
        )
        .unwrap();
        let (status, reply) = self.post(&der);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        open_cert_rep(&reply, &sent, &self.ca.signers(), &requester).unwrap()
    }
    fn pkcsreq(&self, d: &Device, pw: Option<&str>, txid: &str) -> CertRep {
        self.pkcsreq_in(d, pw, txid, ContentEncryption::Aes128Cbc)
    }
    fn pkcsreq_in(&self, d: &Device, pw: Option<&str>, txid: &str, cipher: ContentEncryption) -> CertRep {
        let csr = RequestParams {
            digest: DigestAlgorithm::Sha256,
            ..RequestParams::new(Name::from_str(&format!("CN={}", d.cn)).unwrap())
        }
        .with_challenge_password(pw)
        .build(&d.key)
        .unwrap();
        self.exchange_in(
            d,
            &d.cert,
            RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
            txid,
            cipher,
        )
    }
    fn caps(&self) -> Capabilities {
        let (r, _) = self.svc.handle(
            &HttpRequest {
                post: false,
                query: "operation=GetCACaps",
                body: b"",
            },
            SystemTime::now(),
        );
        Capabilities::parse(&r.body).unwrap()
    }
    fn poll(&self, d: &Device, txid: &str) -> CertRep {
        let body = RequestBody::CertPoll(IssuerAndSubject {
            issuer: self.ca.ca.tbs_certificate.subject.clone(),
            subject: Name::from_str(&format!("CN={}", d.cn)).unwrap(),
        });
        self.exchange(d, &d.cert, body, txid)
    }
}

fn issued(rep: &CertRep, d: &Device) -> Certificate {
    match rep {
        CertRep::Success { certificates, .. } => {
            assert_eq!(certificates.len(), 1, "only the issued certificate");
            let c = certificates[0].clone();
            assert_eq!(&c.tbs_certificate.subject_public_key_info, d.key.public_key());
            c
        }
        other => panic!("expected SUCCESS, got {other:?}"),
    }
}

fn failure(rep: &CertRep) -> FailInfo {
    match rep {
        CertRep::Failure { fail_info, .. } => *fail_info,
        other => panic!("expected FAILURE, got {other:?}"),
    }
}

#[test]
fn one_time_challenge_issues_once_and_a_retransmission_gets_the_same_certificate() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-1");
    let d = device("dev-1");
    let first = issued(&w.pkcsreq(&d, Some("otp-1"), "tx-1"), &d);
    // Same transaction again (a lost reply): the same certificate, not a second one.
    let again = issued(&w.pkcsreq(&d, Some("otp-1"), "tx-1"), &d);
    assert_eq!(first, again);
    // A new transaction with the spent challenge: refused.
    assert_eq!(failure(&w.pkcsreq(&d, Some("otp-1"), "tx-2")), FailInfo::BadRequest);
    // A wrong challenge: refused.
    assert_eq!(
        failure(&w.pkcsreq(&device("dev-2"), Some("guess"), "tx-3")),
        FailInfo::BadRequest
    );
    assert_eq!(
        failure(&w.pkcsreq(&device("dev-3"), None, "tx-4")),
        FailInfo::BadRequest
    );
}

#[test]
fn retransmissions_and_polls_are_answered_from_storage_without_an_ra_decryption() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-r");
    let d = device("dev-r");
    let csr = RequestParams::new(Name::from_str("CN=dev-r").unwrap())
        .with_challenge_password(Some("otp-r"))
        .build(&d.key)
        .unwrap();
    let requester = Requester {
        signer: &d.key,
        decryptor: &d.key,
        certificate: &d.cert,
    };
    let (der, sent) = build_request(
        &requester,
        w.ca.encryption_certificate(),
        &RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
        &TransactionId::new("tx-r").unwrap(),
        ContentEncryption::Aes256Cbc,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    let (_, reply) = w.post(&der);
    let first = issued(&open_cert_rep(&reply, &sent, &w.ca.signers(), &requester).unwrap(), &d);
    assert_eq!(w.decrypts.load(Ordering::SeqCst), 1);
    // The captured request replayed: the same certificate each time (opened
    // with the cipher the request chose), and no further RA decryption.
    for _ in 0..20 {
        let (status, reply) = w.post(&der);
        assert_eq!(status, 200);
        assert_eq!(
            issued(&open_cert_rep(&reply, &sent, &w.ca.signers(), &requester).unwrap(), &d),
            first
        );
    }
    // A poll is answered from storage as well.
    assert_eq!(issued(&w.poll(&d, "tx-r"), &d), first);
    assert_eq!(w.decrypts.load(Ordering::SeqCst), 1, "answered without decrypting");
    // A client that re-builds its request (fresh envelope and nonce, the
    // same CSR) is decrypted once, to compare the CSR, then known.
    let csr_again = CertificationRequest::parse(&csr).unwrap();
    let (rebuilt, sent2) = build_request(
        &requester,
        w.ca.encryption_certificate(),
        &RequestBody::PkcsReq(csr_again),
        &TransactionId::new("tx-r").unwrap(),
        ContentEncryption::Aes128Cbc,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    for _ in 0..3 {
        let (_, reply) = w.post(&rebuilt);
        let rep = open_cert_rep(&reply, &sent2, &w.ca.signers(), &requester).unwrap();
        assert_eq!(issued(&rep, &d), first);
    }
    assert_eq!(w.decrypts.load(Ordering::SeqCst), 2);
    // The same transaction and key with another CSR is a replay: refused,
    // never the stored certificate.
    let other_csr = RequestParams::new(Name::from_str("CN=someone-else").unwrap())
        .with_challenge_password(Some("otp-r"))
        .build(&d.key)
        .unwrap();
    let replay = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(CertificationRequest::parse(&other_csr).unwrap()),
        "tx-r",
    );
    match &replay {
        CertRep::Failure { fail_info, text } => {
            assert_eq!(*fail_info, FailInfo::BadRequest);
            assert!(text.as_deref().unwrap_or("").contains("another request"), "{text:?}");
        }
        other => panic!("a replay with another CSR got {other:?}"),
    }
    // The same transaction ID from another key is not this transaction: its
    // envelope is opened (and its spent challenge refused).
    let other = device("dev-r");
    assert_eq!(failure(&w.pkcsreq(&other, Some("otp-r"), "tx-r")), FailInfo::BadRequest);
    assert_eq!(w.decrypts.load(Ordering::SeqCst), 4);
}

#[test]
fn a_full_key_gate_answers_busy_and_a_retransmission_is_still_answered_once_it_frees() {
    let mut w = world(one_time(), DAY * 365);
    let gate = Arc::new(enrolkit_server::keygate::KeyGate::new(1, Duration::from_millis(200)));
    w.svc = w.svc.with_key_gate(gate.clone());
    let w = Arc::new(w);
    w.challenge("otp-g");
    let d = Arc::new(device("dev-g"));
    // One PKIOperation holds the only permit, its decryption stalled (a slow
    // token, say).
    let stalled = w.hold.lock().unwrap();
    let (w2, d2) = (w.clone(), d.clone());
    let first = std::thread::spawn(move || issued(&w2.pkcsreq(&d2, Some("otp-g"), "tx-g"), &d2));
    while w.decrypts.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(gate.in_flight(), 1);
    // Another sender's request finds no permit within the wait: 503, and
    // its envelope is never decrypted.
    let other = device("dev-h");
    let csr = RequestParams::new(Name::from_str("CN=dev-h").unwrap())
        .build(&other.key)
        .unwrap();
    let requester = Requester {
        signer: &other.key,
        decryptor: &other.key,
        certificate: &other.cert,
    };
    let (der, _) = build_request(
        &requester,
        w.ca.encryption_certificate(),
        &RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
        &TransactionId::new("tx-h").unwrap(),
        ContentEncryption::Aes128Cbc,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    let (status, body) = w.post(&der);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("busy"));
    assert_eq!(w.decrypts.load(Ordering::SeqCst), 1);
    // The stalled one completes once its key answers; the gate is empty again.
    drop(stalled);
    let cert = first.join().unwrap();
    assert_eq!(gate.in_flight(), 0);
    assert_eq!(issued(&w.pkcsreq(&d, Some("otp-g"), "tx-g"), &d), cert);
}

/// Someone who can write the database but holds no key cannot have an
/// approval certify names of their choosing: a held request inserted with
/// clear names, or with another request's sealed names, is refused at
/// approval and in the pending list (before, approval issued whatever the
/// stored names said).
#[test]
fn held_names_forged_in_the_database_are_refused_at_approval() {
    use enrolkit_server::storage::{Transaction, TxState};
    let w = world(
        Policy {
            manual_approval: true,
            ..one_time()
        },
        DAY * 365,
    );
    w.challenge("otp-h");
    let d = device("dev-h");
    assert!(matches!(w.pkcsreq(&d, Some("otp-h"), "tx-h"), CertRep::Pending));
    let genuine = w.storage.pending().unwrap().remove(0);
    let sealed = w
        .storage
        .held_terms(&genuine.transaction_id, &genuine.key_id)
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("dev-h"), "sealed at rest");
    let forged = |txid: &str, terms: &[u8]| {
        let tx = Transaction {
            transaction_id: txid.into(),
            key_id: genuine.key_id.clone(),
            subject: "CN=evil".into(),
            csr: genuine.csr.clone(),
            state: TxState::Pending,
            created: genuine.created,
        };
        w.storage.record_held(&tx, None, terms, genuine.created).unwrap();
        tx
    };
    let evil_names = enrolkit_server::ra::IssueNames {
        subject: Name::from_str("CN=evil").unwrap(),
        dns: vec!["www.bank.example".into()],
        ips: vec![],
    };
    let clear = forged("tx-forged-clear", evil_names.encode().as_bytes());
    let moved = forged("tx-forged-moved", &sealed);
    for tx in [&clear, &moved] {
        let e = w
            .svc
            .approve(&tx.transaction_id, &tx.key_id, SystemTime::now())
            .unwrap_err();
        assert!(e.contains("refused"), "{e}");
        assert!(w.svc.pending_terms(tx).is_err());
    }
    assert_eq!(w.storage.pending().unwrap().len(), 3, "nothing was decided");
    // The genuine one is approved with the names decided when it was held.
    w.svc
        .approve(&genuine.transaction_id, &genuine.key_id, SystemTime::now())
        .unwrap();
    let cert = issued(&w.poll(&d, "tx-h"), &d);
    assert!(cert.tbs_certificate.subject.to_string().contains("dev-h"));
}

#[test]
fn pending_then_approve_then_poll_and_reject() {
    let w = world(
        Policy {
            manual_approval: true,
            ..one_time()
        },
        DAY * 365,
    );
    w.challenge("otp-a");
    w.challenge("otp-b");
    let a = device("dev-a");
    assert!(matches!(w.pkcsreq(&a, Some("otp-a"), "tx-a"), CertRep::Pending));
    assert!(matches!(w.poll(&a, "tx-a"), CertRep::Pending));
    let pend = w.storage.pending().unwrap();
    assert_eq!(pend.len(), 1);
    let serial = w
        .svc
        .approve(&pend[0].transaction_id, &pend[0].key_id, SystemTime::now())
        .unwrap();
    let cert = issued(&w.poll(&a, "tx-a"), &a);
    assert_eq!(serial_hex(&cert), serial);
    assert_eq!(
        issued(&w.poll(&a, "tx-a"), &a),
        cert,
        "polling again returns the same certificate"
    );
    // A second approval signs nothing: the transaction was decided.
    let again = w
        .svc
        .approve(&pend[0].transaction_id, &pend[0].key_id, SystemTime::now())
        .unwrap_err();
    assert!(again.contains("already approved"), "{again}");
    assert_eq!(issued(&w.poll(&a, "tx-a"), &a), cert);

    let b = device("dev-b");
    assert!(matches!(w.pkcsreq(&b, Some("otp-b"), "tx-b"), CertRep::Pending));
    let p = w.storage.pending().unwrap();
    w.storage
        .decide(
            &p[0].transaction_id,
            &p[0].key_id,
            &enrolkit_server::storage::TxState::Rejected(
                enrolkit_server::ra::RefusalReason::OperatorRejected,
                "no".into(),
            ),
            None,
            0,
        )
        .unwrap();
    assert_eq!(failure(&w.poll(&b, "tx-b")), FailInfo::BadRequest);
    let late = w
        .svc
        .approve(&p[0].transaction_id, &p[0].key_id, SystemTime::now())
        .unwrap_err();
    assert!(late.contains("already rejected"), "{late}");
    assert_eq!(failure(&w.poll(&b, "tx-b")), FailInfo::BadRequest);
    // Polling for a transaction that never existed.
    assert_eq!(failure(&w.poll(&device("dev-c"), "tx-none")), FailInfo::BadCertId);
}

#[test]
fn renewal_needs_our_certificate_inside_the_window() {
    // Certificates live 10 days; renewal opens 14 days before expiry, so at once.
    let w = world(one_time(), DAY * 10);
    w.challenge("otp-r");
    let d = device("dev-r");
    let old = issued(&w.pkcsreq(&d, Some("otp-r"), "tx-r1"), &d);
    // RenewalReq: new key, signed with the old key and certificate.
    let new_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let csr = RequestParams {
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=dev-r").unwrap())
    }
    .with_challenge_password(None)
    .build(&new_key)
    .unwrap();
    let rep = w.exchange(
        &d,
        &old,
        RequestBody::RenewalReq(CertificationRequest::parse(&csr).unwrap()),
        "tx-r2",
    );
    match rep {
        CertRep::Success { certificates, .. } => assert_eq!(
            &certificates[0].tbs_certificate.subject_public_key_info,
            new_key.public_key()
        ),
        other => panic!("{other:?}"),
    }
    // Signed by a certificate we did not issue: refused.
    let stranger = device("dev-r");
    let rep = w.exchange(
        &stranger,
        &stranger.cert,
        RequestBody::RenewalReq(CertificationRequest::parse(&csr).unwrap()),
        "tx-r3",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    // Too early: a one-year certificate with a 14-day window.
    let w2 = world(one_time(), DAY * 365);
    w2.challenge("otp-e");
    let e = device("dev-e");
    let cert = issued(&w2.pkcsreq(&e, Some("otp-e"), "tx-e1"), &e);
    let csr = RequestParams {
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=dev-e").unwrap())
    }
    .with_challenge_password(None)
    .build(&e.key)
    .unwrap();
    match w2.exchange(
        &e,
        &cert,
        RequestBody::RenewalReq(CertificationRequest::parse(&csr).unwrap()),
        "tx-e2",
    ) {
        CertRep::Failure { fail_info, text } => {
            assert_eq!(fail_info, FailInfo::BadRequest);
            assert!(text.unwrap().contains("too early"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn getcert_and_getcrl_after_revocation() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-g");
    let d = device("dev-g");
    let cert = issued(&w.pkcsreq(&d, Some("otp-g"), "tx-g"), &d);
    let ias = issuer_and_serial(&cert);
    match w.exchange(&d, &d.cert, RequestBody::GetCert(ias.clone()), "tx-gc") {
        CertRep::Success { certificates, .. } => assert_eq!(certificates, vec![cert.clone()]),
        other => panic!("{other:?}"),
    }
    w.storage
        .revoke(&serial_hex(&cert), unix(SystemTime::now()), 1)
        .unwrap();
    match w.exchange(&d, &d.cert, RequestBody::GetCrl(ias), "tx-crl") {
        CertRep::Success { crls, .. } => {
            assert_eq!(crls.len(), 1);
            let revoked = crls[0].tbs_cert_list.revoked_certificates.clone().unwrap();
            assert_eq!(revoked[0].serial_number, cert.tbs_certificate.serial_number);
            assert_eq!(crls[0].tbs_cert_list.issuer, w.ca.ca.tbs_certificate.subject);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn getcert_and_getcrl_naming_our_ra_as_the_issuer_are_answered_and_a_stranger_is_not() {
    // A client that took the RA certificate from GetCACert for "the CA"
    // names the RA as issuer (deployed behaviour, issue I).
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-ra");
    let d = device("dev-ra");
    let cert = issued(&w.pkcsreq(&d, Some("otp-ra"), "tx-ra"), &d);
    let mut ias = issuer_and_serial(&cert);
    ias.issuer = w.ca.ra[0].tbs_certificate.subject.clone();
    match w.exchange(&d, &d.cert, RequestBody::GetCert(ias.clone()), "tx-ra-gc") {
        CertRep::Success { certificates, .. } => assert_eq!(certificates, vec![cert.clone()]),
        other => panic!("{other:?}"),
    }
    match w.exchange(&d, &d.cert, RequestBody::GetCrl(ias.clone()), "tx-ra-crl") {
        CertRep::Success { crls, .. } => {
            assert_eq!(crls.len(), 1);
            assert_eq!(crls[0].tbs_cert_list.issuer, w.ca.ca.tbs_certificate.subject);
        }
        other => panic!("{other:?}"),
    }
    ias.issuer = Name::from_str("CN=Some Other CA").unwrap();
    for (body, tx) in [
        (RequestBody::GetCert(ias.clone()), "tx-other-gc"),
        (RequestBody::GetCrl(ias), "tx-other-crl"),
    ] {
        match w.exchange(&d, &d.cert, body, tx) {
            CertRep::Failure { fail_info, text } => {
                assert_eq!(fail_info, FailInfo::BadCertId);
                assert!(text.unwrap().contains("not this CA"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn failures_are_signed_certreps_with_the_right_failinfo_and_garbage_is_http_400() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-f");
    let d = device("dev-f");
    let csr = RequestParams {
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=dev-f").unwrap())
    }
    .with_challenge_password(Some("otp-f"))
    .build(&d.key)
    .unwrap();
    let requester = Requester {
        signer: &d.key,
        decryptor: &d.key,
        certificate: &d.cert,
    };
    let (mut der, sent) = build_request(
        &requester,
        w.ca.encryption_certificate(),
        &RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap()),
        &TransactionId::new("tx-f").unwrap(),
        ContentEncryption::Aes128Cbc,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    let n = der.len();
    der[n - 3] ^= 1; // in the signature
    let (status, body) = w.post(&der);
    assert_eq!(status, 200);
    match open_cert_rep(&body, &sent, &w.ca.signers(), &requester).unwrap() {
        CertRep::Failure { fail_info, .. } => assert_eq!(fail_info, FailInfo::BadMessageCheck),
        other => panic!("{other:?}"),
    }
    // The challenge was not consumed by the failed attempt.
    assert!(w
        .storage
        .challenge_usable(&challenge_hash(&KEY, "otp-f"), unix(SystemTime::now()))
        .unwrap());
    let (status, body) = w.post(b"not a pkiMessage");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("not a SCEP pkiMessage"));
    let (r, _) = w.svc.handle(
        &HttpRequest {
            post: false,
            query: "operation=GetCACaps",
            body: b"",
        },
        SystemTime::now(),
    );
    let caps = Capabilities::parse(&r.body).unwrap();
    assert!(
        caps.supports_renewal() && caps.supports_post() && caps.supports_aes() && !caps.has(&Capability::GetNextCaCert)
    );
    let (r, _) = w.svc.handle(
        &HttpRequest {
            post: false,
            query: "operation=GetCACert",
            body: b"",
        },
        SystemTime::now(),
    );
    assert_eq!(r.content_type, "application/x-x509-ca-ra-cert");
    let parsed = CaCertificates::parse(Some(r.content_type), &r.body).unwrap();
    assert_eq!(parsed.ca.to_der().unwrap(), w.ca.ca.to_der().unwrap());
    assert_eq!(parsed.encryption_certificate(), w.ca.encryption_certificate());
}

#[test]
fn the_verifier_hook_decides_when_no_challenge_does() {
    let dir = tempfile::tempdir().unwrap();
    // Approves only subjects containing "trusted", after reading the CSR from stdin.
    let script = dir.path().join("verify.sh");
    std::fs::write(&script, "#!/bin/sh\ngrep -q 'BEGIN CERTIFICATE REQUEST' || exit 3\ncase \"$ENROL_SUBJECT\" in *trusted*) exit 0;; *) exit 1;; esac\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hook = enrolkit_server::Verifier {
        command: script,
        args: vec![],
        timeout: Duration::from_secs(10),
    };
    let w = world(
        Policy {
            verifier: Some(hook),
            ..one_time()
        },
        DAY * 365,
    );
    let ok = device("trusted-7");
    issued(&w.pkcsreq(&ok, None, "tx-h1"), &ok);
    assert_eq!(
        failure(&w.pkcsreq(&device("stranger"), None, "tx-h2")),
        FailInfo::BadRequest
    );
    // A hook that hangs is killed and counts as "no".
    let slow = enrolkit_server::Verifier {
        command: "sleep".into(),
        args: vec!["30".into()],
        timeout: Duration::from_millis(200),
    };
    let w = world(
        Policy {
            verifier: Some(slow),
            ..one_time()
        },
        DAY * 365,
    );
    let started = std::time::Instant::now();
    assert_eq!(
        failure(&w.pkcsreq(&device("trusted-8"), None, "tx-h3")),
        FailInfo::BadRequest
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn getnextcacert_only_when_a_rollover_certificate_is_configured() {
    let w = world(one_time(), DAY);
    let (r, _) = w.svc.handle(
        &HttpRequest {
            post: false,
            query: "operation=GetNextCACert",
            body: b"",
        },
        SystemTime::now(),
    );
    assert_eq!(r.status, 404);
    let next = Authority::new_root(
        Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
        Name::from_str("CN=Next CA").unwrap(),
        SystemTime::now(),
        DAY * 3650,
        &mut OsRng,
    )
    .unwrap();
    let w = world_with(one_time(), DAY, Some(next.certificate.clone()));
    let (r, _) = w.svc.handle(
        &HttpRequest {
            post: false,
            query: "operation=GetCACaps",
            body: b"",
        },
        SystemTime::now(),
    );
    assert!(Capabilities::parse(&r.body).unwrap().has(&Capability::GetNextCaCert));
    let (r, _) = w.svc.handle(
        &HttpRequest {
            post: false,
            query: "operation=GetNextCACert",
            body: b"",
        },
        SystemTime::now(),
    );
    assert_eq!((r.status, r.content_type), (200, "application/x-x509-next-ca-cert"));
    // A SignedData signed by the RA whose content is a certs-only holding the new CA.
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("next.p7");
    std::fs::write(&body, &r.body).unwrap();
    let inner = dir.path().join("inner.p7");
    let ra_pem = dir.path().join("ra.pem");
    std::fs::write(
        &ra_pem,
        der::EncodePem::to_pem(w.ca.encryption_certificate(), der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            body.to_str().unwrap(),
            "-noverify",
            "-certfile",
            ra_pem.to_str().unwrap(),
            "-binary",
            "-out",
            inner.to_str().unwrap(),
        ])
        .output()
        .expect("openssl must be installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let certs = enrolkit_pkix::certs_only::decode(&std::fs::read(&inner).unwrap())
        .unwrap()
        .certificates;
    assert_eq!(certs, vec![next.certificate]);
}

#[test]
fn ciphers_outside_the_policy_are_refused_with_badalg_and_not_advertised() {
    let des3_only = Ciphers {
        aes: false,
        des3: true,
        des: false,
    };
    let w = world_ciphers(one_time(), DAY * 365, None, des3_only);
    let caps = w.caps();
    assert!(!caps.supports_aes() && caps.has(&Capability::Des3), "{caps}");
    w.challenge("otp-c1");
    let d = device("dev-c1");
    let rep = w.pkcsreq_in(&d, Some("otp-c1"), "tx-c1", ContentEncryption::Aes128Cbc);
    assert_eq!(failure(&rep), FailInfo::BadAlg);
    // Refused before authorisation: the challenge is still there for a DES3 request.
    issued(
        &w.pkcsreq_in(&d, Some("otp-c1"), "tx-c2", ContentEncryption::DesEde3Cbc),
        &d,
    );
    // Single DES is off by default.
    let w = world(one_time(), DAY * 365);
    assert!(w.caps().supports_aes() && w.caps().has(&Capability::Des3));
    w.challenge("otp-c3");
    let e = device("dev-c3");
    assert_eq!(
        failure(&w.pkcsreq_in(&e, Some("otp-c3"), "tx-c3", ContentEncryption::DesCbc)),
        FailInfo::BadAlg
    );
}

#[test]
fn the_crl_is_resigned_only_when_revocations_change_or_it_ages() {
    let w = world(one_time(), DAY * 365);
    let t0 = SystemTime::now();
    let a = w.svc.current_crl(t0).unwrap();
    assert!(a.crl.tbs_cert_list.revoked_certificates.is_none());
    // Asked again within half its validity, nothing changed: the very same CRL.
    let b = w.svc.current_crl(t0 + Duration::from_secs(3600)).unwrap();
    assert_eq!((b.number, &b.der), (a.number, &a.der));
    // A revocation in storage (as `mef revoke` does from another process): re-signed at once.
    w.challenge("otp-r");
    let d = device("dev-r");
    let cert = issued(&w.pkcsreq(&d, Some("otp-r"), "tx-r"), &d);
    w.storage.revoke(&serial_hex(&cert), unix(t0), 1).unwrap();
    let c = w.svc.current_crl(t0 + Duration::from_secs(3601)).unwrap();
    assert!(c.number > b.number);
    let listed = c.crl.tbs_cert_list.revoked_certificates.clone().unwrap();
    assert_eq!(listed[0].serial_number, cert.tbs_certificate.serial_number);
    // The reason stored is the reason listed (keyCompromise = 1).
    let reason = listed[0].crl_entry_extensions.as_ref().unwrap();
    assert!(reason.iter().any(
        |e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_REASONS && e.extn_value.as_bytes() == [0x0a, 0x01, 0x01]
    ));
    // Past half its validity (a day here), the same list is signed again, fresh.
    let e = w.svc.current_crl(t0 + DAY / 2 + Duration::from_secs(3602)).unwrap();
    assert!(e.number > c.number && e.this_update > c.this_update);
    assert_eq!(
        e.crl.tbs_cert_list.revoked_certificates,
        c.crl.tbs_cert_list.revoked_certificates
    );
}

// ---- Issue F: the authorisation core on SCEP's wire (attack tests) ----

fn csr_for(key: &SoftwareKey, subject: &str, pw: Option<&str>, dns: &[&str]) -> CertificationRequest {
    let der = RequestParams {
        dns_names: dns.iter().map(|d| d.to_string()).collect(),
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str(subject).unwrap())
    }
    .with_challenge_password(pw)
    .build(key)
    .unwrap();
    CertificationRequest::parse(&der).unwrap()
}

fn subject_of(rep: &CertRep) -> String {
    match rep {
        CertRep::Success { certificates, .. } => certificates[0].tbs_certificate.subject.to_string(),
        other => panic!("expected SUCCESS, got {other:?}"),
    }
}

/// A device's certificate renews only its own names: RenewalReq and the
/// PKCSReq that sscep, Cisco IOS and macOS send for renewal (signed by the
/// old certificate, no challengePassword) alike.
#[test]
fn a_renewal_by_device_a_cannot_obtain_device_b_names() {
    let w = world(one_time(), DAY * 10);
    w.challenge("otp-a");
    let a = device("dev-a");
    let old = issued(&w.pkcsreq(&a, Some("otp-a"), "tx-a1"), &a);
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    for (i, body) in [
        RequestBody::RenewalReq(csr_for(&k, "CN=dev-b", None, &[])),
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-b", None, &[])),
        RequestBody::RenewalReq(csr_for(&k, "CN=dev-a", None, &["dev-b.example.com"])),
    ]
    .into_iter()
    .enumerate()
    {
        let rep = w.exchange(&a, &old, body, &format!("tx-ab{i}"));
        assert_eq!(failure(&rep), FailInfo::BadRequest, "attempt {i}");
    }
    // Its own name, the sscep way (PKCSReq, signer = the old certificate, no challenge).
    let rep = w.exchange(
        &a,
        &old,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-a", None, &[])),
        "tx-aa",
    );
    assert_eq!(subject_of(&rep), "CN=dev-a");
}

#[test]
fn a_revoked_or_early_certificate_does_not_renew() {
    let w = world(one_time(), DAY * 10);
    w.challenge("otp-rv");
    let a = device("dev-rv");
    let old = issued(&w.pkcsreq(&a, Some("otp-rv"), "tx-rv1"), &a);
    w.storage.revoke(&serial_hex(&old), unix(SystemTime::now()), 1).unwrap();
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    for (i, body) in [
        RequestBody::RenewalReq(csr_for(&k, "CN=dev-rv", None, &[])),
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-rv", None, &[])),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            failure(&w.exchange(&a, &old, body, &format!("tx-rv{i}x"))),
            FailInfo::BadRequest
        );
    }
    // Outside the window (a year's certificate, 14 days): PKCSReq renewal refused too.
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-early");
    let e = device("dev-early");
    let cert = issued(&w.pkcsreq(&e, Some("otp-early"), "tx-early1"), &e);
    let rep = w.exchange(
        &e,
        &cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-early", None, &[])),
        "tx-early2",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
}

#[test]
fn a_bound_challenge_authorises_only_its_names() {
    let w = world(one_time(), DAY * 365);
    let b = enrolkit_server::ra::BoundNames::new("CN=dev-bound", vec!["dev-bound.example.com".into()], vec![]).unwrap();
    w.storage
        .add_bound_challenge(
            &challenge_hash(&KEY, "otp-b"),
            "dev-bound",
            Some(&b.encode()),
            unix(SystemTime::now()),
            None,
        )
        .unwrap();
    let d = device("dev-other");
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-other", Some("otp-b"), &[])),
        "tx-b1",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-bound", Some("otp-b"), &["evil.example.com"])),
        "tx-b2",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    // Not spent by the refusals.
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-bound", Some("otp-b"), &["dev-bound.example.com"])),
        "tx-b3",
    );
    assert_eq!(subject_of(&rep), "CN=dev-bound");
}

#[test]
fn unbound_challenges_get_dns_names_only_under_whole_label_suffixes() {
    let w = world(
        Policy {
            allowed_dns_suffixes: vec!["example.com".into()],
            ..one_time()
        },
        DAY * 365,
    );
    w.challenge("otp-s");
    let d = device("dev-s");
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-s", Some("otp-s"), &["evilexample.com"])),
        "tx-s1",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-s", Some("otp-s"), &["a.example.com"])),
        "tx-s2",
    );
    assert_eq!(subject_of(&rep), "CN=dev-s");
    // Without any suffix configured, an unbound challenge names no DNS at all.
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-n");
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-s", Some("otp-n"), &["a.example.com"])),
        "tx-n1",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
}

/// SCEP reads the IP subjectAltNames of a request as EST does (one PKCS#10
/// reader): an unbound challenge may not name an IP address, where the
/// SCEP front end used to drop it unseen and issue without it.
#[test]
fn unbound_challenges_get_no_ip_addresses_over_scep_either() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-ip");
    let d = device("dev-ip");
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let der = RequestParams {
        ip_addresses: vec!["192.0.2.9".parse().unwrap()],
        ..RequestParams::new(Name::from_str("CN=dev-ip").unwrap())
    }
    .with_challenge_password(Some("otp-ip"))
    .build(&k)
    .unwrap();
    let csr = CertificationRequest::parse(&der).unwrap();
    assert_eq!(
        csr.ip_addresses(),
        vec!["192.0.2.9".parse::<std::net::IpAddr>().unwrap()]
    );
    let rep = w.exchange(&d, &d.cert, RequestBody::PkcsReq(csr), "tx-ip1");
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    // The challenge was not consumed by the refusal: the same request without the IP is issued.
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-ip", Some("otp-ip"), &[])),
        "tx-ip2",
    );
    assert_eq!(subject_of(&rep), "CN=dev-ip");
}

/// A vendor CA and a base station's vendor certificate (TS 33.310 §9).
fn vendor_device(vendor: &Authority, serial_number: &str) -> Device {
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let cert = vendor
        .issue(
            &enrolkit_pki::Request {
                subject: Name::from_str(&format!("CN=eNB,serialNumber={serial_number},O=Vendor")).unwrap(),
                public_key: key.public_key().clone(),
                dns_names: vec![],
                ip_addresses: vec![],
            },
            &Profile::default(),
            SystemTime::now(),
            &mut OsRng,
        )
        .unwrap();
    Device {
        key,
        cert,
        cn: "eNB".into(),
    }
}

fn vendor_ca(name: &str) -> Authority {
    Authority::new_root(
        Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
        Name::from_str(name).unwrap(),
        SystemTime::now() - DAY,
        DAY * 3650,
        &mut OsRng,
    )
    .unwrap()
}

#[test]
fn a_vendor_certificate_enrols_under_the_template_and_renews_by_the_operator_certificate() {
    let vendor = vendor_ca("CN=Vendor Root,O=Vendor");
    let w = world(
        Policy {
            vendor: Some(enrolkit_server::ra::VendorPolicy {
                anchors: vec![vendor.certificate.to_der().unwrap()],
                subject_template: "CN={serialNumber},O=Operator".into(),
                dns_templates: vec!["{serialNumber}.ran.example.net".into()],
            }),
            ..one_time()
        },
        DAY * 10,
    );
    let bs = vendor_device(&vendor, "SN-0042");
    // The CSR asks for a name of its own: the template decides, not the CSR.
    let rep = w.exchange(
        &bs,
        &bs.cert,
        RequestBody::PkcsReq(csr_for(&bs.key, "CN=anything", None, &[])),
        "tx-v1",
    );
    let op = match &rep {
        CertRep::Success { certificates, .. } => certificates[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(op.tbs_certificate.subject.to_string(), "CN=SN-0042,O=Operator");
    let (dns, _) = enrolkit_server::ra::names::certificate_sans(&op);
    assert_eq!(dns, ["SN-0042.ran.example.net"]);
    // Renewal signed by the operator certificate, for its names.
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let rep = w.exchange(
        &bs,
        &op,
        RequestBody::RenewalReq(csr_for(&k, "CN=SN-0042,O=Operator", None, &["SN-0042.ran.example.net"])),
        "tx-v2",
    );
    assert_eq!(subject_of(&rep), "CN=SN-0042,O=Operator");
    // A device certificate from another vendor CA: refused.
    let stranger = vendor_device(&vendor_ca("CN=Vendor Root,O=Vendor"), "SN-0042");
    let rep = w.exchange(
        &stranger,
        &stranger.cert,
        RequestBody::PkcsReq(csr_for(&stranger.key, "CN=x", None, &[])),
        "tx-v3",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
}

#[test]
fn ra_pop_a_configured_ra_requests_its_names_and_an_unconfigured_one_nothing() {
    let proxy = vendor_ca("CN=SCEP proxy");
    let proxy_dev = Device {
        key: SoftwareKey::generate(KeySpec::Rsa2048).unwrap(),
        cert: proxy.certificate.clone(),
        cn: "proxy".into(),
    };
    // The RA's certificate as signer: made for its own RSA key.
    let ra_cert = self_signed_certificate(
        &proxy_dev.key,
        &Name::from_str("CN=SCEP proxy RA").unwrap(),
        DigestAlgorithm::Sha256,
        SystemTime::now(),
        DAY,
        &mut OsRng,
    )
    .unwrap();
    let ra_cert = <Certificate as der::Decode>::from_der(&ra_cert.to_der().unwrap()).unwrap();
    let ra = Device {
        cert: ra_cert.clone(),
        ..proxy_dev
    };
    let w = world(
        Policy {
            registration_authorities: vec![enrolkit_server::ra::RaAuthority {
                certificate: ra_cert,
                may_name: vec!["*.ran.example.net".into()],
            }],
            ..one_time()
        },
        DAY * 365,
    );
    let client = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let rep = w.exchange(
        &ra,
        &ra.cert,
        RequestBody::PkcsReq(csr_for(&client, "CN=bs-7.ran.example.net", None, &[])),
        "tx-ra1",
    );
    assert_eq!(subject_of(&rep), "CN=bs-7.ran.example.net");
    let rep = w.exchange(
        &ra,
        &ra.cert,
        RequestBody::PkcsReq(csr_for(&client, "CN=core.example.net", None, &[])),
        "tx-ra2",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
    // Another certificate, not configured: no authority at all.
    let other = device("SCEP proxy RA");
    let rep = w.exchange(
        &other,
        &other.cert,
        RequestBody::PkcsReq(csr_for(&client, "CN=bs-8.ran.example.net", None, &[])),
        "tx-ra3",
    );
    assert_eq!(failure(&rep), FailInfo::BadRequest);
}

/// RSPF identifies Enrolees and targets by certificate names: those names
/// are issued only under the Enrolee's grant, never on a challenge.
#[test]
fn rspf_identifiers_are_not_issued_on_a_challenge() {
    let w = world(
        Policy {
            reserved_names: vec!["ae-77.example.net".into(), "cse-b.example.net".into()],
            allowed_dns_suffixes: vec!["example.net".into()],
            ..one_time()
        },
        DAY * 365,
    );
    w.challenge("otp-id");
    let d = device("x");
    let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    for (i, (cn, dns)) in [("ae-77.example.net", vec![]), ("dev-9", vec!["cse-b.example.net"])]
        .into_iter()
        .enumerate()
    {
        let rep = w.exchange(
            &d,
            &d.cert,
            RequestBody::PkcsReq(csr_for(&k, &format!("CN={cn}"), Some("otp-id"), &dns)),
            &format!("tx-id{i}"),
        );
        assert_eq!(failure(&rep), FailInfo::BadRequest, "{cn} {dns:?}");
    }
    // Not spent: an ordinary name still enrols with it.
    let rep = w.exchange(
        &d,
        &d.cert,
        RequestBody::PkcsReq(csr_for(&k, "CN=dev-9", Some("otp-id"), &["dev-9.example.net"])),
        "tx-id3",
    );
    assert_eq!(subject_of(&rep), "CN=dev-9");
}

/// EST and CMP transactions live in the same table under `est-`/`cmp-`
/// transactionIDs (`mef scep pending` routes by the prefix): a SCEP
/// client may not name one, neither to enrol nor to poll.
#[test]
fn scep_transaction_ids_with_another_protocols_prefix_are_refused() {
    let w = world(one_time(), DAY * 365);
    w.challenge("otp-p");
    let d = device("dev-p");
    for txid in ["cmp-00112233", "est-00112233"] {
        assert_eq!(failure(&w.pkcsreq(&d, Some("otp-p"), txid)), FailInfo::BadRequest);
        assert_eq!(failure(&w.poll(&d, txid)), FailInfo::BadRequest);
    }
    // The challenge was not spent on them.
    issued(&w.pkcsreq(&d, Some("otp-p"), "tx-p"), &d);
}

/// A certified DNS name is a host name: a credential under the suffix rule
/// asking for `*.example.com` would get a certificate for every host below.
#[test]
fn a_wildcard_dns_name_is_refused_whatever_admits_its_suffix() {
    let w = world(
        Policy {
            allowed_dns_suffixes: vec!["example.com".into()],
            ..one_time()
        },
        DAY * 10,
    );
    let d = device("dev-w");
    for (i, bad) in ["*.example.com", "a.*.example.com", "10.1.2.3", "a b.example.com"]
        .into_iter()
        .enumerate()
    {
        w.challenge(&format!("otp-w{i}"));
        let csr = csr_for(&d.key, "CN=dev-w", Some(&format!("otp-w{i}")), &[bad]);
        let rep = w.exchange(&d, &d.cert, RequestBody::PkcsReq(csr), &format!("tx-w{i}"));
        assert_eq!(failure(&rep), FailInfo::BadRequest, "{bad}");
    }
    w.challenge("otp-wc");
    let csr = csr_for(&d.key, "CN=*.example.com", Some("otp-wc"), &[]);
    assert_eq!(
        failure(&w.exchange(&d, &d.cert, RequestBody::PkcsReq(csr), "tx-wc")),
        FailInfo::BadRequest
    );
    // The challenges were not spent: a host name under the suffix is issued.
    let csr = csr_for(&d.key, "CN=dev-w", Some("otp-w0"), &["a.example.com"]);
    assert_eq!(
        subject_of(&w.exchange(&d, &d.cert, RequestBody::PkcsReq(csr), "tx-w-ok")),
        "CN=dev-w"
    );
}

/// In proxy mode the client's CSR goes upstream as it came, signed by the
/// proxy's RA key: the names decided must be the names asked (a vendor
/// template decides CN=SN-…, so a CSR for another name is refused, not
/// forwarded), and the CSR may hold no extension but DNS/IP names.
#[test]
fn a_forwarding_proxy_admits_only_requests_that_ask_for_exactly_their_names() {
    let vendor = vendor_ca("CN=Vendor Root,O=Vendor");
    let w = world(
        Policy {
            vendor: Some(enrolkit_server::ra::VendorPolicy {
                anchors: vec![vendor.certificate.to_der().unwrap()],
                subject_template: "CN={serialNumber},O=Operator".into(),
                dns_templates: vec!["{serialNumber}.ran.example.net".into()],
            }),
            forwards_requests: true,
            manual_approval: true,
            ..one_time()
        },
        DAY * 10,
    );
    let bs = vendor_device(&vendor, "SN-0042");
    let ask = |subject: &str, dns: &[&str], txid: &str| {
        w.exchange(
            &bs,
            &bs.cert,
            RequestBody::PkcsReq(csr_for(&bs.key, subject, None, dns)),
            txid,
        )
    };
    assert_eq!(
        failure(&ask("CN=victim.ran.example.net", &[], "tx-f1")),
        FailInfo::BadRequest
    );
    assert_eq!(
        failure(&ask("CN=SN-0042,O=Operator", &["oam.ran.example.net"], "tx-f2")),
        FailInfo::BadRequest
    );
    assert!(w.storage.pending().unwrap().is_empty(), "nothing held for upstream");
    // Anything beyond DNS/IP names (here a URI) would be copied by an
    // upstream that honours requested extensions: refused.
    let mut params = RequestParams {
        dns_names: vec!["SN-0042.ran.example.net".into()],
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=SN-0042,O=Operator").unwrap())
    };
    params.uris.push("spiffe://ran.example.net/oam".into());
    let csr = CertificationRequest::parse(&params.build(&bs.key).unwrap()).unwrap();
    assert_eq!(
        failure(&w.exchange(&bs, &bs.cert, RequestBody::PkcsReq(csr), "tx-f3")),
        FailInfo::BadRequest
    );
    // Exactly the template's names: held for the relay.
    assert!(matches!(
        ask("CN=SN-0042,O=Operator", &["SN-0042.ran.example.net"], "tx-f4"),
        CertRep::Pending
    ));
}

#[test]
fn held_scep_requests_are_capped_per_subject_and_a_held_ones_retry_is_still_pending() {
    let w = world(
        Policy {
            manual_approval: true,
            hold_limit: Some(enrolkit_server::proxy::HoldLimit {
                per_client: 1,
                total: 2,
            }),
            ..one_time()
        },
        DAY * 365,
    );
    for pw in ["otp-1", "otp-2", "otp-3", "otp-4"] {
        w.challenge(pw);
    }
    let first = device("cap.example.net");
    assert!(matches!(w.pkcsreq(&first, Some("otp-1"), "tx-1"), CertRep::Pending));
    // A new key for the same subject: beyond max_pending_per_client (1).
    let second = device("cap.example.net");
    match w.pkcsreq(&second, Some("otp-2"), "tx-2") {
        CertRep::Failure { fail_info, text } => {
            assert_eq!(fail_info, FailInfo::BadRequest);
            let text = text.unwrap_or_default();
            assert!(text.contains("max_pending_per_client"), "{text}");
        }
        other => panic!("expected FAILURE, got {other:?}"),
    }
    // Refused before it was held: its challenge is still usable.
    assert!(w
        .storage
        .challenge_usable(&challenge_hash(&KEY, "otp-2"), unix(SystemTime::now()))
        .unwrap());
    // The held one's retries (a retransmission, a poll) are answered.
    assert!(matches!(w.pkcsreq(&first, Some("otp-1"), "tx-1"), CertRep::Pending));
    assert!(matches!(w.poll(&first, "tx-1"), CertRep::Pending));
    // Another subject is held; a third is beyond max_pending (2).
    assert!(matches!(
        w.pkcsreq(&device("other.example.net"), Some("otp-3"), "tx-3"),
        CertRep::Pending
    ));
    match w.pkcsreq(&device("third.example.net"), Some("otp-4"), "tx-4") {
        CertRep::Failure { text, .. } => {
            assert!(text.unwrap_or_default().contains("(max_pending)"))
        }
        other => panic!("expected FAILURE, got {other:?}"),
    }
    assert_eq!(w.storage.pending().unwrap().len(), 2);
}
