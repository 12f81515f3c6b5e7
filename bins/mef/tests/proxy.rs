//! The SCEP Client / Proxy of seed 004 (issue K), end to end on 127.0.0.1:
//! clients → `mef serve` in proxy mode (`[proxy]`) → an upstream SCEP
//! server. Clients: curl and `enrol est` with a TLS client certificate
//! (EST), micromdm `scepclient` and `enrol scep` (SCEP, the proxy their
//! RA). Upstreams: `mef serve` authorising the proxy by RA-POP
//! (`[[authorisation.ra]]`) or by the client's forwarded challenge, and
//! micromdm `scepserver`, which knows only a challenge. Every certificate
//! is checked against the upstream CA with OpenSSL; upstream requests are
//! counted from the upstream's `/metrics` or log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{key_and_csr_for, p, run};
use enrolkit_testkit::{Mef, Peer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mef_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mef"))
}

/// An OpenSSL-made certificate: self-signed when `issuer` is `None`.
fn openssl_cert(dir: &Path, name: &str, subj: &str, ext: &str, issuer: Option<(&Path, &Path)>) -> (PathBuf, PathBuf) {
    let (cert, key, csr, extf) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&extf, ext).unwrap();
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subj,
            "-keyout",
            p(&key),
            "-out",
            p(&csr),
        ],
    );
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        p(&csr),
        "-days",
        "30",
        "-extfile",
        p(&extf),
        "-out",
        p(&cert),
    ];
    match issuer {
        Some((c, k)) => args.extend(["-CA", p(c), "-CAkey", p(k), "-CAcreateserial"]),
        None => args.extend(["-signkey", p(&key)]),
    }
    run("openssl", &args);
    (cert, key)
}

fn fingerprint(cert: &Path) -> String {
    let o = run(
        "openssl",
        &["x509", "-in", p(cert), "-noout", "-fingerprint", "-sha256"],
    );
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.trim().rsplit('=').next().unwrap().to_owned()
}

/// The upstream CA: RA-POP for the proxy's RA certificate, names under
/// `ran.example.net`; `manual`: held for its operator. The RA certificate
/// is signed by the upstream CA (offline, with OpenSSL), so SCEP clients
/// that pin the upstream CA accept the proxy as its RA.
fn upstream(manual: bool) -> Mef {
    Mef::start(mef_bin(), &[], |st, cfg| {
        openssl_cert(
            st,
            "proxy-ra",
            "/CN=SCEP proxy RA",
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=1.3.6.1.5.5.7.3.28\n",
            Some((&st.join("ca.pem"), &st.join("ca.key.pem"))),
        );
        if manual {
            *cfg = cfg.replace("manual_approval = false", "manual_approval = true");
        }
        cfg.push_str("\n[[authorisation.ra]]\ncertificate = \"proxy-ra.pem\"\nmay_name = [\"*.ran.example.net\"]\n");
    })
}

/// A proxy in front of `up`, signing with the RA certificate `up` trusts,
/// trusting TLS client certificates of `device-ca.pem`; the notification
/// hook appends its event to `st/notified`.
fn proxy(up: &Mef, window_seconds: u64) -> Mef {
    let up_st = up.st("");
    proxy_to(
        &format!("http://127.0.0.1:{}/scep", up.scep),
        &up.st("ca.pem"),
        window_seconds,
        |st, _| {
            // The RA certificate upstream trusts is this mef's RA certificate
            // (SCEP clients encrypt to it; the harness in common/ too).
            std::fs::copy(up_st.join("proxy-ra.pem"), st.join("ra.pem")).unwrap();
            std::fs::copy(up_st.join("proxy-ra.key"), st.join("ra.key.pem")).unwrap();
        },
    )
}

/// A proxy in front of the SCEP server at `url` whose CA is `ca`: polling
/// every second, a Retry-After of 1 s, micromdm scepclient's DES accepted,
/// TLS clients of `device-ca.pem` trusted; then `edit` (which may append
/// keys to `[proxy]`, the last section).
fn proxy_to(url: &str, ca: &Path, window_seconds: u64, edit: impl FnOnce(&Path, &mut String)) -> Mef {
    let fp = fingerprint(ca);
    // The CA `mef init` makes here only issues the proxy's TLS server
    // certificate; named apart from the upstream CA (whose name `mef init`
    // would give it too), as in a deployment.
    Mef::start(
        mef_bin(),
        &["--ca-name", "CN=SCEP proxy TLS CA,O=enrolkit"],
        |st, cfg| {
            openssl_cert(
                st,
                "device-ca",
                "/CN=Device CA",
                "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
                None,
            );
            let mut t: toml::Table = cfg.parse().unwrap();
            let scep = t["scep"].as_table_mut().unwrap();
            // micromdm scepclient 2.1.0 encrypts with single DES whatever GetCACaps says.
            scep.insert("ciphers".into(), toml::Value::try_from(["aes", "des3", "des"]).unwrap());
            let est = t["est"].as_table_mut().unwrap();
            est.insert("retry_after_seconds".into(), toml::Value::Integer(1));
            est.insert(
                "client_trust_anchors".into(),
                toml::Value::try_from(["device-ca.pem"]).unwrap(),
            );
            // `mef init` configures CMP, which issues with a CA key a proxy does not hold.
            t.remove("cmp");
            *cfg = toml::to_string(&t).unwrap();
            let notified = st.join("notified");
            cfg.push_str(&format!(
                "\n[proxy]\nupstream = \"{url}\"\nca_fingerprint = \"{fp}\"\npoll_interval_seconds = 1\n\
             polling_window_seconds = {window_seconds}\nnotify_command = [\"/bin/sh\", \"-c\", \
             \"echo \\\"$ENROL_PROXY_EVENT $ENROL_SUBJECT\\\" >> {}\"]\n",
                notified.display()
            ));
            edit(st, cfg);
        },
    )
}

