//! SignedData with authenticated attributes, the outer layer of every
//! pkiMessage (RFC 8894 §3.2, RFC 5652 §5): built strictly as DER, parsed
//! as received, the signature checked over the signed attributes' own bytes.
//!
//! ```text
//! SignedData ::= SEQUENCE {
//!   version CMSVersion,
//!   digestAlgorithms DigestAlgorithmIdentifiers,
//!   encapContentInfo EncapsulatedContentInfo,
//!   certificates [0] IMPLICIT CertificateSet OPTIONAL,
//!   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//!   signerInfos SignerInfos }
//!
//! SignerInfo ::= SEQUENCE {
//!   version CMSVersion,
//!   sid SignerIdentifier,
//!   digestAlgorithm DigestAlgorithmIdentifier,
//!   signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
//!   signatureAlgorithm SignatureAlgorithmIdentifier,
//!   signature SignatureValue,
//!   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
//! ```
//!
//! The degenerate, unsigned SignedData (certs-only) is
//! [`enrolkit_pkix::certs_only`].

use crate::asn1::{Elements, IssuerSerial, KeyId, Known, RawCertificate, SignedAttrs, SignedData, SignerInfo};
use crate::certificate::{identifies, spki_der, to_raw};
use crate::content_info::{content_info, decode_cms};
use crate::error::{Result, ScepError};
use crate::types::oid;
use cms::content_info::CmsVersion;
use cms::signed_data::EncapsulatedContentInfo;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Tag, Tagged};
use enrolkit_keys::{oid as koid, DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

/// The parts of a verified-or-not SignedData that SCEP needs.
#[derive(Debug, Clone)]
pub(crate) struct SignedParts {
    pub content: Option<Vec<u8>>,
    pub certificates: Vec<RawCertificate>,
    pub signer: Option<SignerParts>,
}

#[derive(Debug, Clone)]
pub(crate) struct SignerParts {
    pub cert: RawCertificate,
    pub digest: DigestAlgorithm,
    pub signature_algorithm: SignatureAlgorithm,
    pub attrs: Vec<Attribute>,
    pub signed_attrs_der: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Parse a SignedData ContentInfo. With `require_signer`, exactly one
/// SignerInfo with signed attributes and its certificate must be present.
pub(crate) fn parse_signed(input: &[u8], require_signer: bool, limit: usize) -> Result<SignedParts> {
    let sd: SignedData = decode_cms(input, oid::SIGNED_DATA, "signedData", limit)?;
    // SCEP content is always id-data; this also ties eContentType to the signed contentType attribute.
    if sd.encap_content_info.econtent_type != oid::DATA {
        return Err(ScepError::UnexpectedContentType {
            expected: "id-data (eContentType)",
            found: sd.encap_content_info.econtent_type.to_string(),
        });
    }
    let content = match &sd.encap_content_info.econtent {
        None => None,
        Some(any) => {
            if any.tag() != Tag::OctetString {
                return Err(ScepError::malformed("SignedData", "eContent is not an OCTET STRING"));
            }
            Some(any.value().to_vec())
        }
    };
    let certificates = used(sd.certificates);
    let n = sd.signer_infos.0.len();
    if !require_signer {
        return Ok(SignedParts {
            content,
            certificates,
            signer: None,
        });
    }
    let si = match (n, sd.signer_infos.0.first()) {
        (1, Some(si)) => si,
        _ => return Err(ScepError::SignerCount(n)),
    };
    let cert = find_signer_cert(&si.sid, &certificates)?.clone();
    let digest = DigestAlgorithm::from_oid(&si.digest_alg.oid).ok_or_else(|| ScepError::UnsupportedAlgorithm {
        kind: "digest",
        oid: si.digest_alg.oid.to_string(),
    })?;
    let signature_algorithm =
        SignatureAlgorithm::from_oids(&si.signature_algorithm.oid, Some(digest)).ok_or_else(|| {
            ScepError::UnsupportedAlgorithm {
                kind: "signature",
                oid: si.signature_algorithm.oid.to_string(),
            }
        })?;
    if signature_algorithm.digest() != digest {
        return Err(ScepError::UnsupportedAlgorithm {
            kind: "signature",
            oid: format!("{} with digest {}", si.signature_algorithm.oid, si.digest_alg.oid),
        });
    }
    // RSA and SHA AlgorithmIdentifiers take no parameters: absent or NULL (RFC 4055, RFC 5754).
    for alg in [&si.digest_alg, &si.signature_algorithm] {
        if signature_algorithm != SignatureAlgorithm::EcdsaP256Sha256 || alg.oid == si.digest_alg.oid {
            if let Some(p) = &alg.parameters {
                if p.tag() != Tag::Null || !p.value().is_empty() {
                    return Err(ScepError::malformed(
                        "AlgorithmIdentifier",
                        format!("{}: parameters must be absent or NULL", alg.oid),
                    ));
                }
            }
        }
    }
    let signed = si
        .signed_attrs
        .as_ref()
        .ok_or(ScepError::MissingAttribute("signedAttrs"))?;
    let signed_attrs_der = signed.signed_bytes()?;
    let attrs = signed.attrs.clone();
    Ok(SignedParts {
        content,
        certificates,
        signer: Some(SignerParts {
            cert,
            digest,
            signature_algorithm,
            attrs,
            signed_attrs_der,
            signature: si.signature.as_bytes().to_vec(),
        }),
    })
}

/// The alternatives SCEP uses from a SET OF CHOICE, in received order.
fn used<T>(set: Option<Elements<Known<T>>>) -> Vec<T> {
    set.map(|e| e.0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| match k {
            Known::Used(t) => Some(t),
            Known::Other(_) => None,
        })
        .collect()
}

fn find_signer_cert<'a>(sid: &KeyId, certs: &'a [RawCertificate]) -> Result<&'a RawCertificate> {
    certs
        .iter()
        .find(|c| identifies(sid, c))
        .ok_or(ScepError::SignerCertificateMissing)
}

