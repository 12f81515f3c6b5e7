//! `mef serve` against peers we did not write: micromdm's `scepclient`
//! enrols with a one-time challenge (and cannot reuse it), and the server
//! survives 1,000 hostile requests and still enrols.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

struct Mef {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Mef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mef(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mef")).args(args).output().unwrap()
}

fn version(cmd: &str, pkg: &str) -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", pkg])
        .output()
        .expect("dpkg-query");
    format!("{cmd} {}", String::from_utf8_lossy(&out.stdout))
}

impl Mef {
    /// `mef init` then `mef serve` with `[scep] ciphers` set to `ciphers`.
    fn start(ciphers: &[&str]) -> Mef {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let out = mef(&["init", "--dir", st.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let path = st.join("mef.toml");
        let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        cfg["scep"].as_table_mut().unwrap().insert(
            "ciphers".into(),
            toml::Value::Array(ciphers.iter().map(|c| toml::Value::from(*c)).collect()),
        );
        // The hostile-request test feeds the parsers 600 PKIOperations from
        // this host: exempt it from the per-address enrolment rate (its own
        // test is in hostile_load.rs), or most would be turned away unread.
        cfg["limits"].as_table_mut().unwrap().insert(
            "exempt_addresses".into(),
            toml::Value::Array(vec![toml::Value::from("127.0.0.1")]),
        );
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
        let (child, url, port) = Self::serve(dir.path());
        Mef { dir, child, url, port }
    }

    /// Stop and start `mef serve` on the same state (a new port).
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.child, self.url, self.port) = Self::serve(self.dir.path());
    }

