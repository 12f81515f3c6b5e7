//! Media types (exact out, tolerant in) and EST request paths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_est::media::multipart_content_type;
use enrolkit_est::*;

#[test]
fn exact_media_strings() {
    assert_eq!(
        MediaType::CertsOnly.as_str(),
        "application/pkcs7-mime; smime-type=certs-only"
    );
    assert_eq!(MediaType::Pkcs10.as_str(), "application/pkcs10");
    assert_eq!(MediaType::CsrAttrs.as_str(), "application/csrattrs");
    assert_eq!(MediaType::Pkcs8.as_str(), "application/pkcs8");
    assert_eq!(MediaType::MultipartMixed.as_str(), "multipart/mixed");
    assert_eq!(
        MediaType::CmcRequest.as_str(),
        "application/pkcs7-mime; smime-type=CMC-request"
    );
    assert_eq!(
        MediaType::CmcResponse.as_str(),
        "application/pkcs7-mime; smime-type=CMC-response"
    );
    assert_eq!(CONTENT_TRANSFER_ENCODING, "Content-Transfer-Encoding");
    assert_eq!(BASE64, "base64");
}

#[test]
fn tolerant_media_parsing() {
    let cases = [
        ("application/pkcs7-mime; smime-type=certs-only", MediaType::CertsOnly),
        ("application/pkcs7-mime;smime-type=certs-only", MediaType::CertsOnly),
        ("APPLICATION/PKCS7-MIME; SMIME-TYPE=CERTS-ONLY", MediaType::CertsOnly),
        (
            "application/pkcs7-mime ; smime-type = \"certs-only\" ; charset=binary",
            MediaType::CertsOnly,
        ),
        (
            "application/pkcs7-mime; name=\"cacerts.p7\"; smime-type=certs-only",
            MediaType::CertsOnly,
        ),
        ("application/pkcs7-mime", MediaType::CertsOnly),
        (
            "application/pkcs7-mime; smime-type=CMC-response",
            MediaType::CmcResponse,
        ),
        ("application/pkcs7-mime; smime-type=cmc-request", MediaType::CmcRequest),
        ("application/pkcs10", MediaType::Pkcs10),
        ("application/pkcs10; charset=us-ascii", MediaType::Pkcs10),
        (" application/csrattrs ", MediaType::CsrAttrs),
        ("application/pkcs8", MediaType::Pkcs8),
        ("multipart/mixed; boundary=est", MediaType::MultipartMixed),
    ];
    for (h, want) in cases {
        assert_eq!(MediaType::parse(h).unwrap(), want, "{h}");
    }
    for h in [
        "text/plain",
        "application/json",
        "application/pkcs7-mime; smime-type=enveloped-data",
    ] {
        assert!(
            matches!(MediaType::parse(h), Err(EstError::UnsupportedMediaType(_))),
            "{h}"
        );
    }
    for h in [
        "",
        "application",
        "application/",
        "application/pkcs10; =x",
        "a/b; c=\"unterminated",
    ] {
        assert!(matches!(MediaType::parse(h), Err(EstError::Malformed { .. })), "{h}");
    }
    assert!(matches!(
        MediaType::parse(&"a".repeat(2000)),
        Err(EstError::TooLarge { .. })
    ));
}

#[test]
fn multipart_boundaries() {
    assert_eq!(
        multipart_boundary("multipart/mixed; boundary=est-abc").unwrap(),
        "est-abc"
    );
    assert_eq!(
        multipart_boundary("multipart/mixed;boundary=\"est abc\"").unwrap(),
        "est abc"
    );
    assert_eq!(
        multipart_boundary("multipart/mixed; charset=x; BOUNDARY=q").unwrap(),
        "q"
    );
    assert!(multipart_boundary("multipart/mixed").is_err());
    assert!(multipart_boundary("multipart/related; boundary=x").is_err());
    assert!(multipart_boundary(&format!("multipart/mixed; boundary={}", "b".repeat(70))).is_ok());
    assert!(multipart_boundary(&format!("multipart/mixed; boundary={}", "b".repeat(71))).is_err());
    assert!(multipart_boundary("multipart/mixed; boundary=\"a\\\"b\"").is_err()); // '"' is not a bchar
    let ct = multipart_content_type("est-1").unwrap();
    assert_eq!(multipart_boundary(&ct).unwrap(), "est-1");
}

