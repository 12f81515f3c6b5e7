//! # enrolkit-server
//!
//! The servers of enrolkit, composed from the protocol crates: today the
//! SCEP responder acting as RA in front of the local CA of `enrolkit-pki`,
//! with its authorisation policy and its storage (SQLite, or PostgreSQL), and
//! the CA's OCSP responder, and the CMP server ([`cmp`]).
#![forbid(unsafe_code)]

pub mod cmp;
pub mod config;
pub mod est;
pub mod handshake;
pub mod held;
pub mod http;
pub mod keygate;
pub mod lifecycle;
pub mod metrics;
pub mod ocsp;
pub mod proxy;
pub mod ra;
pub mod rspf;
pub mod scep;
pub mod seal;
pub mod setup;
pub mod storage;

pub use ra::{Authoriser, Policy, Verifier};
pub use scep::{Ciphers, HttpRequest, HttpResponse, ScepService, ScepSetup};
pub use storage::{PgStorage, SqliteStorage, Storage};
