//! RFC 7512 `pkcs11:` URIs: which module, token and object a key is, and
//! where its PIN comes from.
//!
//! Parsing is strict: every path attribute RFC 7512 defines is understood
//! and matched on; any other path attribute (vendor-specific ones included)
//! is refused, because ignoring a filter could select a different key than
//! the one the URI names. Duplicate attributes, malformed percent-encoding,
//! characters outside the RFC 7512 grammar and over-long values are refused
//! with an error that names the attribute. Query attributes this crate does
//! not know are refused too, except vendor-specific `x-` ones, which by
//! definition select nothing and are ignored.
//!
//! The PIN (`pin-value`) is kept in a zeroizing buffer and never appears in
//! `Debug` or `Display` output; `pin-source` is a file read when the token is
//! opened, never at parse time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::Zeroizing;

/// Longest URI accepted, in bytes (a module path may be long; nothing else is).
pub const MAX_URI_LEN: usize = 8192;
/// Longest PIN accepted, in bytes, from `pin-value` or a `pin-source` file.
pub const MAX_PIN_LEN: usize = 256;
/// Longest token, slot or library text attribute (`token=`, `serial=`, …) accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 128;
/// Longest object label (`object=`) accepted, in bytes.
pub const MAX_OBJECT_LABEL_LEN: usize = 256;
/// Longest object id (`id=`) accepted, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Longest `module-path` or `pin-source` accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a `pkcs11:` URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The text does not start with the `pkcs11:` scheme.
    #[error("not a PKCS#11 URI: it must start with \"pkcs11:\"")]
    NotPkcs11,
    /// The URI is longer than [`MAX_URI_LEN`].
    #[error("PKCS#11 URI is longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// An attribute is not of the form `name=value`, or its name is empty.
    #[error("PKCS#11 URI {component} attribute {text:?} is not name=value")]
    Syntax {
        /// "path" or "query".
        component: &'static str,
        /// The offending piece (never a PIN: only its name is kept).
        text: String,
    },
    /// An attribute this implementation does not know (RFC 7512 §2.3).
    #[error("unknown PKCS#11 URI {component} attribute {name:?}")]
    UnknownAttribute {
        /// "path" or "query".
        component: &'static str,
        /// The attribute name.
        name: String,
    },
    /// An attribute given twice (RFC 7512 §2.3 forbids it in the path).
    #[error("PKCS#11 URI attribute {name:?} is given more than once")]
    DuplicateAttribute {
        /// The attribute name.
        name: String,
    },
    /// A character that must be percent-encoded, or a bad `%XX` escape.
    #[error("PKCS#11 URI attribute {name:?}: {reason}")]
    Encoding {
        /// The attribute name.
        name: String,
        /// What was wrong (never the value itself).
        reason: String,
    },
    /// The decoded value is longer than the attribute allows.
    #[error("PKCS#11 URI attribute {name:?} is longer than {max} bytes")]
    ValueTooLong {
        /// The attribute name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The value does not fit the attribute (e.g. `type=key`, `slot-id=x`).
    #[error("PKCS#11 URI attribute {name:?}: {reason}")]
    InvalidValue {
        /// The attribute name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// Both `pin-value` and `pin-source` were given.
    #[error("PKCS#11 URI has both pin-value and pin-source: give one")]
    ConflictingPin,
}

/// The object class a URI names (`type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=public`: a public key.
    Public,
    /// `type=private`: a private key.
    Private,
    /// `type=cert`: a certificate.
    Cert,
    /// `type=secret-key`: a secret (symmetric) key.
    SecretKey,
    /// `type=data`: a data object.
    Data,
}