    fn serve(dir: &Path) -> (Child, String, u16) {
        let st = dir.join("st");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mef"))
            .args([
                "-c",
                st.join("mef.toml").to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--est-listen",
                "127.0.0.1:0",
                "--est-listen-openssl",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("serve.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("mef: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/scep")
            .parse()
            .unwrap();
        (child, url, port)
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("st/mef.toml")
    }
    fn challenge(&self, label: &str) -> String {
        let out = mef(&[
            "-c",
            self.config().to_str().unwrap(),
            "challenge",
            "add",
            "--label",
            label,
        ]);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
    fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("st/ca.pem")
    }
    fn ra_pem(&self) -> PathBuf {
        self.dir.path().join("st/ra.pem")
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap()
    }
}

fn scepclient(url: &str, challenge: &str, dir: &Path, cn: &str) -> Output {
    Command::new("scepclient")
        .current_dir(dir)
        .args([
            "-server-url",
            url,
            "-challenge",
            challenge,
            "-private-key",
            "k.pem",
            "-certificate",
            "c.pem",
            "-cn",
            cn,
        ])
        .output()
        .expect("scepclient must be installed (.ci/run installs Debian's scep package)")
}

#[test]
fn micromdm_scepclient_enrols_with_a_one_time_challenge_that_cannot_be_reused() {
    println!("peer: {}", version("micromdm scepclient", "scep"));
    // micromdm scepclient 2.1.0 encrypts with single DES whatever GetCACaps says.
    let m = Mef::start(&["aes", "des3", "des"]);
    let ch = m.challenge("device-a");
    let a = tempfile::tempdir().unwrap();
    let out = scepclient(&m.url, &ch, a.path(), "device-a");
    assert!(
        out.status.success(),
        "scepclient failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    openssl_ok(&[
        "verify",
        "-CAfile",
        m.ca_pem().to_str().unwrap(),
        a.path().join("c.pem").to_str().unwrap(),
    ]);
    let subject = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-in",
            a.path().join("c.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("CN = device-a"));

    // The same challenge from another device: refused with badRequest.
    let b = tempfile::tempdir().unwrap();
    let out = scepclient(&m.url, &ch, b.path(), "device-b");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success() && text.contains("badRequest"), "{text}");
    assert!(!b.path().join("c.pem").exists());
    assert!(m.log().contains("already used"), "{}", m.log());
}

/// One raw HTTP/1.1 exchange; returns the status code (0 if the server closed without answering).
fn raw(port: u16, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf[..buf.len().min(16)]).to_string();
    head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-pki-message\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

#[test]
fn a_thousand_hostile_requests_then_a_normal_enrolment() {
    // micromdm scepclient 2.1.0 encrypts with single DES whatever GetCACaps says.
    let m = Mef::start(&["aes", "des3", "des"]);
    // A valid request to mutate: what scepclient sends is captured in the corpus.
    let vector = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/scep/micromdm-pkcsreq-caps-default.der"),
    )
    .unwrap();
    let rss_before = m.rss_kib();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1000u32 {
        let req = match i % 8 {
            0 => post(
                "/scep?operation=PKIOperation",
                &(0..(next() % 4096)).map(|_| next() as u8).collect::<Vec<_>>(),
            ),
            1 => post(
                "/scep?operation=PKIOperation",
                &vector[..(next() as usize % vector.len())],
            ),
            2 => {
                let mut v = vector.clone();
                for _ in 0..(1 + next() % 8) {
                    let p = next() as usize % v.len();
                    v[p] ^= 1 << (next() % 8);
                }
                post("/scep?operation=PKIOperation", &v)
            }
            3 => post("/scep?operation=PKIOperation", &vector), // replayed: answered with a signed FAILURE, never a certificate
            4 => post("/scep?operation=PKIOperation", &vec![0x30; 300 * 1024]), // oversized
            5 => get(&format!(
                "/scep?operation=PKIOperation&message={}",
                "A".repeat((next() % 2000) as usize)
            )),
            6 => get([
                "/scep?operation=Nope",
                "/scep",
                "/other",
                "/cgi-bin/pkiclient.exe?operation=GetCACaps",
                "/scep?operation=GetCACert&message=x",
            ][(next() % 5) as usize]),
            _ => b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n".to_vec(),
        };
        *statuses.entry(raw(m.port, &req)).or_insert(0u32) += 1;
    }
    println!("statuses for 1000 hostile requests: {statuses:?}");
    assert!(
        statuses.contains_key(&400) && statuses.contains_key(&413) && !statuses.contains_key(&429),
        "{statuses:?}"
    );
    // Still serving: a normal enrolment succeeds.
    let ch = m.challenge("after-the-storm");
    let d = tempfile::tempdir().unwrap();
    let out = scepclient(&m.url, &ch, d.path(), "after-the-storm");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rss_after = m.rss_kib();
    println!("server RSS: {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

/// certmonger's own daemon, isolated in a private D-Bus session with its
/// state under `dir`, asked to enrol `cn` from `url` with `challenge`.
/// Returns the exit status of `getcert request -w`, its output and the
/// daemon's log; the key and certificate land in `dir`.
fn certmonger_enrol(url: &str, challenge: &str, dir: &Path, cn: &str) -> (bool, String) {
    for sub in ["req", "cas", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let script = r#"
        certmonger -s -n -d 2 >"$D/certmonger.log" 2>&1 &
        cm=$!
        for _ in $(seq 100); do getcert list-cas -s >/dev/null 2>&1 && break; sleep 0.1; done
        getcert add-scep-ca -s -c mef -u "$URL" || { kill $cm; exit 2; }
        getcert request -s -c mef -k "$D/key.pem" -f "$D/cert.pem" -N "CN=$CN" -L "$CHALLENGE" -w -v
        rc=$?
        getcert list -s
        kill $cm
        exit $rc
    "#;
    let out = Command::new("timeout")
        .args(["120", "dbus-run-session", "--", "bash", "-c", script])
        .env("D", dir)
        .env("URL", url)
        .env("CN", cn)
        .env("CHALLENGE", challenge)
        .env("CERTMONGER_REQUESTS_DIR", dir.join("req"))
        .env("CERTMONGER_CAS_DIR", dir.join("cas"))
        .env("CERTMONGER_TMPDIR", dir.join("tmp"))
        .output()
        .expect("certmonger and dbus-run-session must be installed (.ci/run installs them)");
    let text = format!(
        "{}{}\ncertmonger log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("certmonger.log")).unwrap_or_default()
    );
    (out.status.success(), text)
}

fn scep_submit(url: &str, flag: &str) -> String {
    let out = Command::new("/usr/lib/certmonger/scep-submit")
        .args(["-u", url, flag])
        .output()
        .expect("certmonger's scep-submit helper");
    assert!(
        out.status.success(),
        "scep-submit {flag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pem_blocks(text: &str) -> Vec<String> {
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|b| b.find("-----BEGIN CERTIFICATE-----").map(|i| b[i..].trim().to_owned()))
        .collect()
}

/// certmonger's `scep-submit` reads our GetCACaps and GetCACert (RA first,
/// then CA, as its man page says), then the daemon builds a PKCSReq,
/// submits it through `scep-submit` and installs the certificate — once
/// with AES negotiated and once with a server that offers only DES3. The
/// one-time challenge cannot be used a second time.
#[test]
fn certmonger_enrols_with_aes_and_with_des3() {
    println!("peer: {}", version("certmonger", "certmonger"));
    for (ciphers, expect_caps, expect_alg) in [
        (&["aes", "des3"][..], "AES", "Aes256Cbc"),
        (&["des3"][..], "DES3", "DesEde3Cbc"),
    ] {
        let m = Mef::start(ciphers);
        let caps = scep_submit(&m.url, "-c");
        assert!(caps.lines().any(|l| l == expect_caps), "{caps}");
        assert_eq!(caps.lines().any(|l| l == "AES"), ciphers.contains(&"aes"), "{caps}");
        let certs = pem_blocks(&scep_submit(&m.url, "-C"));
        let ra = std::fs::read_to_string(m.ra_pem()).unwrap().trim().to_owned();
        let ca = std::fs::read_to_string(m.ca_pem()).unwrap().trim().to_owned();
        assert_eq!(certs, vec![ra, ca]);

        let ch = m.challenge("certmonger-dev");
        let d = tempfile::tempdir().unwrap();
        let (ok, text) = certmonger_enrol(&m.url, &ch, d.path(), "certmonger-dev");
        assert!(ok, "{text}\nserver log:\n{}", m.log());
        assert!(text.contains("status: MONITORING"), "{text}");
        openssl_ok(&[
            "verify",
            "-CAfile",
            m.ca_pem().to_str().unwrap(),
            d.path().join("cert.pem").to_str().unwrap(),
        ]);
        let log = m.log();
        let line = log
            .lines()
            .find(|l| l.contains("PKCSReq") && l.contains("SUCCESS"))
            .unwrap_or_else(|| panic!("no successful PKCSReq in\n{log}"));
        assert!(line.contains(expect_alg), "{line}");
        println!("certmonger with ciphers {ciphers:?}: {line}");

        // The same one-time challenge again: refused, nothing written.
        let e = tempfile::tempdir().unwrap();
        let (_, text) = certmonger_enrol(&m.url, &ch, e.path(), "certmonger-dev-2");
        assert!(text.contains("CA_REJECTED"), "{text}");
        assert!(!e.path().join("cert.pem").exists());
    }
}

fn curl(url: &str, out: &Path) {
    let o = Command::new("curl")
        .args(["-sf", "-o", out.to_str().unwrap(), url])
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr));
}

fn openssl_ok(args: &[&str]) -> String {
    let o = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "openssl {args:?}: {text}");
    text
}

/// `mef ca next` prepares a new CA that GetNextCACert serves, signed by the
/// current RA (RFC 8894 §4.7), checked with curl and OpenSSL; `mef ca
/// rollover` makes it current, with a new RA, and a client enrols under it.
#[test]
fn ca_rollover_through_getnextcacert() {
    let mut m = Mef::start(&["aes", "des3", "des"]);
    let caps = scep_submit(&m.url, "-c");
    assert!(!caps.contains("GetNextCACert"), "{caps}");
    let out = mef(&["-c", m.config().to_str().unwrap(), "ca", "next"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    m.restart();
    let caps = scep_submit(&m.url, "-c");
    assert!(caps.lines().any(|l| l == "GetNextCACert"), "{caps}");
    let d = tempfile::tempdir().unwrap();
    let reply = d.path().join("next.p7");
    curl(&format!("{}?operation=GetNextCACert", m.url), &reply);
    let next_pem = m.dir.path().join("st/next-ca.pem");
    // Signed by the current RA, which chains to the current CA.
    let inner = d.path().join("inner.p7");
    openssl_ok(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        reply.to_str().unwrap(),
        "-CAfile",
        m.ca_pem().to_str().unwrap(),
        "-purpose",
        "any",
        "-out",
        inner.to_str().unwrap(),
    ]);
    let certs = openssl_ok(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        inner.to_str().unwrap(),
        "-print_certs",
    ]);
    let next = std::fs::read_to_string(&next_pem).unwrap();
    assert!(certs.contains(next.trim()), "{certs}");

    // Roll over: the next CA becomes current, with a new RA.
    let old_ca = std::fs::read_to_string(m.ca_pem()).unwrap();
    let out = mef(&["-c", m.config().to_str().unwrap(), "ca", "rollover"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!next_pem.exists());
    let cfg: toml::Table = std::fs::read_to_string(m.config()).unwrap().parse().unwrap();
    let ca_now = m.dir.path().join("st").join(cfg["ca_certificate"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(&ca_now).unwrap(), next);
    assert_ne!(next, old_ca);
    m.restart();
    let served = pem_blocks(&scep_submit(&m.url, "-C"));
    assert_eq!(served[1], next.trim());
    let caps = scep_submit(&m.url, "-c");
    assert!(!caps.contains("GetNextCACert"), "{caps}");
    let ch = m.challenge("after-rollover");
    let c = tempfile::tempdir().unwrap();
    let out = scepclient(&m.url, &ch, c.path(), "after-rollover");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
    openssl_ok(&[
        "verify",
        "-CAfile",
        ca_now.to_str().unwrap(),
        c.path().join("c.pem").to_str().unwrap(),
    ]);
}