/// A device: its certificate from the device CA of `px`, and a CSR for the same name.
fn device(px: &Mef, name: &str, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    device_asking(px, name, cn, &format!("CN = {cn}"), None, None)
}

/// A device whose certificate (from the device CA of `px`) names `cn`, with
/// a CSR (base64, in the third path) for `dn`, with `challenge` and `san`.
fn device_asking(
    px: &Mef,
    name: &str,
    cn: &str,
    dn: &str,
    challenge: Option<&str>,
    san: Option<&str>,
) -> (PathBuf, PathBuf, PathBuf) {
    let dir = px.dir.path();
    let san_ext = san.map(|s| format!("subjectAltName={s}\n")).unwrap_or_default();
    let (cert, key) = openssl_cert(
        dir,
        &format!("{name}-id"),
        &format!("/CN={cn}"),
        &format!("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n{san_ext}"),
        Some((&px.st("device-ca.pem"), &px.st("device-ca.key"))),
    );
    let (_, csr) = key_and_csr_for(dir, name, dn, challenge, san);
    let b64 = dir.join(format!("{name}.b64"));
    std::fs::write(&b64, run("openssl", &["base64", "-in", p(&csr)]).stdout).unwrap();
    (cert, key, b64)
}

struct Answer {
    status: u16,
    body: String,
}

/// `curl` POST of `b64` to the proxy's `/simpleenroll` with the device's certificate.
fn simpleenroll(px: &Mef, dev: &(PathBuf, PathBuf, PathBuf)) -> Answer {
    est_post(px, "simpleenroll", dev)
}

/// `curl` POST of the CSR (base64, `dev.2`) to the proxy's EST `op` with
/// the TLS client certificate `dev.0` and key `dev.1`.
fn est_post(px: &Mef, op: &str, dev: &(PathBuf, PathBuf, PathBuf)) -> Answer {
    est_post_with(px, op, dev, &[])
}

/// [`est_post`] with more curl arguments (`-D -`: the headers before the body).
fn est_post_with(px: &Mef, op: &str, dev: &(PathBuf, PathBuf, PathBuf), extra: &[&str]) -> Answer {
    let o = std::process::Command::new("curl")
        .args(extra)
        .args([
            "-sS",
            "--cacert",
            p(&px.st("ca.pem")),
            "--cert",
            p(&dev.0),
            "--key",
            p(&dev.1),
        ])
        .args(["-H", "Content-Type: application/pkcs10", "--data-binary"])
        .arg(format!("@{}", p(&dev.2)))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/.well-known/est/{op}", px.rustls))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, status) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim_end()));
    Answer {
        status: status
            .parse()
            .unwrap_or_else(|_| panic!("curl: {out} {}", String::from_utf8_lossy(&o.stderr))),
        body: body.to_owned(),
    }
}

/// Retry (as an EST client does after 202) until the answer is not 202.
fn until_decided(px: &Mef, dev: &(PathBuf, PathBuf, PathBuf), within: Duration) -> Answer {
    until_decided_at(px, "simpleenroll", dev, within)
}

