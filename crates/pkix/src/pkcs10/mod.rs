//! PKCS#10 certification requests (RFC 2986): build, parse, verify — the
//! one implementation SCEP, EST, the server and the client share.
//!
//! ```text
//! CertificationRequest ::= SEQUENCE {
//!      certificationRequestInfo CertificationRequestInfo,
//!      signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
//!      signature          BIT STRING
//! }
//!
//! CertificationRequestInfo ::= SEQUENCE {
//!      version       INTEGER { v1(0) } (v1,...),
//!      subject       Name,
//!      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
//!      attributes    [0] Attributes{{ CRIAttributes }}
//! }
//! ```
//!
//! | file | structure | source |
//! |---|---|---|
//! | [`params`] | what goes into a CertificationRequestInfo, and signing it | RFC 2986 §4.1, §4.2 |
//! | [`request`] | a received CertificationRequest, its signature verified | RFC 2986 §4.2, §3 step 4 |
//! | [`challenge`] | the challengePassword attribute | RFC 2985 §5.4.1 |
//! | [`extension_request`] | the extensionRequest attribute: subjectAltName, extKeyUsage, others | RFC 2985 §5.4.2, RFC 5280 §4.2.1.6, §4.2.1.12 |
//! | [`bounds`] | the size, depth and count limits every received request is held to | — |
//! | [`error`] | why a request could not be built or parsed | — |
//!
//! Decisions where the RFCs leave room, each with its reason:
//!
//! - **DER only.** A request is signed over its CertificationRequestInfo,
//!   so a peer that emits BER would have signed BER; neither SCEP nor EST
//!   ever accepted a BER request and no peer we test against sends one.
//!   The signature is verified over the CertificationRequestInfo bytes *as
//!   received*, not a re-encoding, so a SET OF in the wrong order (which
//!   the `der` crate sorts on decoding) still verifies.
//! - **Proof of possession first.** The signature is checked before any
//!   attribute is read; a tampered request never has its attributes looked at.
//! - **Critical extensions are not refused at parse time.** The
//!   extensionRequest holds extensions the requester *asks* for, not ones
//!   that constrain anything here; RFC 5280 §4.2's "MUST reject" is about
//!   certificates. Whether a requested extension is copied into a
//!   certificate is the issuing policy's decision (the server copies only
//!   the names and key purposes it understands). What is refused: an
//!   extensionRequest that does not decode, an extension requested twice,
//!   a subjectAltName or extKeyUsage whose value does not decode.
//! - **challengePassword strings.** Emitted as PrintableString when every
//!   character fits (a base64 channel binding does), else UTF8String — what
//!   both former copies did and what OpenSSL, micromdm and certmonger read.
//!   Read from any of PrintableString, UTF8String, IA5String,
//!   VisibleString, TeletexString (as Latin-1) and BMPString; at most 255
//!   characters (ub-challengePassword); at most one attribute with one
//!   value. Built with 1 to 255 characters; an empty one is read (SCEP
//!   clients have sent one with a renewal) but never emitted.

pub mod bounds;
pub mod challenge;
pub mod error;
pub mod extension_request;
pub mod params;
pub mod request;

pub use bounds::{MAX_ATTRIBUTES, MAX_CSR, MAX_DEPTH, MAX_ELEMENTS, MAX_EXTENSIONS};
pub use challenge::MAX_CHALLENGE;
pub use error::Pkcs10Error;
pub use extension_request::ip_from_octets;
pub use params::{signature_algorithm_for, RequestParams};
pub use request::{public_key_algorithm, rsa_bits, rsa_modulus_bits, CertificationRequest};

/// Object identifiers of the PKCS#9 attributes a request carries.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// pkcs-9-at-challengePassword (RFC 2985 §5.4.1).
    pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
    /// pkcs-9-at-extensionRequest (RFC 2985 §5.4.2).
    pub const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
}
