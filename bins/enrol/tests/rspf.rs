//! oneM2M Remote Security Provisioning end to end: `enrol rspf` (the
//! Enrolee) against `mef serve` (the MEF) under each bootstrap framework,
//! the negotiated outcome (certificate over EST, MAF Master Credential,
//! direct CSE keys), and a stand-in Enrolment Target (`enrol rspf fetch`,
//! with a certificate OpenSSL made, or with the Kre of its own enrolment)
//! that fetches its key by KeId and must get the key the Enrolee derived.
//! Then every refusal, and the Enrolment Key against OpenSSL's
//! `-keymatexport` in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_testkit::{Mef, Peer};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MEF_FQDN: &str = "mef.enrolkit.test";
const LABEL: &str = "EXPORTER-oneM2M-Bootstrap";

fn mef_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_enrol")).with_file_name("mef")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn openssl_version() -> String {
    let o = Command::new("openssl").arg("version").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn enrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enrol")).args(args).output().unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The refusal line of a failed `enrol` run.
fn refused(o: Output) -> String {
    assert!(!o.status.success(), "expected a refusal: {}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An EC key and a certificate for `name` (CN and DNS SAN), signed by `ca`
/// with `ca_key`, made by the OpenSSL command line.
fn openssl_cert(dir: &Path, name: &str, ca: &Path, ca_key: &Path) -> (PathBuf, PathBuf) {
    let (key, csr, cert, ext) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(
        &ext,
        format!("subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\n"),
    )
    .unwrap();
    let st = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", &format!("/CN={name}"), "-keyout", p(&key), "-out", p(&csr)])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("openssl")
        .args(["x509", "-req", "-in", p(&csr), "-CA", p(ca), "-CAkey", p(ca_key)])
        .args(["-CAcreateserial", "-days", "30", "-extfile", p(&ext), "-out", p(&cert)])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    (cert, key)
}

/// A self-signed CA made by OpenSSL (a device manufacturer's, say).
fn openssl_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pem")));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign,cRLSign",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    (cert, key)
}

/// `[[rspf.target]]` entries for `ids`, each authenticated by a certificate
/// under the targets' own CA, which OpenSSL makes in the MEF's directory.
fn targets_ca(st: &Path, ids: &[&str]) -> String {
    let (ca, _) = openssl_ca(st, "targets-ca");
    let mut cfg = String::new();
    for id in ids {
        cfg.push_str(&format!(
            "\n[[rspf.target]]\nid = \"{id}\"\ntrust-anchor = \"{}\"\n",
            ca.file_name().unwrap().to_str().unwrap()
        ));
    }
    cfg
}

/// A target certificate from the targets' CA of `mef`.
fn target_cert(mef: &Mef, name: &str) -> (PathBuf, PathBuf) {
    openssl_cert(
        mef.dir.path(),
        name,
        &mef.st("targets-ca.pem"),
        &mef.st("targets-ca.key"),
    )
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, by OpenSSL.
fn spki_sha256(cert: &Path) -> String {
    let pubkey = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in", p(cert)])
        .output()
        .unwrap()
        .stdout;
    let pipe = |args: &[&str], input: &[u8]| {
        let mut c = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        c.wait_with_output().unwrap().stdout
    };
    let der = pipe(&["pkey", "-pubin", "-outform", "DER"], &pubkey);
    let digest = pipe(&["dgst", "-sha256", "-r"], &der);
    String::from_utf8(digest)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn read_state(dir: &Path) -> toml::Table {
    std::fs::read_to_string(dir.join("enrolment.toml"))
        .unwrap()
        .parse()
        .unwrap()
}

/// The stored key (hex) for `target` and `usage` in an Enrolee's state.
fn stored_key(state: &toml::Table, target: &str, usage: &str) -> (String, String) {
    let c = state["credential"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["target"].as_str() == Some(target) && c["usage"].as_str() == Some(usage))
        .unwrap_or_else(|| panic!("no {usage} credential for {target}"));
    (
        c["key"].as_str().unwrap().to_owned(),
        c["key-id"].as_str().unwrap().to_owned(),
    )
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

struct Target<'a> {
    mef: &'a Mef,
    args: Vec<String>,
}

impl Target<'_> {
    /// A target authenticating by a certificate from the MEF's CA.
    fn with_cert<'a>(mef: &'a Mef, cert: &Path, key: &Path) -> Target<'a> {
        Target {
            mef,
            args: vec![
                "--cert".into(),
                p(cert).into(),
                "--key".into(),
                p(key).into(),
                "--mef-ca".into(),
                p(&mef.st("ca.pem")).into(),
            ],
        }
    }

    /// A target authenticating with the Kre of its own enrolment.
    fn with_kre<'a>(mef: &'a Mef, state: &Path) -> Target<'a> {
        Target {
            mef,
            args: vec!["--kre-state".into(), p(state).into()],
        }
    }

    fn fetch(&self, ke_id: &str, suid: Option<&str>, from: &str, extra: &[&str]) -> (Output, PathBuf) {
        let out = self.mef.dir.path().join(format!("fetched-{}", rand_name()));
        let mut a: Vec<String> = vec![
            "rspf".into(),
            "fetch".into(),
            "--mef".into(),
            format!("https://127.0.0.1:{}", self.mef.openssl),
            "--ke-id".into(),
            ke_id.into(),
            "--from".into(),
            from.into(),
            "--out".into(),
            p(&out).into(),
        ];
        if let Some(s) = suid {
            a.extend(["--suid".into(), s.into()]);
        }
        a.extend(self.args.iter().cloned());
        a.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        (enrol(&refs), out)
    }

    /// Fetch and return (key hex, credential id).
    fn key(&self, ke_id: &str, suid: Option<&str>, from: &str, extra: &[&str]) -> (String, String) {
        let (o, out) = self.fetch(ke_id, suid, from, extra);
        let stdout = ok(o);
        assert_eq!(mode(&out), 0o600);
        let id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("credential-id "))
            .unwrap()
            .to_owned();
        (std::fs::read_to_string(&out).unwrap().trim().to_owned(), id)
    }
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{}", N.fetch_add(1, Ordering::Relaxed))
}

