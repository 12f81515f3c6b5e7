//! oneM2M Remote Security Provisioning key derivation (TS-0003 clause 8.3,
//! with the derivations of clause 10.3) and the 3GPP TS 33.220 GBA KDF.
//!
//! Sans-I/O: the TLS stack exports the keying material (RFC 5705 for TLS 1.2,
//! RFC 8446 §7.5 for TLS 1.3) with [`enrolment::EXPORTER_LABEL`]; this crate
//! turns it into the Enrolment Key and its identifiers, then derives the
//! credentials the Enrolee and the MEF provision. Derivations allocate
//! nothing (normalising an Enrolment-Target-ID to its FQDN form does);
//! secrets are [`Key256`] (zeroized on drop, compared in constant
//! time, never printed); identifiers are validated before use.
#![forbid(unsafe_code)]

pub mod enrolment;
pub mod error;
pub mod fqdn;
pub mod gba;
pub mod kdf;
pub mod pkid;
pub mod secret;
pub mod suid;
pub mod target;

pub use error::{Result, RspfError};
pub use fqdn::Fqdn;
pub use pkid::PublicKeyId;
pub use secret::Key256;
pub use suid::Suid;
pub use target::TargetFqdn;
