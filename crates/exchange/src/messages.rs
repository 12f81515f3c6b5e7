//! The Enrolment Exchange (seed clause 8.3.3.1): the Enrolee's request, the
//! MEF's instructions, and the completion messages.

use crate::error::{check_id, invalid, Result};
use crate::format::{check_lifetime, check_list, check_text, Message};
use enrolkit_rspf::enrolment::{CredentialUsage, KeyId};
use enrolkit_rspf::Fqdn;
use serde::{Deserialize, Serialize};

/// A communication security type a credential may be used for.
///
/// Written as its name (`SAEF`, `ESPrim`, `ESData`) in text: element content
/// in XML, a string in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CommSecurityType {
    /// Security Association Establishment Framework (TLS between CSEs/AEs).
    Saef,
    /// End-to-End Security of Primitives.
    EsPrim,
    /// End-to-End Security of Data.
    EsData,
}

/// Text enums: the name both ways, exact case on the wire.
macro_rules! text_enum {
    ($t:ty, $what:literal, [$($v:path => $n:literal),+]) => {
        impl From<$t> for String {
            fn from(v: $t) -> String {
                match v { $($v => $n.to_owned()),+ }
            }
        }
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> core::result::Result<Self, String> {
                match s.as_str() {
                    $($n => Ok($v),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?}"), other)),
                }
            }
        }
    };
}

text_enum!(CommSecurityType, "security type", [
    CommSecurityType::Saef => "SAEF",
    CommSecurityType::EsPrim => "ESPrim",
    CommSecurityType::EsData => "ESData"
]);

impl CommSecurityType {
    /// The symmetric-key usage of this type (PSK-SAEF, PSK-ESPrim, PSK-ESData).
    pub fn credential_usage(self) -> CredentialUsage {
        match self {
            CommSecurityType::Saef => CredentialUsage::PskSaef,
            CommSecurityType::EsPrim => CredentialUsage::PskEsPrim,
            CommSecurityType::EsData => CredentialUsage::PskEsData,
        }
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            CommSecurityType::Saef => "SAEF",
            CommSecurityType::EsPrim => "ESPrim",
            CommSecurityType::EsData => "ESData",
        }
    }

    /// From the wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            CommSecurityType::Saef,
            CommSecurityType::EsPrim,
            CommSecurityType::EsData,
        ]
        .into_iter()
        .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

/// Step 2: what the Enrolee supports, and its Enrolment-Token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnrolmentRequest {
    /// Whether the Enrolee supports Certificate Enrolment (every Enrolee
    /// supports symmetric-key procedures).
    pub supports_certificate_enrolment: bool,
    /// Whether the Enrolee supports MAF-based procedures.
    pub supports_maf_procedures: bool,
    /// The Enrolment-Token, when one was provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
}

impl core::fmt::Debug for EnrolmentRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnrolmentRequest")
            .field("supports_certificate_enrolment", &self.supports_certificate_enrolment)
            .field("supports_maf_procedures", &self.supports_maf_procedures)
            .field("enrolment_token", &self.enrolment_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Drop for EnrolmentRequest {
    fn drop(&mut self) {
        if let Some(t) = self.enrolment_token.as_mut() {
            zeroize::Zeroize::zeroize(t);
        }
    }
}

impl Message for EnrolmentRequest {
    const NAME: &'static str = "enrolmentRequest";
    fn validate(&self) -> Result<()> {
        if let Some(t) = &self.enrolment_token {
            check_text("enrolmentToken", t)?;
        }
        Ok(())
    }
}

/// Step 5: perform Certificate Enrolment (seed clause 8.3.3.3) over EST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateEnrolment {
    /// Communication security types the certificate may be used for.
    #[serde(default)]
    pub security_type: Vec<CommSecurityType>,
    /// Extended key usage OIDs (dotted decimal) the CSR is to request.
    #[serde(default)]
    pub eku: Vec<String>,
    /// The EST server to enrol with, when not this MEF's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub est_uri: Option<String>,
}

/// How the Enrolee authenticates to the MAF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MafCredentialType {
    /// With the certificate from Certificate Enrolment (`certificate`).
    Certificate,
    /// With the Master Credential Kc derived from Ke, TS-0003 10.3.2 (`symmetricKey`).
    SymmetricKey,
}

text_enum!(MafCredentialType, "credential type", [
    MafCredentialType::Certificate => "certificate",
    MafCredentialType::SymmetricKey => "symmetricKey"
]);

/// Step 7: perform Remote MAF Enrolment (seed clause 8.3.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MafEnrolment {
    /// Certificate or symmetric key.
    pub credential_type: MafCredentialType,
    /// The MAF's FQDN (enters the Kc derivation and KcId).
    pub maf_fqdn: String,
    /// Where to reach the MAF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maf_uri: Option<String>,
    /// Communication security types the MAF may facilitate for this Enrolee.
    #[serde(default)]
    pub security_type: Vec<CommSecurityType>,
}

/// Step 9: one (Enrolee B-ID, communication security type) pair the Enrolee
/// may derive a key for directly from Ke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DirectKey {
    /// Enrolee B's CSE-ID or AE-ID.
    pub target_id: String,
    /// What the key is for.
    pub security_type: CommSecurityType,
}

