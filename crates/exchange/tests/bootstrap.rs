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
    let zero: MefEnroleeConfig = toml::from_str(
        "framework = \"gba-based\"\nenrolment-target = \"CSE-b1\"\nenrolment-expiry = 0\nimpi = \"u@ims.example\"\n",
    )
    .unwrap();
    assert!(zero.validate().unwrap_err().to_string().contains("enrolment-expiry"));
}

#[test]
fn parameters_a_framework_does_not_take_are_refused() {
    let cases = [
        ("framework = \"pre-provisioned-symmetric-key\"\nenrolment-target = \"C\"\nenrolment-expiry = 0\n", "enrolment-expiry"),
        ("framework = \"pre-provisioned-symmetric-key\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\nmef-uri = \"https://m.example\"\n", "mef-uri"),
        ("framework = \"certificate-based\"\nenrolment-target = \"C\"\nmef-uri = \"ftp://m.example\"\nmef-trust-anchor = \"t.pem\"\n", "mef-uri"),
        ("framework = \"certificate-based\"\nenrolment-target = \"C\"\nmef-uri = \"https://m.example\"\nmef-trust-anchor = \"\"\n", "mef-trust-anchor"),
        ("framework = \"certificate-based\"\nenrolment-target = \"C\"\nmef-uri = \"https://m.example\"\nmef-trust-anchor = \"t.pem\"\nenrolment-expiry = 5\n", "enrolment-expiry"),
        ("framework = \"gba-based\"\nenrolment-target = \"C\"\nenrolment-token = \"t\"\n", "enrolment-token"),
    ];
    for (t, field) in cases {
        let i: EnroleeInstructions = toml::from_str(t).unwrap();
        let e = i.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{t}: {e}");
    }
    let mef = [
        ("framework = \"gba-based\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\nimpi = \"u@ims.example\"\nkpm-id = \"\"\n", "kpm-id"),
        ("framework = \"gba-based\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\n", "impi"),
        ("framework = \"gba-based\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\nimpi = \"u @ims\"\n", "impi"),
        ("framework = \"pre-provisioned-symmetric-key\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\nkpm-id = \"k\"\nimpi = \"u@ims.example\"\n", "impi"),
        ("framework = \"certificate-based\"\nenrolment-target = \"C\"\nenrolment-expiry = 5\n[authentication]\nkind = \"raw-public-key\"\npublic-key-id = \"\"\n", "public-key-id"),
        ("framework = \"gba-based\"\nenrolment-target = \"C\"\nenrolment-expiry = 999999999999\n", "enrolment-expiry"),
    ];
    for (t, field) in mef {
        let c: MefEnroleeConfig = toml::from_str(t).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{t}: {e}");
    }
    let tok: EnroleeInstructions = toml::from_str(
        "framework = \"certificate-based\"\nenrolment-target = \"C\"\nmef-uri = \"https://m.example\"\nmef-trust-anchor = \"t.pem\"\nenrolment-token = \"s3cret\"\n",
    )
    .unwrap();
    tok.validate().unwrap();
    assert!(!format!("{tok:?}").contains("s3cret"));
}
