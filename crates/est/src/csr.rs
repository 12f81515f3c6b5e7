//! EST's rules for PKCS#10 requests (RFC 7030 §4.5, RFC 9908): a client
//! fills in a request so that it satisfies the server's CSR attributes;
//! a server checks a request it has parsed against the attributes it gave.
//!
//! The request itself — building, signing, parsing with proof of
//! possession first, challengePassword, extensionRequest — is
//! [`enrolkit_pkix::pkcs10`]: [`RequestParams`] and [`CertificationRequest`].

use crate::binding::{ChannelBinding, LinkedPassword};
use crate::csrattrs::{decode_bounded, CsrAttrs, KeyRequirement};
use crate::error::{EstError, Result};
use crate::oid;
use der::asn1::{Any, BmpString, ObjectIdentifier};
use der::Tag;
use der::Tagged;
use enrolkit_keys::{DigestAlgorithm, KeyKind};
use enrolkit_pkix::pkcs10::{ip_from_octets, CertificationRequest, RequestParams};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// Adjust a request to what `attrs` asks for:
///
/// - adds the requested key purposes;
/// - when a challengePassword is requested, sets it to the channel
///   binding (RFC 7030 §3.5); without a binding, a password already set
///   is kept (an enrolment code), and with neither it is an error;
/// - when the subject is empty, takes the valued RDNs of an RFC 9908
///   template, and adds the DNS names and IP addresses of a requested
///   subjectAltName value;
/// - takes the digest of a requested signature algorithm.
///
/// The key requirement is not the request's to meet: see [`check_key`].
pub fn satisfy(req: &mut RequestParams, attrs: &CsrAttrs, channel_binding: Option<&ChannelBinding>) -> Result<()> {
    let template = attrs.template()?;
    for eku in attrs.requested_ekus() {
        if !req.ekus.contains(&eku) {
            req.ekus.push(eku);
        }
    }
    if attrs.challenge_password_requested() {
        match channel_binding {
            Some(b) => req.challenge_password = Some(b.challenge_password()),
            None if req.challenge_password.is_some() => {}
            None => {
                return Err(EstError::unsatisfied(
                    "a challengePassword is requested but there is no channel binding or password to put in it",
                ))
            }
        }
    }
    if req.subject.0.is_empty() {
        if let Some(name) = template.as_ref().map(|t| t.subject_name()).transpose()?.flatten() {
            req.subject = name;
        }
    }
    for ext in attrs.requested_extensions() {
        if ext.extn_id != oid::SUBJECT_ALT_NAME {
            continue;
        }
        let Some(value) = ext.extn_value else { continue };
        let Ok(san) = decode_bounded::<SubjectAltName>(value.as_bytes()) else {
            continue;
        };
        for g in san.0 {
            match g {
                GeneralName::DnsName(d) if !d.as_str().is_empty() => {
                    let d = d.to_string();
                    if !req.dns_names.contains(&d) {
                        req.dns_names.push(d);
                    }
                }
                GeneralName::IpAddress(ip) => {
                    if let Some(ip) = ip_from_octets(ip.as_bytes()) {
                        if !req.ip_addresses.contains(&ip) {
                            req.ip_addresses.push(ip);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(alg) = attrs.signature_algorithm() {
        req.digest = digest_of(&alg)?;
    }
    Ok(())
}

/// The digest a signature algorithm OID implies, if enrolkit-keys has it.
fn digest_of(alg: &ObjectIdentifier) -> Result<DigestAlgorithm> {
    match *alg {
        oid::SHA256_WITH_RSA | oid::ECDSA_WITH_SHA256 => Ok(DigestAlgorithm::Sha256),
        oid::SHA512_WITH_RSA | oid::ECDSA_WITH_SHA512 => Ok(DigestAlgorithm::Sha512),
        other => Err(EstError::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: other.to_string(),
        }),
    }
}

/// Whether a key of `kind` meets the key requirement of `attrs` (RFC 9908):
/// the right type, the right curve, the right RSA modulus size.
pub fn check_key(attrs: &CsrAttrs, kind: KeyKind) -> Result<()> {
    let Some(req) = attrs.key_requirement() else {
        return Ok(());
    };
    let (alg, curve, bits) = match kind {
        KeyKind::Rsa(bits) => (oid::RSA_ENCRYPTION, None, u32::try_from(bits).ok()),
        KeyKind::EcP256 => (oid::EC_PUBLIC_KEY, Some(oid::SECP256R1), None),
    };
    key_meets(&req, alg, curve, bits)
}

fn key_meets(
    req: &KeyRequirement,
    alg: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    bits: Option<u32>,
) -> Result<()> {
    let have = describe_key(alg, curve, bits);
    match req {
        KeyRequirement::Ec { curve: want } => {
            if alg != oid::EC_PUBLIC_KEY || curve != Some(*want) {
                return Err(EstError::unsatisfied(format!(
                    "an EC key on {} is required, the key is {have}",
                    curve_name(want)
                )));
            }
        }
        KeyRequirement::Rsa { bits: want } => {
            let size_ok = want.is_none() || *want == bits;
            if alg != oid::RSA_ENCRYPTION || !size_ok {
                let want = want.map(|b| format!("RSA-{b}")).unwrap_or_else(|| "RSA".into());
                return Err(EstError::unsatisfied(format!(
                    "an {want} key is required, the key is {have}"
                )));
            }
        }
    }
    Ok(())
}

fn curve_name(c: &ObjectIdentifier) -> String {
    match *c {
        oid::SECP256R1 => "P-256".into(),
        oid::SECP384R1 => "P-384".into(),
        oid::SECP521R1 => "P-521".into(),
        other => other.to_string(),
    }
}

fn describe_key(alg: ObjectIdentifier, curve: Option<ObjectIdentifier>, bits: Option<u32>) -> String {
    match (alg, curve, bits) {
        (oid::RSA_ENCRYPTION, _, Some(b)) => format!("RSA-{b}"),
        (oid::RSA_ENCRYPTION, _, None) => "RSA".into(),
        (oid::EC_PUBLIC_KEY, Some(c), _) => format!("EC on {}", curve_name(&c)),
        (other, _, _) => other.to_string(),
    }
}

/// The server's check that a CSR follows the CSR attributes it was given
/// (RFC 7030 §4.5, RFC 9908): a challengePassword when one was requested,
/// every requested extension (and every requested key purpose), the key
/// type, curve or size, the signature algorithm when one was named, and the
/// subject RDNs of a template (with their values, where it gives them).
/// The error names the first requirement not met.
///
/// Whether the challengePassword carries the right channel binding is a
/// separate check: [`ChannelBinding::matches`].
pub fn check_satisfies(attrs: &CsrAttrs, csr: &CertificationRequest) -> Result<()> {
    let template = attrs.template()?;
    if attrs.challenge_password_requested() && csr.challenge_password().is_none() {
        return Err(EstError::unsatisfied("a challengePassword is required"));
    }
    let exts = csr.extensions();
    for want in attrs.requested_extensions() {
        if !exts.iter().any(|e| e.extn_id == want.extn_id) {
            return Err(EstError::unsatisfied(format!("extension {} is required", want.extn_id)));
        }
    }
    let have_ekus = csr.requested_ekus();
    for eku in attrs.requested_ekus() {
        if !have_ekus.contains(&eku) {
            return Err(EstError::unsatisfied(format!("extended key usage {eku} is required")));
        }
    }
    if let Some(req) = attrs.key_requirement() {
        let (alg, curve) = csr.public_key_algorithm();
        key_meets(&req, alg, curve, csr.rsa_bits())?;
    }
    if let Some(alg) = attrs.signature_algorithm() {
        if csr.signature_algorithm().oid != alg {
            return Err(EstError::unsatisfied(format!(
                "signature algorithm {alg} is required, the CSR is signed with {}",
                csr.signature_algorithm().oid
            )));
        }
    }
    if let Some(t) = template {
        for rdn in t.subject.iter().flatten() {
            for want in rdn.iter() {
                let found = csr
                    .subject()
                    .0
                    .iter()
                    .flat_map(|r| r.0.iter())
                    .filter(|atv| atv.oid == want.oid)
                    .any(|atv| want.value.as_ref().is_none_or(|v| same_text(v, &atv.value)));
                if !found {
                    let what = match &want.value {
                        Some(v) => format!(
                            "subject attribute {} with the value given in the template ({})",
                            want.oid,
                            text(v).unwrap_or_default()
                        ),
                        None => format!("subject attribute {} is required", want.oid),
                    };
                    return Err(EstError::unsatisfied(what));
                }
            }
        }
    }
    Ok(())
}

/// A string attribute value as text.
fn text(v: &Any) -> Option<String> {
    match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::VisibleString | Tag::TeletexString => {
            std::str::from_utf8(v.value()).ok().map(str::to_owned)
        }
        Tag::BmpString => v.decode_as::<BmpString>().ok().map(|b| b.to_string()),
        _ => None,
    }
}

/// Equal values, or equal text in different string types.
fn same_text(a: &Any, b: &Any) -> bool {
    a == b || matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}
