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

/// The RFC 6920 `ni:///sha-256;…` identifier of `cert`'s key (TS-0003
/// 10.1.2), from OpenSSL's digest and base64 (mapped to base64url).
fn spki_ni(cert: &Path) -> String {
    let digest = hex::decode(spki_sha256(cert)).unwrap();
    let mut c = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&digest).unwrap();
    let b64 = String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap();
    let url: String = b64
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("ni:///sha-256;{url}")
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

/// What a MEF with the default configuration answers for a stored key: the
/// key and no `CredentialID` (exactly the fields of TS-0003 V3.18.0 table
/// 8.3.2.1-5; `enrol rspf fetch` prints `credential-id -`).
fn table((key, _id): (String, String)) -> (String, String) {
    (key, "-".to_owned())
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
    // The pin as TS-0003 10.1.2 writes a raw public key identifier.
    let maf_pin = spki_ni(&maf_cert);
    assert!(
        maf_pin.starts_with("ni:///sha-256;") && maf_pin.len() == 57,
        "{maf_pin}"
    );
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        // This MEF adds the CredentialID extension to its Key Retrieval
        // answers; the other tests' MEFs send only table 8.3.2.1-5's fields.
        let with_id = cfg.replace("[rspf]\n", "[rspf]\nsend_credential_id = true\n");
        assert_ne!(&with_id, cfg, "[rspf] in the configuration");
        *cfg = with_id;
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
        let saef = cse.key(&ke_id, Some("22"), "cse-b.example.net", &[]);
        assert_eq!(saef, stored_key(&state, "cse-b.example.net", "PSK-SAEF"));
        let esdata = cse.key(&ke_id, Some("23"), "cse-b.example.net", &["--format", format]);
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
        by_kre.key(&dev_ke_id, Some("22"), "cse-b.example.net", &[]),
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
            cse.key(&ke_id, Some("23"), "cse-b.example.net", &[]),
            table(stored_key(&read_state(&st), "cse-b.example.net", "PSK-ESPrim"))
        );
        // One usage authorised: the seed's path without SUID is enough.
        assert_eq!(
            cse.key(&ke_id, None, "cse-b.example.net", &[]),
            table(stored_key(&read_state(&st), "cse-b.example.net", "PSK-ESPrim"))
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
            cse.key(&ke_id, Some("22"), "cse-b.example.net", &[]),
            table(stored_key(&read_state(&st), "cse-b.example.net", "PSK-SAEF"))
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

/// Issue 17 item 6 (b, c): GBA over TLS 1.2 takes whichever PSK suite is
/// negotiated — TS-0003 10.2.2's mandatory `PSK-AES128-CBC-SHA256` (0x00AE)
/// and ECDHE-PSK ones — with the suite in NAF_Id at both ends, and reads the
/// PSK identity in TS 24.109's `3GPP-bootstrapping.` form and the seed's
/// bare B-TID. `openssl s_client` is the UE here, keyed with Ks_NAF computed
/// for the suite it is told to use; the MEF sends the `3GPP-bootstrapping`
/// identity hint. A key for another suite does not handshake; 0x00AE is
/// refused by the forward-secrecy policy unless the Enrolee is exempt.
#[test]
fn gba_over_tls12_takes_each_psk_suite_and_the_3gpp_identity_form() {
    let impi_legacy = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";
    let impi_strict = "001010000000002@ims.mnc001.mcc001.3gppnetwork.org";
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        for (name, impi, exempt) in [("ue-legacy", impi_legacy, true), ("ue-strict", impi_strict, false)] {
            cfg.push_str(&format!(
                r#"
[[rspf.enrolee]]
name = "{name}"
forward-secrecy-exception = {exempt}
[rspf.enrolee.bootstrap]
framework = "gba-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-{name}.example.net"
impi = "{impi}"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
"#
            ));
        }
    });
    // Each UE's bootstrap (the BSF test double), and Ks_NAF for a suite.
    let bootstrap = |impi: &str, file: &str| {
        let ue = mef.dir.path().join(file);
        mef.run(&["rspf", "gba-stub", "bootstrap", "--impi", impi, "--out", p(&ue)]);
        let t: toml::Table = std::fs::read_to_string(&ue).unwrap().parse().unwrap();
        (
            t["btid"].as_str().unwrap().to_owned(),
            t["ks"].as_str().unwrap().to_owned(),
        )
    };
    let ks_naf = |btid: &str, ks: &str, impi: &str, suite: u16| {
        use enrolkit_rspf::gba::{naf_key, parse_btid, NafId, NafKey, UaProtocolId};
        let (rand, _) = parse_btid(btid).unwrap();
        let naf = NafId {
            fqdn: enrolkit_rspf::Fqdn::new("MEF", MEF_FQDN).unwrap(),
            protocol: UaProtocolId::tls_shared_key(suite),
        };
        let ks = enrolkit_rspf::Key256::from_slice(&hex::decode(ks).unwrap()).unwrap();
        hex::encode(naf_key(NafKey::KsNaf, &ks, &rand, impi, &naf).unwrap().expose())
    };
    let (btid, ks) = bootstrap(impi_legacy, "ue-legacy.toml");
    let three_gpp = format!("3GPP-bootstrapping.{btid}");
    for (cipher, suite, identity) in [
        ("PSK-AES128-CBC-SHA256", 0x00AE, three_gpp.as_str()),
        ("ECDHE-PSK-AES128-CBC-SHA256", 0xC037, btid.as_str()),
        ("ECDHE-PSK-CHACHA20-POLY1305", 0xCCAC, three_gpp.as_str()),
        ("PSK-AES128-CBC-SHA256", 0x00AE, btid.as_str()),
    ] {
        let key = ks_naf(&btid, &ks, impi_legacy, suite);
        let out = s_client_enrolment(&mef, &key, identity, &["-tls1_2", "-cipher", cipher, "-debug"]);
        assert!(out.contains(&format!("Cipher is {cipher}")), "{cipher}: {out}");
        assert!(
            out.contains("Received PSK identity hint '3GPP-bootstrapping'"),
            "{cipher}: {out}"
        );
        assert!(out.contains("HTTP/1.1 200"), "{cipher} {identity}: {out}");
        let material = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Keying material: "))
            .map(|h| hex::decode(h).unwrap())
            .unwrap_or_else(|| panic!("{out}"));
        let ke_id = format!("{}@{MEF_FQDN}", hex::encode_upper(&material[..16]));
        assert!(out.contains(&format!(r#""keId":"{ke_id}""#)), "{out}");
    }
    // Ks_NAF for ECDHE-PSK offered on a 0x00AE handshake: NAF_Id differs, no handshake.
    let wrong = ks_naf(&btid, &ks, impi_legacy, 0xC037);
    let out = s_client_enrolment(
        &mef,
        &wrong,
        &three_gpp,
        &["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256"],
    );
    assert!(
        !out.contains("HTTP/1.1"),
        "a key for another suite must not handshake: {out}"
    );
    // GBA_U's prefix is not this bootstrap's.
    let key = ks_naf(&btid, &ks, impi_legacy, 0xC037);
    let uicc = format!("3GPP-bootstrapping-uicc.{btid}");
    let out = s_client_enrolment(
        &mef,
        &key,
        &uicc,
        &["-tls1_2", "-cipher", "ECDHE-PSK-AES128-CBC-SHA256"],
    );
    assert!(!out.contains("HTTP/1.1 200"), "{out}");
    // Without the exception, 0x00AE is refused by the forward-secrecy policy; ECDHE-PSK is not.
    let (btid, ks) = bootstrap(impi_strict, "ue-strict.toml");
    let key = ks_naf(&btid, &ks, impi_strict, 0x00AE);
    let out = s_client_enrolment(
        &mef,
        &key,
        &format!("3GPP-bootstrapping.{btid}"),
        &["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256"],
    );
    assert!(
        out.contains("HTTP/1.1 403") && out.contains("forward-secrecy policy"),
        "{out}"
    );
    let key = ks_naf(&btid, &ks, impi_strict, 0xC038);
    let out = s_client_enrolment(
        &mef,
        &key,
        &btid,
        &["-tls1_2", "-cipher", "ECDHE-PSK-AES256-CBC-SHA384"],
    );
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    // Our own UE over TLS 1.2 (3GPP identity form, the suite the MEF prefers) gets the key the target fetches.
    let ue = mef.dir.path().join("ue-strict.toml");
    let st = mef.dir.path().join("ue-strict-ours");
    let server = format!("https://127.0.0.1:{}", mef.openssl);
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
        "1.2",
        "--out",
        p(&st),
    ]));
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    assert_eq!(
        cse.key(&ke_id_of(&stdout), Some("22"), "cse-b.example.net", &[]),
        table(stored_key(&read_state(&st), "cse-b.example.net", "PSK-SAEF"))
    );
}

