//! `enrol cmp` and the agent's `protocol = "cmp"` against real peers on
//! 127.0.0.1, ports chosen at run time:
//!
//! - OpenSSL's mock CMP server (`openssl cmp -port`, OpenSSL 3.0, which
//!   speaks only the legacy PasswordBasedMac): ir with `--mac pbm`, kur
//!   signed with the current certificate, rr; the mock answers a fixed
//!   `-rsp_cert`, so the key is made first and the mock given a certificate
//!   for it. Refusals: a wrong secret, an issued certificate that does not
//!   chain to `--trusted`, a server certificate neither pinned nor an RA,
//!   an rr for a certificate the mock does not know;
//! - `mef`: ir with a PBMAC1 MAC keyed by `mef challenge add --cmp`, the
//!   spent secret refused with the PKIStatusInfo printed, genm, kur, rr,
//!   then the revoked certificate refused;
//! - a request `mef` holds for an operator: pollReq until approved;
//! - the agent enrols against `mef` with a vendor certificate (3GPP TS
//!   33.310 §9) and renews by kur;
//! - the captured `testvectors/cmp/enrol/` exchange parses and verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use enrolkit_cmp::{BodyType, Limits, PkiMessage, ProtectionPolicy, SharedSecret};
use enrolkit_testkit::pki::{openssl_ca, vendor_device};
use enrolkit_testkit::Mef;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use x509_cert::der::DecodePem;
use x509_cert::Certificate;

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

fn openssl(args: &[&str]) -> Output {
    let o = Command::new("openssl").args(args).output().expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    o
}

fn openssl_version() {
    let v = openssl(&["version"]);
    println!("peer: {}", String::from_utf8_lossy(&v.stdout).trim());
}

fn enrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_enrol"))
        .arg("cmp")
        .args(args)
        .output()
        .expect("enrol")
}

fn enrol_ok(args: &[&str]) -> String {
    let o = enrol(args);
    assert!(o.status.success(), "enrol cmp {args:?}:\n{}", text(&o));
    text(&o)
}

fn enrol_fails(args: &[&str]) -> String {
    let o = enrol(args);
    assert!(!o.status.success(), "enrol cmp {args:?} succeeded:\n{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem(std::fs::read(path).unwrap()).unwrap()
}

fn ec_key(dir: &Path, name: &str) -> PathBuf {
    let k = dir.join(format!("{name}.key"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        p(&k),
    ]);
    k
}

/// A certificate for `key` under `ca` (an end entity, `ext` its extensions).
fn issue(dir: &Path, name: &str, subject: &str, key: &Path, ca: (&Path, &Path), ext: &str) -> PathBuf {
    let (csr, crt, extf) = (
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extf, ext).unwrap();
    openssl(&["req", "-new", "-key", p(key), "-subj", subject, "-out", p(&csr)]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-CA",
        p(ca.0),
        "-CAkey",
        p(ca.1),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        p(&extf),
        "-out",
        p(&crt),
    ]);
    crt
}

const EE: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n";

