//! Message protection (RFC 4210 §5.1.3): what a message claims, building
//! it, and checking it.
//!
//! ```text
//! PKIProtection ::= BIT STRING
//! ProtectedPart ::= SEQUENCE {
//!     header    PKIHeader,
//!     body      PKIBody }
//! ```
//!
//! The protection is computed over the DER ProtectedPart. A received
//! message's ProtectedPart is made from its header and body exactly as
//! received (after BER → DER normalisation, see [`crate::message`]), not
//! re-encoded from decoded values.

pub mod mac;
pub mod signature;

use crate::MacLimits;
use enrolkit_keys::{DigestAlgorithm, Signer};
use mac::{MacAlgorithm, SharedSecret};
use x509_cert::Certificate;

/// How we protect a message we build.
pub enum Protect<'a> {
    /// A MAC with a shared secret; `sender_kid` names the secret (RFC 9483
    /// §3.1: the reference the server gave with the secret).
    Mac {
        /// The secret.
        secret: &'a SharedSecret,
        /// Algorithm and parameters (see [`MacAlgorithm::pbmac1`]).
        algorithm: MacAlgorithm,
        /// senderKID.
        sender_kid: Vec<u8>,
    },
    /// A signature by `signer`, whose certificate goes first in extraCerts,
    /// followed by `chain` (its issuing CAs, RFC 9483 §3.3).
    Signature {
        /// The private key.
        signer: &'a dyn Signer,
        /// Its certificate (sender and senderKID come from it).
        certificate: &'a Certificate,
        /// Further extraCerts: the chain up to (not necessarily including) the root.
        chain: &'a [Certificate],
        /// Digest (SHA-256 unless a peer needs otherwise).
        digest: DigestAlgorithm,
    },
}

/// What protection a received message claims (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// A MAC, with its parameters (within the limits) and senderKID.
    Mac {
        /// The algorithm and parameters.
        algorithm: MacAlgorithm,
        /// senderKID: which secret (the server looks it up).
        sender_kid: Option<Vec<u8>>,
    },
    /// A signature with this protectionAlg OID, by the first extraCerts certificate.
    Signature {
        /// protectionAlg.
        algorithm: const_oid::ObjectIdentifier,
    },
    /// No protection.
    None,
}

/// The protection of a received message, after it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The MAC verified with the secret for senderKID.
    Mac {
        /// senderKID.
        sender_kid: Option<Vec<u8>>,
        /// Which MAC: PBMAC1 or the legacy PasswordBasedMac.
        algorithm: MacAlgorithm,
    },
    /// The signature verified with `signer`'s key; the caller decides
    /// whether `signer` is trusted (chain through `extra_certs`).
    Signature {
        /// The protection certificate (the first of extraCerts).
        signer: Box<Certificate>,
        /// The other extraCerts, for path building.
        extra_certs: Vec<Certificate>,
    },
}

/// Bounds for checking protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtectionPolicy {
    /// MAC parameter bounds.
    pub mac: MacLimits,
    /// Accept sha1WithRSAEncryption signatures.
    pub allow_sha1: bool,
}
