//! `enrol agent` end to end against `mef serve`: first enrolment over SCEP
//! and over EST, renewal when the threshold has passed, a wrong pin that
//! stops everything, and SIGKILL during replacement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use enrolkit_testkit::Mef;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn mef_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fingerprint(pem: &Path) -> String {
    let c = enrolkit_files::read_certificate(pem).unwrap();
    enrolkit_pkix::fingerprint::sha256_der(&der::Encode::to_der(&c).unwrap())
}

/// Certificates that are 45% through their life when issued (1 h ahead,
/// 50 min back): a 50% threshold keeps them, 40% renews them at once.
fn short_lived(cfg: &mut String) {
    *cfg = cfg.replace(
        "validity_days = 365\n",
        "validity_days = 365\nvalidity_seconds = 3600\nbackdate_seconds = 3000\n",
    );
}

struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        Device {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn profile(&self, body: &str) -> PathBuf {
        let p = self.path("profile.toml");
        std::fs::write(&p, body).unwrap();
        p
    }
    fn agent(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_enrol"))
            .arg("agent")
            .arg("--profile")
            .arg(self.path("profile.toml"))
            .arg("--state-dir")
            .arg(self.path("state"))
            .args(args)
            .output()
            .unwrap()
    }
    fn once(&self) -> (i32, String) {
        let o = self.agent(&["--once"]);
        (o.status.code().unwrap_or(-1), text(&o))
    }
    fn serial(&self) -> String {
        let c = enrolkit_files::read_certificate(&self.path("out/cert.pem")).unwrap();
        hex::encode(c.tbs_certificate.serial_number.as_bytes())
    }
    /// The stores hold one complete credential: the key certifies, the chain
    /// issues the certificate, the anchor is the pin, the record names it.
    fn consistent(&self) -> String {
        let cert = enrolkit_files::read_certificate(&self.path("out/cert.pem")).unwrap();
        let key = enrolkit_files::read_key(&self.path("out/key.pem")).unwrap();
        assert_eq!(
            enrolkit_keys::Signer::public_key(&key),
            &cert.tbs_certificate.subject_public_key_info,
            "key and certificate are from different credentials"
        );
        let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
        let record = std::fs::read_to_string(self.path("state/dev/credential.toml")).unwrap();
        assert!(
            record.contains(&serial),
            "the record names another certificate: {record}"
        );
        assert!(!self.path("state/dev/install.journal").exists());
        assert!(!self.path("out/.cert.pem.enrol-new").exists());
        serial
    }
}

