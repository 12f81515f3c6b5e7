//! The oneM2M Enrolment Key comes out of a live TLS handshake exactly as
//! OpenSSL computes it: our client against `openssl s_server -keymatexport`,
//! and `openssl s_client -keymatexport` against both of our listeners, TLS
//! 1.2 and 1.3, with pre-shared keys (KpmId / Kpm) and with certificates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_rspf::enrolment::{EnrolmentKeys, EXPORTER_LABEL, EXPORT_LEN};
use enrolkit_testkit::Peer;
use enrolkit_tls::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

const KPM: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
const KPM_ID: &str = "kpm-exporter-test";

fn export() -> Option<KeyingExport> {
    Some(KeyingExport {
        label: EXPORTER_LABEL.into(),
        context: None,
        len: EXPORT_LEN,
    })
}

fn openssl_version() -> String {
    let o = Command::new("openssl").arg("version").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The first "Keying material: HEX" line on `out`, as bytes.
fn keying_material(out: impl std::io::Read) -> Vec<u8> {
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(hexed) = line.trim().strip_prefix("Keying material: ") {
            return hex::decode(hexed).unwrap();
        }
    }
    panic!("OpenSSL printed no keying material");
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn flag(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "-tls1_2",
        TlsVersion::Tls13 => "-tls1_3",
    }
}

#[test]
fn our_client_against_openssl_s_server() {
    println!("peer: {}", openssl_version());
    for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let mut server = Peer::spawn(
            |port| {
                let mut c = Command::new("openssl");
                c.args(["s_server", "-accept", &port.to_string(), "-nocert", "-cipher", "PSK"])
                    .args(["-psk", KPM, "-psk_identity", KPM_ID, flag(v)])
                    .args(["-keymatexport", EXPORTER_LABEL, "-keymatexportlen", "48"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                c
            },
            Duration::from_secs(10),
        )
        .unwrap();
        let cfg = ClientTlsConfig {
            trust: ServerTrust::Anchors(Vec::new()),
            certificate: None,
            psk: Some((KPM_ID.into(), PskKey::Fixed(Zeroizing::new(hex::decode(KPM).unwrap())))),
            min_version: v,
            max_version: v,
            keying_export: export(),
        };
        let connector = Connector::new(&cfg).unwrap();
        let info = rt().block_on(async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap();
            let (_stream, info) = connector.connect("127.0.0.1", tcp).await.unwrap();
            info
        });
        assert_eq!(info.version, v);
        let ours = info.exported.expect("exported");
        let theirs = keying_material(server.child.stdout.take().unwrap());
        assert_eq!(ours.expose(), theirs.as_slice(), "{v}: exporter output");
        let keys = EnrolmentKeys::from_export(ours.expose()).unwrap();
        assert_eq!(keys.ke.expose().as_slice(), &theirs[16..48], "{v}: Ke");
        assert_eq!(keys.relative_ke_id.0.as_slice(), &theirs[..16], "{v}: RelativeKeId");
        drop(server.child.stdin.take());
    }
}

struct OnePsk;
impl PskStore for OnePsk {
    fn psk(&self, identity: &str, _ctx: &PskContext) -> Option<Zeroizing<Vec<u8>>> {
        (identity == KPM_ID).then(|| Zeroizing::new(hex::decode(KPM).unwrap()))
    }
}

/// Serve one connection on `acceptor`; return the TlsInfo it saw.
fn serve_once(acceptor: Acceptor, client: impl FnOnce(u16) -> Vec<u8> + Send + 'static) -> (TlsInfo, Vec<u8>) {
    let rt = rt();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::task::spawn_blocking(move || client(port));
        let (tcp, _) = listener.accept().await.unwrap();
        let (stream, info) = acceptor.accept(tcp).await.unwrap();
        let printed = peer.await.unwrap();
        drop(stream);
        (info, printed)
    })
}

fn s_client(port: u16, args: &[&str]) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-keymatexport", EXPORTER_LABEL, "-keymatexportlen", "48"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = keying_material(c.stdout.take().unwrap());
    let _ = c.stdin.take().unwrap().write_all(b"");
    let _ = c.kill();
    let _ = c.wait();
    out
}

fn self_signed(dir: &std::path::Path) -> (Vec<u8>, Zeroizing<Vec<u8>>) {
    let (cert, key) = enrolkit_testkit::self_signed_p256(dir);
    (cert, Zeroizing::new(key))
}

