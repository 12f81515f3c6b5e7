//! # enrolkit-scep
//!
//! SCEP (RFC 8894, and draft-nourse clients) messaging without I/O: typed
//! protocol values, GetCACaps and GetCACert bodies, and the pkiMessage
//! layers (SignedData over EnvelopedData) built and opened on both the
//! client and the responder side. Time, randomness and keys are handed in;
//! private-key operations go through [`enrolkit_keys::Signer`] and
//! [`enrolkit_keys::Decryptor`], so a PKCS#11 token can hold them.
//!
//! Strict out, tolerant in: we emit DER; we accept BER (indefinite lengths,
//! chunked OCTET STRINGs) and the GET (base64, URL-encoded) form, every
//! length bounded, every failure a [`ScepError`] that says what was wrong.
//!
//! ```
//! use enrolkit_scep::{Capabilities, ContentEncryption};
//! let caps = Capabilities::parse(b"AES\nPOSTPKIOperation\nSHA-256\n").unwrap();
//! assert_eq!(caps.choose_cipher(&[ContentEncryption::Aes128Cbc]), Some(ContentEncryption::Aes128Cbc));
//! ```
#![forbid(unsafe_code)]

mod asn1;
pub mod cacert;
pub mod caps;
pub mod certificate;
mod cipher;
pub mod codes;
mod content_info;
pub mod enveloped;
pub mod error;
pub mod message;
pub mod rejection;
pub mod selfsigned;
pub mod signed;
pub mod transport;
pub mod types;

pub use asn1::RawCertificate;
pub use cacert::CaCertificates;
pub use caps::{Capabilities, Capability};
pub use certificate::{issuer_and_serial, same_certificate, to_raw, to_rfc5280};
pub use codes::{FailInfo, MessageType, PkiStatus};
pub use enveloped::{envelope_cipher, open_envelope, seal_envelope};
pub use error::{Result, ScepError};
pub use message::{
    build_cert_rep, build_request, open_cert_rep, CertRep, IssuerAndSubject, Outcome, PkiMessage, ReplyTo, Request,
    RequestBody, Requester, Responder, SentRequest,
};
pub use rejection::RejectionKey;
pub use selfsigned::self_signed_certificate;
pub use signed::sign_data;
pub use transport::{Operation, Query};
pub use types::{ContentEncryption, Nonce, TransactionId};

pub use enrolkit_keys as keys;
/// The PKIX layer whose PKCS#10 requests (`pkix::pkcs10`) PKCSReq and RenewalReq carry.
pub use enrolkit_pkix as pkix;
pub use x509_cert;
