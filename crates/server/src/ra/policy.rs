//! Authorisation policy: what `mef.toml` configures. Every relaxation of the
//! default rules (see the table in [`super`]) is one field here.

use std::time::Duration;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// How requests are authorised, as the seeds list it, and the naming rules.
#[derive(Clone, Default)]
pub struct Policy {
    /// Accept one-time challenges provisioned with `mef challenge add`.
    pub one_time_challenges: bool,
    /// A shared static challenge (optional; weaker than one-time ones).
    pub static_challenge: Option<Zeroizing<String>>,
    /// Subject CNs authorised without a challenge.
    pub preauthorized_cns: Vec<String>,
    /// A renewal by a certificate of ours (SCEP RenewalReq, or a PKCSReq it
    /// signs) is accepted this long before that certificate expires.
    pub renewal_window: Duration,
    /// Hold every authorised request for an operator (`mef scep pending approve`).
    pub manual_approval: bool,
    /// An operator's own policy: a command that gets the CSR (PEM) on stdin
    /// and `ENROL_SUBJECT`/`ENROL_TRANSACTION_ID` in its environment, and
    /// authorises the request by exiting 0. Consulted when nothing above did.
    pub verifier: Option<Verifier>,
    /// DNS names a credential that binds no names may ask for: whole-label
    /// suffixes (`example.com` admits `a.example.com` and itself,
    /// `.example.com` only names below it). Empty: none.
    pub allowed_dns_suffixes: Vec<String>,
    /// RA override: a renewal may change Subject and subjectAltName
    /// (RFC 7030 §4.2.2 says it repeats them).
    pub reenroll_may_change_names: bool,
    /// Vendor-certificate initial enrolment (seed 004 §9.2.1), when configured.
    pub vendor: Option<VendorPolicy>,
    /// Registration authorities whose signature authorises a request
    /// (RA-POP, seed 004 option 2): a trusted proxy.
    pub registration_authorities: Vec<RaAuthority>,
    /// Names only an RSPF grant may put in a certificate: configured
    /// Enrolee-IDs and Enrolment Target IDs (RSPF identifies them by
    /// certificate names).
    pub reserved_names: Vec<String>,
}

/// Base stations hold a vendor certificate; the operator CA enrols them on
/// its strength and names the operator certificate from it.
#[derive(Debug, Clone)]
pub struct VendorPolicy {
    /// Vendor root (or intermediate) certificates (DER) a device
    /// certificate must chain to.
    pub anchors: Vec<Vec<u8>>,
    /// Subject of the operator certificate, RFC 4514 text with
    /// placeholders from the vendor certificate: `{serialNumber}` (subject
    /// serialNumber), `{CN}`, `{certSerial}`; e.g. `CN={serialNumber},O=Operator`.
    pub subject_template: String,
    /// DNS subjectAltNames, templates likewise (e.g. `{serialNumber}.ran.example.net`).
    pub dns_templates: Vec<String>,
}

/// A registration authority's certificate and the names it may request.
#[derive(Debug, Clone)]
pub struct RaAuthority {
    /// Its certificate: a request signed by (or a TLS session authenticated
    /// with) exactly this certificate is the RA's.
    pub certificate: Certificate,
    /// Patterns for the CN and DNS names it may request (`*.example.net`:
    /// names below example.net; anything else: that name).
    pub may_name: Vec<String>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("one_time_challenges", &self.one_time_challenges)
            .field("static_challenge", &self.static_challenge.as_ref().map(|_| "<set>"))
            .field("preauthorized_cns", &self.preauthorized_cns)
            .field("renewal_window", &self.renewal_window)
            .field("manual_approval", &self.manual_approval)
            .field("verifier", &self.verifier)
            .field("allowed_dns_suffixes", &self.allowed_dns_suffixes)
            .field("reenroll_may_change_names", &self.reenroll_may_change_names)
            .field("vendor", &self.vendor)
            .field("registration_authorities", &self.registration_authorities.len())
            .field("reserved_names", &self.reserved_names)
            .finish()
    }
}

/// The external verifier hook.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Program to run (no shell).
    pub command: std::path::PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Killed and counted as "no" after this long.
    pub timeout: Duration,
}

/// Hooks running at once; a request that finds them all busy is not
/// authorised by the hook (one unauthorised client cannot start an
/// unbounded number of processes).
pub const MAX_CONCURRENT_HOOKS: usize = 4;

/// The PATH a hook runs with (its environment is otherwise cleared).
pub const HOOK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

static HOOKS_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One hook's place among [`MAX_CONCURRENT_HOOKS`].
struct HookSlot;