fn openssl_verify(ca: &Path, cert: &Path) {
    let v = Command::new("openssl").arg("version").output().unwrap();
    println!("peer: {}", String::from_utf8_lossy(&v.stdout).trim());
    let o = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

fn outputs(d: &Device) -> String {
    format!(
        r#"
[output]
key = "{0}/out/key.pem"
certificate = "{0}/out/cert.pem"
chain = "{0}/out/chain.pem"
trust_anchor = "{0}/out/ca.pem"
[notify]
command = ["sh", "-c", "echo \"$ENROL_EVENT $ENROL_REASON $ENROL_SERIAL\" >> {0}/notify.log"]
"#,
        d.dir.path().display()
    )
}

/// A SCEP profile for `mef` (RSA, so renewal can sign with the old key).
fn scep_profile_with(
    d: &Device,
    mef: &Mef,
    pin: &str,
    cn: &str,
    challenge: &str,
    threshold: u8,
    check: &str,
) -> PathBuf {
    d.profile(&format!(
        r#"
name = "dev"
protocol = "scep"
url = "http://127.0.0.1:{}/scep"
[trust]
anchors = ["{pin}"]
[subject]
cn = "{cn}"
[key]
type = "rsa2048"
[auth]
challenge = "{challenge}"
[renewal]
threshold_percent = {threshold}
jitter_percent = 0
[revocation]
check = "{check}"
{}"#,
        mef.scep,
        outputs(d)
    ))
}

fn scep_profile(d: &Device, mef: &Mef, pin: &str, challenge: &str, threshold: u8) -> PathBuf {
    scep_profile_with(d, mef, pin, "agent-{profile}", challenge, threshold, "none")
}

#[test]
fn scep_a_device_with_nothing_gets_a_certificate_keeps_it_then_renews_it_past_the_threshold() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let pin = fingerprint(&mef.st("ca.pem"));
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let d = Device::new();
    scep_profile(&d, &mef, &pin, &challenge, 50);

    let (code, out) = d.once();
    assert_eq!(code, 10, "first enrolment installs: {out}");
    let first = d.consistent();
    openssl_verify(&mef.st("ca.pem"), &d.path("out/cert.pem"));
    assert_eq!(
        std::fs::metadata(d.path("out/key.pem")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read(d.path("out/ca.pem")).unwrap(),
        std::fs::read(mef.st("ca.pem")).unwrap()
    );
    let log = std::fs::read_to_string(d.path("notify.log")).unwrap();
    assert!(log.contains(&format!("installed FirstCertificate {first}")), "{log}");

    // Nothing to do while the certificate is younger than the threshold.
    let (code, out) = d.once();
    assert_eq!(code, 0, "{out}");
    assert_eq!(d.serial(), first);
    let st = text(&d.agent(&["status"]));
    assert!(
        st.contains("dev: idle") && st.contains("certificate expires:") && st.contains("next renewal:"),
        "{st}"
    );

    // Lower the threshold below the 45% already elapsed: the next cycle renews,
    // signed with the current key (the one-time challenge is spent, so only
    // a RenewalReq can succeed).
    scep_profile(&d, &mef, &pin, "spent", 40);
    let (code, out) = d.once();
    assert_eq!(code, 10, "renewal installs: {out}");
    let second = d.consistent();
    assert_ne!(first, second);
    assert!(std::fs::read_to_string(d.path("notify.log"))
        .unwrap()
        .contains(&format!("installed RenewalDue {second}")));
    assert!(mef.log().contains("RenewalReq"), "{}", mef.log());
    // The replaced credential is kept until it expires (step 14 deletes it then).
    assert!(d.path(&format!("state/dev/previous/{first}/certificate")).exists());
}

#[test]
fn a_wrong_trust_anchor_fingerprint_stops_everything_and_writes_nothing() {
    let mef = Mef::start(&mef_bin(), &[], |_, _| {});
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let d = Device::new();
    let wrong = "00".repeat(32);
    scep_profile(&d, &mef, &wrong, &challenge, 50);
    let (code, out) = d.once();
    assert_eq!(code, 40, "{out}");
    assert!(
        out.contains("pinned trust anchor") && out.contains(&fingerprint(&mef.st("ca.pem"))),
        "{out}"
    );
    for f in [
        "out/key.pem",
        "out/cert.pem",
        "out/chain.pem",
        "out/ca.pem",
        "notify.log",
        "state/dev/next-key.pem",
    ] {
        assert!(!d.path(f).exists(), "{f} was written");
    }
    let st = text(&d.agent(&["status"]));
    assert!(st.contains("dev: halted") && st.contains("pinned trust anchor"), "{st}");
    // The one-time challenge was not spent: with the right pin the device enrols.
    scep_profile(&d, &mef, &fingerprint(&mef.st("ca.pem")), &challenge, 50);
    assert_eq!(d.once().0, 10);
}

#[test]
fn an_invalid_profile_is_refused_at_load_with_the_field_and_the_reason() {
    let d = Device::new();
    d.profile("name = \"dev\"\nprotocol = \"scep\"\nurl = \"http://x/scep\"\n[trust]\nanchors = [\"abc\"]\n[subject]\ncn = \"x\"\n[output]\nkey = \"/k\"\ncertificate = \"/c\"\n");
    let o = d.agent(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("trust.anchors[0]: \"abc\" is not a SHA-256 fingerprint"),
        "{}",
        text(&o)
    );
}

fn est_profile(d: &Device, mef: &Mef, pin: &str, kpm: &Path, threshold: u8) -> PathBuf {
    d.profile(&format!(
        r#"
name = "dev"
protocol = "est"
url = "https://127.0.0.1:{}"
[trust]
anchors = ["{pin}"]
[subject]
cn = "agent-est"
dns = ["{{profile}}.device.test"]
[key]
type = "p256"
[auth]
psk_identity = "dev-kpm"
psk_file = "{}"
[renewal]
threshold_percent = {threshold}
jitter_percent = 0
[revocation]
check = "none"
{}"#,
        mef.openssl,
        kpm.display(),
        outputs(d)
    ))
}

fn est_device(mef: &Mef, threshold: u8) -> Device {
    let d = Device::new();
    let kpm = d.path("kpm");
    std::fs::write(
        &kpm,
        mef.run(&[
            "psk",
            "add",
            "dev-kpm",
            "--subject",
            "CN=agent-est",
            "--dns",
            "dev.device.test",
        ])
        .trim(),
    )
    .unwrap();
    est_profile(&d, mef, &fingerprint(&mef.st("ca.pem")), &kpm, threshold);
    d
}

#[test]
fn est_a_device_enrols_with_its_psk_then_re_enrols_with_its_certificate() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let d = est_device(&mef, 50);
    let (code, out) = d.once();
    assert_eq!(code, 10, "{out}");
    let first = d.consistent();
    openssl_verify(&mef.st("ca.pem"), &d.path("out/cert.pem"));
    assert_eq!(d.once().0, 0);
    est_profile(&d, &mef, &fingerprint(&mef.st("ca.pem")), &d.path("kpm"), 40);
    let (code, out) = d.once();
    assert_eq!(code, 10, "{out}");
    assert_ne!(d.consistent(), first);
    assert!(mef.log().contains("simplereenroll"), "{}", mef.log());
}