impl ObjectType {
    /// The RFC 7512 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// Where the user PIN comes from.
#[derive(Clone)]
pub(crate) enum PinSpec {
    /// The PIN itself (`pin-value`, or set by the application).
    Value(Zeroizing<Vec<u8>>),
    /// A file holding the PIN (`pin-source=file:…`).
    Source(PathBuf),
}

/// A parsed RFC 7512 PKCS#11 URI.
///
/// The path attributes select a token (and, for keys, an object); the query
/// attributes say which module to load and where the PIN is. Every field is
/// decoded (no percent-escapes left). Build one with [`Pkcs11Uri::parse`] or
/// `str::parse`, or fill the public fields by hand.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label (CK_TOKEN_INFO.label).
    pub token: Option<String>,
    /// `manufacturer=`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `model=`: the token model.
    pub model: Option<String>,
    /// `serial=`: the token serial number.
    pub serial: Option<String>,
    /// `slot-description=`: the slot description.
    pub slot_description: Option<String>,
    /// `slot-manufacturer=`: the slot manufacturer.
    pub slot_manufacturer: Option<String>,
    /// `slot-id=`: the slot number.
    pub slot_id: Option<u64>,
    /// `library-manufacturer=`: the module's manufacturer (CK_INFO).
    pub library_manufacturer: Option<String>,
    /// `library-description=`: the module's description (CK_INFO).
    pub library_description: Option<String>,
    /// `library-version=`: the module's version, major and minor.
    pub library_version: Option<(u8, u8)>,
    /// `object=`: the object label (CKA_LABEL).
    pub object: Option<String>,
    /// `id=`: the object id (CKA_ID), raw bytes.
    pub id: Option<Vec<u8>>,
    /// `type=`: the object class.
    pub object_type: Option<ObjectType>,
    /// `module-path=`: absolute path of the PKCS#11 module to load.
    pub module_path: Option<PathBuf>,
    /// `module-name=`: module name, looked up in the usual library directories.
    pub module_name: Option<String>,
    pin: Option<PinSpec>,
}

impl PartialEq for PinSpec {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        match (self, other) {
            (Self::Value(a), Self::Value(b)) => bool::from(a.as_slice().ct_eq(b.as_slice())),
            (Self::Source(a), Self::Source(b)) => a == b,
            _ => false,
        }
    }
}
impl Eq for PinSpec {}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pin = match &self.pin {
            None => "none",
            Some(PinSpec::Value(_)) => "<redacted>",
            Some(PinSpec::Source(_)) => "pin-source",
        };
        f.debug_struct("Pkcs11Uri")
            .field("uri", &self.to_string())
            .field("pin", &pin)
            .finish()
    }
}

/// Characters allowed unescaped in any attribute value (RFC 3986 unreserved).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7512 pk11-res-avail.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

/// RFC 7512 pk11-pchar without pct-encoded.
fn is_path_char(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || b == b'&'
}

/// RFC 7512 pk11-qchar without pct-encoded.
fn is_query_char(b: u8) -> bool {
    is_unreserved(b) || is_res_avail(b) || matches!(b, b'/' | b'?' | b'|')
}

/// RFC 7512 attribute names: ALPHA / DIGIT / "-" / "_".
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode `value`, allowing unescaped only the bytes `allowed` accepts.
/// The output is zeroizing because it may be a PIN.
fn decode(name: &str, value: &str, allowed: fn(u8) -> bool, max: usize) -> Result<Zeroizing<Vec<u8>>, UriError> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len().min(max)));
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        let decoded = if b == b'%' {
            let hi = bytes.next().and_then(hex_val);
            let lo = bytes.next().and_then(hex_val);
            match (hi, lo) {
                (Some(hi), Some(lo)) => (hi << 4) | lo,
                _ => {
                    return Err(UriError::Encoding {
                        name: name.to_owned(),
                        reason: "'%' must be followed by two hex digits".into(),
                    })
                }
            }
        } else if allowed(b) {
            b
        } else {
            let shown = if name == "pin-value" {
                "a character".to_owned()
            } else if b.is_ascii_graphic() || b == b' ' {
                format!("{:?}", char::from(b))
            } else {
                format!("byte 0x{b:02x}")
            };
            return Err(UriError::Encoding {
                name: name.to_owned(),
                reason: format!("{shown} must be percent-encoded"),
            });
        };
        if out.len() >= max {
            return Err(UriError::ValueTooLong {
                name: name.to_owned(),
                max,
            });
        }
        out.push(decoded);
    }
    Ok(out)
}

