//! The device agent (seed `000` clause 8.3.6.3.3): provisioning profiles,
//! the sans-I/O state machine that obtains, renews, checks and replaces a
//! credential, the transactional store, and the driver that does the I/O.

pub mod chain;
pub mod cmp;
pub mod driver;
pub mod machine;
pub mod profile;
pub mod rspf;
pub mod store;

pub use driver::{run_daemon, run_once, Driver, Outcome};
pub use machine::{Action, Event, Machine, Policy, RevocationMode, Status};
pub use profile::{Profile, ProfileError};
#[cfg(test)]
mod tests;
