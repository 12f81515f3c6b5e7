//! Keys that live inside a PKCS#11 token (an HSM, a smart card, SoftHSM2)
//! and never leave it, behind the [`enrolkit_keys::Signer`] and
//! [`enrolkit_keys::Decryptor`] traits.
//!
//! The SCEP, EST and CA code signs and decrypts only through those traits,
//! so a [`Pkcs11Key`] signs CSRs, SCEP messages, certificates and CRLs and
//! decrypts SCEP CertReps exactly as a software key does, while the private
//! key is generated in the token as sensitive and non-extractable.
//!
//! A key is named by an RFC 7512 URI ([`Pkcs11Uri`]), for SoftHSM2 e.g.
//! `pkcs11:token=enrolkit;object=device;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin`:
//!
//! ```no_run
//! # fn main() -> Result<(), enrolkit_pkcs11::Pkcs11Error> {
//! use enrolkit_keys::{KeySpec, Signer, SignatureAlgorithm};
//! use enrolkit_pkcs11::{Pkcs11Uri, Token};
//! let uri: Pkcs11Uri = "pkcs11:token=enrolkit?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234".parse()?;
//! let token = Token::open(&uri)?;
//! let key = token.generate(KeySpec::EcP256, "device", &[1])?;
//! assert!(!key.attributes()?.extractable);
//! let sig = key.sign(SignatureAlgorithm::EcdsaP256Sha256, b"to be signed")?;
//! # let _ = sig; Ok(()) }
//! ```
//!
//! Modules are loaded and initialised once per process and stay loaded.
//! Each token has one session per process, shared by every [`Token`] and
//! [`Pkcs11Key`] opened on it and serialised by a mutex; it is closed (and
//! the token logged out) when the last of them is dropped.

mod key;
mod location;
mod token;
pub mod uri;

pub use key::{KeyProtection, Pkcs11Key};
pub use location::KeyLocation;
pub use token::Token;
pub use uri::{ObjectType, Pkcs11Uri, UriError};

use enrolkit_keys::KeyError;
use std::path::PathBuf;

/// Errors from opening tokens and finding or generating keys in them.
///
/// Each says what to change: the URI attribute to add, the PIN that was
/// wrong, the token labels that are present. None carries a PIN.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The URI was malformed.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The URI names no module to load.
    #[error("the PKCS#11 URI names no module: add ?module-path=/path/to/module.so (for SoftHSM2 e.g. /usr/lib/softhsm/libsofthsm2.so)")]
    NoModule,
    /// `module-name` did not resolve to a file in the usual directories.
    #[error("PKCS#11 module {name:?} not found (looked in {searched}); use module-path instead")]
    ModuleNotFound {
        /// The module name from the URI.
        name: String,
        /// The directories searched.
        searched: String,
    },
    /// The module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// The loader's or the module's reason.
        reason: String,
    },
    /// No initialised token matches the URI.
    #[error("no PKCS#11 token matches {wanted} (tokens present: {available})")]
    TokenNotFound {
        /// The token attributes of the URI.
        wanted: String,
        /// The tokens the module offers.
        available: String,
    },
    /// More than one token matches the URI.
    #[error("several PKCS#11 tokens match {wanted}: {candidates}; add token= or serial= to the URI")]
    AmbiguousToken {
        /// The token attributes of the URI.
        wanted: String,
        /// The matching tokens.
        candidates: String,
    },
    /// The token needs a login and the URI has no PIN.
    #[error("token {token:?} needs the user PIN: add pin-value or pin-source to the URI")]
    PinRequired {
        /// Token label.
        token: String,
    },
    /// The token refused the PIN (wrong, or of a length it never accepts).
    #[error("wrong user PIN for token {token:?}")]
    PinIncorrect {
        /// Token label.
        token: String,
    },
    /// The user PIN is locked after too many failures.
    #[error("the user PIN of token {token:?} is locked")]
    PinLocked {
        /// Token label.
        token: String,
    },
    /// The user PIN has expired and must be changed first.
    #[error("the user PIN of token {token:?} has expired and must be changed")]
    PinExpired {
        /// Token label.
        token: String,
    },
    /// This process is already logged in to the token with another PIN
    /// (PKCS#11 login is per process and token, so it cannot be checked).
    #[error("token {token:?} is already open in this process with a different PIN")]
    PinMismatch {
        /// Token label.
        token: String,
    },
    /// The `pin-source` file could not be used.
    #[error("cannot read the PIN from {}: {reason}", path.display())]
    PinSource {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The URI or call names no key (neither `object=` nor `id=`).
    #[error("no key named: add object= (label) or id= to the PKCS#11 URI")]
    NoObject,
    /// The URI names an object that is not a key pair (`type=cert` etc.).
    #[error("the PKCS#11 URI names a {0} object, not a private key")]
    NotAKey(&'static str),
    /// No private key matches.
    #[error("no private key {wanted} in token {token:?}")]
    KeyNotFound {
        /// Token label.
        token: String,
        /// The label and id looked for.
        wanted: String,
    },
    /// More than one private key matches.
    #[error("{count} private keys match {wanted} in token {token:?}: add id= to the URI")]
    AmbiguousKey {
        /// Token label.
        token: String,
        /// The label and id looked for.
        wanted: String,
        /// How many matched.
        count: usize,
    },
    /// A key with this label or id exists already (generation refuses to shadow it).
    #[error("a key with {wanted} already exists in token {token:?}")]
    KeyExists {
        /// Token label.
        token: String,
        /// The clashing label or id.
        wanted: String,
    },
    /// The token lacks a mechanism the operation needs.
    #[error("token {token:?} does not support {mechanism}")]
    MechanismUnsupported {
        /// Token label.
        token: String,
        /// The PKCS#11 mechanism name.
        mechanism: &'static str,
    },
    /// The key in the token is of a type or size this crate does not handle.
    #[error("unsupported key in token: {0}")]
    UnsupportedKey(String),
    /// A label or id given to [`Token::generate`] is empty or too long.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A PKCS#11 call failed in a way not listed above.
    #[error("PKCS#11 {operation} failed: {source}")]
    Token {
        /// The operation (PKCS#11 function).
        operation: &'static str,
        /// The module's error.
        #[source]
        source: cryptoki::error::Error,
    },
    /// Building the public key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A key file could not be read, written or removed.
    #[error("key file {0}")]
    KeyFile(String),
    /// A previous operation panicked while holding the session.
    #[error("the PKCS#11 session is unusable after an earlier failure")]
    Poisoned,
}

impl From<der::Error> for Pkcs11Error {
    fn from(e: der::Error) -> Self {
        Self::Key(KeyError::from(e))
    }
}

impl Pkcs11Error {
    /// Wrap a cryptoki error from `operation`.
    pub(crate) fn token(operation: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Self {
        move |source| Self::Token { operation, source }
    }
}

// Unit tests live beside each module; the SoftHSM2 tests are in tests/softhsm.rs.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_errors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Token>();
        send_sync::<Pkcs11Key>();
        send_sync::<Pkcs11Error>();
        send_sync::<Pkcs11Uri>();
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = Pkcs11Error::NoModule.to_string();
        assert!(e.contains("module-path"), "{e}");
        let e = Pkcs11Error::PinRequired { token: "t".into() }.to_string();
        assert!(e.contains("pin-value") && e.contains("pin-source"), "{e}");
        let e: Pkcs11Error = Pkcs11Uri::parse("pkcs11:foo=1").unwrap_err().into();
        assert!(e.to_string().contains("foo"));
    }
}
