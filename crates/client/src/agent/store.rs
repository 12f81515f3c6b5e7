//! Replacing a credential that spans several files without ever leaving a
//! mix of old and new (step 12).
//!
//! Renaming one file is atomic; renaming three is not. So an install is a
//! small write-ahead transaction:
//!
//! 1. a copy of each destination that exists is kept (where the caller
//!    says: the driver keeps them under `previous/<serial>/`), fsynced;
//! 2. every new file is written next to its destination as
//!    `.<name>.enrol-new`, with its mode and owner, and fsynced;
//! 3. the journal is written atomically in the state directory — this is
//!    the commit point. It lists, for each file, the destination, the
//!    SHA-256 of the new content, its mode, and the SHA-256 of what the
//!    destination held before (if anything) with where the copy of it is;
//! 4. each staged file is renamed over its destination and the directories
//!    fsynced;
//! 5. the journal is removed.
//!
//! [`recover`], run before the stores are read, finishes a committed
//! transaction and throws away an uncommitted one, so after a crash at any
//! point the stores hold the complete old credential or the complete new
//! one. It finishes a committed transaction only with content it can
//! check: a staged file is renamed only if it hashes to what the journal
//! says, and a destination already renamed counts as done only if it does.
//! When that is not so for every file (a staged file damaged or removed, a
//! destination changed since), it puts the previous content of every file
//! back from the copies (and removes files that did not exist before), so
//! the old credential stands complete; if that too is impossible it changes
//! nothing and refuses, with an error that says what to repair by hand.
//! Journals written before the hashes were recorded (format 1) are still
//! finished as before: renamed in order, a missing staged file taken as
//! already renamed.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// One file of a transaction.
pub struct NewFile {
    /// Where it goes.
    pub path: PathBuf,
    /// Its content (zeroized after use: it may be a private key).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Its permission bits.
    pub mode: u32,
}

/// Owner and group for written files (`None`: leave as created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    /// Numeric user id.
    pub uid: Option<u32>,
    /// Numeric group id.
    pub gid: Option<u32>,
}

/// What [`recover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was in progress.
    Clean,
    /// A committed install was completed.
    RolledForward,
    /// An uncommitted install was discarded; the old credential stands.
    RolledBack,
    /// A committed install could not be completed with the content it
    /// committed; every file was put back as it was before it.
    Restored {
        /// Which file did not hold what the journal recorded.
        why: String,
    },
}

/// Why [`install`] failed, and whether the new files are in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Before the commit point: nothing was replaced, the old files stand.
    #[error("{0}")]
    NotInstalled(String),
    /// After the commit point: the install is committed; the new files are
    /// in place, or [`recover`] puts them there (or, if it cannot, the old
    /// ones back) before the stores are next read.
    #[error("installed, but {0}")]
    AfterCommit(String),
}

impl From<InstallError> for String {
    fn from(e: InstallError) -> String {
        e.to_string()
    }
}

/// First line of a format-1 journal (paths only).
const V1: &str = "enrolkit-install-journal 1";
/// First line of a format-2 journal (TOML with hashes and copies).
const V2: &str = "# enrolkit-install-journal 2";

/// Largest journal read (a journal is a few hundred bytes per file).
const MAX_JOURNAL: u64 = 1024 * 1024;

/// Which way a format-2 journal is being carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Direction {
    /// Complete the install.
    Forward,
    /// Recovery found it cannot be completed: put the old files back.
    Back,
}

/// One file in a format-2 journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Destination.
    path: PathBuf,
    /// SHA-256 (hex) of the new content.
    sha256: String,
    /// Mode of the new file (and of a file put back).
    mode: u32,
    /// SHA-256 of what the destination held before; absent: it did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_sha256: Option<String>,
    /// Where a copy of the previous content is; absent: none was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<PathBuf>,
}

/// A format-2 journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    direction: Direction,
    #[serde(default)]
    owner: Ownership,
    file: Vec<Entry>,
}

/// The staging name of `path`.
pub fn staged(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.enrol-new"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(enrolkit_keys::DigestAlgorithm::Sha256.digest(bytes))
}

