//! CRLs and OCSP responses as the agent receives them: checked against a
//! real certificate and its issuer, hostile bytes give an error, never a
//! panic, and never "revoked" or "good" from data the issuer did not sign.
#![no_main]
use enrolkit_client::revocation::{check_crl, check_ocsp_response};
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use libfuzzer_sys::fuzz_target;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};
use enrolkit_est::x509_cert::name::Name;
use enrolkit_est::x509_cert::Certificate;

fn pair() -> &'static (Certificate, Certificate) {
    static PAIR: OnceLock<(Certificate, Certificate)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let rng = &mut rand_core::OsRng;
        let key: Box<dyn Signer> = Box::new(SoftwareKey::generate(KeySpec::EcP256).expect("key"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let ca = enrolkit_pki::Authority::new_root(key, Name::from_str("CN=Fuzz CA").expect("name"), now, Duration::from_secs(86400 * 3650), rng)
            .expect("root");
        let leaf_key = SoftwareKey::generate(KeySpec::EcP256).expect("key");
        let req = enrolkit_pki::Request {
            subject: Name::from_str("CN=leaf").expect("name"),
            public_key: leaf_key.public_key().clone(),
            dns_names: vec![],
            ip_addresses: vec![],
        };
        let leaf = ca.issue(&req, &enrolkit_pki::Profile::default(), now, rng).expect("leaf");
        (leaf, ca.certificate.clone())
    })
}

fuzz_target!(|data: &[u8]| {
    let (leaf, issuer) = pair();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3600);
    // Random bytes carry no valid signature by the fuzz CA's fresh key.
    assert!(check_crl(data, leaf, issuer, now).is_err());
    assert!(check_ocsp_response(data, leaf, issuer, now, Some(&[1, 2, 3, 4])).is_err());
    let _ = check_ocsp_response(data, leaf, issuer, now, None);
});
