//! Server state behind one trait: issued certificates, SCEP transactions
//! (for retransmissions and PENDING), one-time challenges, revocations.
//! SQLite is the default implementation; every write is one transaction,
//! so a crash never leaves half an issuance on disk.
//!
//! Issuances ([`Storage::record`]) arriving together share a commit (group
//! commit): each runs in its own savepoint, so it succeeds or fails alone,
//! and none is answered before the commit that holds it is on disk
//! (`synchronous = FULL`), so one fsync makes several issuances durable
//! instead of one. Lookups on the request path use a second connection,
//! which WAL lets read beside the writer, so they never wait for a commit.
//!
//! `mod.rs` holds the records, the trait and the database-neutral
//! [`StorageError`]; [`sqlite`] and [`postgres`] the two databases, with the
//! column lists they share from here, each converting its driver's errors
//! into [`StorageError`] by meaning (conflict, busy, corrupt, other).

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStorage;
pub use sqlite::SqliteStorage;

use crate::ra::RefusalReason;
use zeroize::Zeroizing;

/// Which database an error came from: named in messages, so an operator
/// knows which one to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// [`SqliteStorage`].
    Sqlite,
    /// [`PgStorage`].
    Postgres,
}

impl Backend {
    /// The backend as a metric label: `sqlite`, `postgres`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Told how long each commit of a write transaction took (the COMMIT
/// itself, and for SQLite's group commit the one COMMIT of the group), so
/// that `/metrics` can show the database's share of request latency
/// without the storage knowing about metrics.
pub trait CommitObserver: Send + Sync {
    /// A commit on `backend` took `took` (`ok`: it succeeded).
    fn committed(&self, backend: Backend, took: std::time::Duration, ok: bool);
}

/// Where a storage keeps its [`CommitObserver`] (set once, at start).
pub(crate) type CommitObserverSlot = std::sync::OnceLock<std::sync::Arc<dyn CommitObserver>>;

/// Run `commit`, telling the observer in `slot` (if any) how long it took.
pub(crate) fn timed_commit<E>(
    slot: &CommitObserverSlot,
    backend: Backend,
    commit: impl FnOnce() -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let started = std::time::Instant::now();
    let r = commit();
    if let Some(o) = slot.get() {
        o.committed(backend, started.elapsed(), r.is_ok());
    }
    r
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Storage errors, by what the caller can do about them, whichever
/// database raised them: each implementation converts its own errors
/// (`rusqlite`'s in [`sqlite`], `postgres`'s in [`postgres`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The row asked for does not exist or is not in the expected state.
    #[error("{0}")]
    NotFound(String),
    /// The row to add exists already: the operation's own check, or a
    /// unique constraint of the schema.
    #[error("{0}")]
    Conflict(String),
    /// The database could not serve the request now and may later: locked
    /// or busy, every connection in use, a serialisation failure or
    /// deadlock, the server unreachable or the connection lost. Nothing of
    /// the operation was stored; retrying it may succeed.
    #[error("{backend} busy or unavailable: {message}")]
    Busy {
        /// The database.
        backend: Backend,
        /// What it said.
        message: String,
    },
    /// What the database holds is not what this build expects: a value of
    /// the wrong type or out of range, a missing row that must exist, a
    /// damaged file.
    #[error("{backend}: invalid stored data: {message}")]
    Corrupt {
        /// The database.
        backend: Backend,
        /// What is wrong.
        message: String,
    },
    /// The database was made by a newer version of enrolkit, whose schema
    /// this one does not know: opening it could lose what it stores.
    #[error(
        "the database has schema version {found}, newer than the {known} this build of enrolkit knows: use a newer mef"
    )]
    NewerSchema {
        /// Version recorded in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// This storage does not implement the operation (see the [`Storage`] defaults).
    #[error("{0}: not implemented by this storage")]
    Unsupported(&'static str),
    /// Any other failure (refused credentials, a full disk, a file that
    /// cannot be set up, a lock poisoned by a panic): not retryable as such.
    #[error("{backend}: {message}")]
    Other {
        /// The database.
        backend: Backend,
        /// What went wrong.
        message: String,
    },
}

impl StorageError {
    /// The same error with `context` (what was being done) before its
    /// message; errors without a database message are returned as they are.
    pub fn within(self, context: &str) -> Self {
        match self {
            StorageError::Busy { backend, message } => StorageError::Busy {
                backend,
                message: format!("{context}: {message}"),
            },
            StorageError::Corrupt { backend, message } => StorageError::Corrupt {
                backend,
                message: format!("{context}: {message}"),
            },
            StorageError::Other { backend, message } => StorageError::Other {
                backend,
                message: format!("{context}: {message}"),
            },
            other => other,
        }
    }

    /// A lock of `backend`'s storage was poisoned by a panic in another thread.
    pub(crate) fn poisoned(backend: Backend) -> Self {
        StorageError::Other {
            backend,
            message: "storage lock poisoned".into(),
        }
    }
}

/// Result alias.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Where a SCEP transaction stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxState {
    /// Waiting for an operator.
    Pending,
    /// Issued: the serial (hex) of the certificate.
    Issued(String),
    /// Refused, with the typed reason and its words.
    Rejected(RefusalReason, String),
}

