//! Keys in a real PKCS#11 token: SoftHSM2, with tokens this test binary
//! creates in a temporary directory (CI installs the `softhsm2` package).
//!
//! All tests share one process and so one loaded module; each uses its own
//! token, so their logins do not interact. The tokens are all created before
//! the module is first loaded, with `SOFTHSM2_CONF` pointing at a private
//! configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use der::{Decode, Encode};
use enrolkit_keys::{
    rsa_encrypt_pkcs1v15, verify, Decryptor, DigestAlgorithm, KeyError, KeyKind, KeySpec, SignatureAlgorithm, Signer,
};
use enrolkit_pkcs11::{Pkcs11Error, Pkcs11Key, Pkcs11Uri, Token};
use spki::SubjectPublicKeyInfoRef;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use zeroize::Zeroizing;

use enrolkit_testkit::softhsm::{SoftHsm, PIN};

/// One token per test.
const TOKENS: &[&str] = &["rsa", "ec", "reopen", "pin", "csr", "threads", "versions"];

/// Write straight to the process's stderr, past the test harness's capture.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The tokens, made before the module is first loaded in this process
/// (every test thread waits here), with `SOFTHSM2_CONF` pointing at them.
fn softhsm() -> &'static SoftHsm {
    static ENV: OnceLock<SoftHsm> = OnceLock::new();
    ENV.get_or_init(|| {
        let hsm = SoftHsm::new(TOKENS);
        hsm.export_env();
        note(&format!(
            "SoftHSM2 module {}, tokens in {}",
            hsm.module.display(),
            hsm.path().display()
        ));
        hsm
    })
}

/// The URI of a test token, with the PIN.
fn uri(token: &str) -> Pkcs11Uri {
    let s = format!(
        "pkcs11:token={token}?module-path={}&pin-value={PIN}",
        softhsm().module.display()
    );
    s.parse().unwrap()
}

fn open(token: &str) -> Token {
    Token::open(&uri(token)).unwrap_or_else(|e| panic!("open {token}: {e}"))
}

fn spki_der(key: &dyn Signer) -> Vec<u8> {
    key.public_key().to_der().unwrap()
}

fn assert_signs_and_verifies(key: &dyn Signer, alg: SignatureAlgorithm) {
    assert!(key.supports(alg), "{alg:?}");
    let der = spki_der(key);
    let spki = SubjectPublicKeyInfoRef::from_der(&der).unwrap();
    let msg = format!("message for {alg:?}");
    let sig = key.sign(alg, msg.as_bytes()).unwrap();
    verify(&spki, alg, msg.as_bytes(), &sig).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
    assert_eq!(
        verify(&spki, alg, b"another message", &sig),
        Err(KeyError::BadSignature),
        "{alg:?}"
    );
}

/// Check, through cryptoki directly rather than this crate, that the token
/// refuses to reveal the private key's secret attributes.
fn assert_secret_refused_by_token(token_label: &str, id: &[u8], secret: &[cryptoki::object::AttributeType]) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
    let ctx = Pkcs11::new(&softhsm().module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == token_label)
        .unwrap();
    // Login state is per process and token: the crate's session logged us in.
    let session = ctx.open_ro_session(slot).unwrap();
    let found = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.to_vec())])
        .unwrap();
    assert_eq!(found.len(), 1);
    let info = session.get_attribute_info(found[0], secret).unwrap();
    for (t, i) in secret.iter().zip(&info) {
        assert!(matches!(i, AttributeInfo::Sensitive), "{t:?}: {i:?}");
    }
    assert!(session.get_attributes(found[0], secret).unwrap().is_empty());
    let flags = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )
        .unwrap();
    for a in flags {
        match a {
            Attribute::Token(b) | Attribute::Private(b) | Attribute::Sensitive(b) => assert!(b, "{a:?}"),
            Attribute::Extractable(b) => assert!(!b),
            other => panic!("{other:?}"),
        }
    }
}

