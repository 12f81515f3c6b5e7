//! Typed SCEP protocol values (RFC 8894 §3.2.1): the OIDs, nonces,
//! transaction IDs and content-encryption algorithms. The decimal-coded
//! attributes (messageType, pkiStatus, failInfo) are in [`crate::codes`].

use crate::error::{Result, ScepError};
use const_oid::ObjectIdentifier;
use std::fmt;

/// OIDs of SCEP and CMS.
pub mod oid {
    use const_oid::ObjectIdentifier;
    /// id-VeriSign SCEP attributes (2.16.840.1.113733.1.9.x).
    pub const MESSAGE_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.2");
    /// pkiStatus.
    pub const PKI_STATUS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.3");
    /// failInfo.
    pub const FAIL_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.4");
    /// senderNonce.
    pub const SENDER_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.5");
    /// recipientNonce.
    pub const RECIPIENT_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.6");
    /// transactionID.
    pub const TRANSACTION_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.113733.1.9.7");
    /// id-scep-failInfoText (RFC 8894 §3.2.1.4.5: { id-pkix 24 1 }).
    pub const FAIL_INFO_TEXT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.24.1");
    /// PKCS#9 contentType.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// PKCS#9 messageDigest.
    pub const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// PKCS#9 signingTime.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// PKCS#9 challengePassword.
    pub const CHALLENGE_PASSWORD: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
    /// PKCS#9 extensionRequest.
    pub const EXTENSION_REQUEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
    /// id-data.
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// id-envelopedData.
    pub const ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
    /// aes128-CBC.
    pub const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
    /// aes192-CBC.
    pub const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
    /// aes256-CBC.
    pub const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
    /// des-ede3-cbc.
    pub const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
    /// desCBC (single DES: accepted from legacy clients, never chosen).
    pub const DES_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.7");
    /// id-ce-subjectAltName.
    pub const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
}

/// A 16-byte sender or recipient nonce.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// A fresh random nonce.
    pub fn random(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> Self {
        let mut n = [0u8; 16];
        rng.fill_bytes(&mut n);
        Nonce(n)
    }
    /// From received bytes: RFC 8894 says 16 octets; anything else is refused.
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        let arr: [u8; 16] = b.try_into().map_err(|_| ScepError::InvalidAttribute {
            name: "nonce",
            reason: format!("{} bytes, expected 16", b.len()),
        })?;
        Ok(Nonce(arr))
    }
    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Nonce) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", hex::encode(self.0))
    }
}

/// Longest transaction ID accepted from the wire.
pub const MAX_TRANSACTION_ID: usize = 128;

/// A transaction ID: any printable string on input; we emit the hex SHA-256
/// of the requester's public key (RFC 8894 §3.2.1.1).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    /// The recommended form: uppercase hex of SHA-256 over the DER SubjectPublicKeyInfo.
    pub fn from_public_key(spki_der: &[u8]) -> Self {
        TransactionId(hex::encode_upper(
            enrolkit_keys::DigestAlgorithm::Sha256.digest(spki_der),
        ))
    }
    /// Accept any PrintableString of bounded length (micromdm and others use base64 or hex).
    pub fn new(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > MAX_TRANSACTION_ID {
            return Err(ScepError::InvalidAttribute {
                name: "transactionID",
                reason: format!("length {}", s.len()),
            });
        }
        if !s.bytes().all(is_printable) {
            return Err(ScepError::InvalidAttribute {
                name: "transactionID",
                reason: "not a PrintableString".into(),
            });
        }
        Ok(TransactionId(s.to_owned()))
    }
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({})", self.0)
    }
}
impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// X.680 PrintableString character set. Some peers put base64 `/` `+` `=` in
/// transaction IDs; `/`, `+` and `=` are PrintableString characters.
pub(crate) fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// The symmetric cipher of the pkcsPKIEnvelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncryption {
    /// AES-128-CBC: the RFC 8894 default.
    Aes128Cbc,
    /// AES-192-CBC (accepted on input).
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
    /// Triple-DES (EDE3) CBC: legacy peers only.
    DesEde3Cbc,
    /// Single DES-CBC: accepted from legacy clients only (micromdm
    /// `scepclient` 2.1.0 always uses it, whatever GetCACaps says); a reply
    /// mirrors the request's cipher, but we never choose it ourselves.
    DesCbc,
}

impl ContentEncryption {
    /// OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128Cbc => oid::AES128_CBC,
            Self::Aes192Cbc => oid::AES192_CBC,
            Self::Aes256Cbc => oid::AES256_CBC,
            Self::DesEde3Cbc => oid::DES_EDE3_CBC,
            Self::DesCbc => oid::DES_CBC,
        }
    }
    /// Look up an OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Result<Self> {
        [
            Self::Aes128Cbc,
            Self::Aes192Cbc,
            Self::Aes256Cbc,
            Self::DesEde3Cbc,
            Self::DesCbc,
        ]
        .into_iter()
        .find(|c| c.oid() == *o)
        .ok_or_else(|| ScepError::UnsupportedAlgorithm {
            kind: "content encryption",
            oid: o.to_string(),
        })
    }
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::DesCbc => 8,
            Self::Aes128Cbc => 16,
            Self::Aes192Cbc | Self::DesEde3Cbc => 24,
            Self::Aes256Cbc => 32,
        }
    }
    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            Self::DesEde3Cbc | Self::DesCbc => 8,
            _ => 16,
        }
    }
}
