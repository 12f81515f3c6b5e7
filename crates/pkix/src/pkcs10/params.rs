//! What goes into a CertificationRequestInfo (RFC 2986 §4.1), and signing
//! it into a CertificationRequest (§4.2): the one request builder of SCEP
//! and EST clients, the agent and the tests.
//!
//! ```text
//! CertificationRequestInfo ::= SEQUENCE {
//!      version       INTEGER { v1(0) } (v1,...),
//!      subject       Name,
//!      subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
//!      attributes    [0] Attributes{{ CRIAttributes }}
//! }
//! Attributes { ATTRIBUTE:IOSet } ::= SET OF Attribute{{ IOSet }}
//! ```
//!
//! Attributes are emitted in this order (DER then sorts the SET):
//! challengePassword, extensionRequest (subjectAltName, extKeyUsage, then
//! the extra extensions), then the extra attributes.

use super::bounds::{MAX_ATTRIBUTES, MAX_EXTENSIONS};
use super::error::{Pkcs10Error, Result};
use super::extension_request::{self, Names};
use super::{challenge, oid};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, SetOfVec};
use der::Encode;
use enrolkit_keys::{DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer};
use std::net::IpAddr;
use x509_cert::attr::Attribute;
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use zeroize::Zeroizing;

/// What goes into a PKCS#10 request; [`RequestParams::build`] signs it.
#[derive(Clone)]
pub struct RequestParams {
    /// Requested subject (may be empty when the subjectAltName names the
    /// subject; the subjectAltName is then marked critical).
    pub subject: Name,
    /// dNSName entries of the requested subjectAltName.
    pub dns_names: Vec<String>,
    /// iPAddress entries of the requested subjectAltName.
    pub ip_addresses: Vec<IpAddr>,
    /// rfc822Name entries of the requested subjectAltName.
    pub emails: Vec<String>,
    /// uniformResourceIdentifier entries of the requested subjectAltName.
    pub uris: Vec<String>,
    /// Key purposes for a requested extKeyUsage.
    pub ekus: Vec<ObjectIdentifier>,
    /// Further requested extensions (keyUsage, …), after subjectAltName and
    /// extKeyUsage; none may repeat either of those.
    pub extensions: Vec<Extension>,
    /// The challengePassword: an enrolment code, or a channel binding.
    pub challenge_password: Option<Zeroizing<String>>,
    /// Further attributes, for what a protocol adds of its own; none may be
    /// a challengePassword or an extensionRequest.
    pub attributes: Vec<Attribute>,
    /// Digest of the self-signature.
    pub digest: DigestAlgorithm,
}

impl std::fmt::Debug for RequestParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestParams")
            .field("subject", &self.subject.to_string())
            .field("dns_names", &self.dns_names)
            .field("ip_addresses", &self.ip_addresses)
            .field("emails", &self.emails)
            .field("uris", &self.uris)
            .field("ekus", &self.ekus)
            .field(
                "extensions",
                &self.extensions.iter().map(|e| e.extn_id).collect::<Vec<_>>(),
            )
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .field("attributes", &self.attributes.iter().map(|a| a.oid).collect::<Vec<_>>())
            .field("digest", &self.digest)
            .finish()
    }
}

impl RequestParams {
    /// A request for `subject`, signed with SHA-256, with nothing else.
    pub fn new(subject: Name) -> RequestParams {
        RequestParams {
            subject,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            emails: Vec::new(),
            uris: Vec::new(),
            ekus: Vec::new(),
            extensions: Vec::new(),
            challenge_password: None,
            attributes: Vec::new(),
            digest: DigestAlgorithm::Sha256,
        }
    }

    /// The same parameters with `password` as the challengePassword (or none).
    pub fn with_challenge_password(mut self, password: Option<&str>) -> Self {
        self.challenge_password = password.map(|p| Zeroizing::new(p.to_owned()));
        self
    }

