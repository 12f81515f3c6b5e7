//! The flows' local decisions, without a server: the names a re-enrolment
//! repeats, what an RSPF grant allows, how outputs are written, the
//! numbering of the oneM2M steps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::est::{key_for, same_names};
use super::onem2m::OneM2mStep;
use super::rspf::CertificateGrant;
use super::Outputs;
use crate::est::EstServer;
use enrolkit_est::CsrAttrs;
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use enrolkit_pki::{Authority, Profile, Request};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;

fn ca() -> Authority {
    Authority::new_root(
        Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
        Name::from_str("CN=Flow Test CA").unwrap(),
        SystemTime::now(),
        Duration::from_secs(86400),
        &mut rand_core::OsRng,
    )
    .unwrap()
}

fn leaf(ca: &Authority, dns: &[&str], ips: &[&str]) -> Certificate {
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let req = Request {
        subject: Name::from_str("CN=device-7,O=example").unwrap(),
        public_key: k.public_key().clone(),
        dns_names: dns.iter().map(|d| d.to_string()).collect(),
        ip_addresses: ips.iter().map(|i| i.parse().unwrap()).collect(),
    };
    ca.issue(&req, &Profile::default(), SystemTime::now(), &mut rand_core::OsRng)
        .unwrap()
}

#[test]
fn a_re_enrolment_repeats_the_subject_and_subject_alt_names_of_the_current_certificate() {
    let ca = ca();
    let cert = leaf(&ca, &["a.example.net", "b.example.net"], &["192.0.2.7", "2001:db8::1"]);
    let r = same_names(&cert).unwrap();
    assert_eq!(r.subject, cert.tbs_certificate.subject);
    assert_eq!(r.dns_names, ["a.example.net", "b.example.net"]);
    assert_eq!(
        r.ip_addresses,
        [
            "192.0.2.7".parse::<std::net::IpAddr>().unwrap(),
            "2001:db8::1".parse().unwrap()
        ]
    );
    assert!(r.ekus.is_empty() && r.challenge_password.is_none());
    let bare = same_names(&leaf(&ca, &[], &[])).unwrap();
    assert!(bare.dns_names.is_empty() && bare.ip_addresses.is_empty());
}

#[test]
fn without_csr_attributes_the_callers_key_type_stands() {
    for spec in [KeySpec::EcP256, KeySpec::Rsa3072] {
        assert_eq!(key_for(&CsrAttrs::new(), spec).unwrap(), spec);
    }
}

#[test]
fn an_rspf_grant_names_its_est_server_and_requires_its_ekus() {
    let mef = EstServer::parse("https://mef.example.net:8444").unwrap();
    let mut c = enrolkit_exchange::CertificateEnrolment {
        security_type: vec![],
        eku: vec!["1.3.6.1.5.5.7.3.2".into()],
        est_uri: None,
    };
    let g = CertificateGrant::of(&c, &mef).unwrap();
    assert_eq!(g.server, mef);
    // The test CA's profile issues clientAuth only.
    let cert = leaf(&ca(), &[], &[]);
    g.check(&cert).unwrap();
    c.eku.push("1.3.6.1.5.5.7.3.1".into());
    let e = CertificateGrant::of(&c, &mef).unwrap().check(&cert).unwrap_err();
    assert!(e.to_string().contains("1.3.6.1.5.5.7.3.1"), "{e}");
    c.est_uri = Some("https://est.example.net/dev".into());
    assert_eq!(CertificateGrant::of(&c, &mef).unwrap().server.host, "est.example.net");
    c.eku = vec!["not an oid".into()];
    let e = CertificateGrant::of(&c, &mef).unwrap_err();
    assert!(e.to_string().contains("malformed EKU"), "{e}");
}

#[test]
fn outputs_are_pem_or_der_and_the_chain_only_when_asked() {
    let ca = ca();
    let cert = leaf(&ca, &[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let pem = Outputs {
        certificate: dir.path().join("cert.pem"),
        chain: None,
        der: false,
    };
    pem.write(&cert, std::slice::from_ref(&ca.certificate)).unwrap();
    let text = std::fs::read_to_string(&pem.certificate).unwrap();
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    assert!(!dir.path().join("chain.pem").exists());
    let der = Outputs {
        certificate: dir.path().join("cert.der"),
        chain: Some(dir.path().join("chain.der")),
        der: true,
    };
    der.write(&cert, &[ca.certificate.clone(), ca.certificate.clone()])
        .unwrap();
    assert_eq!(
        std::fs::read(&der.certificate).unwrap(),
        der::Encode::to_der(&cert).unwrap()
    );
    let one = der::Encode::to_der(&ca.certificate).unwrap();
    assert_eq!(
        std::fs::read(der.chain.as_ref().unwrap()).unwrap(),
        [one.clone(), one].concat()
    );
}

#[test]
fn the_onem2m_steps_are_numbered_as_in_the_call_flow() {
    let attrs = CsrAttrs::new();
    let steps = [
        OneM2mStep::TrustAnchors { pinned: true },
        OneM2mStep::CsrAttrsAsked,
        OneM2mStep::CsrAttrs(&attrs),
        OneM2mStep::KeyPair(KeySpec::EcP256),
        OneM2mStep::CsrBuilt,
        OneM2mStep::Enrolling,
        OneM2mStep::Received,
        OneM2mStep::Validated,
        OneM2mStep::Ekus,
        OneM2mStep::KeyInstalled,
        OneM2mStep::CertificateInstalled,
        OneM2mStep::AnchorsInstalled,
        OneM2mStep::Done,
    ];
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s.number() as usize, i + 1, "{s}");
    }
    assert_eq!(steps[2].to_string(), "CSR attributes: none");
    assert_eq!(steps[3].to_string(), "key pair: EcP256");
}

#[test]
fn a_key_store_error_names_the_key_only_when_asked() {
    let error = || enrolkit_pkcs11::Pkcs11Error::NoModule;
    let bare = crate::ClientError::from(error()).to_string();
    assert!(bare.starts_with("the PKCS#11 URI names no module"), "{bare}");
    let named = crate::ClientError::KeyStore {
        at: Some("pkcs11:token=t;object=k".into()),
        error: error(),
    };
    assert!(
        named.to_string().starts_with("pkcs11:token=t;object=k: the PKCS#11"),
        "{named}"
    );
}
