//! The SQLite storage: one writer connection with group commit, one reader.

use super::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

impl From<rusqlite::Error> for StorageError {
    /// By meaning: a unique or primary-key constraint is a [`StorageError::Conflict`];
    /// a busy or locked database [`StorageError::Busy`] (after the 5 s busy
    /// timeout); a damaged file, a value of the wrong type or a row that must
    /// exist but does not [`StorageError::Corrupt`]; the rest
    /// [`StorageError::Other`].
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::{ErrorCode, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        use rusqlite::Error as E;
        let backend = Backend::Sqlite;
        let message = e.to_string();
        match &e {
            E::SqliteFailure(f, _) => match f.code {
                ErrorCode::ConstraintViolation
                    if f.extended_code == SQLITE_CONSTRAINT_UNIQUE
                        || f.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY =>
                {
                    StorageError::Conflict(message)
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StorageError::Busy { backend, message },
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StorageError::Corrupt { backend, message },
                _ => StorageError::Other { backend, message },
            },
            E::QueryReturnedNoRows
            | E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::InvalidColumnType(..)
            | E::Utf8Error(..) => StorageError::Corrupt { backend, message },
            _ => StorageError::Other { backend, message },
        }
    }
}

/// One-time secrets (challenges, Enrolment Tokens) share their shape:
/// `id, label, created, expires, used_at, revoked` in `table`.
fn list_one_time(c: &Connection, table: &str, label: &str, names: &str) -> Result<Vec<ChallengeInfo>> {
    let mut st = c.prepare(&format!(
        "SELECT id, {label}, created, expires, used_at, revoked, {names} FROM {table} ORDER BY id"
    ))?;
    let rows = st.query_map([], |r| {
        Ok(ChallengeInfo {
            id: r.get(0)?,
            label: r.get(1)?,
            created: r.get(2)?,
            expires: r.get(3)?,
            used_at: r.get(4)?,
            revoked: r.get::<_, i64>(5)? != 0,
            names: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn revoke_one_time(c: &Connection, table: &str, id: i64, what: &str) -> Result<()> {
    match c.execute(&format!("UPDATE {table} SET revoked = 1 WHERE id = ?1"), params![id])? {
        1 => Ok(()),
        _ => Err(StorageError::NotFound(format!("no {what} {id}"))),
    }
}

/// SQLite storage (WAL journal): one connection for writes, serialised,
/// with group commit for [`Storage::record`]; one for the lookups on the
/// request path.
pub struct SqliteStorage {
    conn: Mutex<Connection>,
    /// Lookups that must not wait behind a commit; `None` for an in-memory
    /// database (a second connection would open another, empty one).
    reader: Option<Mutex<Connection>>,
    /// Writes waiting for the next group commit.
    queue: Mutex<Vec<Queued>>,
    /// Told how long each commit took ([`Storage::observe_commits`]).
    commits: CommitObserverSlot,
    /// Database accesses through this handle ([`SqliteStorage::accesses`]).
    accesses: std::sync::atomic::AtomicU64,
}

/// One write of a group commit, run on the writer connection inside the
/// group's transaction.
type Write = Box<dyn FnOnce(&Connection) -> Result<()> + Send>;

/// A queued write and where its outcome is left for its caller.
struct Queued {
    write: Write,
    done: Arc<Done>,
}

/// The outcome of a queued write, set once its group has committed (or failed).
#[derive(Default)]
struct Done(Mutex<Option<Result<()>>>);

impl Done {
    fn set(&self, r: Result<()>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(r);
        }
    }
    fn take(&self) -> Option<Result<()>> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Run `batch` in one transaction, each write in a savepoint of its own
/// (a failed write is rolled back alone), commit once, then tell each
/// caller. A write is reported as successful only if the commit succeeded.
fn commit_group(c: &mut Connection, batch: Vec<Queued>, commits: &CommitObserverSlot) {
    let mut outcomes: Vec<(Arc<Done>, Result<()>)> = Vec::with_capacity(batch.len());
    let mut queued = batch.into_iter();
    let committed = (|| -> Result<()> {
        let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for Queued { write, done } in queued.by_ref() {
            if let Err(e) = t.prepare_cached("SAVEPOINT w").and_then(|mut st| st.execute([])) {
                outcomes.push((done, Ok(())));
                return Err(e.into());
            }
            let r = write(&t);
            // If undoing a failed write fails, nothing of the group may be committed.
            let undo = match &r {
                Ok(()) => t.prepare_cached("RELEASE w").and_then(|mut st| st.execute([])),
                Err(_) => t.execute_batch("ROLLBACK TO w; RELEASE w").map(|()| 0),
            };
            outcomes.push((done, r));
            undo?;
        }
        timed_commit(commits, Backend::Sqlite, || t.commit())?;
        Ok(())
    })();
    // Writes the group did not reach fail with it.
    outcomes.extend(queued.map(|q| (q.done, Ok(()))));
    for (done, r) in outcomes {
        done.set(match (&committed, r) {
            (Ok(()), r) => r,
            (Err(e), Ok(())) => Err(e.clone().within("group commit")),
            (Err(_), Err(own)) => Err(own),
        });
    }
}

/// Connection settings, applied on every open (outside any transaction).
const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA secure_delete = ON;
";

/// The schema, applied on every open. Every statement is `IF NOT EXISTS`
/// and changes only add tables, so opening a database made by an older
/// version upgrades it (`held_terms` and `generated_keys` came later);
/// columns added to existing tables are in [`migrate`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS challenges (
    id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, label TEXT NOT NULL,
    created INTEGER NOT NULL, expires INTEGER, used_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0,
    names TEXT, sealed BLOB);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY, subject TEXT NOT NULL, der BLOB NOT NULL, not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL, revoked_at INTEGER, reason INTEGER);
CREATE TABLE IF NOT EXISTS transactions (
    txid TEXT NOT NULL, key_id TEXT NOT NULL, subject TEXT NOT NULL, csr BLOB NOT NULL,
    state TEXT NOT NULL, serial TEXT REFERENCES certificates(serial), fail_info INTEGER, reason TEXT,
    created INTEGER NOT NULL, refusal TEXT, PRIMARY KEY (txid, key_id));
CREATE INDEX IF NOT EXISTS transactions_state ON transactions (state, created);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS psks (
    identity TEXT PRIMARY KEY, key BLOB NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL, names TEXT,
    sealed BLOB);
CREATE TABLE IF NOT EXISTS rspf_tokens (
    id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, enrolee TEXT NOT NULL,
    created INTEGER NOT NULL, expires INTEGER, used_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rspf_enrolments (
    relative_ke_id TEXT PRIMARY KEY, relative_kre_id TEXT NOT NULL UNIQUE, enrolee TEXT NOT NULL,
    enrolee_id TEXT, created INTEGER NOT NULL, expires INTEGER NOT NULL,
    sealed BLOB NOT NULL, completions TEXT NOT NULL DEFAULT '', parent TEXT);
CREATE INDEX IF NOT EXISTS rspf_enrolments_enrolee ON rspf_enrolments (enrolee, created);
CREATE TABLE IF NOT EXISTS gba_stub (
    btid TEXT PRIMARY KEY, impi TEXT NOT NULL, expires INTEGER NOT NULL, sealed_ks BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS held_terms (
    txid TEXT NOT NULL, key_id TEXT NOT NULL, terms BLOB NOT NULL, PRIMARY KEY (txid, key_id),
    FOREIGN KEY (txid, key_id) REFERENCES transactions (txid, key_id));
CREATE TABLE IF NOT EXISTS generated_keys (
    txid TEXT NOT NULL, key_id TEXT NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (txid, key_id),
    FOREIGN KEY (txid, key_id) REFERENCES transactions (txid, key_id));
CREATE TABLE IF NOT EXISTS cmp_confirmations (
    serial TEXT PRIMARY KEY, txid TEXT NOT NULL, deadline INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cmp_confirmations_deadline ON cmp_confirmations (deadline);
";

/// The handshake generation ([`Storage::handshake_generation`]): a row in
/// `meta` and triggers that move it on every change of what the handshake
/// views hold (an older build's writes included). Applied by [`migrate`]
/// after the columns they name exist.
const HANDSHAKE_TRIGGERS: &str = "
INSERT OR IGNORE INTO meta (key, value) VALUES ('handshake_generation', 0);
CREATE TRIGGER IF NOT EXISTS handshake_psks_insert AFTER INSERT ON psks
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_psks_update AFTER UPDATE ON psks
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_psks_delete AFTER DELETE ON psks
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_enrolments_insert AFTER INSERT ON rspf_enrolments
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_enrolments_update
    AFTER UPDATE OF relative_ke_id, relative_kre_id, expires, sealed ON rspf_enrolments
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_enrolments_delete AFTER DELETE ON rspf_enrolments
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_gba_insert AFTER INSERT ON gba_stub
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_gba_update AFTER UPDATE ON gba_stub
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
CREATE TRIGGER IF NOT EXISTS handshake_gba_delete AFTER DELETE ON gba_stub
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'handshake_generation'; END;
";

/// The database's schema version; refused when newer than this build's.
fn check_version(conn: &Connection) -> Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// Indexes and triggers added to a schema version after it shipped (they
/// change nothing an older build reads or writes, so they need no new
/// version): created by [`migrate`] when missing.
const LATE_OBJECTS: [(&str, &str); 11] = [
    // CMP certificates waiting for their certConf.
    ("table", "cmp_confirmations"),
    // The pending transactions (the proxy's relay pass, its hold caps,
    // `mef scep pending list`): without it each is a scan of every
    // transaction ever recorded.
    ("index", "transactions_state"),
    // The handshake generation: each of its triggers (a table rebuilt by
    // hand loses its own).
    ("trigger", "handshake_psks_insert"),
    ("trigger", "handshake_psks_update"),
    ("trigger", "handshake_psks_delete"),
    ("trigger", "handshake_enrolments_insert"),
    ("trigger", "handshake_enrolments_update"),
    ("trigger", "handshake_enrolments_delete"),
    ("trigger", "handshake_gba_insert"),
    ("trigger", "handshake_gba_update"),
    ("trigger", "handshake_gba_delete"),
];

/// Whether every one of [`LATE_OBJECTS`] exists.
fn has_late_objects(conn: &Connection) -> Result<bool> {
    for (kind, name) in LATE_OBJECTS {
        let has = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2")?
            .exists(params![kind, name])?;
        if !has {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bring an SQLite database to [`SCHEMA_VERSION`] in one transaction:
/// refuse a newer one, create what is missing, add the columns later
/// versions added, record the version.
fn migrate(conn: &mut Connection) -> Result<()> {
    // A current database is only read: opening it takes no write lock.
    if check_version(conn)? == SCHEMA_VERSION && has_late_objects(conn)? {
        return Ok(());
    }
    let t = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    // Again under the lock: another process may have upgraded it meanwhile.
    let found = check_version(&t)?;
    t.execute_batch(SCHEMA)?;
    for (table, column) in [
        ("rspf_enrolments", "parent"),
        ("challenges", "names"),
        ("psks", "names"),
        ("transactions", "refusal"),
        ("psks", "sealed"),
        ("challenges", "sealed"),
    ] {
        let has = t
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists(params![table, column])?;
        if !has {
            let kind = if column == "sealed" { "BLOB" } else { "TEXT" };
            t.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    t.execute_batch(UNIQUE_LABELS)?;
    t.execute_batch(HANDSHAKE_TRIGGERS)?;
    if found != SCHEMA_VERSION {
        t.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    t.commit()?;
    Ok(())
}

fn row_to_gba(r: &rusqlite::Row<'_>) -> rusqlite::Result<GbaBootstrap> {
    Ok(GbaBootstrap {
        btid: r.get(0)?,
        impi: r.get(1)?,
        expires: r.get(2)?,
        sealed_ks: r.get(3)?,
    })
}

/// `identity, names, key, sealed` of `psks`.
fn row_to_psk(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPsk> {
    Ok(StoredPsk {
        identity: r.get(0)?,
        names: r.get(1)?,
        key: stored_key(r.get(2)?, r.get(3)?),
    })
}

fn row_to_ke(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeRecord> {
    Ok(KeRecord {
        relative_ke_id: r.get(0)?,
        relative_kre_id: r.get(1)?,
        enrolee: r.get(2)?,
        enrolee_id: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        sealed: r.get(6)?,
        completions: r.get(7)?,
        parent: r.get(8)?,
    })
}

impl SqliteStorage {
    /// Insert a one-time challenge (with its sealed CMP secret, if any); a
    /// non-empty label is unique.
    fn insert_challenge(
        &self,
        hash: &[u8],
        label: &str,
        names: Option<&str>,
        sealed: Option<&[u8]>,
        now: i64,
        expires: Option<i64>,
    ) -> Result<i64> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !label.is_empty()
                && t.prepare("SELECT 1 FROM challenges WHERE label = ?1")?
                    .exists(params![label])?
            {
                return Err(StorageError::Conflict(format!(
                    "a challenge labelled {label:?} exists already"
                )));
            }
            t.execute(
                "INSERT INTO challenges (hash, label, created, expires, names, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, label, now, expires, names, sealed],
            )?;
            let id = t.last_insert_rowid();
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(id)
        })
    }
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Before anything is changed: a newer enrolkit's database is left as it is.
        check_version(&conn)?;
        // The database holds pre-shared keys: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                StorageError::Other {
                    backend: Backend::Sqlite,
                    message: format!("cannot restrict {}: {e}", path.display()),
                }
            })?;
        }
        conn.execute_batch(PRAGMAS)?;
        migrate(&mut conn)?;
        // Opened after the schema (and WAL mode) is in place; it never writes.
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.execute_batch("PRAGMA query_only = ON;")?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            reader: Some(Mutex::new(reader)),
            queue: Mutex::new(Vec::new()),
            commits: CommitObserverSlot::new(),
            accesses: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(PRAGMAS)?;
        migrate(&mut conn)?;
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            reader: None,
            queue: Mutex::new(Vec::new()),
            commits: CommitObserverSlot::new(),
            accesses: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many times this handle went to the database (every query,
    /// write or group commit, on either connection): what a TLS handshake
    /// must never cost, since [`crate::handshake`] answers from memory.
    pub fn accesses(&self) -> u64 {
        self.accesses.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_access(&self) {
        self.accesses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Move what the WAL holds into the database file and empty the WAL, so
    /// that pages a sealing rewrote leave no older copy behind (with
    /// `secure_delete`, the rewritten pages hold no trace of the clear key).
    fn checkpoint(&self) -> Result<()> {
        self.with(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.count_access();
        let mut c = self.conn.lock().map_err(|_| StorageError::poisoned(Backend::Sqlite))?;
        f(&mut c)
    }

    /// A lookup, on the reader connection when there is one. It sees every
    /// commit that returned before it started.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.reader {
            Some(r) => {
                self.count_access();
                f(&*r.lock().map_err(|_| StorageError::poisoned(Backend::Sqlite))?)
            }
            None => self.with(|c| f(c)),
        }
    }

    /// Run `write` in the next group commit and return its outcome once
    /// that commit is on disk. Whoever holds the writer connection next
    /// commits everything queued by then; a caller whose write was in an
    /// earlier group finds its outcome when it gets the connection.
    fn grouped(&self, write: Write) -> Result<()> {
        self.count_access();
        let done = Arc::new(Done::default());
        self.queue
            .lock()
            .map_err(|_| StorageError::poisoned(Backend::Sqlite))?
            .push(Queued {
                write,
                done: done.clone(),
            });
        let mut c = self.conn.lock().map_err(|_| StorageError::poisoned(Backend::Sqlite))?;
        // Outcomes are set before the connection is released, so a write
        // that is no longer queued has its outcome by now.
        if let Some(r) = done.take() {
            return r;
        }
        let batch = std::mem::take(&mut *self.queue.lock().map_err(|_| StorageError::poisoned(Backend::Sqlite))?);
        commit_group(&mut c, batch, &self.commits);
        drop(c);
        done.take().unwrap_or_else(|| {
            Err(StorageError::Other {
                backend: Backend::Sqlite,
                message: "group commit: write lost from its group".into(),
            })
        })
    }
}

fn insert_cert(t: &Connection, c: &IssuedCert, now: i64) -> Result<()> {
    t.prepare_cached(
        "INSERT INTO certificates (serial, subject, der, not_after, issued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![c.serial, c.subject, c.der, c.not_after, now])?;
    Ok(())
}

/// Insert a transaction, consuming its challenge and recording its certificate (see [`Storage::record`]).
fn insert_tx(
    t: &Connection,
    tx: &Transaction,
    challenge_hash: Option<&[u8]>,
    issued: Option<&IssuedCert>,
    now: i64,
) -> Result<()> {
    if let Some(h) = challenge_hash {
        let n = t
            .prepare_cached(
                "UPDATE challenges SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL AND revoked = 0 AND (expires IS NULL OR expires > ?2)",
            )?
            .execute(params![h, now])?;
        if n != 1 {
            return Err(StorageError::NotFound(
                "challenge already used, revoked or expired".into(),
            ));
        }
    }
    if let Some(cert) = issued {
        insert_cert(t, cert, now)?;
    }
    let (state, serial, refusal, why) = state_parts(&tx.state);
    t.prepare_cached(&format!(
        "INSERT INTO transactions ({TX_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8, ?9)"
    ))?
    .execute(params![
        tx.transaction_id,
        tx.key_id,
        tx.subject,
        tx.csr,
        state,
        serial,
        why,
        tx.created,
        refusal
    ])?;
    Ok(())
}

fn row_to_tx(r: &rusqlite::Row<'_>) -> rusqlite::Result<Transaction> {
    let state: String = r.get(4)?;
    let state = match state.as_str() {
        "issued" => TxState::Issued(r.get::<_, Option<String>>(5)?.unwrap_or_default()),
        "rejected" => TxState::Rejected(
            stored_refusal(r.get::<_, Option<String>>(9)?.as_deref()),
            r.get::<_, Option<String>>(7)?.unwrap_or_default(),
        ),
        _ => TxState::Pending,
    };
    Ok(Transaction {
        transaction_id: r.get(0)?,
        key_id: r.get(1)?,
        subject: r.get(2)?,
        csr: r.get(3)?,
        state,
        created: r.get(8)?,
    })
}

fn row_to_cert(r: &rusqlite::Row<'_>) -> rusqlite::Result<IssuedCert> {
    Ok(IssuedCert {
        serial: r.get(0)?,
        subject: r.get(1)?,
        der: r.get(2)?,
        not_after: r.get(3)?,
        revoked_at: r.get(4)?,
        reason: r.get(5)?,
    })
}

impl Storage for SqliteStorage {
    fn observe_commits(&self, observer: Arc<dyn CommitObserver>) {
        let _ = self.commits.set(observer);
    }

    fn ping(&self) -> Result<()> {
        // Reads the schema, so the file itself must answer, not only the library.
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?))
            .map(|_| ())
    }

    fn add_bound_challenge(
        &self,
        hash: &[u8],
        label: &str,
        names: Option<&str>,
        now: i64,
        expires: Option<i64>,
    ) -> Result<i64> {
        self.insert_challenge(hash, label, names, None, now, expires)
    }

    fn add_cmp_challenge(
        &self,
        hash: &[u8],
        label: &str,
        names: Option<&str>,
        sealed: &[u8],
        now: i64,
        expires: Option<i64>,
    ) -> Result<i64> {
        if label.is_empty() {
            return Err(StorageError::Conflict(
                "a CMP challenge needs a label (its senderKID)".into(),
            ));
        }
        self.insert_challenge(hash, label, names, Some(sealed), now, expires)
    }

    fn cmp_secret(&self, label: &str) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT sealed FROM challenges WHERE label = ?1 AND sealed IS NOT NULL")?
                    .query_row(params![label], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn challenge(&self, hash: &[u8], now: i64) -> Result<Option<UsableChallenge>> {
        // Advisory: `record` consumes the challenge atomically, or fails.
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, label, names FROM challenges WHERE hash = ?1 AND used_at IS NULL AND revoked = 0 AND (expires IS NULL OR expires > ?2)",
            )?
            .query_row(params![hash, now], |r| {
                Ok(UsableChallenge {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    names: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    fn list_challenges(&self) -> Result<Vec<ChallengeInfo>> {
        self.with(|c| list_one_time(c, "challenges", "label", "names"))
    }

    fn revoke_challenge(&self, id: i64) -> Result<()> {
        self.with(|c| revoke_one_time(c, "challenges", id, "challenge"))
    }

    fn transaction(&self, txid: &str, key_id: &str) -> Result<Option<Transaction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {TX_COLS} FROM transactions WHERE txid = ?1 AND key_id = ?2"
            ))?
            .query_row(params![txid, key_id], row_to_tx)
            .optional()?)
        })
    }

    fn record(
        &self,
        tx: &Transaction,
        challenge_hash: Option<&[u8]>,
        issued: Option<&IssuedCert>,
        now: i64,
    ) -> Result<()> {
        // The group's writer runs this on another thread: it gets its own copies.
        let (tx, challenge_hash, issued) = (tx.clone(), challenge_hash.map(<[u8]>::to_vec), issued.cloned());
        self.grouped(Box::new(move |c| {
            insert_tx(c, &tx, challenge_hash.as_deref(), issued.as_ref(), now)
        }))
    }

    fn record_held(&self, tx: &Transaction, challenge_hash: Option<&[u8]>, terms: &[u8], now: i64) -> Result<()> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_tx(&t, tx, challenge_hash, None, now)?;
            t.execute(
                "INSERT INTO held_terms (txid, key_id, terms) VALUES (?1, ?2, ?3)",
                params![tx.transaction_id, tx.key_id, terms],
            )?;
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(())
        })
    }

    fn held_terms(&self, txid: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT terms FROM held_terms WHERE txid = ?1 AND key_id = ?2",
                params![txid, key_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn store_generated_key(&self, txid: &str, key_id: &str, sealed: &[u8]) -> Result<()> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: i64 = t.query_row(
                "SELECT COUNT(*) FROM transactions WHERE txid = ?1 AND key_id = ?2",
                params![txid, key_id],
                |r| r.get(0),
            )?;
            if exists != 1 {
                return Err(StorageError::NotFound(format!("no transaction {txid}")));
            }
            t.execute(
                "INSERT INTO generated_keys (txid, key_id, sealed) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (txid, key_id) DO UPDATE SET sealed = excluded.sealed",
                params![txid, key_id, sealed],
            )?;
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(())
        })
    }

    fn take_generated_key(&self, txid: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sealed: Option<Vec<u8>> = t
                .query_row(
                    "SELECT sealed FROM generated_keys WHERE txid = ?1 AND key_id = ?2",
                    params![txid, key_id],
                    |r| r.get(0),
                )
                .optional()?;
            // The write lock is held from BEGIN IMMEDIATE: no other taker
            // reads the row between this SELECT and the DELETE.
            if sealed.is_some() {
                t.execute(
                    "DELETE FROM generated_keys WHERE txid = ?1 AND key_id = ?2",
                    params![txid, key_id],
                )?;
            }
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(sealed)
        })
    }

    fn decide(&self, txid: &str, key_id: &str, state: &TxState, issued: Option<&IssuedCert>, now: i64) -> Result<()> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(cert) = issued {
                insert_cert(&t, cert, now)?;
            }
            let (st, serial, fi, why) = state_parts(state);
            let n = t.execute(
                "UPDATE transactions SET state = ?3, serial = ?4, refusal = ?5, reason = ?6 WHERE txid = ?1 AND key_id = ?2 AND state = 'pending'",
                params![txid, key_id, st, serial, fi, why],
            )?;
            if n != 1 {
                return Err(StorageError::NotFound(format!("no pending transaction {txid}")));
            }
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(())
        })
    }

    fn pending(&self) -> Result<Vec<Transaction>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TX_COLS} FROM transactions WHERE state = 'pending' ORDER BY created"
            ))?;
            let rows = st.query_map([], row_to_tx)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn pending_after(&self, after: Option<&PendingCursor>, limit: usize) -> Result<Vec<Transaction>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {TX_COLS} FROM transactions WHERE state = 'pending' \
                 AND (?1 IS NULL OR (created, txid, key_id) > (?1, ?2, ?3)) \
                 ORDER BY created, txid, key_id LIMIT ?4"
            ))?;
            let rows = st.query_map(
                params![
                    after.map(|a| a.created),
                    after.map(|a| a.transaction_id.as_str()),
                    after.map(|a| a.key_id.as_str()),
                    limit
                ],
                row_to_tx,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn count_pending(&self, subject: Option<&str>) -> Result<u64> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM transactions WHERE state = 'pending' AND (?1 IS NULL OR subject = ?1)",
                params![subject],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn certificate(&self, serial: &str) -> Result<Option<IssuedCert>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT serial, subject, der, not_after, revoked_at, reason FROM certificates WHERE serial = ?1",
            )?
            .query_row(params![serial], row_to_cert)
            .optional()?)
        })
    }

    fn revoked(&self) -> Result<Vec<IssuedCert>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT serial, subject, der, not_after, revoked_at, reason FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at")?;
            let rows = st.query_map([], row_to_cert)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn revoke(&self, serial: &str, at: i64, reason: u8) -> Result<()> {
        self.with(|c| {
            match c.execute(
                "UPDATE certificates SET revoked_at = ?2, reason = ?3 WHERE serial = ?1 AND revoked_at IS NULL",
                params![serial, at, reason],
            )? {
                1 => Ok(()),
                _ => Err(StorageError::NotFound(format!(
                    "no unrevoked certificate with serial {serial}"
                ))),
            }
        })
    }

    fn await_confirmation(&self, serial: &str, txid: &str, deadline: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO cmp_confirmations (serial, txid, deadline) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (serial) DO UPDATE SET txid = ?2, deadline = ?3",
                params![serial, txid, deadline],
            )?;
            Ok(())
        })
    }

    fn confirmation_settled(&self, serial: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM cmp_confirmations WHERE serial = ?1", params![serial])? > 0))
    }

    fn extend_confirmation(&self, serial: &str, deadline: i64) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE cmp_confirmations SET deadline = ?2 WHERE serial = ?1",
                params![serial, deadline],
            )? > 0)
        })
    }

    fn revoke_unconfirmed(&self, serial: &str, at: i64, reason: u8) -> Result<Option<bool>> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Still due: a poll that extended the wait meanwhile wins.
            if t.execute(
                "DELETE FROM cmp_confirmations WHERE serial = ?1 AND deadline <= ?2",
                params![serial, at],
            )? == 0
            {
                return Ok(None);
            }
            let revoked = t.execute(
                "UPDATE certificates SET revoked_at = ?2, reason = ?3 WHERE serial = ?1 AND revoked_at IS NULL",
                params![serial, at, reason],
            )? > 0;
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(Some(revoked))
        })
    }

    fn unconfirmed_due(&self, now: i64, limit: usize) -> Result<Vec<(String, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT serial, txid FROM cmp_confirmations WHERE deadline <= ?1 ORDER BY deadline LIMIT ?2",
            )?;
            let rows = st.query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn next_crl_number(&self) -> Result<u64> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            t.execute("INSERT INTO meta (key, value) VALUES ('crl_number', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1", [])?;
            let n: i64 = t.query_row("SELECT value FROM meta WHERE key = 'crl_number'", [], |r| r.get(0))?;
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn add_bound_psk(&self, identity: &str, sealed: &[u8], label: &str, names: Option<&str>, now: i64) -> Result<()> {
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO psks (identity, key, label, created, names, sealed) VALUES (?1, x'', ?2, ?3, ?4, ?5) ON CONFLICT(identity) DO NOTHING",
                params![identity, label, now, names, sealed],
            )?;
            if n == 0 {
                return Err(StorageError::NotFound(format!("PSK identity {identity} already exists")));
            }
            Ok(())
        })
    }

    fn psk(&self, identity: &str) -> Result<Option<StoredPsk>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT identity, names, key, sealed FROM psks WHERE identity = ?1")?
                    .query_row(params![identity], row_to_psk)
                    .optional()?,
            )
        })
    }

    fn psks(&self) -> Result<Vec<StoredPsk>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT identity, names, key, sealed FROM psks")?;
            let rows = st.query_map([], row_to_psk)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn seal_psks(&self, sealed: &[(String, Vec<u8>)]) -> Result<usize> {
        let n = self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            for (identity, s) in sealed {
                n += t
                    .prepare_cached("UPDATE psks SET key = x'', sealed = ?2 WHERE identity = ?1 AND sealed IS NULL")?
                    .execute(params![identity, s])?;
            }
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(n)
        })?;
        if n > 0 {
            self.checkpoint()?;
        }
        Ok(n)
    }

    fn list_psks(&self) -> Result<Vec<PskInfo>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT identity, label, created, names FROM psks ORDER BY identity")?;
            let rows = st.query_map([], |r| {
                Ok(PskInfo {
                    identity: r.get(0)?,
                    label: r.get(1)?,
                    created: r.get(2)?,
                    names: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn psk_names(&self, identity: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT names FROM psks WHERE identity = ?1")?
                .query_row(params![identity], |r| r.get::<_, Option<String>>(0))
                .optional()?
                .flatten())
        })
    }

    fn remove_psk(&self, identity: &str) -> Result<()> {
        self.with(|c| {
            if c.execute("DELETE FROM psks WHERE identity = ?1", params![identity])? == 0 {
                return Err(StorageError::NotFound(format!("no PSK identity {identity}")));
            }
            Ok(())
        })
    }

    fn add_rspf_token(&self, hash: &[u8], enrolee: &str, now: i64, expires: Option<i64>) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO rspf_tokens (hash, enrolee, created, expires) VALUES (?1, ?2, ?3, ?4)",
                params![hash, enrolee, now, expires],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn list_rspf_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.with(|c| list_one_time(c, "rspf_tokens", "enrolee", "NULL"))
    }

    fn revoke_rspf_token(&self, id: i64) -> Result<()> {
        self.with(|c| revoke_one_time(c, "rspf_tokens", id, "enrolment token"))
    }

    fn record_enrolment(&self, rec: &KeRecord, token_hash: Option<&[u8]>, now: i64) -> Result<()> {
        self.with(|c| {
            let t = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(h) = token_hash {
                let n = t.execute(
                    "UPDATE rspf_tokens SET used_at = ?3 WHERE hash = ?1 AND enrolee = ?2 AND used_at IS NULL AND revoked = 0 AND (expires IS NULL OR expires > ?3)",
                    params![h, rec.enrolee, now],
                )?;
                if n != 1 {
                    return Err(StorageError::NotFound(
                        "enrolment token unknown, already used, revoked or expired".into(),
                    ));
                }
            }
            if let Some(p) = rec.parent.as_deref().filter(|p| !p.is_empty()) {
                let live = t
                    .prepare_cached("SELECT 1 FROM rspf_enrolments WHERE relative_ke_id = ?1")?
                    .exists([p])?;
                if !live {
                    return Err(StorageError::NotFound(PARENT_GONE.into()));
                }
            }
            let n = t.execute(
                &format!("INSERT INTO rspf_enrolments ({KE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING"),
                params![
                    rec.relative_ke_id,
                    rec.relative_kre_id,
                    rec.enrolee,
                    rec.enrolee_id,
                    rec.created,
                    rec.expires,
                    rec.sealed,
                    rec.completions,
                    rec.parent
                ],
            )?;
            if n != 1 {
                return Err(StorageError::Conflict(
                    "an enrolment with this RelativeKeId is already recorded (one exchange per TLS session)".into(),
                ));
            }
            timed_commit(&self.commits, Backend::Sqlite, || t.commit())?;
            Ok(())
        })
    }

    fn enrolment(&self, relative_ke_id: &str) -> Result<Option<KeRecord>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {KE_COLS} FROM rspf_enrolments WHERE relative_ke_id = ?1"),
                params![relative_ke_id],
                row_to_ke,
            )
            .optional()?)
        })
    }

    fn enrolment_by_kre(&self, relative_kre_id: &str) -> Result<Option<KeRecord>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {KE_COLS} FROM rspf_enrolments WHERE relative_kre_id = ?1"),
                params![relative_kre_id],
                row_to_ke,
            )
            .optional()?)
        })
    }

    fn latest_enrolment(&self, enrolee: &str, now: i64) -> Result<Option<KeRecord>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {KE_COLS} FROM rspf_enrolments WHERE enrolee = ?1 AND expires > ?2 ORDER BY created DESC, rowid DESC LIMIT 1"),
                params![enrolee, now],
                row_to_ke,
            )
            .optional()?)
        })
    }

    fn complete_enrolment(&self, relative_ke_id: &str, procedure: &str, success: bool, now: i64) -> Result<()> {
        let line = format!("{procedure}={}@{now}\n", if success { "ok" } else { "failed" });
        self.with(|c| {
            match c.execute(
                "UPDATE rspf_enrolments SET completions = completions || ?2 WHERE relative_ke_id = ?1",
                params![relative_ke_id, line],
            )? {
                1 => Ok(()),
                _ => Err(StorageError::NotFound(format!("no enrolment {relative_ke_id}"))),
            }
        })
    }

    fn delete_enrolment(&self, relative_ke_id: &str) -> Result<()> {
        self.with(|c| {
            match c.execute(
                "DELETE FROM rspf_enrolments WHERE relative_ke_id = ?1",
                params![relative_ke_id],
            )? {
                1 => Ok(()),
                _ => Err(StorageError::NotFound(format!("no enrolment {relative_ke_id}"))),
            }
        })
    }

    fn enrolments(&self) -> Result<Vec<KeRecord>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {KE_COLS} FROM rspf_enrolments ORDER BY created, rowid"
            ))?;
            let rows = st.query_map([], row_to_ke)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn handshake_generation(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT value FROM meta WHERE key = 'handshake_generation'")?
                    .query_row([], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn purge_enrolments(&self, now: i64) -> Result<usize> {
        self.with(|c| Ok(c.execute("DELETE FROM rspf_enrolments WHERE expires <= ?1", params![now])?))
    }

    fn add_gba_bootstrap(&self, b: &GbaBootstrap) -> Result<()> {
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO gba_stub (btid, impi, expires, sealed_ks) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![b.btid, b.impi, b.expires, b.sealed_ks],
            )?;
            if n != 1 {
                return Err(StorageError::Conflict(format!("B-TID {} exists", b.btid)));
            }
            Ok(())
        })
    }

    fn gba_bootstrap(&self, btid: &str) -> Result<Option<GbaBootstrap>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT btid, impi, expires, sealed_ks FROM gba_stub WHERE btid = ?1",
                params![btid],
                row_to_gba,
            )
            .optional()?)
        })
    }

    fn gba_bootstraps(&self) -> Result<Vec<GbaBootstrap>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT btid, impi, expires, sealed_ks FROM gba_stub")?;
            let rows = st.query_map([], row_to_gba)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sqlite_errors_become_database_neutral_errors_by_meaning() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE, n INTEGER NOT NULL)")
            .unwrap();
        c.execute("INSERT INTO t VALUES ('a', 'x', 1)", []).unwrap();
        let e = StorageError::from(c.execute("INSERT INTO t VALUES ('a', 'y', 1)", []).unwrap_err());
        assert!(matches!(e, StorageError::Conflict(_)), "{e:?}");
        let e = StorageError::from(c.execute("INSERT INTO t VALUES ('b', 'x', 1)", []).unwrap_err());
        assert!(matches!(e, StorageError::Conflict(_)), "{e:?}");
        // NOT NULL is not a conflict.
        let e = StorageError::from(c.execute("INSERT INTO t VALUES ('c', 'z', NULL)", []).unwrap_err());
        assert!(
            matches!(
                e,
                StorageError::Other {
                    backend: Backend::Sqlite,
                    ..
                }
            ),
            "{e:?}"
        );
        // A column of another type, a row that must be there.
        let e = StorageError::from(c.query_row("SELECT k FROM t", [], |r| r.get::<_, i64>(0)).unwrap_err());
        assert!(matches!(e, StorageError::Corrupt { .. }), "{e:?}");
        let e = StorageError::from(
            c.query_row("SELECT n FROM t WHERE k = 'none'", [], |r| r.get::<_, i64>(0))
                .unwrap_err(),
        );
        assert!(matches!(e, StorageError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().starts_with("SQLite: "), "{e}");
    }

    #[test]
    fn a_locked_database_is_busy_and_a_foreign_file_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let st = SqliteStorage::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let c = st.conn.lock().unwrap();
        c.busy_timeout(std::time::Duration::ZERO).unwrap();
        drop(c);
        let e = st.add_challenge(b"h", "", 1, None).unwrap_err();
        assert!(
            matches!(
                e,
                StorageError::Busy {
                    backend: Backend::Sqlite,
                    ..
                }
            ),
            "{e:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        st.add_challenge(b"h", "", 1, None).unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, [0x42u8; 4096]).unwrap();
        let e = SqliteStorage::open(&junk).err().unwrap();
        assert!(matches!(e, StorageError::Corrupt { .. }), "{e:?}");
    }

    fn pending(txid: &str) -> Transaction {
        Transaction {
            transaction_id: txid.into(),
            key_id: format!("kid-{txid}"),
            subject: "CN=held".into(),
            csr: vec![0x30, 0x00],
            state: TxState::Pending,
            created: 1,
        }
    }

    #[test]
    fn held_terms_and_generated_keys_are_kept_with_the_transaction_and_taken_once() {
        let st = SqliteStorage::in_memory().unwrap();
        assert!(matches!(
            st.store_generated_key("est-none", "kid", b"sealed"),
            Err(StorageError::NotFound(_))
        ));
        let tx = pending("est-keygen-1");
        st.record_held(&tx, None, b"terms", 1).unwrap();
        assert!(
            st.record_held(&tx, None, b"other terms", 1).is_err(),
            "a transaction is held once"
        );
        assert_eq!(
            st.held_terms(&tx.transaction_id, &tx.key_id).unwrap().as_deref(),
            Some(&b"terms"[..])
        );
        assert_eq!(st.held_terms(&tx.transaction_id, "another key").unwrap(), None);
        assert_eq!(
            st.transaction(&tx.transaction_id, &tx.key_id).unwrap().unwrap().state,
            TxState::Pending
        );
        assert_eq!(st.take_generated_key(&tx.transaction_id, &tx.key_id).unwrap(), None);
        st.store_generated_key(&tx.transaction_id, &tx.key_id, b"first")
            .unwrap();
        st.store_generated_key(&tx.transaction_id, &tx.key_id, b"second")
            .unwrap();
        assert_eq!(
            st.take_generated_key(&tx.transaction_id, &tx.key_id)
                .unwrap()
                .as_deref(),
            Some(&b"second"[..])
        );
        assert_eq!(st.take_generated_key(&tx.transaction_id, &tx.key_id).unwrap(), None);
        // A challenge consumed by the hold is consumed for good, with it.
        st.add_challenge(b"h", "dev", 1, None).unwrap();
        st.record_held(&pending("est-2"), Some(b"h"), b"t", 1).unwrap();
        assert!(!st.challenge_usable(b"h", 2).unwrap());
        assert!(matches!(
            st.record_held(&pending("est-3"), Some(b"h"), b"t", 1),
            Err(StorageError::NotFound(_))
        ));
        assert!(st.transaction("est-3", "kid-est-3").unwrap().is_none());
        assert_eq!(st.held_terms("est-3", "kid-est-3").unwrap(), None);
    }

    #[test]
    fn of_concurrent_takers_on_separate_connections_exactly_one_gets_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let st = SqliteStorage::open(&db).unwrap();
        let tx = pending("est-keygen-race");
        st.record_held(&tx, None, b"terms", 1).unwrap();
        st.store_generated_key(&tx.transaction_id, &tx.key_id, b"sealed key")
            .unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let (db, barrier, tx) = (db.clone(), barrier.clone(), tx.clone());
                std::thread::spawn(move || {
                    let own = SqliteStorage::open(&db).unwrap();
                    barrier.wait();
                    own.take_generated_key(&tx.transaction_id, &tx.key_id).unwrap()
                })
            })
            .collect();
        let got: Vec<_> = takers.into_iter().filter_map(|t| t.join().unwrap()).collect();
        assert_eq!(got, vec![b"sealed key".to_vec()]);
    }

    fn user_version(db: &Path) -> i64 {
        Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_version_1_database_gains_the_parent_column_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v1.db");
        {
            // The shape version 1 made: no parent column, user_version 0.
            let v1 = SCHEMA.replace(", parent TEXT);", ");");
            assert_ne!(v1, SCHEMA);
            let c = Connection::open(&db).unwrap();
            c.execute_batch(&v1).unwrap();
            c.execute(
                "INSERT INTO rspf_enrolments (relative_ke_id, relative_kre_id, enrolee, created, expires, sealed) VALUES ('KEOLD', 'KREOLD', 'alice', 1, 2, x'01')",
                [],
            )
            .unwrap();
        }
        assert_eq!(user_version(&db), 0);
        let st = SqliteStorage::open(&db).unwrap();
        assert_eq!(user_version(&db), SCHEMA_VERSION);
        let old = st.enrolment("KEOLD").unwrap().unwrap();
        assert_eq!(old.parent, None, "made before parents were kept");
        let child = KeRecord {
            relative_ke_id: "KENEW".into(),
            relative_kre_id: "KRENEW".into(),
            parent: Some("KEOLD".into()),
            ..old
        };
        st.record_enrolment(&child, None, 1).unwrap();
        assert_eq!(st.enrolment("KENEW").unwrap(), Some(child));
        drop(st);
        // Opening again changes nothing.
        SqliteStorage::open(&db).unwrap();
        assert_eq!(user_version(&db), SCHEMA_VERSION);
    }

    /// The query plan of `sql` with `args`, one detail per row.
    fn plan(c: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st.query_map(args, |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn pending_transactions_are_found_by_index_and_an_older_database_gains_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("st.db");
        drop(SqliteStorage::open(&db).unwrap());
        // A version-5 database made before the index: the same version,
        // no index.
        Connection::open(&db)
            .unwrap()
            .execute_batch("DROP INDEX transactions_state")
            .unwrap();
        // As `count_pending` and `pending_after` ask.
        let pending: [(&str, &[&dyn rusqlite::ToSql]); 2] = [
            (
                "SELECT COUNT(*) FROM transactions WHERE state = 'pending' AND (?1 IS NULL OR subject = ?1)",
                &[&"CN=a"],
            ),
            (
                "SELECT txid FROM transactions WHERE state = 'pending' \
                 AND (?1 IS NULL OR (created, txid, key_id) > (?1, ?2, ?3)) \
                 ORDER BY created, txid, key_id LIMIT 64",
                &[&1_i64, &"t", &"k"],
            ),
        ];
        for (q, args) in pending {
            let p = plan(&Connection::open(&db).unwrap(), q, args);
            assert!(!p.contains("transactions_state"), "{p}");
        }
        drop(SqliteStorage::open(&db).unwrap());
        assert_eq!(user_version(&db), SCHEMA_VERSION);
        let c = Connection::open(&db).unwrap();
        for (q, args) in pending {
            let p = plan(&c, q, args);
            assert!(p.contains("USING INDEX transactions_state"), "{q}: {p}");
        }
    }

    #[test]
    fn a_database_without_the_handshake_triggers_gains_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("st.db");
        drop(SqliteStorage::open(&db).unwrap());
        let triggers = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'handshake_%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let c = Connection::open(&db).unwrap();
        assert_eq!(triggers(&c), 9);
        // As a current-version database made before them.
        for name in c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
        {
            c.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
        }
        c.execute_batch("DELETE FROM meta WHERE key = 'handshake_generation'")
            .unwrap();
        assert_eq!(triggers(&c), 0);
        let st = SqliteStorage::open(&db).unwrap();
        assert_eq!(triggers(&c), 9);
        let g = st.handshake_generation().unwrap().unwrap();
        st.add_psk("kpm-t", b"sealed", "", 1).unwrap();
        assert_eq!(st.handshake_generation().unwrap(), Some(g + 1));
    }

    #[test]
    fn a_newer_database_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("newer.db");
        drop(SqliteStorage::open(&db).unwrap());
        Connection::open(&db)
            .unwrap()
            .execute_batch(&format!(
                "PRAGMA user_version = {}; CREATE TABLE from_the_future (x INTEGER);",
                SCHEMA_VERSION + 1
            ))
            .unwrap();
        match SqliteStorage::open(&db) {
            Err(StorageError::NewerSchema { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected NewerSchema, got {:?}", other.map(|_| "a storage")),
        }
        assert_eq!(user_version(&db), SCHEMA_VERSION + 1);
        let msg = StorageError::NewerSchema { found: 3, known: 2 }.to_string();
        assert!(msg.contains("newer mef"), "{msg}");
    }

    #[test]
    fn a_version_2_database_gets_unique_labels_and_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v2.db");
        {
            let c = Connection::open(&db).unwrap();
            c.execute_batch(
                "CREATE TABLE challenges (
                    id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, label TEXT NOT NULL,
                    created INTEGER NOT NULL, expires INTEGER, used_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0);
                 CREATE TABLE psks (identity TEXT PRIMARY KEY, key BLOB NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL);
                 INSERT INTO challenges (hash, label, created) VALUES (x'01', 'dev', 1), (x'02', 'dev', 2), (x'03', '', 3), (x'04', '', 4);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let st = SqliteStorage::open(&db).unwrap();
        let labels: Vec<String> = st.list_challenges().unwrap().into_iter().map(|c| c.label).collect();
        assert_eq!(labels, ["dev", "dev#2", "", ""]);
        assert!(matches!(
            st.add_challenge(b"5", "dev", 5, None),
            Err(StorageError::Conflict(_))
        ));
        st.add_bound_challenge(b"6", "bound", Some("{}"), 6, None).unwrap();
        assert_eq!(
            st.challenge(b"6", 6).unwrap().and_then(|c| c.names).as_deref(),
            Some("{}")
        );
        assert_eq!(user_version(&db), SCHEMA_VERSION);
    }

    #[test]
    fn a_database_made_before_held_terms_is_upgraded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db");
        let old_schema = SCHEMA.split("CREATE TABLE IF NOT EXISTS held_terms").next().unwrap();
        assert!(!old_schema.contains("generated_keys"));
        {
            let c = Connection::open(&db).unwrap();
            c.execute_batch(old_schema).unwrap();
            c.execute(
                "INSERT INTO transactions (txid, key_id, subject, csr, state, serial, fail_info, reason, created) VALUES ('est-old', 'kid', 'CN=old', x'3000', 'pending', NULL, NULL, NULL, 1)",
                [],
            )
            .unwrap();
        }
        let st = SqliteStorage::open(&db).unwrap();
        assert_eq!(st.pending().unwrap().len(), 1);
        assert_eq!(st.held_terms("est-old", "kid").unwrap(), None);
        st.store_generated_key("est-old", "kid", b"k").unwrap();
        assert_eq!(
            st.take_generated_key("est-old", "kid").unwrap().as_deref(),
            Some(&b"k"[..])
        );
        st.record_held(&pending("est-new"), None, b"terms", 2).unwrap();
        assert!(st.held_terms("est-new", "kid-est-new").unwrap().is_some());
    }
}