#[test]
fn sigkill_at_any_point_of_a_replacement_leaves_the_old_or_the_new_credential_never_a_mix() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let d = est_device(&mef, 50);
    assert_eq!(d.once().0, 10);
    let kpm = d.path("kpm");
    let pin = fingerprint(&mef.st("ca.pem"));
    // How long one renewal takes here, to spread the kills across it (and half
    // as long again: the other tests of this binary load the machine unevenly).
    est_profile(&d, &mef, &pin, &kpm, 40);
    let _ = std::fs::remove_file(d.path("state/dev/schedule.toml"));
    let t = Instant::now();
    assert_eq!(d.once().0, 10);
    let full = t.elapsed();
    let mut serials = vec![d.consistent()];
    let (mut old, mut new, mut forward, mut back) = (0, 0, 0, 0);
    let rounds = 40u32;
    for i in 0..rounds {
        est_profile(&d, &mef, &pin, &kpm, 40);
        // Each certificate here arrives past the 40% threshold, so its
        // install holds renewal for retry_max (kept in the state directory
        // across runs); forget the hold so that this run renews again.
        let _ = std::fs::remove_file(d.path("state/dev/schedule.toml"));
        let before = d.consistent();
        let mut child = Command::new(env!("CARGO_BIN_EXE_enrol"))
            .arg("agent")
            .arg("--profile")
            .arg(d.path("profile.toml"))
            .arg("--state-dir")
            .arg(d.path("state"))
            .arg("--once")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(
            full.mul_f64(1.5 * f64::from(i) / f64::from(rounds)) + Duration::from_millis(u64::from(i % 3)),
        );
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        // Restart with a threshold the current certificate does not reach:
        // the restart only finishes or discards the interrupted install.
        est_profile(&d, &mef, &pin, &kpm, 50);
        let (code, out) = d.once();
        assert!(code == 0, "restart after kill {i}: {out}");
        forward += usize::from(out.contains("RolledForward"));
        back += usize::from(out.contains("RolledBack"));
        let after = d.consistent();
        if after == before {
            old += 1;
        } else {
            new += 1;
            assert!(!serials.contains(&after));
            serials.push(after);
        }
    }
    println!(
        "SIGKILL during replacement: {old} restarts kept the old credential, {new} had the new one; \
         {forward} finished a committed install, {back} discarded an uncommitted one"
    );
    assert!(
        old > 0 && new > 0,
        "the kills should land both before and after the commit point"
    );
}

