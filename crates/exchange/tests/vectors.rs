//! Messages written by Python's `json` and `xml.etree` (testvectors/exchange,
//! make.py): every valid one decodes to the expected values, re-encodes to
//! the very bytes Python wrote (compact forms), and every invalid one is
//! refused with a reason that names the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_exchange::*;
use enrolkit_rspf::Key256;
use toml::Table;

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testvectors/exchange")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn format_of(name: &str) -> Format {
    if name.ends_with(".json") {
        Format::Json
    } else {
        Format::Xml
    }
}

fn decode_any(name: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let b = read(name);
    let f = format_of(name);
    // Which message: by file name.
    if name.starts_with("fetch-") {
        decode::<CredentialResponse>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("enrolment-request") {
        decode::<EnrolmentRequest>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("enrolment-instructions") {
        decode::<EnrolmentInstructions>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("enrolment-completion") {
        decode::<Completion>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("v318-request") {
        decode::<ExchangeRequest>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("v318-responses") {
        decode::<ExchangeResponses>(&b, f).and_then(|m| encode(&m, f))
    } else if name.starts_with("enrolment-refused") {
        decode::<enrolkit_exchange::Refused>(&b, f).and_then(|m| encode(&m, f))
    } else {
        panic!("{name}: unknown message")
    }
}

#[test]
fn every_vector_decodes_or_is_refused_as_the_manifest_says() {
    let m: Table = std::fs::read_to_string(dir().join("MANIFEST.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let files = m["files"].as_table().unwrap();
    assert!(files.len() >= 24);
    for (name, f) in files {
        let expect = f["expect"].as_str().unwrap();
        let got = decode_any(name);
        if expect == "valid" {
            let ours = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            if !name.contains("pretty") {
                assert_eq!(
                    String::from_utf8(ours.to_vec()).unwrap(),
                    String::from_utf8(read(name)).unwrap(),
                    "{name}: our encoding differs from Python's"
                );
            }
        } else {
            let e = got.expect_err(name).to_string();
            let key = f["error_mentions"].as_str().unwrap();
            assert!(
                e.contains(key),
                "{name} ({expect}): error {e:?} does not mention {key:?}"
            );
        }
    }
}

#[test]
fn decoded_values_are_the_ones_python_wrote() {
    for f in [
        "fetch-success.json",
        "fetch-success.xml",
        "fetch-success-pretty.json",
        "fetch-success-table.json",
        "fetch-success-table.xml",
    ] {
        let r: CredentialResponse = decode(&read(f), format_of(f)).unwrap();
        let CredentialResponse::Success {
            credential,
            credential_id,
            enrolee_id,
            lifetime,
        } = r
        else {
            panic!("{f}")
        };
        let want: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(credential, Key256::from_bytes(want));
        // Tables 8.3.2.1-5 has no CredentialID: a conformant MEF's answer has none.
        let want_id = (!f.contains("table")).then_some("00112233445566778899AABBCCDDEEFF@mef.example.com");
        assert_eq!(credential_id.as_deref(), want_id, "{f}");
        assert_eq!(enrolee_id.as_deref(), Some("CAE-enrolee-1"));
        assert_eq!(lifetime, 86400);
    }
    for f in ["enrolment-instructions.json", "enrolment-instructions.xml"] {
        let i: EnrolmentInstructions = decode(&read(f), format_of(f)).unwrap();
        let c = i.certificate_enrolment.unwrap();
        assert_eq!(c.security_type, [CommSecurityType::Saef, CommSecurityType::EsData]);
        assert_eq!(c.eku, ["1.3.6.1.5.5.7.3.2"]);
        assert_eq!(
            i.maf_enrolment.unwrap().credential_type,
            MafCredentialType::SymmetricKey
        );
        assert_eq!(i.direct_key.len(), 2);
        assert_eq!(i.direct_key[1].security_type, CommSecurityType::EsPrim);
        assert_eq!(i.registrar_cse.as_deref(), Some("CSE-registrar"));
    }
}

#[test]
fn fetch_paths_and_requestors() {
    use enrolkit_rspf::enrolment::KeyId;
    use enrolkit_rspf::Suid;
    const KEID: &str = "00112233445566778899AABBCCDDEEFF@mef.example.com";
    // V3.18 8.3.2.1 step f: the full KeID and the SUID, the requestor in X-M2M-Origin.
    let r = FetchRequest::parse(
        "/fetchCredentials/00112233445566778899aabbccddeeff@mef.example.com/22",
        Some("//sp.example.com/CSE-b1"),
        None,
    )
    .unwrap();
    assert_eq!(r.mef_fqdn.as_deref(), Some("mef.example.com"));
    assert_eq!(r.suid, Suid::from_value(22));
    assert_eq!(r.from, "//sp.example.com/CSE-b1");
    // What our client sends, exactly.
    let id = KeyId::parse(KEID).unwrap();
    assert_eq!(
        FetchRequest::path(&id, Suid::from_value(22)),
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF@mef.example.com/22"
    );
    assert_eq!(
        FetchRequest::path(&id, None),
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF@mef.example.com"
    );
    // '@' percent-encoded is the same request.
    let enc = FetchRequest::parse(
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF%40mef.example.com/22",
        Some("//sp.example.com/CSE-b1"),
        None,
    )
    .unwrap();
    assert_eq!(
        enc,
        FetchRequest {
            from: r.from.clone(),
            ..r.clone()
        }
    );
    // The change request's form: the relative identifier, the requestor in From.
    let r = FetchRequest::parse(
        "/fetchCredentials/00112233445566778899aabbccddeeff",
        None,
        Some("CSE-b1"),
    )
    .unwrap();
    assert_eq!((r.suid, r.mef_fqdn.as_deref(), r.from.as_str()), (None, None, "CSE-b1"));
    assert_eq!(
        FetchRequest::path_change_request(&r.relative_ke_id),
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF"
    );
    // Both headers, agreeing, are one requestor.
    assert!(FetchRequest::parse(
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF",
        Some("a.b"),
        Some("a.b")
    )
    .is_ok());
    for (path, origin, from) in [
        ("/fetchCredentials/0011", Some("CSE-b1"), None),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF/99",
            Some("CSE-b1"),
            None,
        ),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF/22/x",
            Some("CSE-b1"),
            None,
        ),
        ("/fetchCredentials/00112233445566778899AABBCCDDEEFF", None, None),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF",
            Some("has space"),
            None,
        ),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF",
            Some("a.b"),
            Some("c.d"),
        ),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF@mef/22",
            Some("CSE-b1"),
            None,
        ),
        (
            "/fetchCredentials/00112233445566778899AABBCCDDEEFF@@mef.example.com/22",
            Some("CSE-b1"),
            None,
        ),
        ("/fetchCredentials/0011@mef.example.com/22", Some("CSE-b1"), None),
        ("/other/00112233445566778899AABBCCDDEEFF", Some("CSE-b1"), None),
    ] {
        assert!(
            FetchRequest::parse(path, origin, from).is_err(),
            "{path} {origin:?} {from:?}"
        );
    }
    let long = format!("/fetchCredentials/{KEID}/{}", "2".repeat(MAX_FETCH_PATH));
    let e = FetchRequest::parse(&long, Some("a.b"), None).unwrap_err().to_string();
    assert!(e.contains("longer than"), "{e}");
}

#[test]
fn by_default_a_success_is_exactly_the_tables_fields() {
    // Tables 8.3.2.1-5: Status, Credential, EnroleeID, Lifetime, in that order.
    let r = CredentialResponse::Success {
        credential: Key256::from_bytes(core::array::from_fn(|i| i as u8)),
        credential_id: None,
        enrolee_id: Some("CAE-enrolee-1".into()),
        lifetime: 86400,
    };
    assert_eq!(
        &encode(&r, Format::Json).unwrap()[..],
        &read("fetch-success-table.json")[..]
    );
    assert_eq!(
        &encode(&r, Format::Xml).unwrap()[..],
        &read("fetch-success-table.xml")[..]
    );
    // Table 8.3.2.1-6: Status, ErrorString.
    let e = CredentialResponse::Error {
        reason: "unknown KeId".into(),
    };
    assert_eq!(
        &encode(&e, Format::Json).unwrap()[..],
        br#"{"Status":false,"ErrorString":"unknown KeId"}"#
    );
}

#[test]
fn bounds_and_media_types() {
    let big = vec![b' '; MAX_MESSAGE + 1];
    assert!(matches!(
        decode::<Completion>(&big, Format::Json),
        Err(ExchangeError::TooLarge(_))
    ));
    assert!(matches!(
        decode::<Completion>(&[0xff, 0xfe], Format::Xml),
        Err(ExchangeError::NotUtf8)
    ));
    let deep = "<enrolmentCompletion><reason><a><b><c><d>x</d></c></b></a></reason></enrolmentCompletion>";
    let e = decode::<Completion>(deep.as_bytes(), Format::Xml)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested"), "{e}");
    let nested_json = format!("{{\"keId\":{}{}}}", "[".repeat(10000), "]".repeat(10000));
    // Refused at the first bracket: no member takes nested arrays, so the
    // typed parse stops before any depth is reached.
    let e = decode::<Completion>(nested_json.as_bytes(), Format::Json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("keId: invalid type: sequence"), "{e}");
    assert_eq!(
        Format::from_media_type("application/json; charset=utf-8").unwrap(),
        Format::Json
    );
    assert_eq!(
        Format::from_media_type("application/vnd.onem2m-res+xml").unwrap(),
        Format::Xml
    );
    assert!(Format::from_media_type("text/plain").is_err());
    // Lifetimes are capped, so receivers can add them to a clock.
    let long = br#"{"Status":true,"Credential":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","CredentialID":"00112233445566778899AABBCCDDEEFF@mef.example.com","Lifetime":18446744073709551615}"#;
    let e = decode::<CredentialResponse>(long, Format::Json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Lifetime"), "{e}");
    // An error response never carries a key, and cannot be built with an empty reason.
    let e = CredentialResponse::Error { reason: String::new() };
    assert!(encode(&e, Format::Json).is_err());
}

const COMPLETION_XML: &str = "<enrolmentCompletion><keId>00112233445566778899AABBCCDDEEFF@mef.example.com</keId><procedure>certificateEnrolment</procedure><success>true</success></enrolmentCompletion>";

#[test]
fn xml_outside_the_root_and_prefixes_are_refused() {
    assert!(decode::<Completion>(COMPLETION_XML.as_bytes(), Format::Xml).is_ok());
    let ok = [
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{COMPLETION_XML}\n"),
        format!("<!-- note -->{COMPLETION_XML}<!-- after -->"),
    ];
    for x in ok {
        decode::<Completion>(x.as_bytes(), Format::Xml).unwrap_or_else(|e| panic!("{x}: {e}"));
    }
    let bad = [
        (format!("{COMPLETION_XML}garbage"), "outside the root"),
        (format!("{COMPLETION_XML}<![CDATA[x]]>"), "outside the root"),
        (format!("{COMPLETION_XML}&amp;"), "outside the root"),
        (format!("{COMPLETION_XML}<?xml version=\"1.0\"?>"), "declaration"),
        (
            format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>{COMPLETION_XML}"),
            "UTF-8",
        ),
        (
            COMPLETION_XML
                .replace("<keId>", "<x:keId>")
                .replace("</keId>", "</x:keId>"),
            "namespace",
        ),
        (format!("{COMPLETION_XML}{COMPLETION_XML}"), "second root"),
    ];
    for (x, why) in bad {
        let e = decode::<Completion>(x.as_bytes(), Format::Xml).unwrap_err().to_string();
        assert!(e.contains(why), "{x}: {e}");
    }
}

#[test]
fn json_structs_as_arrays_and_nulls_are_refused() {
    let bad = [
        (
            r#"["00112233445566778899AABBCCDDEEFF@mef.example.com","certificateEnrolment",true]"#,
            "array",
        ),
        (
            r#"{"keId":"00112233445566778899AABBCCDDEEFF@mef.example.com","procedure":"certificateEnrolment","success":true,"reason":null}"#,
            "null",
        ),
    ];
    for (j, why) in bad {
        let e = decode::<Completion>(j.as_bytes(), Format::Json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{j}: {e}");
    }
    let e = decode::<CredentialResponse>(br#"[false,null,null,null,null,"x"]"#, Format::Json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("array"), "{e}");
    let maf_as_array = r#"{"keId":"00112233445566778899AABBCCDDEEFF@mef.example.com","enrolmentExpiry":60,"mafEnrolment":["certificate","maf.example.com"]}"#;
    let e = decode::<EnrolmentInstructions>(maf_as_array.as_bytes(), Format::Json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("array"), "{e}");
}

#[test]
fn spoofing_characters_and_loose_numbers_are_refused() {
    for c in ['\u{202E}', '\u{2028}', '\u{FFFE}', '\u{200B}', '\u{7}'] {
        let r = CredentialResponse::Error {
            reason: format!("bad{c}reason"),
        };
        assert!(encode(&r, Format::Json).is_err(), "U+{:04X}", c as u32);
        let j = format!(r#"{{"Status":false,"ErrorString":"a{}b"}}"#, c.escape_unicode());
        assert!(decode::<CredentialResponse>(j.as_bytes(), Format::Json).is_err(), "{j}");
    }
    for suid in ["+22", "022", "psk-esdata", "2", "24", "20", " 22", "２２"] {
        for id in [
            "00112233445566778899AABBCCDDEEFF",
            "00112233445566778899AABBCCDDEEFF@mef.example.com",
        ] {
            let path = format!("/fetchCredentials/{id}/{suid}");
            assert!(FetchRequest::parse(&path, Some("CSE-b1"), None).is_err(), "{path}");
        }
    }
    let mut i: EnrolmentInstructions = decode(&read("enrolment-instructions.json"), Format::Json).unwrap();
    for (oid, ok) in [
        ("1.40", false),
        ("1.39.5", true),
        ("2.999.1", true),
        ("3.1", false),
        ("1.2.03", false),
    ] {
        i.certificate_enrolment.as_mut().unwrap().eku = vec![oid.into()];
        assert_eq!(encode(&i, Format::Json).is_ok(), ok, "{oid}");
    }
}

#[test]
fn tokens_do_not_print() {
    let r = EnrolmentRequest {
        supports_certificate_enrolment: true,
        supports_maf_procedures: false,
        enrolment_token: Some("secret-token".into()),
    };
    assert!(!format!("{r:?}").contains("secret-token"));
}

/// TS-0003 V3.18.0 table 8.3.2.1-1 and the responses of tables
/// 8.3.2.1-2/-3/-4 and the end of the exchange, as Python wrote them.
#[test]
fn v3_18_messages_decode_to_the_values_python_wrote() {
    let r: ExchangeRequest = decode(&read("v318-request.json"), Format::Json).unwrap();
    assert_eq!(
        r,
        ExchangeRequest {
            certificate_enrolment: true,
            maf_enrolment: true,
            remote_management: false
        }
    );
    let r: ExchangeRequest = decode(&read("v318-request.xml"), Format::Xml).unwrap();
    assert!(r.certificate_enrolment && !r.maf_enrolment && r.remote_management);
    for f in ["v318-responses.json", "v318-responses.xml"] {
        let rs: ExchangeResponses = decode(&read(f), format_of(f)).unwrap();
        let types: Vec<InstructionType> = rs.response.iter().map(|r| r.instruction_type).collect();
        assert_eq!(
            types,
            [
                InstructionType::CertificateEnrolment,
                InstructionType::MafEnrolment,
                InstructionType::RemoteManagement,
                InstructionType::EndOfExchange
            ],
            "{f}"
        );
        let c = rs.get(InstructionType::CertificateEnrolment).unwrap();
        assert_eq!(c.uri.as_deref(), Some("https://est.example.com:8443/.well-known/est"));
        let m = rs.get(InstructionType::MafEnrolment).unwrap();
        assert_eq!(m.credential_type, Some(MafCredentialType::SymmetricKey));
        assert_eq!(m.maf_fqdn(), Some("maf.example.com"), "{f}");
        assert_eq!(
            m.maf_key_retrieval_uri.as_deref(),
            Some("https://maf.example.com/keyRetrieval")
        );
        assert_eq!(
            m.client_registration_uri.as_deref(),
            Some("https://maf.example.com/clientRegistration")
        );
        assert_eq!(m.lifetime, Some(86400));
        assert_eq!(m.trust_anchor.len(), 1);
        assert!(m.trust_anchor[0].starts_with("MII"), "{f}");
        let rm = rs.get(InstructionType::RemoteManagement).unwrap();
        assert_eq!(rm.uri.as_deref(), Some("coaps://dm.example.com:5684"));
    }
    assert_eq!(WireProfile::parse("v3.18"), Some(WireProfile::V318));
    assert_eq!(WireProfile::parse("change-request"), Some(WireProfile::ChangeRequest));
    assert_eq!(WireProfile::parse("V3.18"), None);
    assert_eq!(WireProfile::default(), WireProfile::ChangeRequest);
    // Hosts of URIs: what the MAF-FQDN comes from.
    for (u, h) in [
        ("https://maf.example.com/x", Some("maf.example.com")),
        ("https://maf.example.com:8443", Some("maf.example.com")),
        ("https://user@maf.example.com/", None),
        ("https://[::1]/", None),
        ("https://maf.example.com:/", None),
        ("maf.example.com/x", None),
        ("://maf.example.com", None),
    ] {
        assert_eq!(enrolkit_exchange::v318::uri_host(u), h, "{u}");
    }
}

/// The Zn stand-in when the MEF is the BSF (an extension): the B-TID
/// percent-encoded in the path, an optional Ua protocol identifier.
#[test]
fn gba_fetch_paths_carry_the_btid_and_the_ua_protocol() {
    let btid = "q+/aAAAAAAAAAAAAAAAAAA==@bsf.example.net";
    let p = GbaFetchRequest::path(btid, [1, 0, 0, 0, 7]);
    assert_eq!(p, "/fetchCredentials/q%2B%2FaAAAAAAAAAAAAAAAAAA%3D%3D@bsf.example.net");
    let r = GbaFetchRequest::parse(&p, Some("cse-b.example.net"), None)
        .unwrap()
        .unwrap();
    assert_eq!(
        r,
        GbaFetchRequest {
            btid: btid.into(),
            ua: [1, 0, 0, 0, 7],
            from: "cse-b.example.net".into()
        }
    );
    let p = GbaFetchRequest::path(btid, [1, 0, 1, 0x00, 0xAE]);
    assert!(p.ends_with("/01000100ae"), "{p}");
    assert_eq!(
        GbaFetchRequest::parse(&p, None, Some("x.example")).unwrap().unwrap().ua,
        [1, 0, 1, 0, 0xAE]
    );
    // Not a B-TID: a FetchRequest's business.
    for other in [
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF@mef.example.net/22",
        "/fetchCredentials/00112233445566778899AABBCCDDEEFF",
        "/fetchCredentials/q%2G@bsf.example.net",
        "/fetchCredentials/%",
        "/elsewhere/x",
    ] {
        assert_eq!(
            GbaFetchRequest::parse(other, Some("a.b"), None).unwrap(),
            None,
            "{other}"
        );
    }
    // A B-TID with a malformed Ua id or requestor: refused.
    let base = GbaFetchRequest::path(btid, [1, 0, 0, 0, 7]);
    for (path, origin) in [
        (format!("{base}/22"), Some("a.b")),
        (format!("{base}/0100000007/x"), Some("a.b")),
        (format!("{base}/01000000zz"), Some("a.b")),
        (base.clone(), None),
        (base.clone(), Some("has space")),
    ] {
        assert!(
            GbaFetchRequest::parse(&path, origin, None).is_err(),
            "{path} {origin:?}"
        );
    }
}
