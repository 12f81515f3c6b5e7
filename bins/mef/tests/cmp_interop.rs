//! `mef`'s CMP server (`/.well-known/cmp`) against OpenSSL's CMP client
//! (`openssl cmp`; OpenSSL 3.0 speaks only the legacy PasswordBasedMac),
//! on 127.0.0.1 with ports chosen at run time:
//!
//! - ir protected by a MAC keyed with a CMP challenge (`mef challenge add
//!   --cmp`, senderKID = its label), with and without implicitConfirm; the
//!   spent secret is refused with a CMP error OpenSSL prints;
//! - ir signed with a vendor certificate (3GPP TS 33.310 §9), named by
//!   `[authorisation.vendor]`'s templates and verified by `openssl verify`
//!   against mef's CA; a vendor certificate of an unknown CA is refused;
//! - kur with the operator certificate (same names), and a kur for another
//!   certificate's names refused; p10cr; genm (the genp read from
//!   `-rspout`); rr by the holder, after which the certificate no longer
//!   authorises;
//! - a request held for an operator: PENDING, pollReq, approval.
//!
//! Every client run passes `-srvcert` (mef's RA certificate, which signs
//! its errors and signed answers) or `-trusted` (mef's CA): no option that
//! skips validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{openssl_ca, p, run, subject, vendor_device};
use enrolkit_cmp::{BodyType, GenResponse, PkiBody, PkiMessage};
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use x509_cert::der::DecodePem;
use x509_cert::Certificate;

fn mef_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mef"))
}

/// `openssl cmp` against `m`'s CMP path, with `args`: (success, what it printed).
fn cmp(m: &Mef, args: &[&str]) -> (bool, String) {
    let out: Output = Command::new("openssl")
        .args([
            "cmp",
            "-server",
            &format!("127.0.0.1:{}", m.scep),
            "-path",
            ".well-known/cmp",
            "-msg_timeout",
            "20",
            "-total_timeout",
            "60",
        ])
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// As [`cmp`], which must succeed.
fn cmp_ok(m: &Mef, args: &[&str]) -> String {
    let (ok, log) = cmp(m, args);
    assert!(ok, "openssl cmp {args:?}:\n{log}\nmef:\n{}", m.log());
    log
}

/// As [`cmp`], which must fail with a CMP error naming `fail_info` and `text`.
fn cmp_refused(m: &Mef, args: &[&str], fail_info: &str, text: &str) {
    let (ok, log) = cmp(m, args);
    assert!(!ok, "openssl cmp {args:?} succeeded:\n{log}");
    assert!(log.contains("received ERROR"), "{log}");
    assert!(log.contains(&format!("PKIFailureInfo: {fail_info}")), "{log}");
    assert!(log.contains(text), "{log}");
}

fn rsa_key(dir: &Path, name: &str) -> PathBuf {
    let k = dir.join(format!("{name}.key"));
    run("openssl", &["genrsa", "-out", p(&k), "2048"]);
    k
}

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem(std::fs::read(path).unwrap()).unwrap()
}

/// A CMP challenge for `label`: its secret as `openssl cmp -secret` takes it.
fn challenge(m: &Mef, label: &str, extra: &[&str]) -> String {
    let mut args = vec!["challenge", "add", "--cmp", "--label", label];
    args.extend_from_slice(extra);
    format!("pass:{}", m.run(&args).trim())
}

/// How many `certConf` the server logged.
fn cert_confs(m: &Mef) -> usize {
    m.log().matches("body=\"certConf\"").count()
}

fn openssl_version() {
    let v = run("openssl", &["version"]);
    println!("peer: {}", String::from_utf8_lossy(&v.stdout).trim());
}

