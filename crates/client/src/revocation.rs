//! Revocation checks for the device agent, sans-I/O: where a certificate
//! says its revocation data is (CRL distribution points, the AIA OCSP
//! responder), the OCSP request to send (RFC 6960 in the RFC 5019 profile),
//! and the verdict on what came back — an OCSP response or a CRL
//! (RFC 5280 §5, §6.3). The caller fetches the bytes and hands in the time;
//! nothing here opens a socket or reads a clock.
//!
//! A verdict is only given on data that proves itself: signed by the
//! certificate's issuer (or, for OCSP, by a responder the issuer delegated to
//! with id-kp-OCSPSigning), about this very certificate, current at `now`
//! within [`CLOCK_SKEW`], and, for OCSP with a nonce, an answer to this request.

use const_oid::db::rfc5280::ID_AD_OCSP;
use const_oid::db::rfc6960::{ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use enrolkit_keys::{DigestAlgorithm, SignatureAlgorithm};
use enrolkit_pkix::{Anchors, Options, PathError, Purpose, Validator};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::time::{Duration, SystemTime};
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints, CrlNumber, KeyUsage, KeyUsages,
};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, OcspRequest, OcspResponse, OcspResponseStatus, ResponderId, SingleResponse, TbsRequest,
};

pub use x509_cert::ext::pkix::CrlReason;

/// Largest OCSP response examined, in bytes: a signed answer for one
/// certificate, with a delegated responder's certificate, is a few kilobytes.
pub const MAX_OCSP_RESPONSE: usize = 64 * 1024;

/// Largest CRL examined, in bytes (CRLs of large CAs run to megabytes).
pub const MAX_CRL: usize = 32 * 1024 * 1024;

/// Most certificates looked at in a response's `certs` for a delegated responder.
pub const MAX_RESPONDER_CERTS: usize = 8;

/// Most URLs taken from one extension (a certificate lists one or two).
pub const MAX_URLS: usize = 8;

/// Clock difference tolerated between device and responder or CRL issuer,
/// on both thisUpdate and nextUpdate (as OpenSSL's `-validity_period`).
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Nonce lengths a request may carry (RFC 8954 §2.1: 1 to 32 octets).
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 1..=32;

/// A certificate's revocation status, as the checked data states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (OCSP "good"; not on the CRL).
    Good,
    /// Revoked at `time`, for `reason` when the issuer gave one.
    Revoked {
        /// revocationTime / revocationDate.
        time: SystemTime,
        /// CRLReason, when stated.
        reason: Option<CrlReason>,
    },
    /// The OCSP responder does not know the certificate (never from a CRL).
    Unknown,
}

