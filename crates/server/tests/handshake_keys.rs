//! Issue H: nothing in a TLS handshake waits on the database. A flood of
//! PSK handshakes with unknown identities (made-up names, KreId- and
//! B-TID-shaped ones) against the OpenSSL listener costs no storage lookup,
//! while a handshake with a known identity completes meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_rspf::enrolment::{EnrolmentKeys, EXPORT_LEN};
use enrolkit_rspf::Fqdn;
use enrolkit_server::handshake::{PskSealer, PskView};
use enrolkit_server::rspf::{RspfService, RspfSetup};
use enrolkit_server::storage::{SqliteStorage, Storage};
use enrolkit_tls::{Acceptor, ClientTlsConfig, Connector, PskKey, PskStore, ServerTlsConfig, ServerTrust, TlsVersion};
use std::str::FromStr;
use std::sync::Arc;
use zeroize::Zeroizing;

const MEF: &str = "mef.example.net";
const KNOWN: &str = "kpm-known";
const KNOWN_KEY: [u8; 32] = [0x4b; 32];
const FLOOD: usize = 150;

/// A self-signed P-256 server certificate and its PKCS#8 key (DER).
fn server_identity() -> (Vec<u8>, Zeroizing<Vec<u8>>) {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509NameBuilder, X509};
    let key =
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "mef test").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
    (
        b.build().to_der().unwrap(),
        Zeroizing::new(key.private_key_to_pkcs8().unwrap()),
    )
}

fn client(identity: &str, key: &[u8]) -> Connector {
    Connector::new(&ClientTlsConfig {
        trust: ServerTrust::Anchors(Vec::new()),
        certificate: None,
        psk: Some((identity.into(), PskKey::Fixed(Zeroizing::new(key.to_vec())))),
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls12,
        keying_export: None,
    })
    .unwrap()
}

/// Identities nobody holds: names, KreIds of enrolments never recorded
/// under this MEF, B-TIDs of bootstraps never made.
fn unknown(i: usize) -> String {
    match i % 3 {
        0 => format!("attacker-{i}"),
        1 => {
            let mut export = [0u8; EXPORT_LEN];
            export[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let keys = EnrolmentKeys::from_export(&export).unwrap();
            keys.kre_id(Fqdn::new("MEF", MEF).unwrap()).to_string()
        }
        _ => {
            let mut rand = [0u8; enrolkit_rspf::gba::RAND_LEN];
            rand[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut out = [0u8; 300];
            let bsf = Fqdn::new("BSF", "bsf.example.net").unwrap();
            enrolkit_rspf::gba::write_btid(&rand, &bsf, &mut out)
                .unwrap()
                .to_owned()
        }
    }
}

#[test]
fn a_flood_of_unknown_psk_identities_costs_no_database_lookup_while_a_known_one_completes() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStorage::open(&dir.path().join("mef.db")).unwrap());
    let storage: Arc<dyn Storage> = sqlite.clone();
    let psks = Arc::new(PskView::load(storage.clone(), PskSealer::new(&[1; 32]).unwrap()).unwrap());
    psks.add(KNOWN, &KNOWN_KEY, "", None, 1).unwrap();
    let mef = Arc::new(
        RspfService::new(RspfSetup {
            mef_fqdn: MEF.into(),
            enrolees: Vec::new(),
            storage: storage.clone(),
            storage_key: Zeroizing::new([2; 32]),
            token_key: Zeroizing::new([3; 32]),
            targets: Vec::new(),
            operator_psks: true,
            ca_subject: x509_cert::name::Name::from_str("CN=test CA").unwrap(),
            send_credential_id: false,
            // Which suites a session may use is not this test's subject.
            require_forward_secrecy: false,
            psks: psks.clone(),
        })
        .unwrap(),
    );
    let (cert, key) = server_identity();
    let cfg = ServerTlsConfig {
        chain: vec![cert],
        key_pkcs8: key,
        client_trust_anchors: Vec::new(),
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        keying_export: None,
    };
    let store: Arc<dyn PskStore> = mef.clone();
    let acceptor = Acceptor::openssl(&cfg, Some(store)).unwrap();
    // The counter sees every trip to the database this handle makes: one
    // PSK lookup, as the handshake callback made before, counts.
    let probe = sqlite.accesses();
    assert!(storage.psk("attacker-0").unwrap().is_none());
    assert_eq!(sqlite.accesses(), probe + 1, "the counter counts lookups");
    let before = sqlite.accesses();
    let misses_before = psks.misses();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (flood_ok, known) = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let a = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok((mut s, info)) = a.accept(tcp).await {
                        // Tell the client whom the server authenticated.
                        let who = info.psk_identity.unwrap_or_default();
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut s, who.as_bytes()).await;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
                    }
                });
            }
        });
        let flood: Vec<_> = (0..FLOOD)
            .map(|i| {
                tokio::spawn(async move {
                    let id = unknown(i);
                    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    client(&id, &[0x66; 32]).connect("127.0.0.1", tcp).await.is_ok()
                })
            })
            .collect();
        // Meanwhile, the holder of a known identity.
        let known = tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (mut s, info) = client(KNOWN, &KNOWN_KEY).connect("127.0.0.1", tcp).await.unwrap();
            let mut who = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut s, &mut who).await.unwrap();
            (info.psk_identity.is_some() || !who.is_empty(), who)
        });
        let mut ok = 0;
        for f in flood {
            ok += usize::from(f.await.unwrap());
        }
        let known = known.await.unwrap();
        server.abort();
        (ok, known)
    });
    assert_eq!(flood_ok, 0, "no unknown identity completes a handshake");
    assert_eq!(
        known,
        (true, KNOWN.to_string()),
        "the known identity's handshake completed"
    );
    assert_eq!(
        sqlite.accesses() - before,
        0,
        "a handshake must never go to the database"
    );
    // Every unknown identity was asked for, and answered from memory.
    assert!(psks.misses() - misses_before >= FLOOD as u64, "{psks:?}");
}