/// A transaction as stored.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// SCEP transactionID.
    pub transaction_id: String,
    /// SHA-256 of the requester's public key (hex): transactionIDs are only unique per key.
    pub key_id: String,
    /// Subject requested.
    pub subject: String,
    /// The CSR (DER).
    pub csr: Vec<u8>,
    /// State.
    pub state: TxState,
    /// Unix seconds.
    pub created: i64,
}

/// Where a pending transaction stands in the order they were recorded
/// (created, transactionID, key id: a total order, as stored), for
/// [`Storage::pending_after`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingCursor {
    /// [`Transaction::created`].
    pub created: i64,
    /// [`Transaction::transaction_id`].
    pub transaction_id: String,
    /// [`Transaction::key_id`].
    pub key_id: String,
}

impl PendingCursor {
    /// The place of `t`.
    pub fn of(t: &Transaction) -> PendingCursor {
        PendingCursor {
            created: t.created,
            transaction_id: t.transaction_id.clone(),
            key_id: t.key_id.clone(),
        }
    }
}

/// One issued certificate.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Subject as a string.
    pub subject: String,
    /// DER.
    pub der: Vec<u8>,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Revocation time, Unix seconds.
    pub revoked_at: Option<i64>,
    /// CRLReason code.
    pub reason: Option<u8>,
}

impl IssuedCert {
    /// The record of a certificate just issued (not revoked).
    pub fn from_certificate(cert: &x509_cert::Certificate) -> Result<Self, der::Error> {
        use der::Encode;
        Ok(IssuedCert {
            serial: hex::encode(cert.tbs_certificate.serial_number.as_bytes()),
            subject: cert.tbs_certificate.subject.to_string(),
            der: cert.to_der()?,
            not_after: crate::ra::unix(cert.tbs_certificate.validity.not_after.to_system_time()),
            revoked_at: None,
            reason: None,
        })
    }
}

/// A challenge as listed (the secret itself is never stored).
#[derive(Debug, Clone)]
pub struct ChallengeInfo {
    /// Row id.
    pub id: i64,
    /// Operator's label (device name).
    pub label: String,
    /// Created, Unix seconds.
    pub created: i64,
    /// Expiry, Unix seconds.
    pub expires: Option<i64>,
    /// When it was used.
    pub used_at: Option<i64>,
    /// Revoked by the operator.
    pub revoked: bool,
    /// Names bound to it when it was made ([`crate::ra::BoundNames`], stored form), if any.
    pub names: Option<String>,
}

/// A usable one-time challenge, as the authorisation core needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableChallenge {
    /// Row id.
    pub id: i64,
    /// Operator's label (unique when not empty).
    pub label: String,
    /// Names bound to it ([`crate::ra::BoundNames`], stored form), if any.
    pub names: Option<String>,
}

impl ChallengeInfo {
    /// `revoked`, `used`, `expired` or `usable` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked {
            "revoked"
        } else if self.used_at.is_some() {
            "used"
        } else if self.expires.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "usable"
        }
    }
}

