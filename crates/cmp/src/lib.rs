//! # enrolkit-cmp
//!
//! CMPv2 (RFC 4210, updated by RFC 9480; algorithms of RFC 9481) messages
//! without I/O, shaped by the Lightweight CMP Profile (RFC 9483): typed
//! PKIMessages parsed within bounds and built as DER, protection by
//! signature ([`enrolkit_keys::Signer`]) or by MAC (PBMAC1 and the legacy
//! PasswordBasedMac), proof of possession, transactionID and nonce checks,
//! and the two sides: [`Requester`] (client) and [`Responder`] (server).
//! Time and randomness are arguments; HTTP transfer (RFC 6712) is the
//! caller's.
//!
//! | module | structure | RFC |
//! |---|---|---|
//! | [`message`] | PKIMessage, ProtectedPart, [`Limits`] | RFC 4210 §5.1 |
//! | [`header`] | PKIHeader, PKIFreeText | RFC 4210 §5.1.1, RFC 9480 §2.20 |
//! | [`body`] | PKIBody, [`BodyType`] | RFC 4210 §5.1.2 |
//! | [`protection`] | protection: [`protection::mac`] (PBMAC1, PasswordBasedMac), [`protection::signature`] | RFC 4210 §5.1.3, RFC 9481 §3, §6 |
//! | [`request`] | CertReqMessages, CertReqMsg, CertRequest, CertTemplate, controls | RFC 4211 §3, §5, §6 |
//! | [`pop`] | POPOSigningKey | RFC 4211 §4.1 |
//! | [`response`] | CertRepMessage, CertResponse, CertifiedKeyPair | RFC 4210 §5.3.4 |
//! | [`confirm`] | CertConfirmContent, CertStatus, certHash | RFC 4210 §5.3.18, RFC 9480 §2.10 |
//! | [`poll`] | PollReqContent, PollRepContent | RFC 4210 §5.3.22 |
//! | [`revocation`] | RevReqContent, RevDetails, RevRepContent | RFC 4210 §5.3.9–10 |
//! | [`general`] | InfoTypeAndValue; caCerts, rootCaCert/rootCaKeyUpdate, certReqTemplate | RFC 4210 §5.3.19–20, RFC 9480 §2.14–16, RFC 9483 §4.3 |
//! | [`error_msg`] | ErrorMsgContent | RFC 4210 §5.3.21 |
//! | [`status`] | PKIStatus, PKIFailureInfo, PKIStatusInfo | RFC 4210 §5.2.3 |
//! | [`transaction`] | transactionID, senderNonce, recipNonce | RFC 4210 §5.1.1, RFC 9483 §3.1 |
//! | [`requester`] | client: ir/cr/kur/p10cr/rr/genm/certConf/pollReq, opening answers | RFC 9483 §4 |
//! | [`responder`] | server: typed verified requests; ip/cp/kup/rp/genp/pollRep/pkiConf/error | RFC 9483 §4, §5 |
//!
//! ## RustCrypto `cmpv2`/`crmf` and our own types
//!
//! The `cmpv2` 0.2.0 and `crmf` 0.2.0 crates (der 0.7) are used where they
//! are right: `PKIStatus`, `InfoTypeAndValue`, `CertifiedKeyPair`,
//! `PBMParameter`, `ProofOfPossession`/`POPOSigningKey`, `Controls`,
//! `CertId`, `OptionalValidity`. Where they fall short this crate has its
//! own derive-driven types, and each module says why: `cmpv2` decodes a
//! pollReq as PollRepContent and PollRepContent as one SEQUENCE, gives
//! badTime the bit of badRequest, keeps ErrorMsgContent's fields private,
//! has no cmp2021 pvno and no certStatus hashAlg; `crmf` types the
//! template's validity as an X.509 `Validity` instead of `OptionalValidity`
//! and regInfo as `Attribute`s.
//!
//! ## Bounds
//!
//! Input is bounded before any decoder runs ([`Limits`]: size, depth,
//! elements per SET), then counts of requests, certificates and ITAVs;
//! MAC parameters are bounded ([`MacLimits`]) before any key derivation,
//! so a peer cannot make us iterate a hash a billion times. Nothing
//! panics on input; errors are [`CmpError`] values with the
//! PKIFailureInfo a server answers ([`CmpError::failure_info`]).
#![forbid(unsafe_code)]

pub mod body;
pub mod confirm;
pub mod error;
pub mod error_msg;
pub mod general;
pub mod header;
pub mod message;
pub mod oid;
pub mod poll;
pub mod pop;
pub mod protection;
pub mod request;
pub mod requester;
pub mod responder;
pub mod response;
pub mod revocation;
pub mod status;
pub mod transaction;

pub use body::{BodyType, PkiBody};
pub use error::{CmpError, Result};
pub use general::{GenRequest, GenResponse};
pub use header::PkiHeader;
pub use message::{Limits, PkiMessage};
pub use protection::mac::{HmacAlgorithm, MacAlgorithm, MacLimits, Owf, SharedSecret};
pub use protection::{Claimed, Protect, ProtectionPolicy, Verified};
pub use requester::{Answer, CertificateRequest, Opened, Requester, ResponseTrust, Sent};
pub use responder::{CertRequestKind, CertificateOutcome, Received, ReplyTo, Request, Responder, VerifiedRequest};
pub use status::{FailureInfo, FailureInfoSet, PkiStatus, PkiStatusInfo};
pub use transaction::Exchange;

pub use enrolkit_keys as keys;
pub use enrolkit_pkix as pkix;
pub use x509_cert;