/// An `openssl cmp` mock server on a free port, killed on drop.
struct Mock(Child, u16);
impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mock(dir: &Path, args: &[&str]) -> Mock {
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("openssl")
            .args(["cmp", "-port", &port.to_string()])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_none() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Mock(child, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the openssl cmp mock server did not start");
}

#[test]
fn enrol_cmp_against_the_openssl_mock_server_ir_kur_rr() {
    openssl_version();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (ca, ca_key) = openssl_ca(dir, "ca", "/CN=Operator Root CA/O=Operator");
    let (other_ca, _) = openssl_ca(dir, "other-ca", "/CN=Operator Root CA/O=Operator");
    // The mock's own certificate: no id-kp-cmcRA, so only a pin makes it the server.
    let srv_key = ec_key(dir, "srv");
    let srv = issue(dir, "srv", "/CN=CMP mock/O=Operator", &srv_key, (&ca, &ca_key), EE);
    // enrol's key first, then the certificate the mock will answer with.
    let k1 = ec_key(dir, "device");
    let c1 = issue(dir, "device-issued", "/CN=bts-1/O=Operator", &k1, (&ca, &ca_key), EE);
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret-ref-pass\n").unwrap();
    let dump = dir.join("dump");
    std::fs::create_dir(&dump).unwrap();

    // ir, PasswordBasedMac both ways, explicit confirmation.
    let m = mock(
        dir,
        &[
            "-srv_ref",
            "server-ref",
            "-srv_secret",
            "pass:s3cret-ref-pass",
            "-rsp_cert",
            p(&c1),
            "-rsp_capubs",
            p(&ca),
        ],
    );
    let url = format!("http://127.0.0.1:{}/pkix/", m.1);
    let out = dir.join("ir.pem");
    let chain = dir.join("ir-chain.pem");
    let mac = [
        "--url",
        &url,
        "--ref",
        "bts-1",
        "--secret-file",
        p(&secret),
        "--mac",
        "pbm",
    ];
    let log = enrol_ok(
        &[
            &mac[..],
            &[
                "--trusted",
                p(&ca),
                "--dump",
                p(&dump),
                "ir",
                "--subject",
                "CN=bts-1,O=Operator",
            ],
            &["--new-key", p(&k1), "--cert-out", p(&out), "--chain-out", p(&chain)],
        ]
        .concat(),
    );
    assert!(log.contains("certConf sent, pkiConf received"), "{log}");
    assert_eq!(cert(&out), cert(&c1));
    assert_eq!(cert(&chain), cert(&ca), "the chain is the validated path: the anchor");
    let dumped: Vec<_> = std::fs::read_dir(&dump)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(dumped.len(), 4, "ir, ip, certConf, pkiConf: {dumped:?}");

    // A wrong secret: the mock's answer does not verify; nothing is written.
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    let out2 = dir.join("ir-wrong.pem");
    let err = enrol_fails(&[
        "--url",
        &url,
        "--ref",
        "bts-1",
        "--secret-file",
        p(&wrong),
        "--mac",
        "pbm",
        "--trusted",
        p(&ca),
        "ir",
        "--subject",
        "CN=bts-1,O=Operator",
        "--new-key",
        p(&k1),
        "--cert-out",
        p(&out2),
    ]);
    assert!(err.contains("enrol: "), "{err}");
    assert!(!out2.exists());
    // The issued certificate does not chain to the pinned anchor: refused, not written.
    let err = enrol_fails(
        &[
            &mac[..],
            &["--trusted", p(&other_ca), "ir", "--subject", "CN=bts-1,O=Operator"],
            &["--new-key", p(&k1), "--cert-out", p(&out2)],
        ]
        .concat(),
    );
    assert!(
        err.contains("the issued certificate") && err.contains("not trusted"),
        "{err}"
    );
    assert!(!out2.exists());
    drop(m);

    // Signed: the mock signs with srv (pinned), checks our signature against the CA.
    let m = mock(
        dir,
        &[
            "-srv_cert",
            p(&srv),
            "-srv_key",
            p(&srv_key),
            "-srv_trusted",
            p(&ca),
            "-rsp_cert",
            p(&c1),
        ],
    );
    let url = format!("http://127.0.0.1:{}/pkix/", m.1);
    let signed = ["--url", &url, "--cert", p(&c1), "--key", p(&k1), "--trusted", p(&ca)];
    // OpenSSL 3.0's mock answers a kur only for its -rsp_cert, and that
    // certifies the key it has: the kur keeps the key.
    let out3 = dir.join("kur.pem");
    let log = enrol_ok(
        &[
            &signed[..],
            &[
                "--server-cert",
                p(&srv),
                "kur",
                "--new-key",
                p(&k1),
                "--cert-out",
                p(&out3),
            ],
        ]
        .concat(),
    );
    assert!(log.contains("issued O=Operator,CN=bts-1"), "{log}");
    assert_eq!(cert(&out3), cert(&c1));
    // Without the pin, the mock's certificate is no RA of the anchor: refused.
    let err = enrol_fails(&[&signed[..], &["kur", "--new-key", p(&k1), "--cert-out", p(&out2)]].concat());
    assert!(
        err.contains("protection certificate") && err.contains("not trusted"),
        "{err}"
    );
    assert!(!out2.exists());
    // rr for the certificate the mock knows: revoked.
    let log = enrol_ok(&[&signed[..], &["--server-cert", p(&srv), "rr", "--reason", "superseded"]].concat());
    assert!(log.contains("revoked O=Operator,CN=bts-1"), "{log}");
    // rr for another certificate: the mock's refusal, its PKIStatusInfo printed.
    let c_other = issue(dir, "device-other", "/CN=bts-1/O=Operator", &k1, (&ca, &ca_key), EE);
    let err = enrol_fails(&[
        "--url",
        &url,
        "--cert",
        p(&c_other),
        "--key",
        p(&k1),
        "--trusted",
        p(&ca),
        "--server-cert",
        p(&srv),
        "rr",
    ]);
    assert!(
        err.contains("the CMP server refused") && err.contains("rejection"),
        "{err}"
    );
}

// ---------------------------------------------------------------- mef

fn mef_with_vendor(short_lived: bool) -> (Mef, PathBuf, PathBuf) {
    let mut vendor = None;
    let m = Mef::start(&mef_bin(), &[], |st, cfg| {
        if short_lived {
            // 45% through their life when issued (1 h ahead, 50 min back):
            // a 50% threshold keeps them, 40% renews them at once.
            *cfg = cfg.replace(
                "validity_days = 365\n",
                "validity_days = 365\nvalidity_seconds = 3600\nbackdate_seconds = 3000\n",
            );
        }
        vendor = Some(openssl_ca(st, "vendor-ca", "/CN=Vendor Root CA/O=Vendor"));
        cfg.push_str(
            "\n[authorisation.vendor]\nanchors = [\"vendor-ca.pem\"]\n\
             subject_template = \"CN={serialNumber},O=Operator\"\n\
             dns_templates = [\"{serialNumber}.ran.example.net\"]\n",
        );
    });
    let (vca, vkey) = vendor.unwrap();
    (m, vca, vkey)
}

fn verify(ca: &Path, c: &Path) {
    let o = openssl(&["verify", "-CAfile", p(ca), p(c)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(": OK"));
}

#[test]
fn enrol_cmp_against_mef_ir_with_a_mac_genm_kur_and_rr() {
    let (m, _, _) = mef_with_vendor(false);
    let dir = m.dir.path();
    let ca = m.st("ca.pem");
    let url = format!("http://127.0.0.1:{}/.well-known/cmp", m.scep);
    let secret = dir.join("cmp-secret");
    let s = m.run(&["challenge", "add", "--cmp", "--label", "bts-7", "--subject", "CN=bts-7"]);
    std::fs::write(&secret, s.trim()).unwrap();

    // ir, PBMAC1 (the default), a new key generated and written 0600 first.
    let (k, c, chain) = (dir.join("bts-7.key"), dir.join("bts-7.pem"), dir.join("chain.pem"));
    let mac = [
        "--url",
        &url,
        "--ref",
        "bts-7",
        "--secret-file",
        p(&secret),
        "--trusted",
        p(&ca),
    ];
    let log = enrol_ok(
        &[
            &mac[..],
            &[
                "ir",
                "--subject",
                "CN=bts-7",
                "--key-out",
                p(&k),
                "--cert-out",
                p(&c),
                "--chain-out",
                p(&chain),
            ],
        ]
        .concat(),
    );
    assert!(log.contains("issued CN=bts-7"), "{log}");
    assert!(log.contains("certConf sent, pkiConf received"), "{log}");
    assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
    verify(&ca, &c);
    assert!(m.log().contains("body=\"certConf\""), "mef saw the certConf");
    // The spent secret: mef's error, signed by its RA, its PKIStatusInfo
    // printed (a spent secret looks like a wrong one: nothing is derived).
    let err = enrol_fails(
        &[
            &mac[..],
            &[
                "ir",
                "--subject",
                "CN=bts-7",
                "--key-out",
                p(&dir.join("again.key")),
                "--cert-out",
            ],
            &[p(&dir.join("again.pem"))],
        ]
        .concat(),
    );
    assert!(
        err.contains("the CMP server refused") && err.contains("failInfo badMessageCheck"),
        "{err}"
    );
    assert!(!dir.join("again.pem").exists());

    // genm, signed with the new certificate: the CA certificates, written.
    let signed = ["--url", &url, "--cert", p(&c), "--key", p(&k), "--trusted", p(&ca)];
    let cas = dir.join("cas.pem");
    let log = enrol_ok(&[&signed[..], &["genm", "--out", p(&cas)]].concat());
    let fp = enrolkit_pkix::fingerprint::sha256(&cert(&ca));
    assert!(log.contains(&format!("caCerts {fp}")), "{log}");
    assert!(log.contains("rootCaKeyUpdate none"), "{log}");
    assert_eq!(cert(&cas), cert(&ca));

    // kur: a new key, the same names, signed with the current certificate.
    let (k2, c2) = (dir.join("bts-7b.key"), dir.join("bts-7b.pem"));
    let log = enrol_ok(
        &[
            &signed[..],
            &["kur", "--key-out", p(&k2), "--cert-out", p(&c2), "--implicit-confirm"],
        ]
        .concat(),
    );
    assert!(log.contains("implicitConfirm granted"), "{log}");
    verify(&ca, &c2);
    assert_eq!(cert(&c2).tbs_certificate.subject, cert(&c).tbs_certificate.subject);
    assert_ne!(
        cert(&c2).tbs_certificate.subject_public_key_info,
        cert(&c).tbs_certificate.subject_public_key_info
    );

    // rr by the holder, then the revoked certificate no longer authorises a kur.
    let signed2 = ["--url", &url, "--cert", p(&c2), "--key", p(&k2), "--trusted", p(&ca)];
    let log = enrol_ok(&[&signed2[..], &["rr", "--reason", "superseded"]].concat());
    assert!(log.contains("revoked CN=bts-7"), "{log}");
    let err = enrol_fails(
        &[
            &signed2[..],
            &[
                "kur",
                "--key-out",
                p(&dir.join("k3.key")),
                "--cert-out",
                p(&dir.join("c3.pem")),
            ],
        ]
        .concat(),
    );
    assert!(
        err.contains("the CMP server refused") && err.contains("rejection"),
        "{err}"
    );
}

#[test]
fn enrol_cmp_polls_a_held_request_until_an_operator_approves_it() {
    let m = Mef::start(&mef_bin(), &[], |_, cfg| {
        *cfg = cfg
            .replace("manual_approval = false", "manual_approval = true")
            .replace("check_after_seconds = 10", "check_after_seconds = 1");
    });
    let dir = m.dir.path();
    let secret = dir.join("cmp-secret");
    let s = m.run(&["challenge", "add", "--cmp", "--label", "bts-9"]);
    std::fs::write(&secret, s.trim()).unwrap();
    let (k, c) = (dir.join("bts-9.key"), dir.join("bts-9.pem"));
    let url = format!("http://127.0.0.1:{}/.well-known/cmp", m.scep);
    let client = Command::new(env!("CARGO_BIN_EXE_enrol"))
        .args([
            "cmp",
            "--url",
            &url,
            "--ref",
            "bts-9",
            "--secret-file",
            p(&secret),
            "--trusted",
        ])
        .arg(m.st("ca.pem"))
        .args(["ir", "--subject", "CN=bts-9", "--key-out", p(&k), "--cert-out", p(&c)])
        .args(["--poll-interval", "1", "--max-wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let list = m.run(&["scep", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.starts_with("cmp-")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no held CMP request:\n{}", m.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!c.exists(), "nothing written while held");
    let mut f = line.split_whitespace();
    let (txid, key_id) = (f.next().unwrap(), f.next().unwrap());
    std::thread::sleep(Duration::from_millis(2500));
    m.run(&["scep", "pending", "approve", txid, key_id]);
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\nmef:\n{}", text(&out), m.log());
    let log = text(&out);
    assert!(log.contains("issued CN=bts-9") && log.contains("pollReq"), "{log}");
    assert!(m.log().matches("body=\"pollReq\"").count() >= 2, "{}", m.log());
    verify(&m.st("ca.pem"), &c);
}

#[test]
fn the_agent_enrols_by_cmp_with_a_vendor_certificate_then_renews_by_kur() {
    let (m, vca, vkey) = mef_with_vendor(true);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (bs, bs_key) = vendor_device(dir, "enb-42", "SN-0042", (&vca, &vkey));
    let ca = m.st("ca.pem");
    let pin = enrolkit_pkix::fingerprint::sha256(&cert(&ca));
    let profile = dir.join("profile.toml");
    let write_profile = |threshold: u8| {
        std::fs::write(
            &profile,
            format!(
                "name = \"bts\"\nprotocol = \"cmp\"\nurl = \"http://127.0.0.1:{port}/.well-known/cmp\"\n\
                 [trust]\nanchors = [\"{pin}\"]\n[subject]\ncn = \"enb-42\"\n\
                 [renewal]\nthreshold_percent = {threshold}\njitter_percent = 0\n\
                 [revocation]\ncheck = \"none\"\n\
                 [cmp]\ncertificate = \"{bs}\"\nkey = \"{bs_key}\"\n\
                 [output]\ncertificate = \"{dir}/op.pem\"\nkey = \"{dir}/op.key\"\nchain = \"{dir}/op-chain.pem\"\n",
                port = m.scep,
                bs = p(&bs),
                bs_key = p(&bs_key),
                dir = p(dir),
            ),
        )
        .unwrap();
    };
    let once = || {
        let o = Command::new(env!("CARGO_BIN_EXE_enrol"))
            .args([
                "agent",
                "--profile",
                p(&profile),
                "--state-dir",
                p(&dir.join("state")),
                "--once",
            ])
            .output()
            .unwrap();
        (o.status.code().unwrap_or(-1), text(&o))
    };
    write_profile(50);
    let (code, log) = once();
    assert_eq!(code, 10, "a new credential installed:\n{log}\nmef:\n{}", m.log());
    let op = dir.join("op.pem");
    verify(&ca, &op);
    let first = cert(&op);
    // 3GPP: the names come from mef's vendor templates, not the profile.
    assert_eq!(first.tbs_certificate.subject.to_string(), "CN=SN-0042,O=Operator");
    assert_eq!(
        std::fs::metadata(dir.join("op.key")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Young enough: nothing to do.
    let (code, log) = once();
    assert_eq!(code, 0, "{log}");
    // Renewal is due at 40% of the lifetime: a kur signed with the operator certificate.
    write_profile(40);
    let (code, log) = once();
    assert_eq!(code, 10, "renewed:\n{log}\nmef:\n{}", m.log());
    assert!(log.contains("kur answered"), "{log}");
    let second = cert(&op);
    verify(&ca, &op);
    assert_ne!(
        second.tbs_certificate.serial_number,
        first.tbs_certificate.serial_number
    );
    assert_ne!(
        second.tbs_certificate.subject_public_key_info, first.tbs_certificate.subject_public_key_info,
        "a new key"
    );
    assert_eq!(second.tbs_certificate.subject, first.tbs_certificate.subject);
    let key = enrolkit_files::read_key(&dir.join("op.key")).unwrap();
    assert_eq!(
        enrolkit_keys::Signer::public_key(&key),
        &second.tbs_certificate.subject_public_key_info
    );
    assert!(m.log().contains("body=\"kur\""), "mef saw a kur");
}

// ---------------------------------------------------------------- vectors

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/cmp/enrol")
}

/// The exchange `generate-enrol.sh` captured (enrol's requests, the mock's
/// answers): each parses, MACs verify with the secret and not another,
/// signatures verify, and each answer echoes its request's transactionID
/// and senderNonce.
#[test]
fn the_captured_enrol_exchanges_with_the_mock_parse_and_verify() {
    let secret = SharedSecret::new(
        std::fs::read_to_string(vectors().join("secret.txt"))
            .unwrap()
            .trim()
            .as_bytes(),
    );
    let wrong = SharedSecret::new(b"wrong");
    let policy = ProtectionPolicy::default();
    let mut seen = Vec::new();
    for exchange in ["ir", "kur", "rr"] {
        let d = vectors().join(exchange);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(files.len() >= 2, "{exchange}: {files:?}");
        let mut last: Option<PkiMessage> = None;
        for f in files {
            let m = PkiMessage::parse(&std::fs::read(&f).unwrap(), &Limits::default()).unwrap();
            if exchange == "ir" {
                m.verify_mac(&secret, &policy).unwrap();
                assert!(m.verify_mac(&wrong, &policy).is_err(), "{f:?}");
            } else {
                m.verify_signature(&policy).unwrap();
            }
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if name.contains("answer") {
                let req = last.as_ref().unwrap();
                assert_eq!(m.header.transaction_id(), req.header.transaction_id(), "{f:?}");
                assert_eq!(m.header.recip_nonce(), req.header.sender_nonce(), "{f:?}");
            }
            seen.push(m.body.body_type());
            last = Some(m);
        }
    }
    for t in [
        BodyType::Ir,
        BodyType::Ip,
        BodyType::CertConf,
        BodyType::PkiConf,
        BodyType::Kur,
        BodyType::Kup,
        BodyType::Rr,
        BodyType::Rp,
    ] {
        assert!(seen.contains(&t), "{t} captured: {seen:?}");
    }
}
