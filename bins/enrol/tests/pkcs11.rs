//! Keys inside a PKCS#11 token (SoftHSM2) end to end against `mef serve`:
//! `enrol scep` and `enrol agent` generate the key pair in the token, the
//! token signs the CSR and the SCEP messages and decrypts the CertRep, and
//! the key object is sensitive and was never extractable. No private key
//! file is written anywhere. And `mef` with its CA, root and RA keys in a
//! token signs certificates and CRLs and decrypts SCEP requests there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use enrolkit_keys::PrivateKey;
use enrolkit_pkcs11::{Pkcs11Key, Pkcs11Uri, Token};
use enrolkit_testkit::softhsm::SoftHsm;
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// One token per test, made before this process loads the module.
const TOKENS: &[&str] = &["scep-cli", "est-cli", "agent-scep", "agent-est", "agent-rspf", "mef"];

fn hsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let h = SoftHsm::new(TOKENS);
        h.export_env();
        h
    })
}

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

fn enrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enrol"))
        .env("SOFTHSM2_CONF", &hsm().conf)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Certificates 45% through their life when issued, and within mef's
/// renewal window, so a RenewalReq is accepted at once.
fn short_lived(cfg: &mut String) {
    *cfg = cfg.replace(
        "validity_days = 365\n",
        "validity_days = 365\nvalidity_seconds = 3600\nbackdate_seconds = 3000\n",
    );
}

fn openssl_verify(ca: &Path, cert: &Path) {
    let v = Command::new("openssl").arg("version").output().unwrap();
    println!("peer: {}", String::from_utf8_lossy(&v.stdout).trim());
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", p(ca), p(cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl verify: {}", text(&o));
}

/// The key pair labelled `object` (exactly one) in `token`, looked up
/// directly in the token by this process.
fn token_key(token: &str, object: &str) -> Pkcs11Key {
    let uri = Pkcs11Uri::parse(&hsm().uri(token, Some(object))).unwrap();
    Token::open(&uri).unwrap().find(Some(object), None).unwrap()
}

/// The private key never left the token: sensitive, not extractable, and
/// the token says it has always been so; its value cannot be read.
fn assert_never_left_the_token(key: &Pkcs11Key) {
    let a = key.attributes().unwrap();
    assert!(a.sensitive && !a.extractable, "{a:?}");
    assert!(a.always_sensitive && a.never_extractable, "{a:?}");
    assert!(a.never_left_token(), "{a:?}");
    assert!(
        !key.secret_readable().unwrap(),
        "the token let the private value be read"
    );
}

fn certified_by(key: &Pkcs11Key, cert: &Path) {
    let c = enrolkit_files::read_certificate(cert).unwrap();
    assert_eq!(
        key.spki(),
        &c.tbs_certificate.subject_public_key_info,
        "the certificate certifies another key"
    );
}