/// The content of `path`, `None` if it does not exist.
fn read_opt(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    match fs::read(path) {
        Ok(b) => Ok(Some(Zeroizing::new(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// SHA-256 of `path`'s content, `None` if it does not exist.
fn hash_of(path: &Path) -> Result<Option<String>, String> {
    Ok(read_opt(path)?.map(|b| sha256_hex(&b)))
}

fn remove_if_present(path: &Path) -> Result<bool, String> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Write `bytes` as the staged file of `path`, with `mode` and `owner`, fsynced.
fn write_staged_bytes(path: &Path, bytes: &[u8], mode: u32, owner: Ownership) -> Result<(), String> {
    let tmp = staged(path);
    let ctx = |e: std::io::Error| format!("{}: {e}", tmp.display());
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A staged file left by an earlier, uncommitted attempt is stale.
    remove_if_present(&tmp)?;
    // Created with the final mode, so a key is never readable, even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(ctx)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::fchown(&file, owner.uid, owner.gid).map_err(ctx)?;
    }
    // The umask may have cleared bits the operator asked for. On the open
    // file, not the path: a swapped-in symlink must not get our mode.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(ctx)?;
    file.write_all(bytes).map_err(ctx)?;
    file.sync_all().map_err(ctx)?;
    Ok(())
}

fn write_staged(f: &NewFile, owner: Ownership) -> Result<(), String> {
    write_staged_bytes(&f.path, &f.bytes, f.mode, owner)
}

#[cfg(test)]
thread_local! {
    /// Tests: the step of [`install`] that fails as if the system had
    /// refused it (`"rename"`, `"remove-journal"`), on this thread only.
    pub(crate) static FAULT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

fn fault(step: &str) -> Result<(), String> {
    #[cfg(test)]
    if FAULT.with(|f| f.get()) == Some(step) {
        return Err(format!("{step}: injected failure"));
    }
    let _ = step;
    Ok(())
}

fn rename_v1(paths: &[PathBuf]) -> Result<(), String> {
    for p in paths {
        let tmp = staged(p);
        match fs::rename(&tmp, p) {
            Ok(()) => {}
            // Already renamed by the interrupted run.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{} → {}: {e}", tmp.display(), p.display())),
        }
    }
    for p in paths {
        sync_dir(p)?;
    }
    Ok(())
}

fn rename(path: &Path) -> Result<(), String> {
    fault("rename")?;
    let tmp = staged(path);
    fs::rename(&tmp, path).map_err(|e| format!("{} → {}: {e}", tmp.display(), path.display()))
}

fn remove_journal(journal: &Path) -> Result<(), String> {
    fault("remove-journal")?;
    fs::remove_file(journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    sync_dir(journal)
}

fn write_journal(journal: &Path, j: &Journal) -> Result<(), String> {
    for e in &j.file {
        if e.path.to_str().is_none_or(|t| t.contains('\n')) {
            return Err(format!("{}: not a UTF-8 path on one line", e.path.display()));
        }
    }
    let body = toml::to_string(j).map_err(|e| format!("{}: {e}", journal.display()))?;
    enrolkit_files::write_atomic(journal, format!("{V2}\n{body}").as_bytes(), 0o600)
}

/// Install `files` as one transaction journalled at `journal`.
pub fn install(journal: &Path, files: &[NewFile], owner: Ownership) -> Result<(), InstallError> {
    install_with_backups(journal, files, &[], owner)
}

/// Install `files` as one transaction journalled at `journal`, first
/// keeping a copy of what each destination holds at `backups[i]` (same
/// order as `files`; `None` or missing: no copy). A copy is what lets
/// [`recover`] put the old file back when the committed install cannot be
/// completed; without one, that file can be put back only while it has not
/// been replaced yet.
pub fn install_with_backups(
    journal: &Path,
    files: &[NewFile],
    backups: &[Option<PathBuf>],
    owner: Ownership,
) -> Result<(), InstallError> {
    let not = InstallError::NotInstalled;
    recover(journal, files.iter().map(|f| f.path.as_path())).map_err(not)?;
    let mut entries = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let backup = backups.get(i).cloned().flatten();
        let old = read_opt(&f.path).map_err(not)?;
        let old_sha256 = old.as_ref().map(|b| sha256_hex(b));
        let backup = match (old, backup) {
            (Some(bytes), Some(b)) => {
                if let Some(dir) = b.parent().filter(|d| !d.as_os_str().is_empty()) {
                    enrolkit_files::create_private_dir(dir).map_err(not)?;
                    // The copy's directory entries must be durable too.
                    sync_dir(dir).map_err(not)?;
                    if let Some(up) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
                        sync_dir(up).map_err(not)?;
                    }
                }
                enrolkit_files::write_atomic(&b, &bytes, 0o600).map_err(not)?;
                Some(b)
            }
            _ => None,
        };
        entries.push(Entry {
            path: f.path.clone(),
            sha256: sha256_hex(&f.bytes),
            mode: f.mode,
            old_sha256,
            backup,
        });
    }
    for f in files {
        write_staged(f, owner).map_err(not)?;
    }
    // The staged names must be durable before the journal says to rename them.
    for f in files {
        sync_dir(&f.path).map_err(not)?;
    }
    let j = Journal {
        direction: Direction::Forward,
        owner,
        file: entries,
    };
    if let Err(e) = write_journal(journal, &j) {
        // Not committed: leave the old files as they are.
        let _ = remove_if_present(journal);
        for f in files {
            let _ = remove_if_present(&staged(&f.path));
        }
        return Err(not(e));
    }
    // Committed: from here on the new credential is the one that stands.
    let after = InstallError::AfterCommit;
    for f in files {
        rename(&f.path).map_err(after)?;
    }
    for f in files {
        sync_dir(&f.path).map_err(after)?;
    }
    remove_journal(journal).map_err(after)
}

/// Finish or discard an interrupted install. `outputs` are every path a
/// transaction may write, so stale staged files are found without a journal.
pub fn recover<'a>(journal: &Path, outputs: impl IntoIterator<Item = &'a Path>) -> Result<Recovery, String> {
    let text = match fs::metadata(journal) {
        Ok(m) if m.len() > MAX_JOURNAL => {
            return Err(format!(
                "{}: larger than {MAX_JOURNAL} bytes, not an install journal; move it away by hand",
                journal.display()
            ))
        }
        Ok(_) => fs::read_to_string(journal).map_err(|e| format!("{}: {e}", journal.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut discarded = false;
            for p in outputs {
                discarded |= remove_if_present(&staged(p))?;
            }
            return Ok(if discarded {
                Recovery::RolledBack
            } else {
                Recovery::Clean
            });
        }
        Err(e) => return Err(format!("{}: {e}", journal.display())),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(V1) => {
            let paths: Vec<PathBuf> = lines.filter(|l| !l.is_empty()).map(PathBuf::from).collect();
            rename_v1(&paths)?;
            remove_journal(journal)?;
            Ok(Recovery::RolledForward)
        }
        Some(V2) => {
            let j: Journal = toml::from_str(&text).map_err(|e| {
                format!(
                    "{}: a damaged install journal ({}); check the files it names by hand, then move it away",
                    journal.display(),
                    e.message()
                )
            })?;
            recover_v2(journal, j)
        }
        _ => Err(format!(
            "{}: not an install journal; move it away by hand",
            journal.display()
        )),
    }
}

/// Where one file of a committed format-2 transaction stands.
enum Forward {
    /// The staged file holds the new content: rename it.
    Rename,
    /// The destination holds the new content already.
    Done,
}

fn recover_v2(journal: &Path, mut j: Journal) -> Result<Recovery, String> {
    if j.direction == Direction::Forward {
        let mut plan = Vec::with_capacity(j.file.len());
        let mut bad = None;
        for e in &j.file {
            if hash_of(&staged(&e.path))?.as_deref() == Some(e.sha256.as_str()) {
                plan.push(Forward::Rename);
            } else if hash_of(&e.path)?.as_deref() == Some(e.sha256.as_str()) {
                plan.push(Forward::Done);
            } else {
                bad = Some(format!(
                    "{} holds neither in place nor staged what the committed install recorded",
                    e.path.display()
                ));
                break;
            }
        }
        match bad {
            None => {
                for (e, step) in j.file.iter().zip(&plan) {
                    if matches!(step, Forward::Rename) {
                        rename(&e.path)?;
                    } else {
                        // A staged file that does not hold the new content is junk.
                        remove_if_present(&staged(&e.path))?;
                    }
                }
                for e in &j.file {
                    sync_dir(&e.path)?;
                }
                remove_journal(journal)?;
                return Ok(Recovery::RolledForward);
            }
            Some(why) => {
                check_restorable(journal, &j, &why)?;
                // From here on this transaction is undone, even if a crash
                // interrupts the undoing and leaves files that match.
                j.direction = Direction::Back;
                write_journal(journal, &j)?;
                restore(journal, &j)?;
                return Ok(Recovery::Restored { why });
            }
        }
    }
    let why = "an earlier recovery had begun to put the previous files back".to_string();
    check_restorable(journal, &j, &why)?;
    restore(journal, &j)?;
    Ok(Recovery::Restored { why })
}

/// Whether every file can be put back as it was; if not, the error says
/// which and what to do (and nothing has been changed).
fn check_restorable(journal: &Path, j: &Journal, why: &str) -> Result<(), String> {
    for e in &j.file {
        let Some(old) = &e.old_sha256 else { continue };
        if hash_of(&e.path)?.as_deref() == Some(old.as_str()) {
            continue;
        }
        let copy_ok = match &e.backup {
            Some(b) => hash_of(b)?.as_deref() == Some(old.as_str()),
            None => false,
        };
        if !copy_ok {
            return Err(format!(
                "{}: the committed install cannot be completed ({why}) and the previous {} cannot be put back (no intact copy of it{}); \
                 the stores may hold a mix of two credentials, so this profile does not start: \
                 put the files back by hand, then remove {}",
                journal.display(),
                e.path.display(),
                e.backup
                    .as_ref()
                    .map(|b| format!(" at {}", b.display()))
                    .unwrap_or_default(),
                journal.display()
            ));
        }
    }
    Ok(())
}

/// Put every file of `j` back as it was before the transaction (idempotent).
fn restore(journal: &Path, j: &Journal) -> Result<(), String> {
    for e in &j.file {
        remove_if_present(&staged(&e.path))?;
        match &e.old_sha256 {
            None => {
                // It did not exist before this install.
                remove_if_present(&e.path)?;
            }
            Some(old) if hash_of(&e.path)?.as_deref() == Some(old.as_str()) => {}
            Some(old) => {
                let bytes = match &e.backup {
                    Some(b) => read_opt(b)?,
                    None => None,
                };
                let Some(bytes) = bytes.filter(|b| sha256_hex(b) == *old) else {
                    return Err(format!(
                        "{}: the copy of the previous {} changed while it was being put back",
                        journal.display(),
                        e.path.display()
                    ));
                };
                write_staged_bytes(&e.path, &bytes, e.mode, j.owner)?;
                sync_dir(&e.path)?;
                rename(&e.path)?;
            }
        }
    }
    for e in &j.file {
        sync_dir(&e.path)?;
    }
    remove_journal(journal)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("enrolkit-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    const NAMES: [&str; 3] = ["key", "cert", "chain"];

    fn files(d: &Path, v: &str) -> Vec<NewFile> {
        NAMES
            .iter()
            .map(|n| NewFile {
                path: d.join(n),
                bytes: Zeroizing::new(format!("{n}-{v}").into_bytes()),
                mode: if *n == "key" { 0o600 } else { 0o644 },
            })
            .collect()
    }

    fn backups(d: &Path, serial: &str) -> Vec<Option<PathBuf>> {
        NAMES
            .iter()
            .map(|n| Some(d.join("previous").join(serial).join(n)))
            .collect()
    }

    fn read(d: &Path) -> Vec<String> {
        NAMES
            .iter()
            .map(|n| fs::read_to_string(d.join(n)).unwrap_or_default())
            .collect()
    }

    fn outs(files: &[NewFile]) -> Vec<&Path> {
        files.iter().map(|f| f.path.as_path()).collect()
    }

    /// A format-1 journal, as an older agent wrote it.
    fn journal_v1(files: &[PathBuf]) -> String {
        let mut s = format!("{V1}\n");
        for p in files {
            s.push_str(p.to_str().unwrap());
            s.push('\n');
        }
        s
    }

    /// Everything [`install_with_backups`] does up to and including the
    /// commit point, then "crash" after `renamed` renames.
    fn crash_after_commit(j: &Path, new: &[NewFile], backups: &[Option<PathBuf>], renamed: usize) {
        FAULT.with(|f| f.set(Some("rename")));
        let r = install_with_backups(j, new, backups, Ownership::default());
        FAULT.with(|f| f.set(None));
        assert!(matches!(r, Err(InstallError::AfterCommit(_))), "{r:?}");
        for f in new.iter().take(renamed) {
            fs::rename(staged(&f.path), &f.path).unwrap();
        }
    }

    #[test]
    fn install_writes_all_files_with_their_modes() {
        let d = tmpdir("modes");
        install(&d.join("journal"), &files(&d, "1"), Ownership::default()).unwrap();
        assert_eq!(read(&d), ["key-1", "cert-1", "chain-1"]);
        assert_eq!(fs::metadata(d.join("key")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(d.join("cert")).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(!d.join("journal").exists());
        assert!(!staged(&d.join("key")).exists());
    }

    #[test]
    fn install_keeps_a_copy_of_what_it_replaces() {
        let d = tmpdir("copies");
        let j = d.join("journal");
        install(&j, &files(&d, "old"), Ownership::default()).unwrap();
        install_with_backups(&j, &files(&d, "new"), &backups(&d, "s1"), Ownership::default()).unwrap();
        assert_eq!(read(&d), ["key-new", "cert-new", "chain-new"]);
        let kept = d.join("previous/s1/key");
        assert_eq!(fs::read_to_string(&kept).unwrap(), "key-old");
        assert_eq!(fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_committed_install_is_rolled_forward_from_any_point() {
        // A crash after the journal and after k of the 3 renames.
        for k in 0..=3 {
            let d = tmpdir(&format!("fwd{k}"));
            let j = d.join("journal");
            install(&j, &files(&d, "old"), Ownership::default()).unwrap();
            let new = files(&d, "new");
            crash_after_commit(&j, &new, &backups(&d, "s1"), k);
            assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::RolledForward);
            assert_eq!(
                read(&d),
                ["key-new", "cert-new", "chain-new"],
                "crash after {k} renames"
            );
            assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::Clean);
        }
    }

    #[test]
    fn a_format_1_journal_is_still_rolled_forward_from_any_point() {
        for k in 0..=3 {
            let d = tmpdir(&format!("v1fwd{k}"));
            let j = d.join("journal");
            install(&j, &files(&d, "old"), Ownership::default()).unwrap();
            let new = files(&d, "new");
            for f in &new {
                write_staged(f, Ownership::default()).unwrap();
            }
            let paths: Vec<PathBuf> = new.iter().map(|f| f.path.clone()).collect();
            enrolkit_files::write_atomic(&j, journal_v1(&paths).as_bytes(), 0o600).unwrap();
            for p in paths.iter().take(k) {
                fs::rename(staged(p), p).unwrap();
            }
            assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::RolledForward);
            assert_eq!(
                read(&d),
                ["key-new", "cert-new", "chain-new"],
                "crash after {k} renames"
            );
            assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::Clean);
        }
    }

    #[test]
    fn a_committed_install_whose_content_does_not_match_is_undone_completely() {
        // After k renames, the next file to rename (or, when all are
        // renamed, the first destination) no longer holds what was staged.
        for k in 0..=3 {
            let d = tmpdir(&format!("undo{k}"));
            let j = d.join("journal");
            install(&j, &files(&d, "old"), Ownership::default()).unwrap();
            let new = files(&d, "new");
            crash_after_commit(&j, &new, &backups(&d, "s1"), k);
            match new.get(k) {
                Some(f) => fs::write(staged(&f.path), "damaged").unwrap(),
                None => fs::write(d.join("key"), "key-someone-else").unwrap(),
            }
            let r = recover(&j, outs(&new)).unwrap();
            let Recovery::Restored { why } = r else {
                panic!("crash after {k} renames: {r:?}")
            };
            assert!(why.contains(NAMES.get(k).unwrap_or(&"key")), "{why}");
            assert_eq!(
                read(&d),
                ["key-old", "cert-old", "chain-old"],
                "crash after {k} renames: the complete old credential"
            );
            assert_eq!(fs::metadata(d.join("key")).unwrap().permissions().mode() & 0o777, 0o600);
            assert!(!j.exists());
            assert!(NAMES.iter().all(|n| !staged(&d.join(n)).exists()));
            assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::Clean);
        }
    }

    #[test]
    fn a_missing_staged_file_is_not_taken_for_a_renamed_one() {
        let d = tmpdir("missing");
        let j = d.join("journal");
        install(&j, &files(&d, "old"), Ownership::default()).unwrap();
        let new = files(&d, "new");
        crash_after_commit(&j, &new, &backups(&d, "s1"), 1);
        fs::remove_file(staged(&d.join("cert"))).unwrap();
        assert!(matches!(recover(&j, outs(&new)).unwrap(), Recovery::Restored { .. }));
        assert_eq!(read(&d), ["key-old", "cert-old", "chain-old"]);
    }

    #[test]
    fn a_first_install_that_cannot_be_completed_leaves_no_credential() {
        let d = tmpdir("first");
        let j = d.join("journal");
        let new = files(&d, "new");
        crash_after_commit(&j, &new, &backups(&d, "none"), 2);
        fs::write(staged(&d.join("chain")), "damaged").unwrap();
        assert!(matches!(recover(&j, outs(&new)).unwrap(), Recovery::Restored { .. }));
        assert!(NAMES.iter().all(|n| !d.join(n).exists()), "{:?}", read(&d));
    }

    #[test]
    fn an_interrupted_undo_is_finished_the_same_way() {
        let d = tmpdir("undo-crash");
        let j = d.join("journal");
        install(&j, &files(&d, "old"), Ownership::default()).unwrap();
        let new = files(&d, "new");
        crash_after_commit(&j, &new, &backups(&d, "s1"), 2);
        fs::write(staged(&d.join("chain")), "damaged").unwrap();
        // The undo is interrupted after the journal turned, with the old key
        // staged but not yet renamed back.
        FAULT.with(|f| f.set(Some("rename")));
        assert!(recover(&j, outs(&new)).is_err());
        FAULT.with(|f| f.set(None));
        assert!(fs::read_to_string(&j).unwrap().contains("direction = \"back\""));
        // Even if the damaged file is repaired meanwhile, the decision stands.
        fs::write(staged(&d.join("chain")), "chain-new").unwrap();
        assert!(matches!(recover(&j, outs(&new)).unwrap(), Recovery::Restored { .. }));
        assert_eq!(read(&d), ["key-old", "cert-old", "chain-old"]);
    }

    #[test]
    fn without_an_intact_copy_the_profile_refuses_to_start_and_nothing_changes() {
        for copies in [false, true] {
            let d = tmpdir(&format!("refuse{copies}"));
            let j = d.join("journal");
            install(&j, &files(&d, "old"), Ownership::default()).unwrap();
            let new = files(&d, "new");
            let kept = if copies { backups(&d, "s1") } else { vec![] };
            crash_after_commit(&j, &new, &kept, 2);
            if copies {
                fs::write(d.join("previous/s1/key"), "key-tampered").unwrap();
            }
            fs::write(staged(&d.join("chain")), "damaged").unwrap();
            let before = read(&d);
            for _ in 0..2 {
                let e = recover(&j, outs(&new)).unwrap_err();
                assert!(
                    e.contains("cannot be completed") && e.contains("key") && e.contains("by hand"),
                    "{e}"
                );
                assert_eq!(read(&d), before, "nothing is changed");
                assert!(j.exists(), "the journal stays, so the profile stays stopped");
            }
            assert_eq!(before, ["key-new", "cert-new", "chain-old"]);
        }
    }

    #[test]
    fn a_failure_after_the_commit_point_says_so() {
        let d = tmpdir("after");
        let j = d.join("journal");
        install(&j, &files(&d, "old"), Ownership::default()).unwrap();
        FAULT.with(|f| f.set(Some("remove-journal")));
        let r = install(&j, &files(&d, "new"), Ownership::default());
        FAULT.with(|f| f.set(None));
        assert!(matches!(r, Err(InstallError::AfterCommit(_))), "{r:?}");
        assert_eq!(read(&d), ["key-new", "cert-new", "chain-new"]);
        assert_eq!(recover(&j, outs(&files(&d, "new"))).unwrap(), Recovery::RolledForward);
        assert!(!j.exists());
    }

    #[test]
    fn an_uncommitted_install_is_discarded() {
        let d = tmpdir("back");
        let j = d.join("journal");
        install(&j, &files(&d, "old"), Ownership::default()).unwrap();
        let new = files(&d, "new");
        for f in new.iter().take(2) {
            write_staged(f, Ownership::default()).unwrap();
        }
        assert_eq!(recover(&j, outs(&new)).unwrap(), Recovery::RolledBack);
        assert_eq!(read(&d), ["key-old", "cert-old", "chain-old"]);
        assert!(!staged(&d.join("key")).exists());
    }

    #[test]
    fn a_foreign_or_damaged_journal_is_not_obeyed() {
        let d = tmpdir("foreign");
        let j = d.join("journal");
        fs::write(&j, "/etc/passwd\n").unwrap();
        assert!(recover(&j, []).unwrap_err().contains("not an install journal"));
        fs::write(&j, format!("{V2}\ndirection = \"sideways\"\n")).unwrap();
        assert!(recover(&j, []).unwrap_err().contains("damaged install journal"));
        fs::write(&j, format!("{V2}\n[[[")).unwrap();
        assert!(recover(&j, []).unwrap_err().contains("damaged install journal"));
    }
}