/// The server's state.
pub trait Storage: Send + Sync {
    /// Report every later commit of a write transaction to `observer`
    /// (the metrics of `mef serve`). Set once; a second call is ignored.
    fn observe_commits(&self, observer: std::sync::Arc<dyn CommitObserver>);
    /// A trivial query (`SELECT 1`), for a health check: `Ok` when the
    /// database answers.
    fn ping(&self) -> Result<()>;
    /// Record a one-time challenge by its keyed hash, binding no names.
    fn add_challenge(&self, hash: &[u8], label: &str, now: i64, expires: Option<i64>) -> Result<i64> {
        self.add_bound_challenge(hash, label, None, now, expires)
    }
    /// Record a one-time challenge by its keyed hash with the names bound to
    /// it (stored form of [`crate::ra::BoundNames`]). A non-empty label is
    /// unique: `Conflict` when another challenge has it.
    fn add_bound_challenge(
        &self,
        hash: &[u8],
        label: &str,
        names: Option<&str>,
        now: i64,
        expires: Option<i64>,
    ) -> Result<i64>;
    /// The usable challenge (not used, revoked or expired) with this hash.
    fn challenge(&self, hash: &[u8], now: i64) -> Result<Option<UsableChallenge>>;
    /// Record a CMP challenge (`mef challenge add --cmp`): a one-time
    /// challenge like [`Storage::add_bound_challenge`] (consumed by its
    /// keyed hash), whose `label` is required (it is the senderKID) and
    /// which also keeps its secret `sealed` by the caller
    /// ([`crate::cmp::SecretSealer`]): a MAC can only be checked with the
    /// secret itself, not with a keyed hash.
    fn add_cmp_challenge(
        &self,
        hash: &[u8],
        label: &str,
        names: Option<&str>,
        sealed: &[u8],
        now: i64,
        expires: Option<i64>,
    ) -> Result<i64>;
    /// The sealed secret of the CMP challenge labelled `label`, used or not
    /// (a certConf after the issuance is protected with it too; whether
    /// the challenge still authorises is [`Storage::challenge`]'s to say).
    fn cmp_secret(&self, label: &str) -> Result<Option<Vec<u8>>>;
    /// Whether a usable challenge with this hash exists.
    fn challenge_usable(&self, hash: &[u8], now: i64) -> Result<bool> {
        Ok(self.challenge(hash, now)?.is_some())
    }
    /// List challenges.
    fn list_challenges(&self) -> Result<Vec<ChallengeInfo>>;
    /// Revoke a challenge by id.
    fn revoke_challenge(&self, id: i64) -> Result<()>;
    /// Find a transaction by (transactionID, key id).
    fn transaction(&self, txid: &str, key_id: &str) -> Result<Option<Transaction>>;
    /// Record a new transaction, consuming the challenge with `challenge_hash` if given,
    /// and, if `issued` is given, the certificate — all in one database transaction.
    /// Fails with `NotFound` when the challenge is no longer usable (raced or reused).
    fn record(
        &self,
        tx: &Transaction,
        challenge_hash: Option<&[u8]>,
        issued: Option<&IssuedCert>,
        now: i64,
    ) -> Result<()>;
    // EST manual approval (held requests' terms, `/serverkeygen` keys).
    // The defaults fail with `Unsupported`: a storage that does not
    // implement them cannot hold EST requests for an operator.