fn psk_enrolee(name: &str, kpm_id: &str, enrolee_id: &str, expiry: u64, token_required: bool, grant: &str) -> String {
    format!(
        r#"
[[rspf.enrolee]]
name = "{name}"
[rspf.enrolee.bootstrap]
framework = "pre-provisioned-symmetric-key"
enrolment-target = "cse-b.example.net"
enrolee-id = "{enrolee_id}"
kpm-id = "{kpm_id}"
enrolment-expiry = {expiry}
token-required = {token_required}
[rspf.enrolee.grant]
{grant}
"#
    )
}

const FULL_GRANT: &str = r#"direct-keys = [{ target = "cse-b.example.net", security-type = "SAEF" }, { target = "cse-b.example.net", security-type = "ESData" }]
registrar-cse = "cse-b.example.net"
[rspf.enrolee.grant.certificate]
security-types = ["SAEF"]
ekus = ["1.3.6.1.5.5.7.3.2"]
[rspf.enrolee.grant.maf]
fqdn = "maf.example.net"
credential = "symmetricKey"
security-types = ["SAEF", "ESPrim"]
"#;

const CSE_GRANT: &str = r#"direct-keys = [{ target = "ae-dev1.example.net", security-type = "SAEF" }]"#;

/// The device of most tests: KpmId `kpm-dev1`, token required, everything granted.
fn dev1_enrolee() -> String {
    psk_enrolee("dev1", "kpm-dev1", "ae-dev1.example.net", 3600, true, FULL_GRANT)
}

/// CSE-B enrolled with the MEF itself (so it can fetch with its Kre).
fn cse_b_enrolee() -> String {
    psk_enrolee("cse-b", "kpm-cse-b", "cse-b.example.net", 3600, false, CSE_GRANT)
}

fn add_psk(mef: &Mef, identity: &str) -> PathBuf {
    let key = mef.run(&["psk", "add", identity]);
    let f = mef.dir.path().join(format!("{identity}.kpm"));
    std::fs::write(&f, key.trim()).unwrap();
    f
}

fn enrol_psk(mef: &Mef, kpm_id: &str, kpm: &Path, out: &Path, extra: &[&str]) -> Output {
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let mut a = vec![
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--psk-identity",
        kpm_id,
        "--psk-file",
        p(kpm),
    ];
    a.extend_from_slice(&["--out", p(out)]);
    a.extend_from_slice(extra);
    enrol(&a)
}

fn ke_id_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ke-id "))
        .unwrap()
        .to_owned()
}

#[test]
fn pre_provisioned_key_framework_end_to_end() {
    println!("peer: {}", openssl_version());
    // The MAF is known by its pinned key; CSE-B by certificates of its own CA.
    let pins = tempfile::tempdir().unwrap();
    let (pin_ca, pin_ca_key) = openssl_ca(pins.path(), "maf-maker");
    let (maf_cert, maf_key) = openssl_cert(pins.path(), "maf.example.net", &pin_ca, &pin_ca_key);
    let maf_pin = spki_sha256(&maf_cert);
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(&format!(
            "\n[[rspf.target]]\nid = \"maf.example.net\"\nspki-sha256 = \"{maf_pin}\"\n"
        ));
        cfg.push_str(&dev1_enrolee());
        cfg.push_str(&cse_b_enrolee());
    });
    let kpm = add_psk(&mef, "kpm-dev1");
    let token = mef.run(&["rspf", "token", "add", "dev1"]);
    for (format, tls) in [("json", "1.3"), ("xml", "1.2")] {
        let token = if format == "json" {
            token.trim().to_owned()
        } else {
            mef.run(&["rspf", "token", "add", "dev1"]).trim().to_owned()
        };
        let st = mef.dir.path().join(format!("dev1-{format}"));
        let stdout = ok(enrol_psk(
            &mef,
            "kpm-dev1",
            &kpm,
            &st,
            &[
                "--token",
                &token,
                "--format",
                format,
                "--tls",
                tls,
                "--mef-fqdn",
                MEF_FQDN,
            ],
        ));
        let ke_id = ke_id_of(&stdout);
        assert!(ke_id.ends_with(&format!("@{MEF_FQDN}")), "{ke_id}");
        assert_eq!(mode(&st.join("enrolment.toml")), 0o600);
        assert_eq!(mode(&st.join("key.pem")), 0o600);
        // Certificate enrolment over EST with the granted EKU, for this Enrolee.
        let x = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in", p(&st.join("cert.pem"))])
            .output()
            .unwrap();
        let cert_text = String::from_utf8_lossy(&x.stdout);
        assert!(cert_text.contains("TLS Web Client Authentication"), "{cert_text}");
        assert!(cert_text.contains("CN = ae-dev1.example.net"), "{cert_text}");
        let state = read_state(&st);
        // The MAF fetches Kc/KcId; the CSE fetches each usage's key; both equal the Enrolee's.
        let maf = Target::with_cert(&mef, &maf_cert, &maf_key);
        assert_eq!(
            maf.key(&ke_id, None, "maf.example.net", &["--format", format]),
            stored_key(&state, "maf.example.net", "MAF")
        );
        let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
        let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
        let saef = cse.key(&ke_id, Some("11"), "cse-b.example.net", &[]);
        assert_eq!(saef, stored_key(&state, "cse-b.example.net", "PSK-SAEF"));
        let esdata = cse.key(&ke_id, Some("13"), "cse-b.example.net", &["--format", format]);
        assert_eq!(esdata, stored_key(&state, "cse-b.example.net", "PSK-ESData"));
        assert_ne!(saef.0, esdata.0, "keys are separated by usage");
        // `enrol rspf derive` from the stored Ke gives the same key again.
        let d = mef.dir.path().join(format!("derived-{format}"));
        let id = ok(enrol(&[
            "rspf",
            "derive",
            "--state",
            p(&st),
            "--target",
            "cse-b.example.net",
            "--security-type",
            "ESData",
            "--out",
            p(&d),
        ]));
        assert_eq!(id.trim(), esdata.1);
        assert_eq!(std::fs::read_to_string(&d).unwrap().trim(), esdata.0);
    }
    // A target enrolled with the MEF itself fetches with its Kre (PSK identity KreId).
    let kpm_b = add_psk(&mef, "kpm-cse-b");
    let st_b = mef.dir.path().join("cse-b");
    ok(enrol_psk(&mef, "kpm-cse-b", &kpm_b, &st_b, &[]));
    let st_dev = mef.dir.path().join("dev1-json");
    let dev_ke_id = read_state(&st_dev)["ke-id"].as_str().unwrap().to_owned();
    let by_kre = Target::with_kre(&mef, &st_b);
    assert_eq!(
        by_kre.key(&dev_ke_id, Some("11"), "cse-b.example.net", &[]),
        stored_key(&read_state(&st_dev), "cse-b.example.net", "PSK-SAEF")
    );
    // The operator sees both procedures completed, and never a key.
    let list = mef.run(&["rspf", "list"]);
    assert!(
        list.contains("certificateEnrolment=ok") && list.contains("mafEnrolment=ok"),
        "{list}"
    );
    let secret = read_state(&st_dev)["ke"].as_str().unwrap().to_owned();
    assert!(!list.contains(&secret) && !mef.log().contains(&secret));
    // At rest, Ke is sealed: the database never holds it in the clear.
    let db = std::fs::read(mef.st("mef.db")).unwrap();
    let ke = hex::decode(&secret).unwrap();
    assert!(!db.windows(ke.len()).any(|w| w == ke.as_slice()));
    let wal = std::fs::read(mef.st("mef.db-wal")).unwrap_or_default();
    assert!(!wal.windows(ke.len()).any(|w| w == ke.as_slice()));
    // Nor a Kpm (`mef psk add`, sealed under the storage key too).
    let kpm = hex::decode(std::fs::read_to_string(&kpm_b).unwrap().trim()).unwrap();
    assert_eq!(kpm.len(), 32);
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(kpm.len()).any(|w| w == kpm.as_slice()));
    }
}

