//! Loading modules, finding the token a URI names, and logging in.

use crate::key::{self, Pkcs11Key};
use crate::uri::{ObjectType, PinSpec, Pkcs11Uri, MAX_PIN_LEN};
use crate::Pkcs11Error;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Info, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, SlotInfo, TokenInfo};
use cryptoki::types::RawAuthPin;
use enrolkit_keys::KeySpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// One logged-in session on one token, shared by every [`Token`] and
/// [`Pkcs11Key`] of this process on that token.
pub(crate) struct SlotSession {
    registry_key: (PathBuf, u64),
    pub(crate) module_path: PathBuf,
    pub(crate) label: String,
    pub(crate) serial: String,
    session: Mutex<Session>,
    /// The PIN the session logged in with, to check later opens against
    /// (PKCS#11 login state is per process, so the token cannot).
    pin: Option<Zeroizing<Vec<u8>>>,
    pub(crate) mechanisms: Vec<MechanismType>,
}

impl SlotSession {
    /// The session, exclusively.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Session>, Pkcs11Error> {
        self.session.lock().map_err(|_| Pkcs11Error::Poisoned)
    }

    /// Whether the token offers `m`.
    pub(crate) fn has(&self, m: MechanismType) -> bool {
        self.mechanisms.contains(&m)
    }
}

impl Drop for SlotSession {
    fn drop(&mut self) {
        // Forget the dead entry; the session itself closes when the field drops.
        if let Ok(mut map) = sessions().lock() {
            if map.get(&self.registry_key).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&self.registry_key);
            }
        }
    }
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

/// The live session of each (module, slot) in this process.
type SessionRegistry = Mutex<HashMap<(PathBuf, u64), Weak<SlotSession>>>;

fn sessions() -> &'static SessionRegistry {
    static SESSIONS: OnceLock<SessionRegistry> = OnceLock::new();
    SESSIONS.get_or_init(Default::default)
}

/// Load and initialise a module once per process. It is never finalised:
/// other tokens of the same module may still be in use, and C_Finalize
/// would end their sessions.
fn module(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let mut map = modules().lock().map_err(|_| Pkcs11Error::Poisoned)?;
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    let load_err = |reason: String| Pkcs11Error::ModuleLoad {
        path: path.to_owned(),
        reason,
    };
    let ctx = Pkcs11::new(path).map_err(|e| load_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process initialised it: that is fine.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_err(format!("C_Initialize: {e}"))),
    }
    map.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// Directories searched for `module-name=NAME` (as `NAME.so` and `libNAME.so`).
fn module_dirs() -> Vec<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("{multiarch}/pkcs11"),
        "/usr/lib/pkcs11".into(),
        "/usr/lib64/pkcs11".into(),
        format!("{multiarch}/softhsm"),
        "/usr/lib/softhsm".into(),
        "/usr/local/lib/softhsm".into(),
        multiarch,
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

fn resolve_module(uri: &Pkcs11Uri) -> Result<PathBuf, Pkcs11Error> {
    let path = if let Some(p) = &uri.module_path {
        p.clone()
    } else if let Some(name) = &uri.module_name {
        let dirs = module_dirs();
        dirs.iter()
            .flat_map(|d| [d.join(format!("{name}.so")), d.join(format!("lib{name}.so"))])
            .find(|p| p.is_file())
            .ok_or_else(|| Pkcs11Error::ModuleNotFound {
                name: name.clone(),
                searched: dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
    } else {
        return Err(Pkcs11Error::NoModule);
    };
    // One registry entry per file, however it is spelt.
    path.canonicalize().map_err(|e| Pkcs11Error::ModuleLoad {
        path,
        reason: e.to_string(),
    })
}

fn library_matches(uri: &Pkcs11Uri, info: &Info) -> bool {
    let v = info.library_version();
    uri.library_manufacturer
        .as_deref()
        .is_none_or(|m| m == info.manufacturer_id())
        && uri
            .library_description
            .as_deref()
            .is_none_or(|d| d == info.library_description())
        && uri.library_version.is_none_or(|want| want == (v.major(), v.minor()))
}

fn token_matches(uri: &Pkcs11Uri, slot: Slot, si: &SlotInfo, ti: &TokenInfo) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&uri.token, ti.label())
        && eq(&uri.manufacturer, ti.manufacturer_id())
        && eq(&uri.model, ti.model())
        && eq(&uri.serial, ti.serial_number())
        && eq(&uri.slot_description, si.slot_description())
        && eq(&uri.slot_manufacturer, si.manufacturer_id())
        && uri.slot_id.is_none_or(|id| id == slot.id())
}

