//! Where a private key lives: a file, or an object in a PKCS#11 token
//! (one notion for the client, the agent and `mef`'s CA and RA keys).
//!
//! Every flow that needs a key (SCEP requests and CertRep decryption, CSR
//! signatures) takes a [`PrivateKey`] trait object, so the same code runs
//! whether the key is in process memory or inside a token that never lets
//! it out. A [`KeyLocation`] is what an operator writes: a path, or an
//! RFC 7512 `pkcs11:` URI.

use crate::{Pkcs11Error, Pkcs11Key, Pkcs11Uri, Token};
use enrolkit_keys::{KeySpec, PrivateKey, SoftwareKey};
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Pkcs11Error>;

/// A private key's home: a PEM/DER file, or a token object named by a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A key file (PKCS#8, PKCS#1 or SEC1; PEM or DER), written mode 0600.
    File(PathBuf),
    /// A key pair inside a PKCS#11 token.
    Token(Box<Pkcs11Uri>),
}

impl KeyLocation {
    /// `pkcs11:…` names a token object; anything else is a path.
    pub fn parse(s: &str) -> Result<Self> {
        if s.starts_with("pkcs11:") {
            Pkcs11Uri::parse(s)
                .map(|u| KeyLocation::Token(Box::new(u)))
                .map_err(Pkcs11Error::from)
        } else if s.is_empty() {
            Err(Pkcs11Error::InvalidArgument {
                what: "key location",
                reason: "is empty: give a path or a pkcs11: URI",
            })
        } else {
            Ok(KeyLocation::File(PathBuf::from(s)))
        }
    }

    /// The file path, when the key is a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            KeyLocation::File(p) => Some(p),
            KeyLocation::Token(_) => None,
        }
    }

    /// Open the existing key.
    pub fn load(&self) -> Result<Box<dyn PrivateKey>> {
        match self {
            KeyLocation::File(p) => Ok(Box::new(enrolkit_files::read_key(p).map_err(Pkcs11Error::KeyFile)?)),
            KeyLocation::Token(uri) => {
                let token = Token::open(uri)?;
                Ok(Box::new(token.find_uri(uri)?))
            }
        }
    }

    /// Make a new key of type `spec` here and return it with a location that
    /// finds exactly this key again. A file is written (0600, atomically)
    /// before this returns, so a request left PENDING can be polled from a
    /// later run. In a token the key pair is generated inside it,
    /// sensitive and non-extractable, labelled with the URI's `object` and
    /// identified by its `id` (random when the URI has none); a label or id
    /// already in the token is refused rather than shadowed.
    pub fn generate(&self, spec: KeySpec) -> Result<(Box<dyn PrivateKey>, KeyLocation)> {
        self.generate_in(spec, true)
    }

    /// As [`KeyLocation::generate`], for successive keys of one credential
    /// (the agent's renewals): in a token the new pair shares the label
    /// with earlier ones and gets a fresh random id, and is found by both.
    pub fn generate_version(&self, spec: KeySpec) -> Result<(Box<dyn PrivateKey>, KeyLocation)> {
        self.generate_in(spec, false)
    }

    fn generate_in(&self, spec: KeySpec, label_unique: bool) -> Result<(Box<dyn PrivateKey>, KeyLocation)> {
        match self {
            KeyLocation::File(p) => {
                let key = SoftwareKey::generate(spec)?;
                let pem = key.to_pkcs8_pem()?;
                enrolkit_files::write_private(p, pem.as_bytes()).map_err(Pkcs11Error::KeyFile)?;
                Ok((Box::new(key), self.clone()))
            }
            KeyLocation::Token(uri) => {
                let key = generate_in_token(uri, spec, label_unique)?;
                let mut found = uri.clone();
                found.id = Some(key.id().to_vec());
                found.object = Some(key.label().to_owned());
                Ok((Box::new(key), KeyLocation::Token(found)))
            }
        }
    }

    /// Delete the key (a replaced credential's): the file, or the token's
    /// key pair. A key that is already gone is not an error.
    pub fn remove(&self) -> Result<()> {
        match self {
            KeyLocation::File(p) => match std::fs::remove_file(p) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Pkcs11Error::KeyFile(format!("{}: {e}", p.display()))),
            },
            KeyLocation::Token(uri) => {
                let token = Token::open(uri)?;
                match token.find_uri(uri) {
                    Ok(k) => k.destroy(),
                    Err(Pkcs11Error::KeyNotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

impl std::fmt::Display for KeyLocation {
    /// The path, or the URI without any PIN value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyLocation::File(p) => write!(f, "{}", p.display()),
            KeyLocation::Token(u) => write!(f, "{u}"),
        }
    }
}

fn generate_in_token(uri: &Pkcs11Uri, spec: KeySpec, label_unique: bool) -> Result<Pkcs11Key> {
    let label = uri.object.as_deref().ok_or(Pkcs11Error::InvalidArgument {
        what: "key label",
        reason: "a key generated in a token needs object=<label> in the pkcs11: URI",
    })?;
    let id = match &uri.id {
        Some(id) if label_unique => id.clone(),
        _ => {
            let mut id = vec![0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
            id
        }
    };
    let token = Token::open(uri)?;
    if label_unique {
        token.generate(spec, label, &id)
    } else {
        token.generate_version(spec, label, &id)
    }
}
