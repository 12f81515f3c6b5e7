//! oneM2M Remote Security Provisioning messages: the Enrolment Exchange in
//! two wire profiles — the seed change request's (clause 8.3.3.1,
//! [`messages`]) and TS-0003 V3.18.0's (clause 8.3.2.1, [`v318`]) — and
//! MEF Key Retrieval ([`retrieval`]: V3.18.0 8.3.2.1 step f and the seed's
//! 8.3.3.6 request forms, tables 8.3.2.1-5/-6 answers, and our stand-in for
//! Zn when the MEF is the GBA BSF).
//!
//! TS-0003 lists the parameters of these messages but leaves their
//! serialisation open ("could be serialized using, for example, XML or
//! JSON"). This crate fixes one: the element and member names below, in
//! JSON (`application/json`) and XML (`application/xml`), always written in
//! the same order with no insignificant whitespace, so a message has exactly
//! one encoding per format. Parsing is strict: unknown or repeated fields,
//! attributes, wrong types, values out of range and inconsistent
//! combinations are refused with an error that names the field, and input
//! is bounded ([`MAX_MESSAGE`], [`MAX_LIST`], [`MAX_TEXT`]).
#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod error;
pub mod format;
pub mod messages;
pub mod retrieval;
pub mod v318;

pub use error::{ExchangeError, Result};
pub use format::{decode, encode, Format, Message, MAX_LIFETIME, MAX_LIST, MAX_MESSAGE, MAX_TEXT};
pub use messages::{
    CertificateEnrolment, CommSecurityType, Completion, DirectKey, EnrolmentInstructions, EnrolmentRequest,
    MafCredentialType, MafEnrolment, Procedure, Refused,
};
pub use retrieval::{CredentialResponse, FetchRequest, GbaFetchRequest, FETCH_PREFIX, MAX_FETCH_PATH};
pub use v318::{ExchangeRequest, ExchangeResponse, ExchangeResponses, InstructionType, WireProfile};
