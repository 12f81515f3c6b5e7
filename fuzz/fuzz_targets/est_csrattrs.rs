//! CSR attributes: never panic in the decoder or any reader; what decodes
//! re-encodes to something that decodes the same.
#![no_main]
use enrolkit_est::keys::KeyKind;
use enrolkit_est::CsrAttrs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(attrs) = CsrAttrs::from_der(data) else { return };
    let _ = attrs.challenge_password_requested();
    let _ = attrs.requested_extensions();
    let _ = attrs.requested_ekus();
    let _ = attrs.extension_request_oids();
    let _ = attrs.key_requirement();
    let _ = attrs.signature_algorithm();
    if let Ok(Some(t)) = attrs.template() {
        let _ = t.subject_name();
        let _ = t.key_requirement();
    }
    let _ = enrolkit_est::csr::check_key(&attrs, KeyKind::EcP256);
    let mut req = enrolkit_est::pkix::pkcs10::RequestParams::new(Default::default());
    let _ = enrolkit_est::satisfy(&mut req, &attrs, None);
    if let Ok(der) = attrs.to_der() {
        assert_eq!(CsrAttrs::from_der(&der).expect("our encoding must decode"), attrs);
    }
});