/// Files in `dir` that hold a private key.
fn key_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).is_ok_and(|b| b.windows(11).any(|w| w == b"PRIVATE KEY")) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn enrol_scep_with_the_key_in_the_token_enrols_renews_and_fetches_the_crl() {
    let hsm = hsm();
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let url = format!("http://127.0.0.1:{}/scep", mef.scep);
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let out = tempfile::tempdir().unwrap();
    let cert = out.path().join("cert.pem");

    let said = ok(enrol(&[
        "scep",
        "enrol",
        "--url",
        &url,
        "--subject",
        "CN=hsm-device",
        "--challenge",
        &challenge,
        "--key-out",
        &hsm.uri("scep-cli", Some("device")),
        "--cert-out",
        p(&cert),
    ]));
    assert!(
        said.contains("key generated in the token: pkcs11:token=scep-cli;object=device;id="),
        "{said}"
    );
    assert!(
        said.contains("pin-source=file:") && !said.contains("pin-value"),
        "{said}"
    );
    let first = token_key("scep-cli", "device");
    assert_never_left_the_token(&first);
    certified_by(&first, &cert);
    openssl_verify(&mef.st("ca.pem"), &cert);

    // Renewal: the RenewalReq is signed by the token key of the current
    // certificate, for a second key pair generated in the token; both
    // CertRep decryptions happen in the token.
    let renewed = out.path().join("renewed.pem");
    ok(enrol(&[
        "scep",
        "renew",
        "--url",
        &url,
        "--key",
        &hsm.uri("scep-cli", Some("device")),
        "--cert",
        p(&cert),
        "--new-key",
        "--key-out",
        &hsm.uri("scep-cli", Some("device-next")),
        "--cert-out",
        p(&renewed),
    ]));
    let next = token_key("scep-cli", "device-next");
    assert_never_left_the_token(&next);
    certified_by(&next, &renewed);
    assert_ne!(first.spki(), next.spki());
    assert!(mef.log().contains("RenewalReq"), "{}", mef.log());

    // A label already in the token is refused, never shadowed.
    let again = enrol(&[
        "scep",
        "enrol",
        "--url",
        &url,
        "--subject",
        "CN=hsm-device",
        "--challenge",
        "unused",
        "--key-out",
        &hsm.uri("scep-cli", Some("device")),
        "--cert-out",
        p(&out.path().join("x.pem")),
    ]);
    assert!(!again.status.success());
    assert!(text(&again).contains("device"), "{}", text(&again));

    // GetCRL, signed and decrypted by the token key.
    let serial = serial_of(&cert);
    mef.run(&["revoke", &serial]);
    let crl = out.path().join("crl.pem");
    let said = ok(enrol(&[
        "scep",
        "getcrl",
        "--url",
        &url,
        "--key",
        &hsm.uri("scep-cli", Some("device-next")),
        "--cert",
        p(&renewed),
        "--out",
        p(&crl),
    ]));
    assert!(said.contains("(1 revoked)"), "{said}");
    assert!(key_files(out.path()).is_empty(), "{:?}", key_files(out.path()));
}

/// The certificate's serial number in hex, as `mef revoke` takes it.
fn serial_of(cert: &Path) -> String {
    let c = enrolkit_files::read_certificate(cert).unwrap();
    hex::encode(c.tbs_certificate.serial_number.as_bytes())
}

/// Shared by the agent tests: a device directory and its profile.
struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn once(&self) -> (i32, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
            .env("SOFTHSM2_CONF", &hsm().conf)
            .arg("agent")
            .arg("--profile")
            .arg(self.path("profile.toml"))
            .arg("--state-dir")
            .arg(self.path("state"))
            .arg("--once")
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), text(&o))
    }
    fn key_id(&self) -> String {
        let rec: toml::Table = std::fs::read_to_string(self.path("state/dev/credential.toml"))
            .unwrap()
            .parse()
            .unwrap();
        rec["key_id"].as_str().unwrap().to_owned()
    }
}

fn device(protocol: &str, url: &str, token: &str, key_type: &str, auth: &str, threshold: u8, pin: &str) -> Device {
    let d = Device {
        dir: tempfile::tempdir().unwrap(),
    };
    write_profile(&d, protocol, url, token, key_type, auth, threshold, pin);
    d
}

#[allow(clippy::too_many_arguments)]
fn write_profile(
    d: &Device,
    protocol: &str,
    url: &str,
    token: &str,
    key_type: &str,
    auth: &str,
    threshold: u8,
    pin: &str,
) {
    let body = format!(
        r#"
name = "dev"
protocol = "{protocol}"
url = "{url}"
[trust]
anchors = ["{pin}"]
[subject]
cn = "agent-hsm-{protocol}"
[key]
type = "{key_type}"
store = "{store}"
[auth]
{auth}
[renewal]
threshold_percent = {threshold}
jitter_percent = 0
[revocation]
check = "none"
[output]
certificate = "{dir}/out/cert.pem"
chain = "{dir}/out/chain.pem"
"#,
        store = hsm().uri(token, Some("agent")),
        dir = d.dir.path().display(),
    );
    std::fs::write(d.path("profile.toml"), body).unwrap();
}

fn fingerprint(pem: &Path) -> String {
    let c = enrolkit_files::read_certificate(pem).unwrap();
    enrolkit_pkix::fingerprint::sha256_der(&der::Encode::to_der(&c).unwrap())
}

/// The token key pair with this CKA_ID (hex).
fn token_key_by_id(token: &str, id: &str) -> Option<Pkcs11Key> {
    let uri = Pkcs11Uri::parse(&hsm().uri(token, None)).unwrap();
    Token::open(&uri)
        .unwrap()
        .find(Some("agent"), Some(&hex::decode(id).unwrap()))
        .ok()
}