/// Why revocation data could not be used. The certificate's status is then
/// undetermined: none of these means "revoked" or "good".
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The input is larger than this module examines.
    #[error("{what} larger than {limit} bytes")]
    TooLarge {
        /// What it was.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
    /// The input does not parse, or a field is out of bounds.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What it was.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The certificate handed in as issuer did not issue the certificate.
    #[error("{0} did not issue the certificate being checked")]
    NotIssuedBy(String),
    /// The OCSP responder answered with an error status instead of a response.
    #[error("the OCSP responder answered {}", enrolkit_pkix::ocsp::response_status_name(*.0))]
    ResponderStatus(OcspResponseStatus),
    /// The OCSP response is of a type other than id-pkix-ocsp-basic.
    #[error("OCSP response type {0} is not id-pkix-ocsp-basic")]
    UnsupportedResponseType(ObjectIdentifier),
    /// A signature or hash algorithm this module does not verify.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// A signature does not verify.
    #[error("the {0} signature does not verify")]
    BadSignature(&'static str),
    /// The OCSP response is signed by neither the issuer nor a responder it authorised.
    #[error("OCSP responder not authorised by the issuer: {0}")]
    UnauthorisedResponder(String),
    /// The OCSP response says nothing about this certificate.
    #[error("the OCSP response has no status for this certificate")]
    NoMatchingResponse,
    /// thisUpdate is in the future (beyond the skew allowance).
    #[error("the {what} is not valid yet: thisUpdate {} is after now", show(*.this_update))]
    NotYetValid {
        /// OCSP response or CRL.
        what: &'static str,
        /// Its thisUpdate.
        this_update: SystemTime,
    },
    /// nextUpdate has passed (beyond the skew allowance).
    #[error("the {what} is stale: it was good until {}", show(*.valid_until))]
    Stale {
        /// OCSP response or CRL.
        what: &'static str,
        /// nextUpdate (or, for an OCSP response without one, thisUpdate).
        valid_until: SystemTime,
    },
    /// A CRL without nextUpdate (RFC 5280 §5.1.2.5 requires it).
    #[error("the CRL has no nextUpdate")]
    MissingNextUpdate,
    /// A nonce was sent and the response carries none.
    #[error("the OCSP response carries no nonce, but the request did")]
    NonceMissing,
    /// The response's nonce is not the one sent: a replay, or an answer to another request.
    #[error("the OCSP response's nonce is not the one sent")]
    NonceMismatch,
    /// The nonce handed to [`ocsp_request`] is out of RFC 8954's range.
    #[error("a nonce of {0} bytes (1 to 32 allowed)")]
    NonceLength(usize),
    /// The CRL is not the certificate issuer's.
    #[error("CRL issued by {crl}, but the certificate's issuer is {cert}")]
    WrongCrlIssuer {
        /// The CRL's issuer.
        crl: String,
        /// The certificate's issuer.
        cert: String,
    },
    /// The issuer's keyUsage does not include cRLSign.
    #[error("the issuer certificate's keyUsage does not allow signing CRLs")]
    IssuerCannotSignCrls,
    /// A critical CRL or entry extension this module cannot process (RFC 5280
    /// §5.2: such a CRL must not be used): a delta CRL, an issuing
    /// distribution point, an indirect CRL.
    #[error("CRL extension {0} is critical and not supported")]
    UnsupportedCriticalExtension(ObjectIdentifier),
}

/// Result alias.
pub type Result<T, E = RevocationError> = std::result::Result<T, E>;

fn show(t: SystemTime) -> String {
    der::DateTime::from_system_time(t)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{t:?}"))
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> RevocationError {
    move |e| RevocationError::Malformed {
        what,
        reason: e.to_string(),
    }
}

fn extension<T: AssociatedOid + for<'a> Decode<'a>>(cert: &Certificate) -> Option<T> {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == T::OID)
        .and_then(|e| T::from_der(e.extn_value.as_bytes()).ok())
}

/// An http:// or https:// URI from a GeneralName.
fn http_uri(g: &GeneralName) -> Option<String> {
    match g {
        GeneralName::UniformResourceIdentifier(u) => {
            let s = u.as_str();
            let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://")).then(|| s.to_owned())
        }
        _ => None,
    }
}

/// The http(s) URLs of the certificate's CRL distribution points, in order.
/// Points with a cRLIssuer (indirect CRLs, which [`check_crl`] does not
/// accept) and other URI schemes (LDAP) are left out.
pub fn crl_urls(cert: &Certificate) -> Vec<String> {
    let Some(dps) = extension::<CrlDistributionPoints>(cert) else {
        return Vec::new();
    };
    dps.0
        .iter()
        .filter(|dp| dp.crl_issuer.is_none())
        .filter_map(|dp| match &dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(http_uri)
        .take(MAX_URLS)
        .collect()
}

/// The http(s) URL of the certificate's OCSP responder (the first
/// id-ad-ocsp access description in its authorityInfoAccess).
pub fn ocsp_url(cert: &Certificate) -> Option<String> {
    extension::<AuthorityInfoAccessSyntax>(cert)?
        .0
        .iter()
        .filter(|ad| ad.access_method == ID_AD_OCSP)
        .find_map(|ad| http_uri(&ad.access_location))
}

/// The SubjectPublicKeyInfo's key bits, hashed as CertIDs and responderIDs do.
fn key_hash(d: DigestAlgorithm, spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    d.digest(spki.subject_public_key.raw_bytes())
}

/// Verify `sig` over `msg` with `spki`, under the AlgorithmIdentifier `alg`.
fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    msg: &[u8],
    sig: &der::asn1::BitString,
    what: &'static str,
) -> Result<()> {
    let alg = SignatureAlgorithm::from_oids(&alg.oid, None).ok_or(RevocationError::UnsupportedAlgorithm(alg.oid))?;
    let spki_der = spki.to_der().map_err(malformed("public key"))?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(malformed("public key"))?;
    let sig = sig.as_bytes().ok_or(RevocationError::BadSignature(what))?;
    enrolkit_keys::verify(&spki, alg, msg, sig).map_err(|e| match e {
        enrolkit_keys::KeyError::UnsupportedAlgorithm(a) => RevocationError::UnsupportedAlgorithm(a.oid()),
        _ => RevocationError::BadSignature(what),
    })
}

/// That `issuer` issued `cert`: its name is the certificate's issuer and its
/// key signed it (the chain validator's link check). SHA-1 is allowed: the
/// pair was already trusted by chain validation; this only ties the
/// revocation answer to the right issuer.
fn check_issued_by(cert: &Certificate, issuer: &Certificate) -> Result<()> {
    enrolkit_pkix::signature::check_link(cert, issuer, true).map_err(|e| match e {
        PathError::UnsupportedAlgorithm { .. } => RevocationError::UnsupportedAlgorithm(cert.signature_algorithm.oid),
        _ => RevocationError::NotIssuedBy(issuer.tbs_certificate.subject.to_string()),
    })
}

/// The SHA-1 CertID of `cert` (RFC 5019 §2.1.1 requires SHA-1 here; it
/// identifies, it does not protect), with NULL parameters as OpenSSL sends.
fn cert_id(cert: &Certificate, issuer: &Certificate) -> Result<CertId> {
    let d = DigestAlgorithm::Sha1;
    let name = cert.tbs_certificate.issuer.to_der().map_err(malformed("issuer name"))?;
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: d.oid(),
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(d.digest(&name)).map_err(malformed("CertID"))?,
        issuer_key_hash: OctetString::new(key_hash(d, &issuer.tbs_certificate.subject_public_key_info))
            .map_err(malformed("CertID"))?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    })
}

/// The DER OCSPRequest for `cert` (issued by `issuer`): one SHA-1 CertID,
/// unsigned, with the RFC 8954 nonce extension when `nonce` is given (1 to
/// 32 bytes; 16 or more random ones to defeat replays). POST it as
/// `application/ocsp-request` to [`ocsp_url`], or GET it base64-encoded.
pub fn ocsp_request(cert: &Certificate, issuer: &Certificate, nonce: Option<&[u8]>) -> Result<Vec<u8>> {
    if issuer.tbs_certificate.subject != cert.tbs_certificate.issuer {
        return Err(RevocationError::NotIssuedBy(issuer.tbs_certificate.subject.to_string()));
    }
    let request_extensions = match nonce {
        Some(n) if !NONCE_LEN.contains(&n.len()) => return Err(RevocationError::NonceLength(n.len())),
        Some(n) => {
            let value = OctetString::new(n)
                .and_then(|o| o.to_der())
                .map_err(malformed("nonce"))?;
            Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(value).map_err(malformed("nonce"))?,
            }])
        }
        None => None,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id(cert, issuer)?,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    req.to_der().map_err(malformed("OCSP request"))
}