impl SignerParts {
    /// Find one attribute's single value; repeated attributes or values are refused.
    pub fn attr(&self, o: ObjectIdentifier, name: &'static str) -> Result<Option<&Any>> {
        let mut found = self.attrs.iter().filter(|a| a.oid == o);
        let a = match found.next() {
            None => return Ok(None),
            Some(a) => a,
        };
        if found.next().is_some() || a.values.len() != 1 {
            return Err(ScepError::InvalidAttribute {
                name,
                reason: "must occur once with one value".into(),
            });
        }
        Ok(a.values.iter().next())
    }

    /// Check the signature over the signed attributes and the messageDigest
    /// and contentType attributes against the content.
    pub fn verify(&self, content: Option<&[u8]>) -> Result<()> {
        let md = self
            .attr(oid::MESSAGE_DIGEST, "messageDigest")?
            .ok_or(ScepError::MissingAttribute("messageDigest"))?;
        let md = OctetStringRef::try_from(md).map_err(|_| ScepError::InvalidAttribute {
            name: "messageDigest",
            reason: "not an OCTET STRING".into(),
        })?;
        let actual = self.digest.digest(content.unwrap_or(&[]));
        if !bool::from(subtle::ConstantTimeEq::ct_eq(md.as_bytes(), &actual[..])) {
            return Err(ScepError::DigestMismatch);
        }
        if let Some(ct) = self.attr(oid::CONTENT_TYPE, "contentType")? {
            let ct: ObjectIdentifier = ct.decode_as().map_err(|_| ScepError::InvalidAttribute {
                name: "contentType",
                reason: "not an OID".into(),
            })?;
            if ct != oid::DATA {
                return Err(ScepError::InvalidAttribute {
                    name: "contentType",
                    reason: format!("{ct}, expected id-data"),
                });
            }
        }
        let spki_bytes = spki_der(&self.cert)?;
        let spki = SubjectPublicKeyInfoRef::from_der(&spki_bytes)?;
        enrolkit_keys::verify(&spki, self.signature_algorithm, &self.signed_attrs_der, &self.signature).map_err(|e| {
            match e {
                enrolkit_keys::KeyError::UnsupportedAlgorithm(a) => ScepError::UnsupportedAlgorithm {
                    kind: "signature",
                    oid: a.oid().to_string(),
                },
                enrolkit_keys::KeyError::BadSignature => ScepError::BadSignature,
                other => ScepError::Key(other),
            }
        })
    }
}