#[test]
fn the_agent_enrols_and_renews_over_scep_with_its_keys_in_the_token() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let url = format!("http://127.0.0.1:{}/scep", mef.scep);
    let pin = fingerprint(&mef.st("ca.pem"));
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let auth = format!("challenge = \"{challenge}\"");
    let d = device("scep", &url, "agent-scep", "rsa2048", &auth, 50, &pin);

    let (code, out) = d.once();
    assert_eq!(code, 10, "first enrolment installs: {out}");
    let first_id = d.key_id();
    let first = token_key_by_id("agent-scep", &first_id).expect("the installed key pair is in the token");
    assert_never_left_the_token(&first);
    certified_by(&first, &d.path("out/cert.pem"));
    openssl_verify(&mef.st("ca.pem"), &d.path("out/cert.pem"));
    assert!(!d.path("state/dev/next-key.id").exists());
    assert_eq!(d.once().0, 0, "nothing to do below the threshold");

    // Past the threshold: a RenewalReq signed in the token by the current
    // key, for a new key pair generated in the token.
    write_profile(
        &d,
        "scep",
        &url,
        "agent-scep",
        "rsa2048",
        "challenge = \"spent\"",
        40,
        &pin,
    );
    let (code, out) = d.once();
    assert_eq!(code, 10, "renewal installs: {out}");
    let second_id = d.key_id();
    assert_ne!(second_id, first_id);
    let second = token_key_by_id("agent-scep", &second_id).unwrap();
    assert_never_left_the_token(&second);
    certified_by(&second, &d.path("out/cert.pem"));
    assert!(mef.log().contains("RenewalReq"), "{}", mef.log());
    // The replaced key pair stays until its certificate expires.
    assert!(token_key_by_id("agent-scep", &first_id).is_some());
    assert!(key_files(d.dir.path()).is_empty(), "{:?}", key_files(d.dir.path()));
}

#[test]
fn the_agent_enrols_over_est_with_its_p256_key_in_the_token() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| short_lived(cfg));
    let url = format!("https://127.0.0.1:{}", mef.openssl);
    let pin = fingerprint(&mef.st("ca.pem"));
    let d = Device {
        dir: tempfile::tempdir().unwrap(),
    };
    let kpm = d.path("kpm");
    std::fs::write(
        &kpm,
        mef.run(&["psk", "add", "dev-kpm", "--subject", "CN=agent-hsm-est"])
            .trim(),
    )
    .unwrap();
    let auth = format!("psk_identity = \"dev-kpm\"\npsk_file = \"{}\"", kpm.display());
    write_profile(&d, "est", &url, "agent-est", "p256", &auth, 50, &pin);

    let (code, out) = d.once();
    assert_eq!(code, 10, "first enrolment installs: {out}");
    let first_id = d.key_id();
    let key = token_key_by_id("agent-est", &first_id).unwrap();
    assert_never_left_the_token(&key);
    certified_by(&key, &d.path("out/cert.pem"));
    openssl_verify(&mef.st("ca.pem"), &d.path("out/cert.pem"));

    // Renewal is /simplereenroll authenticated by the current certificate,
    // whose key signs the TLS handshake in the token (rustls), for a new
    // key pair made in the token.
    write_profile(&d, "est", &url, "agent-est", "p256", &auth, 40, &pin);
    let (code, out) = d.once();
    assert_eq!(code, 10, "renewal installs: {out}");
    assert!(mef.log().contains("simplereenroll"), "{}", mef.log());
    assert_ne!(d.key_id(), first_id);
    certified_by(
        &token_key_by_id("agent-est", &d.key_id()).unwrap(),
        &d.path("out/cert.pem"),
    );
    assert!(key_files(d.dir.path()).is_empty(), "{:?}", key_files(d.dir.path()));

    // The server refuses the session the token key authenticates (here
    // because the certificate was revoked; the agent checks no revocation
    // in this profile): HTTP 403 on /simplereenroll, so the agent enrols
    // afresh with the profile's own credential, as a new request.
    let second_id = d.key_id();
    mef.run(&["revoke", &serial_of(&d.path("out/cert.pem"))]);
    let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "agent",
            "--profile",
            p(&d.path("profile.toml")),
            "--state-dir",
            p(&d.path("state")),
            "renew",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let (code, out) = d.once();
    assert_eq!(code, 10, "enrolment with the profile's credential installs: {out}");
    assert!(out.contains("authenticated by the token key failed"), "{out}");
    assert!(out.contains("HTTP 403"), "{out}");
    assert!(out.contains("enrolling with the profile's credentials"), "{out}");
    assert_ne!(d.key_id(), second_id);
    certified_by(
        &token_key_by_id("agent-est", &d.key_id()).unwrap(),
        &d.path("out/cert.pem"),
    );
    openssl_verify(&mef.st("ca.pem"), &d.path("out/cert.pem"));
}