#[test]
fn openssl_cmp_enrols_renews_revokes_and_is_refused_by_mef() {
    openssl_version();
    let mut vendor = None;
    let m = Mef::start(mef_bin(), &[], |st, cfg| {
        vendor = Some(openssl_ca(st, "vendor-ca", "/CN=Vendor Root CA/O=Vendor"));
        cfg.push_str(
            "\n[authorisation.vendor]\nanchors = [\"vendor-ca.pem\"]\n\
             subject_template = \"CN={serialNumber},O=Operator\"\n\
             dns_templates = [\"{serialNumber}.ran.example.net\"]\n",
        );
    });
    let (vca, vkey) = vendor.unwrap();
    let dir = m.dir.path();
    let (ra, ca) = (m.st("ra.pem"), m.st("ca.pem"));
    let (ra, ca) = (p(&ra), p(&ca));

    // ir, MAC with a CMP challenge bound to CN=bts-1: ip, certConf, pkiConf.
    let secret = challenge(&m, "bts-1", &["--subject", "CN=bts-1"]);
    let k1 = rsa_key(dir, "bts-1");
    let c1 = dir.join("bts-1.pem");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-1",
            "-secret",
            &secret,
            "-srvcert",
            ra,
            "-newkey",
            p(&k1),
            "-subject",
            "/CN=bts-1",
            "-certout",
            p(&c1),
        ],
    );
    assert!(log.contains("received PKICONF"), "{log}");
    assert_eq!(subject(&c1), "subject=CN = bts-1");
    run("openssl", &["verify", "-CAfile", ca, p(&c1)]);
    assert_eq!(cert_confs(&m), 1);
    // The secret was consumed with the issuance: refused, said in a signed error.
    cmp_refused(
        &m,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-1",
            "-secret",
            &secret,
            "-srvcert",
            ra,
            "-newkey",
            p(&k1),
            "-subject",
            "/CN=bts-1",
            "-certout",
            p(&dir.join("again.pem")),
        ],
        // Spent, unknown and wrong look alike to the sender (nothing is
        // derived for a spent secret); mef's log says which it was.
        "badMessageCheck",
        "",
    );
    assert!(
        m.log().contains("no usable challenge for this senderKID"),
        "{}",
        m.log()
    );
    // A wrong secret for a known label: the MAC does not verify.
    cmp_refused(
        &m,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-1",
            "-secret",
            "pass:wrong",
            "-srvcert",
            ra,
            "-newkey",
            p(&k1),
            "-subject",
            "/CN=bts-1",
            "-certout",
            p(&dir.join("again.pem")),
        ],
        "badMessageCheck",
        "",
    );

    // ir, MAC, implicitConfirm asked and granted: no certConf.
    let secret2 = challenge(&m, "bts-2", &[]);
    let k2 = rsa_key(dir, "bts-2");
    let c2 = dir.join("bts-2.pem");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "ir",
            "-ref",
            "bts-2",
            "-secret",
            &secret2,
            "-srvcert",
            ra,
            "-implicit_confirm",
            "-newkey",
            p(&k2),
            "-subject",
            "/CN=bts-2",
            "-certout",
            p(&c2),
        ],
    );
    assert!(!log.contains("sending CERTCONF"), "{log}");
    assert_eq!(cert_confs(&m), 1, "{}", m.log());
    run("openssl", &["verify", "-CAfile", ca, p(&c2)]);

    // 3GPP: ir signed with the vendor certificate; the answer validated
    // against mef's CA (-trusted); the names are the template's, not the request's.
    let (bs, bs_key) = vendor_device(dir, "enb-42", "SN-0042", (&vca, &vkey));
    let op_key = rsa_key(dir, "enb-42-op");
    let (op, capubs) = (dir.join("enb-42-op.pem"), dir.join("capubs.pem"));
    cmp_ok(
        &m,
        &[
            "-cmd",
            "ir",
            "-cert",
            p(&bs),
            "-key",
            p(&bs_key),
            "-trusted",
            ca,
            "-newkey",
            p(&op_key),
            "-subject",
            "/CN=whatever",
            "-certout",
            p(&op),
            "-cacertsout",
            p(&capubs),
        ],
    );
    assert_eq!(subject(&op), "subject=O = Operator, CN = SN-0042");
    run("openssl", &["verify", "-CAfile", ca, p(&op)]);
    assert_eq!(cert(&capubs), cert(&m.st("ca.pem")), "caPubs is the operator root");
    // A vendor certificate from a CA mef does not know (same names): refused.
    let (other_ca, other_key) = openssl_ca(dir, "other-ca", "/CN=Vendor Root CA/O=Vendor");
    let (fake, fake_key) = vendor_device(dir, "enb-fake", "SN-0042", (&other_ca, &other_key));
    cmp_refused(
        &m,
        &[
            "-cmd",
            "ir",
            "-cert",
            p(&fake),
            "-key",
            p(&fake_key),
            "-srvcert",
            ra,
            "-newkey",
            p(&op_key),
            "-subject",
            "/CN=whatever",
            "-certout",
            p(&dir.join("fake-op.pem")),
        ],
        "notAuthorized",
        "authentication required",
    );

    // kur with the operator certificate: a new key, the same names.
    let op2_key = rsa_key(dir, "enb-42-op2");
    let op2 = dir.join("enb-42-op2.pem");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "kur",
            "-cert",
            p(&op),
            "-key",
            p(&op_key),
            "-srvcert",
            ra,
            "-newkey",
            p(&op2_key),
            "-certout",
            p(&op2),
        ],
    );
    assert!(log.contains("received KUP"), "{log}");
    assert_eq!(subject(&op2), "subject=O = Operator, CN = SN-0042");
    assert_ne!(
        cert(&op2).tbs_certificate.subject_public_key_info,
        cert(&op).tbs_certificate.subject_public_key_info
    );
    run("openssl", &["verify", "-CAfile", ca, p(&op2)]);
    // A kur asking for another certificate's names: refused.
    cmp_refused(
        &m,
        &[
            "-cmd",
            "kur",
            "-cert",
            p(&op2),
            "-key",
            p(&op2_key),
            "-srvcert",
            ra,
            "-newkey",
            p(&op_key),
            "-subject",
            "/CN=bts-1",
            "-certout",
            p(&dir.join("stolen.pem")),
        ],
        "badCertTemplate",
        "differs from the current certificate",
    );

    // p10cr: a PKCS#10 request made by OpenSSL, signed for by the operator certificate.
    let csr = dir.join("p10.csr");
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            p(&op_key),
            "-subj",
            "/O=Operator/CN=SN-0042",
            "-out",
            p(&csr),
        ],
    );
    let p10 = dir.join("p10.pem");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "p10cr",
            "-cert",
            p(&op2),
            "-key",
            p(&op2_key),
            "-srvcert",
            ra,
            "-csr",
            p(&csr),
            "-certout",
            p(&p10),
        ],
    );
    assert!(log.contains("received CP"), "{log}");
    assert_eq!(subject(&p10), "subject=O = Operator, CN = SN-0042");
    run("openssl", &["verify", "-CAfile", ca, p(&p10)]);

    // genm for the CA certificates (MAC); the genp as OpenSSL received it.
    let secret3 = challenge(&m, "bts-3", &[]);
    let rspout = dir.join("genp.der");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "genm",
            "-ref",
            "bts-3",
            "-secret",
            &secret3,
            "-srvcert",
            ra,
            "-infotype",
            "caCerts",
            "-rspout",
            p(&rspout),
        ],
    );
    assert!(log.contains("id-it-caCerts"), "{log}");
    let genp = PkiMessage::parse(&std::fs::read(&rspout).unwrap(), &Default::default()).unwrap();
    let PkiBody::GenP(itavs) = &genp.body else {
        panic!("{:?}", genp.body.body_type())
    };
    let answers = itavs
        .iter()
        .map(|i| GenResponse::from_itav(i).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(answers, [GenResponse::CaCerts(vec![cert(&m.st("ca.pem"))])]);
    assert_eq!(genp.body.body_type(), BodyType::GenP);

    // rr by the holder; the revoked certificate then authorises nothing.
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "rr",
            "-cert",
            p(&op2),
            "-key",
            p(&op2_key),
            "-srvcert",
            ra,
            "-oldcert",
            p(&op2),
            "-revreason",
            "4",
        ],
    );
    assert!(log.contains("revocation accepted"), "{log}");
    cmp_refused(
        &m,
        &[
            "-cmd",
            "kur",
            "-cert",
            p(&op2),
            "-key",
            p(&op2_key),
            "-srvcert",
            ra,
            "-newkey",
            p(&op_key),
            "-certout",
            p(&dir.join("after-rr.pem")),
        ],
        "certRevoked",
        "is revoked",
    );

    // Counted under protocol="cmp".
    let metrics = enrolkit_testkit::http::get(m.admin, "/metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("protocol=\"cmp\""), "{text}");
    assert!(text.contains("operation=\"ir\""), "{text}");
}