fn describe(slot: Slot, ti: &TokenInfo) -> String {
    format!("{:?} (serial {:?}, slot {})", ti.label(), ti.serial_number(), slot.id())
}

/// Read a `pin-source` file: at most [`MAX_PIN_LEN`] bytes, one trailing
/// newline (LF or CRLF) removed.
fn read_pin_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
    use std::io::Read;
    let err = |reason: String| Pkcs11Error::PinSource {
        path: path.to_owned(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut pin = Zeroizing::new(Vec::with_capacity(MAX_PIN_LEN + 3));
    // Read one byte past the limit (plus a CRLF) to tell "too long" from "exactly full".
    file.take((MAX_PIN_LEN + 3) as u64)
        .read_to_end(&mut pin)
        .map_err(|e| err(e.to_string()))?;
    if pin.last() == Some(&b'\n') {
        pin.pop();
        if pin.last() == Some(&b'\r') {
            pin.pop();
        }
    }
    if pin.len() > MAX_PIN_LEN {
        return Err(err(format!("longer than {MAX_PIN_LEN} bytes")));
    }
    if pin.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(pin)
}

fn pin_from(uri: &Pkcs11Uri) -> Result<Option<Zeroizing<Vec<u8>>>, Pkcs11Error> {
    match uri.pin_spec() {
        None => Ok(None),
        Some(PinSpec::Value(v)) => Ok(Some(v.clone())),
        Some(PinSpec::Source(p)) => read_pin_file(p).map(Some),
    }
}

fn login_once(session: &Session, pin: Option<&[u8]>) -> Result<(), CkError> {
    match pin {
        Some(p) => session.login_with_raw(UserType::User, &RawAuthPin::new(Box::new(p.to_vec()))),
        // A PIN pad or biometric reader asks the user itself.
        None => session.login(UserType::User, None),
    }
}

/// Log `session` in as the user. Called with no live [`SlotSession`] for this
/// token in the process, so if the token says it is already logged in, that
/// is a session being closed: log out and in again, so the PIN is checked.
fn login(session: &Session, ti: &TokenInfo, pin: Option<&[u8]>) -> Result<(), Pkcs11Error> {
    let token = || ti.label().to_owned();
    if !ti.login_required() {
        return Ok(());
    }
    if pin.is_none() && !ti.protected_authentication_path() {
        return Err(Pkcs11Error::PinRequired { token: token() });
    }
    let result = match login_once(session, pin) {
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
            session.logout().map_err(Pkcs11Error::token("C_Logout"))?;
            login_once(session, pin)
        }
        r => r,
    };
    result.map_err(|e| match e {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange | RvError::PinInvalid, _) => {
            Pkcs11Error::PinIncorrect { token: token() }
        }
        CkError::Pkcs11(RvError::PinLocked, _) => Pkcs11Error::PinLocked { token: token() },
        CkError::Pkcs11(RvError::PinExpired, _) => Pkcs11Error::PinExpired { token: token() },
        e => Pkcs11Error::Token {
            operation: "C_Login",
            source: e,
        },
    })
}

fn same_pin(a: Option<&Zeroizing<Vec<u8>>>, b: Option<&Zeroizing<Vec<u8>>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => bool::from(a.as_slice().ct_eq(b.as_slice())),
        (None, None) => true,
        _ => false,
    }
}

/// A PKCS#11 token, opened and logged in as the user.
///
/// Cheap to clone; every clone and every key found or generated through it
/// share the one session this process has on the token.
#[derive(Clone)]
pub struct Token {
    inner: Arc<SlotSession>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .field("serial", &self.inner.serial)
            .field("module", &self.inner.module_path)
            .finish()
    }
}

