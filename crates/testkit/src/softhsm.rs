//! A private SoftHSM2 for tests: its own configuration and token directory
//! in a temporary directory, with initialised tokens, so tests never touch
//! (or depend on) the machine's tokens. CI installs Debian's `softhsm2`.
//!
//! The module reads `SOFTHSM2_CONF` once, when it is initialised; a test
//! process that loads it itself calls [`SoftHsm::export_env`] before doing
//! so, and child processes get [`SoftHsm::conf`] in their environment.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// User PIN of every token made here.
pub const PIN: &str = "1234";
/// Security officer PIN of every token made here.
pub const SO_PIN: &str = "5678";

/// A SoftHSM2 configuration with initialised tokens; removed when dropped.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// The configuration file (`SOFTHSM2_CONF`).
    pub conf: PathBuf,
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// A file holding [`PIN`], for `pin-source=file:` URIs.
    pub pin_file: PathBuf,
    /// `softhsm2-util --version`.
    pub version: String,
}

/// Where Debian and others install the module.
pub fn module_path() -> PathBuf {
    let candidates = [
        format!("/usr/lib/{}-linux-gnu/softhsm/libsofthsm2.so", std::env::consts::ARCH),
        "/usr/lib/softhsm/libsofthsm2.so".into(),
        "/usr/local/lib/softhsm/libsofthsm2.so".into(),
        "/usr/lib64/pkcs11/libsofthsm2.so".into(),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("libsofthsm2.so not found in {candidates:?}: apt-get install softhsm2"))
}

impl SoftHsm {
    /// A configuration with one initialised token per label (user PIN
    /// [`PIN`]). Prints the SoftHSM2 version past the test harness's capture.
    pub fn new(tokens: &[&str]) -> SoftHsm {
        let version = Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .expect("softhsm2-util not found: apt-get install softhsm2");
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let _ = writeln!(std::io::stderr(), "peer: SoftHSM2 {version}");
        let dir = tempfile::tempdir().expect("tempdir");
        let token_dir = dir.path().join("tokens");
        std::fs::create_dir(&token_dir).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                token_dir.display()
            ),
        )
        .expect("write softhsm2.conf");
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).expect("write pin");
        let hsm = SoftHsm {
            dir,
            conf,
            module: module_path(),
            pin_file,
            version,
        };
        for label in tokens {
            hsm.init_token(label);
        }
        hsm
    }

    /// Initialise one more token.
    pub fn init_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ])
            .output()
            .expect("run softhsm2-util");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token {label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Point this process's SoftHSM2 at this configuration. Call it before
    /// the module is first loaded in this process, from one place only.
    pub fn export_env(&self) {
        std::env::set_var("SOFTHSM2_CONF", &self.conf);
    }

    /// `pkcs11:token=<token>[;object=<object>]?module-path=…&pin-source=file:…`.
    pub fn uri(&self, token: &str, object: Option<&str>) -> String {
        let object = object.map(|o| format!(";object={o}")).unwrap_or_default();
        format!(
            "pkcs11:token={token}{object}?module-path={}&pin-source=file:{}",
            self.module.display(),
            self.pin_file.display()
        )
    }

    /// The temporary directory holding everything.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
