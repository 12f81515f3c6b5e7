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
    fn start() -> Mef {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let out = mef(&["init", "--dir", st.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut child = Command::new(env!("CARGO_BIN_EXE_mef"))
            .args([
                "-c",
                st.join("mef.toml").to_str().unwrap(),
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
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
        Mef { dir, child, url, port }
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
    let m = Mef::start();
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
    let verify = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            m.ca_pem().to_str().unwrap(),
            a.path().join("c.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
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
    let m = Mef::start();
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
        statuses.contains_key(&400) && statuses.contains_key(&413),
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
