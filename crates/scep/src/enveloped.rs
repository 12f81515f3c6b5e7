//! EnvelopedData with RSA key transport, the inner layer of a pkiMessage
//! (RFC 8894 §3.3, RFC 5652 §6): sealed to a certificate, opened with a
//! [`Decryptor`] and implicit rejection ([`RejectionKey`]).
//!
//! ```text
//! EnvelopedData ::= SEQUENCE {
//!   version CMSVersion,
//!   originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
//!   recipientInfos RecipientInfos,
//!   encryptedContentInfo EncryptedContentInfo,
//!   unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
//!
//! EncryptedContentInfo ::= SEQUENCE {
//!   contentType ContentType,
//!   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
//!   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
//! ```

use crate::asn1::{Elements, EncryptedContentInfo, EnvelopedData, IssuerSerial, KeyId, KeyTransRecipientInfo, Known};
use crate::certificate::{identifies, spki_der};
use crate::cipher::{decrypt_content, encrypt_content};
use crate::content_info::{content_info, decode_cms};
use crate::error::{Result, ScepError};
use crate::rejection::RejectionKey;
use crate::types::{oid, ContentEncryption};
use cms::content_info::CmsVersion;
use der::asn1::{Any, OctetString, OctetStringRef};
use der::Decode;
use enrolkit_keys::{oid as koid, Decryptor};
use rand_core::{CryptoRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_cert::certificate::{CertificateInner, Profile};
use zeroize::Zeroizing;

/// Encrypt `plaintext` to the RSA certificate `recipient` as an EnvelopedData ContentInfo.
pub fn seal_envelope<P: Profile>(
    plaintext: &[u8],
    recipient: &CertificateInner<P>,
    cipher: ContentEncryption,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; cipher.key_len()]);
    rng.fill_bytes(&mut key);
    let mut iv = vec![0u8; cipher.block_len()];
    rng.fill_bytes(&mut iv);
    let ct = encrypt_content(cipher, &key, &iv, plaintext)?;
    let spki_bytes = spki_der(recipient)?;
    let spki = SubjectPublicKeyInfoRef::from_der(&spki_bytes)?;
    let ek = enrolkit_keys::rsa_encrypt_pkcs1v15(&spki, &key).map_err(|e| match e {
        enrolkit_keys::KeyError::UnsupportedKey(o) => ScepError::UnsupportedAlgorithm {
            kind: "key transport",
            oid: o,
        },
        other => ScepError::Key(other),
    })?;
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: KeyId::IssuerAndSerialNumber(IssuerSerial::of(recipient)?),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: koid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(ek)?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: Elements(vec![Known::Used(ktri)]),
        encrypted_content: EncryptedContentInfo {
            content_type: oid::DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(Any::encode_from(&OctetString::new(iv)?)?),
            },
            encrypted_content: Some(OctetString::new(ct)?),
        },
        unprotected_attrs: None,
    };
    content_info(oid::ENVELOPED_DATA, &ed)
}

fn decode_envelope(input: &[u8]) -> Result<EnvelopedData> {
    decode_cms(input, oid::ENVELOPED_DATA, "envelopedData", crate::transport::MAX_REPLY)
}

/// The content-encryption cipher an EnvelopedData names, read without
/// decrypting anything: a responder answering a retransmission from what
/// it stored replies with the sender's cipher and spends no private-key
/// operation on the envelope.
pub fn envelope_cipher(input: &[u8]) -> Result<ContentEncryption> {
    ContentEncryption::from_oid(&decode_envelope(input)?.encrypted_content.content_enc_alg.oid)
}

/// Decrypt an EnvelopedData addressed to `recipient` with `key`.
/// Returns the plaintext and the cipher the sender chose.
pub fn open_envelope<P: Profile>(
    input: &[u8],
    recipient: &CertificateInner<P>,
    key: &dyn Decryptor,
    rejection: &RejectionKey,
) -> Result<(Zeroizing<Vec<u8>>, ContentEncryption)> {
    let ed = decode_envelope(input)?;
    let eci = &ed.encrypted_content;
    let cipher = ContentEncryption::from_oid(&eci.content_enc_alg.oid)?;
    let iv = eci
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| OctetStringRef::try_from(p).ok())
        .map(|o| o.as_bytes().to_vec())
        .ok_or_else(|| ScepError::malformed("EnvelopedData", "content-encryption IV missing or not an OCTET STRING"))?;
    if iv.len() != cipher.block_len() {
        return Err(ScepError::malformed(
            "EnvelopedData",
            format!("IV of {} bytes for {cipher:?}", iv.len()),
        ));
    }
    let ct = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| ScepError::malformed("EnvelopedData", "no encryptedContent"))?;
    if ct.as_bytes().is_empty() || ct.as_bytes().len() % cipher.block_len() != 0 {
        return Err(ScepError::DecryptionFailed);
    }
    let ktri = ed
        .recip_infos
        .0
        .iter()
        .find_map(|ri| match ri {
            Known::Used(k) if identifies(&k.rid, recipient) => Some(k),
            _ => None,
        })
        .ok_or(ScepError::WrongRecipient)?;
    if ktri.key_enc_alg.oid != koid::RSA_ENCRYPTION {
        return Err(ScepError::UnsupportedAlgorithm {
            kind: "key transport",
            oid: ktri.key_enc_alg.oid.to_string(),
        });
    }
    let ek = ktri.enc_key.as_bytes();
    let want = cipher.key_len();
    // Implicit rejection: always compute the synthetic key; choose without branching on secret data.
    let synthetic = rejection.synthetic(ek, want);
    let (real, ok) = match key.decrypt_pkcs1v15(ek) {
        Ok(k) => {
            let ok = subtle::ConstantTimeEq::ct_eq(&(k.len() as u64), &(want as u64));
            // Fixed-length copy: as many iterations whatever the decrypted length.
            let mut buf = Zeroizing::new(vec![0u8; want]);
            for (i, d) in buf.iter_mut().enumerate() {
                *d = k.get(i).copied().unwrap_or(0);
            }
            (buf, ok)
        }
        Err(_) => (Zeroizing::new(vec![0u8; want]), subtle::Choice::from(0)),
    };
    let mut cek = Zeroizing::new(vec![0u8; want]);
    for ((d, r), s) in cek.iter_mut().zip(real.iter()).zip(synthetic.iter()) {
        *d = subtle::ConditionallySelectable::conditional_select(s, r, ok);
    }
    let pt = decrypt_content(cipher, &cek, &iv, ct.as_bytes())?;
    Ok((pt, cipher))
}
