//! Polling: PollReqContent and PollRepContent (RFC 4210 §5.3.22).
//!
//! ```text
//! PollReqContent ::= SEQUENCE OF SEQUENCE {
//!     certReqId    INTEGER }
//!
//! PollRepContent ::= SEQUENCE OF SEQUENCE {
//!     certReqId    INTEGER,
//!     checkAfter   INTEGER,  -- time in seconds
//!     reason       PKIFreeText OPTIONAL }
//! ```
//!
//! Our own types: `cmpv2` 0.2.0 decodes a pollReq body as PollRepContent
//! and its PollRepContent is a single SEQUENCE, not a SEQUENCE OF.

use crate::header::PkiFreeText;
use crate::request::{i64_to_int, int_to_i64};
use crate::Result;
use der::asn1::Int;
use der::Sequence;

/// Longest checkAfter we honour or send (one day); longer values are read as this.
pub const MAX_CHECK_AFTER: u64 = 86_400;

/// One entry of PollReqContent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PollReq {
    /// certReqId.
    pub cert_req_id: Int,
}

/// One entry of PollRepContent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PollRep {
    /// certReqId.
    pub cert_req_id: Int,
    /// checkAfter, in seconds.
    pub check_after: u64,
    /// reason.
    pub reason: Option<PkiFreeText>,
}

impl PollReq {
    /// For `cert_req_id`.
    pub fn new(cert_req_id: i64) -> Result<Self> {
        Ok(PollReq {
            cert_req_id: i64_to_int(cert_req_id)?,
        })
    }
    /// certReqId as i64.
    pub fn id(&self) -> Result<i64> {
        int_to_i64(&self.cert_req_id)
    }
}

impl PollRep {
    /// Ask the client to poll again after `check_after` seconds (capped at [`MAX_CHECK_AFTER`]).
    pub fn new(cert_req_id: i64, check_after: u64, reason: Option<&str>) -> Result<Self> {
        Ok(PollRep {
            cert_req_id: i64_to_int(cert_req_id)?,
            check_after: check_after.min(MAX_CHECK_AFTER),
            reason: reason.map(|r| vec![r.to_owned()]),
        })
    }
    /// certReqId as i64.
    pub fn id(&self) -> Result<i64> {
        int_to_i64(&self.cert_req_id)
    }
    /// checkAfter, capped at [`MAX_CHECK_AFTER`].
    pub fn check_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.check_after.min(MAX_CHECK_AFTER))
    }
}
