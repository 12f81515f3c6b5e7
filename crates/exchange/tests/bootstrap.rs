//! Bootstrap instruction parameters (seed tables 9.2.2.1-x and 9.2.2.3-x)
//! as TOML configuration: what each framework needs, refusals that name the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_exchange::bootstrap::{EnroleeAuthentication, EnroleeInstructions, Framework, MefEnroleeConfig};

#[test]
fn enrolee_instructions_per_framework() {
    let psk: EnroleeInstructions = toml::from_str(
        "framework = \"pre-provisioned-symmetric-key\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 3600\n",
    )
    .unwrap();
    psk.validate().unwrap();
    let cert: EnroleeInstructions = toml::from_str(
        "framework = \"certificate-based\"\nenrolment-target = \"CSE-b1\"\nmef-uri = \"https://mef.example.com:8444\"\nmef-trust-anchor = \"ta.pem\"\nenrolment-token = \"t-1\"\n",
    )
    .unwrap();
    cert.validate().unwrap();
    assert_eq!(cert.framework, Framework::CertificateBased);
    let missing: EnroleeInstructions =
        toml::from_str("framework = \"certificate-based\"\nenrolment-target = \"CSE-b1\"\n").unwrap();
    assert!(missing.validate().unwrap_err().to_string().contains("mef-uri"));
    let gba_extra: EnroleeInstructions =
        toml::from_str("framework = \"gba-based\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 5\n").unwrap();
    assert!(gba_extra.validate().is_err());
    assert!(toml::from_str::<EnroleeInstructions>("framework = \"psk\"\nenrolment-target = \"x\"\n").is_err());
    assert!(toml::from_str::<EnroleeInstructions>(
        "framework = \"gba-based\"\nenrolment-target = \"x\"\nsurprise = 1\n"
    )
    .is_err());
}

#[test]
fn mef_configuration_per_framework() {
    let c: MefEnroleeConfig = toml::from_str(
        "framework = \"certificate-based\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 60\n[authentication]\nkind = \"device-certificate\"\ndevice-id = \"dev-1\"\ntrust-anchor = \"dev-ca.pem\"\n",
    )
    .unwrap();
    c.validate().unwrap();
    assert!(matches!(
        c.authentication,
        Some(EnroleeAuthentication::DeviceCertificate { .. })
    ));
    let no_kpm: MefEnroleeConfig = toml::from_str(
        "framework = \"pre-provisioned-symmetric-key\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 60\n",
    )
    .unwrap();
    assert!(no_kpm.validate().unwrap_err().to_string().contains("kpm-id"));
    let zero: MefEnroleeConfig =
        toml::from_str("framework = \"gba-based\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 0\n").unwrap();
    assert!(zero.validate().unwrap_err().to_string().contains("enrolment-expiry"));
}