#[test]
fn enrol_est_enroll_generates_its_key_in_the_token_and_destroys_it_when_refused() {
    let mef = Mef::start(&mef_bin(), &[], |_, cfg| {
        *cfg = cfg.replacen("basic = false\n", "basic = true\n", 1);
    });
    let dir = tempfile::tempdir().unwrap();
    let kpm = dir.path().join("kpm");
    std::fs::write(
        &kpm,
        mef.run(&["psk", "add", "cli-kpm", "--subject", "CN=est-cli"]).trim(),
    )
    .unwrap();
    let server = format!("https://127.0.0.1:{}", mef.openssl);
    let cert = dir.path().join("cert.pem");
    let est = |server: &str, auth: &[&str], object: &str| {
        let (ca, key_uri) = (mef.st("ca.pem"), hsm().uri("est-cli", Some(object)));
        let mut a = vec!["est", "--server", server, "--ta", p(&ca)];
        a.extend_from_slice(auth);
        a.extend_from_slice(&[
            "enroll",
            "--subject",
            "CN=est-cli",
            "--key-out",
            &key_uri,
            "--cert-out",
            p(&cert),
        ]);
        enrol(&a)
    };
    let out = ok(est(
        &server,
        &["--psk-identity", "cli-kpm", "--psk-file", p(&kpm)],
        "est-cli-key",
    ));
    assert!(out.contains("key generated in the token"), "{out}");
    let key = token_key("est-cli", "est-cli-key");
    assert_never_left_the_token(&key);
    certified_by(&key, &cert);
    openssl_verify(&mef.st("ca.pem"), &cert);
    assert!(key_files(dir.path()).is_empty(), "{:?}", key_files(dir.path()));
    // /simplereenroll authenticated by that certificate, the token signing
    // the TLS handshake (over TLS 1.3 and 1.2): the key is recertified.
    for tls in ["1.3", "1.2"] {
        let again = dir.path().join(format!("again-{tls}.pem"));
        let out = ok(enrol(&[
            "est",
            "--server",
            &server,
            "--ta",
            p(&mef.st("ca.pem")),
            "--tls",
            tls,
            "--cert",
            p(&cert),
            "--key",
            &hsm().uri("est-cli", Some("est-cli-key")),
            "reenroll",
            "--cert-out",
            p(&again),
        ]));
        certified_by(&key, &again);
        assert_ne!(serial_of(&again), serial_of(&cert), "{out}");
    }
    assert!(mef.log().contains("simplereenroll"), "{}", mef.log());
    // A refused enrolment (HTTP Basic with a wrong password: the key pair is
    // made after /csrattrs, then /simpleenroll answers 401) leaves no key
    // pair behind in the token.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let rustls = format!("https://127.0.0.1:{}", mef.rustls);
    let uri = hsm().uri("est-cli", Some("refused-key"));
    let auth = ["--basic-user", "dev", "--basic-password-file", p(&wrong)];
    let o = est(&rustls, &auth, "refused-key");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("401"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("key generated in the token: {}", &uri[..20])),
        "{}",
        text(&o)
    );
    let uri = Pkcs11Uri::parse(&uri).unwrap();
    assert!(
        Token::open(&uri).unwrap().find(Some("refused-key"), None).is_err(),
        "the refused request's key pair is still in the token"
    );
}

