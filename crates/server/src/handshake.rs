//! What TLS handshakes are answered from: memory, never the database.
//!
//! The OpenSSL PSK callback runs inside the handshake, on a tokio worker
//! thread. A database lookup there would stall that worker behind SQLite's
//! writer (group-commit fsyncs) or a PostgreSQL pool checkout, and a flood
//! of handshakes with made-up identities would cost one lookup each. So the
//! keys a handshake may need are held in memory:
//!
//! - [`PskView`]: operator PSKs (`mef psk add`; in oneM2M, Kpm by KpmId),
//!   opened from their sealed form once, when loaded;
//! - the MEF's live Kre records by KreId and GBA bootstraps by B-TID, in
//!   [`crate::rspf::RspfService`], the same way.
//!
//! Both are loaded when the service is built, written through when this
//! process records something (an enrolment, a bootstrap), and reloaded from
//! storage on the blocking pool every [`REFRESH`] by [`keep_current`] when
//! storage's handshake generation moved ([`Generation`]): what another
//! process changes (`mef psk add`, `mef psk remove`, `mef rspf revoke`)
//! takes effect on a running `mef serve` within that delay, and a quiet
//! database costs one row a second. An unknown identity is a miss in a
//! map: no database round trip.
//!
//! At rest, a PSK is sealed ([`PskSealer`]): AES-256-GCM under a key
//! derived from the storage key, with its identity and bound names as
//! associated data, like Ke ([`crate::seal`]).

use crate::seal::{derive_key, SealError, Sealer};
use crate::storage::{Storage, StoredKey, StoredPsk};
use enrolkit_tls::{PskContext, PskStore};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use zeroize::Zeroizing;

/// How often [`keep_current`] reloads the in-memory keys: a PSK added or
/// removed, or an enrolment withdrawn, by another process takes effect on a
/// running `mef serve` within this delay.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Label of the PSK sealing key, derived from the storage key (not UTF-8:
/// never a challenge or token hashed under the same secret).
const PSK_LABEL: &[u8] = b"\xffenrolkit PSK at rest";

/// Seals operator PSKs at rest under a key derived from the storage key,
/// bound to the identity and its bound names.
#[derive(Debug)]
pub struct PskSealer {
    sealer: Sealer,
}

impl PskSealer {
    /// A sealer for PSKs under `storage_key`.
    pub fn new(storage_key: &[u8; 32]) -> Result<Self, SealError> {
        Ok(PskSealer {
            sealer: Sealer::new(&derive_key(storage_key, PSK_LABEL))?,
        })
    }

    /// The clear columns a sealed PSK is bound to: its identity and names.
    fn aad(identity: &str, names: Option<&str>) -> Vec<u8> {
        let mut a = Vec::with_capacity(identity.len() + names.map_or(0, str::len) + 24);
        a.extend_from_slice(b"enrolkit-psk\0");
        a.extend_from_slice(&(identity.len() as u64).to_be_bytes());
        a.extend_from_slice(identity.as_bytes());
        match names {
            Some(n) => {
                a.push(1);
                a.extend_from_slice(n.as_bytes());
            }
            None => a.push(0),
        }
        a
    }

    /// The stored form of `key` for `identity` with bound `names`.
    pub fn seal(&self, identity: &str, names: Option<&str>, key: &[u8]) -> Result<Vec<u8>, SealError> {
        self.sealer.seal(&Self::aad(identity, names), key)
    }

    /// The key of a stored PSK: opened when sealed (under this key, with
    /// these clear columns), as it is when stored before sealing existed.
    pub fn open(&self, psk: &StoredPsk) -> Result<Zeroizing<Vec<u8>>, SealError> {
        match &psk.key {
            StoredKey::Sealed(s) => self.sealer.open(&Self::aad(&psk.identity, psk.names.as_deref()), s),
            StoredKey::Clear(k) => Ok(k.clone()),
        }
    }

    /// Seal `key` and store it in `storage` for `identity` (with bound
    /// `names`): the key never reaches the database in the clear.
    pub fn store(
        &self,
        storage: &dyn Storage,
        identity: &str,
        key: &[u8],
        label: &str,
        names: Option<&str>,
        now: i64,
    ) -> Result<Vec<u8>, String> {
        let sealed = self.seal(identity, names, key).map_err(|e| e.to_string())?;
        storage
            .add_bound_psk(identity, &sealed, label, names, now)
            .map_err(|e| e.to_string())?;
        Ok(sealed)
    }

