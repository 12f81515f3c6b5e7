//! The CA's lifecycle: `init` makes the PKI (root, optional intermediate,
//! SCEP RA, EST server certificate), the keys (files, or pairs in a
//! PKCS#11 token) and the configuration; `ca_next` prepares the next CA
//! and `ca_rollover` makes it current, each ending in one atomic write of
//! the configuration so that a crash leaves the old CA or the new one in
//! charge, never a mix.

mod init;
mod rollover;

pub use init::{init, InitOptions};
pub use rollover::{ca_next, ca_rollover};

use crate::config::Res;
use der::EncodePem;
use enrolkit_files as files;
use enrolkit_keys::{KeySpec, PrivateKey, SoftwareKey};
use enrolkit_pkcs11::KeyLocation;
use std::path::{Path, PathBuf};
use std::time::Duration;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// `mef init --key-store`: a token URI without object or id (init names the
/// keys) and with the PIN in a file, since mef.toml keeps the URI.
pub fn token_store(s: &str) -> Res<enrolkit_pkcs11::Pkcs11Uri> {
    let uri = enrolkit_pkcs11::Pkcs11Uri::parse(s).map_err(|e| format!("--key-store: {e}"))?;
    if uri.object.is_some() || uri.id.is_some() {
        return Err("--key-store names the token only: init labels the keys mef-root, mef-ca and mef-ra".into());
    }
    if uri.pin_source().is_none() {
        return Err("--key-store needs ?pin-source=file:<path>: mef.toml keeps the URI, never a PIN value".into());
    }
    Ok(uri)
}

/// A certificate in PEM.
pub fn pem(c: &Certificate) -> Res<String> {
    c.to_pem(der::pem::LineEnding::LF).map_err(|e| e.to_string())
}

/// Where devices reach the plain-HTTP listener (SCEP, `/crl`, `/ocsp`), without
/// a trailing slash: `explicit` when given (http or https), else derived from
/// the listen address. An unspecified address (0.0.0.0, ::) is no place to
/// send a device: the first of `hostnames` stands in, or 127.0.0.1 with a
/// warning to set `[profile] crl_url` and `ocsp_url`.
pub fn http_base_url(listen: &str, hostnames: &[String], explicit: Option<&str>) -> Res<String> {
    if let Some(u) = explicit {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || !u.is_ascii() {
            return Err(format!("--http-url: {u:?} is not an http:// or https:// URL"));
        }
        return Ok(u.trim_end_matches('/').to_owned());
    }
    let addr = match listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        // A host name and port, as given.
        Err(_) => return Ok(format!("http://{listen}")),
    };
    if !addr.ip().is_unspecified() {
        return Ok(format!("http://{addr}"));
    }
    let host = match hostnames.first() {
        Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{h}]"),
        Some(h) => h.clone(),
        None => {
            eprintln!(
                "mef: listening on {listen}; issued certificates will name http://127.0.0.1:{}/crl and /ocsp \
                 — pass --http-url or edit [profile] crl_url and ocsp_url",
                addr.port()
            );
            "127.0.0.1".into()
        }
    };
    Ok(format!("http://{host}:{}", addr.port()))
}

/// The root's key when `mef init --intermediate` made one (`mef ca next` signs with it).
pub const ROOT_KEY: &str = "root.key.pem";
/// The SCEP RA's subject.
pub const RA_NAME: &str = "CN=enrolkit MEF SCEP RA,O=enrolkit";
/// A year.
pub const YEAR: Duration = Duration::from_secs(365 * 86400);

/// The token URI of a key named in mef.toml, when it is in a token.
pub fn token_uri(named: &Path) -> Res<Option<enrolkit_pkcs11::Pkcs11Uri>> {
    match named.to_str() {
        Some(s) if s.starts_with("pkcs11:") => enrolkit_pkcs11::Pkcs11Uri::parse(s)
            .map(Some)
            .map_err(|e| format!("{s}: {e}")),
        _ => Ok(None),
    }
}

/// A new key beside `like`: in the same token under `label` when `like`
/// is a token URI (returned as its URI, the key never leaves the token),
/// else in memory, for the caller to write as a file (returned with its PEM).
pub fn key_beside(like: &Path, spec: KeySpec, label: &str) -> Res<(Box<dyn PrivateKey>, KeyMade)> {
    match token_uri(like)? {
        Some(mut uri) => {
            if uri.pin_source().is_none() {
                return Err(format!(
                    "{}: mef.toml names token keys with ?pin-source=file:<path>, never a PIN value",
                    like.display()
                ));
            }
            uri.object = Some(label.to_owned());
            uri.id = None;
            let (key, at) = KeyLocation::Token(Box::new(uri))
                .generate(spec)
                .map_err(|e| format!("{label} key: {e}"))?;
            Ok((key, KeyMade::Token(at)))
        }
        None => {
            let key = SoftwareKey::generate(spec).map_err(|e| e.to_string())?;
            let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
            Ok((Box::new(key), KeyMade::Pem(pem)))
        }
    }
}

/// Where [`key_beside`] put a key.
pub enum KeyMade {
    /// In a token (the URI names it by label and id).
    Token(KeyLocation),
    /// In memory: PKCS#8 PEM to be written to a 0600 file.
    Pem(Zeroizing<String>),
}

impl KeyMade {
    /// Write it (a file key) to `base/file`; the name mef.toml records.
    pub fn store(&self, base: &Path, file: &str) -> Res<PathBuf> {
        match self {
            KeyMade::Token(at) => Ok(PathBuf::from(at.to_string())),
            KeyMade::Pem(pem) => {
                files::write_private(&base.join(file), pem.as_bytes())?;
                Ok(PathBuf::from(file))
            }
        }
    }

    /// Destroy a token key that will not be used (a failed step).
    pub fn discard(&self) {
        if let KeyMade::Token(at) = self {
            if let Err(e) = at.remove() {
                eprintln!("warning: {at} was not destroyed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn revocation_urls_default_to_the_plain_http_listener() {
        let none: &[String] = &[];
        assert_eq!(
            http_base_url("127.0.0.1:8080", none, None).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(http_base_url("[::1]:9000", none, None).unwrap(), "http://[::1]:9000");
        assert_eq!(
            http_base_url("mef.example:80", none, None).unwrap(),
            "http://mef.example:80"
        );
        let names = ["mef.example".to_string()];
        assert_eq!(
            http_base_url("0.0.0.0:8080", &names, None).unwrap(),
            "http://mef.example:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", &["2001:db8::1".to_string()], None).unwrap(),
            "http://[2001:db8::1]:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", none, None).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", none, Some("https://pki.example/mef/")).unwrap(),
            "https://pki.example/mef"
        );
        assert!(http_base_url("0.0.0.0:8080", none, Some("ldap://pki.example")).is_err());
    }
}
