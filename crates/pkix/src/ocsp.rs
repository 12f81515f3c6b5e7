//! OCSP (RFC 6960): response status names shared by the responder and the
//! client checks, and the responder's bounded reading of a request.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE {
//!     tbsRequest              TBSRequest,
//!     optionalSignature   [0] EXPLICIT Signature OPTIONAL }
//!
//! TBSRequest ::= SEQUENCE {
//!     version             [0] EXPLICIT Version DEFAULT v1,
//!     requestorName       [1] EXPLICIT GeneralName OPTIONAL,
//!     requestList             SEQUENCE OF Request,
//!     requestExtensions   [2] EXPLICIT Extensions OPTIONAL }
//!
//! Request ::= SEQUENCE {
//!     reqCert                     CertID,
//!     singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//! ```
//!
//! ```text
//! OCSPResponseStatus ::= ENUMERATED {
//!     successful            (0),  -- Response has valid confirmations
//!     malformedRequest      (1),  -- Illegal confirmation request
//!     internalError         (2),  -- Internal error in issuer
//!     tryLater              (3),  -- Try again later
//!                                 -- (4) is not used
//!     sigRequired           (5),  -- Must sign the request
//!     unauthorized          (6)   -- Request unauthorized
//! }
//! ```

use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::asn1::OctetString;
use der::Decode;
use x509_cert::ext::Extension;
use x509_ocsp::{OcspRequest, OcspResponseStatus};

/// Largest request accepted, in bytes (POST body, or the decoded GET form).
/// An RFC 5019 request for one certificate is about 100 bytes; this leaves
/// room for signed requests with a certificate or two, and no more.
pub const MAX_REQUEST: usize = 16 * 1024;

/// Most CertIDs answered in one request: RFC 5019 clients send one.
pub const MAX_CERT_IDS: usize = 32;

/// Longest nonce echoed, in octets (RFC 8954 §2.1: responders must accept
/// 16 to 32; longer or shorter ones may be answered without the nonce).
/// Bounding it also bounds the caller-chosen bytes a responder signs.
pub const MAX_NONCE: usize = 32;

/// Why a request cannot be answered (a `malformedRequest`).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Larger than [`MAX_REQUEST`].
    #[error("request of {0} bytes, larger than {MAX_REQUEST}")]
    TooLarge(usize),
    /// Not a DER OCSPRequest.
    #[error("not a DER OCSPRequest: {0}")]
    Der(#[from] der::Error),
    /// The requestList is empty.
    #[error("the request lists no certificate")]
    NoCertificate,
    /// More CertIDs than [`MAX_CERT_IDS`].
    #[error("{0} CertIDs in one request (at most {MAX_CERT_IDS})")]
    TooManyCertificates(usize),
}

/// A request as a responder acts on it: its CertIDs (at least one, at most
/// [`MAX_CERT_IDS`]) and the nonce to echo, if it sent one a responder may
/// echo.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// The request, DER-decoded.
    pub request: OcspRequest,
    /// The nonce extension to echo (RFC 8954): present, 1 to [`MAX_NONCE`]
    /// octets, and re-made non-critical; `None` otherwise.
    pub nonce: Option<Extension>,
}

impl ParsedRequest {
    /// The CertIDs asked about, in the request's order.
    pub fn requests(&self) -> &[x509_ocsp::Request] {
        &self.request.tbs_request.request_list
    }
}

/// Read a DER OCSPRequest within the bounds above. The signature of a
/// signed request is not checked (RFC 6960 §4.1.2 leaves it to the
/// responder; ours answers public status to anyone).
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, RequestError> {
    if der.len() > MAX_REQUEST {
        return Err(RequestError::TooLarge(der.len()));
    }
    let request = OcspRequest::from_der(der)?;
    let n = request.tbs_request.request_list.len();
    if n == 0 {
        return Err(RequestError::NoCertificate);
    }
    if n > MAX_CERT_IDS {
        return Err(RequestError::TooManyCertificates(n));
    }
    let nonce = echoable_nonce(&request);
    Ok(ParsedRequest { request, nonce })
}

/// The request's nonce as the extension to echo, when it is 1 to
/// [`MAX_NONCE`] octets (an OCTET STRING inside the extension value, or,
/// from clients that omit that wrapping, the value itself).
fn echoable_nonce(req: &OcspRequest) -> Option<Extension> {
    let e = req
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)?;
    let value = e.extn_value.as_bytes();
    let len = OctetString::from_der(value)
        .map(|o| o.as_bytes().len())
        .unwrap_or(value.len());
    if len == 0 || len > MAX_NONCE {
        return None;
    }
    Some(Extension {
        extn_id: ID_PKIX_OCSP_NONCE,
        critical: false,
        extn_value: e.extn_value.clone(),
    })
}

/// The ASN.1 name of a response status (RFC 6960 §4.2.1), for logs and errors.
pub fn response_status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}