#[test]
fn certificate_based_framework_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (dev_ca, dev_ca_key) = openssl_ca(dir.path(), "Device Maker CA");
    let (dev_cert, dev_key) = openssl_cert(dir.path(), "device-42.example.net", &dev_ca, &dev_ca_key);
    let (other_cert, other_key) = openssl_cert(dir.path(), "device-43.example.net", &dev_ca, &dev_ca_key);
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        std::fs::copy(&dev_ca, st.join("device-ca.pem")).unwrap();
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(
            r#"
[[rspf.enrolee]]
name = "device-42"
[rspf.enrolee.bootstrap]
framework = "certificate-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-42.example.net"
enrolment-expiry = 3600
[rspf.enrolee.bootstrap.authentication]
kind = "device-certificate"
device-id = "device-42.example.net"
trust-anchor = "device-ca.pem"
[rspf.enrolee.grant]
direct-keys = [{ target = "cse-b.example.net", security-type = "ESPrim" }]
[rspf.enrolee.grant.certificate]
security-types = ["SAEF"]
"#,
        );
    });
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let ca = mef.st("ca.pem");
    for (listener, tls) in [(mef.openssl, "1.3"), (mef.rustls, "1.2"), (mef.rustls, "1.3")] {
        let server = format!("https://127.0.0.1:{listener}");
        let st = dir.path().join(format!("st-{listener}-{tls}"));
        let stdout = ok(enrol(&[
            "rspf",
            "enrol",
            "--mef",
            &server,
            "--cert",
            p(&dev_cert),
            "--key",
            p(&dev_key),
            "--mef-ca",
            p(&ca),
            "--tls",
            tls,
            "--out",
            p(&st),
        ]));
        let ke_id = ke_id_of(&stdout);
        assert!(st.join("cert.pem").exists(), "certificate enrolled");
        let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
        let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
        assert_eq!(
            cse.key(&ke_id, Some("12"), "cse-b.example.net", &[]),
            stored_key(&read_state(&st), "cse-b.example.net", "PSK-ESPrim")
        );
        // One usage authorised: the seed's path without SUID is enough.
        assert_eq!(
            cse.key(&ke_id, None, "cse-b.example.net", &[]),
            stored_key(&read_state(&st), "cse-b.example.net", "PSK-ESPrim")
        );
    }
    // Another device of the same maker is not this Enrolee; a certificate of
    // the MEF's own CA naming no configured device is not either.
    let e = refused(enrol(&[
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--cert",
        p(&other_cert),
        "--key",
        p(&other_key),
        "--mef-ca",
        p(&ca),
        "--out",
        p(&dir.path().join("x")),
    ]));
    assert!(e.contains("403") && e.contains("not a configured Enrolee"), "{e}");
    // The MEF is authenticated: a wrong trust anchor stops the Enrolee.
    let e = refused(enrol(&[
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--cert",
        p(&dev_cert),
        "--key",
        p(&dev_key),
        "--mef-ca",
        p(&dev_ca),
        "--out",
        p(&dir.path().join("y")),
    ]));
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn gba_framework_end_to_end() {
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(
            r#"
[[rspf.enrolee]]
name = "ue-1"
[rspf.enrolee.bootstrap]
framework = "gba-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-ue1.example.net"
impi = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{ target = "cse-b.example.net", security-type = "SAEF" }]
"#,
        );
    });
    let ue = mef.dir.path().join("ue.toml");
    let btid = mef.run(&[
        "rspf",
        "gba-stub",
        "bootstrap",
        "--impi",
        "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
        "--out",
        p(&ue),
    ]);
    assert!(btid.trim().ends_with("@bsf.gba.example.net"), "{btid}");
    assert_eq!(mode(&ue), 0o600);
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    // TLS 1.2 (NAF_Id names the PSK cipher suite) and TLS 1.3.
    for tls in ["1.2", "1.3"] {
        let st = mef.dir.path().join(format!("ue-{tls}"));
        let stdout = ok(enrol(&[
            "rspf",
            "enrol",
            "--mef",
            &server,
            "--gba",
            p(&ue),
            "--mef-fqdn",
            MEF_FQDN,
            "--tls",
            tls,
            "--out",
            p(&st),
        ]));
        let ke_id = ke_id_of(&stdout);
        assert_eq!(
            cse.key(&ke_id, Some("11"), "cse-b.example.net", &[]),
            stored_key(&read_state(&st), "cse-b.example.net", "PSK-SAEF")
        );
        assert!(mef.log().contains("peer=ue-1"));
    }
    // Ks_NAF binds the NAF's FQDN: a UE that thinks it talks to another NAF cannot handshake.
    let e = refused(enrol(&[
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--gba",
        p(&ue),
        "--mef-fqdn",
        "other-naf.example.net",
        "--out",
        p(&mef.dir.path().join("z")),
    ]));
    assert!(e.contains("TLS"), "{e}");
}