fn text(name: &str, bytes: &[u8]) -> Result<String, UriError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| UriError::InvalidValue {
            name: name.to_owned(),
            reason: "not UTF-8".into(),
        })
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::DuplicateAttribute { name: name.to_owned() });
    }
    *slot = Some(value);
    Ok(())
}

fn invalid(name: &str, reason: &str) -> UriError {
    UriError::InvalidValue {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_version(name: &str, v: &str) -> Result<(u8, u8), UriError> {
    let num = |s: &str| -> Result<u8, UriError> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(name, "must be MAJOR or MAJOR.MINOR, decimal"));
        }
        s.parse::<u8>()
            .map_err(|_| invalid(name, "version numbers are at most 255"))
    };
    match v.split_once('.') {
        Some((major, minor)) => Ok((num(major)?, num(minor)?)),
        None => Ok((num(v)?, 0)),
    }
}

/// Parse a `pin-source` value: a `file:` URI or a plain path; anything else
/// (another scheme, a `|command`) is refused.
fn parse_pin_source(name: &str, v: &str) -> Result<PathBuf, UriError> {
    let path = if let Some(rest) = v.strip_prefix("file://") {
        // file://host/path: only an empty host or localhost names this machine.
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        if !rest.starts_with('/') {
            return Err(invalid(name, "file: URI must name an absolute path on this host"));
        }
        rest
    } else if let Some(rest) = v.strip_prefix("file:") {
        rest
    } else if v.starts_with('|') {
        return Err(invalid(name, "running a command for the PIN is not supported"));
    } else {
        let scheme = v.split_once(':').map(|(s, _)| s).filter(|s| {
            s.len() > 1
                && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
        if let Some(s) = scheme {
            return Err(invalid(name, &format!("only file: is supported, not {s}:")));
        }
        v
    };
    if path.is_empty() {
        return Err(invalid(name, "empty path"));
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// Parse a `pkcs11:` URI (RFC 7512). Leading and trailing white space is
    /// ignored; the scheme is case-insensitive, attribute names are not.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        if uri.len() > MAX_URI_LEN {
            return Err(UriError::TooLong { max: MAX_URI_LEN });
        }
        let uri = uri.trim();
        let rest = match uri.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => uri.get(7..).unwrap_or_default(),
            _ => return Err(UriError::NotPkcs11),
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Pkcs11Uri::default();
        if !path.is_empty() {
            for attr in path.split(';') {
                out.path_attribute(attr)?;
            }
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            let mut seen: Vec<&str> = Vec::new();
            for attr in query.split('&') {
                let name = out.query_attribute(attr)?;
                if let Some(name) = name {
                    if seen.contains(&name) {
                        return Err(UriError::DuplicateAttribute { name: name.to_owned() });
                    }
                    seen.push(name);
                }
            }
            if seen.contains(&"pin-value") && seen.contains(&"pin-source") {
                return Err(UriError::ConflictingPin);
            }
        }
        Ok(out)
    }

    fn path_attribute(&mut self, attr: &str) -> Result<(), UriError> {
        let syntax = || UriError::Syntax {
            component: "path",
            text: attr.chars().take(64).collect(),
        };
        let (name, value) = attr.split_once('=').ok_or_else(syntax)?;
        if !is_name(name) {
            return Err(syntax());
        }
        // PKCS#11 pads token fields to 16-64 bytes, but RFC 7512's own examples
        // exceed that (a 34-byte token label): bound generously; such a value
        // simply matches no token.
        let max = match name {
            "token"
            | "manufacturer"
            | "slot-manufacturer"
            | "library-manufacturer"
            | "library-description"
            | "model"
            | "serial"
            | "slot-description" => MAX_TEXT_LEN,
            "object" => MAX_OBJECT_LABEL_LEN,
            "id" => MAX_ID_LEN,
            "slot-id" => 20,
            "library-version" => 7,
            "type" => 10,
            _ => {
                return Err(UriError::UnknownAttribute {
                    component: "path",
                    name: name.to_owned(),
                })
            }
        };
        let raw = decode(name, value, is_path_char, max)?;
        match name {
            "token" => set_once(&mut self.token, name, text(name, &raw)?),
            "manufacturer" => set_once(&mut self.manufacturer, name, text(name, &raw)?),
            "model" => set_once(&mut self.model, name, text(name, &raw)?),
            "serial" => set_once(&mut self.serial, name, text(name, &raw)?),
            "slot-description" => set_once(&mut self.slot_description, name, text(name, &raw)?),
            "slot-manufacturer" => set_once(&mut self.slot_manufacturer, name, text(name, &raw)?),
            "library-manufacturer" => set_once(&mut self.library_manufacturer, name, text(name, &raw)?),
            "library-description" => set_once(&mut self.library_description, name, text(name, &raw)?),
            "object" => set_once(&mut self.object, name, text(name, &raw)?),
            "id" => set_once(&mut self.id, name, raw.to_vec()),
            "slot-id" => {
                let v = text(name, &raw)?;
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(name, "must be a decimal slot number"));
                }
                let id = v.parse::<u64>().map_err(|_| invalid(name, "slot number too large"))?;
                set_once(&mut self.slot_id, name, id)
            }
            "library-version" => {
                let v = parse_version(name, &text(name, &raw)?)?;
                set_once(&mut self.library_version, name, v)
            }
            _ => {
                let t = match raw.as_slice() {
                    b"public" => ObjectType::Public,
                    b"private" => ObjectType::Private,
                    b"cert" => ObjectType::Cert,
                    b"secret-key" => ObjectType::SecretKey,
                    b"data" => ObjectType::Data,
                    _ => return Err(invalid(name, "must be public, private, cert, secret-key or data")),
                };
                set_once(&mut self.object_type, name, t)
            }
        }
    }

    /// Apply one query attribute; returns its name when it is one of ours
    /// (for the duplicate check), `None` for an ignored vendor attribute.
    fn query_attribute<'a>(&mut self, attr: &'a str) -> Result<Option<&'a str>, UriError> {
        let syntax = || UriError::Syntax {
            component: "query",
            // Never echo a value, or a piece without '=': either could be (part of) the PIN.
            text: match attr.split_once('=') {
                Some((name, _)) => name.chars().take(64).collect(),
                None => "<text without '='>".into(),
            },
        };
        let (name, value) = attr.split_once('=').ok_or_else(syntax)?;
        if !is_name(name) {
            return Err(syntax());
        }
        match name {
            "pin-value" => {
                let pin = decode(name, value, is_query_char, MAX_PIN_LEN)?;
                self.pin = Some(PinSpec::Value(pin));
            }
            "pin-source" => {
                let raw = decode(name, value, is_query_char, MAX_PATH_LEN)?;
                self.pin = Some(PinSpec::Source(parse_pin_source(name, &text(name, &raw)?)?));
            }
            "module-path" => {
                let raw = decode(name, value, is_query_char, MAX_PATH_LEN)?;
                let p = PathBuf::from(text(name, &raw)?);
                if !p.is_absolute() {
                    return Err(invalid(name, "must be an absolute path"));
                }
                self.module_path = Some(p);
            }
            "module-name" => {
                let raw = decode(name, value, is_query_char, 255)?;
                let n = text(name, &raw)?;
                if n.is_empty() || n.contains('/') || n.starts_with('.') {
                    return Err(invalid(name, "must be a file name without directories"));
                }
                self.module_name = Some(n);
            }
            vendor if vendor.starts_with("x-") => {
                // Vendor query attributes select nothing (RFC 7512 §2.3): check and ignore.
                decode(name, value, is_query_char, MAX_PATH_LEN)?;
                return Ok(None);
            }
            _ => {
                return Err(UriError::UnknownAttribute {
                    component: "query",
                    name: name.to_owned(),
                })
            }
        }
        Ok(Some(name))
    }

    /// Whether a PIN is given (`pin-value`, `pin-source` or [`Pkcs11Uri::set_pin`]).
    pub fn has_pin(&self) -> bool {
        self.pin.is_some()
    }

    /// The `pin-source` file, if the PIN is to be read from one.
    pub fn pin_source(&self) -> Option<&Path> {
        match &self.pin {
            Some(PinSpec::Source(p)) => Some(p),
            _ => None,
        }
    }

    /// Set the PIN directly (e.g. from an environment variable or a prompt),
    /// replacing any `pin-value` or `pin-source`.
    pub fn set_pin(&mut self, pin: Zeroizing<Vec<u8>>) {
        self.pin = Some(PinSpec::Value(pin));
    }

    /// Read the PIN from `path` when the token is opened (as `pin-source`).
    pub fn set_pin_source(&mut self, path: PathBuf) {
        self.pin = Some(PinSpec::Source(path));
    }

    /// Forget the PIN, e.g. before storing the URI.
    pub fn clear_pin(&mut self) {
        self.pin = None;
    }

    pub(crate) fn pin_spec(&self) -> Option<&PinSpec> {
        self.pin.as_ref()
    }

    /// The token-selecting attributes, for messages ("token=\"x\" serial=\"y\"").
    pub(crate) fn describe_token(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={v:?}"));
            }
        };
        add("token", &self.token);
        add("manufacturer", &self.manufacturer);
        add("model", &self.model);
        add("serial", &self.serial);
        add("slot-description", &self.slot_description);
        add("slot-manufacturer", &self.slot_manufacturer);
        add("library-manufacturer", &self.library_manufacturer);
        add("library-description", &self.library_description);
        if let Some(id) = self.slot_id {
            parts.push(format!("slot-id={id}"));
        }
        if let Some((a, b)) = self.library_version {
            parts.push(format!("library-version={a}.{b}"));
        }
        if parts.is_empty() {
            "any token".into()
        } else {
            parts.join(" ")
        }
    }
}