fn assert_protected(key: &Pkcs11Key) {
    let p = key.attributes().unwrap();
    assert!(p.sensitive, "{p:?}");
    assert!(!p.extractable, "{p:?}");
    assert!(p.always_sensitive, "{p:?}");
    assert!(p.never_extractable, "{p:?}");
    assert!(p.never_left_token());
    assert!(!key.secret_readable().unwrap());
}

#[test]
fn rsa_2048_generated_in_token_signs_every_algorithm_and_decrypts() {
    softhsm();
    let token = open("rsa");
    let key = token.generate(KeySpec::Rsa2048, "rsa-key", &[0x01, 0x02]).unwrap();
    assert_eq!(key.kind(), KeyKind::Rsa(2048));
    assert_eq!(key.label(), "rsa-key");
    assert_eq!(key.id(), &[0x01, 0x02]);
    for alg in [
        SignatureAlgorithm::RsaPkcs1Sha1,
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha512,
    ] {
        assert_signs_and_verifies(&key, alg);
    }
    assert!(!key.supports(SignatureAlgorithm::EcdsaP256Sha256));
    assert_eq!(
        key.sign(SignatureAlgorithm::EcdsaP256Sha256, b"m"),
        Err(KeyError::UnsupportedAlgorithm(SignatureAlgorithm::EcdsaP256Sha256))
    );

    // Decryption: what enrolkit_keys encrypts to the public key comes back.
    let der = spki_der(&key);
    let spki = SubjectPublicKeyInfoRef::from_der(&der).unwrap();
    let cek = b"0123456789abcdef0123456789abcdef";
    let ct = rsa_encrypt_pkcs1v15(&spki, cek).unwrap();
    let plain: Zeroizing<Vec<u8>> = key.decrypt_pkcs1v15(&ct).unwrap();
    assert_eq!(plain.as_slice(), cek);
    assert_eq!(key.decrypt_pkcs1v15(&ct[1..]), Err(KeyError::DecryptionFailed));
    let mut bad = ct.clone();
    bad[0] ^= 0x80;
    bad[200] ^= 0x01;
    assert!(key.decrypt_pkcs1v15(&bad).map(|p| p.as_slice() != cek).unwrap_or(true));
    // The session is still usable after a failed decryption.
    assert_eq!(key.decrypt_pkcs1v15(&ct).unwrap().as_slice(), cek);

    assert_protected(&key);
    assert_secret_refused_by_token(
        "rsa",
        &[0x01, 0x02],
        &[
            cryptoki::object::AttributeType::PrivateExponent,
            cryptoki::object::AttributeType::Prime1,
            cryptoki::object::AttributeType::Prime2,
        ],
    );

    // A second key may not reuse the label or the id.
    for (label, id) in [("rsa-key", &[9u8][..]), ("other", &[0x01, 0x02][..])] {
        let e = token.generate(KeySpec::Rsa2048, label, id).unwrap_err();
        assert!(matches!(e, Pkcs11Error::KeyExists { .. }), "{e}");
    }
    let debug = format!("{key:?} {token:?}");
    assert!(!debug.contains(PIN), "{debug}");
}

#[test]
fn p256_generated_in_token_signs_ecdsa() {
    softhsm();
    let token = open("ec");
    let key = token.generate(KeySpec::EcP256, "ec-key", &[0xec]).unwrap();
    assert_eq!(key.kind(), KeyKind::EcP256);
    assert_signs_and_verifies(&key, SignatureAlgorithm::EcdsaP256Sha256);
    for alg in [
        SignatureAlgorithm::RsaPkcs1Sha1,
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha512,
    ] {
        assert!(!key.supports(alg));
        assert_eq!(key.sign(alg, b"m"), Err(KeyError::UnsupportedAlgorithm(alg)));
    }
    assert!(matches!(
        key.decrypt_pkcs1v15(&[0u8; 256]),
        Err(KeyError::UnsupportedKey(_))
    ));
    // The SPKI is a standard id-ecPublicKey/prime256v1 one.
    let der = spki_der(&key);
    let spki = SubjectPublicKeyInfoRef::from_der(&der).unwrap();
    assert_eq!(enrolkit_keys::public_key_kind(&spki).unwrap(), KeyKind::EcP256);

    assert_protected(&key);
    assert_secret_refused_by_token("ec", &[0xec], &[cryptoki::object::AttributeType::Value]);
}

