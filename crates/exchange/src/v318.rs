//! The Enrolment Exchange as TS-0003 V3.18.0 clause 8.3.2.1 defines it: a
//! wire profile beside the change request's ([`crate::messages`]).
//!
//! V3.18's request (table 8.3.2.1-1) carries three indications — whether
//! the Enrolee supports Certificate Enrolment, MAF Enrolment and Remote
//! Management — and no Enrolment-Token. The MEF answers with one response
//! per instruction — certificate enrolment (instruction type and URI, table
//! 8.3.2.1-2), MAF enrolment (instruction type, credential type, MAF key
//! registration URI, MAF key retrieval URI, optional client registration
//! URI, trust anchors, lifetime, table 8.3.2.1-3), remote management (the
//! server's URI, table 8.3.2.1-4) — and then an end-of-exchange response.
//!
//! V3.18 has no version field to negotiate on, so which profile an Enrolee
//! speaks is configured on both ends ([`WireProfile`]). It also fixes no
//! serialisation nor transport for the sequence of responses; ours (an
//! enrolkit choice, like the change request's names): element and member
//! names are the parameter names in camelCase, and the responses travel in
//! order in one HTTP answer, `enrolmentExchangeResponses` holding the
//! `response` list whose last entry, and only that one, is the
//! end-of-exchange response. Trust anchors are base64 DER certificates.
//! V3.18's messages carry no KeID, so there is no key confirmation in this
//! profile: each end derives the KeID itself.

use crate::error::{invalid, Result};
use crate::format::{check_lifetime, check_list, check_text, Message};
use crate::messages::MafCredentialType;
use serde::{Deserialize, Serialize};

/// Which Enrolment Exchange message set an Enrolee speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WireProfile {
    /// The change request's (seed `001`): support flags and Enrolment-Token,
    /// one instructions message with the KeId, completion messages.
    #[default]
    #[serde(rename = "change-request")]
    ChangeRequest,
    /// TS-0003 V3.18.0's (this module).
    #[serde(rename = "v3.18")]
    V318,
}

impl WireProfile {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            WireProfile::ChangeRequest => "change-request",
            WireProfile::V318 => "v3.18",
        }
    }

    /// From [`WireProfile::name`].
    pub fn parse(s: &str) -> Option<Self> {
        [WireProfile::ChangeRequest, WireProfile::V318]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// Table 8.3.2.1-1: the Enrolee's indications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExchangeRequest {
    /// Certificate Enrolment indication.
    pub certificate_enrolment: bool,
    /// MAF Enrolment indication.
    pub maf_enrolment: bool,
    /// Remote Management indication.
    pub remote_management: bool,
}

impl Message for ExchangeRequest {
    const NAME: &'static str = "enrolmentExchangeRequest";
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Which response of the sequence this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum InstructionType {
    /// Table 8.3.2.1-2.
    CertificateEnrolment,
    /// Table 8.3.2.1-3.
    MafEnrolment,
    /// Table 8.3.2.1-4.
    RemoteManagement,
    /// The end-of-exchange response.
    EndOfExchange,
}

impl From<InstructionType> for String {
    fn from(t: InstructionType) -> String {
        t.name().to_owned()
    }
}

impl TryFrom<String> for InstructionType {
    type Error = String;
    fn try_from(s: String) -> core::result::Result<Self, String> {
        [
            InstructionType::CertificateEnrolment,
            InstructionType::MafEnrolment,
            InstructionType::RemoteManagement,
            InstructionType::EndOfExchange,
        ]
        .into_iter()
        .find(|t| t.name() == s)
        .ok_or_else(|| format!("unknown instruction type {s:?}"))
    }
}

impl InstructionType {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            InstructionType::CertificateEnrolment => "certificateEnrolment",
            InstructionType::MafEnrolment => "mafEnrolment",
            InstructionType::RemoteManagement => "remoteManagement",
            InstructionType::EndOfExchange => "endOfExchange",
        }
    }
}

/// One response of the sequence. Which fields it carries depends on its
/// type; [`ExchangeResponses`] checks that each has exactly its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExchangeResponse {
    /// The instruction type.
    pub instruction_type: InstructionType,
    /// Certificate enrolment: where to enrol (an EST server); remote
    /// management: the management server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// MAF: how the Enrolee authenticates to the MAF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<MafCredentialType>,
    /// MAF: where the Enrolee registers its Master Credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maf_key_registration_uri: Option<String>,
    /// MAF: where keys are retrieved from the MAF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maf_key_retrieval_uri: Option<String>,
    /// MAF (optional): where the Enrolee registers as a MAF client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_registration_uri: Option<String>,
    /// MAF: trust anchors for the MAF (base64 DER certificates; the outer
    /// shape is checked here, the certificate where it is used).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_anchor: Vec<String>,
    /// MAF: seconds the Master Credential stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u64>,
}

impl ExchangeResponse {
    /// A response of `instruction_type` with no parameters (end of exchange).
    pub fn bare(instruction_type: InstructionType) -> Self {
        ExchangeResponse {
            instruction_type,
            uri: None,
            credential_type: None,
            maf_key_registration_uri: None,
            maf_key_retrieval_uri: None,
            client_registration_uri: None,
            trust_anchor: Vec::new(),
            lifetime: None,
        }
    }

