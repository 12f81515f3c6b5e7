//! PKCS#10 requests with a challengePassword, and the self-signed requester
//! certificate a client signs its first SCEP request with.

use crate::error::{Result, ScepError};
use crate::types::oid;
use der::asn1::{Any, BitString, Ia5String, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use enrolkit_keys::{DigestAlgorithm, SignatureAlgorithm, Signer};
use rand_core::{CryptoRng, RngCore};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate};
use zeroize::Zeroizing;

/// Longest challenge password accepted (PKCS#9 ub-challengePassword is 255).
pub const MAX_CHALLENGE: usize = 255;

/// What goes into a certificate request.
#[derive(Debug, Clone)]
pub struct CsrParams<'a> {
    /// Requested subject.
    pub subject: Name,
    /// The challenge password, if any.
    pub challenge_password: Option<&'a str>,
    /// DNS names for a subjectAltName extension request.
    pub dns_names: Vec<String>,
    /// Digest for the CSR signature.
    pub digest: DigestAlgorithm,
}

fn sig_alg(signer: &dyn Signer, digest: DigestAlgorithm) -> Result<SignatureAlgorithm> {
    crate::signed::signature_algorithm_for(signer, digest)
}

/// Build and sign a DER PKCS#10 request.
pub fn build_csr(signer: &dyn Signer, params: &CsrParams<'_>) -> Result<Vec<u8>> {
    let mut attrs = Vec::new();
    if let Some(pw) = params.challenge_password {
        if pw.len() > MAX_CHALLENGE {
            return Err(ScepError::Invalid {
                what: "challenge password",
                reason: "longer than 255 bytes".into(),
            });
        }
        // DirectoryString: PrintableString when it fits, UTF8String otherwise.
        let value = if pw.bytes().all(crate::types::is_printable) {
            Any::encode_from(&PrintableStringRef::new(pw)?)?
        } else {
            Any::encode_from(&Utf8StringRef::new(pw)?)?
        };
        attrs.push(Attribute {
            oid: oid::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![value])?,
        });
    }
    if !params.dns_names.is_empty() {
        let names = params
            .dns_names
            .iter()
            .map(|d| Ia5String::new(d).map(GeneralName::DnsName))
            .collect::<der::Result<Vec<_>>>()?;
        let ext = Extension {
            extn_id: oid::SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(SubjectAltName(names).to_der()?)?,
        };
        let req = ExtensionReq(vec![ext]);
        attrs.push(Attribute {
            oid: oid::EXTENSION_REQUEST,
            values: SetOfVec::try_from(vec![Any::encode_from(&req)?])?,
        });
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: params.subject.clone(),
        public_key: signer.public_key().clone(),
        attributes: SetOfVec::try_from(attrs)?,
    };
    let alg = sig_alg(signer, params.digest)?;
    let signature = signer.sign(alg, &info.to_der()?)?;
    let req = CertReq {
        info,
        algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(req.to_der()?)
}