fn revocation_profile(d: &Device, mef: &Mef, pin: &str, check: &str) -> PathBuf {
    scep_profile_with(d, mef, pin, "agent-revocation", "shared-secret", 66, check)
}

#[test]
fn a_revoked_certificate_is_noticed_by_crl_and_separately_by_ocsp_and_re_enrolled() {
    for check in ["crl", "ocsp"] {
        let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
            *cfg = cfg.replace(
                "one_time_challenges = true",
                "one_time_challenges = true\nstatic_challenge = \"shared-secret\"",
            );
        });
        let d = Device::new();
        revocation_profile(&d, &mef, &fingerprint(&mef.st("ca.pem")), check);
        let (code, out) = d.once();
        assert_eq!(code, 10, "{check}: {out}");
        let first = d.consistent();
        // Checked and good: nothing happens.
        let (code, out) = d.once();
        assert_eq!(code, 0, "{check}: {out}");
        assert_eq!(d.serial(), first);
        mef.run(&["revoke", &first]);
        let (code, out) = d.once();
        assert_eq!(code, 10, "{check}: revocation should re-enrol: {out}");
        let second = d.consistent();
        assert_ne!(first, second);
        let log = std::fs::read_to_string(d.path("notify.log")).unwrap();
        assert!(
            log.contains("revoked") && log.contains(&format!("installed Revoked {second}")),
            "{check}: {log}"
        );
        // The new certificate is good again.
        assert_eq!(d.once().0, 0, "{check}");
        let served = mef.log();
        let path = if check == "crl" { "/crl" } else { "/ocsp" };
        assert!(served.contains(path), "{check}: the agent never asked {path}: {served}");
    }
}

