//! # enrolkit-client
//!
//! Client flows over HTTP, composed from the wire-format crates: SCEP
//! (GetCACaps, GetCACert with fingerprint pinning, enrolment with polling,
//! renewal, GetCert, GetCRL) and EST (cacerts with bootstrap pinning,
//! csrattrs, simple(re)enroll with channel binding, serverkeygen, 202 waits),
//! the enrolment flows the `enrol` client runs ([`flow`]: key choice and
//! storage, waiting, validation, outputs), and the device agent that keeps
//! a credential valid on its own.
#![forbid(unsafe_code)]

pub mod agent;
pub mod bench;
pub mod cmp;
pub mod est;
pub mod flow;
pub mod https;
pub mod revocation;
pub mod rspf;
pub mod scep;
pub mod trust;

pub use scep::{ClientError, PollPolicy, RenewalForm, ScepClient, ScepSession};
pub use trust::Trust;