#[test]
fn openssl_s_client_against_our_listeners() {
    println!("peer: {}", openssl_version());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let cfg = ServerTlsConfig {
            chain: vec![cert.clone()],
            key_pkcs8: key.clone(),
            client_trust_anchors: vec![cert.clone()],
            min_version: v,
            max_version: v,
            keying_export: export(),
        };
        // PSK on the OpenSSL listener (the pre-provisioned key framework).
        let acceptor = Acceptor::openssl(&cfg, Some(Arc::new(OnePsk))).unwrap();
        let (info, printed) = serve_once(acceptor, move |port| {
            s_client(port, &["-psk", KPM, "-psk_identity", KPM_ID, "-cipher", "PSK", flag(v)])
        });
        assert_eq!(info.psk_identity.as_deref(), Some(KPM_ID));
        assert_eq!(info.exported.unwrap().expose(), printed.as_slice(), "openssl {v}");
        // Certificates on both listeners (the certificate-based framework).
        for rustls in [false, true] {
            let acceptor = if rustls {
                Acceptor::rustls(&cfg).unwrap()
            } else {
                Acceptor::openssl(&cfg, None).unwrap()
            };
            let (info, printed) = serve_once(acceptor, move |port| s_client(port, &[flag(v)]));
            assert_eq!(info.version, v);
            assert_eq!(
                info.exported.unwrap().expose(),
                printed.as_slice(),
                "{} {v}",
                if rustls { "rustls" } else { "openssl" }
            );
        }
    }
}

#[test]
fn exports_are_bounded() {
    let cfg = ClientTlsConfig {
        trust: ServerTrust::Bootstrap,
        certificate: None,
        psk: None,
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        keying_export: Some(KeyingExport {
            label: EXPORTER_LABEL.into(),
            context: None,
            len: 256,
        }),
    };
    assert!(Connector::new(&cfg).is_err());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    for (label, len) in [(EXPORTER_LABEL, 0), ("", 48), (EXPORTER_LABEL, 256)] {
        let server = ServerTlsConfig {
            chain: vec![cert.clone()],
            key_pkcs8: key.clone(),
            client_trust_anchors: vec![cert.clone()],
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            keying_export: Some(KeyingExport {
                label: label.into(),
                context: None,
                len,
            }),
        };
        assert!(Acceptor::openssl(&server, None).is_err(), "{label:?} {len}");
        assert!(Acceptor::rustls(&server).is_err(), "{label:?} {len}");
    }
    // The exported bytes never print.
    let info = TlsInfo {
        backend: Backend::OpenSsl,
        version: TlsVersion::Tls13,
        peer_chain: Vec::new(),
        peer_cert_error: None,
        psk_identity: None,
        cipher_suite: None,
        channel_binding: None,
        exported: Some(Exported::from_secret(Zeroizing::new(vec![0xAB; 48]))),
    };
    let e = format!("{info:?}");
    assert!(!e.to_lowercase().contains("ab, ab") && !e.contains("171"), "{e}");
}

/// A PSK identity is credited only when the PSK authenticated the handshake:
/// a TLS 1.3 client naming a known identity without its key (wrong key, or
/// only a SHA-384 suite the SHA-256-bound PSK cannot use) gets no identity.
#[test]
fn a_psk_identity_without_its_key_is_not_credited() {
    println!("peer: {}", openssl_version());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let cfg = ServerTlsConfig {
        chain: vec![cert.clone()],
        key_pkcs8: key,
        client_trust_anchors: vec![cert],
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        keying_export: export(),
    };
    let wrong = "00".repeat(32);
    let cases: [(&str, Vec<&str>); 3] = [
        ("wrong key", vec!["-psk", &wrong, "-psk_identity", KPM_ID, "-tls1_3"]),
        (
            "SHA-384 only",
            vec![
                "-psk",
                KPM,
                "-psk_identity",
                KPM_ID,
                "-tls1_3",
                "-ciphersuites",
                "TLS_AES_256_GCM_SHA384",
            ],
        ),
        (
            "wrong key, TLS 1.2",
            vec!["-psk", &wrong, "-psk_identity", KPM_ID, "-tls1_2", "-cipher", "PSK"],
        ),
    ];
    for (what, args) in cases {
        let acceptor = Acceptor::openssl(&cfg, Some(Arc::new(OnePsk))).unwrap();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let rt = rt();
        let got = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let client = std::thread::spawn(move || {
                let mut c = Command::new("openssl")
                    .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(500));
                let _ = c.kill();
                let _ = c.wait();
            });
            let (tcp, _) = listener.accept().await.unwrap();
            let r = acceptor.accept(tcp).await;
            client.join().unwrap();
            r.map(|(_, info)| info.psk_identity)
        });
        // A refused handshake is fine too.
        if let Ok(id) = got {
            assert_eq!(id, None, "{what}: identity credited without its key");
        }
    }
}