/// Wait (bounded) until `cond` holds; the bound only stops a hung test.
fn eventually(what: &str, log: &Path, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting: {what}; agent log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The serial of the installed credential when no install is under way
/// and key, certificate and record agree (a running daemon may be mid-install).
fn settled(d: &Device) -> Option<String> {
    if d.path("state/dev/install.journal").exists() {
        return None;
    }
    let cert = enrolkit_files::read_certificate(&d.path("out/cert.pem")).ok()?;
    let key = enrolkit_files::read_key(&d.path("out/key.pem")).ok()?;
    let serial = hex::encode(cert.tbs_certificate.serial_number.as_bytes());
    let record = std::fs::read_to_string(d.path("state/dev/credential.toml")).ok()?;
    (enrolkit_keys::Signer::public_key(&key) == &cert.tbs_certificate.subject_public_key_info
        && record.contains(&serial))
    .then_some(serial)
}

#[test]
fn the_daemon_enrols_obeys_a_renew_directive_and_applies_a_changed_profile() {
    // Short-lived certificates: mef accepts a RenewalReq only within its renewal window.
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        short_lived(cfg);
        *cfg = cfg.replace(
            "one_time_challenges = true",
            "one_time_challenges = true\nstatic_challenge = \"shared-secret\"",
        );
    });
    let d = Device::new();
    let pin = fingerprint(&mef.st("ca.pem"));
    revocation_profile(&d, &mef, &pin, "none");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .arg("agent")
        .arg("--profile")
        .arg(d.path("profile.toml"))
        .arg("--state-dir")
        .arg(d.path("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.path("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let mut first = None;
    eventually("first certificate", &d.path("daemon.log"), || {
        first = settled(&d);
        first.is_some()
    });
    // Directive (seed step 6): renew now.
    let o = d.agent(&["renew"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut second = None;
    eventually("renewal on directive", &d.path("daemon.log"), || {
        second = settled(&d).filter(|s| Some(s) != first.as_ref());
        second.is_some()
    });
    // A changed subject is a new generation: the next cycle re-enrols with it.
    let body = std::fs::read_to_string(d.path("profile.toml")).unwrap();
    std::fs::write(
        d.path("profile.toml"),
        body.replace("cn = \"agent-revocation\"", "cn = \"agent-renamed\""),
    )
    .unwrap();
    eventually("re-enrolment under the changed profile", &d.path("daemon.log"), || {
        settled(&d).is_some_and(|s| Some(&s) != second.as_ref())
            && enrolkit_files::read_certificate(&d.path("out/cert.pem"))
                .map(|c| c.tbs_certificate.subject.to_string() == "CN=agent-renamed")
                .unwrap_or(false)
    });
    eventually("idle again", &d.path("daemon.log"), || {
        text(&d.agent(&["status"])).contains("dev: idle")
    });
    // An invalid edit is refused and the agent keeps going with the old profile.
    std::fs::write(d.path("profile.toml"), "name = \"dev\"\n").unwrap();
    eventually("the refusal is logged", &d.path("daemon.log"), || {
        std::fs::read_to_string(d.path("daemon.log"))
            .unwrap_or_default()
            .contains("changed profile refused")
    });
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon must survive a bad profile"
    );
    daemon.kill().unwrap();
    let _ = daemon.wait();
    let log = std::fs::read_to_string(d.path("notify.log")).unwrap();
    assert!(
        log.contains("installed Directive") && log.contains("installed ProfileChanged"),
        "{log}"
    );
}

#[test]
fn profiles_that_share_a_file_or_name_an_unknown_owner_are_refused_at_load() {
    let d = Device::new();
    let body = |name: &str, cert: &str, extra: &str| {
        format!(
            "name = \"{name}\"\nprotocol = \"scep\"\nurl = \"http://x/scep\"\n[trust]\nanchors = [\"{}\"]\n[subject]\ncn = \"x\"\n[output]\nkey = \"/k-{name}\"\ncertificate = \"{cert}\"\n{extra}",
            "ab".repeat(32)
        )
    };
    let (a, b) = (d.path("a.toml"), d.path("b.toml"));
    std::fs::write(&a, body("a", "/etc/app/cert.pem", "")).unwrap();
    std::fs::write(&b, body("b", "/etc/app/cert.pem", "")).unwrap();
    let run = |args: &[&Path]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_enrol"));
        c.arg("agent");
        for p in args {
            c.arg("--profile").arg(p);
        }
        c.arg("--state-dir").arg(d.path("state")).arg("check").output().unwrap()
    };
    let o = run(&[&a, &b]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("profiles \"a\" and \"b\" both write /etc/app/cert.pem"),
        "{}",
        text(&o)
    );
    std::fs::write(&b, body("b", "/etc/app/b.pem", "owner = \"no-such-user-here\"\n")).unwrap();
    let o = run(&[&a, &b]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("output.owner: no user \"no-such-user-here\" on this machine"),
        "{}",
        text(&o)
    );
    std::fs::write(&b, body("b", "/etc/app/b.pem", "owner = \"root\"\n")).unwrap();
    let o = run(&[&a, &b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.path("state").exists(), "check writes nothing");
}

/// A SCEP profile at `url` with the given extra sections and `[output]`
/// without `chain` (key, certificate, anchor) and the logging hook.
fn scep_profile_at(d: &Device, url: &str, pin: &str, challenge: &str, extra: &str) -> PathBuf {
    d.profile(&format!(
        r#"
name = "dev"
protocol = "scep"
url = "{url}"
[trust]
anchors = ["{pin}"]
[subject]
cn = "agent-{{profile}}"
[key]
type = "rsa2048"
[auth]
challenge = "{challenge}"
{extra}
[output]
key = "{0}/out/key.pem"
certificate = "{0}/out/cert.pem"
trust_anchor = "{0}/out/ca.pem"
[notify]
command = ["sh", "-c", "echo \"$ENROL_EVENT $ENROL_REASON $ENROL_SERIAL\" >> {0}/notify.log"]
"#,
        d.dir.path().display()
    ))
}

fn static_challenge(cfg: &mut String) {
    *cfg = cfg.replace(
        "one_time_challenges = true",
        "one_time_challenges = true\nstatic_challenge = \"shared-secret\"",
    );
}

fn notices(d: &Device) -> Vec<String> {
    std::fs::read_to_string(d.path("notify.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn without_an_output_chain_revocation_is_still_checked_against_the_issuing_ca() {
    // Root → issuing CA → device; the profile writes no chain file.
    let mef = Mef::start(&mef_bin(), &["--intermediate"], |_, cfg| static_challenge(cfg));
    let d = Device::new();
    let url = format!("http://127.0.0.1:{}/scep", mef.scep);
    let pin = fingerprint(&mef.st("root.pem"));
    scep_profile_at(
        &d,
        &url,
        &pin,
        "shared-secret",
        "[renewal]\nthreshold_percent = 66\n[revocation]\ncheck = \"crl\"",
    );
    let (code, out) = d.once();
    assert_eq!(code, 10, "{out}");
    let first = d.serial();
    assert!(!d.path("out/chain.pem").exists());
    // The agent keeps the validated chain itself.
    let kept = std::fs::read_to_string(d.path("state/dev/chain.pem")).unwrap();
    assert!(kept.contains("BEGIN CERTIFICATE"), "{kept}");
    // Checked and good: the CRL is the issuing CA's, verified with its key.
    let (code, out) = d.once();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("rejected"), "{out}");
    mef.run(&["revoke", &first]);
    let (code, out) = d.once();
    assert_eq!(code, 10, "revocation should re-enrol: {out}");
    assert_ne!(d.serial(), first);
    let log = notices(&d);
    assert!(log.iter().any(|l| l.starts_with("revoked")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("installed Revoked")), "{log:?}");
}

#[test]
fn a_certificate_issued_past_its_threshold_is_not_renewed_again_by_the_next_run() {
    // Issued 45% through its life, with a 40% threshold: installed, then held
    // (retry_max) rather than renewed at every start.
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        short_lived(cfg);
        static_challenge(cfg);
    });
    let d = Device::new();
    let pin = fingerprint(&mef.st("ca.pem"));
    scep_profile_with(&d, &mef, &pin, "agent-{profile}", "shared-secret", 40, "none");
    let (code, out) = d.once();
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("already past the renewal threshold"), "{out}");
    let first = d.consistent();
    for _ in 0..2 {
        let (code, out) = d.once();
        assert_eq!(code, 0, "the hold survives the restart: {out}");
        assert_eq!(d.serial(), first);
    }
    let saved = std::fs::read_to_string(d.path("state/dev/schedule.toml")).unwrap();
    assert!(saved.contains("hold_renewal_until"), "{saved}");
}