/// Whether `id` names `cert`, under any hash algorithm we know.
fn matches(id: &CertId, cert: &Certificate, issuer: &Certificate) -> bool {
    let params_ok = id.hash_algorithm.parameters.as_ref().is_none_or(|p| p.is_null());
    let Some(d) = DigestAlgorithm::from_oid(&id.hash_algorithm.oid).filter(|_| params_ok) else {
        return false;
    };
    let Ok(name) = cert.tbs_certificate.issuer.to_der() else {
        return false;
    };
    id.serial_number == cert.tbs_certificate.serial_number
        && id.issuer_name_hash.as_bytes() == d.digest(&name).as_slice()
        && id.issuer_key_hash.as_bytes() == key_hash(d, &issuer.tbs_certificate.subject_public_key_info).as_slice()
}

/// Whether a responderID names `cert` (by subject, or by SHA-1 of its key).
fn names(id: &ResponderId, cert: &Certificate) -> bool {
    match id {
        ResponderId::ByName(n) => *n == cert.tbs_certificate.subject,
        ResponderId::ByKey(h) => {
            h.as_bytes() == key_hash(DigestAlgorithm::Sha1, &cert.tbs_certificate.subject_public_key_info).as_slice()
        }
    }
}

/// The key that must have signed the response: the issuer's, or that of a
/// delegated responder (RFC 6960 §4.2.2.2) whose certificate is in the
/// response. The delegate is checked by the one chain validator with the
/// issuer as its only anchor, so it must be issued directly by the issuer
/// (name and signature), be valid at `now` (within [`CLOCK_SKEW`]), carry
/// id-kp-OCSPSigning by name, and have no critical extension we do not
/// understand.
fn responder_key<'a>(
    basic: &'a BasicOcspResponse,
    issuer: &'a Certificate,
    now: SystemTime,
) -> Result<&'a SubjectPublicKeyInfoOwned> {
    let id = &basic.tbs_response_data.responder_id;
    if names(id, issuer) {
        return Ok(&issuer.tbs_certificate.subject_public_key_info);
    }
    let certs = basic.certs.as_deref().unwrap_or_default();
    if certs.len() > MAX_RESPONDER_CERTS {
        return Err(RevocationError::Malformed {
            what: "OCSP response",
            reason: format!("{} certificates (at most {MAX_RESPONDER_CERTS})", certs.len()),
        });
    }
    let Some(delegate) = certs.iter().find(|c| names(id, c)) else {
        return Err(RevocationError::UnauthorisedResponder(
            "signed neither by the issuer nor by a responder certificate in the response".into(),
        ));
    };
    let subject = delegate.tbs_certificate.subject.to_string();
    let anchors =
        Anchors::new(vec![issuer.clone()]).map_err(|e| RevocationError::UnauthorisedResponder(e.to_string()))?;
    let options = Options::new(Purpose::OcspSigning).with_clock_skew(CLOCK_SKEW);
    Validator::new(&anchors, &[], options)
        .validate(delegate, now)
        .map_err(|e| {
            RevocationError::UnauthorisedResponder(match e {
                PathError::WrongPurpose { .. } => format!("{subject} lacks id-kp-OCSPSigning"),
                PathError::Expired { .. } | PathError::NotYetValid { .. } => {
                    format!("the responder certificate {subject} is not valid now ({e})")
                }
                PathError::NoIssuer { .. } | PathError::NameMismatch { .. } | PathError::BadSignature { .. } => {
                    format!("{subject} was not issued by the certificate's issuer")
                }
                other => format!("the responder certificate {subject}: {other}"),
            })
        })?;
    Ok(&delegate.tbs_certificate.subject_public_key_info)
}

/// thisUpdate ≤ now and now ≤ validUntil, each within [`CLOCK_SKEW`].
fn fresh(what: &'static str, this_update: SystemTime, valid_until: SystemTime, now: SystemTime) -> Result<()> {
    if this_update > now + CLOCK_SKEW {
        return Err(RevocationError::NotYetValid { what, this_update });
    }
    if now > valid_until + CLOCK_SKEW {
        return Err(RevocationError::Stale { what, valid_until });
    }
    Ok(())
}

/// The status of `cert` (issued by `issuer`) from a DER OCSPResponse, after
/// checking that the response is successful and basic, that its signature
/// verifies with the issuer's key or a delegated responder's (see the
/// module description), that a SingleResponse names this certificate, that
/// it is current at `now` (a response without nextUpdate only within
/// [`CLOCK_SKEW`] of its thisUpdate), and that it echoes `nonce` when one
/// was sent.
pub fn check_ocsp_response(
    der: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
    now: SystemTime,
    nonce: Option<&[u8]>,
) -> Result<CertStatus> {
    if der.len() > MAX_OCSP_RESPONSE {
        return Err(RevocationError::TooLarge {
            what: "OCSP response",
            limit: MAX_OCSP_RESPONSE,
        });
    }
    check_issued_by(cert, issuer)?;
    let resp = OcspResponse::from_der(der).map_err(malformed("OCSP response"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(RevocationError::ResponderStatus(resp.response_status));
    }
    let bytes = resp.response_bytes.ok_or_else(|| RevocationError::Malformed {
        what: "OCSP response",
        reason: "successful, but without a response".into(),
    })?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(RevocationError::UnsupportedResponseType(bytes.response_type));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed("BasicOCSPResponse"))?;
    let key = responder_key(&basic, issuer, now)?;
    let tbs = basic
        .tbs_response_data
        .to_der()
        .map_err(malformed("BasicOCSPResponse"))?;
    verify(key, &basic.signature_algorithm, &tbs, &basic.signature, "OCSP response")?;
    let single: &SingleResponse = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| matches(&r.cert_id, cert, issuer))
        .ok_or(RevocationError::NoMatchingResponse)?;
    let this_update = single.this_update.0.to_system_time();
    let valid_until = single.next_update.map_or(this_update, |n| n.0.to_system_time());
    fresh("OCSP response", this_update, valid_until, now)?;
    if let Some(sent) = nonce {
        let ext = basic
            .tbs_response_data
            .response_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
            .ok_or(RevocationError::NonceMissing)?;
        let value = ext.extn_value.as_bytes();
        // RFC 8954's OCTET STRING in extnValue, or the bare bytes older responders send.
        let echoed = OctetString::from_der(value).is_ok_and(|o| o.as_bytes() == sent) || value == sent;
        if !echoed {
            return Err(RevocationError::NonceMismatch);
        }
    }
    Ok(match &single.cert_status {
        x509_ocsp::CertStatus::Good(_) => CertStatus::Good,
        x509_ocsp::CertStatus::Revoked(info) => CertStatus::Revoked {
            time: info.revocation_time.0.to_system_time(),
            reason: info.revocation_reason,
        },
        x509_ocsp::CertStatus::Unknown(_) => CertStatus::Unknown,
    })
}