/// A parsed PKCS#10 request, with the fields a responder checks.
#[derive(Clone)]
pub struct Csr {
    /// The DER as received.
    pub der: Vec<u8>,
    /// The decoded request.
    pub request: CertReq,
    /// The challengePassword attribute (secret).
    pub challenge_password: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Csr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csr")
            .field("subject", &self.request.info.subject.to_string())
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Csr {
    /// Parse a DER PKCS#10 request and check its self-signature (proof of possession).
    pub fn parse(der_bytes: &[u8]) -> Result<Self> {
        enrolkit_pkix::ber::check(der_bytes, &enrolkit_pkix::ber::Limits::DEFAULT)?;
        let request = CertReq::from_der(der_bytes).map_err(|e| ScepError::malformed("PKCS#10 request", e))?;
        // Proof of possession first: attributes of a tampered request are never looked at.
        let unverified = Csr {
            der: der_bytes.to_vec(),
            request: request.clone(),
            challenge_password: None,
        };
        unverified.verify()?;
        let mut challenge_password = None;
        for a in request.info.attributes.iter() {
            if a.oid == oid::CHALLENGE_PASSWORD {
                let v = a.values.iter().next().ok_or(ScepError::InvalidAttribute {
                    name: "challengePassword",
                    reason: "no value".into(),
                })?;
                let s = match v.tag() {
                    Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString | Tag::BmpString => {
                        std::str::from_utf8(v.value()).map_err(|_| ScepError::InvalidAttribute {
                            name: "challengePassword",
                            reason: "not text".into(),
                        })?
                    }
                    t => {
                        return Err(ScepError::InvalidAttribute {
                            name: "challengePassword",
                            reason: format!("tag {t}"),
                        })
                    }
                };
                if s.len() > MAX_CHALLENGE {
                    return Err(ScepError::InvalidAttribute {
                        name: "challengePassword",
                        reason: "too long".into(),
                    });
                }
                challenge_password = Some(Zeroizing::new(s.to_owned()));
            }
        }
        let csr = Csr {
            der: der_bytes.to_vec(),
            request,
            challenge_password,
        };
        csr.verify()?;
        Ok(csr)
    }

    fn verify(&self) -> Result<()> {
        let spki_der = self.request.info.public_key.to_der()?;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)?;
        let sig = self
            .request
            .signature
            .as_bytes()
            .ok_or_else(|| ScepError::malformed("PKCS#10 request", "unaligned signature"))?;
        let info = self.request.info.to_der()?;
        let oid = &self.request.algorithm.oid;
        // The certificate verifier knows P-384 and SHA-384 too; what it does not
        // (ECDSA with SHA-512, say) the older verifier still checks.
        let checked = match enrolkit_keys::verify_certificate_signature(&spki, oid, &info, sig) {
            Err(enrolkit_keys::KeyError::UnsupportedKey(_)) => match SignatureAlgorithm::from_oids(oid, None) {
                Some(alg) => enrolkit_keys::verify(&spki, alg, &info, sig),
                None => Err(enrolkit_keys::KeyError::UnsupportedKey(oid.to_string())),
            },
            other => other,
        };
        checked.map_err(|e| match e {
            enrolkit_keys::KeyError::BadSignature => ScepError::BadSignature,
            enrolkit_keys::KeyError::UnsupportedAlgorithm(a) => ScepError::UnsupportedAlgorithm {
                kind: "CSR signature",
                oid: a.oid().to_string(),
            },
            enrolkit_keys::KeyError::UnsupportedKey(_) => ScepError::UnsupportedAlgorithm {
                kind: "CSR signature",
                oid: oid.to_string(),
            },
            other => ScepError::Key(other),
        })
    }

    /// DNS names requested in a subjectAltName extension request.
    pub fn dns_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self
            .request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oid::EXTENSION_REQUEST)
        {
            for v in a.values.iter() {
                if let Ok(req) = v.decode_as::<ExtensionReq>() {
                    for e in req.0.iter().filter(|e| e.extn_id == oid::SUBJECT_ALT_NAME) {
                        if let Ok(san) = SubjectAltName::from_der(e.extn_value.as_bytes()) {
                            out.extend(san.0.iter().filter_map(|g| match g {
                                GeneralName::DnsName(d) => Some(d.to_string()),
                                _ => None,
                            }));
                        }
                    }
                }
            }
        }
        out
    }
}

/// A self-signed certificate for the requester's key, used to sign (and to
/// receive the encrypted reply of) a first enrolment (RFC 8894 §2.3).
pub fn self_signed_certificate(
    signer: &dyn Signer,
    subject: &Name,
    digest: DigestAlgorithm,
    not_before: std::time::SystemTime,
    lifetime: std::time::Duration,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Certificate> {
    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let alg = sig_alg(signer, digest)?;
    let not_after = not_before + lifetime;
    let validity = Validity {
        not_before: x509_cert::time::Time::try_from(not_before).map_err(|e| ScepError::malformed("validity", e))?,
        not_after: x509_cert::time::Time::try_from(not_after).map_err(|e| ScepError::malformed("validity", e))?,
    };
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::new(&serial)?,
        signature: alg.algorithm_identifier(),
        issuer: subject.clone(),
        validity,
        subject: subject.clone(),
        subject_public_key_info: signer.public_key().clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: None,
    };
    let sig = signer.sign(alg, &tbs.to_der()?)?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&sig)?,
    })
}