/// Make an attribute with one value.
pub(crate) fn attribute<T: der::Tagged + der::EncodeValue>(o: ObjectIdentifier, value: &T) -> Result<Attribute> {
    Ok(Attribute {
        oid: o,
        values: SetOfVec::try_from(vec![Any::encode_from(value)?])?,
    })
}

/// The signature algorithm a signer uses with a digest.
pub(crate) fn signature_algorithm_for(signer: &dyn Signer, digest: DigestAlgorithm) -> Result<SignatureAlgorithm> {
    let alg = match signer.kind() {
        KeyKind::Rsa(_) => SignatureAlgorithm::rsa_with(digest),
        KeyKind::EcP256 if digest == DigestAlgorithm::Sha256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::EcP256 => {
            return Err(ScepError::UnsupportedAlgorithm {
                kind: "signature",
                oid: format!("ECDSA with {digest:?}"),
            })
        }
    };
    if !signer.supports(alg) {
        return Err(ScepError::UnsupportedAlgorithm {
            kind: "signature",
            oid: format!("{alg:?} (not available for this key)"),
        });
    }
    Ok(alg)
}

/// Build a SignedData ContentInfo over `content` (id-data) with signed
/// attributes `extra` plus contentType and messageDigest.
pub(crate) fn build_signed(
    content: Option<&[u8]>,
    extra: Vec<Attribute>,
    signer: &dyn Signer,
    cert: &Certificate,
    digest: DigestAlgorithm,
) -> Result<Vec<u8>> {
    let alg = signature_algorithm_for(signer, digest)?;
    let mut attrs = vec![
        attribute(oid::CONTENT_TYPE, &oid::DATA)?,
        attribute(
            oid::MESSAGE_DIGEST,
            &OctetString::new(digest.digest(content.unwrap_or(&[])))?,
        )?,
    ];
    attrs.extend(extra);
    let signed_attrs = SignedAttrs::new(attrs)?;
    let signature = signer.sign(alg, &signed_attrs.signed_bytes()?)?;
    // rsaEncryption in signatureAlgorithm, as OpenSSL and Go's pkcs7 write it.
    let signature_algorithm = match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => alg.algorithm_identifier(),
        _ => AlgorithmIdentifierOwned {
            oid: koid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
    };
    let si = SignerInfo {
        version: CmsVersion::V1,
        sid: KeyId::IssuerAndSerialNumber(IssuerSerial::of(cert)?),
        digest_alg: digest.algorithm_identifier(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: Elements(vec![digest.algorithm_identifier()]),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: match content {
                Some(c) => Some(Any::new(Tag::OctetString, c.to_vec())?),
                None => None,
            },
        },
        certificates: Some(Elements(vec![Known::Used(to_raw(cert)?)])),
        crls: None,
        signer_infos: Elements(vec![si]),
    };
    content_info(oid::SIGNED_DATA, &sd)
}

/// A plain SignedData over `content` (id-data) with contentType and
/// messageDigest only, e.g. the signed GetNextCACert reply (RFC 8894 §4.7).
pub fn sign_data(content: &[u8], signer: &dyn Signer, cert: &Certificate, digest: DigestAlgorithm) -> Result<Vec<u8>> {
    build_signed(Some(content), Vec::new(), signer, cert, digest)
}