    /// [`Storage::record`] for a transaction held for an operator, with
    /// `terms`: what the service decided about the request when it held it
    /// (opaque bytes, sealed by the EST service), stored with the
    /// transaction in the same database transaction. Fails as `record` does
    /// (also when the transaction exists already).
    fn record_held(&self, tx: &Transaction, challenge_hash: Option<&[u8]>, terms: &[u8], now: i64) -> Result<()> {
        let _ = (tx, challenge_hash, terms, now);
        Err(StorageError::Unsupported("holding EST requests with their terms"))
    }
    /// The `terms` [`Storage::record_held`] stored with this transaction;
    /// `None` when it was recorded without (by [`Storage::record`], or by an
    /// older version). Terms are kept after the decision.
    fn held_terms(&self, txid: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        let _ = (txid, key_id);
        Err(StorageError::Unsupported("holding EST requests with their terms"))
    }
    /// Keep a server-generated private key (`/serverkeygen` under manual
    /// approval; `sealed` by the caller, never the key in the clear) for the
    /// transaction until it is delivered, replacing one stored before.
    /// Fails with `NotFound` when there is no such transaction.
    fn store_generated_key(&self, txid: &str, key_id: &str, sealed: &[u8]) -> Result<()> {
        let _ = (txid, key_id, sealed);
        Err(StorageError::Unsupported("storing server-generated keys"))
    }
    /// Read and delete, in one database transaction, the key
    /// [`Storage::store_generated_key`] stored for this transaction: of any
    /// number of concurrent callers exactly one gets `Some`. `None`: there is
    /// none (never stored, or already taken, i.e. delivered).
    fn take_generated_key(&self, txid: &str, key_id: &str) -> Result<Option<Vec<u8>>> {
        let _ = (txid, key_id);
        Err(StorageError::Unsupported("storing server-generated keys"))
    }
    /// Move a pending transaction to issued or rejected (operator decision).
    fn decide(&self, txid: &str, key_id: &str, state: &TxState, issued: Option<&IssuedCert>, now: i64) -> Result<()>;
    /// Pending transactions.
    fn pending(&self) -> Result<Vec<Transaction>>;
    /// CMP: certificate `serial` (transactionID `txid`) waits for its
    /// certConf until `deadline` (Unix seconds); kept in the database so
    /// that whichever `mef` runs when the deadline passes revokes it, a
    /// restart notwithstanding. Recorded again, the deadline is replaced.
    fn await_confirmation(&self, serial: &str, txid: &str, deadline: i64) -> Result<()> {
        let _ = (serial, txid, deadline);
        Err(StorageError::Unsupported("CMP confirmations"))
    }
    /// CMP: `serial` no longer waits (confirmed, or about to be revoked):
    /// `true` when this call took it off the list, `false` when it was not
    /// on it (settled already — by a certConf, or by the sweep that
    /// revokes it: exactly one of them gets `true`).
    fn confirmation_settled(&self, serial: &str) -> Result<bool> {
        let _ = serial;
        Err(StorageError::Unsupported("CMP confirmations"))
    }
    /// CMP: move the deadline of `serial`, still waiting, to `deadline`;
    /// `false` when it no longer waits (confirmed, or claimed for
    /// revocation): nothing is recorded then.
    fn extend_confirmation(&self, serial: &str, deadline: i64) -> Result<bool> {
        let _ = (serial, deadline);
        Err(StorageError::Unsupported("CMP confirmations"))
    }
    /// CMP: in one database transaction, take `serial` off the waiting
    /// list and revoke it (at `at`, for `reason`): `None` when it was not
    /// waiting with a deadline at or before `at` (confirmed, claimed by
    /// another sweep, or its wait extended by a delivery meanwhile), `Some(true)` when
    /// revoked now, `Some(false)` when it was revoked already (or was never
    /// recorded). On an error neither happens: the next sweep tries again.
    fn revoke_unconfirmed(&self, serial: &str, at: i64, reason: u8) -> Result<Option<bool>> {
        let _ = (serial, at, reason);
        Err(StorageError::Unsupported("CMP confirmations"))
    }
    /// CMP: the certificates whose deadline has passed at `now` (serial,
    /// transactionID), at most `limit`, the oldest deadline first.
    fn unconfirmed_due(&self, now: i64, limit: usize) -> Result<Vec<(String, String)>> {
        let _ = (now, limit);
        Err(StorageError::Unsupported("CMP confirmations"))
    }
    /// A number that moves whenever an operator PSK, an Enrolment Key
    /// record or a GBA bootstrap is added, changed (its key, names,
    /// expiry) or removed — by any process sharing the database, older
    /// builds included, since triggers in the database keep it — so the
    /// in-memory handshake views ([`crate::handshake`]) reload only when
    /// it moved. `None`: this backend keeps none (reload every time).
    fn handshake_generation(&self) -> Result<Option<i64>> {
        Ok(None)
    }
    /// At most `limit` pending transactions in the order they were
    /// recorded ([`PendingCursor`]: created, then transactionID and key
    /// id), the first ones after `after` (from the oldest when `None`):
    /// what the proxy's relay works on in one pass, without loading every
    /// held row, resuming where its last pass stopped.
    fn pending_after(&self, after: Option<&PendingCursor>, limit: usize) -> Result<Vec<Transaction>> {
        let mut p: Vec<Transaction> = self
            .pending()?
            .into_iter()
            .filter(|t| after.is_none_or(|a| PendingCursor::of(t) > *a))
            .collect();
        p.sort_by_key(PendingCursor::of);
        p.truncate(limit);
        Ok(p)
    }
    /// How many transactions are pending; with `subject`, only those
    /// recorded for that subject (as [`Transaction::subject`] stores it).
    fn count_pending(&self, subject: Option<&str>) -> Result<u64> {
        let p = self.pending()?;
        Ok(p.iter().filter(|t| subject.is_none_or(|s| t.subject == s)).count() as u64)
    }
    /// A certificate by serial (hex).
    fn certificate(&self, serial: &str) -> Result<Option<IssuedCert>>;
    /// All revoked certificates.
    fn revoked(&self) -> Result<Vec<IssuedCert>>;
    /// Mark a certificate revoked.
    fn revoke(&self, serial: &str, at: i64, reason: u8) -> Result<()>;
    /// Increment and return the CRL number.
    fn next_crl_number(&self) -> Result<u64>;
    /// Provision a pre-shared key for certificate-less EST (RFC 7030 §3.3.3),
    /// `sealed` by the caller ([`crate::handshake::PskSealer`]: never the key
    /// in the clear); fails when the identity exists.
    fn add_psk(&self, identity: &str, sealed: &[u8], label: &str, now: i64) -> Result<()> {
        self.add_bound_psk(identity, sealed, label, None, now)
    }
    /// As [`Storage::add_psk`], binding the names the identity may obtain
    /// (stored form of [`crate::ra::BoundNames`]).
    fn add_bound_psk(&self, identity: &str, sealed: &[u8], label: &str, names: Option<&str>, now: i64) -> Result<()>;
    /// The names bound to a PSK identity (`None`: unbound, or no such identity).
    fn psk_names(&self, identity: &str) -> Result<Option<String>>;
    /// The stored key of one PSK identity (operator commands and tests: TLS
    /// handshakes are answered from [`crate::handshake::PskView`]).
    fn psk(&self, identity: &str) -> Result<Option<StoredPsk>>;
    /// Every PSK identity with its stored key, for the handshake view's refresh.
    fn psks(&self) -> Result<Vec<StoredPsk>>;
    /// Replace the clear keys of PSKs stored before schema version 4 with
    /// their sealed forms (identity, sealed), in one database transaction;
    /// returns how many were replaced (one that is gone, or that another
    /// process sealed first, is left as it is). The clear key leaves no
    /// copy in the database's files where the database allows it.
    fn seal_psks(&self, sealed: &[(String, Vec<u8>)]) -> Result<usize>;
    /// Provisioned PSK identities (never the keys).
    fn list_psks(&self) -> Result<Vec<PskInfo>>;
    /// Remove a PSK identity.
    fn remove_psk(&self, identity: &str) -> Result<()>;
    /// Record an RSPF Enrolment Token (by keyed hash) for the enrolee named `enrolee`.
    fn add_rspf_token(&self, hash: &[u8], enrolee: &str, now: i64, expires: Option<i64>) -> Result<i64>;
    /// List Enrolment Tokens (never the tokens themselves).
    fn list_rspf_tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Revoke an Enrolment Token by id.
    fn revoke_rspf_token(&self, id: i64) -> Result<()>;
    /// Record an Enrolment Key, consuming the token with `token_hash` (bound to
    /// the same enrolee) in the same database transaction. Fails with
    /// `NotFound` when the token is unknown, another enrolee's, used, revoked
    /// or expired, or when the record names a parent that is no longer
    /// recorded (withdrawn while this one was being made), and with
    /// `Conflict` when the RelativeKeId is already recorded.
    fn record_enrolment(&self, rec: &KeRecord, token_hash: Option<&[u8]>, now: i64) -> Result<()>;
    /// An Enrolment Key record by RelativeKeId (upper-case hex).
    fn enrolment(&self, relative_ke_id: &str) -> Result<Option<KeRecord>>;
    /// An Enrolment Key record by RelativeKreId (upper-case hex).
    fn enrolment_by_kre(&self, relative_kre_id: &str) -> Result<Option<KeRecord>>;
    /// The most recent unexpired enrolment of the enrolee named `enrolee`.
    fn latest_enrolment(&self, enrolee: &str, now: i64) -> Result<Option<KeRecord>>;
    /// Record a completion message (`procedure` is its wire name).
    fn complete_enrolment(&self, relative_ke_id: &str, procedure: &str, success: bool, now: i64) -> Result<()>;
    /// Delete one Enrolment Key record (the operator withdraws an enrolment).
    fn delete_enrolment(&self, relative_ke_id: &str) -> Result<()>;
    /// All Enrolment Key records, oldest first.
    fn enrolments(&self) -> Result<Vec<KeRecord>>;
    /// Delete Enrolment Key records that expired before `now`; returns how many.
    fn purge_enrolments(&self, now: i64) -> Result<usize>;
    /// GBA BSF stub (a test double for the Zn interface): record a bootstrap.
    fn add_gba_bootstrap(&self, b: &GbaBootstrap) -> Result<()>;
    /// GBA BSF stub: the bootstrap with this B-TID.
    fn gba_bootstrap(&self, btid: &str) -> Result<Option<GbaBootstrap>>;
    /// GBA BSF stub: every bootstrap (the handshake view's refresh).
    fn gba_bootstraps(&self) -> Result<Vec<GbaBootstrap>>;
}

