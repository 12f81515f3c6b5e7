//! The trust core's decisions on certificates made by a real CA
//! (`enrolkit-pki`) at a fixed time: each rule with a case it refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use enrolkit_pki::{Authority, Profile, Request};
use std::str::FromStr;
use std::time::UNIX_EPOCH;
use x509_cert::name::Name;

const DAY: Duration = Duration::from_secs(86400);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn key() -> Box<dyn Signer> {
    Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap())
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn root(cn: &str) -> Authority {
    Authority::new_root(key(), name(cn), t0() - DAY, 3650 * DAY, &mut rand_core::OsRng).unwrap()
}

fn ra(ca: &Authority) -> Certificate {
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    ca.certify_ra(
        k.public_key(),
        name("CN=RA"),
        t0() - DAY,
        365 * DAY,
        &mut rand_core::OsRng,
    )
    .unwrap()
}

fn leaf(ca: &Authority, k: &SoftwareKey, at: SystemTime) -> Certificate {
    let req = Request {
        subject: name("CN=device"),
        public_key: k.public_key().clone(),
        dns_names: vec![],
        ip_addresses: vec![],
    };
    ca.issue(&req, &Profile::default(), at, &mut rand_core::OsRng).unwrap()
}

fn pin(c: &Certificate) -> Trust {
    Trust::Pinned(vec![fingerprint::sha256(c)])
}

fn served(ca: &Certificate, ra: &[Certificate], chain: &[Certificate]) -> CaCertificates {
    CaCertificates {
        ca: ca.clone(),
        ra: ra.to_vec(),
        chain: chain.to_vec(),
    }
}

#[test]
fn the_ra_signed_by_the_pinned_ca_is_admitted() {
    let ca = root("CN=CA");
    let r = ra(&ca);
    let t = scep_ca(
        served(&ca.certificate, std::slice::from_ref(&r), &[]),
        &pin(&ca.certificate),
        t0(),
        false,
    )
    .unwrap();
    assert_eq!(t.certificates.ca, ca.certificate);
    assert_eq!(t.certificates.ra, vec![r]);
    assert_eq!(t.anchors, vec![ca.certificate.clone()]);
}

#[test]
fn a_forged_ra_with_the_cas_name_is_refused() {
    let ca = root("CN=CA");
    let attacker = root("CN=CA");
    let forged = ra(&attacker);
    assert_eq!(forged.tbs_certificate.issuer, ca.certificate.tbs_certificate.subject);
    let e = scep_ca(
        served(&ca.certificate, &[forged], &[]),
        &pin(&ca.certificate),
        t0(),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ClientError::Untrusted { error: PathError::BadSignature { .. }, what } if what.contains("RA")),
        "{e}"
    );
    // Without a pin the client trusts what it is sent: the documented, explicit choice.
    let attacker_ra = ra(&attacker);
    assert!(scep_ca(
        served(&ca.certificate, &[attacker_ra], &[]),
        &Trust::InsecureFirstUse,
        t0(),
        false
    )
    .is_ok());
}

#[test]
fn an_end_entity_certificate_of_the_ca_without_the_ra_eku_is_refused_unless_pinned() {
    let ca = root("CN=CA");
    let device = leaf(&ca, &SoftwareKey::generate(KeySpec::EcP256).unwrap(), t0());
    let e = scep_ca(
        served(&ca.certificate, std::slice::from_ref(&device), &[]),
        &pin(&ca.certificate),
        t0(),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            ClientError::Untrusted {
                error: PathError::WrongPurpose { .. },
                ..
            }
        ),
        "{e}"
    );
    // Pinned itself, it is the RA; the CA that signed it (verified) is the CA.
    let t = scep_ca(
        served(&ca.certificate, std::slice::from_ref(&device), &[]),
        &pin(&device),
        t0(),
        false,
    )
    .unwrap();
    assert_eq!(t.certificates.ra, vec![device]);
    assert_eq!(t.certificates.ca, ca.certificate);
}