/// Steps 5, 7 and 9: the MEF's instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnrolmentInstructions {
    /// The KeId the MEF derived: the Enrolee compares it with its own (key
    /// confirmation: both ends exported the same Ke).
    pub ke_id: String,
    /// Enrolment Expiry: seconds Ke (and what is derived from it) stays valid.
    pub enrolment_expiry: u64,
    /// The CSE-ID or AE-ID assigned to the Enrolee, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolee_id: Option<String>,
    /// Perform Certificate Enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_enrolment: Option<CertificateEnrolment>,
    /// Perform Remote MAF Enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maf_enrolment: Option<MafEnrolment>,
    /// Keys the Enrolee may derive directly for CSEs/AEs.
    #[serde(default)]
    pub direct_key: Vec<DirectKey>,
    /// Initial configuration: the Registrar CSE to use in an SAEF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar_cse: Option<String>,
}

fn check_oid(field: &'static str, oid: &str) -> Result<()> {
    let well_formed =
        |a: &str| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && (a.len() == 1 || !a.starts_with('0'));
    let mut arcs = oid.split('.');
    let (first, second) = (arcs.next().unwrap_or(""), arcs.next().unwrap_or(""));
    // X.660: the second arc under 0 and 1 is at most 39.
    let second_ok =
        well_formed(second) && (first == "2" || (second.len() <= 2 && second.parse::<u8>().is_ok_and(|n| n <= 39)));
    let ok = oid.len() <= 128 && matches!(first, "0" | "1" | "2") && second_ok && arcs.all(well_formed);
    if ok {
        Ok(())
    } else {
        Err(invalid(field, format!("{oid:?} is not a dotted-decimal OID")))
    }
}

fn check_types(field: &'static str, v: &[CommSecurityType]) -> Result<()> {
    check_list(field, v)?;
    for (i, t) in v.iter().enumerate() {
        if v.iter().take(i).any(|u| u == t) {
            return Err(invalid(field, format!("{} listed twice", t.name())));
        }
    }
    Ok(())
}

impl Message for EnrolmentInstructions {
    const NAME: &'static str = "enrolmentInstructions";
    fn validate(&self) -> Result<()> {
        KeyId::parse(&self.ke_id).map_err(|e| invalid("keId", e.to_string()))?;
        check_lifetime("enrolmentExpiry", self.enrolment_expiry)?;
        if let Some(id) = &self.enrolee_id {
            check_id("enroleeId", id)?;
        }
        if let Some(c) = &self.certificate_enrolment {
            check_types("certificateEnrolment.securityType", &c.security_type)?;
            check_list("certificateEnrolment.eku", &c.eku)?;
            for o in &c.eku {
                check_oid("certificateEnrolment.eku", o)?;
            }
            if let Some(u) = &c.est_uri {
                check_text("certificateEnrolment.estUri", u)?;
                if !u.starts_with("https://") {
                    return Err(invalid("certificateEnrolment.estUri", "must be https://"));
                }
            }
        }
        if let Some(m) = &self.maf_enrolment {
            Fqdn::new("MAF", &m.maf_fqdn).map_err(|e| invalid("mafEnrolment.mafFqdn", e.to_string()))?;
            if let Some(u) = &m.maf_uri {
                check_text("mafEnrolment.mafUri", u)?;
            }
            check_types("mafEnrolment.securityType", &m.security_type)?;
        }
        check_list("directKey", &self.direct_key)?;
        for (i, d) in self.direct_key.iter().enumerate() {
            check_id("directKey.targetId", &d.target_id)?;
            if self.direct_key.iter().take(i).any(|e| e == d) {
                return Err(invalid(
                    "directKey",
                    format!("{} / {} listed twice", d.target_id, d.security_type.name()),
                ));
            }
        }
        if let Some(r) = &self.registrar_cse {
            check_id("registrarCse", r)?;
        }
        Ok(())
    }
}

/// Which procedure a completion message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Procedure {
    /// Certificate Enrolment, step 6 (`certificateEnrolment`).
    CertificateEnrolment,
    /// Remote MAF Enrolment, step 8 (`mafEnrolment`).
    MafEnrolment,
}

text_enum!(Procedure, "procedure", [
    Procedure::CertificateEnrolment => "certificateEnrolment",
    Procedure::MafEnrolment => "mafEnrolment"
]);

/// Steps 6 and 8: the Enrolee tells the MEF a procedure is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Completion {
    /// The KeId of the enrolment this completes.
    pub ke_id: String,
    /// Which procedure.
    pub procedure: Procedure,
    /// Whether it succeeded.
    pub success: bool,
    /// Why not, or a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Message for Completion {
    const NAME: &'static str = "enrolmentCompletion";
    fn validate(&self) -> Result<()> {
        KeyId::parse(&self.ke_id).map_err(|e| invalid("keId", e.to_string()))?;
        if let Some(r) = &self.reason {
            check_text("reason", r)?;
        }
        Ok(())
    }
}

/// The MEF's refusal of an Enrolment Exchange request or completion
/// message, shaped like the Key Retrieval error (`Status` false and
/// `ErrorString`), since TS-0003 defines no error message for the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refused {
    /// Always false.
    #[serde(rename = "Status")]
    pub status: bool,
    /// Why.
    #[serde(rename = "ErrorString")]
    pub reason: String,
}

impl Refused {
    /// A refusal for `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        Refused {
            status: false,
            reason: reason.into(),
        }
    }
}

impl Message for Refused {
    const NAME: &'static str = "enrolmentRefused";
    fn validate(&self) -> Result<()> {
        if self.status {
            return Err(invalid("Status", "a refusal has Status false"));
        }
        check_text("ErrorString", &self.reason)
    }
}