/// Our PSK client refuses a server that ignores the PSK and authenticates
/// with a certificate instead (TLS 1.3 lets a server do that): it is not the
/// holder of the key, whatever its certificate says.
#[test]
fn our_psk_client_refuses_a_server_that_skips_the_psk() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let cfg = ServerTlsConfig {
        chain: vec![cert.clone()],
        key_pkcs8: key,
        client_trust_anchors: vec![cert],
        min_version: TlsVersion::Tls13,
        max_version: TlsVersion::Tls13,
        keying_export: None,
    };
    // A certificate-only listener: no PSK store, so it never takes the PSK.
    let acceptor = Acceptor::openssl(&cfg, None).unwrap();
    let client = ClientTlsConfig {
        trust: ServerTrust::Anchors(Vec::new()),
        certificate: None,
        psk: Some((KPM_ID.into(), PskKey::Fixed(Zeroizing::new(hex::decode(KPM).unwrap())))),
        min_version: TlsVersion::Tls13,
        max_version: TlsVersion::Tls13,
        keying_export: None,
    };
    let connector = Connector::new(&client).unwrap();
    let rt = rt();
    let err = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let r = connector.connect("127.0.0.1", tcp).await;
        server.abort();
        match r {
            Ok(_) => panic!("the client must refuse"),
            Err(e) => e,
        }
    });
    assert!(err.to_string().contains("pre-shared key"), "{err}");
}

/// A self-signed certificate (DER) for `localhost` with an `alg` key made by
/// OpenSSL (`ec` P-256 or `rsa` 2048), not a CA, and the key as our signer.
fn external(dir: &std::path::Path, alg: &str, name: &str) -> (Vec<u8>, Arc<dyn enrolkit_keys::Signer>) {
    let (k, c) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.der")));
    let opt = if alg == "ec" {
        "ec_paramgen_curve:P-256"
    } else {
        "rsa_keygen_bits:2048"
    };
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", alg, "-pkeyopt", opt, "-nodes"])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "2",
            "-outform",
            "DER",
            "-keyout",
        ])
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth,clientAuth"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let pem = std::fs::read_to_string(&k).unwrap();
    let key = enrolkit_keys::SoftwareKey::from_pem(&pem).unwrap();
    (std::fs::read(&c).unwrap(), Arc::new(key))
}

/// A client certificate whose key signs outside OpenSSL (a token's, here a
/// software key behind the same trait) authenticates to both of our
/// listeners over rustls: ECDSA with TLS 1.2 and 1.3, RSA (PKCS#1 v1.5)
/// with TLS 1.2; the server sees the chain and trusts it. RSA with TLS 1.3
/// only is refused at setup with the reason.
#[test]
fn a_client_key_that_signs_outside_openssl_authenticates_over_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let (server_cert, _) = external(dir.path(), "ec", "localhost");
    let server_key = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(dir.path().join("localhost.key"))
        .output()
        .unwrap()
        .stdout;
    for (alg, versions) in [
        ("ec", vec![TlsVersion::Tls12, TlsVersion::Tls13]),
        ("rsa", vec![TlsVersion::Tls12]),
    ] {
        let (client_cert, signer) = external(dir.path(), alg, &format!("device-{alg}"));
        for v in versions {
            let cfg = ServerTlsConfig {
                chain: vec![server_cert.clone()],
                key_pkcs8: Zeroizing::new(server_key.clone()),
                client_trust_anchors: vec![client_cert.clone()],
                min_version: v,
                max_version: v,
                keying_export: export(),
            };
            for rustls_server in [true, false] {
                let acceptor = if rustls_server {
                    Acceptor::rustls(&cfg).unwrap()
                } else {
                    Acceptor::openssl(&cfg, None).unwrap()
                };
                let client = ClientTlsConfig {
                    trust: ServerTrust::Anchors(vec![server_cert.clone()]),
                    certificate: Some((vec![client_cert.clone()], ClientKey::Signer(signer.clone()))),
                    psk: None,
                    min_version: TlsVersion::Tls12,
                    max_version: TlsVersion::Tls13,
                    keying_export: export(),
                };
                let connector = Connector::new(&client).unwrap();
                let (info, client_export) = serve_once(acceptor, move |port| {
                    rt().block_on(async move {
                        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                        let (_s, info) = connector.connect("127.0.0.1", tcp).await.unwrap();
                        assert_eq!(info.backend, Backend::Rustls);
                        info.exported.unwrap().expose().to_vec()
                    })
                });
                assert_eq!(info.version, v, "{alg} {v}");
                assert_eq!(info.peer_chain, vec![client_cert.clone()], "{alg} {v}");
                assert_eq!(info.peer_cert_error, None, "{alg} {v}");
                assert_eq!(info.exported.unwrap().expose(), client_export.as_slice(), "{alg} {v}");
            }
        }
        if alg == "rsa" {
            let only13 = ClientTlsConfig {
                trust: ServerTrust::Anchors(vec![server_cert.clone()]),
                certificate: Some((vec![client_cert.clone()], ClientKey::Signer(signer.clone()))),
                psk: None,
                min_version: TlsVersion::Tls13,
                max_version: TlsVersion::Tls13,
                keying_export: None,
            };
            let e = Connector::new(&only13).unwrap_err().to_string();
            assert!(e.contains("TLS 1.3"), "{e}");
        }
    }
}