impl HookSlot {
    fn take() -> Option<HookSlot> {
        use std::sync::atomic::Ordering;
        if HOOKS_RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT_HOOKS {
            HOOKS_RUNNING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(HookSlot)
    }
}

impl Drop for HookSlot {
    fn drop(&mut self) {
        HOOKS_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Verifier {
    /// Run the hook for `csr_der`; `Ok(true)` when it exits 0 in time.
    ///
    /// The hook gets the CSR (PEM) on stdin, written on a thread of its own
    /// so that a hook that never reads cannot hold us past the deadline;
    /// its environment is exactly `ENROL_SUBJECT`, `ENROL_TRANSACTION_ID`
    /// and `PATH` ([`HOOK_PATH`]): nothing of ours (a database password)
    /// leaks to it. At most [`MAX_CONCURRENT_HOOKS`] run at once; when all
    /// are busy the answer is "no".
    pub fn verify(&self, csr_der: &[u8], subject: &str, txid: &str) -> std::io::Result<bool> {
        self.run(csr_der, &[("ENROL_SUBJECT", subject), ("ENROL_TRANSACTION_ID", txid)])
    }

    /// Run the hook with `csr_der` (PEM) on stdin and exactly `env` and
    /// `PATH` ([`HOOK_PATH`]) as its environment, under the same deadline
    /// and [`MAX_CONCURRENT_HOOKS`] bound as [`Verifier::verify`] (the
    /// proxy's notification hook runs this way); `Ok(true)` when it exits 0
    /// in time, `Ok(false)` when it fails, is killed, or all hooks are busy.
    pub fn run(&self, csr_der: &[u8], env: &[(&str, &str)]) -> std::io::Result<bool> {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let Some(_slot) = HookSlot::take() else {
            tracing::warn!(limit = MAX_CONCURRENT_HOOKS, command = %self.command.display(), "hooks all busy: not run");
            return Ok(false);
        };
        let pem = der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, csr_der)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut child = std::process::Command::new(&self.command)
            .args(&self.args)
            .env_clear()
            .env("PATH", HOOK_PATH)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group: at the deadline the hook and whatever
            // it started (a `sleep` holding stdin) are killed together.
            .process_group(0)
            .spawn()?;
        // A hook that exits (or is killed) without reading stdin is not an
        // error: the writer then fails with a broken pipe and ends.
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                let _ = stdin.write_all(pem.as_bytes());
            })
        });
        let deadline = std::time::Instant::now() + self.timeout;
        let outcome = loop {
            if let Some(status) = child.try_wait()? {
                break status.success();
            }
            if std::time::Instant::now() >= deadline {
                match i32::try_from(child.id()) {
                    Ok(pid) => {
                        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                    }
                    Err(_) => {
                        let _ = child.kill();
                    }
                }
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The writer ends once nobody holds the pipe; a hook that left a
        // process outside its group holding it costs a parked thread, never
        // our answer.
        if let Some(w) = writer.filter(|w| w.is_finished()) {
            let _ = w.join();
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod hook_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sh(script: &str, timeout: Duration) -> Verifier {
        Verifier {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            timeout,
        }
    }

    /// `verify` on a thread, with a watchdog far beyond the hook's deadline
    /// (a hang fails the test instead of stalling it).
    fn run(v: Verifier, csr: Vec<u8>) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(v.verify(&csr, "CN=x", "tx-1").unwrap());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the hook outlived its deadline")
    }

    #[test]
    fn a_hook_that_never_reads_a_large_csr_is_killed_at_its_deadline() {
        // 100 KiB of CSR is more than a pipe holds: writing it inline would block forever.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let v = sh(
            &format!("touch {}; sleep 600", marker.display()),
            Duration::from_millis(500),
        );
        assert!(!run(v, vec![0x30; 100 * 1024]));
        assert!(marker.exists(), "the hook ran");
        // A hook that reads it all and says yes still gets it whole.
        let v = sh("test \"$(wc -c)\" -gt 100000", Duration::from_secs(30));
        assert!(run(v, vec![0x30; 100 * 1024]));
    }

    #[test]
    fn a_hook_sees_only_the_documented_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let v = sh(&format!("env > {}", out.display()), Duration::from_secs(30));
        assert!(!run(v, b"csr".to_vec()) || out.exists());
        let seen: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        // PWD is the shell's own.
        for k in &seen {
            assert!(
                ["ENROL_SUBJECT", "ENROL_TRANSACTION_ID", "PATH", "PWD"].contains(&k.as_str()),
                "the hook saw {k}"
            );
        }
        assert!(seen.iter().any(|k| k == "ENROL_SUBJECT"));
        // This process's environment (cargo's variables, HOME, …) stayed here.
        let ours: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k != "PATH" && k != "PWD")
            .collect();
        assert!(!ours.is_empty());
        assert!(ours.iter().all(|k| !seen.contains(k)), "{seen:?}");
    }
}