impl FromStr for Pkcs11Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn encode_into(out: &mut String, bytes: &[u8], keep: fn(u8) -> bool) {
    for &b in bytes {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The URI in RFC 7512 form, attributes in a fixed order. A `pin-value` is
/// never written (a `pin-source` is: it is a file name, not the PIN).
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path: Vec<String> = Vec::new();
        fn text_attr(path: &mut Vec<String>, name: &str, v: &Option<String>) {
            if let Some(v) = v {
                let mut s = format!("{name}=");
                encode_into(&mut s, v.as_bytes(), is_unreserved);
                path.push(s);
            }
        }
        text_attr(&mut path, "token", &self.token);
        text_attr(&mut path, "manufacturer", &self.manufacturer);
        text_attr(&mut path, "model", &self.model);
        text_attr(&mut path, "serial", &self.serial);
        text_attr(&mut path, "slot-description", &self.slot_description);
        text_attr(&mut path, "slot-manufacturer", &self.slot_manufacturer);
        text_attr(&mut path, "library-manufacturer", &self.library_manufacturer);
        text_attr(&mut path, "library-description", &self.library_description);
        if let Some((a, b)) = self.library_version {
            path.push(format!("library-version={a}.{b}"));
        }
        if let Some(id) = self.slot_id {
            path.push(format!("slot-id={id}"));
        }
        text_attr(&mut path, "object", &self.object);
        if let Some(id) = &self.id {
            let mut s = String::from("id=");
            encode_into(&mut s, id, |_| false);
            path.push(s);
        }
        if let Some(t) = self.object_type {
            path.push(format!("type={}", t.as_str()));
        }
        let mut query: Vec<String> = Vec::new();
        let keep_path = |b: u8| is_unreserved(b) || b == b'/';
        if let Some(p) = &self.module_path {
            let mut s = String::from("module-path=");
            encode_into(&mut s, p.as_os_str().as_encoded_bytes(), keep_path);
            query.push(s);
        }
        if let Some(n) = &self.module_name {
            let mut s = String::from("module-name=");
            encode_into(&mut s, n.as_bytes(), is_unreserved);
            query.push(s);
        }
        if let Some(PinSpec::Source(p)) = &self.pin {
            // `file://x` would name host x: a path that starts with `//`
            // goes after an empty authority (`file:////x`).
            let mut s = String::from(if p.as_os_str().as_encoded_bytes().starts_with(b"//") {
                "pin-source=file://"
            } else {
                "pin-source=file:"
            });
            encode_into(&mut s, p.as_os_str().as_encoded_bytes(), keep_path);
            query.push(s);
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The examples of RFC 7512 §3.3, all of which use only attributes the RFC defines
    /// (the one with vendor attributes is tested separately below).
    const RFC7512_EXAMPLES: &[&str] = &[
        "pkcs11:",
        "pkcs11:object=my-pubkey;type=public",
        "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
        "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
        "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        "pkcs11:slot-description=Sun%20Metaslot",
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
    ];

    #[test]
    fn rfc7512_examples_parse_and_round_trip() {
        for ex in RFC7512_EXAMPLES {
            let u = Pkcs11Uri::parse(ex).unwrap_or_else(|e| panic!("{ex}: {e}"));
            // Display re-parses to the same value (pin-value is deliberately dropped).
            let mut again = Pkcs11Uri::parse(&u.to_string()).unwrap();
            if matches!(u.pin, Some(PinSpec::Value(_))) {
                assert!(!u.to_string().contains("pin"));
                again.pin = u.pin.clone();
            }
            assert_eq!(again, u, "{ex}");
        }
    }

    #[test]
    fn rfc7512_values_are_decoded() {
        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[3]).unwrap();
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(u.model.as_deref(), Some("1.0"));
        assert_eq!(u.object.as_deref(), Some("my-certificate"));
        assert_eq!(u.object_type, Some(ObjectType::Cert));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        assert_eq!(u.serial.as_deref(), Some(""));
        assert_eq!(u.pin_source(), Some(Path::new("/etc/token_pin")));

        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[5]).unwrap();
        assert_eq!(u.module_path.as_deref(), Some(Path::new("/mnt/libmypkcs11.so.1")));
        assert_eq!(u.object_type, Some(ObjectType::Private));

        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[6]).unwrap();
        match u.pin_spec() {
            Some(PinSpec::Value(p)) => assert_eq!(p.as_slice(), b"the-pin"),
            _ => panic!("pin-value expected"),
        }

        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[8]).unwrap();
        assert_eq!(u.library_version, Some((1, 23)));
        assert_eq!(u.library_description.as_deref(), Some("Soft Token Library"));

        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[9]).unwrap();
        assert_eq!(u.token.as_deref(), Some("My token% created by Joe"));
        assert_eq!(u.library_version, Some((3, 0)));
        assert_eq!(
            u.id.as_deref(),
            Some(&[0x01, 0x02, 0x03, 0xba, 0xdd, 0xca, 0xfe, 0x04, 0x05, 0x06][..])
        );

        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[10]).unwrap();
        assert_eq!(u.token.as_deref(), Some("A name with a substring %;"));
        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[11]).unwrap();
        assert_eq!(u.token.as_deref(), Some("Name with a small A with acute: \u{e1}"));
        let u = Pkcs11Uri::parse(RFC7512_EXAMPLES[4]).unwrap();
        assert_eq!(u.module_name.as_deref(), Some("mypkcs11"));
    }

    #[test]
    fn rfc7512_vendor_path_attribute_is_refused_vendor_query_x_is_ignored() {
        // RFC 7512's last example carries a vendor path attribute: we cannot
        // match on it, so we refuse rather than select a possibly wrong key.
        let e = Pkcs11Uri::parse(
            "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
        )
        .unwrap_err();
        assert_eq!(
            e,
            UriError::UnknownAttribute {
                component: "path",
                name: "vendor-aaa".into()
            }
        );
        assert!(e.to_string().contains("vendor-aaa"));
        let u = Pkcs11Uri::parse("pkcs11:token=t?x-vendor=1&x-vendor=2").unwrap();
        assert_eq!(u.token.as_deref(), Some("t"));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=t?pin_value=1"),
            Err(UriError::UnknownAttribute { component: "query", .. })
        ));
    }

    #[test]
    fn typical_softhsm_uri() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=enrolkit;object=device;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("enrolkit"));
        assert_eq!(u.object.as_deref(), Some("device"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(
            u.module_path.as_deref(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert!(u.has_pin());
        assert_eq!(
            u.to_string(),
            "pkcs11:token=enrolkit;object=device;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so"
        );
        // Scheme is case-insensitive; surrounding white space is ignored.
        assert_eq!(
            Pkcs11Uri::parse(" PKCS11:token=enrolkit \n").unwrap().token.as_deref(),
            Some("enrolkit")
        );
    }

    #[test]
    fn pin_never_shown() {
        let u: Pkcs11Uri = "pkcs11:token=t?pin-value=s3cr%65t-PIN".parse().unwrap();
        let shown = format!("{u} {u:?} {u:#?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        // Errors about a PIN never repeat it either.
        let e = Pkcs11Uri::parse("pkcs11:?pin-value=abc%zz").unwrap_err();
        assert!(!e.to_string().contains("abc"), "{e}");
        let e = Pkcs11Uri::parse("pkcs11:?pin-value=abc def").unwrap_err();
        assert!(!e.to_string().contains("abc"), "{e}");
        // A PIN with a raw '&' splits into a piece that must not be echoed either.
        let e = Pkcs11Uri::parse("pkcs11:?pin-value=abc&def").unwrap_err();
        assert!(!e.to_string().contains("def"), "{e}");
    }

    #[test]
    fn duplicates_are_refused() {
        for (uri, name) in [
            ("pkcs11:token=a;token=b", "token"),
            ("pkcs11:id=%01;object=x;id=%01", "id"),
            ("pkcs11:type=private;type=public", "type"),
            ("pkcs11:?module-path=/a.so&module-path=/b.so", "module-path"),
            ("pkcs11:?pin-value=1&pin-value=2", "pin-value"),
        ] {
            assert_eq!(
                Pkcs11Uri::parse(uri),
                Err(UriError::DuplicateAttribute { name: name.into() }),
                "{uri}"
            );
        }
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:?pin-value=1&pin-source=/p"),
            Err(UriError::ConflictingPin)
        );
    }

    #[test]
    fn malformed_uris_are_refused() {
        let bad = [
            ("http://example.com/", "NotPkcs11"),
            ("pkcs11", "NotPkcs11"),
            ("pkcs11:token", "Syntax"),
            ("pkcs11:token=a;", "Syntax"),
            ("pkcs11:=a", "Syntax"),
            ("pkcs11:tok en=a", "Syntax"),
            ("pkcs11:foo=bar", "UnknownAttribute"),
            ("pkcs11:token=a b", "Encoding"),
            ("pkcs11:token=a%2", "Encoding"),
            ("pkcs11:token=a%g0", "Encoding"),
            ("pkcs11:token=a/b", "Encoding"),
            ("pkcs11:token=\u{e1}", "Encoding"),
            ("pkcs11:token=%FF", "InvalidValue"),
            ("pkcs11:type=key", "InvalidValue"),
            ("pkcs11:slot-id=-1", "InvalidValue"),
            ("pkcs11:slot-id=99999999999999999999", "InvalidValue"),
            ("pkcs11:library-version=1.x", "InvalidValue"),
            ("pkcs11:library-version=256", "InvalidValue"),
            ("pkcs11:?module-path=lib.so", "InvalidValue"),
            ("pkcs11:?module-name=../x", "InvalidValue"),
            ("pkcs11:?pin-source=http://h/pin", "InvalidValue"),
            ("pkcs11:?pin-source=%7C/bin/echo", "InvalidValue"),
            ("pkcs11:?pin-source=file://otherhost/pin", "InvalidValue"),
            ("pkcs11:?module-path=/a.so&module-path", "Syntax"),
        ];
        for (uri, kind) in bad {
            let e = Pkcs11Uri::parse(uri).unwrap_err();
            let dbg = format!("{e:?}");
            assert!(dbg.starts_with(kind), "{uri}: {dbg}");
        }
        // "pkcs11:token=a?b": the query attribute "b" has no '='.
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a?b"),
            Err(UriError::Syntax { component: "query", .. })
        ));
    }

    #[test]
    fn lengths_are_bounded() {
        let long_label = "a".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(
            Pkcs11Uri::parse(&format!("pkcs11:token={long_label}")),
            Err(UriError::ValueTooLong {
                name: "token".into(),
                max: MAX_TEXT_LEN
            })
        );
        assert!(Pkcs11Uri::parse(&format!("pkcs11:token={}", "a".repeat(MAX_TEXT_LEN))).is_ok());
        // The bound is on decoded bytes: 128 of them may take 384 characters.
        assert!(Pkcs11Uri::parse(&format!("pkcs11:serial={}", "%41".repeat(MAX_TEXT_LEN))).is_ok());
        let long_id = "%00".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            Pkcs11Uri::parse(&format!("pkcs11:id={long_id}")),
            Err(UriError::ValueTooLong { .. })
        ));
        let long_pin = "1".repeat(MAX_PIN_LEN + 1);
        assert!(matches!(
            Pkcs11Uri::parse(&format!("pkcs11:?pin-value={long_pin}")),
            Err(UriError::ValueTooLong { .. })
        ));
        assert_eq!(
            Pkcs11Uri::parse(&format!("pkcs11:object={}", "a".repeat(MAX_URI_LEN))),
            Err(UriError::TooLong { max: MAX_URI_LEN })
        );
    }

    #[test]
    fn pin_sources() {
        for (v, p) in [
            ("file:/etc/pin", "/etc/pin"),
            ("file:///etc/pin", "/etc/pin"),
            ("file://localhost/etc/pin", "/etc/pin"),
            ("/etc/pin", "/etc/pin"),
            ("pin.txt", "pin.txt"),
            ("file:/dir%20with%20space/pin", "/dir with space/pin"),
        ] {
            let u = Pkcs11Uri::parse(&format!("pkcs11:?pin-source={v}")).unwrap();
            assert_eq!(u.pin_source(), Some(Path::new(p)), "{v}");
            assert_eq!(Pkcs11Uri::parse(&u.to_string()).unwrap(), u);
        }
    }

    /// Found by `pkcs11_uri` (fuzz/corpus): a pin-source path starting with
    /// `//` printed as `file://…`, which reads back as a host name.
    #[test]
    fn a_pin_source_path_starting_with_two_slashes_prints_back_to_itself() {
        for text in ["pkcs11:?pin-source=//srv/pin", "PKcs11:?pin-source=//'///1//q1"] {
            let uri = Pkcs11Uri::parse(text).unwrap();
            let shown = uri.to_string();
            let again = Pkcs11Uri::parse(&shown).unwrap_or_else(|e| panic!("{shown}: {e}"));
            assert_eq!(again, uri, "{shown}");
            assert_eq!(again.pin_source(), uri.pin_source());
        }
    }

    #[test]
    fn setters() {
        let mut u = Pkcs11Uri::parse("pkcs11:token=t?pin-source=/p").unwrap();
        u.set_pin(Zeroizing::new(b"1234".to_vec()));
        assert!(u.pin_source().is_none());
        assert!(u.has_pin());
        assert!(!u.to_string().contains("1234"));
        u.clear_pin();
        assert!(!u.has_pin());
        u.set_pin_source(PathBuf::from("/run/pin"));
        assert_eq!(u.to_string(), "pkcs11:token=t?pin-source=file:/run/pin");
    }
}
