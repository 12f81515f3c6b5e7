//! RFC 7512 `pkcs11:` URIs (profiles, command lines, mef.toml): any text is
//! parsed or refused with a typed error, never a panic; what parses prints
//! back (without a PIN value) to a URI that parses to the same thing.
#![no_main]
use enrolkit_pkcs11::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(mut uri) = Pkcs11Uri::parse(text) {
        let shown = uri.to_string();
        let again = Pkcs11Uri::parse(&shown).expect("a printed URI parses");
        if uri.pin_source().is_none() {
            uri.clear_pin();
        }
        assert_eq!(again, uri, "{shown}");
    }
});