/// Retry EST `op` until the answer is not 202.
fn until_decided_at(px: &Mef, op: &str, dev: &(PathBuf, PathBuf, PathBuf), within: Duration) -> Answer {
    let started = Instant::now();
    loop {
        let a = est_post(px, op, dev);
        if a.status != 202 {
            return a;
        }
        assert!(started.elapsed() < within, "still 202 after {within:?}\n{}", px.log());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The certificate of a 200 (base64 certs-only), verified against the
/// upstream CA; its subject line.
fn verified(up: &Mef, dir: &Path, name: &str, body: &str) -> String {
    let (b64, der, pem) = (
        dir.join(format!("{name}.p7.b64")),
        dir.join(format!("{name}.p7.der")),
        dir.join(format!("{name}.pem")),
    );
    std::fs::write(&b64, body.replace(['\r', '\n'], "")).unwrap();
    run("openssl", &["base64", "-d", "-A", "-in", p(&b64), "-out", p(&der)]);
    run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            p(&der),
            "-print_certs",
            "-out",
            p(&pem),
        ],
    );
    let o = run("openssl", &["verify", "-CAfile", p(&up.st("ca.pem")), p(&pem)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(": OK"));
    let o = run("openssl", &["x509", "-in", p(&pem), "-noout", "-subject"]);
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// A counter of `mef`'s `/metrics` (0 when absent).
fn metric(m: &Mef, line_start: &str) -> u64 {
    let r = enrolkit_testkit::http::get(m.admin, "/metrics");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// PKIOperations the upstream answered, but for the GetCRLs the proxy's
/// relay sends to learn revocations (each logged with its messageType; a
/// retransmitted PKCSReq is answered from storage without a line).
fn upstream_requests(up: &Mef) -> u64 {
    loop {
        let crls = lines_with(&up.log(), "message_type=GetCRL(22)");
        let all = metric(up, "mef_requests_total{protocol=\"scep\",operation=\"PKIOperation\"");
        if lines_with(&up.log(), "message_type=GetCRL(22)") == crls {
            return all - crls as u64;
        }
    }
}

#[test]
fn a_device_enrols_through_the_proxy_and_its_retries_never_reach_upstream() {
    let up = upstream(false);
    let px = proxy(&up, 3600);
    let dev = device(&px, "dev-1", "dev-1.ran.example.net");
    let first = simpleenroll(&px, &dev);
    assert_eq!(first.status, 202, "held for the relay: {}\n{}", first.body, px.log());
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}", done.body, px.log());
    assert_eq!(
        verified(&up, px.dir.path(), "dev-1", &done.body),
        "subject=CN = dev-1.ran.example.net"
    );
    // Upstream issued on RA-POP: nothing else could authorise the proxy
    // there (no challenge, no pre-authorised CN), and the test below shows
    // it refusing a name outside what the RA may request.
    assert!(up.log().contains("message_type=PKCSReq(19)"), "{}", up.log());
    // The same request again: answered from the proxy's store.
    let before = upstream_requests(&up);
    assert!(before >= 1);
    for _ in 0..3 {
        let again = simpleenroll(&px, &dev);
        assert_eq!(again.status, 200);
        assert_eq!(again.body, done.body);
    }
    std::thread::sleep(Duration::from_millis(2500)); // two relay passes
    assert_eq!(upstream_requests(&up), before, "a retry reached upstream");
    assert_eq!(metric(&px, "mef_proxy_events_total{event=\"issued\"}"), 1);
    // The proxy itself issues nothing: its CA key is the upstream's, not held.
    let o = px.try_run(&["scep", "pending", "approve", "x", "y"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SCEP proxy"));
}

#[test]
fn manual_approval_upstream_is_relayed_as_202_and_survives_a_restart_of_the_proxy() {
    let up = upstream(true);
    let mut px = proxy(&up, 3600);
    let dev = device(&px, "dev-2", "dev-2.ran.example.net");
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    // Upstream holds it: the relay polls, the client keeps getting 202.
    let started = Instant::now();
    let pending = loop {
        let list = up.run(&["scep", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.contains("dev-2.ran.example.net")) {
            break l.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never forwarded\n{}",
            px.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    std::thread::sleep(Duration::from_millis(1500)); // the relay polls at least once
                                                     // The proxy stops and starts again while upstream still holds it.
    px.restart();
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let mut it = pending.split_whitespace();
    let (txid, kid) = (it.next().unwrap(), it.next().unwrap());
    up.run(&["scep", "pending", "approve", txid, kid]);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}", done.body, px.log());
    assert_eq!(
        verified(&up, px.dir.path(), "dev-2", &done.body),
        "subject=CN = dev-2.ran.example.net"
    );
    // One upstream transaction, continued after the restart.
    assert_eq!(up.run(&["scep", "pending", "list"]).trim(), "");
    // PENDING upstream is polled with CertPoll (RFC 8894 §3.3.3): the
    // request itself went once, and once more from the restarted proxy,
    // which does not know it was answered PENDING.
    let log = up.log();
    assert_eq!(lines_with(&log, "message_type=PKCSReq(19)"), 2, "{log}");
    assert!(lines_with(&log, "message_type=CertPoll(20)") >= 1, "{log}");
}

#[test]
fn an_upstream_failure_reaches_the_client_as_an_est_error_and_is_notified() {
    let up = upstream(false);
    let px = proxy(&up, 3600);
    // The proxy trusts the device for its own name; upstream does not let
    // the RA request it.
    let dev = device(&px, "dev-3", "dev-3.core.example.net");
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(
        done.body.contains("refused by the upstream CA: failInfo"),
        "{}",
        done.body
    );
    let notified = std::fs::read_to_string(px.st("notified")).unwrap();
    assert_eq!(notified.trim(), "upstream-refused CN=dev-3.core.example.net");
    assert_eq!(metric(&px, "mef_proxy_events_total{event=\"upstream-refused\"}"), 1);
    assert!(px.log().contains("proxy: request not issued"), "{}", px.log());
}

#[test]
fn an_exceeded_polling_window_reaches_the_client_as_an_est_error_and_is_notified() {
    let up = upstream(true);
    let px = proxy(&up, 3);
    let dev = device(&px, "dev-4", "dev-4.ran.example.net");
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(done.body.contains("polling window"), "{}", done.body);
    let notified = std::fs::read_to_string(px.st("notified")).unwrap();
    assert_eq!(notified.trim(), "polling-window-exceeded CN=dev-4.ran.example.net");
    assert_eq!(
        metric(&px, "mef_proxy_events_total{event=\"polling-window-exceeded\"}"),
        1
    );
    // Polling stopped: upstream is asked no more.
    let before = upstream_requests(&up);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(upstream_requests(&up), before);
}

/// The versions of the peers these tests run, in the test output.
fn peer_versions() {
    common::versions();
    let v = run("dpkg-query", &["-W", "-f=${Version}", "scep"]);
    println!(
        "peer: micromdm scepclient/scepserver (Debian scep) {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// The `enrol` binary beside `mef` (`cargo test --workspace` builds both).
fn enrol_bin() -> PathBuf {
    let b = mef_bin().with_file_name("enrol");
    assert!(
        b.exists(),
        "build enrol first: cargo build -p enrol (cargo test --workspace builds it)"
    );
    b
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// micromdm `scepclient` against the proxy's SCEP listener, in `dir` (its
/// key `k.pem` is reused when it exists, so is its transaction). It
/// answers PENDING by sleeping 30 s and sending the same message again.
fn scepclient(px: &Mef, dir: &Path, challenge: &str, cn: &str) -> Output {
    Command::new("timeout")
        .args(["150", "scepclient", "-server-url"])
        .arg(format!("http://127.0.0.1:{}/scep", px.scep))
        .args([
            "-challenge",
            challenge,
            "-private-key",
            "k.pem",
            "-certificate",
            "c.pem",
            "-cn",
            cn,
        ])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `openssl verify` of `cert` under `ca`; the certificate's subject line.
fn verify(ca: &Path, cert: &Path) -> String {
    let o = run("openssl", &["verify", "-CAfile", p(ca), p(cert)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(": OK"));
    common::subject(cert)
}

/// How many lines of `log` contain `what`.
fn lines_with(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn micromdm_scepclient_enrols_through_the_proxy_which_answers_its_retry_from_its_store() {
    peer_versions();
    let up = upstream(false);
    let px = proxy(&up, 3600);
    let cn = "scep-1.ran.example.net";
    // The proxy authorises the SCEP client by a one-time challenge of its own.
    let ch = px.run(&["challenge", "add", "--label", cn]).trim().to_owned();
    let d = tempfile::tempdir().unwrap();
    let out = scepclient(&px, d.path(), &ch, cn);
    assert!(
        out.status.success(),
        "{}\nproxy:\n{}\nupstream:\n{}",
        text(&out),
        px.log(),
        up.log()
    );
    // Held at the proxy (PENDING) until the relay had the certificate;
    // scepclient slept and sent the same message again.
    assert!(text(&out).contains("PENDING"), "{}", text(&out));
    let subject = verify(&up.st("ca.pem"), &d.path().join("c.pem"));
    assert!(subject.contains(&format!("CN = {cn}")), "{subject}");
    // The proxy opened scepclient's message with its RA key and decided on
    // its own challenge; upstream issued on RA-POP for the proxy's message.
    assert!(px.log().contains(&format!("basis=challenge:{cn}")), "{}", px.log());
    assert!(up.log().contains("basis=ra-pop:CN=SCEP proxy RA"), "{}", up.log());
    // scepclient's retry (same transaction, same bytes) was answered from
    // the proxy's store, and one PKIOperation reached upstream in all.
    assert!(
        px.log().contains("stored answer, envelope not decrypted"),
        "{}",
        px.log()
    );
    assert_eq!(upstream_requests(&up), 1, "{}", up.log());
    std::thread::sleep(Duration::from_millis(2500)); // two relay passes
    assert_eq!(upstream_requests(&up), 1);
    assert_eq!(metric(&px, "mef_challenges_consumed_total"), 1);
}

#[test]
fn enrol_scep_enrols_through_the_proxy_polling_it_with_certpoll() {
    let up = upstream(false);
    let px = proxy(&up, 3600);
    let cn = "scep-2.ran.example.net";
    let ch = px.run(&["challenge", "add", "--label", cn]).trim().to_owned();
    let d = tempfile::tempdir().unwrap();
    let (key, cert) = (d.path().join("k.pem"), d.path().join("c.pem"));
    let o = Command::new(enrol_bin())
        .args(["scep", "enrol", "--url"])
        .arg(format!("http://127.0.0.1:{}/scep", px.scep))
        // The proxy serves the upstream CA, which the client pins.
        .args(["--ca-fingerprint", &fingerprint(&up.st("ca.pem"))])
        .args([
            "--subject",
            &format!("CN={cn}"),
            "--poll-interval",
            "1",
            "--poll-window",
            "60",
        ])
        .args(["--key-out", p(&key), "--cert-out", p(&cert)])
        .env("ENROL_CHALLENGE", &ch)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\nproxy:\n{}", text(&o), px.log());
    assert_eq!(verify(&up.st("ca.pem"), &cert), format!("subject=CN = {cn}"));
    // PENDING from the proxy's store, then CertPoll answered from it.
    let log = px.log();
    assert!(
        log.lines()
            .any(|l| l.contains("message_type=PKCSReq(19)") && l.contains("PENDING")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("message_type=CertPoll(20)") && l.contains("SUCCESS")),
        "{log}"
    );
    assert_eq!(upstream_requests(&up), 1, "{}", up.log());
}

#[test]
fn enrol_est_waits_on_the_proxys_202_while_upstream_awaits_its_operator() {
    let up = upstream(true);
    let px = proxy(&up, 3600);
    let cn = "est-1.ran.example.net";
    let dev = device(&px, "est-1", cn);
    let d = tempfile::tempdir().unwrap();
    let (key, cert) = (d.path().join("k.pem"), d.path().join("c.pem"));
    // The device trusts the proxy's TLS CA and the upstream CA that issues.
    let ta = d.path().join("ta.pem");
    let mut anchors = std::fs::read_to_string(px.st("ca.pem")).unwrap();
    anchors.push_str(&std::fs::read_to_string(up.st("ca.pem")).unwrap());
    std::fs::write(&ta, anchors).unwrap();
    let child = Command::new(enrol_bin())
        .args(["est", "--server"])
        .arg(format!("https://127.0.0.1:{}", px.rustls))
        .args(["--ta", p(&ta), "--cert", p(&dev.0), "--key", p(&dev.1)])
        .args(["--max-retry-interval", "1", "--wait-window", "120"])
        .args(["enroll", "--subject", &format!("CN={cn}")])
        .args(["--key-out", p(&key), "--cert-out", p(&cert)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The relay forwards it; upstream holds it for its operator.
    let started = Instant::now();
    let pending = loop {
        let list = up.run(&["scep", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.contains(cn)) {
            break l.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never forwarded\n{}",
            px.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    std::thread::sleep(Duration::from_secs(3)); // enrol est keeps getting 202
    let mut it = pending.split_whitespace();
    up.run(&["scep", "pending", "approve", it.next().unwrap(), it.next().unwrap()]);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\nproxy:\n{}", text(&o), px.log());
    assert!(text(&o).contains("202 accepted: attempt 2"), "{}", text(&o));
    assert_eq!(verify(&up.st("ca.pem"), &cert), format!("subject=CN = {cn}"));
    // Polled upstream with CertPoll, not the request again.
    let log = up.log();
    assert_eq!(lines_with(&log, "message_type=PKCSReq(19)"), 1, "{log}");
    assert!(lines_with(&log, "message_type=CertPoll(20)") >= 2, "{log}");
}

/// micromdm `scepserver` with the CA it makes and only `-challenge secret`.
struct ScepServer {
    peer: Peer,
    _dir: tempfile::TempDir,
    depot: PathBuf,
    log: PathBuf,
}

impl ScepServer {
    fn start() -> ScepServer {
        let dir = tempfile::tempdir().unwrap();
        let depot = dir.path().join("depot");
        run("scepserver", &["ca", "-init", "-depot", p(&depot), "-keySize", "2048"]);
        let log = dir.path().join("scepserver.log");
        let peer = Peer::spawn(
            |port| {
                let mut c = Command::new("scepserver");
                c.arg("-depot")
                    .arg(&depot)
                    .args(["-port", &port.to_string(), "-challenge", "secret", "-debug"])
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap());
                c
            },
            Duration::from_secs(20),
        )
        .expect("scepserver did not start");
        ScepServer {
            peer,
            _dir: dir,
            depot,
            log,
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/scep", self.peer.port)
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn the_proxy_forwards_the_clients_challenge_to_micromdm_scepserver() {
    peer_versions();
    let srv = ScepServer::start();
    let px = proxy_to(&srv.url(), &srv.depot.join("ca.pem"), 3600, |_, cfg| {
        cfg.push_str("upstream_auth = \"forward-challenge\"\n");
    });
    // A trusted client (TLS certificate of the device CA) with a CSR that
    // carries the upstream's challenge.
    let cn = "fwd-1.ran.example.net";
    let dev = device_asking(&px, "fwd-1", cn, &format!("CN = {cn}"), Some("secret"), None);
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}\n{}", done.body, px.log(), srv.log());
    // Issued by scepserver's CA.
    let (b64, der, pem) = (
        px.dir.path().join("fwd-1.p7.b64"),
        px.dir.path().join("fwd-1.p7.der"),
        px.dir.path().join("fwd-1.pem"),
    );
    std::fs::write(&b64, done.body.replace(['\r', '\n'], "")).unwrap();
    run("openssl", &["base64", "-d", "-A", "-in", p(&b64), "-out", p(&der)]);
    run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            p(&der),
            "-print_certs",
            "-out",
            p(&pem),
        ],
    );
    assert_eq!(verify(&srv.depot.join("ca.pem"), &pem), format!("subject=CN = {cn}"));
    // scepserver has no PENDING and refuses a second PKCSReq for a subject
    // it certified ("DN … already exists"): the relay sent exactly one.
    std::thread::sleep(Duration::from_millis(2500)); // two relay passes
    assert_eq!(pkcsreqs_at(&srv), 1, "{}", srv.log());
    let index = std::fs::read_to_string(srv.depot.join("index.txt")).unwrap();
    assert_eq!(lines_with(&index, cn), 1, "{index}");

    // A wrong challenge: scepserver's FAILURE reaches the client.
    let cn = "fwd-2.ran.example.net";
    let dev = device_asking(&px, "fwd-2", cn, &format!("CN = {cn}"), Some("wrong"), None);
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(
        done.body.contains("refused by the upstream CA: failInfo badRequest"),
        "{}",
        done.body
    );
    assert_eq!(pkcsreqs_at(&srv), 2);

    // No challenge to forward: refused at the proxy, nothing sent upstream.
    let cn = "fwd-3.ran.example.net";
    let dev = device_asking(&px, "fwd-3", cn, &format!("CN = {cn}"), None, None);
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(done.body.contains("not forwarded upstream"), "{}", done.body);
    assert_eq!(pkcsreqs_at(&srv), 2);
    assert_eq!(metric(&px, "mef_proxy_events_total{event=\"not-forwarded\"}"), 1);
}

#[test]
fn a_forwarded_challenge_is_what_an_upstream_mef_decides_on_not_the_ra_certificate() {
    // Upstream trusts the proxy's RA certificate, but under
    // forward-challenge the proxy does not sign with it.
    let up = upstream(false);
    let up_st = up.st("");
    let px = proxy_to(
        &format!("http://127.0.0.1:{}/scep", up.scep),
        &up.st("ca.pem"),
        3600,
        |st, cfg| {
            std::fs::copy(up_st.join("proxy-ra.pem"), st.join("ra.pem")).unwrap();
            std::fs::copy(up_st.join("proxy-ra.key"), st.join("ra.key.pem")).unwrap();
            cfg.push_str("upstream_auth = \"forward-challenge\"\n");
        },
    );
    let cn = "fwd-4.ran.example.net";
    let otp = up
        .run(&["challenge", "add", "--label", "upstream-otp"])
        .trim()
        .to_owned();
    let dev = device_asking(&px, "fwd-4", cn, &format!("CN = {cn}"), Some(&otp), None);
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    let done = until_decided(&px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}", done.body, up.log());
    verified(&up, px.dir.path(), "fwd-4", &done.body);
    let log = up.log();
    assert!(log.contains("basis=challenge:upstream-otp"), "{log}");
    assert!(!log.contains("basis=ra-pop"), "{log}");
}

#[test]
fn an_untrusted_client_certificate_is_refused_at_the_proxy() {
    let up = upstream(false);
    let px = proxy(&up, 3600);
    // A certificate for an allowed name, from a CA the proxy does not trust.
    let dir = px.dir.path();
    let rogue = openssl_cert(
        dir,
        "rogue-ca",
        "/CN=Device CA",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
        None,
    );
    let cn = "rogue-1.ran.example.net";
    let (cert, key) = openssl_cert(
        dir,
        "rogue-1-id",
        &format!("/CN={cn}"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        Some((&rogue.0, &rogue.1)),
    );
    let (_, csr) = key_and_csr_for(dir, "rogue-1", &format!("CN = {cn}"), None, None);
    let b64 = dir.join("rogue-1.b64");
    std::fs::write(&b64, run("openssl", &["base64", "-in", p(&csr)]).stdout).unwrap();
    let o = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            p(&px.st("ca.pem")),
            "--cert",
            p(&cert),
            "--key",
            p(&key),
        ])
        .args(["-H", "Content-Type: application/pkcs10", "--data-binary"])
        .arg(format!("@{}", p(&b64)))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", px.rustls))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let status = out.trim_end().rsplit('\n').next().unwrap_or("");
    // Refused in the handshake (curl fails, status 000) or with 401/403.
    assert!(
        !o.status.success() || status == "401" || status == "403",
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(status, "202");
    assert_ne!(status, "200");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(px.run(&["scep", "pending", "list"]).trim(), "");
    assert_eq!(upstream_requests(&up), 0);
}

#[test]
fn a_name_outside_the_clients_allowance_is_refused_at_the_proxy_before_upstream() {
    let up = upstream(false);
    let px = proxy(&up, 3600);
    // EST: a device certificate for one name, a CSR for another (that the
    // upstream would let the RA request).
    let dev = device_asking(
        &px,
        "name-1",
        "name-1.ran.example.net",
        "CN = name-2.ran.example.net",
        None,
        None,
    );
    let a = simpleenroll(&px, &dev);
    assert_eq!(a.status, 403, "{}", a.body);
    // SCEP: a challenge bound to one subject, scepclient asking for another.
    let ch = px
        .run(&[
            "challenge",
            "add",
            "--label",
            "bound",
            "--subject",
            "CN=name-3.ran.example.net",
        ])
        .trim()
        .to_owned();
    let d = tempfile::tempdir().unwrap();
    let out = scepclient(&px, d.path(), &ch, "name-4.ran.example.net");
    assert!(!out.status.success());
    assert!(text(&out).contains("badRequest"), "{}", text(&out));
    assert!(!d.path().join("c.pem").exists());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(px.run(&["scep", "pending", "list"]).trim(), "");
    assert_eq!(upstream_requests(&up), 0, "{}", up.log());
}

#[test]
fn the_same_transaction_with_other_content_is_refused_as_a_replay() {
    let up = upstream(true);
    let px = proxy(&up, 3600);
    let dir = px.dir.path();
    // SCEP (messages made by OpenSSL and asn1crypto, common/): a PKCSReq,
    // then one for the same key (the same transactionID) asking for another name.
    let ch = px.run(&["challenge", "add", "--label", "replay"]).trim().to_owned();
    let (key, csr) = common::key_and_csr(dir, "rp-1", "rp-1.ran.example.net", Some(&ch));
    let selfsigned = dir.join("rp-1.self.pem");
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            p(&key),
            "-subj",
            "/CN=rp-1",
            "-days",
            "1",
            "-out",
            p(&selfsigned),
        ],
    );
    common::pkcsreq(&px, dir, "rp-1", &csr, (&selfsigned, &key));
    assert_eq!(common::status(dir, "rp-1"), "pkiStatus=3", "{}", px.log());
    let other = dir.join("rp-1-other.csr.der");
    let (_, csr2) = common::key_and_csr(dir, "rp-1", "rp-9.ran.example.net", Some(&ch));
    std::fs::rename(&csr2, &other).unwrap();
    common::pkcsreq(&px, dir, "rp-1b", &other, (&selfsigned, &key));
    assert_eq!(common::status(dir, "rp-1b"), "pkiStatus=2 failInfo=2", "{}", px.log());
    assert!(px.log().contains("was started with another request"), "{}", px.log());
    // EST: a device whose certificate names its DNS name too; the same key
    // asking first for the CN alone, then for the CN and the DNS name.
    let cn = "rp-2.ran.example.net";
    let san = format!("DNS:{cn}");
    let dev = device_asking(&px, "rp-2", cn, &format!("CN = {cn}"), None, Some(&san));
    let (_, plain) = key_and_csr_for(dir, "rp-2", &format!("CN = {cn}"), None, None);
    std::fs::write(&dev.2, run("openssl", &["base64", "-in", p(&plain)]).stdout).unwrap();
    assert_eq!(simpleenroll(&px, &dev).status, 202);
    assert_eq!(simpleenroll(&px, &dev).status, 202, "a retry");
    let (_, with_san) = key_and_csr_for(dir, "rp-2", &format!("CN = {cn}"), None, Some(&san));
    std::fs::write(&dev.2, run("openssl", &["base64", "-in", p(&with_san)]).stdout).unwrap();
    let a = simpleenroll(&px, &dev);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("was started with another request"), "{}", a.body);
}

#[test]
fn a_scep_request_pending_upstream_survives_a_restart_of_the_proxy() {
    let up = upstream(true);
    let mut px = proxy(&up, 3600);
    let dir = px.dir.path().to_owned();
    let ch = px.run(&["challenge", "add", "--label", "restart"]).trim().to_owned();
    let (key, csr) = common::key_and_csr(&dir, "rs-1", "rs-1.ran.example.net", Some(&ch));
    let selfsigned = dir.join("rs-1.self.pem");
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            p(&key),
            "-subj",
            "/CN=rs-1",
            "-days",
            "1",
            "-out",
            p(&selfsigned),
        ],
    );
    let msg = common::scep_message(&px, &dir, "rs-1", "19", &csr, (&selfsigned, &key));
    common::send(&px, &dir, "rs-1", &msg, common::Transport::Post);
    assert_eq!(common::status(&dir, "rs-1"), "pkiStatus=3");
    let started = Instant::now();
    let pending = loop {
        let list = up.run(&["scep", "pending", "list"]);
        if let Some(l) = list.lines().find(|l| l.contains("rs-1.ran.example.net")) {
            break l.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never forwarded\n{}",
            px.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    px.restart();
    // The same message after the restart: still PENDING (from storage).
    common::send(&px, &dir, "rs-1", &msg, common::Transport::Post);
    assert_eq!(common::status(&dir, "rs-1"), "pkiStatus=3");
    let mut it = pending.split_whitespace();
    up.run(&["scep", "pending", "approve", it.next().unwrap(), it.next().unwrap()]);
    let started = Instant::now();
    loop {
        common::send(&px, &dir, "rs-1", &msg, common::Transport::Post);
        if common::status(&dir, "rs-1") == "pkiStatus=0" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{}", px.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    let cert = common::issued(&dir, "rs-1", (&selfsigned, &key));
    assert_eq!(verify(&up.st("ca.pem"), &cert), "subject=CN = rs-1.ran.example.net");
}

#[test]
fn micromdm_scepclient_through_the_proxy_to_micromdm_scepserver_with_its_own_challenge() {
    peer_versions();
    let srv = ScepServer::start();
    let cn = "fwd-5.ran.example.net";
    // The proxy admits this client by a pre-authorised CN (the challenge in
    // its CSR is scepserver's, which the proxy cannot check) and forwards
    // the challenge unread.
    let px = proxy_to(&srv.url(), &srv.depot.join("ca.pem"), 3600, |_, cfg| {
        *cfg = cfg.replacen("preauthorized_cns = []", &format!("preauthorized_cns = [\"{cn}\"]"), 1);
        cfg.push_str("upstream_auth = \"forward-challenge\"\n");
    });
    let d = tempfile::tempdir().unwrap();
    let out = scepclient(&px, d.path(), "secret", cn);
    assert!(
        out.status.success(),
        "{}\nproxy:\n{}\nscepserver:\n{}",
        text(&out),
        px.log(),
        srv.log()
    );
    assert!(text(&out).contains("PENDING"), "{}", text(&out));
    let subject = verify(&srv.depot.join("ca.pem"), &d.path().join("c.pem"));
    assert!(subject.contains(&format!("CN = {cn}")), "{subject}");
    assert!(
        px.log().contains(&format!("basis=preauthorised-cn:{cn}")),
        "{}",
        px.log()
    );
    std::thread::sleep(Duration::from_millis(2500)); // two relay passes
    assert_eq!(pkcsreqs_at(&srv), 1, "{}", srv.log());
}

/// A proxy in front of `up` (as [`proxy`]) whose EST listener also takes
/// TLS client certificates of the upstream CA, so a device renews
/// (`/simplereenroll`) with the certificate it obtained through the proxy.
/// `extra`: `[proxy]` keys (TOML).
fn renewing_proxy(up: &Mef, extra: &str) -> Mef {
    let up_st = up.st("");
    let extra: toml::Table = extra.parse().unwrap();
    proxy_to(
        &format!("http://127.0.0.1:{}/scep", up.scep),
        &up.st("ca.pem"),
        3600,
        move |st, cfg| {
            std::fs::copy(up_st.join("proxy-ra.pem"), st.join("ra.pem")).unwrap();
            std::fs::copy(up_st.join("proxy-ra.key"), st.join("ra.key.pem")).unwrap();
            std::fs::copy(up_st.join("ca.pem"), st.join("upstream-ca.pem")).unwrap();
            let mut t: toml::Table = cfg.parse().unwrap();
            t["est"].as_table_mut().unwrap().insert(
                "client_trust_anchors".into(),
                toml::Value::try_from(["device-ca.pem", "upstream-ca.pem"]).unwrap(),
            );
            t["proxy"].as_table_mut().unwrap().extend(extra);
            *cfg = toml::to_string(&t).unwrap();
        },
    )
}

/// A device of `px` enrolled through it: its device-CA identity, and the
/// certificate the upstream issued (PEM, `name.pem`) with its key.
fn enrolled(up: &Mef, px: &Mef, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dev = device(px, name, &format!("{name}.ran.example.net"));
    let done = until_decided(px, &dev, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}", done.body, px.log());
    verified(up, px.dir.path(), name, &done.body);
    let dir = px.dir.path();
    (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")), dev.2)
}

#[test]
fn a_reenrolment_with_the_same_key_is_a_new_upstream_transaction() {
    let up = upstream(false);
    let px = renewing_proxy(&up, "");
    let (cert, key, csr) = enrolled(&up, &px, "dev-re");
    let first_serial = common::serial(&cert);
    // RFC 7030 §4.2.2: the same key may be certified again. The proxy's
    // transaction is another (est-re-…); upstream it must be another too.
    let again = (cert.clone(), key, csr);
    let done = until_decided_at(&px, "simplereenroll", &again, Duration::from_secs(30));
    assert_eq!(done.status, 200, "{}\n{}\n{}", done.body, px.log(), up.log());
    assert_eq!(
        verified(&up, px.dir.path(), "dev-re-2", &done.body),
        "subject=CN = dev-re.ran.example.net"
    );
    let renewed = common::serial(&px.dir.path().join("dev-re-2.pem"));
    assert_ne!(renewed, first_serial, "answered with the certificate it renews");
}

#[test]
fn a_certificate_the_upstream_revoked_no_longer_renews_through_the_proxy() {
    let up = upstream(false);
    let px = renewing_proxy(&up, "crl_interval_seconds = 1\n");
    let (cert, key, _) = enrolled(&up, &px, "dev-rv");
    let serial = common::serial(&cert);
    // The upstream operator revokes it; the proxy learns it from the
    // upstream CA's CRL (GetCRL, checked against the pinned CA).
    up.run(&["revoke", &serial, "--reason", "key-compromise"]);
    let started = Instant::now();
    while metric(&px, "mef_proxy_events_total{event=\"upstream-revoked\"}") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the revocation was never learnt\n{}",
            px.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // RA-POP hides from the upstream that this is a renewal: the proxy
    // must refuse it itself, with a new key and with the same.
    let (_, new_csr) = key_and_csr_for(px.dir.path(), "dev-rv-new", "CN = dev-rv.ran.example.net", None, None);
    let new_b64 = px.dir.path().join("dev-rv-new.b64");
    std::fs::write(&new_b64, run("openssl", &["base64", "-in", p(&new_csr)]).stdout).unwrap();
    // (PKIOperations upstream count the GetCRLs too: count PKCSReqs.)
    let before = lines_with(&up.log(), "message_type=PKCSReq(19)");
    for csr in [new_b64, px.dir.path().join("dev-rv.b64")] {
        let a = est_post(&px, "simplereenroll", &(cert.clone(), key.clone(), csr));
        assert_eq!(a.status, 403, "{}\n{}", a.body, px.log());
        assert!(a.body.contains("revoked"), "{}", a.body);
    }
    std::thread::sleep(Duration::from_millis(2500)); // two relay passes
    assert_eq!(
        lines_with(&up.log(), "message_type=PKCSReq(19)"),
        before,
        "a renewal reached upstream"
    );
}

/// PKCSReqs micromdm `scepserver` parsed (its PKIOperations also count the
/// relay's GetCRLs, which it answers "not implemented").
fn pkcsreqs_at(srv: &ScepServer) -> u64 {
    lines_with(&srv.log(), "scep_message_type=\"PKCSReq (19)\"") as u64
}

/// Another request (a new key, a CSR for `cn`) from the client whose TLS
/// certificate and key `dev` holds.
fn same_client_new_key(
    px: &Mef,
    dev: &(PathBuf, PathBuf, PathBuf),
    name: &str,
    cn: &str,
) -> (PathBuf, PathBuf, PathBuf) {
    let dir = px.dir.path();
    let (_, csr) = key_and_csr_for(dir, name, &format!("CN = {cn}"), None, None);
    let b64 = dir.join(format!("{name}.b64"));
    std::fs::write(&b64, run("openssl", &["base64", "-in", p(&csr)]).stdout).unwrap();
    (dev.0.clone(), dev.1.clone(), b64)
}

#[test]
fn held_requests_are_capped_per_client_and_a_held_ones_retry_is_still_answered() {
    // Upstream holds everything for its operator: nothing is decided, every
    // request stays pending at the proxy.
    let up = upstream(true);
    let px = proxy(&up, 3600);
    let cn = "cap-a.ran.example.net";
    let a = device(&px, "cap-a-0", cn);
    let mut reqs = vec![a.clone()];
    for i in 1..5 {
        reqs.push(same_client_new_key(&px, &a, &format!("cap-a-{i}"), cn));
    }
    for r in &reqs[..4] {
        let got = simpleenroll(&px, r);
        assert_eq!(got.status, 202, "{}\n{}", got.body, px.log());
    }
    // The default max_pending_per_client is 4: the fifth is not held.
    let fifth = est_post_with(&px, "simpleenroll", &reqs[4], &["-D", "-"]);
    assert_eq!(fifth.status, 503, "{}\n{}", fifth.body, px.log());
    assert!(fifth.body.contains("max_pending_per_client"), "{}", fifth.body);
    assert!(
        fifth.body.to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        fifth.body
    );
    // Another client's request is held (the fifth pending transaction).
    let b = device(&px, "cap-b", "cap-b.ran.example.net");
    assert_eq!(simpleenroll(&px, &b).status, 202);
    // A retry of a held request is answered from storage, not capped.
    assert_eq!(simpleenroll(&px, &reqs[0]).status, 202);
    assert_eq!(metric(&px, "mef_proxy_events_total{event=\"hold-refused\"}"), 1);
    // Refused before it was held: the proxy holds four for this client, five in all.
    let held = px.run(&["scep", "pending", "list"]);
    assert_eq!(held.lines().filter(|l| l.contains(cn)).count(), 4, "{held}");
    assert_eq!(
        held.lines().filter(|l| l.contains("ran.example.net")).count(),
        5,
        "{held}"
    );
}