/// The slots with an initialised token, with their slot and token
/// information. A file-backed module (SoftHSM2) read while another process
/// rewrites its token files can answer CKR_GENERAL_ERROR or
/// CKR_DEVICE_ERROR for a moment (seen with `mef ca rollover` beside a
/// running `mef serve`): such an answer is asked again, three times at most
/// over about a second, before it is an error.
fn discover(
    ctx: &cryptoki::context::Pkcs11,
) -> Result<
    Vec<(
        cryptoki::slot::Slot,
        cryptoki::slot::SlotInfo,
        cryptoki::slot::TokenInfo,
    )>,
    Pkcs11Error,
> {
    use cryptoki::error::{Error as CkError, RvError};
    let once = || -> Result<Vec<_>, (&'static str, CkError)> {
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(|e| ("C_GetSlotList", e))?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let ti = ctx.get_token_info(slot).map_err(|e| ("C_GetTokenInfo", e))?;
            let si = ctx.get_slot_info(slot).map_err(|e| ("C_GetSlotInfo", e))?;
            out.push((slot, si, ti));
        }
        Ok(out)
    };
    let mut attempt = 0u32;
    loop {
        match once() {
            Ok(v) => return Ok(v),
            Err((_, CkError::Pkcs11(RvError::GeneralError | RvError::DeviceError, _))) if attempt < 3 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(150 * u64::from(attempt)));
            }
            Err((operation, source)) => return Err(Pkcs11Error::Token { operation, source }),
        }
    }
}