/// The view of a running server follows what another process stores
/// (`mef psk add`) once reloaded, and a PSK stored in the clear by an older
/// version is sealed when the view is loaded, and still opens.
#[test]
fn psks_added_elsewhere_arrive_on_reload_and_clear_ones_are_sealed_on_load() {
    use enrolkit_server::handshake::Refresh;
    use enrolkit_server::storage::StoredKey;
    let dir = tempfile::tempdir().unwrap();
    let st: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("mef.db")).unwrap());
    let view = PskView::load(st.clone(), PskSealer::new(&[1; 32]).unwrap()).unwrap();
    // Another process (its own storage handle and view).
    let other_st: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&dir.path().join("mef.db")).unwrap());
    let other = PskView::load(other_st.clone(), PskSealer::new(&[1; 32]).unwrap()).unwrap();
    other.add("kpm-late", &[0x77; 16], "", None, 1).unwrap();
    assert!(view.key("kpm-late").is_none(), "not before a reload");
    view.refresh().unwrap();
    assert_eq!(view.key("kpm-late").unwrap().as_slice(), &[0x77; 16]);
    assert!(matches!(st.psk("kpm-late").unwrap().unwrap().key, StoredKey::Sealed(_)));
    // Nothing changed since: refreshes read the generation only.
    let reloads = view.reloads();
    for _ in 0..10 {
        view.refresh().unwrap();
    }
    assert_eq!(view.reloads(), reloads, "an idle database is not read again");
    // A removal elsewhere is seen at the next refresh.
    other_st.remove_psk("kpm-late").unwrap();
    view.refresh().unwrap();
    assert_eq!(view.reloads(), reloads + 1);
    assert!(view.key("kpm-late").is_none(), "removed elsewhere");
}