    /// The host of the MAF key registration URI: the MAF-FQDN (table
    /// 8.8.3.2-1's MAF-ID), which V3.18's MAF instruction does not name
    /// otherwise and which Km's derivation (10.3.2) needs.
    pub fn maf_fqdn(&self) -> Option<&str> {
        uri_host(self.maf_key_registration_uri.as_deref()?)
    }

    fn validate(&self) -> Result<()> {
        use InstructionType as T;
        let t = self.instruction_type;
        let maf = t == T::MafEnrolment;
        let present = |field: &'static str, is: bool, wanted: bool| -> Result<()> {
            match (is, wanted) {
                (true, false) => Err(invalid(field, format!("not a parameter of a {} response", t.name()))),
                (false, true) => Err(invalid(field, format!("required in a {} response", t.name()))),
                _ => Ok(()),
            }
        };
        present(
            "uri",
            self.uri.is_some(),
            matches!(t, T::CertificateEnrolment | T::RemoteManagement),
        )?;
        present("credentialType", self.credential_type.is_some(), maf)?;
        present("mafKeyRegistrationUri", self.maf_key_registration_uri.is_some(), maf)?;
        present("mafKeyRetrievalUri", self.maf_key_retrieval_uri.is_some(), maf)?;
        present("lifetime", self.lifetime.is_some(), maf)?;
        if !maf {
            present("clientRegistrationUri", self.client_registration_uri.is_some(), false)?;
            present("trustAnchor", !self.trust_anchor.is_empty(), false)?;
        }
        if let Some(u) = &self.uri {
            check_uri("uri", u)?;
        }
        for (f, u) in [
            ("mafKeyRegistrationUri", &self.maf_key_registration_uri),
            ("mafKeyRetrievalUri", &self.maf_key_retrieval_uri),
            ("clientRegistrationUri", &self.client_registration_uri),
        ] {
            if let Some(u) = u {
                check_uri(f, u)?;
            }
        }
        if maf
            && self
                .maf_fqdn()
                .is_none_or(|h| enrolkit_rspf::Fqdn::new("MAF", h).is_err())
        {
            return Err(invalid(
                "mafKeyRegistrationUri",
                "its host must be the MAF-FQDN (it enters the Master Credential)",
            ));
        }
        check_list("trustAnchor", &self.trust_anchor)?;
        for a in &self.trust_anchor {
            let mut buf = vec![0u8; a.len()];
            match base64::Engine::decode_slice(&base64::engine::general_purpose::STANDARD, a.as_bytes(), &mut buf) {
                Ok(n) if n > 0 && x509_der_is_certificate(buf.get(..n).unwrap_or(&[])) => {}
                _ => return Err(invalid("trustAnchor", "not the base64 of a DER certificate")),
            }
        }
        if let Some(l) = self.lifetime {
            check_lifetime("lifetime", l)?;
        }
        Ok(())
    }
}

/// The MEF's responses, in order, ending with the end-of-exchange response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExchangeResponses {
    /// One per instruction, then [`InstructionType::EndOfExchange`].
    pub response: Vec<ExchangeResponse>,
}

impl ExchangeResponses {
    /// The response of type `t`, if the MEF sent one.
    pub fn get(&self, t: InstructionType) -> Option<&ExchangeResponse> {
        self.response.iter().find(|r| r.instruction_type == t)
    }
}

impl Message for ExchangeResponses {
    const NAME: &'static str = "enrolmentExchangeResponses";
    fn validate(&self) -> Result<()> {
        check_list("response", &self.response)?;
        let Some((last, instructions)) = self.response.split_last() else {
            return Err(invalid("response", "empty: at least the end-of-exchange response"));
        };
        if last.instruction_type != InstructionType::EndOfExchange {
            return Err(invalid("response", "the last response must be the end of the exchange"));
        }
        for (i, r) in instructions.iter().enumerate() {
            if r.instruction_type == InstructionType::EndOfExchange {
                return Err(invalid("response", "an end-of-exchange response before the last"));
            }
            if instructions
                .iter()
                .take(i)
                .any(|p| p.instruction_type == r.instruction_type)
            {
                return Err(invalid(
                    "response",
                    format!("two {} responses", r.instruction_type.name()),
                ));
            }
        }
        self.response.iter().try_for_each(ExchangeResponse::validate)
    }
}

/// A URI: bounded text with a scheme and `://` (`https://` for the
/// certificate enrolment and MAF URIs is not required by V3.18; we check
/// only the form).
fn check_uri(field: &'static str, u: &str) -> Result<()> {
    check_text(field, u)?;
    if uri_host(u).is_none() || u.chars().any(|c| c.is_whitespace()) {
        return Err(invalid(field, format!("{u:?} is not an absolute URI with a host")));
    }
    Ok(())
}

/// The host of `scheme://host[:port][/…]` (no userinfo, no IP literal).
pub fn uri_host(u: &str) -> Option<&str> {
    let (scheme, rest) = u.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') || authority.starts_with('[') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => authority,
    };
    (!host.is_empty()).then_some(host)
}

/// Whether `der` is one DER SEQUENCE (a certificate's outer shape) and
/// nothing more; the receiver parses the certificate itself before use.
fn x509_der_is_certificate(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (len, header) = match first {
        n if n < 0x80 => (usize::from(n), 2),
        0x81..=0x83 => {
            let k = usize::from(first & 0x7f);
            let Some(bytes) = der.get(2..2 + k) else {
                return false;
            };
            (bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)), 2 + k)
        }
        _ => return false,
    };
    header + len == der.len()
}
