//! # enrolkit-pkix
//!
//! The bottom PKIX layer of enrolkit, under the protocol crates and beside
//! `enrolkit-keys`: what every protocol needs to decide whether to trust a
//! certificate, in one place.
//!
//! | module | what | RFC |
//! |---|---|---|
//! | [`ber`] | bounded BER → DER normalisation, and element-count bounds, before any `der` decoder | X.690 §8, §10; RFC 5652 §6.1 |
//! | [`fingerprint`] | SHA-256 fingerprints, and pins as people type them | — (RFC 7030 §4.1.1 out-of-band pin) |
//! | [`signature`] | which certificate signature algorithms are accepted; verifying one link | RFC 5280 §4.1.1.2, §6.1.3 (a)(1) |
//! | [`extensions`] | basicConstraints, keyUsage, extKeyUsage, and which critical extensions are understood | RFC 5280 §4.2 |
//! | [`purpose`] | what a certificate may be used for (TLS server/client, SCEP RA, OCSP signing) | RFC 5280 §4.2.1.12, RFC 6402 §2.10 |
//! | [`hostname`] | whether a certificate is for a host: subjectAltName dNSName/iPAddress, wildcards, no CN | RFC 9525 §6, RFC 5280 §4.2.1.6 |
//! | [`certs_only`] | the certs-only (degenerate) SignedData, certificates and CRLs in the caller's order | RFC 5652 §5; RFC 8894 §3.4; RFC 7030 §4.1.3; RFC 5272 §4.1 |
//! | [`binding`] | TLS channel binding values (tls-unique, tls-exporter) | RFC 5929 §3, RFC 9266 |
//! | [`ocsp`] | OCSP response status names | RFC 6960 §4.2.1 |
//! | [`pkcs10`] | certification requests: build, parse with proof of possession first, challengePassword, extensionRequest | RFC 2986, RFC 2985 §5.4 |
//! | [`chain`] | the one chain validator: pinned anchors, path building, every check of §6.1 we rely on, a revocation hook | RFC 5280 §6.1 |
//!
//! No I/O and no clock: the time a chain is checked at is an argument.
//! Nothing here panics on input from outside; every count is bounded.
#![forbid(unsafe_code)]

pub mod ber;
pub mod binding;
pub mod certs_only;
pub mod chain;
pub mod extensions;
pub mod fingerprint;
pub mod hostname;
pub mod ocsp;
pub mod pkcs10;
pub mod purpose;
pub mod signature;

pub use chain::{Anchors, NoRevocation, Options, PathError, RevocationCheck, ValidatedPath, Validator};
pub use purpose::Purpose;

/// A certificate's subject as text, for messages.
pub fn subject(cert: &x509_cert::Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}