#[test]
fn a_held_cmp_request_is_polled_until_an_operator_approves_it() {
    openssl_version();
    let m = Mef::start(mef_bin(), &[], |_, cfg| {
        *cfg = cfg
            .replace("manual_approval = false", "manual_approval = true")
            .replace("check_after_seconds = 10", "check_after_seconds = 1");
    });
    let dir = m.dir.path();
    let secret = challenge(&m, "bts-9", &[]);
    let k = rsa_key(dir, "bts-9");
    let c = dir.join("bts-9.pem");
    let ra = m.st("ra.pem");
    let client = Command::new("openssl")
        .args([
            "cmp",
            "-server",
            &format!("127.0.0.1:{}", m.scep),
            "-path",
            ".well-known/cmp",
            "-msg_timeout",
            "20",
            "-total_timeout",
            "60",
            "-cmd",
            "ir",
            "-ref",
            "bts-9",
            "-secret",
            &secret,
            "-srvcert",
            p(&ra),
            "-newkey",
            p(&k),
            "-subject",
            "/CN=bts-9",
            "-certout",
            p(&c),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    // The request waits in the approval queue, as what approval would issue.
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        let list = m.run(&["scep", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.starts_with("cmp-")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no held CMP request:\n{}", m.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(line.contains("subject=CN=bts-9"), "{line}");
    let mut f = line.split_whitespace();
    let (txid, key_id) = (f.next().unwrap(), f.next().unwrap());
    std::thread::sleep(Duration::from_millis(1500));
    m.run(&["scep", "pending", "approve", txid, key_id]);
    let out = client.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}\nmef:\n{}", m.log());
    assert!(log.contains("received POLLREP"), "{log}");
    assert_eq!(subject(&c), "subject=CN = bts-9");
    run("openssl", &["verify", "-CAfile", p(&m.st("ca.pem")), p(&c)]);
}

/// A certificate whose certConf never comes (`openssl cmp
/// -disable_confirm`: no implicitConfirm asked, no certConf sent) is
/// revoked once `confirm_wait_seconds` has passed: `openssl ocsp` then
/// says so, while a confirmed one stays good.
#[test]
fn an_unconfirmed_cmp_certificate_is_revoked_when_its_wait_ends() {
    openssl_version();
    let m = Mef::start(mef_bin(), &[], |_, cfg| {
        assert!(cfg.contains("confirm_wait_seconds = 600"), "{cfg}");
        *cfg = cfg.replace("confirm_wait_seconds = 600", "confirm_wait_seconds = 5");
    });
    let ocsp = |c: &Path| ocsp_status(&m, c);
    // Confirmed: stays good.
    let (kept, _, log) = mac_ir(&m, "bts-kept", &[]);
    assert!(log.contains("received PKICONF"), "{log}");
    // Never confirmed.
    let (dropped, _, log) = mac_ir(&m, "bts-dropped", &["-disable_confirm"]);
    assert!(!log.contains("received PKICONF"), "{log}");
    assert!(ocsp(&dropped).contains(": good"), "{}", ocsp(&dropped));
    let s = until_revoked(&m, &dropped);
    assert!(s.contains("Reason: cessationOfOperation"), "{s}");
    assert!(ocsp(&kept).contains(": good"), "{}", ocsp(&kept));
    assert!(m.log().contains("not confirmed (no certConf) within confirm_wait"));
    let metrics = enrolkit_testkit::http::get(m.admin, "/metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("mef_cmp_unconfirmed_revoked_total 1"), "{text}");
}

/// POST one CMP message to `m` with curl (a real HTTP client; `openssl
/// cmp` cannot send a malformed certConf); the answer's bytes.
fn post_cmp(m: &Mef, name: &str, der: &[u8]) -> Vec<u8> {
    let dir = m.dir.path();
    let (req, rsp) = (dir.join(format!("{name}.der")), dir.join(format!("{name}.rsp")));
    std::fs::write(&req, der).unwrap();
    run(
        "curl",
        &[
            "-sS",
            "--fail",
            "--max-time",
            "20",
            "-H",
            "Content-Type: application/pkixcmp",
            "--data-binary",
            &format!("@{}", p(&req)),
            "-o",
            p(&rsp),
            &format!("http://127.0.0.1:{}/.well-known/cmp", m.scep),
        ],
    );
    std::fs::read(&rsp).unwrap()
}

/// `openssl ocsp` against `m` for `cert`: what it printed.
fn ocsp_status(m: &Mef, cert: &Path) -> String {
    let ca = m.st("ca.pem");
    let out = run(
        "openssl",
        &[
            "ocsp",
            "-url",
            &format!("http://127.0.0.1:{}/ocsp", m.scep),
            "-issuer",
            p(&ca),
            "-CAfile",
            p(&ca),
            "-cert",
            p(cert),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl cmp -cmd ir` for `label` with a fresh RSA key, MAC-protected
/// by a new CMP challenge of that label, `extra` options after; must
/// succeed: (certificate, key, what it printed).
fn mac_ir(m: &Mef, label: &str, extra: &[&str]) -> (PathBuf, PathBuf, String) {
    let dir = m.dir.path();
    let secret = challenge(m, label, &[]);
    let k = rsa_key(dir, label);
    let c = dir.join(format!("{label}.pem"));
    let (ra, subject) = (m.st("ra.pem"), format!("/CN={label}"));
    let mut args = vec![
        "-cmd",
        "ir",
        "-ref",
        label,
        "-secret",
        &secret,
        "-srvcert",
        p(&ra),
        "-newkey",
        p(&k),
        "-subject",
        &subject,
        "-certout",
        p(&c),
    ];
    args.extend_from_slice(extra);
    let log = cmp_ok(m, &args);
    (c, k, log)
}

/// Wait until `openssl ocsp` says `cert` is revoked (30 s at most).
fn until_revoked(m: &Mef, cert: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = ocsp_status(m, cert);
        if s.contains(": revoked") {
            return s;
        }
        assert!(Instant::now() < deadline, "not revoked: {s}\n{}", m.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Two ways a client could keep an unconfirmed certificate out of the
/// revocation that ends its confirm_wait, both seen working before their
/// fix: a certConf naming another certReqId (refused with badCertId, but
/// the refused certConf had already taken the transaction out of the
/// table, so nothing revoked the certificate), and an rr of the new
/// certificate by its holder before the wait ends (the revocation then
/// failed as "already revoked" and was retried every second for ever,
/// keeping the transaction's place). Sent by `enrolkit-cmp` over curl.
#[test]
fn a_malformed_cert_conf_or_an_early_rr_does_not_escape_or_jam_the_revocation() {
    use enrolkit_cmp::keys::{DigestAlgorithm, KeySpec, SoftwareKey};
    use enrolkit_cmp::{
        Answer, CertificateRequest, MacAlgorithm, PkiBody, Protect, Requester, ResponseTrust, SharedSecret,
    };
    use rand_core::OsRng;
    use std::str::FromStr;
    openssl_version();
    let m = Mef::start(mef_bin(), &[], |_, cfg| {
        *cfg = cfg.replace("confirm_wait_seconds = 600", "confirm_wait_seconds = 5");
    });
    let dir = m.dir.path();
    let secret = challenge(&m, "bts-bad", &[]);
    let secret = SharedSecret::new(secret.strip_prefix("pass:").unwrap().as_bytes());
    let requester = Requester {
        protect: Protect::Mac {
            secret: &secret,
            algorithm: MacAlgorithm::pbmac1(&mut OsRng),
            sender_kid: b"bts-bad".to_vec(),
        },
        sender: enrolkit_cmp::header::null_dn(),
        recipient: enrolkit_cmp::header::null_dn(),
        message_time: Some(std::time::SystemTime::now()),
        limits: Default::default(),
        policy: Default::default(),
    };
    let key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let ask = CertificateRequest {
        key: &key,
        subject: Some(x509_cert::name::Name::from_str("CN=bts-bad").unwrap()),
        extensions: None,
        old_certificate: None,
        digest: DigestAlgorithm::Sha256,
    };
    let (ir, sent) = requester
        .certificate_request(BodyType::Ir, &ask, false, &mut OsRng)
        .unwrap();
    let ip = requester
        .open(&post_cmp(&m, "ir", &ir), &sent, &ResponseTrust::Mac(&secret))
        .unwrap();
    let Answer::Certificate { certificate, .. } = &ip.answer else {
        panic!("no certificate: {:?}", ip.answer);
    };
    let pem = dir.join("bts-bad.pem");
    std::fs::write(
        &pem,
        der::EncodePem::to_pem(certificate.as_ref(), der::pem::LineEnding::LF).unwrap(),
    )
    .unwrap();
    assert!(ocsp_status(&m, &pem).contains(": good"));
    // certConf for certReqId 7 (the ip's is 0): refused, badCertId.
    let mut other = ip.clone();
    if let Answer::Certificate { cert_req_id, .. } = &mut other.answer {
        *cert_req_id = 7;
    }
    let (conf, _) = requester.cert_conf(&other, None, &mut OsRng).unwrap();
    let answer = PkiMessage::parse(&post_cmp(&m, "conf", &conf), &Default::default()).unwrap();
    let PkiBody::Error(e) = &answer.body else {
        panic!("not an error: {:?}", answer.body.body_type());
    };
    assert!(format!("{e:?}").contains("certReqId"), "{e:?}");
    // The certificate is still revoked when the wait ends.
    let s = until_revoked(&m, &pem);
    assert!(s.contains("Reason: cessationOfOperation"), "{s}");

    // An unconfirmed certificate its holder revokes before the wait ends:
    // revoked once, with the holder's reason, and not retried.
    let (c, k, log) = mac_ir(&m, "bts-rr", &["-disable_confirm"]);
    let ra = m.st("ra.pem");
    assert!(!log.contains("received PKICONF"), "{log}");
    let log = cmp_ok(
        &m,
        &[
            "-cmd",
            "rr",
            "-cert",
            p(&c),
            "-key",
            p(&k),
            "-srvcert",
            p(&ra),
            "-oldcert",
            p(&c),
            "-revreason",
            "1",
        ],
    );
    assert!(log.contains("revocation accepted"), "{log}");
    let s = until_revoked(&m, &c);
    assert!(s.contains("Reason: keyCompromise"), "{s}");
    // Past its wait: handled once, quietly, not retried.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.log().contains("CMP certificate to revoke was already revoked") {
        assert!(Instant::now() < deadline, "{}", m.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    let log = m.log();
    assert!(!log.contains("cannot revoke a CMP certificate"), "{log}");
    assert_eq!(
        log.matches("CMP certificate to revoke was already revoked").count(),
        1,
        "{log}"
    );
    assert!(ocsp_status(&m, &c).contains("Reason: keyCompromise"));
    let metrics = enrolkit_testkit::http::get(m.admin, "/metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(text.contains("mef_cmp_unconfirmed_revoked_total 1"), "{text}");
}

/// The duty to revoke an unconfirmed certificate is kept in the database:
/// a `mef serve` restarted before the wait ends still revokes it (it was
/// lost with the process's memory), and so is a certificate an operator
/// approved that its client never collected.
#[test]
fn an_unconfirmed_cmp_certificate_is_revoked_across_a_restart_and_an_uncollected_approval_too() {
    openssl_version();
    let mut m = Mef::start(mef_bin(), &[], |_, cfg| {
        *cfg = cfg.replace("confirm_wait_seconds = 600", "confirm_wait_seconds = 5");
    });
    let (c, _, log) = mac_ir(&m, "bts-r", &["-disable_confirm"]);
    assert!(!log.contains("received PKICONF"), "{log}");
    m.restart();
    assert!(ocsp_status(&m, &c).contains(": good"));
    let s = until_revoked(&m, &c);
    assert!(s.contains("Reason: cessationOfOperation"), "{s}");

    // Approved, never collected: the client gave up before the approval.
    let m = Mef::start(mef_bin(), &[], |_, cfg| {
        *cfg = cfg
            .replace("confirm_wait_seconds = 600", "confirm_wait_seconds = 5")
            .replace("manual_approval = false", "manual_approval = true");
    });
    let dir = m.dir.path();
    let secret = challenge(&m, "bts-u", &[]);
    let k = rsa_key(dir, "bts-u");
    let mut client = Command::new("openssl")
        .args([
            "cmp",
            "-server",
            &format!("127.0.0.1:{}", m.scep),
            "-path",
            ".well-known/cmp",
            "-cmd",
            "ir",
            "-ref",
            "bts-u",
            "-secret",
            &secret,
            "-srvcert",
            p(&m.st("ra.pem")),
            "-newkey",
            p(&k),
            "-subject",
            "/CN=bts-u",
            "-certout",
            p(&dir.join("bts-u.pem")),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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
    let _ = client.kill();
    let _ = client.wait();
    let mut f = line.split_whitespace();
    let (txid, key_id) = (f.next().unwrap(), f.next().unwrap());
    let serial = m.run(&["scep", "pending", "approve", txid, key_id]);
    // The certificate approved: from the database, for openssl ocsp.
    let serial = serial.split_whitespace().last().unwrap().to_owned();
    let ocsp = |m: &Mef| {
        let out = run(
            "openssl",
            &[
                "ocsp",
                "-url",
                &format!("http://127.0.0.1:{}/ocsp", m.scep),
                "-issuer",
                p(&m.st("ca.pem")),
                "-CAfile",
                p(&m.st("ca.pem")),
                "-serial",
                &format!("0x{serial}"),
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ocsp(&m).contains(": good"), "{}", ocsp(&m));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ocsp(&m).contains(": revoked") {
        assert!(Instant::now() < deadline, "not revoked: {}\n{}", ocsp(&m), m.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Attacks on the CMP server, each seen succeeding before its fix:
/// raVerified POP from a device, a spent MAC secret opening a genm,
/// one credential filling the open-transaction table, and a holder
/// "revoking" with removeFromCRL.
#[test]
fn attacks_on_the_cmp_server_are_refused() {
    openssl_version();
    let mut vendor = None;
    let m = Mef::start(mef_bin(), &[], |st, cfg| {
        vendor = Some(openssl_ca(st, "vendor-ca", "/CN=Vendor Root CA/O=Vendor"));
        cfg.push_str(
            "\n[authorisation.vendor]\nanchors = [\"vendor-ca.pem\"]\n\
             subject_template = \"CN={serialNumber},O=Operator\"\n",
        );
    });
    let (vca, vkey) = vendor.unwrap();
    let dir = m.dir.path();
    let ra = m.st("ra.pem");
    let ra = p(&ra);
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let ir_mac = |label: &str, secret: &str, key: &Path, out: &Path, extra: &[&str]| {
        let mut a = vec!["-cmd", "ir", "-ref", label, "-secret", secret, "-srvcert", ra];
        a.extend_from_slice(&["-newkey", p(key), "-subject", "/CN=dev", "-certout", p(out)]);
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    // raVerified from a device (-popo 0): a certificate for a key it never
    // proved it holds. Refused, and the challenge is not spent by it.
    let secret = challenge(&m, "dev-1", &[]);
    let key = rsa_key(dir, "dev-1");
    let out = dir.join("dev-1.pem");
    let a = ir_mac("dev-1", &secret, &key, &out, &["-popo", "0"]);
    cmp_refused(&m, &args(&a), "badPOP", "raVerified");
    assert!(!out.exists());
    let a = ir_mac("dev-1", &secret, &key, &out, &[]);
    cmp_ok(&m, &args(&a));
    assert!(out.exists());

    // The spent secret opens nothing, a genm included (before: genp).
    let (ok, log) = cmp(
        &m,
        &[
            "-cmd",
            "genm",
            "-ref",
            "dev-1",
            "-secret",
            &secret,
            "-srvcert",
            ra,
            "-infotype",
            "caCerts",
        ],
    );
    assert!(!ok, "{log}");
    assert!(log.contains("PKIFailureInfo: badMessageCheck"), "{log}");

    // One vendor certificate holding transactions open (no certConf) gets
    // a bounded share; another credential still enrols.
    let (bs, bs_key) = vendor_device(dir, "enb-7", "SN-0007", (&vca, &vkey));
    let op_key = rsa_key(dir, "enb-7-op");
    let vendor_ir = |n: usize| {
        let out = dir.join(format!("enb-7-op-{n}.pem"));
        vec![
            "-cmd".to_owned(),
            "ir".into(),
            "-cert".into(),
            p(&bs).into(),
            "-key".into(),
            p(&bs_key).into(),
            "-srvcert".into(),
            ra.into(),
            "-newkey".into(),
            p(&op_key).into(),
            "-subject".into(),
            "/CN=x".into(),
            "-disable_confirm".into(),
            "-certout".into(),
            p(&out).into(),
        ]
    };
    for n in 0..4 {
        cmp_ok(&m, &args(&vendor_ir(n)));
    }
    cmp_refused(&m, &args(&vendor_ir(4)), "systemUnavail", "finish them first");
    let secret2 = challenge(&m, "dev-2", &[]);
    let key2 = rsa_key(dir, "dev-2");
    let a = ir_mac("dev-2", &secret2, &key2, &dir.join("dev-2.pem"), &[]);
    cmp_ok(&m, &args(&a));

    // rr with removeFromCRL (8) would leave a revoked certificate valid for
    // CRL users: refused; the holder's own reason is accepted.
    let rr = |reason: &str| {
        vec![
            "-cmd".to_owned(),
            "rr".into(),
            "-cert".into(),
            p(&out).into(),
            "-key".into(),
            p(&key).into(),
            "-srvcert".into(),
            ra.into(),
            "-oldcert".into(),
            p(&out).into(),
            "-revreason".into(),
            reason.into(),
        ]
    };
    cmp_refused(&m, &args(&rr("8")), "badRequest", "not one a holder may give");
    cmp_refused(&m, &args(&rr("6")), "badRequest", "not one a holder may give");
    let log = cmp_ok(&m, &args(&rr("1")));
    assert!(log.contains("revocation accepted"), "{log}");
}
