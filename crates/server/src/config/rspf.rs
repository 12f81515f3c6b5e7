//! `[rspf]`: the oneM2M MEF's Enrolees and targets.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[rspf]`: the oneM2M M2M Enrolment Function (TS-0003 clause 8.3).
#[derive(Serialize, Deserialize)]
pub struct RspfConfig {
    /// The MEF's FQDN (KeId = RelativeKeId@mef_fqdn; GBA NAF_Id).
    pub mef_fqdn: String,
    /// File with the 32-byte key (hex) sealing Enrolment Keys at rest: the operator's.
    pub storage_key: PathBuf,
    /// The Enrolees and what each is granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enrolee: Vec<RspfEnroleeConfig>,
    /// Enrolment Targets that fetch keys with a certificate, and how it is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<RspfTargetConfig>,
    /// Add `CredentialID` (the key's identifier, an enrolkit extension) to
    /// Key Retrieval answers; by default they carry exactly the fields of
    /// TS-0003 V3.18.0 table 8.3.2.1-5.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub send_credential_id: bool,
    /// The forward-secrecy policy for RSPF sessions: only TLS 1.3 or an
    /// (EC)DHE TLS 1.2 suite, since a plain-PSK suite leaves Ke
    /// recoverable by whoever later learns the PSK; an Enrolee may be
    /// exempted (`forward-secrecy-exception`). `mef init` writes `true`;
    /// absent (configurations written before the policy existed) it is off.
    #[serde(default)]
    pub require_forward_secrecy: bool,
}

/// `[[rspf.target]]`: an Enrolment Target's certificate credential.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RspfTargetConfig {
    /// Its CSE-ID, AE-ID or MAF FQDN, as it names itself in `X-M2M-Origin` / `From`.
    pub id: String,
    /// Its certificate's key: SHA-256 of the SubjectPublicKeyInfo as an
    /// RFC 6920 `ni:///sha-256;…` URI (TS-0003 10.1.2) or 64 hex digits.
    #[serde(default)]
    pub spki_sha256: Option<String>,
    /// PEM file of the CA(s) its certificate chains to (the certificate must then name `id`).
    #[serde(default)]
    pub trust_anchor: Option<PathBuf>,
}

/// `[[rspf.enrolee]]`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RspfEnroleeConfig {
    /// Its name (tokens are issued for it, logs name it).
    pub name: String,
    /// Table 9.2.2.3-1/-2 parameters (kebab-case keys).
    pub bootstrap: enrolkit_exchange::bootstrap::MefEnroleeConfig,
    /// What the exchange grants (kebab-case keys).
    pub grant: crate::rspf::Grant,
    /// Exempt this Enrolee from `require_forward_secrecy` (a peer that
    /// offers only the plain-PSK suite TS-0003 10.2.2 makes mandatory).
    #[serde(
        default,
        rename = "forward-secrecy-exception",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub forward_secrecy_exception: bool,
    /// Which Enrolment Exchange message set this Enrolee speaks:
    /// `change-request` (default) or `v3.18` (TS-0003 V3.18.0 8.3.2.1).
    #[serde(default, rename = "wire-profile")]
    pub wire_profile: enrolkit_exchange::WireProfile,
    /// GBA: `mef-as-naf` (default, the seed's arrangement) or `mef-as-bsf`
    /// (TS-0003 V3.18.0 8.3.2.3: targets fetch Ks_NAF by B-TID).
    #[serde(default, rename = "gba-arrangement")]
    pub gba_arrangement: crate::rspf::GbaArrangement,
}

/// The names RSPF identifies Enrolees and targets by: issued only under a grant.
pub fn rspf_identifiers(r: Option<&RspfConfig>) -> Vec<String> {
    use enrolkit_exchange::bootstrap::EnroleeAuthentication as A;
    let Some(r) = r else { return Vec::new() };
    let mut names = Vec::new();
    for e in &r.enrolee {
        names.extend(e.bootstrap.enrolee_id.clone());
        if let Some(A::DeviceCertificate { device_id, .. }) = &e.bootstrap.authentication {
            names.push(device_id.clone());
        }
    }
    names.extend(r.target.iter().map(|t| t.id.clone()));
    names.sort();
    names.dedup();
    names
}
