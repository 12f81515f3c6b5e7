//! Signature protection (RFC 4210 §5.1.3.3; RFC 9481 §3; RFC 9483 §3.2).
//!
//! ```text
//! PKIProtection ::= BIT STRING   -- the signature over the DER ProtectedPart
//! ```
//!
//! The protection certificate is the first certificate of extraCerts (RFC
//! 9483 §3.3), senderKID is its subjectKeyIdentifier when it has one, and
//! sender is its subject (RFC 9483 §3.1). Signing goes through
//! [`enrolkit_keys::Signer`] (RSA PKCS#1 v1.5 with SHA-256/512, ECDSA P-256
//! with SHA-256: what `enrolkit-keys` signs with); verification accepts
//! what [`enrolkit_keys::verify_certificate_signature`] knows: RSA PKCS#1
//! v1.5 with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384, and
//! SHA-1 only when the caller allows it. Whether the certificate is
//! trusted is not decided here: the caller validates it (its chain through
//! the rest of extraCerts) with `enrolkit_pkix::Validator`.

use crate::{oid, CmpError, Result};
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use enrolkit_keys::{oid as koid, x509_oid, DigestAlgorithm, SignatureAlgorithm, Signer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;

/// The subjectKeyIdentifier of `cert`, if it has one.
pub fn subject_key_identifier(cert: &Certificate) -> Option<Vec<u8>> {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid::CE_SUBJECT_KEY_IDENTIFIER)?;
    OctetString::from_der(ext.extn_value.as_bytes())
        .ok()
        .map(|o| o.as_bytes().to_vec())
}

/// The signature algorithm for a signer and digest.
pub fn algorithm_for(signer: &dyn Signer, digest: DigestAlgorithm) -> Result<SignatureAlgorithm> {
    Ok(enrolkit_pkix::pkcs10::signature_algorithm_for(signer, digest)?)
}

/// Sign `data` and return (protectionAlg, protection).
pub fn sign(
    signer: &dyn Signer,
    alg: SignatureAlgorithm,
    data: &[u8],
) -> Result<(AlgorithmIdentifierOwned, BitString)> {
    let sig = signer.sign(alg, data)?;
    Ok((alg.algorithm_identifier(), BitString::from_bytes(&sig)?))
}

/// Verify a signature `sig` over `data` by `cert`'s key with `alg`.
pub fn verify(
    alg: &AlgorithmIdentifierOwned,
    cert: &Certificate,
    data: &[u8],
    sig: &BitString,
    allow_sha1: bool,
) -> Result<()> {
    verify_with_key(
        alg,
        &cert.tbs_certificate.subject_public_key_info,
        data,
        sig,
        allow_sha1,
    )
}

/// Verify a signature `sig` over `data` by the public key `spki` with `alg`.
pub fn verify_with_key(
    alg: &AlgorithmIdentifierOwned,
    spki: &spki::SubjectPublicKeyInfoOwned,
    data: &[u8],
    sig: &BitString,
    allow_sha1: bool,
) -> Result<()> {
    let is_rsa = matches!(
        alg.oid,
        koid::SHA1_WITH_RSA | koid::SHA256_WITH_RSA | x509_oid::SHA384_WITH_RSA | koid::SHA512_WITH_RSA
    );
    let is_ecdsa = matches!(alg.oid, koid::ECDSA_WITH_SHA256 | x509_oid::ECDSA_WITH_SHA384);
    if !is_rsa && !is_ecdsa {
        return Err(CmpError::UnsupportedAlgorithm {
            kind: "protection",
            oid: alg.oid.to_string(),
        });
    }
    if alg.oid == koid::SHA1_WITH_RSA && !allow_sha1 {
        return Err(CmpError::UnsupportedAlgorithm {
            kind: "protection",
            oid: "sha1WithRSAEncryption (SHA-1 not allowed)".into(),
        });
    }
    // RFC 4055: RSA parameters NULL (or absent); RFC 5758: ECDSA parameters absent.
    match &alg.parameters {
        None => {}
        Some(p) if is_rsa && p.tag() == Tag::Null && p.value().is_empty() => {}
        Some(_) => {
            return Err(CmpError::malformed(
                "protectionAlg",
                format!("{}: unexpected parameters", alg.oid),
            ))
        }
    }
    let sig = sig
        .as_bytes()
        .ok_or_else(|| CmpError::malformed("PKIProtection", "not a whole number of bytes"))?;
    let spki_der = spki.to_der()?;
    let spki = SubjectPublicKeyInfoRef::from_der(&spki_der)?;
    match enrolkit_keys::verify_certificate_signature(&spki, &alg.oid, data, sig) {
        Ok(()) => Ok(()),
        Err(enrolkit_keys::KeyError::BadSignature) => Err(CmpError::BadProtection),
        Err(enrolkit_keys::KeyError::UnsupportedKey(k)) => Err(CmpError::UnsupportedAlgorithm {
            kind: "protection",
            oid: k,
        }),
        Err(e) => Err(CmpError::Key(e)),
    }
}