/// CRL extensions understood when critical or not: authorityKeyIdentifier, cRLNumber.
fn known_crl_extension(oid: &ObjectIdentifier) -> bool {
    *oid == AuthorityKeyIdentifier::OID || *oid == CrlNumber::OID
}

/// CRL entry extensions understood: reasonCode, invalidityDate.
fn known_entry_extension(oid: &ObjectIdentifier) -> bool {
    *oid == CrlReason::OID || *oid == const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE
}

/// The status of `cert` (issued by `issuer`) from a DER CRL, after checking
/// that the CRL's issuer is the certificate's, that the issuer may sign CRLs
/// and its key signed this one, that no critical extension asks for what
/// this module does not do (delta, partitioned or indirect CRLs), and that
/// the CRL is current at `now` within [`CLOCK_SKEW`]. A CRL never says
/// [`CertStatus::Unknown`]: a certificate not on it is good.
pub fn check_crl(crl_der: &[u8], cert: &Certificate, issuer: &Certificate, now: SystemTime) -> Result<CertStatus> {
    check_issued_by(cert, issuer)?;
    let crl = verified_crl(crl_der, issuer, now)?;
    if crl.tbs_cert_list.issuer != cert.tbs_certificate.issuer {
        return Err(RevocationError::WrongCrlIssuer {
            crl: crl.tbs_cert_list.issuer.to_string(),
            cert: cert.tbs_certificate.issuer.to_string(),
        });
    }
    let serial = &cert.tbs_certificate.serial_number;
    Ok(revoked_entries(&crl)
        .into_iter()
        .find(|r| r.serial == *serial)
        .map_or(CertStatus::Good, |r| CertStatus::Revoked {
            time: r.time,
            reason: r.reason,
        }))
}

/// A DER CRL checked as [`check_crl`] checks it, for every certificate of
/// `issuer` at once: issued under `issuer`'s name, signed by its key (which
/// may sign CRLs), no critical extension (of the CRL or of an entry) this
/// module does not know, current at `now` within [`CLOCK_SKEW`]. Its
/// entries are [`revoked_entries`].
pub fn verified_crl(crl_der: &[u8], issuer: &Certificate, now: SystemTime) -> Result<CertificateList> {
    if crl_der.len() > MAX_CRL {
        return Err(RevocationError::TooLarge {
            what: "CRL",
            limit: MAX_CRL,
        });
    }
    let crl = CertificateList::from_der(crl_der).map_err(malformed("CRL"))?;
    let tbs = &crl.tbs_cert_list;
    if tbs.issuer != issuer.tbs_certificate.subject {
        return Err(RevocationError::WrongCrlIssuer {
            crl: tbs.issuer.to_string(),
            cert: issuer.tbs_certificate.subject.to_string(),
        });
    }
    if tbs.signature.oid != crl.signature_algorithm.oid {
        return Err(RevocationError::Malformed {
            what: "CRL",
            reason: "the signature algorithm inside and outside the signed part differ".into(),
        });
    }
    if extension::<KeyUsage>(issuer).is_some_and(|ku| !ku.0.contains(KeyUsages::CRLSign)) {
        return Err(RevocationError::IssuerCannotSignCrls);
    }
    let signed = tbs.to_der().map_err(malformed("CRL"))?;
    verify(
        &issuer.tbs_certificate.subject_public_key_info,
        &crl.signature_algorithm,
        &signed,
        &crl.signature,
        "CRL",
    )?;
    if let Some(e) = tbs
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.critical && !known_crl_extension(&e.extn_id))
    {
        return Err(RevocationError::UnsupportedCriticalExtension(e.extn_id));
    }
    let next = tbs
        .next_update
        .as_ref()
        .ok_or(RevocationError::MissingNextUpdate)?
        .to_system_time();
    fresh("CRL", tbs.this_update.to_system_time(), next, now)?;
    for entry in tbs.revoked_certificates.iter().flatten() {
        let exts = entry.crl_entry_extensions.as_deref().unwrap_or_default();
        if let Some(e) = exts.iter().find(|e| e.critical && !known_entry_extension(&e.extn_id)) {
            return Err(RevocationError::UnsupportedCriticalExtension(e.extn_id));
        }
    }
    Ok(crl)
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The revoked certificate's serial number.
    pub serial: SerialNumber,
    /// When it was revoked.
    pub time: SystemTime,
    /// Its reasonCode, when the entry has one.
    pub reason: Option<CrlReason>,
}

