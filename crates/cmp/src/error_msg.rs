//! The error body: ErrorMsgContent (RFC 4210 §5.3.21).
//!
//! ```text
//! ErrorMsgContent ::= SEQUENCE {
//!     pKIStatusInfo          PKIStatusInfo,
//!     errorCode              INTEGER           OPTIONAL,
//!     errorDetails           PKIFreeText       OPTIONAL }
//! ```
//!
//! Our own type: `cmpv2` 0.2.0 keeps its fields private, so an error
//! message can neither be built nor read with it.

use crate::header::PkiFreeText;
use crate::status::{FailureInfoSet, PkiStatusInfo};
use der::Sequence;

/// Longest text we put in statusString/errorDetails (characters).
pub const MAX_TEXT: usize = 256;

/// ErrorMsgContent (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ErrorMsgContent {
    /// pKIStatusInfo (status rejection, with failInfo).
    pub pki_status_info: PkiStatusInfo,
    /// errorCode: implementation-specific.
    pub error_code: Option<i64>,
    /// errorDetails: implementation-specific.
    pub error_details: Option<PkiFreeText>,
}

impl ErrorMsgContent {
    /// A rejection with `fail_info` and a text (cut at [`MAX_TEXT`] characters).
    pub fn rejection(fail_info: impl Into<FailureInfoSet>, text: &str) -> Self {
        let text: String = text.chars().take(MAX_TEXT).collect();
        ErrorMsgContent {
            pki_status_info: PkiStatusInfo::rejection(fail_info, Some(&text)),
            error_code: None,
            error_details: None,
        }
    }
}