/// Issue 17 item 6 (a): TS-0003 V3.18.0 8.3.2.3's arrangement, the MEF as
/// the BSF (Ke = Ks, KeID = B-TID): the UE derives Ks_NAF for a target as
/// the NAF (`enrol rspf gba-key`), the target fetches it from the MEF by
/// B-TID (our stand-in for Zn), and both hold the same key, for the
/// default TLS 1.3 Ua identifier and for TLS 1.2 with 0x00AE. No Enrolment
/// Exchange runs on such a bootstrap; an Enrolee left in the seed's
/// arrangement (MEF as NAF) gets no key by B-TID.
#[test]
fn gba_with_the_mef_as_bsf_end_to_end() {
    let impi_bsf = "001010000000011@ims.mnc001.mcc001.3gppnetwork.org";
    let impi_naf = "001010000000012@ims.mnc001.mcc001.3gppnetwork.org";
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        cfg.push_str(&targets_ca(
            st,
            &["cse-b.example.net", "maf.example.net", "evil.example.net"],
        ));
        cfg.push_str(&format!(
            r#"
[[rspf.enrolee]]
name = "ue-bsf"
gba-arrangement = "mef-as-bsf"
[rspf.enrolee.bootstrap]
framework = "gba-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-bsf.example.net"
impi = "{impi_bsf}"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
[rspf.enrolee.grant.maf]
fqdn = "maf.example.net"
credential = "symmetricKey"

[[rspf.enrolee]]
name = "ue-naf"
[rspf.enrolee.bootstrap]
framework = "gba-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-naf.example.net"
impi = "{impi_naf}"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
"#
        ));
    });
    let ue = mef.dir.path().join("ue-bsf.toml");
    let btid = mef.run(&["rspf", "gba-stub", "bootstrap", "--impi", impi_bsf, "--out", p(&ue)]);
    let btid = btid.trim().to_owned();
    assert!(btid.contains('@'), "{btid}");
    let gba_key = |target: &str, ua: Option<&str>| {
        let out = mef.dir.path().join(format!("ue-{target}-{}", ua.unwrap_or("tls13")));
        let mut a = vec!["rspf", "gba-key", "--gba", p(&ue), "--target", target, "--out", p(&out)];
        if let Some(u) = ua {
            a.extend(["--ua", u]);
        }
        let stdout = ok(enrol(&a));
        assert_eq!(ke_id_of(&stdout), btid, "the KeID is the B-TID");
        assert_eq!(mode(&out), 0o600);
        (std::fs::read_to_string(&out).unwrap().trim().to_owned(), stdout)
    };
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    let (maf_cert, maf_key) = target_cert(&mef, "maf.example.net");
    let maf = Target::with_cert(&mef, &maf_cert, &maf_key);
    let (evil_cert, evil_key) = target_cert(&mef, "evil.example.net");
    let evil = Target::with_cert(&mef, &evil_cert, &evil_key);
    let fetched = |t: &Target<'_>, from: &str, extra: &[&str]| {
        let (o, out) = t.fetch(&btid, None, from, extra);
        let stdout = ok(o);
        assert!(stdout.contains("lifetime "), "{stdout}");
        std::fs::read_to_string(&out).unwrap().trim().to_owned()
    };
    // CSE-B as the NAF: TLS 1.3's Ua identifier by default, and TLS 1.2 with 0x00AE.
    let (ue13, stdout) = gba_key("cse-b.example.net", None);
    assert!(stdout.contains("naf-id cse-b.example.net 0100000007"), "{stdout}");
    assert_eq!(fetched(&cse, "cse-b.example.net", &[]), ue13);
    let (ue12, _) = gba_key("cse-b.example.net", Some("01000100ae"));
    assert_eq!(
        fetched(&cse, "cse-b.example.net", &["--ua", "01000100ae", "--format", "xml"]),
        ue12
    );
    assert_ne!(ue12, ue13, "the Ua protocol identifier separates the keys");
    // The MAF as the NAF: Km = Ks_NAF for the MAF-FQDN.
    let (ue_maf, _) = gba_key("maf.example.net", None);
    assert_eq!(fetched(&maf, "maf.example.net", &[]), ue_maf);
    assert_ne!(ue_maf, ue13);
    // A configured target the grant does not name gets nothing.
    let e = refused(evil.fetch(&btid, None, "evil.example.net", &[]).0);
    assert!(e.contains("Status=false") && e.contains("not a NAF"), "{e}");
    // No Enrolment Exchange on this bootstrap: the MEF is its BSF, not a NAF.
    let e = refused(enrol(&[
        "rspf",
        "enrol",
        "--mef",
        &format!("https://127.0.0.1:{}", mef.openssl),
        "--gba",
        p(&ue),
        "--mef-fqdn",
        MEF_FQDN,
        "--out",
        p(&mef.dir.path().join("no-exchange")),
    ]));
    assert!(e.contains("TLS"), "{e}");
    // The seed's arrangement: no key by B-TID.
    let ue2 = mef.dir.path().join("ue-naf.toml");
    let btid2 = mef.run(&["rspf", "gba-stub", "bootstrap", "--impi", impi_naf, "--out", p(&ue2)]);
    let e = refused(cse.fetch(btid2.trim(), None, "cse-b.example.net", &[]).0);
    assert!(e.contains("HTTP 403") && e.contains("MEF as NAF"), "{e}");
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
    // Wrong target in X-M2M-Origin: the certificate names someone else.
    let e = fetch_refusal(&evil, &ke_id, Some("22"), "cse-b.example.net");
    assert!(
        e.contains("Status=false") && e.contains("does not name the requestor"),
        "{e}"
    );
    // Signed with the MEF CA's key outside mef: no record of it, so no
    // revocation check is possible, and it proves nothing (issue F).
    let e = fetch_refusal(&fake, &ke_id, Some("22"), "cse-b.example.net");
    assert!(
        e.contains("Status=false") && e.contains("names this CA as issuer but was not issued by it"),
        "{e}"
    );
    // A target nobody configured.
    let e = fetch_refusal(&evil, &ke_id, Some("22"), "maf.example.net");
    assert!(e.contains("no certificate credential is configured"), "{e}");
    // Target not authorised for this KeId (its certificate does name it).
    let e = fetch_refusal(&evil, &ke_id, Some("22"), "evil.example.net");
    assert!(e.contains("Status=false") && e.contains("not authorised"), "{e}");
    // Authorised target, SUID not granted (21, MAF client registration).
    let e = fetch_refusal(&cse, &ke_id, Some("21"), "cse-b.example.net");
    assert!(e.contains("not authorised for SUID 21"), "{e}");
    // Unknown KeId.
    let e = fetch_refusal(
        &cse,
        &format!("00112233445566778899AABBCCDDEEFF@{MEF_FQDN}"),
        Some("22"),
        "cse-b.example.net",
    );
    assert!(e.contains("HTTP 404") && e.contains("unknown KeId"), "{e}");
    // TLS identity not matching X-M2M-Origin: cse-b's own Kre, claiming to be the MAF.
    let kpm_b = add_psk(&mef, "kpm-cse-b");
    ok(enrol_psk(&mef, "kpm-cse-b", &kpm_b, &out("cse-b"), &[]));
    let by_kre = Target::with_kre(&mef, &out("cse-b"));
    let e = fetch_refusal(&by_kre, &ke_id, None, "maf.example.net");
    assert!(
        e.contains("Status=false") && e.contains("does not belong to the requestor"),
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
    let e = fetch_refusal(&kpm_target, &ke_id, Some("22"), "cse-b.example.net");
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
    let e = fetch_refusal(&cse, &ke_id, Some("22"), "cse-b.example.net");
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
    let e = fetch_refusal(&cse, &brief_id, Some("22"), "cse-b.example.net");
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
        let (key, key_id) = cse.key(&ke_id, Some("22"), "cse-b.example.net", &[]);
        let ke = enrolkit_rspf::Key256::from_slice(&material[16..48]).unwrap();
        let mut rid = [0u8; 16];
        rid.copy_from_slice(&material[..16]);
        let keys =
            enrolkit_rspf::enrolment::EnrolmentKeys::from_ke(ke, enrolkit_rspf::enrolment::RelativeId(rid)).unwrap();
        let (expect, _) = keys
            .target_key(
                enrolkit_rspf::enrolment::CredentialUsage::PskSaef.suid(),
                &enrolkit_rspf::TargetFqdn::from_id("cse-b.example.net").unwrap(),
                enrolkit_rspf::Fqdn::new("MEF", MEF_FQDN).unwrap(),
            )
            .unwrap();
        assert_eq!(key, hex::encode(expect.expose()), "{flag}");
        assert_eq!(key_id, "-", "no CredentialID by default (table 8.3.2.1-5)");
    }
}

