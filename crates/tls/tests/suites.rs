//! Which TLS 1.2 suites have an ephemeral key exchange, against OpenSSL's
//! own table (`openssl ciphers -V`, its `Kx=` column): the forward-secrecy
//! policy of the oneM2M MEF rests on this classification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_tls::tls12_suite_is_ephemeral;
use std::process::Command;

#[test]
fn the_classification_agrees_with_openssl_for_every_tls12_suite_it_knows() {
    let o = Command::new("openssl")
        .args(["ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .output()
        .expect("the openssl command line (installed by .ci/run)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let (mut ephemeral, mut not) = (0, 0);
    for line in text.lines() {
        // " 0xC0,0x2C - ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA …"
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(code), Some(name), Some(kx)) = (f.first(), f.get(2), f.iter().find_map(|x| x.strip_prefix("Kx=")))
        else {
            continue;
        };
        if f.get(3) == Some(&"TLSv1.3") {
            continue;
        }
        let (hi, lo) = code.split_once(',').unwrap();
        let n = |h: &str| u8::from_str_radix(h.trim_start_matches("0x"), 16).unwrap();
        let suite = u16::from_be_bytes([n(hi), n(lo)]);
        // OpenSSL 3 has no static (EC)DH suites: its ECDH and DH are ephemeral.
        let want = matches!(kx, "ECDH" | "DH" | "ECDHEPSK" | "DHEPSK");
        assert_eq!(tls12_suite_is_ephemeral(suite), want, "{name} {suite:#06x} Kx={kx}");
        if want {
            ephemeral += 1
        } else {
            not += 1
        }
    }
    assert!(
        ephemeral >= 20 && not >= 10,
        "{ephemeral} ephemeral, {not} not: OpenSSL's table was read"
    );
    // The suites the MEF's PSK listener offers, and TS-0003 10.2.2's mandatory one.
    assert!(tls12_suite_is_ephemeral(0xC037), "ECDHE-PSK-AES128-CBC-SHA256");
    assert!(tls12_suite_is_ephemeral(0xCCAC), "ECDHE-PSK-CHACHA20-POLY1305");
    assert!(!tls12_suite_is_ephemeral(0x00AE), "PSK-AES128-CBC-SHA256");
    assert!(!tls12_suite_is_ephemeral(0x00A8), "PSK-AES128-GCM-SHA256");
}