    /// Add a typed extension (keyUsage, basicConstraints, …) to the ones requested.
    pub fn add_extension<E: AsExtension>(&mut self, ext: &E) -> Result<()> {
        let e = ext
            .to_extension(&self.subject, &self.extensions)
            .map_err(|e| Pkcs10Error::invalid("extension", e))?;
        self.extensions.push(e);
        Ok(())
    }

    /// The subjectAltName names asked for.
    pub fn names(&self) -> Names {
        Names {
            dns: self.dns_names.clone(),
            ips: self.ip_addresses.clone(),
            emails: self.emails.clone(),
            uris: self.uris.clone(),
        }
    }

    /// The CertificationRequestInfo these parameters describe, for `public_key`.
    pub fn info(&self, public_key: &spki::SubjectPublicKeyInfoOwned) -> Result<CertReqInfo> {
        let mut attrs = Vec::new();
        if let Some(pw) = &self.challenge_password {
            attrs.push(challenge::encode(pw)?);
        }
        let mut exts = Vec::new();
        let names = self.names();
        if !names.is_empty() {
            exts.push(names.to_extension(self.subject.0.is_empty())?);
        }
        if !self.ekus.is_empty() {
            exts.push(extension_request::eku_extension(&self.ekus)?);
        }
        for e in &self.extensions {
            if exts.iter().any(|x| x.extn_id == e.extn_id) {
                return Err(Pkcs10Error::invalid(
                    "extensions",
                    format!("extension {} is requested twice", e.extn_id),
                ));
            }
            exts.push(e.clone());
        }
        if exts.len() > MAX_EXTENSIONS {
            return Err(Pkcs10Error::TooMany {
                what: "requested extensions",
                limit: MAX_EXTENSIONS,
            });
        }
        if !exts.is_empty() {
            attrs.push(extension_request::encode(exts)?);
        }
        for a in &self.attributes {
            if a.oid == oid::CHALLENGE_PASSWORD || a.oid == oid::EXTENSION_REQUEST {
                return Err(Pkcs10Error::invalid(
                    "attributes",
                    format!("{} is built from its own field, not added as an attribute", a.oid),
                ));
            }
            attrs.push(a.clone());
        }
        if attrs.len() > MAX_ATTRIBUTES {
            return Err(Pkcs10Error::TooMany {
                what: "attributes",
                limit: MAX_ATTRIBUTES,
            });
        }
        Ok(CertReqInfo {
            version: Version::V1,
            subject: self.subject.clone(),
            public_key: public_key.clone(),
            attributes: SetOfVec::try_from(attrs).map_err(|e| Pkcs10Error::invalid("attributes", e))?,
        })
    }

    /// Build and sign the DER CertificationRequest with `signer`'s key.
    pub fn build(&self, signer: &dyn Signer) -> Result<Vec<u8>> {
        let info = self.info(signer.public_key())?;
        let alg = signature_algorithm_for(signer, self.digest)?;
        let enc = |e: der::Error| Pkcs10Error::invalid("PKCS#10 request", e);
        let signature = signer.sign(alg, &info.to_der().map_err(enc)?)?;
        CertReq {
            info,
            algorithm: alg.algorithm_identifier(),
            signature: BitString::from_bytes(&signature).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }
}

/// The signature algorithm for a signer's key and a digest, if the signer
/// offers it: RSA PKCS#1 v1.5 with the digest, ECDSA P-256 with SHA-256 only.
pub fn signature_algorithm_for(signer: &dyn Signer, digest: DigestAlgorithm) -> Result<SignatureAlgorithm> {
    let alg = match signer.kind() {
        KeyKind::Rsa(_) => SignatureAlgorithm::rsa_with(digest),
        KeyKind::EcP256 if digest == DigestAlgorithm::Sha256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::EcP256 => {
            return Err(Pkcs10Error::UnsupportedAlgorithm {
                what: "signature",
                oid: format!("ECDSA P-256 with {digest:?}"),
            })
        }
    };
    if !signer.supports(alg) {
        return Err(Pkcs10Error::UnsupportedAlgorithm {
            what: "signature",
            oid: format!("{alg:?} (not available for this key)"),
        });
    }
    Ok(alg)
}
