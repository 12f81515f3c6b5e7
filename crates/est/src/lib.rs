//! EST (RFC 7030 with the RFC 8951 clarifications) wire formats. Sans-I/O.
//!
//! This crate turns the bytes of Enrollment over Secure Transport into typed
//! values and back, for both the client and the server side:
//!
//! - [`path`]: the operations and `/.well-known/est/[label/]operation` paths;
//! - [`media`]: the exact media types to send and a tolerant Content-Type parser;
//! - [`body`]: RFC 8951 base64 bodies (any line breaks in, 64 columns out);
//!   the certs-only Simple PKI Response inside them is
//!   [`enrolkit_pkix::certs_only`] (certificates kept in order), its errors
//!   mapped onto [`EstError`];
//! - [`csrattrs`]: CSR attributes, including RFC 9908 templates;
//! - [`csr`]: filling in a PKCS#10 request so that it satisfies CSR
//!   attributes, and the server's check of a parsed one against them (the
//!   PKCS#10 codec itself is [`enrolkit_pkix::pkcs10`]);
//! - [`binding`]: tls-unique (RFC 5929) and tls-exporter (RFC 9266) channel
//!   bindings carried in the challengePassword (RFC 7030 §3.5);
//! - [`keygen`]: the multipart/mixed serverkeygen response (RFC 7030 §4.4.2);
//! - [`retry`]: Retry-After for 202 responses (RFC 7030 §4.2.3).
//!
//! What it deliberately does not do: no sockets, no HTTP, no TLS, no clock
//! and no randomness of its own. The caller runs the TLS session, hands in
//! the channel binding it exported, the time it read and the random bytes it
//! drew, and moves the bytes. Keys sign through [`enrolkit_keys::Signer`], so
//! a key may stay in a token.
//!
//! Every parser bounds what it reads (body size, item counts, nesting depth)
//! and fails with an [`EstError`] that names what was wrong.

pub mod binding;
pub mod body;
pub mod csr;
pub mod csrattrs;
pub mod error;
pub mod keygen;
pub mod media;
pub mod path;
pub mod retry;

pub use binding::{ChannelBinding, LinkedPassword, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
pub use body::{decode_base64, decode_body, encode_base64, MAX_BODY};
pub use csr::{check_key, check_satisfies, satisfy};
pub use csrattrs::{
    AttrOrOid, CertificationRequestInfoTemplate, CsrAttrs, ExtensionTemplate, KeyRequirement, NameTemplate,
    SingleAttributeTemplate, SubjectPublicKeyInfoTemplate,
};
pub use error::{EstError, Result};
pub use keygen::{encode_serverkeygen_response, new_boundary, parse_serverkeygen_response, ServerKeyGenResponse};
pub use media::{multipart_boundary, MediaType, BASE64, CONTENT_TRANSFER_ENCODING};
pub use path::{EstPath, Label, Operation, WELL_KNOWN};
pub use retry::RetryAfter;

/// The `der` crate this API is written against.
pub use der;
/// The `enrolkit-keys` crate (signers, key kinds, digests) this API uses.
pub use enrolkit_keys as keys;
/// The `enrolkit-pkix` crate whose PKCS#10 types this API reads and fills in.
pub use enrolkit_pkix as pkix;
/// The `x509-cert` crate whose types (Certificate, Name, CertReq) this API uses.
pub use x509_cert;

/// Object identifiers used by EST.
pub mod oid {
    use const_oid::ObjectIdentifier;

    /// id-data (RFC 5652).
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData (RFC 5652).
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// challengePassword (PKCS#9, RFC 2985 §5.4.1).
    pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
    /// extensionRequest / id-ExtensionReq (PKCS#9, RFC 2985 §5.4.2).
    pub const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
    /// id-aa-certificationRequestInfoTemplate (RFC 9908).
    pub const CERTIFICATION_REQUEST_INFO_TEMPLATE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.61");
    /// id-aa-extensionReqTemplate (RFC 9908).
    pub const EXTENSION_REQ_TEMPLATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.62");

    /// rsaEncryption (RFC 8017).
    pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// id-ecPublicKey (RFC 5480).
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// secp256r1 / prime256v1 (RFC 5480).
    pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 (RFC 5480).
    pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// secp521r1 (RFC 5480).
    pub const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

    /// sha256WithRSAEncryption (RFC 4055).
    pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha384WithRSAEncryption (RFC 4055).
    pub const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// sha512WithRSAEncryption (RFC 4055).
    pub const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// id-RSASSA-PSS (RFC 4055).
    pub const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
    /// ecdsa-with-SHA256 (RFC 5758).
    pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// ecdsa-with-SHA384 (RFC 5758).
    pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// ecdsa-with-SHA512 (RFC 5758).
    pub const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// id-Ed25519 (RFC 8410).
    pub const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
    /// id-Ed448 (RFC 8410).
    pub const ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

    /// Signature algorithms recognised as such in CSR attributes.
    pub const SIGNATURE_ALGORITHMS: [ObjectIdentifier; 9] = [
        SHA256_WITH_RSA,
        SHA384_WITH_RSA,
        SHA512_WITH_RSA,
        RSASSA_PSS,
        ECDSA_WITH_SHA256,
        ECDSA_WITH_SHA384,
        ECDSA_WITH_SHA512,
        ED25519,
        ED448,
    ];

    /// subjectAltName (RFC 5280).
    pub const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
    /// extKeyUsage (RFC 5280).
    pub const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
    /// id-kp-serverAuth (RFC 5280).
    pub const KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
    /// id-kp-clientAuth (RFC 5280).
    pub const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    /// commonName (X.520).
    pub const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    /// macAddress (RFC 2307), the example attribute of RFC 7030 §4.5.2.
    pub const MAC_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.1.1.1.22");
}