#[test]
fn ca_certificates_that_do_not_chain_to_the_pin_are_dropped_and_a_pinned_intermediate_works() {
    let r = root("CN=Root");
    let ica = r
        .new_intermediate(key(), name("CN=Issuing"), t0() - DAY, 1000 * DAY, &mut rand_core::OsRng)
        .unwrap();
    let junk = root("CN=Junk");
    let the_ra = ra(&ica);
    let offer = served(
        &ica.certificate,
        std::slice::from_ref(&the_ra),
        &[r.certificate.clone(), junk.certificate.clone()],
    );
    let t = scep_ca(offer.clone(), &pin(&r.certificate), t0(), false).unwrap();
    assert_eq!(t.certificates.ca, ica.certificate);
    assert_eq!(t.certificates.chain, vec![r.certificate.clone()]);
    assert_eq!(t.dropped.len(), 1);
    assert_eq!(t.dropped[0].0, junk.certificate);
    // Pinning the issuing CA: the root above it is not trusted.
    let t = scep_ca(offer, &pin(&ica.certificate), t0(), false).unwrap();
    assert_eq!(t.certificates.ca, ica.certificate);
    assert!(t.certificates.chain.is_empty());
    assert_eq!(t.certificates.ra, vec![the_ra]);
}

#[test]
fn no_pinned_certificate_among_those_served_is_a_fingerprint_mismatch() {
    let ca = root("CN=CA");
    let e = scep_ca(
        served(&ca.certificate, &[], &[]),
        &Trust::pin(&"00".repeat(32)),
        t0(),
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[test]
fn an_issued_certificate_must_be_ours_and_chain_to_the_pinned_ca() {
    let ca = root("CN=CA");
    let other = root("CN=CA");
    let ours = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let theirs = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let anchors = [ca.certificate.clone()];
    let good = leaf(&ca, &ours, t0());
    assert!(issued(&good, ours.public_key(), &anchors, &[], t0(), false).is_ok());
    // From another CA (with the same name).
    let e = issued(
        &leaf(&other, &ours, t0()),
        ours.public_key(),
        &anchors,
        &[],
        t0(),
        false,
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::Untrusted { .. }), "{e}");
    // For another key.
    let e = issued(&leaf(&ca, &theirs, t0()), ours.public_key(), &anchors, &[], t0(), false).unwrap_err();
    assert!(matches!(e, ClientError::NotOurCertificate(_)), "{e}");
    // A CA certificate for our key.
    let ca_cert = ca
        .new_intermediate(
            Box::new(SoftwareKey::from_pkcs8_der(&ours.to_pkcs8_der()).unwrap()),
            name("CN=sub"),
            t0(),
            DAY,
            &mut rand_core::OsRng,
        )
        .unwrap()
        .certificate;
    let e = issued(&ca_cert, ours.public_key(), &anchors, &[], t0(), false).unwrap_err();
    assert!(matches!(e, ClientError::NotOurCertificate(_)), "{e}");
    // Not valid now.
    let e = issued(&good, ours.public_key(), &anchors, &[], t0() + 400 * DAY, false).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Untrusted {
                error: PathError::Expired { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn an_est_bootstrap_keeps_the_pinned_chain_only() {
    let r = root("CN=Root");
    let ica = r
        .new_intermediate(key(), name("CN=Issuing"), t0() - DAY, 1000 * DAY, &mut rand_core::OsRng)
        .unwrap();
    let extra = root("CN=Extra");
    let offered = [
        ica.certificate.clone(),
        extra.certificate.clone(),
        r.certificate.clone(),
    ];
    let b = est_bootstrap(&offered, &[fingerprint::sha256(&r.certificate)], t0()).unwrap();
    assert_eq!(b.trusted, vec![ica.certificate.clone(), r.certificate.clone()]);
    assert_eq!(b.dropped.len(), 1);
    assert_eq!(b.dropped[0].0, extra.certificate);
    assert!(est_bootstrap(&offered, &["00".repeat(32)], t0()).is_err());
}

/// A TLS server certificate from `ca` for `dns` and `ips`, with `eku`.
fn server(ca: &Authority, dns: &[&str], ips: &[&str], eku: &[const_oid::ObjectIdentifier]) -> Vec<u8> {
    use der::Encode;
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let req = Request {
        subject: name("CN=est.example.net"),
        public_key: k.public_key().clone(),
        dns_names: dns.iter().map(|d| d.to_string()).collect(),
        ip_addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
    };
    let profile = Profile {
        extended_key_usage: eku.to_vec(),
        ..Profile::default()
    };
    ca.issue(&req, &profile, t0(), &mut rand_core::OsRng)
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn the_est_server_after_a_bootstrap_chains_to_the_anchors_for_server_auth_and_names_the_host() {
    use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
    use der::Encode;
    let r = root("CN=Root");
    let ica = r
        .new_intermediate(key(), name("CN=Issuing"), t0() - DAY, 1000 * DAY, &mut rand_core::OsRng)
        .unwrap();
    let leaf = server(&ica, &["est.example.net"], &["192.0.2.7"], &[ID_KP_SERVER_AUTH]);
    let chain = vec![leaf.clone(), ica.certificate.to_der().unwrap()];
    let anchors = [r.certificate.clone()];
    let now = t0() + DAY;
    // Chained through the intermediate the server sent, by name or address.
    let path = tls_server(&chain, &anchors, "est.example.net", now).unwrap();
    assert_eq!(path.anchor(), Some(&r.certificate));
    tls_server(&chain, &anchors, "EST.example.net.", now).unwrap();
    tls_server(&chain, &anchors, "192.0.2.7", now).unwrap();
    // Another host; no intermediate; another anchor; too late.
    let not_pinned = |r: Result<ValidatedPath, ClientError>| match r {
        Err(ClientError::ServerNotPinned(why)) => why,
        other => panic!("{other:?}"),
    };
    let why = not_pinned(tls_server(&chain, &anchors, "other.example.net", now));
    assert!(why.contains("not for \"other.example.net\""), "{why}");
    not_pinned(tls_server(
        std::slice::from_ref(&leaf),
        &anchors,
        "est.example.net",
        now,
    ));
    not_pinned(tls_server(
        &chain,
        &[root("CN=Root").certificate],
        "est.example.net",
        now,
    ));
    not_pinned(tls_server(&chain, &anchors, "est.example.net", t0() + 400 * DAY));
    // The intermediate itself may be the anchor.
    tls_server(&chain, std::slice::from_ref(&ica.certificate), "est.example.net", now).unwrap();
    // A client-only certificate is not a TLS server's.
    let client_only = server(&ica, &["est.example.net"], &[], &[ID_KP_CLIENT_AUTH]);
    let why = not_pinned(tls_server(
        &[client_only, ica.certificate.to_der().unwrap()],
        &anchors,
        "est.example.net",
        now,
    ));
    assert!(why.contains("TLS server"), "{why}");
    // No subjectAltName: the common name is not looked at.
    let no_san = server(&ica, &[], &[], &[ID_KP_SERVER_AUTH]);
    let why = not_pinned(tls_server(
        &[no_san, ica.certificate.to_der().unwrap()],
        &anchors,
        "est.example.net",
        now,
    ));
    assert!(why.contains("no subjectAltName"), "{why}");
    // Nothing sent, or garbage.
    assert!(not_pinned(tls_server(&[], &anchors, "est.example.net", now)).contains("no certificate"));
    not_pinned(tls_server(
        &[vec![0x30, 0x03, 1, 2, 3]],
        &anchors,
        "est.example.net",
        now,
    ));
}