#[test]
fn mef_keeps_its_root_ca_and_ra_keys_in_the_token() {
    let hsm = hsm();
    let store = hsm.uri("mef", None);
    let mut mef = Mef::start(
        &mef_bin(),
        &["--key-store", &store, "--intermediate", "--ca-key", "p256"],
        |_, _| {},
    );
    let cfg = std::fs::read_to_string(mef.st("mef.toml")).unwrap();
    assert!(cfg.contains("ca_key = \"pkcs11:token=mef;"), "{cfg}");
    assert!(cfg.contains("ra_key = \"pkcs11:token=mef;"), "{cfg}");
    assert!(!cfg.contains("pin-value"), "{cfg}");
    assert!(key_files(&mef.dir.path().join("st"))
        .iter()
        .all(|f| f.ends_with("est-server.key.pem")));
    for label in ["mef-root", "mef-ca", "mef-ra"] {
        assert_never_left_the_token(&token_key("mef", label));
    }

    // A device enrols over SCEP: the RA key in the token decrypts the
    // request and signs the CertRep, the CA key in the token (ECDSA)
    // signs the certificate.
    let url = format!("http://127.0.0.1:{}/scep", mef.scep);
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let out = tempfile::tempdir().unwrap();
    let cert = out.path().join("cert.pem");
    ok(enrol(&[
        "scep",
        "enrol",
        "--url",
        &url,
        "--subject",
        "CN=device-of-a-token-ca",
        "--challenge",
        &challenge,
        "--key-out",
        p(&out.path().join("key.pem")),
        "--cert-out",
        p(&cert),
    ]));
    let chain = out.path().join("chain.pem");
    let mut both = std::fs::read(mef.st("ca.pem")).unwrap();
    both.extend(std::fs::read(mef.st("root.pem")).unwrap());
    std::fs::write(&chain, both).unwrap();
    openssl_verify(&chain, &cert);
    assert_eq!(
        token_key("mef", "mef-ca").spki(),
        &enrolkit_files::read_certificate(&mef.st("ca.pem"))
            .unwrap()
            .tbs_certificate
            .subject_public_key_info
    );

    // The CRL, signed in the token after a revocation, says so to OpenSSL.
    let serial = serial_of(&cert);
    mef.run(&["revoke", &serial]);
    let crl = out.path().join("crl.pem");
    ok(enrol(&[
        "scep",
        "getcrl",
        "--url",
        &url,
        "--key",
        p(&out.path().join("key.pem")),
        "--cert",
        p(&cert),
        "--out",
        p(&crl),
    ]));
    let o = Command::new("openssl")
        .args(["crl", "-noout", "-CAfile", p(&mef.st("ca.pem")), "-in", p(&crl)])
        .output()
        .unwrap();
    assert!(text(&o).contains("verify OK"), "{}", text(&o));
    let o = Command::new("openssl")
        .args([
            "verify",
            "-crl_check",
            "-CAfile",
            p(&chain),
            "-CRLfile",
            p(&crl),
            p(&cert),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("revoked"), "{}", text(&o));

    // CA rollover in the token: the next CA key is made there, certified by
    // the root key there; the rollover makes a new RA pair there too; after
    // a restart a device enrols under the new CA. No key file appears.
    let said = mef.run(&["ca", "next"]);
    assert!(said.contains("next CA key generated in the token"), "{said}");
    let both = out.path().join("next-chain.pem");
    openssl_verify(&mef.st("root.pem"), &mef.st("next-ca.pem"));
    mef.run(&["ca", "rollover"]);
    let cfg: toml::Table = std::fs::read_to_string(mef.st("mef.toml")).unwrap().parse().unwrap();
    let named = |k: &str| cfg[k].as_str().unwrap().to_owned();
    let object = |uri: &str| Pkcs11Uri::parse(uri).unwrap().object.unwrap();
    let (ca_label, ra_label) = (object(&named("ca_key")), object(&named("ra_key")));
    assert!(
        ca_label.starts_with("mef-ca-") && ra_label.starts_with("mef-ra-"),
        "{cfg}"
    );
    for label in [&ca_label, &ra_label] {
        assert_never_left_the_token(&token_key("mef", label));
    }
    assert!(key_files(&mef.dir.path().join("st"))
        .iter()
        .all(|f| f.ends_with("est-server.key.pem")));
    let new_ca = mef.st(&named("ca_certificate"));
    assert_eq!(
        token_key("mef", &ca_label).spki(),
        &enrolkit_files::read_certificate(&new_ca)
            .unwrap()
            .tbs_certificate
            .subject_public_key_info
    );
    mef.restart();
    let url = format!("http://127.0.0.1:{}/scep", mef.scep);
    let challenge = mef.run(&["challenge", "add"]).trim().to_owned();
    let cert2 = out.path().join("cert2.pem");
    ok(enrol(&[
        "scep",
        "enrol",
        "--url",
        &url,
        "--subject",
        "CN=device-after-rollover",
        "--challenge",
        &challenge,
        "--key-out",
        p(&out.path().join("key2.pem")),
        "--cert-out",
        p(&cert2),
    ]));
    let mut pems = std::fs::read(&new_ca).unwrap();
    pems.extend(std::fs::read(mef.st("root.pem")).unwrap());
    std::fs::write(&both, pems).unwrap();
    openssl_verify(&both, &cert2);
}

/// An OpenSSL command that must succeed.
fn openssl(args: &[&str]) {
    let o = Command::new("openssl").args(args).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

#[test]
fn the_agent_enrols_over_rspf_with_a_device_certificate_whose_key_is_in_the_token() {
    // The device's key pair is made in the token; the maker's CA (OpenSSL)
    // certifies its public key.
    let dir = tempfile::tempdir().unwrap();
    let d = |f: &str| dir.path().join(f);
    let key_uri = hsm().uri("agent-rspf", Some("device-77"));
    let (key, _) = enrolkit_pkcs11::KeyLocation::parse(&key_uri)
        .unwrap()
        .generate(enrolkit_keys::KeySpec::EcP256)
        .unwrap();
    std::fs::write(
        d("device.pub.pem"),
        der::EncodePem::to_pem(key.spki(), der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Maker CA",
        "-days",
        "30",
        "-keyout",
        p(&d("maker.key")),
        "-out",
        p(&d("maker.pem")),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=device-77.example.net",
        "-keyout",
        p(&d("placeholder.key")),
        "-out",
        p(&d("device.csr")),
    ]);
    std::fs::write(
        d("device.ext"),
        "subjectAltName=DNS:device-77.example.net\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        p(&d("device.csr")),
        "-force_pubkey",
        p(&d("device.pub.pem")),
        "-CA",
        p(&d("maker.pem")),
        "-CAkey",
        p(&d("maker.key")),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        p(&d("device.ext")),
        "-out",
        p(&d("device.pem")),
    ]);
    let maker = d("maker.pem");
    let mef = Mef::start(&mef_bin(), &[], |st, cfg| {
        std::fs::copy(&maker, st.join("maker.pem")).unwrap();
        cfg.push_str(
            r#"
[[rspf.enrolee]]
name = "device-77"
[rspf.enrolee.bootstrap]
framework = "certificate-based"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-77.example.net"
enrolment-expiry = 3600
[rspf.enrolee.bootstrap.authentication]
kind = "device-certificate"
device-id = "device-77.example.net"
trust-anchor = "maker.pem"
[rspf.enrolee.grant]
[rspf.enrolee.grant.certificate]
security-types = ["SAEF"]
ekus = ["1.3.6.1.5.5.7.3.2"]
"#,
        );
    });
    let pin = fingerprint(&mef.st("ca.pem"));
    let dev = Device {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::write(
        dev.path("profile.toml"),
        format!(
            r#"
name = "dev"
protocol = "rspf"
url = "https://127.0.0.1:{}"
[trust]
anchors = ["{pin}"]
[subject]
cn = "ae-77.example.net"
[rspf]
certificate = "{}"
key = "{key_uri}"
[revocation]
check = "none"
[output]
key = "{}"
certificate = "{}"
"#,
            mef.openssl,
            p(&d("device.pem")),
            p(&dev.path("out/key.pem")),
            p(&dev.path("out/cert.pem")),
        ),
    )
    .unwrap();
    let (code, out) = dev.once();
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("Enrolment Exchange with the device certificate"), "{out}");
    openssl_verify(&mef.st("ca.pem"), &dev.path("out/cert.pem"));
    // The device key signed the handshakes in the token and never left it.
    assert_never_left_the_token(&token_key("agent-rspf", "device-77"));
    assert!(mef.run(&["rspf", "list"]).contains("certificateEnrolment=ok"));
}
