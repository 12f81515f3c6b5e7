//! Criterion benchmarks: the responder's hot path with RSA-2048 keys.
//! `cargo bench -p enrolkit-scep`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use enrolkit_scep::keys::{DigestAlgorithm, KeySpec, Signer, SoftwareKey};
use enrolkit_scep::pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::x509_cert::der::Encode;
use enrolkit_scep::x509_cert::name::Name;
use enrolkit_scep::*;
use rand_core::OsRng;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

fn identity(cn: &str) -> (SoftwareKey, x509_cert::Certificate) {
    let key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let name = Name::from_str(&format!("CN={cn}")).unwrap();
    let cert = self_signed_certificate(
        &key,
        &name,
        DigestAlgorithm::Sha256,
        SystemTime::now(),
        Duration::from_secs(86400),
        &mut OsRng,
    )
    .unwrap();
    (key, cert)
}

fn bench(c: &mut Criterion) {
    let (ra_key, ra_cert) = identity("bench RA");
    let (cl_key, cl_cert) = identity("bench client");
    let rk = RejectionKey::random(&mut OsRng);
    let csr = RequestParams {
        digest: DigestAlgorithm::Sha256,
        ..RequestParams::new(Name::from_str("CN=bench").unwrap())
    }
    .with_challenge_password(Some("pw"))
    .build(&cl_key)
    .unwrap();
    let requester = Requester {
        signer: &cl_key,
        decryptor: &cl_key,
        certificate: &cl_cert,
    };
    let txid = TransactionId::from_public_key(&cl_key.public_key().to_der().unwrap());
    let body = RequestBody::PkcsReq(CertificationRequest::parse(&csr).unwrap());
    let (req, _) = build_request(
        &requester,
        &ra_cert,
        &body,
        &txid,
        ContentEncryption::Aes128Cbc,
        DigestAlgorithm::Sha256,
        &mut OsRng,
    )
    .unwrap();
    let responder = Responder {
        certificate: &ra_cert,
        decryptor: &ra_key,
        signer: &ra_key,
        rejection: &rk,
    };

    let mut g = c.benchmark_group("scep-rsa2048");
    g.bench_function("open PKCSReq (verify + decrypt + CSR check)", |b| {
        b.iter(|| responder.open_request(black_box(&req)).unwrap())
    });
    let opened = responder.open_request(&req).unwrap();
    let to = ReplyTo::from_message(&opened.message, opened.content_encryption);
    let issued = identity("issued").1;
    let outcome = Outcome::Success {
        certificates: vec![issued],
        crls: vec![],
    };
    g.bench_function("build CertRep SUCCESS (encrypt + sign)", |b| {
        b.iter(|| responder.reply(black_box(&to), &outcome, &mut OsRng).unwrap())
    });
    g.bench_function("build PKCSReq (client)", |b| {
        b.iter(|| {
            build_request(
                &requester,
                &ra_cert,
                &body,
                &txid,
                ContentEncryption::Aes128Cbc,
                DigestAlgorithm::Sha256,
                &mut OsRng,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