/// With many PSKs stored, an idle server's refresh costs one small read
/// (the generation), not a reload of every PSK: the view's reload count
/// stays put, one storage access per refresh.
#[test]
fn an_idle_refresh_reads_one_row_however_many_psks_are_stored() {
    use enrolkit_server::handshake::Refresh;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStorage::open(&dir.path().join("mef.db")).unwrap());
    let st: Arc<dyn Storage> = sqlite.clone();
    let sealer = PskSealer::new(&[1; 32]).unwrap();
    for i in 0..2000 {
        sealer
            .store(st.as_ref(), &format!("kpm-{i}"), &[7; 16], "", None, 1)
            .unwrap();
    }
    let view = PskView::load(st.clone(), sealer).unwrap();
    assert_eq!(view.len(), 2000);
    let (reloads, accesses) = (view.reloads(), sqlite.accesses());
    for _ in 0..100 {
        view.refresh().unwrap();
    }
    assert_eq!(view.reloads(), reloads);
    assert_eq!(sqlite.accesses() - accesses, 100, "one generation read per refresh");
    assert_eq!(view.len(), 2000);
}

/// One TLS 1.2 PSK handshake against an OpenSSL listener answering from
/// `store`: the identity the server authenticated, if it completed.
fn handshake(store: Arc<dyn PskStore>, identity: &str, key: &[u8]) -> Option<String> {
    let (cert, pkcs8) = server_identity();
    let cfg = ServerTlsConfig {
        chain: vec![cert],
        key_pkcs8: pkcs8,
        client_trust_anchors: Vec::new(),
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        keying_export: None,
    };
    let acceptor = Acceptor::openssl(&cfg, Some(store)).unwrap();
    let connector = client(identity, key);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.ok().and_then(|(_, info)| info.psk_identity)
        });
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let client_ok = connector.connect("127.0.0.1", tcp).await.is_ok();
        let seen = server.await.unwrap();
        seen.filter(|_| client_ok)
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Neither the database file nor its WAL holds `key`.
fn nowhere_in_the_clear(db: &std::path::Path, key: &[u8]) {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for f in [db.to_path_buf(), std::path::PathBuf::from(wal)] {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!contains(&bytes, key), "{} holds the PSK in the clear", f.display());
    }
}

#[test]
fn psks_are_sealed_at_rest_and_an_old_database_is_upgraded_and_still_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // Distinctive keys, so a match in the files is theirs.
    let old_key: Vec<u8> = (0..32u8).map(|i| 0xa0 ^ i.wrapping_mul(7)).collect();
    let new_key: Vec<u8> = (0..32u8).map(|i| 0x31 ^ i.wrapping_mul(13)).collect();
    {
        // Schema version 3 as it stored PSKs: the key in the clear.
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE psks (identity TEXT PRIMARY KEY, key BLOB NOT NULL, label TEXT NOT NULL,
                                created INTEGER NOT NULL, names TEXT);
             PRAGMA user_version = 3;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO psks (identity, key, label, created) VALUES ('kpm-old', ?1, 'device', 1)",
            [&old_key],
        )
        .unwrap();
    }
    assert!(
        contains(&std::fs::read(&db).unwrap(), &old_key),
        "the fixture holds it in the clear"
    );
    let sqlite = Arc::new(SqliteStorage::open(&db).unwrap());
    let storage: Arc<dyn Storage> = sqlite.clone();
    let view = Arc::new(PskView::load(storage.clone(), PskSealer::new(&[9; 32]).unwrap()).unwrap());
    // Upgraded: sealed in the database, and the old key still opens a session.
    assert!(matches!(
        storage.psk("kpm-old").unwrap().unwrap().key,
        enrolkit_server::storage::StoredKey::Sealed(_)
    ));
    view.add("kpm-new", &new_key, "", Some("{}"), 2).unwrap();
    nowhere_in_the_clear(&db, &old_key);
    nowhere_in_the_clear(&db, &new_key);
    assert_eq!(handshake(view.clone(), "kpm-old", &old_key).as_deref(), Some("kpm-old"));
    assert_eq!(handshake(view.clone(), "kpm-new", &new_key).as_deref(), Some("kpm-new"));
    assert_eq!(handshake(view.clone(), "kpm-old", &new_key), None, "the wrong key");
    drop((view, storage, sqlite));
    // A process with another storage key cannot use them.
    let st: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&db).unwrap());
    let other = Arc::new(PskView::load(st, PskSealer::new(&[8; 32]).unwrap()).unwrap());
    assert!(other.is_empty());
    assert_eq!(handshake(other, "kpm-old", &old_key), None);
    nowhere_in_the_clear(&db, &old_key);
    nowhere_in_the_clear(&db, &new_key);
}
