//! # enrolkit-client
//!
//! Client flows over HTTP, composed from the wire-format crates: SCEP today
//! (GetCACaps, GetCACert with fingerprint pinning, enrolment with polling,
//! renewal, GetCert, GetCRL).
#![forbid(unsafe_code)]

pub mod bench;
pub mod scep;

pub use scep::{ClientError, PollPolicy, ScepClient, ScepSession};
