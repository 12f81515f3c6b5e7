//! Replacing a credential that spans several files without ever leaving a
//! mix of old and new (step 12).
//!
//! Renaming one file is atomic; renaming three is not. So an install is a
//! small write-ahead transaction:
//!
//! 1. every new file is written next to its destination as
//!    `.<name>.enrol-new`, with its mode and owner, and fsynced;
//! 2. the journal (the list of renames) is written atomically in the state
//!    directory — this is the commit point;
//! 3. each staged file is renamed over its destination and the directories
//!    fsynced;
//! 4. the journal is removed.
//!
//! [`recover`], run before the stores are read, finishes a committed
//! transaction (step 3 is idempotent: a staged file that is gone was already
//! renamed) and throws away an uncommitted one, so after a crash at any
//! point the stores hold the complete old credential or the complete new one.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Numeric user id.
    pub uid: Option<u32>,
    /// Numeric group id.
    pub gid: Option<u32>,
}

/// What [`recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing was in progress.
    Clean,
    /// A committed install was completed.
    RolledForward,
    /// An uncommitted install was discarded; the old credential stands.
    RolledBack,
}

/// The staging name of `path`.
pub fn staged(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.enrol-new"))
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

fn write_staged(f: &NewFile, owner: Ownership) -> Result<(), String> {
    let tmp = staged(&f.path);
    let ctx = |e: std::io::Error| format!("{}: {e}", tmp.display());
    if let Some(dir) = f.path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A staged file left by an earlier, uncommitted attempt is stale.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ctx(e)),
    }
    // Created with the final mode, so a key is never readable, even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(&tmp)
        .map_err(ctx)?;
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::fchown(&file, owner.uid, owner.gid).map_err(ctx)?;
    }
    // The umask may have cleared bits the operator asked for. On the open
    // file, not the path: a swapped-in symlink must not get our mode.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(f.mode))
        .map_err(ctx)?;
    file.write_all(&f.bytes).map_err(ctx)?;
    file.sync_all().map_err(ctx)?;
    Ok(())
}

fn journal_text(files: &[PathBuf]) -> Result<String, String> {
    let mut s = String::from("enrolkit-install-journal 1\n");
    for p in files {
        let t = p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))?;
        if t.contains('\n') {
            return Err(format!("{t:?} contains a newline"));
        }
        s.push_str(t);
        s.push('\n');
    }
    Ok(s)
}

fn rename_all(paths: &[PathBuf]) -> Result<(), String> {
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

/// Install `files` as one transaction journalled at `journal`.
pub fn install(journal: &Path, files: &[NewFile], owner: Ownership) -> Result<(), String> {
    recover(journal, files.iter().map(|f| f.path.as_path()))?;
    for f in files {
        write_staged(f, owner)?;
    }
    // The staged names must be durable before the journal says to rename them.
    for f in files {
        sync_dir(&f.path)?;
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
    enrolkit_files::write_atomic(journal, journal_text(&paths)?.as_bytes(), 0o600)?;
    rename_all(&paths)?;
    fs::remove_file(journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    sync_dir(journal)
}

/// Finish or discard an interrupted install. `outputs` are every path a
/// transaction may write, so stale staged files are found without a journal.
pub fn recover<'a>(journal: &Path, outputs: impl IntoIterator<Item = &'a Path>) -> Result<Recovery, String> {
    match fs::read_to_string(journal) {
        Ok(text) => {
            let mut lines = text.lines();
            if lines.next() != Some("enrolkit-install-journal 1") {
                return Err(format!(
                    "{}: not an install journal; move it away by hand",
                    journal.display()
                ));
            }
            let paths: Vec<PathBuf> = lines.filter(|l| !l.is_empty()).map(PathBuf::from).collect();
            rename_all(&paths)?;
            fs::remove_file(journal).map_err(|e| format!("{}: {e}", journal.display()))?;
            sync_dir(journal)?;
            Ok(Recovery::RolledForward)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut discarded = false;
            for p in outputs {
                let tmp = staged(p);
                match fs::remove_file(&tmp) {
                    Ok(()) => discarded = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", tmp.display())),
                }
            }
            Ok(if discarded {
                Recovery::RolledBack
            } else {
                Recovery::Clean
            })
        }
        Err(e) => Err(format!("{}: {e}", journal.display())),
    }
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

    fn files(d: &Path, v: &str) -> Vec<NewFile> {
        ["key", "cert", "chain"]
            .iter()
            .map(|n| NewFile {
                path: d.join(n),
                bytes: Zeroizing::new(format!("{n}-{v}").into_bytes()),
                mode: if *n == "key" { 0o600 } else { 0o644 },
            })
            .collect()
    }

    fn read(d: &Path) -> Vec<String> {
        ["key", "cert", "chain"]
            .iter()
            .map(|n| fs::read_to_string(d.join(n)).unwrap_or_default())
            .collect()
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
    fn a_committed_install_is_rolled_forward_from_any_point() {
        // Simulate a crash after the journal and after k of the 3 renames.
        for k in 0..=3 {
            let d = tmpdir(&format!("fwd{k}"));
            let j = d.join("journal");
            install(&j, &files(&d, "old"), Ownership::default()).unwrap();
            let new = files(&d, "new");
            for f in &new {
                write_staged(f, Ownership::default()).unwrap();
            }
            let paths: Vec<PathBuf> = new.iter().map(|f| f.path.clone()).collect();
            enrolkit_files::write_atomic(&j, journal_text(&paths).unwrap().as_bytes(), 0o600).unwrap();
            for p in paths.iter().take(k) {
                fs::rename(staged(p), p).unwrap();
            }
            let outs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            assert_eq!(recover(&j, outs.clone()).unwrap(), Recovery::RolledForward);
            assert_eq!(
                read(&d),
                ["key-new", "cert-new", "chain-new"],
                "crash after {k} renames"
            );
            assert_eq!(recover(&j, outs).unwrap(), Recovery::Clean);
        }
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
        let paths: Vec<&Path> = new.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(recover(&j, paths).unwrap(), Recovery::RolledBack);
        assert_eq!(read(&d), ["key-old", "cert-old", "chain-old"]);
        assert!(!staged(&d.join("key")).exists());
    }

    #[test]
    fn a_foreign_journal_is_not_obeyed() {
        let d = tmpdir("foreign");
        let j = d.join("journal");
        fs::write(&j, "/etc/passwd\n").unwrap();
        assert!(recover(&j, []).unwrap_err().contains("not an install journal"));
    }
}
