//! MEF Key Retrieval: the Enrolment Target asks the MEF for the key an
//! Enrolee derived for it, and the MEF answers.
//!
//! Two request forms, both `GET`:
//!
//! | form | path | requestor in | source |
//! |---|---|---|---|
//! | V3.18 (served first, sent by our client) | `/fetchCredentials/<KeID>/<SUID>` | `X-M2M-Origin` | TS-0003 V3.18.0 8.3.2.1 step f |
//! | change request | `/fetchCredentials/<RelativeKeId>` | `From` | seed clause 8.3.3.6 |
//!
//! The KeID is the full `hexBinary(RelativeKeID)@MEF-FQDN` of 10.3.4 (a
//! `%40` for `@` is read as `@`); the SUID two decimal digits
//! (8.3.9.9.2). A path without a SUID is read in either form (a MAF
//! fetching its Master Credential names none), and a relative identifier
//! with a SUID too (what enrolkit sent before). The requestor may be in
//! either header; when both are present they must agree.
//!
//! The response carries the parameters of tables 8.3.2.1-5 (success:
//! `Status`, `Credential` as base64 of the key, `EnroleeID`, `Lifetime` in
//! seconds) and 8.3.2.1-6 (failure: `Status`, `ErrorString`) with their
//! names as element / member names. `CredentialID`, the identifier of the
//! key, is an enrolkit extension: read when present, written only when the
//! MEF is configured to (a conformant MEF does not send it).

use crate::error::{check_id, invalid, ExchangeError, Result};
use crate::format::{check_lifetime, check_text, Message};
use base64::Engine;
use enrolkit_rspf::enrolment::{KeyId, RelativeId};
use enrolkit_rspf::{Key256, Suid};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// The path prefix of the retrieval resource.
pub const FETCH_PREFIX: &str = "/fetchCredentials/";
/// Longest request path read (a KeID is at most 32 + 1 + 253 characters).
pub const MAX_FETCH_PATH: usize = 512;

/// A parsed retrieval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The RelativeKeId of the enrolment whose key is asked for.
    pub relative_ke_id: RelativeId,
    /// The MEF-FQDN of a full KeID (the V3.18 form); `None` for the change
    /// request's relative identifier. The MEF checks that it is its own.
    pub mef_fqdn: Option<String>,
    /// The SUID asked for; `None` when the path has only the identifier.
    pub suid: Option<Suid>,
    /// The requestor (`X-M2M-Origin` or `From`): CSE-ID, AE-ID or MAF-ID.
    pub from: String,
}

impl FetchRequest {
    /// Parse the request path and the requestor headers (`X-M2M-Origin`,
    /// `From`).
    pub fn parse(path: &str, origin: Option<&str>, from: Option<&str>) -> Result<FetchRequest> {
        if path.len() > MAX_FETCH_PATH {
            return Err(invalid("path", format!("longer than {MAX_FETCH_PATH} octets")));
        }
        let rest = path
            .split('?')
            .next()
            .unwrap_or("")
            .strip_prefix(FETCH_PREFIX)
            .ok_or_else(|| invalid("path", format!("not under {FETCH_PREFIX}")))?;
        let (id, suid) = match rest.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (rest, None),
        };
        let id = id.replace("%40", "@");
        let (relative_ke_id, mef_fqdn) = if id.contains('@') {
            let k = KeyId::parse(&id).map_err(|e| invalid("KeID", e.to_string()))?;
            (k.relative, Some(k.fqdn.as_str().to_owned()))
        } else {
            let r = RelativeId::from_hex(&id).map_err(|e| invalid("RelativeKeId", e.to_string()))?;
            (r, None)
        };
        let suid = suid
            .map(|s| Suid::parse(s).map_err(|e| invalid("SUID", format!("{s:?}: {e}"))))
            .transpose()?;
        let from = requestor(origin, from)?;
        Ok(FetchRequest {
            relative_ke_id,
            mef_fqdn,
            suid,
            from: from.to_owned(),
        })
    }

    /// The V3.18 path `/fetchCredentials/<KeID>[/<SUID>]`.
    pub fn path(ke_id: &KeyId<'_>, suid: Option<Suid>) -> String {
        match suid {
            Some(s) => format!("{FETCH_PREFIX}{ke_id}/{s}"),
            None => format!("{FETCH_PREFIX}{ke_id}"),
        }
    }

    /// The change request's path `/fetchCredentials/<RelativeKeId>`.
    pub fn path_change_request(relative: &RelativeId) -> String {
        format!("{FETCH_PREFIX}{relative}")
    }
}