    /// Seal every PSK still stored in the clear (written before schema
    /// version 4); returns how many this call sealed. Run by every process
    /// that holds the storage key when it loads the PSKs, so the first one
    /// after an upgrade seals them.
    pub fn seal_stored(&self, storage: &dyn Storage) -> Result<usize, String> {
        let mut sealed = Vec::new();
        for p in storage.psks().map_err(|e| e.to_string())? {
            if let StoredKey::Clear(k) = &p.key {
                let s = self
                    .seal(&p.identity, p.names.as_deref(), k)
                    .map_err(|e| format!("PSK identity {}: {e}", p.identity))?;
                sealed.push((p.identity.clone(), s));
            }
        }
        if sealed.is_empty() {
            return Ok(0);
        }
        let n = storage.seal_psks(&sealed).map_err(|e| e.to_string())?;
        tracing::info!(sealed = n, "PSKs stored in the clear by an older mef are now sealed");
        Ok(n)
    }
}

/// What a view loaded last, by [`Storage::handshake_generation`]: a
/// reload is skipped while that number has not moved, so an idle `mef
/// serve` with a million Enrolment Key records reads one row a second, not
/// a million.
#[derive(Debug, Default)]
pub struct Generation {
    loaded: Mutex<Option<i64>>,
    reloads: AtomicU64,
}

impl Generation {
    /// Run `reload` unless storage's generation is the one last loaded (or
    /// storage keeps none); `Ok(true)` when it ran. The generation is read
    /// before the reload: a change committed meanwhile is loaded now or at
    /// the next call. A failed reload leaves the view due.
    pub fn reload_if_moved(
        &self,
        storage: &dyn Storage,
        reload: impl FnOnce() -> Result<(), String>,
    ) -> Result<bool, String> {
        let now = storage.handshake_generation().map_err(|e| e.to_string())?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if now.is_some() && *loaded == now {
            return Ok(false);
        }
        reload()?;
        *loaded = now;
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Reloads run so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }
}

/// Something kept in memory that [`keep_current`] reloads from storage.
pub trait Refresh: Send + Sync {
    /// Reload from storage (blocking: run on the blocking pool).
    fn refresh(&self) -> Result<(), String>;
}

/// Reload `views` every `every`, each on the blocking pool, for ever; a
/// failed reload is logged and the view keeps what it had.
pub async fn keep_current(views: Vec<Arc<dyn Refresh>>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for v in &views {
            let v = v.clone();
            match tokio::task::spawn_blocking(move || v.refresh()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reloading handshake keys failed; keeping the previous ones"),
                Err(e) => tracing::error!(error = %e, "reloading handshake keys panicked"),
            }
        }
    }
}

/// One PSK in memory: its stored form (to skip opening it again when
/// unchanged) and its key.
struct Held {
    stored: StoredKey,
    names: Option<String>,
    key: Zeroizing<Vec<u8>>,
}

/// Operator PSKs by identity, in memory (see the module documentation).
pub struct PskView {
    storage: Arc<dyn Storage>,
    sealer: PskSealer,
    keys: RwLock<HashMap<String, Held>>,
    /// Identities whose sealed key did not open, already logged.
    unopened: Mutex<HashSet<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
    generation: Generation,
}

impl std::fmt::Debug for PskView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskView")
            .field("identities", &self.len())
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