/// `mef serve` whose OpenSSL EST listener has a port fixed before the
/// configuration is written (a V3.18 grant names its certificate
/// enrolment URI): `edit` gets the port; tried on five free ports.
fn mef_with_openssl_port(edit: impl Fn(&Path, &mut String, u16)) -> Mef {
    for _ in 0..5 {
        let port = enrolkit_testkit::free_port().unwrap();
        let openssl = format!("127.0.0.1:{port}");
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--est-listen",
            "127.0.0.1:0",
            "--est-listen-openssl",
            &openssl,
        ];
        if let Ok(m) = Mef::try_start(&mef_bin(), &[], |st, cfg| edit(st, cfg, port), &args) {
            return m;
        }
    }
    panic!("mef serve on a chosen port");
}

/// Issue 17 item 5: the V3.18 wire profile under each framework. The MEF
/// is configured with `wire-profile = "v3.18"` for three Enrolees and the
/// Enrolee runs `--wire-profile v3.18`: the request of table 8.3.2.1-1, one
/// response per instruction (certificate enrolment at the instructed EST
/// URI, MAF with its key registration URI, remote management), the end of
/// the exchange; then stand-in targets fetch with `/fetchCredentials/<KeID>/<SUID>`
/// and `X-M2M-Origin` and get the keys the Enrolee derives. The
/// change-request profile is what every other test here runs.
#[test]
fn the_v3_18_wire_profile_end_to_end_under_each_framework() {
    let dir = tempfile::tempdir().unwrap();
    let (dev_ca, dev_ca_key) = openssl_ca(dir.path(), "Device Maker CA");
    let (dev_cert, dev_key) = openssl_cert(dir.path(), "device-v3.example.net", &dev_ca, &dev_ca_key);
    let impi = "001010123456780@ims.mnc001.mcc001.3gppnetwork.org";
    let mef = mef_with_openssl_port(|st: &Path, cfg: &mut String, port: u16| {
        std::fs::copy(&dev_ca, st.join("device-ca.pem")).unwrap();
        cfg.push_str(&targets_ca(st, &["cse-b.example.net", "maf.example.net"]));
        std::fs::copy(st.join("targets-ca.pem"), st.join("maf-ca.pem")).unwrap();
        cfg.push_str(&format!(
            r#"
[[rspf.enrolee]]
name = "v3-psk"
wire-profile = "v3.18"
[rspf.enrolee.bootstrap]
framework = "pre-provisioned-symmetric-key"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-v3.example.net"
kpm-id = "kpm-v3"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
remote-management-uri = "coaps://dm.example.net:5684"
[rspf.enrolee.grant.certificate]
ekus = ["1.3.6.1.5.5.7.3.2"]
est-uri = "https://127.0.0.1:{port}"
[rspf.enrolee.grant.maf]
fqdn = "maf.example.net"
credential = "symmetricKey"
key-registration-uri = "https://maf.example.net/keyRegistration"
key-retrieval-uri = "https://maf.example.net/keyRetrieval"
trust-anchor = "maf-ca.pem"

[[rspf.enrolee]]
name = "v3-device"
wire-profile = "v3.18"
[rspf.enrolee.bootstrap]
framework = "certificate-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-v3dev.example.net"
enrolment-expiry = 3600
[rspf.enrolee.bootstrap.authentication]
kind = "device-certificate"
device-id = "device-v3.example.net"
trust-anchor = "device-ca.pem"
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "ESPrim" }}]

[[rspf.enrolee]]
name = "v3-ue"
wire-profile = "v3.18"
[rspf.enrolee.bootstrap]
framework = "gba-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-v3ue.example.net"
impi = "{impi}"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
"#
        ));
    });
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    let (maf_cert, maf_key) = target_cert(&mef, "maf.example.net");
    let maf = Target::with_cert(&mef, &maf_cert, &maf_key);
    let v3 = [
        "--wire-profile",
        "v3.18",
        "--mef-fqdn",
        MEF_FQDN,
        "--enrolment-expiry",
        "600",
    ];
    let derive = |st: &Path, t: &str| {
        let d = st.join(format!("derived-{t}"));
        ok(enrol(&[
            "rspf",
            "derive",
            "--state",
            p(st),
            "--target",
            "cse-b.example.net",
            "--security-type",
            t,
            "--out",
            p(&d),
        ]));
        std::fs::read_to_string(&d).unwrap().trim().to_owned()
    };

    // Pre-provisioned key, JSON over TLS 1.3 and XML over TLS 1.2.
    let kpm = add_psk(&mef, "kpm-v3");
    for (format, tls) in [("json", "1.3"), ("xml", "1.2")] {
        let st = mef.dir.path().join(format!("v3-psk-{format}"));
        let mut a = vec![
            "rspf",
            "enrol",
            "--mef",
            &server,
            "--psk-identity",
            "kpm-v3",
            "--psk-file",
            p(&kpm),
        ];
        a.extend(v3);
        a.extend([
            "--remote-management",
            "--subject",
            "CN=ae-v3.example.net",
            "--format",
            format,
            "--tls",
            tls,
        ]);
        a.extend(["--out", p(&st)]);
        let o = enrol(&a);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let stdout = ok(o);
        assert!(
            err.contains("V3.18 responses received up to the end of the exchange"),
            "{err}"
        );
        assert!(
            stdout.contains("remote-management coaps://dm.example.net:5684"),
            "{stdout}"
        );
        let ke_id = ke_id_of(&stdout);
        // Certificate enrolment at the instructed URI, in the Enrolee's name.
        let x = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in", p(&st.join("cert.pem"))])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&x.stdout).contains("ae-v3.example.net"));
        // Km with the MAF-FQDN from the key registration URI; lifetime = Enrolment Expiry.
        let state = read_state(&st);
        assert_eq!(state["wire-profile"].as_str(), Some("v3.18"));
        assert_eq!(
            maf.key(&ke_id, None, "maf.example.net", &["--format", format]),
            table(stored_key(&state, "maf.example.net", "MAF"))
        );
        // The target's SAEF key (SUID 22) = what the Enrolee derives.
        let (key, id) = cse.key(&ke_id, Some("22"), "cse-b.example.net", &["--format", format]);
        assert_eq!((key, id.as_str()), (derive(&st, "SAEF"), "-"));
        // The MEF granted no ESPrim key to this Enrolee: deriving one locally gets nothing from the MEF.
        let e = refused(cse.fetch(&ke_id, Some("23"), "cse-b.example.net", &[]).0);
        assert!(e.contains("not authorised for SUID 23"), "{e}");
    }
    // A change-request body from a V3.18 Enrolee is refused, naming the profile.
    let e = refused(enrol(&[
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--psk-identity",
        "kpm-v3",
        "--psk-file",
        p(&kpm),
        "--no-certificate",
        "--no-maf",
        "--out",
        p(&mef.dir.path().join("cr")),
    ]));
    assert!(e.contains("HTTP 400") && e.contains("speaks the v3.18 profile"), "{e}");

    // Certificate-based: a device certificate, nothing but a direct key granted.
    let st = mef.dir.path().join("v3-device");
    let mut a = vec![
        "rspf",
        "enrol",
        "--mef",
        &server,
        "--cert",
        p(&dev_cert),
        "--key",
        p(&dev_key),
    ];
    let mef_ca = mef.st("ca.pem");
    a.extend(["--mef-ca", p(&mef_ca)]);
    a.extend(v3);
    a.extend(["--out", p(&st)]);
    let stdout = ok(enrol(&a));
    let ke_id = ke_id_of(&stdout);
    assert!(
        !st.join("cert.pem").exists() && !stdout.contains("remote-management"),
        "{stdout}"
    );
    let left = read_state(&st)["expires"].as_integer().unwrap() - unix_secs();
    assert!(
        (590..=600).contains(&left),
        "the configured Enrolment Expiry (600 s), {left} s left"
    );
    let (key, _) = cse.key(&ke_id, Some("23"), "cse-b.example.net", &[]);
    assert_eq!(key, derive(&st, "ESPrim"));

    // GBA: B-TID and Ks_NAF as the seed's arrangement has them.
    let ue = mef.dir.path().join("ue-v3.toml");
    mef.run(&["rspf", "gba-stub", "bootstrap", "--impi", impi, "--out", p(&ue)]);
    for tls in ["1.2", "1.3"] {
        let st = mef.dir.path().join(format!("v3-ue-{tls}"));
        let mut a = vec!["rspf", "enrol", "--mef", &server, "--gba", p(&ue), "--tls", tls];
        a.extend(v3);
        a.extend(["--out", p(&st)]);
        let ke_id = ke_id_of(&ok(enrol(&a)));
        let (key, _) = cse.key(&ke_id, Some("22"), "cse-b.example.net", &[]);
        assert_eq!(key, derive(&st, "SAEF"), "GBA over TLS {tls}");
    }
}

fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `openssl s_client` with a PSK and `args` (version, cipher), posting an
/// Enrolment Exchange request to the MEF's OpenSSL listener: all it printed.
fn s_client_enrolment(mef: &Mef, kpm_hex: &str, identity: &str, args: &[&str]) -> String {
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
        .args(["-psk", kpm_hex, "-psk_identity", identity])
        .args(args)
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
    out
}

/// Issue 17 item 8: `mef init` turns the forward-secrecy policy on; a
/// plain-PSK TLS 1.2 session (`PSK-AES128-CBC-SHA256`, TS-0003 10.2.2's
/// mandatory suite) is refused with a reason naming the policy, an
/// ECDHE-PSK one is not, and an Enrolee with the exception is admitted
/// over the plain-PSK suite (and gets the KeId of OpenSSL's export).
#[test]
fn the_forward_secrecy_policy_refuses_plain_psk_unless_the_enrolee_is_exempt() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        assert!(cfg.contains("require_forward_secrecy = true"), "mef init: {cfg}");
        cfg.push_str(&psk_enrolee(
            "strict",
            "kpm-strict",
            "ae-strict.example.net",
            3600,
            false,
            CSE_GRANT,
        ));
        let legacy = psk_enrolee("legacy", "kpm-legacy", "ae-legacy.example.net", 3600, false, CSE_GRANT);
        let exempt = legacy.replace(
            "name = \"legacy\"\n",
            "name = \"legacy\"\nforward-secrecy-exception = true\n",
        );
        assert_ne!(exempt, legacy);
        cfg.push_str(&exempt);
    });
    let strict = std::fs::read_to_string(add_psk(&mef, "kpm-strict")).unwrap();
    let legacy = std::fs::read_to_string(add_psk(&mef, "kpm-legacy")).unwrap();
    let plain = ["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256"];
    let out = s_client_enrolment(&mef, strict.trim(), "kpm-strict", &plain);
    assert!(
        out.contains("Cipher is PSK-AES128-CBC-SHA256"),
        "the handshake itself succeeds: {out}"
    );
    assert!(out.contains("HTTP/1.1 403"), "{out}");
    assert!(
        out.contains(r#""Status":false"#)
            && out.contains("forward-secrecy policy ([rspf] require_forward_secrecy)")
            && out.contains("0x00AE")
            && out.contains("forward-secrecy-exception = true on the [[rspf.enrolee]] named strict"),
        "{out}"
    );
    assert!(!out.contains("keId"), "{out}");
    assert!(mef.log().contains("forward-secrecy policy"), "the refusal is logged");
    // The same Enrolee over ECDHE-PSK is admitted.
    let ecdhe = ["-tls1_2", "-cipher", "ECDHE-PSK-AES128-CBC-SHA256"];
    let out = s_client_enrolment(&mef, strict.trim(), "kpm-strict", &ecdhe);
    assert!(
        out.contains("Cipher is ECDHE-PSK-AES128-CBC-SHA256") && out.contains("HTTP/1.1 200"),
        "{out}"
    );
    // The exempt Enrolee over the plain-PSK suite: admitted, Ke from OpenSSL's export.
    let out = s_client_enrolment(&mef, legacy.trim(), "kpm-legacy", &plain);
    assert!(
        out.contains("Cipher is PSK-AES128-CBC-SHA256") && out.contains("HTTP/1.1 200"),
        "{out}"
    );
    let material = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .map(|h| hex::decode(h).unwrap())
        .unwrap_or_else(|| panic!("{out}"));
    let ke_id = format!("{}@{MEF_FQDN}", hex::encode_upper(&material[..16]));
    assert!(out.contains(&format!(r#""keId":"{ke_id}""#)), "{out}");
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
        cse.key(&first_ke_id, Some("22"), "cse-b.example.net", &[]),
        table(stored_key(&first, "cse-b.example.net", "PSK-SAEF"))
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
        cse.key(&second_ke_id, Some("23"), "cse-b.example.net", &[]),
        table(stored_key(&second, "cse-b.example.net", "PSK-ESData"))
    );

    // The operator withdraws the first enrolment: the one made from it by
    // Kre goes with it (a Kre re-enrolment needs no token, so it must not
    // outlive a revocation). Its keys can no longer be fetched, its Kre no
    // longer opens a session, and the spent token cannot enrol again: the
    // cycle fails with the MEF's reason and the installed credential stays whole.
    mef.run(&["rspf", "revoke", &first_ke_id]);
    let (o, _) = cse.fetch(&second_ke_id, Some("23"), "cse-b.example.net", &[]);
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

/// The device agent in TS-0003 V3.18.0's wire profile (`[rspf]
/// wire_profile = "v3.18"`): the request of table 8.3.2.1-1, the
/// responses, the certificate enrolled at the instructed EST URI (no
/// completion message: V3.18 has none), the state kept as V3.18's; then,
/// past the renewal threshold, a second exchange on Kre (an extension:
/// V3.18 names a re-authentication key but derives none) whose KeID the
/// target's key fetch confirms.
#[test]
fn the_agent_enrols_over_rspf_in_the_v3_18_wire_profile_then_renews() {
    println!("peer: {}", openssl_version());
    let mef = mef_with_openssl_port(|st: &Path, cfg: &mut String, port: u16| {
        // Certificates 45% through their life when issued: 50% keeps them, 40% renews.
        *cfg = cfg.replace(
            "validity_days = 365\n",
            "validity_days = 365\nvalidity_seconds = 3600\nbackdate_seconds = 3000\n",
        );
        cfg.push_str(&targets_ca(st, &["cse-b.example.net"]));
        cfg.push_str(&format!(
            r#"
[[rspf.enrolee]]
name = "v3-agent"
wire-profile = "v3.18"
[rspf.enrolee.bootstrap]
framework = "pre-provisioned-symmetric-key"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-v3agent.example.net"
kpm-id = "kpm-v3agent"
enrolment-expiry = 3600
[rspf.enrolee.grant]
direct-keys = [{{ target = "cse-b.example.net", security-type = "SAEF" }}]
remote-management-uri = "coaps://dm.example.net:5684"
[rspf.enrolee.grant.certificate]
ekus = ["1.3.6.1.5.5.7.3.2"]
est-uri = "https://127.0.0.1:{port}"
"#
        ));
    });
    let dev = tempfile::tempdir().unwrap();
    let kpm = add_psk(&mef, "kpm-v3agent");
    let state = dev.path().join("state");
    let profile = |threshold: u8| {
        let credential = format!(
            "[auth]\npsk_identity = \"kpm-v3agent\"\npsk_file = \"{}\"\n[rspf]\n\
             wire_profile = \"v3.18\"\nenrolment_expiry_seconds = 600\nremote_management = true\n",
            p(&kpm)
        );
        rspf_agent_profile_with(dev.path(), &mef, "ae-v3agent.example.net", &credential, threshold)
    };
    let prof = profile(50);
    let (code, out) = agent_once(&prof, &state);
    assert_eq!(code, 10, "{out}\nmef:\n{}", mef.log());
    assert!(out.contains("Enrolment Exchange with the pre-provisioned key"), "{out}");
    assert!(
        out.contains("the MEF names the remote management server coaps://dm.example.net:5684"),
        "{out}"
    );
    assert!(!out.contains("told the MEF"), "V3.18 has no completion message: {out}");
    let cert = dev.path().join("out/cert.pem");
    let x = Command::new("openssl")
        .args(["verify", "-CAfile", p(&mef.st("ca.pem")), p(&cert)])
        .output()
        .unwrap();
    assert!(x.status.success(), "openssl verify: {}", text(&x));
    let x = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in", p(&cert)])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&x.stdout).contains("ae-v3agent.example.net"));
    let kept = state.join("dev");
    let first = read_state(&kept);
    assert_eq!(first["wire-profile"].as_str(), Some("v3.18"));
    let first_ke_id = first["ke-id"].as_str().unwrap().to_owned();
    assert!(first_ke_id.ends_with(&format!("@{MEF_FQDN}")), "{first_ke_id}");
    // CSE-B fetches the SAEF key (SUID 22) for the agent's KeID: what the
    // MEF derives is what `enrol rspf derive` derives from the agent's
    // state, so both ends hold the same Ke (V3.18 grants no keys in the
    // exchange: the Enrolee derives them).
    let derive = |n: &str| {
        let d = dev.path().join(format!("derived-{n}"));
        ok(enrol(&[
            "rspf",
            "derive",
            "--state",
            p(&kept),
            "--target",
            "cse-b.example.net",
            "--security-type",
            "SAEF",
            "--out",
            p(&d),
        ]));
        std::fs::read_to_string(&d).unwrap().trim().to_owned()
    };
    let (cse_cert, cse_key) = target_cert(&mef, "cse-b.example.net");
    let cse = Target::with_cert(&mef, &cse_cert, &cse_key);
    let (key, id) = cse.key(&first_ke_id, Some("22"), "cse-b.example.net", &[]);
    assert_eq!((key, id.as_str()), (derive("first"), "-"));
    let first_cert = std::fs::read(&cert).unwrap();
    // Below the threshold nothing happens; past it, a new exchange on Kre.
    let (code, out) = agent_once(&prof, &state);
    assert_eq!(code, 0, "{out}");
    profile(40);
    let (code, out) = agent_once(&prof, &state);
    assert_eq!(code, 10, "{out}\nmef:\n{}", mef.log());
    assert!(
        out.contains("Enrolment Exchange with Kre of the previous enrolment"),
        "{out}"
    );
    let second = read_state(&kept);
    assert_eq!(second["wire-profile"].as_str(), Some("v3.18"));
    let second_ke_id = second["ke-id"].as_str().unwrap().to_owned();
    assert_ne!(second_ke_id, first_ke_id);
    assert_ne!(std::fs::read(&cert).unwrap(), first_cert);
    let (key, _) = cse.key(&second_ke_id, Some("22"), "cse-b.example.net", &[]);
    assert_eq!(key, derive("second"));
    // The first enrolment's key is another one.
    let (old, _) = cse.key(&first_ke_id, Some("22"), "cse-b.example.net", &[]);
    assert_ne!(old, key);
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
