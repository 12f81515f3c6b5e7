//! PKIMessage (RFC 4210 §5.1): parse within bounds, build with protection.
//!
//! ```text
//! PKIMessage ::= SEQUENCE {
//!     header           PKIHeader,
//!     body             PKIBody,
//!     protection   [0] PKIProtection OPTIONAL,
//!     extraCerts   [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL }
//! ```
//!
//! Our own type (`cmpv2`'s `PkiMessage` holds its `PkiBody`, see
//! [`crate::body`]). Parsing first runs [`enrolkit_pkix::ber::normalize`]
//! within [`Limits`] — size, nesting depth and elements per SET — which
//! also turns a BER message into DER, the form protection is computed
//! over; then the counts of requests, certificates and ITAVs are checked.

use crate::body::PkiBody;
use crate::header::{PkiHeader, PVNO_CMP2000, PVNO_CMP2021};
use crate::protection::mac::MacAlgorithm;
use crate::protection::mac::SharedSecret;
use crate::protection::{signature, Claimed, Protect, ProtectionPolicy, Verified};
use crate::{CmpError, Result};
use der::asn1::{AnyRef, BitString, ContextSpecificRef, OctetString};
use der::{Decode, Encode, Sequence, TagMode, TagNumber};
use enrolkit_pkix::ber;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

/// Bounds on a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest message, bytes.
    pub max_message: usize,
    /// Deepest nesting.
    pub max_depth: usize,
    /// Most elements of one SET or context-specific constructed element.
    pub max_elements: usize,
    /// Most CertReqMsgs / CertResponses / RevDetails / CertStatus / poll entries in a body.
    pub max_body_elements: usize,
    /// Most certificates in extraCerts, and in caPubs.
    pub max_certificates: usize,
    /// Most generalInfo ITAVs, and ITAVs of a genm/genp.
    pub max_itavs: usize,
}