#[test]
fn refusals_answer_status_false_with_a_reason_and_are_logged() {
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net", "evil.example.net"]));
        cfg.push_str(&dev1_enrolee());
        cfg.push_str(&psk_enrolee(
            "brief",
            "kpm-brief",
            "ae-brief.example.net",
            1,
            false,
            FULL_GRANT,
        ));
        cfg.push_str(&cse_b_enrolee());
    });
    let kpm = add_psk(&mef, "kpm-dev1");
    let out = |n: &str| mef.dir.path().join(n);
    // Tokens: missing, invalid, another enrolee's, reused.
    let e = refused(enrol_psk(&mef, "kpm-dev1", &kpm, &out("a"), &[]));
    assert!(
        e.contains("HTTP 403") && e.contains("Enrolment-Token is required"),
        "{e}"
    );
    let e = refused(enrol_psk(
        &mef,
        "kpm-dev1",
        &kpm,
        &out("b"),
        // A token may begin with a hyphen; it reaches the MEF, not the option parser.
        &["--token", "-Mnot-a-token"],
    ));
    assert!(e.contains("HTTP 403") && e.contains("token unknown"), "{e}");
    let foreign = mef.run(&["rspf", "token", "add", "cse-b"]);
    let e = refused(enrol_psk(
        &mef,
        "kpm-dev1",
        &kpm,
        &out("c"),
        &["--token", foreign.trim()],
    ));
    assert!(e.contains("token unknown"), "{e}");
    let token = mef.run(&["rspf", "token", "add", "dev1"]);
    let stdout = ok(enrol_psk(&mef, "kpm-dev1", &kpm, &out("d"), &["--token", token.trim()]));
    let ke_id = ke_id_of(&stdout);
    let e = refused(enrol_psk(&mef, "kpm-dev1", &kpm, &out("e"), &["--token", token.trim()]));
    assert!(e.contains("already used"), "{e}");
    let listed = mef.run(&["rspf", "token", "list"]);
    assert!(listed.contains("used") && !listed.contains(token.trim()), "{listed}");
    // Key retrieval refusals, each Status=false with its reason.
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let (evil_cert, evil_key) = target_cert(&mef, "evil.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    let evil = Target::with_cert(&mef, &evil_cert, &evil_key);
    // A certificate naming cse-b from a CA that is not cse-b's (here the MEF's own) proves nothing.
    let mef_ca_dir = mef.dir.path().join("mef-ca-issued");
    std::fs::create_dir(&mef_ca_dir).unwrap();
    let (fake_cert, fake_key) = openssl_cert(
        &mef_ca_dir,
        "cse-b.example.net",
        &mef.st("ca.pem"),
        &mef.st("ca.key.pem"),
    );
    let fake = Target::with_cert(&mef, &fake_cert, &fake_key);
    let fetch_refusal = |t: &Target<'_>, id: &str, suid: Option<&str>, from: &str| {
        let (o, file) = t.fetch(id, suid, from, &[]);
        assert!(!file.exists(), "nothing written on a refusal");
        refused(o)
    };
    // Wrong target in From: the certificate names someone else.
    let e = fetch_refusal(&evil, &ke_id, Some("11"), "cse-b.example.net");
    assert!(e.contains("Status=false") && e.contains("does not name From"), "{e}");
    // Signed with the MEF CA's key outside mef: no record of it, so no
    // revocation check is possible, and it proves nothing (issue F).
    let e = fetch_refusal(&fake, &ke_id, Some("11"), "cse-b.example.net");
    assert!(
        e.contains("Status=false") && e.contains("names this CA as issuer but was not issued by it"),
        "{e}"
    );
    // A target nobody configured.
    let e = fetch_refusal(&evil, &ke_id, Some("11"), "maf.example.net");
    assert!(e.contains("no certificate credential is configured"), "{e}");
    // Target not authorised for this KeId (its certificate does name it).
    let e = fetch_refusal(&evil, &ke_id, Some("11"), "evil.example.net");
    assert!(e.contains("Status=false") && e.contains("not authorised"), "{e}");
    // Authorised target, usage not granted.
    let e = fetch_refusal(&cse, &ke_id, Some("12"), "cse-b.example.net");
    assert!(e.contains("not authorised for PSK-ESPrim"), "{e}");
    // Unknown KeId.
    let e = fetch_refusal(
        &cse,
        &format!("00112233445566778899AABBCCDDEEFF@{MEF_FQDN}"),
        Some("11"),
        "cse-b.example.net",
    );
    assert!(e.contains("HTTP 404") && e.contains("unknown KeId"), "{e}");
    // TLS identity not matching From: cse-b's own Kre, claiming to be the MAF.
    let kpm_b = add_psk(&mef, "kpm-cse-b");
    ok(enrol_psk(&mef, "kpm-cse-b", &kpm_b, &out("cse-b"), &[]));
    let by_kre = Target::with_kre(&mef, &out("cse-b"));
    let e = fetch_refusal(&by_kre, &ke_id, None, "maf.example.net");
    assert!(
        e.contains("Status=false") && e.contains("does not belong to From"),
        "{e}"
    );
    // No client credential a target can use: a KpmId session.
    let kpm_target = Target {
        mef: &mef,
        args: vec![
            "--psk-identity".into(),
            "kpm-dev1".into(),
            "--psk-file".into(),
            p(&kpm).into(),
        ],
    };
    let e = fetch_refusal(&kpm_target, &ke_id, Some("11"), "cse-b.example.net");
    assert!(e.contains("certificate or a KreId"), "{e}");
    // An Enrolee may enrol a certificate in its own name only.
    let t2 = mef.run(&["rspf", "token", "add", "dev1"]);
    let e = refused(enrol_psk(
        &mef,
        "kpm-dev1",
        &kpm,
        &out("impostor"),
        &["--token", t2.trim(), "--subject", "CN=cse-b.example.net"],
    ));
    assert!(e.contains("403") && e.contains("may not name cse-b.example.net"), "{e}");
    assert!(mef.run(&["rspf", "list"]).contains("certificateEnrolment=failed"));
    // A withdrawn enrolment is gone.
    mef.run(&["rspf", "revoke", &ke_id]);
    let e = fetch_refusal(&cse, &ke_id, Some("11"), "cse-b.example.net");
    assert!(e.contains("HTTP 404"), "{e}");
    // Expired Ke (Enrolment Expiry of one second).
    let kpm_brief = add_psk(&mef, "kpm-brief");
    // Only the exchange: a certificate enrolment under a one-second Ke would
    // race the expiry on a loaded machine.
    let stdout = ok(enrol_psk(
        &mef,
        "kpm-brief",
        &kpm_brief,
        &out("brief"),
        &["--no-certificate", "--no-maf"],
    ));
    let brief_id = ke_id_of(&stdout);
    std::thread::sleep(Duration::from_millis(2100));
    let e = fetch_refusal(&cse, &brief_id, Some("11"), "cse-b.example.net");
    assert!(e.contains("HTTP 410") && e.contains("expired"), "{e}");
    // An unconfigured PSK identity never gets a handshake.
    let junk = mef.dir.path().join("junk.kpm");
    std::fs::write(&junk, "00112233445566778899aabbccddeeff").unwrap();
    let e = refused(enrol_psk(&mef, "kpm-nobody", &junk, &out("f"), &[]));
    assert!(e.contains("TLS"), "{e}");
    // Malformed bodies get the exchange's own refusal, and the server keeps serving.
    let o = curl_psk_less(&mef);
    assert!(o.contains("415") || o.contains("403"), "{o}");
    ok(enrol_psk(&mef, "kpm-cse-b", &kpm_b, &out("cse-b-again"), &[]));
    let log = mef.log();
    assert!(log.matches("key retrieval refused").count() >= 7, "{log}");
    assert!(!log.contains(token.trim()), "a token was logged");
}