impl PskView {
    /// Seal what an older version stored in the clear, then load every PSK.
    pub fn load(storage: Arc<dyn Storage>, sealer: PskSealer) -> Result<Self, String> {
        sealer.seal_stored(storage.as_ref())?;
        let v = PskView {
            storage,
            sealer,
            keys: RwLock::new(HashMap::new()),
            unopened: Mutex::new(HashSet::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            generation: Generation::default(),
        };
        v.refresh()?;
        Ok(v)
    }

    /// Full reloads so far (the first load included): none while nothing
    /// changed in storage.
    pub fn reloads(&self) -> u64 {
        self.generation.reloads()
    }

    /// The sealer, for whoever adds a PSK (`mef psk add`).
    pub fn sealer(&self) -> &PskSealer {
        &self.sealer
    }

    /// The key of `identity`, from memory.
    pub fn key(&self, identity: &str) -> Option<Zeroizing<Vec<u8>>> {
        let found = self
            .keys
            .read()
            .ok()
            .and_then(|m| m.get(identity).map(|h| h.key.clone()));
        match found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// Seal `key` and store it for `identity` (with bound `names`), then
    /// hold it in memory at once.
    pub fn add(&self, identity: &str, key: &[u8], label: &str, names: Option<&str>, now: i64) -> Result<(), String> {
        let sealed = self
            .sealer
            .store(self.storage.as_ref(), identity, key, label, names, now)?;
        if let Ok(mut m) = self.keys.write() {
            m.insert(
                identity.to_owned(),
                Held {
                    stored: StoredKey::Sealed(sealed),
                    names: names.map(str::to_owned),
                    key: Zeroizing::new(key.to_vec()),
                },
            );
        }
        Ok(())
    }

    /// Identities held.
    pub fn len(&self) -> usize {
        self.keys.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no identity is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups answered with a key.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups of an identity not held (each one answered without storage).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

impl Refresh for PskView {
    /// Every stored PSK, opened unless it is unchanged since the last load;
    /// nothing read while storage's handshake generation has not moved.
    fn refresh(&self) -> Result<(), String> {
        self.generation
            .reload_if_moved(self.storage.as_ref(), || self.reload())
            .map(drop)
    }
}

impl PskView {
    fn reload(&self) -> Result<(), String> {
        let stored = self.storage.psks().map_err(|e| e.to_string())?;
        let mut next = HashMap::with_capacity(stored.len());
        {
            let old = self.keys.read().map_err(|_| "PSK view lock poisoned".to_owned())?;
            for p in stored {
                if let Some(h) = old.get(&p.identity).filter(|h| h.stored == p.key && h.names == p.names) {
                    let key = h.key.clone();
                    next.insert(
                        p.identity,
                        Held {
                            stored: p.key,
                            names: p.names,
                            key,
                        },
                    );
                    continue;
                }
                match self.sealer.open(&p) {
                    Ok(key) => {
                        next.insert(
                            p.identity,
                            Held {
                                stored: p.key,
                                names: p.names,
                                key,
                            },
                        );
                    }
                    Err(e) => {
                        let first = self
                            .unopened
                            .lock()
                            .map(|mut u| u.insert(p.identity.clone()))
                            .unwrap_or(false);
                        if first {
                            tracing::error!(identity = %p.identity, error = %e, "PSK does not open (sealed under another storage key, or altered): refused");
                        }
                    }
                }
            }
        }
        *self.keys.write().map_err(|_| "PSK view lock poisoned".to_owned())? = next;
        Ok(())
    }
}

/// Every operator PSK (`[est] psk` without `[rspf]`).
impl PskStore for PskView {
    fn psk(&self, identity: &str, _ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>> {
        self.key(identity)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::storage::SqliteStorage;

    #[test]
    fn a_sealed_psk_opens_only_under_its_key_identity_and_names() {
        let s = PskSealer::new(&[3; 32]).unwrap();
        let sealed = s.seal("kpm-1", Some("{}"), &[9; 16]).unwrap();
        let psk = |identity: &str, names: Option<&str>| StoredPsk {
            identity: identity.into(),
            names: names.map(Into::into),
            key: StoredKey::Sealed(sealed.clone()),
        };
        assert_eq!(&*s.open(&psk("kpm-1", Some("{}"))).unwrap(), &[9; 16]);
        assert!(s.open(&psk("kpm-2", Some("{}"))).is_err(), "moved to another identity");
        assert!(s.open(&psk("kpm-1", None)).is_err(), "its names dropped");
        assert!(PskSealer::new(&[4; 32])
            .unwrap()
            .open(&psk("kpm-1", Some("{}")))
            .is_err());
        assert!(!sealed.windows(16).any(|w| w == [9; 16]));
    }

    #[test]
    fn the_view_serves_from_memory_and_follows_storage_on_refresh() {
        let st = Arc::new(SqliteStorage::in_memory().unwrap());
        let sealer = PskSealer::new(&[5; 32]).unwrap();
        st.add_psk("kpm-a", &sealer.seal("kpm-a", None, &[0xaa; 16]).unwrap(), "", 1)
            .unwrap();
        let v = PskView::load(st.clone(), PskSealer::new(&[5; 32]).unwrap()).unwrap();
        let before = st.accesses();
        assert_eq!(v.key("kpm-a").as_deref().map(Vec::as_slice), Some(&[0xaa; 16][..]));
        assert!(v.key("nobody").is_none());
        assert_eq!((v.hits(), v.misses(), st.accesses()), (1, 1, before));
        // Another process adds and removes: seen at the next refresh, not before.
        st.add_psk("kpm-b", &sealer.seal("kpm-b", None, &[0xbb; 16]).unwrap(), "", 1)
            .unwrap();
        st.remove_psk("kpm-a").unwrap();
        assert!(v.key("kpm-b").is_none() && v.key("kpm-a").is_some());
        v.refresh().unwrap();
        assert!(v.key("kpm-b").is_some() && v.key("kpm-a").is_none());
        // Written through by this process: at once.
        v.add("kpm-c", &[0xcc; 20], "", None, 1).unwrap();
        assert_eq!(v.key("kpm-c").unwrap().len(), 20);
        // A key sealed under another storage key is refused, not served.
        let other = PskSealer::new(&[6; 32]).unwrap();
        st.add_psk("kpm-d", &other.seal("kpm-d", None, &[0xdd; 16]).unwrap(), "", 1)
            .unwrap();
        v.refresh().unwrap();
        assert!(v.key("kpm-d").is_none() && v.key("kpm-c").is_some());
        assert_eq!(v.len(), 2);
    }
}