#[test]
fn a_pending_renewal_keeps_its_key_and_its_directive_until_the_operator_approves() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        short_lived(cfg);
        static_challenge(cfg);
    });
    // One address for the server across its restart (a new URL would be a
    // changed profile, which re-enrols for that reason).
    let (port, target) = relay();
    target.store(mef.scep, std::sync::atomic::Ordering::SeqCst);
    let d = Device::new();
    let url = format!("http://127.0.0.1:{port}/scep");
    let pin = fingerprint(&mef.st("ca.pem"));
    let extra = "[renewal]\nthreshold_percent = 90\n[polling]\ninterval_seconds = 1\nwindow_seconds = 2\n[revocation]\ncheck = \"none\"";
    scep_profile_at(&d, &url, &pin, "shared-secret", extra);
    assert_eq!(d.once().0, 10);
    let first = d.consistent();
    // From now on the CA holds every request for its operator.
    let cfg = std::fs::read_to_string(mef.st("mef.toml")).unwrap();
    std::fs::write(
        mef.st("mef.toml"),
        cfg.replacen("manual_approval = false", "manual_approval = true", 1),
    )
    .unwrap();
    let mut mef = mef;
    mef.restart();
    target.store(mef.scep, std::sync::atomic::Ordering::SeqCst);
    // The operator directs a renewal; the CA answers PENDING past the window.
    assert!(d.agent(&["renew"]).status.success());
    let (code, out) = d.once();
    assert_eq!(code, 20, "pending: {out}");
    assert!(out.contains("still pending") && out.contains("Directive"), "{out}");
    let staged = std::fs::read(d.path("state/dev/next-key.pem")).unwrap();
    // The directive file is gone, but the directive is not: the next run
    // polls again with the same key, and nothing deletes it.
    assert!(!d.path("state/dev/renew-now").exists());
    let (code, out) = d.once();
    assert_eq!(code, 20, "still pending: {out}");
    assert!(out.contains("enrolling (Directive"), "{out}");
    assert_eq!(std::fs::read(d.path("state/dev/next-key.pem")).unwrap(), staged);
    let list = mef.run(&["scep", "pending", "list"]);
    let line = list.lines().next().unwrap_or_else(|| panic!("nothing pending: {list}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    mef.run(&["scep", "pending", "approve", f[0], f[1]]);
    let (code, out) = d.once();
    assert_eq!(code, 10, "approved: {out}");
    assert_ne!(d.consistent(), first);
    assert!(
        notices(&d).iter().any(|l| l.starts_with("installed Directive")),
        "{:?}",
        notices(&d)
    );
    assert!(!d.path("state/dev/next-key.pem").exists());
    assert_eq!(d.once().0, 0, "the directive is carried out");
}

/// A TCP relay to a port that can be changed while it runs (the server
/// behind a fixed address is replaced), for as long as the test runs.
fn relay() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU16>) {
    use std::sync::atomic::{AtomicU16, Ordering};
    let target = std::sync::Arc::new(AtomicU16::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = target.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (port, target)
}

#[test]
fn a_halted_daemon_alerts_once_retries_with_back_off_and_enrols_once_the_server_is_fixed() {
    use std::sync::atomic::Ordering;
    let right = Mef::start(&mef_bin(), &[], |_, cfg| static_challenge(cfg));
    let wrong = Mef::start(&mef_bin(), &[], |_, cfg| static_challenge(cfg));
    let (port, target) = relay();
    target.store(wrong.scep, Ordering::SeqCst);
    let d = Device::new();
    let url = format!("http://127.0.0.1:{port}/scep");
    scep_profile_at(
        &d,
        &url,
        &fingerprint(&right.st("ca.pem")),
        "shared-secret",
        "[renewal]\nretry_min_seconds = 1\nretry_max_seconds = 2\n[revocation]\ncheck = \"none\"",
    );
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .arg("agent")
        .arg("--profile")
        .arg(d.path("profile.toml"))
        .arg("--state-dir")
        .arg(d.path("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.path("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(d.path("daemon.log")).unwrap_or_default();
    eventually("three halts", &d.path("daemon.log"), || {
        log().matches("halted:").count() >= 3
    });
    let halts: Vec<String> = notices(&d).into_iter().filter(|l| l.starts_with("halted")).collect();
    assert_eq!(halts.len(), 1, "one alert for one error: {:?}", notices(&d));
    assert!(!d.path("out/cert.pem").exists() && !d.path("out/key.pem").exists());
    let st = text(&d.agent(&["status"]));
    assert!(st.contains("dev: halted") && st.contains("pinned trust anchor"), "{st}");
    // The operator puts the right CA behind the address; the profile is unchanged.
    target.store(right.scep, Ordering::SeqCst);
    eventually("enrolment after the fix", &d.path("daemon.log"), || {
        notices(&d).iter().any(|l| l.starts_with("installed FirstCertificate"))
    });
    daemon.kill().unwrap();
    let _ = daemon.wait();
    assert!(d.consistent().len() > 1);
    assert_eq!(notices(&d).iter().filter(|l| l.starts_with("halted")).count(), 1);
}