/// The entries of `crl` (checked by [`verified_crl`] first).
pub fn revoked_entries(crl: &CertificateList) -> Vec<RevokedEntry> {
    crl.tbs_cert_list
        .revoked_certificates
        .iter()
        .flatten()
        .map(|entry| RevokedEntry {
            serial: entry.serial_number.clone(),
            time: entry.revocation_date.to_system_time(),
            reason: entry
                .crl_entry_extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == CrlReason::OID)
                .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
    use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
    use enrolkit_pki::{Authority, Profile, Request, Revocation};
    use enrolkit_server::ocsp::{OcspResponder, OcspSetup};
    use enrolkit_server::storage::{IssuedCert, SqliteStorage, Storage, Transaction, TxState};
    use std::str::FromStr;
    use std::sync::Arc;
    use x509_cert::name::Name;

    const HOUR: Duration = Duration::from_secs(3600);

    fn root(name: &str) -> Authority {
        Authority::new_root(
            Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
            Name::from_str(name).unwrap(),
            SystemTime::now() - HOUR,
            Duration::from_secs(86400 * 30),
            &mut rand_core::OsRng,
        )
        .unwrap()
    }

    fn profile() -> Profile {
        Profile {
            crl_url: Some("http://127.0.0.1:8080/crl".into()),
            ocsp_url: Some("http://127.0.0.1:8080/ocsp".into()),
            ..Profile::default()
        }
    }

    fn issue_with(ca: &Authority, cn: &str, profile: &Profile) -> (Certificate, SoftwareKey) {
        let key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let req = Request {
            subject: Name::from_str(&format!("CN={cn}")).unwrap(),
            public_key: key.public_key().clone(),
            dns_names: vec![],
            ip_addresses: vec![],
        };
        let cert = ca
            .issue(&req, profile, SystemTime::now() - HOUR, &mut rand_core::OsRng)
            .unwrap();
        (cert, key)
    }

    /// A CA, its database with one issued certificate, and mef's OCSP responder over both.
    struct World {
        ca: Arc<Authority>,
        storage: Arc<SqliteStorage>,
        responder: OcspResponder,
        leaf: Certificate,
    }

    fn record(storage: &SqliteStorage, cert: &Certificate) {
        let issued = IssuedCert::from_certificate(cert).unwrap();
        let tx = Transaction {
            transaction_id: issued.serial.clone(),
            key_id: issued.serial.clone(),
            subject: issued.subject.clone(),
            csr: vec![],
            state: TxState::Issued(issued.serial.clone()),
            created: 0,
        };
        storage.record(&tx, None, Some(&issued), 0).unwrap();
    }

    fn world() -> World {
        let ca = Arc::new(root("CN=Agent Test CA,O=enrolkit"));
        let storage = Arc::new(SqliteStorage::in_memory().unwrap());
        let (leaf, _) = issue_with(&ca, "device-1", &profile());
        record(&storage, &leaf);
        let responder = OcspResponder::new(OcspSetup {
            ca: ca.clone(),
            storage: storage.clone(),
            validity: HOUR,
        })
        .unwrap();
        World {
            ca,
            storage,
            responder,
            leaf,
        }
    }

    impl World {
        fn ask(&self, cert: &Certificate, nonce: Option<&[u8]>) -> Vec<u8> {
            let req = ocsp_request(cert, &self.ca.certificate, nonce).unwrap();
            let (der, log) = self.responder.respond(&req, SystemTime::now());
            assert!(!log.outcome.is_empty());
            der
        }
        fn check(&self, der: &[u8], now: SystemTime, nonce: Option<&[u8]>) -> Result<CertStatus> {
            check_ocsp_response(der, &self.leaf, &self.ca.certificate, now, nonce)
        }
        fn revoke(&self, reason: u8) {
            let serial = hex::encode(self.leaf.tbs_certificate.serial_number.as_bytes());
            self.storage.revoke(&serial, 1_700_000_000, reason).unwrap();
        }
    }

    /// Decode a successful response, let `edit` change the BasicOCSPResponse, re-encode.
    fn tamper(der: &[u8], edit: impl FnOnce(&mut BasicOcspResponse)) -> Vec<u8> {
        let mut r = OcspResponse::from_der(der).unwrap();
        let bytes = r.response_bytes.as_mut().unwrap();
        let mut b = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        edit(&mut b);
        bytes.response = OctetString::new(b.to_der().unwrap()).unwrap();
        r.to_der().unwrap()
    }

    /// Sign `b`'s response data with `key` (and say so in its algorithm).
    fn resign(b: &mut BasicOcspResponse, key: &dyn Signer) {
        let alg = SignatureAlgorithm::EcdsaP256Sha256;
        let sig = key.sign(alg, &b.tbs_response_data.to_der().unwrap()).unwrap();
        b.signature_algorithm = alg.algorithm_identifier();
        b.signature = der::asn1::BitString::from_bytes(&sig).unwrap();
    }

    #[test]
    fn urls_come_from_the_certificate() {
        let w = world();
        assert_eq!(crl_urls(&w.leaf), vec!["http://127.0.0.1:8080/crl".to_string()]);
        assert_eq!(ocsp_url(&w.leaf).as_deref(), Some("http://127.0.0.1:8080/ocsp"));
        let (bare, _) = issue_with(&w.ca, "bare", &Profile::default());
        assert!(crl_urls(&bare).is_empty());
        assert_eq!(ocsp_url(&bare), None);
        let ldap = Profile {
            crl_url: Some("ldap://ldap.example/cn=CA?certificateRevocationList".into()),
            ocsp_url: Some("ldap://ocsp.example".into()),
            ..Profile::default()
        };
        let (c, _) = issue_with(&w.ca, "ldap", &ldap);
        assert!(crl_urls(&c).is_empty(), "only http(s) URLs are fetched");
        assert_eq!(ocsp_url(&c), None);
        let https = Profile {
            crl_url: Some("HTTPS://crl.example/ca.crl".into()),
            ..Profile::default()
        };
        assert_eq!(
            crl_urls(&issue_with(&w.ca, "s", &https).0),
            vec!["HTTPS://crl.example/ca.crl"]
        );
    }

    #[test]
    fn the_request_is_rfc_5019_shaped() {
        let w = world();
        let nonce = [0x5a; 16];
        let der = ocsp_request(&w.leaf, &w.ca.certificate, Some(&nonce)).unwrap();
        let req = OcspRequest::from_der(&der).unwrap();
        assert!(req.optional_signature.is_none());
        let list = &req.tbs_request.request_list;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].req_cert.hash_algorithm.oid, DigestAlgorithm::Sha1.oid());
        assert!(matches(&list[0].req_cert, &w.leaf, &w.ca.certificate));
        assert_eq!(req.nonce().unwrap().0.as_bytes(), nonce);
        let plain = OcspRequest::from_der(&ocsp_request(&w.leaf, &w.ca.certificate, None).unwrap()).unwrap();
        assert!(plain.tbs_request.request_extensions.is_none());
        assert!(matches!(
            ocsp_request(&w.leaf, &w.ca.certificate, Some(&[])),
            Err(RevocationError::NonceLength(0))
        ));
        assert!(matches!(
            ocsp_request(&w.leaf, &w.ca.certificate, Some(&[1; 33])),
            Err(RevocationError::NonceLength(33))
        ));
        let other = root("CN=Other CA");
        assert!(matches!(
            ocsp_request(&w.leaf, &other.certificate, None),
            Err(RevocationError::NotIssuedBy(_))
        ));
    }

    #[test]
    fn good_then_revoked_from_the_responder() {
        let w = world();
        let nonce = [9u8; 16];
        let now = SystemTime::now();
        assert_eq!(
            w.check(&w.ask(&w.leaf, Some(&nonce)), now, Some(&nonce)).unwrap(),
            CertStatus::Good
        );
        assert_eq!(w.check(&w.ask(&w.leaf, None), now, None).unwrap(), CertStatus::Good);
        w.revoke(1);
        let status = w.check(&w.ask(&w.leaf, Some(&nonce)), now, Some(&nonce)).unwrap();
        assert_eq!(
            status,
            CertStatus::Revoked {
                time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                reason: Some(CrlReason::KeyCompromise),
            }
        );
    }

    #[test]
    fn a_certificate_the_ca_never_recorded_is_unknown() {
        let w = world();
        let (unrecorded, _) = issue_with(&w.ca, "ghost", &profile());
        let der = w.ask(&unrecorded, None);
        assert_eq!(
            check_ocsp_response(&der, &unrecorded, &w.ca.certificate, SystemTime::now(), None).unwrap(),
            CertStatus::Unknown
        );
    }

    #[test]
    fn freshness_is_enforced() {
        let w = world();
        let der = w.ask(&w.leaf, None);
        let now = SystemTime::now();
        assert_eq!(
            w.check(&der, now + HOUR, None).unwrap(),
            CertStatus::Good,
            "until nextUpdate"
        );
        assert!(matches!(
            w.check(&der, now + HOUR + CLOCK_SKEW + Duration::from_secs(60), None),
            Err(RevocationError::Stale { .. })
        ));
        assert!(matches!(
            w.check(&der, now - CLOCK_SKEW - Duration::from_secs(60), None),
            Err(RevocationError::NotYetValid { .. })
        ));
        assert_eq!(
            w.check(&der, now - Duration::from_secs(60), None).unwrap(),
            CertStatus::Good,
            "skew"
        );
        // Without nextUpdate, only current within the skew of thisUpdate.
        let no_next = tamper(&der, |b| {
            b.tbs_response_data.responses[0].next_update = None;
            resign(b, w.ca.key.as_ref());
        });
        assert_eq!(w.check(&no_next, now, None).unwrap(), CertStatus::Good);
        let err = w.check(&no_next, now + 2 * CLOCK_SKEW, None).unwrap_err();
        assert!(matches!(err, RevocationError::Stale { .. }), "{err}");
        assert!(err.to_string().contains("stale"), "{err}");
    }

    #[test]
    fn nonces_must_match() {
        let w = world();
        let now = SystemTime::now();
        let sent = [1u8; 16];
        let der = w.ask(&w.leaf, Some(&sent));
        assert!(matches!(
            w.check(&der, now, Some(&[2u8; 16])),
            Err(RevocationError::NonceMismatch)
        ));
        let without = w.ask(&w.leaf, None);
        assert!(matches!(
            w.check(&without, now, Some(&sent)),
            Err(RevocationError::NonceMissing)
        ));
        // A response to a nonce request is good for a caller that sent none.
        assert_eq!(w.check(&der, now, None).unwrap(), CertStatus::Good);
        // The bare legacy form (nonce bytes directly in extnValue) is understood.
        let legacy = tamper(&der, |b| {
            let ext = b.tbs_response_data.response_extensions.as_mut().unwrap();
            ext[0].extn_value = OctetString::new(sent.to_vec()).unwrap();
            resign(b, w.ca.key.as_ref());
        });
        assert_eq!(w.check(&legacy, now, Some(&sent)).unwrap(), CertStatus::Good);
    }

    #[test]
    fn forged_and_foreign_responses_are_refused() {
        let w = world();
        let now = SystemTime::now();
        let der = w.ask(&w.leaf, None);
        // A flipped signature bit.
        let flipped = tamper(&der, |b| {
            let mut sig = b.signature.raw_bytes().to_vec();
            let last = sig.len() - 1;
            sig[last] ^= 1;
            b.signature = der::asn1::BitString::from_bytes(&sig).unwrap();
        });
        assert!(matches!(
            w.check(&flipped, now, None),
            Err(RevocationError::BadSignature("OCSP response"))
        ));
        // "Good" changed to "unknown" without re-signing.
        let edited = tamper(&der, |b| {
            b.tbs_response_data.responses[0].cert_status = x509_ocsp::CertStatus::unknown();
        });
        assert!(matches!(
            w.check(&edited, now, None),
            Err(RevocationError::BadSignature(_))
        ));
        // An impostor: our CA's certificate, another key, claiming to be the CA.
        let impostor = Arc::new(Authority {
            certificate: w.ca.certificate.clone(),
            key: Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
            chain: vec![],
        });
        let fake = OcspResponder::new(OcspSetup {
            ca: impostor,
            storage: w.storage.clone(),
            validity: HOUR,
        })
        .unwrap();
        let (forged, _) = fake.respond(&ocsp_request(&w.leaf, &w.ca.certificate, None).unwrap(), now);
        assert!(matches!(
            w.check(&forged, now, None),
            Err(RevocationError::BadSignature(_))
        ));
        // Another CA's responder (valid signature, its own key) is not our issuer.
        let other = Arc::new(root("CN=Other CA,O=elsewhere"));
        let (theirs, _) = issue_with(&other, "theirs", &profile());
        record(&w.storage, &theirs);
        let their_responder = OcspResponder::new(OcspSetup {
            ca: other.clone(),
            storage: w.storage.clone(),
            validity: HOUR,
        })
        .unwrap();
        let (their_answer, _) = their_responder.respond(&ocsp_request(&theirs, &other.certificate, None).unwrap(), now);
        assert!(matches!(
            w.check(&their_answer, now, None),
            Err(RevocationError::UnauthorisedResponder(_))
        ));
        // The wrong issuer certificate handed in.
        assert!(matches!(
            check_ocsp_response(&der, &w.leaf, &other.certificate, now, None),
            Err(RevocationError::NotIssuedBy(_))
        ));
        // A genuine answer about another certificate of the same CA.
        let (sibling, _) = issue_with(&w.ca, "device-2", &profile());
        record(&w.storage, &sibling);
        assert!(matches!(
            w.check(&w.ask(&sibling, None), now, None),
            Err(RevocationError::NoMatchingResponse)
        ));
        // Error statuses, garbage, size.
        let (malformed, _) = w.responder.respond(b"garbage", now);
        let err = w.check(&malformed, now, None).unwrap_err();
        assert!(
            matches!(
                err,
                RevocationError::ResponderStatus(OcspResponseStatus::MalformedRequest)
            ),
            "{err}"
        );
        assert_eq!(err.to_string(), "the OCSP responder answered malformedRequest");
        assert!(matches!(
            w.check(b"\x30\x03\x0a\x01", now, None),
            Err(RevocationError::Malformed { .. })
        ));
        assert!(matches!(
            w.check(&vec![0u8; MAX_OCSP_RESPONSE + 1], now, None),
            Err(RevocationError::TooLarge { .. })
        ));
    }

    /// A response about the world's leaf signed by `signer` (certificate and key), carried in `certs`.
    fn delegated(w: &World, signer: &Certificate, key: &dyn Signer, status: x509_ocsp::CertStatus) -> Vec<u8> {
        let der = w.ask(&w.leaf, None);
        tamper(&der, |b| {
            b.tbs_response_data.responder_id = ResponderId::ByName(signer.tbs_certificate.subject.clone());
            b.tbs_response_data.responses[0].cert_status = status;
            // SHA-256 CertID in the answer: any known hash matches.
            let d = DigestAlgorithm::Sha256;
            let id = &mut b.tbs_response_data.responses[0].cert_id;
            id.hash_algorithm.oid = d.oid();
            id.issuer_name_hash = OctetString::new(d.digest(&w.leaf.tbs_certificate.issuer.to_der().unwrap())).unwrap();
            id.issuer_key_hash =
                OctetString::new(key_hash(d, &w.ca.certificate.tbs_certificate.subject_public_key_info)).unwrap();
            b.certs = Some(vec![signer.clone()]);
            resign(b, key);
        })
    }

    #[test]
    fn delegated_responders_need_the_issuers_ocsp_signing_certificate() {
        let w = world();
        let now = SystemTime::now();
        let ocsp_signing = Profile {
            extended_key_usage: vec![ID_KP_OCSP_SIGNING],
            key_usage: vec![KeyUsages::DigitalSignature],
            ..Profile::default()
        };
        let (delegate, dkey) = issue_with(&w.ca, "OCSP responder", &ocsp_signing);
        let der = delegated(&w, &delegate, &dkey, x509_ocsp::CertStatus::good());
        assert_eq!(w.check(&der, now, None).unwrap(), CertStatus::Good);
        // Signed by the delegate's certificate but another key.
        let other_key = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let der = delegated(&w, &delegate, &other_key, x509_ocsp::CertStatus::good());
        assert!(matches!(
            w.check(&der, now, None),
            Err(RevocationError::BadSignature(_))
        ));
        // A certificate of the issuer without id-kp-OCSPSigning (the device's own, say).
        let (plain, pkey) = issue_with(&w.ca, "not a responder", &Profile::default());
        let der = delegated(&w, &plain, &pkey, x509_ocsp::CertStatus::good());
        let err = w.check(&der, now, None).unwrap_err();
        assert!(
            matches!(&err, RevocationError::UnauthorisedResponder(m) if m.contains("OCSPSigning")),
            "{err}"
        );
        // An OCSP-signing certificate from another CA.
        let other = root("CN=Other CA,O=elsewhere");
        let (foreign, fkey) = issue_with(&other, "OCSP responder", &ocsp_signing);
        let der = delegated(&w, &foreign, &fkey, x509_ocsp::CertStatus::good());
        assert!(matches!(
            w.check(&der, now, None),
            Err(RevocationError::UnauthorisedResponder(_))
        ));
        // The delegate's certificate expired (checked a year on; the answer itself is made current).
        let later = now + Duration::from_secs(400 * 86400);
        let der = w.ask(&w.leaf, None);
        let stale_delegate = tamper(&der, |b| {
            let t = x509_ocsp::OcspGeneralizedTime(der::asn1::GeneralizedTime::from_system_time(later).unwrap());
            b.tbs_response_data.responses[0].this_update = t;
            b.tbs_response_data.responses[0].next_update = Some(t);
            b.tbs_response_data.responder_id = ResponderId::ByName(delegate.tbs_certificate.subject.clone());
            b.certs = Some(vec![delegate.clone()]);
            resign(b, &dkey);
        });
        let err = w.check(&stale_delegate, later, None).unwrap_err();
        assert!(
            matches!(&err, RevocationError::UnauthorisedResponder(m) if m.contains("not valid now")),
            "{err}"
        );
    }

    fn crl(ca: &Authority, revoked: &[Revocation], this_update: SystemTime) -> Vec<u8> {
        ca.crl(revoked, 1, this_update, HOUR).unwrap().to_der().unwrap()
    }

    #[test]
    fn crls_good_revoked_and_stale() {
        let w = world();
        let now = SystemTime::now();
        let good = crl(&w.ca, &[], now);
        assert_eq!(
            check_crl(&good, &w.leaf, &w.ca.certificate, now).unwrap(),
            CertStatus::Good
        );
        let (other_leaf, _) = issue_with(&w.ca, "other", &profile());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let revoked = crl(
            &w.ca,
            &[
                Revocation {
                    serial: other_leaf.tbs_certificate.serial_number.clone(),
                    time: at,
                    reason: None,
                },
                Revocation {
                    serial: w.leaf.tbs_certificate.serial_number.clone(),
                    time: at,
                    reason: Some(CrlReason::Superseded),
                },
            ],
            now,
        );
        assert_eq!(
            check_crl(&revoked, &w.leaf, &w.ca.certificate, now).unwrap(),
            CertStatus::Revoked {
                time: at,
                reason: Some(CrlReason::Superseded)
            }
        );
        assert!(matches!(
            check_crl(&good, &w.leaf, &w.ca.certificate, now + 2 * HOUR),
            Err(RevocationError::Stale { what: "CRL", .. })
        ));
        assert!(matches!(
            check_crl(&good, &w.leaf, &w.ca.certificate, now - HOUR),
            Err(RevocationError::NotYetValid { what: "CRL", .. })
        ));
        assert!(matches!(
            check_crl(&[0u8; 10], &w.leaf, &w.ca.certificate, now),
            Err(RevocationError::Malformed { what: "CRL", .. })
        ));
    }

    #[test]
    fn crls_from_elsewhere_or_tampered_are_refused() {
        let w = world();
        let now = SystemTime::now();
        // Another CA's CRL.
        let other = root("CN=Other CA,O=elsewhere");
        let err = check_crl(&crl(&other, &[], now), &w.leaf, &w.ca.certificate, now).unwrap_err();
        assert!(matches!(err, RevocationError::WrongCrlIssuer { .. }), "{err}");
        // Our name, another key.
        let impostor = Authority {
            certificate: w.ca.certificate.clone(),
            key: Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap()),
            chain: vec![],
        };
        assert!(matches!(
            check_crl(&crl(&impostor, &[], now), &w.leaf, &w.ca.certificate, now),
            Err(RevocationError::BadSignature("CRL"))
        ));
        // An entry removed after signing (the revoked device hides itself).
        let listed = crl(
            &w.ca,
            &[Revocation {
                serial: w.leaf.tbs_certificate.serial_number.clone(),
                time: now,
                reason: None,
            }],
            now,
        );
        let mut c = CertificateList::from_der(&listed).unwrap();
        c.tbs_cert_list.revoked_certificates = None;
        assert!(matches!(
            check_crl(&c.to_der().unwrap(), &w.leaf, &w.ca.certificate, now),
            Err(RevocationError::BadSignature(_))
        ));
        // A critical extension we do not process (issuingDistributionPoint), properly signed.
        let mut c = CertificateList::from_der(&crl(&w.ca, &[], now)).unwrap();
        let idp = const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT;
        c.tbs_cert_list.crl_extensions.as_mut().unwrap().push(Extension {
            extn_id: idp,
            critical: true,
            extn_value: OctetString::new(vec![0x30, 0x00]).unwrap(),
        });
        let alg = w.ca.signature_algorithm();
        let sig = w.ca.key.sign(alg, &c.tbs_cert_list.to_der().unwrap()).unwrap();
        c.signature = der::asn1::BitString::from_bytes(&sig).unwrap();
        assert!(matches!(
            check_crl(&c.to_der().unwrap(), &w.leaf, &w.ca.certificate, now),
            Err(RevocationError::UnsupportedCriticalExtension(o)) if o == idp
        ));
        // The wrong issuer certificate handed in.
        assert!(matches!(
            check_crl(&crl(&w.ca, &[], now), &w.leaf, &other.certificate, now),
            Err(RevocationError::NotIssuedBy(_))
        ));
        assert!(matches!(
            check_crl(&vec![0u8; MAX_CRL + 1], &w.leaf, &w.ca.certificate, now),
            Err(RevocationError::TooLarge { what: "CRL", .. })
        ));
    }
}
