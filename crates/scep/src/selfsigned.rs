//! The self-signed certificate a SCEP client signs its first request with
//! (RFC 8894 §2.3): "the requester MUST use a self-signed certificate" to
//! sign the pkiMessage and receive the encrypted reply. An X.509
//! Certificate (RFC 5280 §4.1), not part of PKCS#10, and SCEP's alone —
//! so it stays here rather than in enrolkit-pkix.

use crate::error::{Result, ScepError};
use der::asn1::BitString;
use der::Encode;
use enrolkit_keys::{DigestAlgorithm, Signer};
use rand_core::{CryptoRng, RngCore};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate};

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
    let alg = enrolkit_pkix::pkcs10::signature_algorithm_for(signer, digest)?;
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
