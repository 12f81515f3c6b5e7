//! The SCEP Client / Proxy of seed 004 (issue K), end to end on 127.0.0.1:
//! curl (a device with a TLS client certificate) → `mef serve` in proxy
//! mode (`[proxy]`) → an upstream `mef serve` that authorises the proxy by
//! RA-POP (`[[authorisation.ra]]`). Every certificate is checked against
//! the upstream CA with OpenSSL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{key_and_csr_for, p, run};
use enrolkit_testkit::Mef;
use std::path::{Path, PathBuf};
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
/// `ran.example.net`; `manual`: held for its operator.
fn upstream(manual: bool) -> Mef {
    Mef::start(mef_bin(), &[], |st, cfg| {
        openssl_cert(
            st,
            "proxy-ra",
            "/CN=SCEP proxy RA",
            "extendedKeyUsage=1.3.6.1.5.5.7.3.28\n",
            None,
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
    Mef::start(mef_bin(), &[], |st, cfg| {
        for f in ["proxy-ra.pem", "proxy-ra.key"] {
            std::fs::copy(up_st.join(f), st.join(f)).unwrap();
        }
        openssl_cert(
            st,
            "device-ca",
            "/CN=Device CA",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
            None,
        );
        *cfg = cfg
            .replace("ra_certificate = \"ra.pem\"", "ra_certificate = \"proxy-ra.pem\"")
            .replace("ra_key = \"ra.key.pem\"", "ra_key = \"proxy-ra.key\"")
            .replace(
                "client_trust_anchors = [\"ca.pem\"]",
                "client_trust_anchors = [\"device-ca.pem\"]",
            );
        let notified = st.join("notified");
        cfg.push_str(&format!(
            "\n[proxy]\nupstream = \"http://127.0.0.1:{}/scep\"\nca_fingerprint = \"{}\"\npoll_interval_seconds = 1\n\
             polling_window_seconds = {window_seconds}\nnotify_command = [\"/bin/sh\", \"-c\", \
             \"echo \\\"$ENROL_PROXY_EVENT $ENROL_SUBJECT\\\" >> {}\"]\n",
            up.scep,
            fingerprint(&up.st("ca.pem")),
            notified.display()
        ));
    })
}

/// A device: its certificate from the device CA of `px`, and a CSR for the same name.
fn device(px: &Mef, name: &str, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = px.dir.path();
    let (cert, key) = openssl_cert(
        dir,
        &format!("{name}-id"),
        &format!("/CN={cn}"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        Some((&px.st("device-ca.pem"), &px.st("device-ca.key"))),
    );
    let (_, csr) = key_and_csr_for(dir, name, &format!("CN = {cn}"), None, None);
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
    let o = std::process::Command::new("curl")
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
        .arg(format!("https://127.0.0.1:{}/.well-known/est/simpleenroll", px.rustls))
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
    let started = Instant::now();
    loop {
        let a = simpleenroll(px, dev);
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

/// PKIOperations the upstream answered.
fn upstream_requests(up: &Mef) -> u64 {
    metric(up, "mef_requests_total{protocol=\"scep\",operation=\"PKIOperation\"")
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
