//! OCSP (RFC 6960) names shared by the responder and the client checks.
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

use x509_ocsp::OcspResponseStatus;

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