#[test]
fn other_key_sizes_are_generated_in_token() {
    softhsm();
    let token = open("threads");
    let key = token.generate(KeySpec::Rsa3072, "rsa-3072", &[0x30]).unwrap();
    assert_eq!(key.kind(), KeyKind::Rsa(3072));
    assert_signs_and_verifies(&key, SignatureAlgorithm::RsaPkcs1Sha256);
    assert_protected(&key);
}

#[test]
fn one_key_signs_from_many_threads() {
    softhsm();
    let token = open("threads");
    let key = Arc::new(token.generate(KeySpec::EcP256, "shared", &[0x7e]).unwrap());
    let der = spki_der(key.as_ref());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let key = Arc::clone(&key);
            let der = der.clone();
            std::thread::spawn(move || {
                let spki = SubjectPublicKeyInfoRef::from_der(&der).unwrap();
                for i in 0..10 {
                    let msg = format!("thread {t} message {i}");
                    let sig = key.sign(SignatureAlgorithm::EcdsaP256Sha256, msg.as_bytes()).unwrap();
                    verify(&spki, SignatureAlgorithm::EcdsaP256Sha256, msg.as_bytes(), &sig).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn reopening_by_uri_finds_the_same_key() {
    softhsm();
    let (rsa_uri, rsa_spki, ec_uri, ec_spki) = {
        let token = open("reopen");
        let rsa = token.generate(KeySpec::Rsa2048, "device-rsa", &[0xaa, 0x01]).unwrap();
        let ec = token.generate(KeySpec::EcP256, "device-ec", &[0xaa, 0x02]).unwrap();
        (rsa.uri(), spki_der(&rsa), ec.uri(), spki_der(&ec))
        // Token and keys dropped: the session closes and the token logs out,
        // so the opens below log in afresh.
    };
    let shown = rsa_uri.to_string();
    assert!(shown.starts_with("pkcs11:"), "{shown}");
    assert!(shown.contains("object=device-rsa") && shown.contains("id=%AA%01") && shown.contains("type=private"));
    note(&format!("key URI: {shown}"));

    // No PIN in the URI a key reports.
    assert!(matches!(
        Pkcs11Key::open(&rsa_uri),
        Err(Pkcs11Error::PinRequired { .. })
    ));

    // From the URI text, with the PIN in a pin-source file.
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let text = format!("{shown}&pin-source=file:{}", pin_file.display());
    let again = Pkcs11Key::open(&text.parse().unwrap()).unwrap();
    assert_eq!(spki_der(&again), rsa_spki);
    assert_eq!(again.kind(), KeyKind::Rsa(2048));
    assert_signs_and_verifies(&again, SignatureAlgorithm::RsaPkcs1Sha256);
    drop(again);

    let mut ec_uri = ec_uri;
    ec_uri.set_pin(Zeroizing::new(PIN.as_bytes().to_vec()));
    let ec = Pkcs11Key::open(&ec_uri).unwrap();
    assert_eq!(spki_der(&ec), ec_spki);
    assert_signs_and_verifies(&ec, SignatureAlgorithm::EcdsaP256Sha256);

    // By label alone, by id alone, and with a hand-written URI.
    let token = open("reopen");
    assert_eq!(spki_der(&token.find(Some("device-rsa"), None).unwrap()), rsa_spki);
    assert_eq!(spki_der(&token.find(None, Some(&[0xaa, 0x02])).unwrap()), ec_spki);
    let by_hand: Pkcs11Uri = format!(
        "pkcs11:token=reopen;object=device-ec;type=private?module-path={}&pin-value={PIN}",
        softhsm().module.display()
    )
    .parse()
    .unwrap();
    assert_eq!(spki_der(&Pkcs11Key::open(&by_hand).unwrap()), ec_spki);
    let by_rsa_uri = Pkcs11Key::open(&{
        let mut u = rsa_uri.clone();
        u.set_pin(Zeroizing::new(PIN.as_bytes().to_vec()));
        u
    })
    .unwrap();
    assert_eq!(spki_der(&by_rsa_uri), rsa_spki);

    // Clear errors for keys that are not there or not keys.
    let e = token.find(Some("no-such-key"), None).unwrap_err();
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e}");
    assert!(
        e.to_string().contains("no-such-key") && e.to_string().contains("reopen"),
        "{e}"
    );
    assert!(matches!(token.find(None, None), Err(Pkcs11Error::NoObject)));
    let mut cert_uri = uri("reopen");
    cert_uri.object = Some("device-ec".into());
    cert_uri.object_type = Some(enrolkit_pkcs11::ObjectType::Cert);
    assert!(matches!(Pkcs11Key::open(&cert_uri), Err(Pkcs11Error::NotAKey("cert"))));

    // A key can be removed; it is then gone.
    let victim = token.generate(KeySpec::EcP256, "temporary", &[0xde, 0xad]).unwrap();
    victim.destroy().unwrap();
    assert!(matches!(
        token.find(Some("temporary"), None),
        Err(Pkcs11Error::KeyNotFound { .. })
    ));
}

#[test]
fn wrong_pin_and_missing_token_are_clear_errors() {
    softhsm();
    let mut wrong = uri("pin");
    wrong.set_pin(Zeroizing::new(b"0000".to_vec()));
    let e = Token::open(&wrong).unwrap_err();
    assert!(
        matches!(&e, Pkcs11Error::PinIncorrect { token } if token == "pin"),
        "{e:?}"
    );
    note(&format!("wrong PIN: {e}"));
    assert!(!format!("{e} {e:?}").contains("0000"));

    let mut none = uri("pin");
    none.clear_pin();
    let e = Token::open(&none).unwrap_err();
    assert!(matches!(e, Pkcs11Error::PinRequired { .. }), "{e:?}");

    let mut missing_file = uri("pin");
    missing_file.set_pin_source(PathBuf::from("/nonexistent/enrolkit-pin"));
    let e = Token::open(&missing_file).unwrap_err();
    assert!(matches!(e, Pkcs11Error::PinSource { .. }), "{e:?}");

    // The right PIN works; while the token is open in this process, a
    // different PIN cannot be checked by the token and is refused.
    let token = open("pin");
    assert_eq!(token.label(), "pin");
    let e = Token::open(&wrong).unwrap_err();
    assert!(matches!(e, Pkcs11Error::PinMismatch { .. }), "{e:?}");
    let same = open("pin");
    assert_eq!(same.serial(), token.serial());
    drop((token, same));
    // Closed again: the token checks the PIN itself once more.
    assert!(matches!(Token::open(&wrong), Err(Pkcs11Error::PinIncorrect { .. })));

    let e = Token::open(&uri("no-such-token")).unwrap_err();
    match &e {
        Pkcs11Error::TokenNotFound { wanted, available } => {
            assert!(wanted.contains("no-such-token"), "{wanted}");
            assert!(available.contains("\"pin\""), "{available}");
        }
        other => panic!("{other:?}"),
    }
    note(&format!("missing token: {e}"));

    // Matching by serial number as well as label.
    let token = open("pin");
    let mut by_serial = uri("pin");
    by_serial.serial = Some(token.serial().to_owned());
    assert_eq!(Token::open(&by_serial).unwrap().serial(), token.serial());
    by_serial.serial = Some("0000000000000000".into());
    assert!(matches!(
        Token::open(&by_serial),
        Err(Pkcs11Error::TokenNotFound { .. })
    ));

    // Several tokens match a URI without token=: ambiguous, and said so.
    let mut any = uri("pin");
    any.token = None;
    assert!(matches!(Token::open(&any), Err(Pkcs11Error::AmbiguousToken { .. })));
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

fn write_pem(dir: &Path, name: &str, label: &str, der: &[u8]) -> String {
    let path = dir.join(name);
    let pem = der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap();
    std::fs::write(&path, pem).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn csr_and_certificate_signed_in_token_verify_with_openssl() {
    use enrolkit_scep::pkix::pkcs10::RequestParams;
    use enrolkit_scep::self_signed_certificate;
    use std::str::FromStr;
    use x509_cert::name::Name;
    softhsm();
    let token = open("csr");
    let dir = tempfile::tempdir().unwrap();
    let rsa = token.generate(KeySpec::Rsa2048, "csr-rsa", &[0xc1]).unwrap();
    let ec = token.generate(KeySpec::EcP256, "csr-ec", &[0xc2]).unwrap();
    let cases: [(&dyn Signer, DigestAlgorithm, &str); 4] = [
        (&rsa, DigestAlgorithm::Sha256, "rsa-sha256"),
        (&rsa, DigestAlgorithm::Sha1, "rsa-sha1"), // legacy SCEP servers
        (&rsa, DigestAlgorithm::Sha512, "rsa-sha512"),
        (&ec, DigestAlgorithm::Sha256, "ec-sha256"),
    ];
    for (signer, digest, name) in cases {
        let subject = Name::from_str(&format!("CN={name},O=enrolkit")).unwrap();
        let csr = RequestParams {
            dns_names: vec![format!("{name}.example")],
            digest,
            ..RequestParams::new(subject.clone())
        }
        .with_challenge_password(Some("one-time"))
        .build(signer)
        .unwrap();
        let path = write_pem(dir.path(), &format!("{name}.csr"), "CERTIFICATE REQUEST", &csr);
        let out = openssl(&["req", "-in", &path, "-noout", "-verify"]);
        assert!(
            out.contains("verify OK") || out.contains("Certificate request self-signature verify OK"),
            "{out}"
        );

        let cert = self_signed_certificate(
            signer,
            &subject,
            digest,
            std::time::SystemTime::now(),
            std::time::Duration::from_secs(86_400),
            &mut rand_core::OsRng,
        )
        .unwrap();
        let path = write_pem(
            dir.path(),
            &format!("{name}.pem"),
            "CERTIFICATE",
            &cert.to_der().unwrap(),
        );
        // The self-signature checked by OpenSSL, with the certificate as its own anchor.
        let out = openssl(&["verify", "-check_ss_sig", "-CAfile", &path, &path]);
        assert!(out.contains(": OK"), "{out}");
        // And the public key in it is the token's.
        let text = openssl(&["x509", "-in", &path, "-noout", "-pubkey"]);
        let (_, spki) = der::pem::decode_vec(text.trim().as_bytes()).unwrap();
        assert_eq!(spki, spki_der(signer), "{name}");
    }
    note("CSRs and self-signed certificates signed in SoftHSM2 verified by openssl req -verify / openssl verify");
}

#[test]
fn successive_key_pairs_share_a_label_and_are_told_apart_by_id() {
    let token = open("versions");
    let one = token.generate_version(KeySpec::EcP256, "cred", &[1]).unwrap();
    let two = token.generate_version(KeySpec::EcP256, "cred", &[2]).unwrap();
    assert_ne!(spki_der(&one), spki_der(&two));
    assert_eq!(spki_der(&token.find(Some("cred"), Some(&[2])).unwrap()), spki_der(&two));
    // The label alone no longer names one key, and generate() refuses it.
    let e = token.find(Some("cred"), None).unwrap_err();
    assert!(e.to_string().contains("cred"), "{e}");
    assert!(matches!(
        token.generate(KeySpec::EcP256, "cred", &[3]),
        Err(Pkcs11Error::KeyExists { .. })
    ));
    // A used id, or none, is refused.
    assert!(matches!(
        token.generate_version(KeySpec::EcP256, "cred", &[1]),
        Err(Pkcs11Error::KeyExists { .. })
    ));
    assert!(token.generate_version(KeySpec::EcP256, "cred", &[]).is_err());
    one.destroy().unwrap();
    assert!(token.find(Some("cred"), Some(&[1])).is_err());
    assert!(token.find(Some("cred"), None).is_ok(), "one pair left");
}