impl Token {
    /// Open the token `uri` names: load the module (`module-path` or
    /// `module-name`), find the one initialised token matching the URI's
    /// token, slot and library attributes, and log in as the user with the
    /// URI's PIN (`pin-value`, `pin-source`, or [`Pkcs11Uri::set_pin`]).
    /// Object attributes (`object`, `id`, `type`) are ignored here.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let module_path = resolve_module(uri)?;
        let ctx = module(&module_path)?;
        let info = ctx.get_library_info().map_err(Pkcs11Error::token("C_GetInfo"))?;
        let mut present = Vec::new();
        let mut matching = Vec::new();
        for (slot, si, ti) in discover(&ctx)? {
            present.push(describe(slot, &ti));
            if library_matches(uri, &info) && token_matches(uri, slot, &si, &ti) {
                matching.push((slot, ti));
            }
        }
        let (slot, ti) = match matching.len() {
            1 => matching.pop().ok_or(Pkcs11Error::Poisoned)?,
            0 => {
                return Err(Pkcs11Error::TokenNotFound {
                    wanted: uri.describe_token(),
                    available: if present.is_empty() {
                        "none".into()
                    } else {
                        present.join(", ")
                    },
                })
            }
            _ => {
                return Err(Pkcs11Error::AmbiguousToken {
                    wanted: uri.describe_token(),
                    candidates: matching
                        .iter()
                        .map(|(s, t)| describe(*s, t))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        };
        let pin = pin_from(uri)?;
        let key = (module_path.clone(), slot.id());

        let live = {
            let mut map = sessions().lock().map_err(|_| Pkcs11Error::Poisoned)?;
            match map.get(&key).and_then(Weak::upgrade) {
                Some(live) => live,
                None => {
                    let session = match ctx.open_rw_session(slot) {
                        Err(CkError::Pkcs11(RvError::TokenWriteProtected, _)) => ctx.open_ro_session(slot),
                        r => r,
                    }
                    .map_err(Pkcs11Error::token("C_OpenSession"))?;
                    login(&session, &ti, pin.as_deref().map(Vec::as_slice))?;
                    let mechanisms = ctx
                        .get_mechanism_list(slot)
                        .map_err(Pkcs11Error::token("C_GetMechanismList"))?;
                    let shared = Arc::new(SlotSession {
                        registry_key: key.clone(),
                        module_path,
                        label: ti.label().to_owned(),
                        serial: ti.serial_number().to_owned(),
                        session: Mutex::new(session),
                        pin,
                        mechanisms,
                    });
                    map.insert(key, Arc::downgrade(&shared));
                    return Ok(Token { inner: shared });
                }
            }
        };
        // Outside the registry lock: dropping the last reference locks it.
        if same_pin(live.pin.as_ref(), pin.as_ref()) {
            Ok(Token { inner: live })
        } else {
            Err(Pkcs11Error::PinMismatch {
                token: live.label.clone(),
            })
        }
    }

    /// The token label (CK_TOKEN_INFO.label, without padding).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The token serial number.
    pub fn serial(&self) -> &str {
        &self.inner.serial
    }

    /// The module the token was opened through (canonical path).
    pub fn module_path(&self) -> &Path {
        &self.inner.module_path
    }

    /// Generate a key pair inside the token: RSA 2048/3072/4096 (e = 65537)
    /// or EC P-256. The private key is a token object with CKA_PRIVATE,
    /// CKA_SENSITIVE and CKA_SIGN true and CKA_EXTRACTABLE false (RSA keys
    /// also CKA_DECRYPT, for SCEP CertReps); the public key is a token
    /// object with the same label and id. Refuses a label or id a key in
    /// the token already has, so a later lookup is never ambiguous.
    pub fn generate(&self, spec: KeySpec, label: &str, id: &[u8]) -> Result<Pkcs11Key, Pkcs11Error> {
        key::generate(&self.inner, spec, label, id, true)
    }

    /// As [`Token::generate`], for one more key pair under a label other
    /// pairs may already carry (successive keys of one credential, each
    /// found by label and id): only the id, which must not be empty, has
    /// to be new in the token.
    pub fn generate_version(&self, spec: KeySpec, label: &str, id: &[u8]) -> Result<Pkcs11Key, Pkcs11Error> {
        key::generate(&self.inner, spec, label, id, false)
    }

    /// Find an existing key pair by label (CKA_LABEL), id (CKA_ID) or both.
    /// Exactly one private key must match.
    pub fn find(&self, label: Option<&str>, id: Option<&[u8]>) -> Result<Pkcs11Key, Pkcs11Error> {
        key::find(&self.inner, label, id)
    }

    /// Find the key pair the URI's `object`, `id` and `type` attributes name
    /// (`type`, if given, must be `private` or `public`).
    pub fn find_uri(&self, uri: &Pkcs11Uri) -> Result<Pkcs11Key, Pkcs11Error> {
        match uri.object_type {
            None | Some(ObjectType::Private) | Some(ObjectType::Public) => {}
            Some(t) => return Err(Pkcs11Error::NotAKey(t.as_str())),
        }
        self.find(uri.object.as_deref(), uri.id.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn pin_file_is_bounded_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "1234\r\n").unwrap();
        assert_eq!(read_pin_file(&p).unwrap().as_slice(), b"1234");
        std::fs::write(&p, "1234\n\n").unwrap();
        assert_eq!(read_pin_file(&p).unwrap().as_slice(), b"1234\n");
        std::fs::write(&p, "x".repeat(MAX_PIN_LEN)).unwrap();
        assert_eq!(read_pin_file(&p).unwrap().len(), MAX_PIN_LEN);
        std::fs::write(&p, "x".repeat(MAX_PIN_LEN + 1)).unwrap();
        assert!(matches!(read_pin_file(&p), Err(Pkcs11Error::PinSource { .. })));
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(read_pin_file(&p), Err(Pkcs11Error::PinSource { .. })));
        let e = read_pin_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn module_is_required() {
        let uri = Pkcs11Uri::parse("pkcs11:token=x").unwrap();
        assert!(matches!(Token::open(&uri), Err(Pkcs11Error::NoModule)));
        let uri = Pkcs11Uri::parse("pkcs11:token=x?module-name=enrolkit-no-such-module").unwrap();
        assert!(matches!(Token::open(&uri), Err(Pkcs11Error::ModuleNotFound { .. })));
        let uri = Pkcs11Uri::parse("pkcs11:token=x?module-path=/nonexistent/module.so").unwrap();
        assert!(matches!(Token::open(&uri), Err(Pkcs11Error::ModuleLoad { .. })));
    }
}