/// An Enrolment Token as listed: `label` is the enrolee it is for.
pub type TokenInfo = ChallengeInfo;

/// One RSPF enrolment: the Enrolment Key sealed under the operator's key
/// (the clear columns are bound to it as associated data), and what it authorises.
#[derive(Clone, PartialEq, Eq)]
pub struct KeRecord {
    /// RelativeKeId, upper-case hex.
    pub relative_ke_id: String,
    /// RelativeKreId, upper-case hex (an identifier: derived one-way from Ke).
    pub relative_kre_id: String,
    /// Name of the enrolee (its configuration entry).
    pub enrolee: String,
    /// The Enrolee's CSE-ID or AE-ID, given to targets.
    pub enrolee_id: Option<String>,
    /// Created, Unix seconds.
    pub created: i64,
    /// Enrolment Expiry, Unix seconds.
    pub expires: i64,
    /// Nonce and AES-256-GCM ciphertext of Ke and what the exchange
    /// authorised (the service's own encoding).
    pub sealed: Vec<u8>,
    /// Completion messages received, as `procedure=ok|failed` lines.
    pub completions: String,
    /// The RelativeKeId of the enrolment whose Kre authenticated this
    /// re-enrolment; empty when the bootstrap credential did; `None` for a
    /// record made before mef kept this (schema version 1). Withdrawing an
    /// enrolment withdraws its descendants by this link.
    pub parent: Option<String>,
}