/// Key Retrieval of a GBA key when the MEF is the BSF (TS-0003 V3.18.0
/// 8.3.2.3: Ke = Ks, KeID = B-TID; the Enrolment Target is the NAF and its
/// key is Ks_NAF). 3GPP has the NAF ask the BSF over Zn; enrolkit's
/// stand-in for Zn is this request, an **extension**:
/// `GET /fetchCredentials/<B-TID>[/<Ua security protocol id>]` with the
/// requestor (the NAF) in `X-M2M-Origin` or `From`. The B-TID is
/// percent-encoded (its base64 has `/`, `+`, `=`); the Ua protocol
/// identifier (TS 33.220 Annex H, five octets) is ten hexadecimal digits,
/// TLS 1.3's shared-key one (`0100000007`) when absent. NAF_Id is the
/// requestor's FQDN form and that identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GbaFetchRequest {
    /// The B-TID (decoded).
    pub btid: String,
    /// The Ua security protocol identifier that ends NAF_Id.
    pub ua: [u8; 5],
    /// The requestor: the NAF (a CSE-ID, AE-ID or MAF-FQDN).
    pub from: String,
}

impl GbaFetchRequest {
    /// `Ok(None)` when the path's key identifier is not a B-TID (then it
    /// is a [`FetchRequest`]); `Err` when it is one but the request is malformed.
    pub fn parse(path: &str, origin: Option<&str>, from: Option<&str>) -> Result<Option<GbaFetchRequest>> {
        if path.len() > MAX_FETCH_PATH {
            return Err(invalid("path", format!("longer than {MAX_FETCH_PATH} octets")));
        }
        let Some(rest) = path.split('?').next().unwrap_or("").strip_prefix(FETCH_PREFIX) else {
            return Ok(None);
        };
        let (id, ua) = match rest.split_once('/') {
            Some((i, u)) => (i, Some(u)),
            None => (rest, None),
        };
        let Ok(btid) = percent_decode(id) else {
            return Ok(None);
        };
        if enrolkit_rspf::gba::parse_btid(&btid).is_err() {
            return Ok(None);
        }
        let ua = match ua {
            None => enrolkit_rspf::gba::UaProtocolId::TLS13_SHARED_KEY.0,
            Some(h) => parse_ua(h)?,
        };
        let from = requestor(origin, from)?;
        Ok(Some(GbaFetchRequest {
            btid,
            ua,
            from: from.to_owned(),
        }))
    }

    /// The path for `btid` (percent-encoded) and `ua` (omitted when TLS 1.3's).
    pub fn path(btid: &str, ua: [u8; 5]) -> String {
        let mut p = String::from(FETCH_PREFIX);
        for b in btid.bytes() {
            if b.is_ascii_alphanumeric() || b"@.-_~".contains(&b) {
                p.push(b as char);
            } else {
                p.push_str(&format!("%{b:02X}"));
            }
        }
        if ua != enrolkit_rspf::gba::UaProtocolId::TLS13_SHARED_KEY.0 {
            p.push('/');
            for b in ua {
                p.push_str(&format!("{b:02x}"));
            }
        }
        p
    }
}

/// Ten hexadecimal digits: a Ua security protocol identifier.
fn parse_ua(h: &str) -> Result<[u8; 5]> {
    let bad = || invalid("Ua protocol id", format!("{h:?} is not ten hexadecimal digits"));
    if h.len() != 10 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 5];
    for (o, pair) in out.iter_mut().zip(h.as_bytes().chunks_exact(2)) {
        let s = core::str::from_utf8(pair).map_err(|_| bad())?;
        *o = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Decode `%XX` escapes (every `%` must start one); the result must be UTF-8.
fn percent_decode(s: &str) -> core::result::Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(())?;
            let hex = core::str::from_utf8(hex).map_err(|_| ())?;
            if !hex.bytes().all(|x| x.is_ascii_hexdigit()) {
                return Err(());
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// The requestor from `X-M2M-Origin` and `From` (one, or both agreeing).
fn requestor<'a>(origin: Option<&'a str>, from: Option<&'a str>) -> Result<&'a str> {
    let r = match (origin, from) {
        (Some(o), Some(f)) if o != f => {
            return Err(invalid("X-M2M-Origin", "differs from From: one requestor, named once"))
        }
        (Some(o), _) => o,
        (None, Some(f)) => f,
        (None, None) => return Err(invalid("X-M2M-Origin", "missing: the requestor must name itself")),
    };
    check_id("X-M2M-Origin", r)?;
    Ok(r)
}

/// The MEF's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum CredentialResponse {
    /// Status = true.
    Success {
        /// The key.
        credential: Key256,
        /// Its identifier (an enrolkit extension; tables 8.3.2.1-5 has none).
        credential_id: Option<String>,
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
            credential_id: w.credential_id.take(),
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
                credential_id,
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
                if let Some(id) = credential_id {
                    KeyId::parse(id).map_err(|e| invalid("CredentialID", e.to_string()))?;
                }
                if let Some(id) = enrolee_id {
                    check_id("EnroleeID", id)?;
                }
                check_lifetime("Lifetime", *lifetime)
            }
            CredentialResponse::Error { reason } => check_text("ErrorString", reason),
        }
    }
}