impl Limits {
    /// 256 KiB, depth 48, 256 elements per SET, 8 requests, 16 certificates, 16 ITAVs.
    /// RFC 9483 §4.1.1: a Lightweight CMP request carries one CertReqMsg.
    pub const DEFAULT: Limits = Limits {
        max_message: 256 * 1024,
        max_depth: ber::MAX_DEPTH,
        max_elements: ber::MAX_ELEMENTS,
        max_body_elements: 8,
        max_certificates: 16,
        max_itavs: 16,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outer SEQUENCE with header and body kept as raw DER.
#[derive(Sequence)]
struct Raw<'a> {
    header: AnyRef<'a>,
    body: AnyRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    protection: Option<BitString>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    extra_certs: Option<Vec<Certificate>>,
}

/// A PKIMessage.
#[derive(Clone, Debug)]
pub struct PkiMessage {
    /// header.
    pub header: PkiHeader,
    /// body.
    pub body: PkiBody,
    /// protection.
    pub protection: Option<BitString>,
    /// extraCerts (empty when absent).
    pub extra_certs: Vec<Certificate>,
    protected_part: Vec<u8>,
}

fn too_many(what: &'static str, actual: usize, limit: usize) -> Result<()> {
    if actual > limit {
        return Err(CmpError::TooMany { what, limit, actual });
    }
    Ok(())
}

fn sequence_of(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(0x30);
    ber::push_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

impl PkiMessage {
    /// Parse a PKIMessage (DER, or BER normalised to DER) within `limits`.
    /// Nothing is verified yet: see [`PkiMessage::claimed_protection`],
    /// [`PkiMessage::verify_mac`] and [`PkiMessage::verify_signature`].
    pub fn parse(input: &[u8], limits: &Limits) -> Result<Self> {
        if input.len() > limits.max_message {
            return Err(CmpError::TooLarge {
                limit: limits.max_message,
                actual: input.len(),
            });
        }
        let bl = ber::Limits {
            max_len: limits.max_message,
            max_depth: limits.max_depth,
            max_elements: limits.max_elements,
        };
        let der_bytes = ber::normalize(input, &bl).map_err(|e| match e {
            ber::BerError::TooLarge { what, limit, actual } => CmpError::TooMany { what, limit, actual },
            ber::BerError::Malformed(r) => CmpError::malformed("PKIMessage", r),
        })?;
        let raw = Raw::from_der(&der_bytes).map_err(|e| CmpError::malformed("PKIMessage", e))?;
        let header_der = raw.header.to_der()?;
        let body_der = raw.body.to_der()?;
        let header = PkiHeader::from_der(&header_der).map_err(|e| CmpError::malformed("PKIHeader", e))?;
        if header.pvno != PVNO_CMP2000 && header.pvno != PVNO_CMP2021 {
            return Err(CmpError::UnsupportedVersion(header.pvno));
        }
        too_many("generalInfo entries", header.general_info().len(), limits.max_itavs)?;
        too_many(
            "freeText strings",
            header.free_text.as_ref().map_or(0, Vec::len),
            limits.max_itavs,
        )?;
        let extra_certs = raw.extra_certs.unwrap_or_default();
        too_many("extraCerts", extra_certs.len(), limits.max_certificates)?;
        let body = PkiBody::from_der(&body_der)?;
        match &body {
            PkiBody::GenM(_) | PkiBody::GenP(_) => too_many("ITAVs", body.element_count(), limits.max_itavs)?,
            _ => too_many("body elements", body.element_count(), limits.max_body_elements)?,
        }
        too_many("caPubs", body.ca_pubs_count(), limits.max_certificates)?;
        if raw.protection.is_some() != header.protection_alg.is_some() {
            return Err(CmpError::Header("protection and protectionAlg must come together"));
        }
        Ok(PkiMessage {
            header,
            body,
            protection: raw.protection,
            extra_certs,
            protected_part: sequence_of(&[&header_der, &body_der]),
        })
    }

    /// The DER ProtectedPart the protection covers.
    pub fn protected_part(&self) -> &[u8] {
        &self.protected_part
    }

    /// What protection the message claims, with MAC parameters checked against `policy`.
    pub fn claimed_protection(&self, policy: &ProtectionPolicy) -> Result<Claimed> {
        let Some(alg) = &self.header.protection_alg else {
            return Ok(Claimed::None);
        };
        if MacAlgorithm::is_mac(&alg.oid) {
            Ok(Claimed::Mac {
                algorithm: MacAlgorithm::from_algorithm_identifier(alg, &policy.mac)?,
                sender_kid: self.header.sender_kid().map(<[u8]>::to_vec),
            })
        } else {
            Ok(Claimed::Signature { algorithm: alg.oid })
        }
    }

    fn protection_bytes(&self) -> Result<&[u8]> {
        self.protection
            .as_ref()
            .ok_or(CmpError::Unprotected)?
            .as_bytes()
            .ok_or_else(|| CmpError::malformed("PKIProtection", "not a whole number of bytes"))
    }

    /// Check a MAC protection with `secret`.
    pub fn verify_mac(&self, secret: &SharedSecret, policy: &ProtectionPolicy) -> Result<Verified> {
        match self.claimed_protection(policy)? {
            Claimed::Mac { algorithm, sender_kid } => {
                algorithm.verify(secret, &self.protected_part, self.protection_bytes()?)?;
                Ok(Verified::Mac { sender_kid, algorithm })
            }
            Claimed::Signature { .. } => Err(CmpError::WrongIntegrity("signature where a MAC was expected")),
            Claimed::None => Err(CmpError::Unprotected),
        }
    }

    /// Check a signature protection with the first extraCerts certificate,
    /// which must match senderKID (its subjectKeyIdentifier) and sender
    /// (its subject) when those are given. Trust in the certificate is the
    /// caller's decision.
    pub fn verify_signature(&self, policy: &ProtectionPolicy) -> Result<Verified> {
        let alg = match self.claimed_protection(policy)? {
            Claimed::Signature { .. } => self.header.protection_alg.as_ref().ok_or(CmpError::Unprotected)?,
            Claimed::Mac { .. } => return Err(CmpError::WrongIntegrity("MAC where a signature was expected")),
            Claimed::None => return Err(CmpError::Unprotected),
        };
        let (signer, rest) = self
            .extra_certs
            .split_first()
            .ok_or_else(|| CmpError::ProtectionCertificate("no certificate in extraCerts".into()))?;
        if let (Some(kid), Some(skid)) = (self.header.sender_kid(), signature::subject_key_identifier(signer)) {
            if kid != skid.as_slice() {
                return Err(CmpError::ProtectionCertificate(
                    "senderKID is not the first extraCerts certificate's subjectKeyIdentifier".into(),
                ));
            }
        }
        if let Some(name) = self.header.sender_name() {
            if !name.0.is_empty() && *name != signer.tbs_certificate.subject {
                return Err(CmpError::ProtectionCertificate(format!(
                    "sender {name} is not the protection certificate's subject {}",
                    signer.tbs_certificate.subject
                )));
            }
        }
        let bits = self.protection.as_ref().ok_or(CmpError::Unprotected)?;
        signature::verify(alg, signer, &self.protected_part, bits, policy.allow_sha1)?;
        Ok(Verified::Signature {
            signer: Box::new(signer.clone()),
            extra_certs: rest.to_vec(),
        })
    }

    /// Protect `header` and `body` as `protect` says and encode the
    /// message. Sets protectionAlg and senderKID (and, for signatures,
    /// sender when it is the NULL-DN) in the header.
    /// `additional` certificates follow the protection chain in extraCerts
    /// (e.g. the issued certificate's chain in an ip, RFC 9483 §4.1.1).
    pub fn build(
        mut header: PkiHeader,
        body: PkiBody,
        protect: &Protect<'_>,
        additional: &[Certificate],
    ) -> Result<Vec<u8>> {
        let mut extra: Vec<Certificate> = Vec::new();
        match protect {
            Protect::Mac {
                algorithm, sender_kid, ..
            } => {
                header.protection_alg = Some(algorithm.algorithm_identifier()?);
                header.sender_kid = Some(OctetString::new(sender_kid.clone())?);
            }
            Protect::Signature {
                signer,
                certificate,
                chain,
                digest,
            } => {
                let alg = signature::algorithm_for(*signer, *digest)?;
                header.protection_alg = Some(alg.algorithm_identifier());
                header.sender_kid = signature::subject_key_identifier(certificate)
                    .map(OctetString::new)
                    .transpose()?;
                if matches!(&header.sender, GeneralName::DirectoryName(n) if n.0.is_empty()) {
                    header.sender = GeneralName::DirectoryName(certificate.tbs_certificate.subject.clone());
                }
                extra.push((*certificate).clone());
                extra.extend(chain.iter().cloned());
            }
        }
        for c in additional {
            if !extra.contains(c) {
                extra.push(c.clone());
            }
        }
        let header_der = header.to_der()?;
        let body_der = body.to_der()?;
        let protected = sequence_of(&[&header_der, &body_der]);
        let bits = match protect {
            Protect::Mac { secret, algorithm, .. } => BitString::from_bytes(&algorithm.compute(secret, &protected)?)?,
            Protect::Signature { signer, digest, .. } => {
                let alg = signature::algorithm_for(*signer, *digest)?;
                signature::sign(*signer, alg, &protected)?.1
            }
        };
        let protection = ContextSpecificRef {
            tag_number: TagNumber::N0,
            tag_mode: TagMode::Explicit,
            value: &bits,
        }
        .to_der()?;
        let mut parts: Vec<&[u8]> = vec![&header_der, &body_der, &protection];
        let extra_der;
        if !extra.is_empty() {
            extra_der = ContextSpecificRef {
                tag_number: TagNumber::N1,
                tag_mode: TagMode::Explicit,
                value: &extra,
            }
            .to_der()?;
            parts.push(&extra_der);
        }
        Ok(sequence_of(&parts))
    }
}