impl std::fmt::Debug for KeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeRecord")
            .field("relative_ke_id", &self.relative_ke_id)
            .field("enrolee", &self.enrolee)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A GBA bootstrap as the BSF stub holds it (Ks sealed like Ke).
#[derive(Clone, PartialEq, Eq)]
pub struct GbaBootstrap {
    /// B-TID.
    pub btid: String,
    /// IMPI of the subscriber.
    pub impi: String,
    /// Key lifetime end, Unix seconds.
    pub expires: i64,
    /// Nonce and AES-256-GCM ciphertext of Ks.
    pub sealed_ks: Vec<u8>,
}

impl std::fmt::Debug for GbaBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbaBootstrap")
            .field("btid", &self.btid)
            .field("impi", &self.impi)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A PSK identity as listed (the key is not part of it).
#[derive(Debug, Clone)]
pub struct PskInfo {
    /// `psk_identity` (in oneM2M, the KpmId).
    pub identity: String,
    /// Operator's label.
    pub label: String,
    /// Created, Unix seconds.
    pub created: i64,
    /// Names bound to it, if any (stored form).
    pub names: Option<String>,
}

/// A PSK's key as stored.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// Nonce and AES-256-GCM ciphertext under the storage key ([`crate::handshake::PskSealer`]).
    Sealed(Vec<u8>),
    /// The key itself: a row written before schema version 4, until a
    /// process holding the storage key seals it.
    Clear(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for StoredKey {
    /// A sealed key's ciphertext (not a secret); never a clear key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredKey::Sealed(s) => write!(f, "Sealed({})", hex::encode(s)),
            StoredKey::Clear(_) => f.write_str("Clear(<redacted>)"),
        }
    }
}

