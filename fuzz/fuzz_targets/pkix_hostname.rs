//! enrolkit-pkix host names: the first line of the input as a reference
//! identity (a host name or an IP literal), the rest as presented dNSName
//! and iPAddress values and, when it decodes, a certificate to verify
//! against: never a panic, and a reference matches its own presented form.
#![no_main]
use der::Decode;
use enrolkit_pkix::hostname::{verify, Reference};
use libfuzzer_sys::fuzz_target;
use x509_cert::Certificate;

fuzz_target!(|data: &[u8]| {
    let (head, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(host) = std::str::from_utf8(head) else { return };
    if let Ok(reference) = Reference::parse(host) {
        if let Ok(presented) = std::str::from_utf8(rest) {
            for line in presented.lines().take(16) {
                let _ = reference.matches_dns(line);
            }
        }
        let _ = reference.matches_ip(rest);
        if let Reference::Dns(name) = &reference {
            assert!(reference.matches_dns(name), "{name:?} does not match itself");
        }
    }
    if let Ok(cert) = Certificate::from_der(rest) {
        let _ = verify(&cert, host);
    }
});