/// `curl` with a certificate the MEF does not know, posting garbage: the answer's status line.
fn curl_psk_less(mef: &Mef) -> String {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            p(&mef.st("ca.pem")),
        ])
        .args(["-H", "Content-Type: text/plain", "--data", "{]"])
        .arg(format!("https://127.0.0.1:{}/rspf/enrolment", mef.rustls))
        .output()
        .unwrap();
    text(&o)
}

/// `enrol rspf enrol` against `openssl s_server -psk … -keymatexport`: the
/// Enrolee's Ke is the one OpenSSL prints. s_server is no MEF, so the test
/// answers through s_server's stdin with instructions naming the KeId
/// OpenSSL's own export gives; the Enrolee accepts them only if its export
/// agrees, and its stored Ke must be OpenSSL's too.
#[test]
fn enrol_rspf_derives_the_ke_openssl_s_server_exports() {
    println!("peer: {}", openssl_version());
    let kpm = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
    let dir = tempfile::tempdir().unwrap();
    let kpm_file = dir.path().join("kpm");
    std::fs::write(&kpm_file, kpm).unwrap();
    for (flag, tls) in [("-tls1_2", "1.2"), ("-tls1_3", "1.3")] {
        let mut server = Peer::spawn(
            |port| {
                let mut c = Command::new("openssl");
                c.args(["s_server", "-accept", &port.to_string(), "-nocert", "-cipher", "PSK"])
                    .args(["-psk", kpm, "-psk_identity", "kpm-x", flag])
                    .args(["-keymatexport", LABEL, "-keymatexportlen", "48"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                c
            },
            Duration::from_secs(10),
        )
        .unwrap();
        let st = dir.path().join(format!("st-{tls}"));
        let args = [
            "rspf".to_string(),
            "enrol".into(),
            "--mef".into(),
            format!("https://127.0.0.1:{}", server.port),
            "--psk-identity".into(),
            "kpm-x".into(),
            "--psk-file".into(),
            p(&kpm_file).into(),
            "--tls".into(),
            tls.into(),
            "--out".into(),
            p(&st).into(),
        ];
        let client = std::thread::spawn(move || Command::new(env!("CARGO_BIN_EXE_enrol")).args(args).output().unwrap());
        let mut out = BufReader::new(server.child.stdout.take().unwrap());
        let material = loop {
            let mut l = String::new();
            assert!(
                out.read_line(&mut l).unwrap() > 0,
                "s_server printed no keying material"
            );
            if let Some(h) = l.trim().strip_prefix("Keying material: ") {
                break hex::decode(h).unwrap();
            }
        };
        // Wait for the request (its JSON body ends the output, unterminated), then answer as a MEF would.
        let mut seen = Vec::new();
        while !seen.ends_with(b"}") {
            let mut b = [0u8; 1];
            assert_eq!(
                out.read(&mut b).unwrap(),
                1,
                "s_server closed: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.push(b[0]);
        }
        let ke_id = format!("{}@{MEF_FQDN}", hex::encode_upper(&material[..16]));
        let body = format!(r#"{{"keId":"{ke_id}","enrolmentExpiry":60,"directKey":[]}}"#);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stdin = server.child.stdin.take().unwrap();
        stdin.write_all(reply.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let o = client.join().unwrap();
        let stdout = ok(o);
        assert_eq!(ke_id_of(&stdout), ke_id);
        let state = read_state(&st);
        assert_eq!(
            state["ke"].as_str().unwrap(),
            hex::encode(&material[16..48]),
            "TLS {tls}: Ke"
        );
        drop(stdin);
    }
}

/// `openssl s_client -psk … -keymatexport` against `mef`: the KeId the MEF
/// answers is OpenSSL's RelativeKeId, and a key the MEF hands a target is
/// the one derived from the Ke OpenSSL printed.
#[test]
fn openssl_s_client_against_mef_exports_the_same_ke() {
    println!("peer: {}", openssl_version());
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(&psk_enrolee(
            "dev1",
            "kpm-dev1",
            "ae-dev1.example.net",
            3600,
            false,
            CSE_GRANT.replace("ae-dev1", "cse-b").as_str(),
        ));
    });
    let kpm = add_psk(&mef, "kpm-dev1");
    let kpm_hex = std::fs::read_to_string(&kpm).unwrap();
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    for flag in ["-tls1_2", "-tls1_3"] {
        let body = r#"{"supportsCertificateEnrolment":false,"supportsMafProcedures":false}"#;
        let request = format!(
            "POST /rspf/enrolment HTTP/1.1\r\nHost: mef\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut c = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", mef.openssl),
                "-ign_eof",
            ])
            .args([
                "-psk",
                kpm_hex.trim(),
                "-psk_identity",
                "kpm-dev1",
                "-cipher",
                "PSK",
                flag,
            ])
            .args(["-keymatexport", LABEL, "-keymatexportlen", "48"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(request.as_bytes()).unwrap();
        drop(stdin);
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let _ = c.wait();
        let material = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Keying material: "))
            .map(|h| hex::decode(h).unwrap())
            .unwrap_or_else(|| panic!("{out}"));
        let rel = hex::encode_upper(&material[..16]);
        let ke_id = format!("{rel}@{MEF_FQDN}");
        assert!(out.contains(&format!(r#""keId":"{ke_id}""#)), "{flag}: {out}");
        // The target's key from the MEF = the key derived from OpenSSL's Ke.
        let (key, key_id) = cse.key(&ke_id, Some("11"), "cse-b.example.net", &[]);
        let ke = enrolkit_rspf::Key256::from_slice(&material[16..48]).unwrap();
        let mut rid = [0u8; 16];
        rid.copy_from_slice(&material[..16]);
        let keys =
            enrolkit_rspf::enrolment::EnrolmentKeys::from_ke(ke, enrolkit_rspf::enrolment::RelativeId(rid)).unwrap();
        let (expect, expect_id) = keys
            .target_key(
                enrolkit_rspf::enrolment::CredentialUsage::PskSaef,
                enrolkit_rspf::enrolment::TargetId::new("cse-b.example.net").unwrap(),
                enrolkit_rspf::Fqdn::new("MEF", MEF_FQDN).unwrap(),
            )
            .unwrap();
        assert_eq!(key, hex::encode(expect.expose()), "{flag}");
        assert_eq!(key_id, expect_id.to_string());
    }
}

#[test]
fn a_held_enrolee_certificate_is_approved_with_the_granted_ekus() {
    // The profile's EKU is clientAuth; the grant is serverAuth only, which
    // neither the profile nor [est] allowed_ekus allows: the approval must
    // issue on the terms the request was held under, the grant's.
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        let held = cfg.replace(
            "manual_approval = false\nretry_after_seconds = 60",
            "manual_approval = true\nretry_after_seconds = 1",
        );
        assert_ne!(&held, cfg, "[est] manual approval switched on");
        *cfg = held;
        cfg.push_str(&psk_enrolee(
            "held",
            "kpm-held",
            "ae-held.example.net",
            3600,
            false,
            "[rspf.enrolee.grant.certificate]\nsecurity-types = [\"SAEF\"]\nekus = [\"1.3.6.1.5.5.7.3.1\"]\n",
        ));
    });
    let kpm = add_psk(&mef, "kpm-held");
    let st = mef.dir.path().join("held");
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let child = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["rspf", "enrol", "--mef", &server, "--psk-identity", "kpm-held"])
        .args(["--psk-file", p(&kpm), "--out", p(&st)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let (tx, kid) = loop {
        let list = mef.run(&["est", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.contains("CN=ae-held.example.net")) {
            let mut f = l.split_whitespace();
            break (f.next().unwrap().to_owned(), f.next().unwrap().to_owned());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never held: {}", mef.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(tx.starts_with("est-"), "{tx}");
    mef.run(&["est", "pending", "approve", &tx, &kid]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{}", text(&o), mef.log());
    assert!(text(&o).contains("202 accepted"), "{}", text(&o));
    let x = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "extendedKeyUsage,subjectAltName"])
        .args(["-in", p(&st.join("cert.pem"))])
        .output()
        .unwrap();
    let x = text(&x);
    assert!(x.contains("TLS Web Server Authentication"), "{x}");
    assert!(!x.contains("TLS Web Client Authentication"), "{x}");
    assert!(mef.log().contains("auth=rspf:held"), "{}", mef.log());
}

/// `enrol agent --once` with the profile `profile`; (exit code, output).
fn agent_once(profile: &Path, state: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["agent", "--profile", p(profile), "--state-dir", p(state), "--once"])
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), text(&o))
}

/// An agent profile for Enrolee dev1 over RSPF, renewing past `threshold`%.
fn rspf_agent_profile(dev: &Path, mef: &Mef, kpm: &Path, token: &Path, threshold: u8) -> PathBuf {
    let credential = format!(
        "[auth]\npsk_identity = \"kpm-dev1\"\npsk_file = \"{}\"\n[rspf]\ntoken_file = \"{}\"\n",
        p(kpm),
        p(token)
    );
    rspf_agent_profile_with(dev, mef, "ae-dev1.example.net", &credential, threshold)
}

/// An agent profile over RSPF for `cn`, authenticated by `credential`
/// (the `[auth]` and first `[rspf]` lines).
fn rspf_agent_profile_with(dev: &Path, mef: &Mef, cn: &str, credential: &str, threshold: u8) -> PathBuf {
    let ca = enrolkit_files::read_certificate(&mef.st("ca.pem")).unwrap();
    let pin = enrolkit_pkix::fingerprint::sha256_der(&der::Encode::to_der(&ca).unwrap());
    let profile = dev.join("profile.toml");
    std::fs::write(
        &profile,
        format!(
            r#"
name = "dev"
protocol = "rspf"
url = "https://127.0.0.1:{port}"
[trust]
anchors = ["{pin}"]
[subject]
cn = "{cn}"
{credential}mef_fqdn = "{MEF_FQDN}"
state_output = "{dev}/out/enrolment.toml"
[renewal]
threshold_percent = {threshold}
jitter_percent = 0
[revocation]
check = "none"
[output]
key = "{dev}/out/key.pem"
certificate = "{dev}/out/cert.pem"
trust_anchor = "{dev}/out/ca.pem"
"#,
            port = mef.openssl,
            dev = p(dev),
        ),
    )
    .unwrap();
    profile
}

#[test]
fn the_agent_enrols_over_rspf_then_renews_by_kre_and_the_mef_agrees_on_its_keys() {
    println!("peer: {}", openssl_version());
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        // Certificates 45% through their life when issued: 50% keeps them, 40% renews.
        *cfg = cfg.replace(
            "validity_days = 365\n",
            "validity_days = 365\nvalidity_seconds = 3600\nbackdate_seconds = 3000\n",
        );
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(&dev1_enrolee());
    });
    let dev = tempfile::tempdir().unwrap();
    let kpm = add_psk(&mef, "kpm-dev1");
    let token = dev.path().join("token");
    std::fs::write(&token, mef.run(&["rspf", "token", "add", "dev1"]).trim()).unwrap();
    let state = dev.path().join("state");
    let profile = rspf_agent_profile(dev.path(), &mef, &kpm, &token, 50);

    // First cycle: Enrolment Exchange with Kpm and the token, then the granted certificate.
    let (code, out) = agent_once(&profile, &state);
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("Enrolment Exchange with the pre-provisioned key"), "{out}");
    let cert = dev.path().join("out/cert.pem");
    let x = Command::new("openssl")
        .args(["verify", "-CAfile", p(&mef.st("ca.pem")), p(&cert)])
        .output()
        .unwrap();
    assert!(x.status.success(), "openssl verify: {}", text(&x));
    let x = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", p(&cert)])
        .output()
        .unwrap();
    let cert_text = String::from_utf8_lossy(&x.stdout);
    assert!(cert_text.contains("TLS Web Client Authentication"), "{cert_text}");
    assert!(cert_text.contains("CN = ae-dev1.example.net"), "{cert_text}");
    let kept = state.join("dev");
    assert_eq!(mode(&kept.join("enrolment.toml")), 0o600);
    assert_eq!(mode(&dev.path().join("out/enrolment.toml")), 0o600);
    assert_eq!(
        std::fs::read(kept.join("enrolment.toml")).unwrap(),
        std::fs::read(dev.path().join("out/enrolment.toml")).unwrap()
    );
    let first = read_state(&kept);
    let first_ke_id = first["ke-id"].as_str().unwrap().to_owned();
    // CSE-B fetches the SAEF key for the agent's KeId: the MEF derived what the agent stored.
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    assert_eq!(
        cse.key(&first_ke_id, Some("11"), "cse-b.example.net", &[]),
        stored_key(&first, "cse-b.example.net", "PSK-SAEF")
    );
    assert!(mef.run(&["rspf", "list"]).contains("certificateEnrolment=ok"));
    let first_cert = std::fs::read(&cert).unwrap();

    // Below the threshold nothing happens.
    let (code, out) = agent_once(&profile, &state);
    assert_eq!(code, 0, "{out}");

    // Past it: a new exchange re-authenticated by Kre (the one-time token is
    // spent, so the bootstrap credential could not have done it), a new KeId,
    // a new certificate.
    rspf_agent_profile(dev.path(), &mef, &kpm, &token, 40);
    let (code, out) = agent_once(&profile, &state);
    assert_eq!(code, 10, "{out}");
    assert!(
        out.contains("Enrolment Exchange with Kre of the previous enrolment"),
        "{out}"
    );
    let second = read_state(&kept);
    let second_ke_id = second["ke-id"].as_str().unwrap().to_owned();
    assert_ne!(second_ke_id, first_ke_id);
    assert_ne!(std::fs::read(&cert).unwrap(), first_cert);
    // The MEF recorded which enrolment's Kre it was made on.
    let listed = mef.run(&["rspf", "list"]);
    let line = listed.lines().find(|l| l.starts_with(&second_ke_id)).unwrap();
    assert!(
        line.contains(&format!("re-enrolled on the Kre of {first_ke_id}")),
        "{listed}"
    );
    assert_eq!(
        cse.key(&second_ke_id, Some("13"), "cse-b.example.net", &[]),
        stored_key(&second, "cse-b.example.net", "PSK-ESData")
    );

    // The operator withdraws the first enrolment: the one made from it by
    // Kre goes with it (a Kre re-enrolment needs no token, so it must not
    // outlive a revocation). Its keys can no longer be fetched, its Kre no
    // longer opens a session, and the spent token cannot enrol again: the
    // cycle fails with the MEF's reason and the installed credential stays whole.
    mef.run(&["rspf", "revoke", &first_ke_id]);
    let (o, _) = cse.fetch(&second_ke_id, Some("13"), "cse-b.example.net", &[]);
    assert!(
        !o.status.success(),
        "the child enrolment survived its parent's revocation"
    );
    let before = std::fs::read(&cert).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args(["agent", "--profile", p(&profile), "--state-dir", p(&state), "renew"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (code, out) = agent_once(&profile, &state);
    assert_ne!(code, 0, "{out}");
    assert_ne!(code, 10, "{out}");
    assert!(out.contains("Enrolment Exchange failed"), "{out}");
    assert!(out.contains("with Kre of the previous enrolment"), "{out}");
    assert!(out.to_lowercase().contains("token"), "{out}");
    assert_eq!(std::fs::read(&cert).unwrap(), before);
}

#[test]
fn the_agent_enrols_over_rspf_with_a_device_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (dev_ca, dev_ca_key) = openssl_ca(dir.path(), "Device Maker CA");
    let (dev_cert, dev_key) = openssl_cert(dir.path(), "device-42.example.net", &dev_ca, &dev_ca_key);
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        std::fs::copy(&dev_ca, st.join("device-ca.pem")).unwrap();
        cfg.push_str(
            r#"
[[rspf.enrolee]]
name = "device-42"
[rspf.enrolee.bootstrap]
framework = "certificate-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-42.example.net"
enrolment-expiry = 3600
[rspf.enrolee.bootstrap.authentication]
kind = "device-certificate"
device-id = "device-42.example.net"
trust-anchor = "device-ca.pem"
[rspf.enrolee.grant]
direct-keys = [{ target = "cse-b.example.net", security-type = "ESPrim" }]
[rspf.enrolee.grant.certificate]
security-types = ["SAEF"]
ekus = ["1.3.6.1.5.5.7.3.2"]
"#,
        );
    });
    let dev = dir.path().join("device");
    std::fs::create_dir(&dev).unwrap();
    let credential = format!(
        "[rspf]\ncertificate = \"{}\"\nkey = \"{}\"\n",
        p(&dev_cert),
        p(&dev_key)
    );
    let profile = rspf_agent_profile_with(&dev, &mef, "ae-42.example.net", &credential, 50);
    let (code, out) = agent_once(&profile, &dir.path().join("state"));
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("Enrolment Exchange with the device certificate"), "{out}");
    let x = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", p(&dev.join("out/cert.pem"))])
        .output()
        .unwrap();
    let cert_text = String::from_utf8_lossy(&x.stdout);
    assert!(cert_text.contains("CN = ae-42.example.net"), "{cert_text}");
    assert!(cert_text.contains("TLS Web Client Authentication"), "{cert_text}");
    let state = read_state(&dir.path().join("state/dev"));
    assert!(state["ke-id"].as_str().unwrap().ends_with(MEF_FQDN));
    assert!(mef.run(&["rspf", "list"]).contains("certificateEnrolment=ok"));
}

/// A malformed `--subject` is refused before the Enrolment Exchange, so a
/// run that cannot finish does not spend the one-time Enrolment-Token
/// (it used to be parsed after the exchange, leaving the token "already used").
#[test]
fn a_malformed_subject_is_refused_before_the_token_is_spent() {
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(&dev1_enrolee());
    });
    let kpm = add_psk(&mef, "kpm-dev1");
    let token = mef.run(&["rspf", "token", "add", "dev1"]);
    let bad = mef.dir.path().join("bad");
    let e = refused(enrol_psk(
        &mef,
        "kpm-dev1",
        &kpm,
        &bad,
        &["--token", token.trim(), "--subject", "not a distinguished name"],
    ));
    assert!(e.contains("--subject"), "{e}");
    assert!(!bad.join("enrolment.toml").exists(), "no exchange ran");
    let good = mef.dir.path().join("good");
    let stdout = ok(enrol_psk(&mef, "kpm-dev1", &kpm, &good, &["--token", token.trim()]));
    assert!(ke_id_of(&stdout).contains('@'), "{stdout}");
    assert!(good.join("cert.pem").exists());
}
