//! Proof of possession by signature (RFC 4211 §4.1; RFC 9483 §4.1.1).
//!
//! ```text
//! ProofOfPossession ::= CHOICE {
//!     raVerified        [0] NULL,
//!     signature         [1] POPOSigningKey,
//!     keyEncipherment   [2] POPOPrivKey,
//!     keyAgreement      [3] POPOPrivKey }
//!
//! POPOSigningKey ::= SEQUENCE {
//!     poposkInput         [0] POPOSigningKeyInput OPTIONAL,
//!     algorithmIdentifier     AlgorithmIdentifier,
//!     signature               BIT STRING }
//! ```
//!
//! "the signature is computed over the DER-encoded value of certReq" when
//! the template holds subject and publicKey, in which case poposkInput
//! MUST be omitted (RFC 4211 §4.1); the Lightweight CMP Profile requires
//! that form. We sign and verify over the DER re-encoding of the decoded
//! CertRequest, as OpenSSL does; the OpenSSL-made vectors prove the round
//! trip. `ProofOfPossession` and `POPOSigningKey` are `crmf`'s.

use crate::protection::signature;
use crate::request::{CertReqMsg, CertRequest, PopoSigningKey, ProofOfPossession};
use crate::{CmpError, Result};
use der::Encode;
use enrolkit_keys::{DigestAlgorithm, Signer};
use spki::SubjectPublicKeyInfoOwned;

/// How a request proved possession of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopKind {
    /// A POPOSigningKey that verified with the template's public key.
    Signature,
    /// raVerified: an RA vouches. Only acceptable from a trusted RA; the caller decides.
    RaVerified,
}

/// A signature POP over `cert_req` with `signer` (the key being certified).
pub fn sign(cert_req: &CertRequest, signer: &dyn Signer, digest: DigestAlgorithm) -> Result<ProofOfPossession> {
    let alg = signature::algorithm_for(signer, digest)?;
    let (alg_id, bits) = signature::sign(signer, alg, &cert_req.to_der()?)?;
    Ok(ProofOfPossession::Signature(Box::new(PopoSigningKey {
        poposk_input: None,
        alg_id,
        signature: bits,
    })))
}

/// The public key the template asks to certify (required for a signature POP).
pub fn template_key(msg: &CertReqMsg) -> Result<&SubjectPublicKeyInfoOwned> {
    msg.cert_req
        .cert_template
        .public_key
        .as_ref()
        .ok_or(CmpError::BadCertTemplate("publicKey missing"))
}

/// Check the POP of `msg`. A signature must verify over the CertRequest
/// with the template's key; raVerified is reported, not judged.
pub fn verify(msg: &CertReqMsg, allow_sha1: bool) -> Result<PopKind> {
    match &msg.popo {
        None => Err(CmpError::BadPop("no proof of possession".into())),
        Some(ProofOfPossession::RaVerified(_)) => Ok(PopKind::RaVerified),
        Some(ProofOfPossession::Signature(sk)) => {
            if sk.poposk_input.is_some() {
                return Err(CmpError::BadPop(
                    "poposkInput present (RFC 9483 §4.1.1: subject and publicKey go in the template)".into(),
                ));
            }
            let key = template_key(msg)?;
            let data = msg.cert_req.to_der()?;
            match signature::verify_with_key(&sk.alg_id, key, &data, &sk.signature, allow_sha1) {
                Ok(()) => Ok(PopKind::Signature),
                Err(CmpError::BadProtection) => Err(CmpError::BadPop("signature does not verify".into())),
                Err(CmpError::UnsupportedAlgorithm { oid, .. }) => Err(CmpError::BadPop(format!("algorithm {oid}"))),
                Err(e) => Err(e),
            }
        }
        Some(ProofOfPossession::KeyEncipherment(_)) | Some(ProofOfPossession::KeyAgreement(_)) => Err(
            CmpError::BadPop("keyEncipherment/keyAgreement POP is not supported".into()),
        ),
    }
}
