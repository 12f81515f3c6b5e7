//! MEF Key Retrieval (seed clause 8.3.3.6): the Enrolment Target's
//! `GET /fetchCredentials/<relativeKeId>` with its identity in `From`, and
//! the MEF's answer.
//!
//! The response carries the parameters of the seed's tables with their
//! names as element / member names: `Status`, `Credential` (base64 of the
//! key), `EnroleeID`, `Lifetime` (seconds the key stays valid), or `Status`
//! and `ErrorString`. We add `CredentialID`, the key identifier the seed
//! says the target obtains with the key but does not list.

use crate::error::{check_id, invalid, ExchangeError, Result};
use crate::format::{check_lifetime, check_text, Message};
use base64::Engine;
use enrolkit_rspf::enrolment::{CredentialUsage, KeyId, RelativeId};
use enrolkit_rspf::Key256;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The path prefix of the retrieval resource.
pub const FETCH_PREFIX: &str = "/fetchCredentials/";

/// A parsed retrieval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The RelativeKeId of the enrolment whose key is asked for.
    pub relative_ke_id: RelativeId,
    /// The usage asked for (`/fetchCredentials/<relativeKeId>/<SUID>`, as
    /// TS-0003 V3.18.0 clause 8.3.2.1 writes it); `None` when the path has
    /// only the identifier, as in the seed.
    pub usage: Option<CredentialUsage>,
    /// The requestor (the `From` / `X-M2M-Origin` header): CSE-ID, AE-ID or MAF-ID.
    pub from: String,
}

impl FetchRequest {
    /// Parse the request path and the `From` value.
    pub fn parse(path: &str, from: Option<&str>) -> Result<FetchRequest> {
        let rest = path
            .split('?')
            .next()
            .unwrap_or("")
            .strip_prefix(FETCH_PREFIX)
            .ok_or_else(|| invalid("path", format!("not under {FETCH_PREFIX}")))?;
        let (rel, suid) = match rest.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (rest, None),
        };
        let relative_ke_id = RelativeId::from_hex(rel).map_err(|e| invalid("relativeKeId", e.to_string()))?;
        // Exactly the two digits of a known SUID (no sign, padding or names).
        let usage = suid
            .map(|s| {
                CredentialUsage::ALL
                    .into_iter()
                    .find(|u| {
                        s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u8>().ok() == Some(u.suid())
                    })
                    .ok_or_else(|| invalid("SUID", format!("{s:?} is not the SUID of a known usage")))
            })
            .transpose()?;
        let from = from.ok_or_else(|| invalid("From", "missing: the requestor must name itself"))?;
        check_id("From", from)?;
        Ok(FetchRequest {
            relative_ke_id,
            usage,
            from: from.to_owned(),
        })
    }

    /// The path for `relative` and `usage`.
    pub fn path(relative: &RelativeId, usage: Option<CredentialUsage>) -> String {
        match usage {
            Some(u) => format!("{FETCH_PREFIX}{relative}/{}", u.suid()),
            None => format!("{FETCH_PREFIX}{relative}"),
        }
    }
}

/// The MEF's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum CredentialResponse {
    /// Status = true.
    Success {
        /// The key.
        credential: Key256,
        /// Its identifier.
        credential_id: String,
        /// The Enrolee's CSE-ID or AE-ID, if it has one.
        enrolee_id: Option<String>,
        /// Seconds the key stays valid.
        lifetime: u64,
    },
    /// Status = false.
    Error {
        /// Why.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "Status")]
    status: bool,
    #[serde(rename = "Credential", default, skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
    #[serde(rename = "CredentialID", default, skip_serializing_if = "Option::is_none")]
    credential_id: Option<String>,
    #[serde(rename = "EnroleeID", default, skip_serializing_if = "Option::is_none")]
    enrolee_id: Option<String>,
    #[serde(rename = "Lifetime", default, skip_serializing_if = "Option::is_none")]
    lifetime: Option<u64>,
    #[serde(rename = "ErrorString", default, skip_serializing_if = "Option::is_none")]
    error_string: Option<String>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Some(c) = self.credential.as_mut() {
            c.zeroize();
        }
    }
}

impl TryFrom<Wire> for CredentialResponse {
    type Error = ExchangeError;
    fn try_from(mut w: Wire) -> Result<Self> {
        if !w.status {
            let reason = w
                .error_string
                .take()
                .ok_or_else(|| invalid("ErrorString", "missing with Status false"))?;
            if w.credential.is_some() || w.credential_id.is_some() || w.enrolee_id.is_some() || w.lifetime.is_some() {
                return Err(invalid("Status", "false with credential fields"));
            }
            return Ok(CredentialResponse::Error { reason });
        }
        if w.error_string.is_some() {
            return Err(invalid("ErrorString", "present with Status true"));
        }
        let b64 = w
            .credential
            .as_deref()
            .ok_or_else(|| invalid("Credential", "missing with Status true"))?;
        let mut raw = [0u8; 33];
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(b64.as_bytes(), &mut raw)
            .map_err(|_| invalid("Credential", "not the base64 of a 32-octet key"))?;
        let credential = raw
            .get(..n)
            .and_then(Key256::from_slice)
            .ok_or_else(|| invalid("Credential", "not the base64 of a 32-octet key"));
        raw.zeroize();
        Ok(CredentialResponse::Success {
            credential: credential?,
            credential_id: w
                .credential_id
                .take()
                .ok_or_else(|| invalid("CredentialID", "missing with Status true"))?,
            enrolee_id: w.enrolee_id.take(),
            lifetime: w
                .lifetime
                .ok_or_else(|| invalid("Lifetime", "missing with Status true"))?,
        })
    }
}

impl From<CredentialResponse> for Wire {
    fn from(r: CredentialResponse) -> Wire {
        match r {
            CredentialResponse::Success {
                credential,
                credential_id,
                enrolee_id,
                lifetime,
            } => Wire {
                status: true,
                credential: Some(base64::engine::general_purpose::STANDARD.encode(credential.expose())),
                credential_id: Some(credential_id),
                enrolee_id,
                lifetime: Some(lifetime),
                error_string: None,
            },
            CredentialResponse::Error { reason } => Wire {
                status: false,
                credential: None,
                credential_id: None,
                enrolee_id: None,
                lifetime: None,
                error_string: Some(reason),
            },
        }
    }
}

impl Message for CredentialResponse {
    const NAME: &'static str = "fetchCredentialsResponse";
    fn validate(&self) -> Result<()> {
        match self {
            CredentialResponse::Success {
                credential_id,
                enrolee_id,
                lifetime,
                ..
            } => {
                KeyId::parse(credential_id).map_err(|e| invalid("CredentialID", e.to_string()))?;
                if let Some(id) = enrolee_id {
                    check_id("EnroleeID", id)?;
                }
                check_lifetime("Lifetime", *lifetime)
            }
            CredentialResponse::Error { reason } => check_text("ErrorString", reason),
        }
    }
}