/// A PSK identity with its stored key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPsk {
    /// `psk_identity`.
    pub identity: String,
    /// Names bound to it, if any (stored form; sealed with the key as associated data).
    pub names: Option<String>,
    /// The key, sealed or (before the upgrade) clear.
    pub key: StoredKey,
}

impl std::fmt::Debug for StoredPsk {
    /// Never a clear key (see [`StoredKey`]'s).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPsk")
            .field("identity", &self.identity)
            .field("names", &self.names)
            .field("key", &self.key)
            .finish()
    }
}

/// A stored PSK row (`key`, `sealed` columns) as a [`StoredKey`]: a sealed
/// row keeps an empty `key`.
pub(crate) fn stored_key(key: Vec<u8>, sealed: Option<Vec<u8>>) -> StoredKey {
    match sealed {
        Some(s) => {
            let mut key = key;
            zeroize::Zeroize::zeroize(&mut key);
            StoredKey::Sealed(s)
        }
        None => StoredKey::Clear(Zeroizing::new(key)),
    }
}

/// The schema version this build writes, kept in SQLite's `user_version`
/// (and in PostgreSQL's `meta` table). 1: everything up to and including
/// `generated_keys` (0 in a database that never recorded one); 2: the
/// `parent` column of `rspf_enrolments`. A database with a higher version
/// is refused rather than used by code that does not know its columns.
/// 3: names bound to challenges and PSK identities (`names`), unique
/// non-empty challenge labels, typed refusals of transactions (`refusal`).
/// 4: PSKs sealed at rest (`psks.sealed`; a sealed row's `key` is empty).
/// 5: the sealed MAC secret of a CMP challenge (`challenges.sealed`).
/// Opening a version 3 database adds the column; the clear keys it holds
/// are sealed by the first process that holds the storage key
/// ([`crate::handshake::PskSealer::seal_stored`]), not by `open`: the
/// storage never holds keys, and most commands open it without one.
pub const SCHEMA_VERSION: i64 = 5;

/// Version 3 makes non-empty challenge labels unique (CMP and the proxy
/// look challenges up by label). Labels repeated before are kept apart by
/// their id (`device-1#7`), then the index holds.
pub(crate) const UNIQUE_LABELS: &str = "
UPDATE challenges SET label = label || '#' || id
    WHERE label <> '' AND id NOT IN (SELECT MIN(id) FROM challenges GROUP BY label);
CREATE UNIQUE INDEX IF NOT EXISTS challenges_label ON challenges (label) WHERE label <> '';
";

/// Why a re-enrolment is refused when its parent went while it was made.
pub(crate) const PARENT_GONE: &str = "the enrolment whose Kre authenticated this session has been withdrawn";

/// Columns of `rspf_enrolments` in `KeRecord` order (shared with the PostgreSQL storage).
pub(crate) const KE_COLS: &str =
    "relative_ke_id, relative_kre_id, enrolee, enrolee_id, created, expires, sealed, completions, parent";

/// A transaction state as columns: state, serial, refusal, reason.
pub(crate) fn state_parts(s: &TxState) -> (&'static str, Option<&str>, Option<&'static str>, Option<&str>) {
    match s {
        TxState::Pending => ("pending", None, None, None),
        TxState::Issued(serial) => ("issued", Some(serial.as_str()), None, None),
        TxState::Rejected(r, why) => ("rejected", None, Some(r.as_str()), Some(why.as_str())),
    }
}

/// The typed reason of a stored rejection. Rows from before version 3
/// hold a SCEP failInfo number instead, and only operators rejected then.
pub(crate) fn stored_refusal(refusal: Option<&str>) -> RefusalReason {
    refusal
        .and_then(RefusalReason::parse)
        .unwrap_or(RefusalReason::OperatorRejected)
}

/// Columns of `transactions` in `Transaction` order (shared with the PostgreSQL storage).
pub(crate) const TX_COLS: &str = "txid, key_id, subject, csr, state, serial, fail_info, reason, created, refusal";