#[test]
fn operations() {
    let table = [
        (Operation::CaCerts, "cacerts", "GET", None, MediaType::CertsOnly),
        (
            Operation::SimpleEnroll,
            "simpleenroll",
            "POST",
            Some(MediaType::Pkcs10),
            MediaType::CertsOnly,
        ),
        (
            Operation::SimpleReenroll,
            "simplereenroll",
            "POST",
            Some(MediaType::Pkcs10),
            MediaType::CertsOnly,
        ),
        (
            Operation::FullCmc,
            "fullcmc",
            "POST",
            Some(MediaType::CmcRequest),
            MediaType::CmcResponse,
        ),
        (
            Operation::ServerKeyGen,
            "serverkeygen",
            "POST",
            Some(MediaType::Pkcs10),
            MediaType::MultipartMixed,
        ),
        (Operation::CsrAttrs, "csrattrs", "GET", None, MediaType::CsrAttrs),
    ];
    for (op, name, method, req, resp) in table {
        assert_eq!(op.name(), name);
        assert_eq!(op.method(), method);
        assert_eq!(op.request_media(), req);
        assert_eq!(op.response_media(), resp);
        assert_eq!(Operation::from_name(name), Some(op));
    }
    assert_eq!(Operation::from_name("enroll"), None);
}

#[test]
fn paths() {
    let p = EstPath::parse("/.well-known/est/cacerts").unwrap();
    assert_eq!(p.label, None);
    assert_eq!(p.operation, Operation::CaCerts);
    assert_eq!(p.to_string(), "/.well-known/est/cacerts");

    let p = EstPath::parse("/.well-known/est/arbitraryLabel1/simpleenroll").unwrap();
    assert_eq!(p.label.as_ref().map(Label::as_str), Some("arbitraryLabel1"));
    assert_eq!(p.operation, Operation::SimpleEnroll);
    assert_eq!(p.to_string(), "/.well-known/est/arbitraryLabel1/simpleenroll");

    let p = EstPath::parse("/.well-known/est/csrattrs?x=1").unwrap();
    assert_eq!(p.operation, Operation::CsrAttrs);

    // A label that is an operation name is reserved (RFC 7030 §3.2.2).
    assert!(matches!(
        EstPath::parse("/.well-known/est/cacerts/simpleenroll"),
        Err(EstError::InvalidLabel(_))
    ));
    assert!(matches!(
        EstPath::parse("/.well-known/est/a%20b/cacerts"),
        Err(EstError::InvalidLabel(_))
    ));
    assert!(matches!(
        EstPath::parse("/.well-known/est/enroll"),
        Err(EstError::UnknownOperation(op)) if op == "enroll"
    ));
    assert!(matches!(
        EstPath::parse("/.well-known/est/lbl/getcert"),
        Err(EstError::UnknownOperation(_))
    ));
    assert!(EstPath::parse("/.well-known/est/a/b/cacerts").is_err());
    assert!(EstPath::parse("/.well-known/est/").is_err());
    assert!(EstPath::parse("/.well-known/est").is_err());
    assert!(EstPath::parse("/.well-known/estcacerts").is_err());
    assert!(EstPath::parse("/est/cacerts").is_err());
    assert!(EstPath::parse("/.well-known/est//cacerts").is_err());
    assert!(matches!(
        EstPath::parse(&"/".repeat(1000)),
        Err(EstError::TooLarge { .. })
    ));

    let l = Label::new("ca-2").unwrap();
    assert_eq!(
        EstPath::new(Some(l), Operation::ServerKeyGen).to_string(),
        format!("{WELL_KNOWN}/ca-2/serverkeygen")
    );
}
