//! Private-key operations for enrolkit, behind traits.
//!
//! Every crate that signs or decrypts (SCEP messages, CSRs, certificates,
//! CRLs) does it through [`Signer`] and [`Decryptor`], so a key can live in
//! memory ([`SoftwareKey`]) or in a PKCS#11 token without the protocol code
//! knowing. Public-key operations (verification, RSA key transport) are free
//! functions over a `SubjectPublicKeyInfo`.
//!
//! The software implementation uses `aws-lc-rs`, whose RSA is constant time.
//! The RustCrypto `rsa` crate is deliberately not used: every released
//! version carries RUSTSEC-2023-0071 (Marvin), and an SCEP RA decrypts
//! attacker-chosen RSA ciphertexts.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

/// OIDs used for keys and signatures.
pub mod oid {
    use const_oid::ObjectIdentifier;
    /// rsaEncryption (PKCS#1).
    pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// sha1WithRSAEncryption.
    pub const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// sha512WithRSAEncryption.
    pub const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
    /// id-ecPublicKey.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// prime256v1 / secp256r1.
    pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// id-sha1.
    pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    /// id-sha256.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// id-sha512.
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
}

/// Errors from key handling and public-key operations.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The key bytes could not be parsed or the key was rejected.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The public key type or parameters are not supported.
    #[error("unsupported public key algorithm {0}")]
    UnsupportedKey(String),
    /// The key cannot perform this algorithm (e.g. SHA-1 signing, or ECDSA with an RSA key).
    #[error("algorithm {0:?} is not supported by this key")]
    UnsupportedAlgorithm(SignatureAlgorithm),
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Decryption failed (deliberately uninformative).
    #[error("decryption failed")]
    DecryptionFailed,
    /// The underlying crypto library or token failed.
    #[error("key operation failed: {0}")]
    Operation(&'static str),
    /// PEM/DER encoding problem.
    #[error("encoding: {0}")]
    Encoding(String),
}

impl From<der::Error> for KeyError {
    fn from(e: der::Error) -> Self {
        KeyError::Encoding(e.to_string())
    }
}

/// Digest algorithms used by SCEP and certificate signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-1: legacy peers only.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha512 => oid::SHA512,
        }
    }
    /// Look an OID up.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|d| d.oid() == *o)
    }
    /// Hash `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }
    /// AlgorithmIdentifier with absent parameters (RFC 5754 says SHOULD be absent).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

/// Signature algorithms: the digest and the key type together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-1: legacy peers only.
    RsaPkcs1Sha1,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsaPkcs1Sha512,
    /// ECDSA P-256 with SHA-256.
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    /// The signature algorithm OID (as in a certificate's signatureAlgorithm).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::RsaPkcs1Sha1 => oid::SHA1_WITH_RSA,
            Self::RsaPkcs1Sha256 => oid::SHA256_WITH_RSA,
            Self::RsaPkcs1Sha512 => oid::SHA512_WITH_RSA,
            Self::EcdsaP256Sha256 => oid::ECDSA_WITH_SHA256,
        }
    }
    /// The digest it uses.
    pub fn digest(self) -> DigestAlgorithm {
        match self {
            Self::RsaPkcs1Sha1 => DigestAlgorithm::Sha1,
            Self::RsaPkcs1Sha256 | Self::EcdsaP256Sha256 => DigestAlgorithm::Sha256,
            Self::RsaPkcs1Sha512 => DigestAlgorithm::Sha512,
        }
    }
    /// AlgorithmIdentifier as emitted: NULL parameters for RSA (RFC 4055), absent for ECDSA (RFC 5758).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            Self::EcdsaP256Sha256 => None,
            _ => Some(der::asn1::Any::from(AnyRef::NULL)),
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }
    /// Resolve a signature algorithm from an AlgorithmIdentifier OID. CMS
    /// signers often put `rsaEncryption` there and the digest elsewhere, so
    /// the digest of the SignerInfo is taken into account for that case.
    pub fn from_oids(sig: &ObjectIdentifier, digest: Option<DigestAlgorithm>) -> Option<Self> {
        match *sig {
            oid::SHA1_WITH_RSA => Some(Self::RsaPkcs1Sha1),
            oid::SHA256_WITH_RSA => Some(Self::RsaPkcs1Sha256),
            oid::SHA512_WITH_RSA => Some(Self::RsaPkcs1Sha512),
            oid::ECDSA_WITH_SHA256 => Some(Self::EcdsaP256Sha256),
            oid::RSA_ENCRYPTION => match digest? {
                DigestAlgorithm::Sha1 => Some(Self::RsaPkcs1Sha1),
                DigestAlgorithm::Sha256 => Some(Self::RsaPkcs1Sha256),
                DigestAlgorithm::Sha512 => Some(Self::RsaPkcs1Sha512),
            },
            _ => None,
        }
    }
    /// The RSA signature algorithm for a digest.
    pub fn rsa_with(d: DigestAlgorithm) -> Self {
        match d {
            DigestAlgorithm::Sha1 => Self::RsaPkcs1Sha1,
            DigestAlgorithm::Sha256 => Self::RsaPkcs1Sha256,
            DigestAlgorithm::Sha512 => Self::RsaPkcs1Sha512,
        }
    }
}

/// What kind of key a [`Signer`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(usize),
    /// ECDSA on P-256.
    EcP256,
}

/// Key types that can be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ECDSA P-256.
    EcP256,
}

/// A private key that signs. Implemented by software keys and by tokens.
pub trait Signer: Send + Sync {
    /// The public key, as it goes into a CSR or certificate.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// Kind and size of the key.
    fn kind(&self) -> KeyKind;
    /// Sign `message` (the signer hashes it). Returns the signature value
    /// (PKCS#1 v1.5 block for RSA, DER ECDSA-Sig-Value for ECDSA).
    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// Whether [`Signer::sign`] supports `alg`.
    fn supports(&self, alg: SignatureAlgorithm) -> bool;
}

/// A private RSA key that decrypts PKCS#1 v1.5 key transport blocks.
///
/// Implementations must take the same time whether or not the padding is
/// valid; the caller applies implicit rejection on top, so the error value
/// does not reach the network either.
pub trait Decryptor: Send + Sync {
    /// The public key matching the private key.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// RSAES-PKCS1-v1_5 decryption.
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
}

/// A key pair that both signs and decrypts, wherever the private half
/// lives (process memory, a PKCS#11 token): what a SCEP requester needs,
/// since its messages are signed with the key the reply is encrypted to.
///
/// Implemented for every type that is both a [`Signer`] and a
/// [`Decryptor`]; a key that cannot decrypt (EC) says so at decryption.
pub trait PrivateKey: Signer + Decryptor {
    /// The public key (one name for what both halves return).
    fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        Signer::public_key(self)
    }
    /// This key as a [`Signer`].
    fn as_signer(&self) -> &dyn Signer;
    /// This key as a [`Decryptor`].
    fn as_decryptor(&self) -> &dyn Decryptor;
}

impl<T: Signer + Decryptor> PrivateKey for T {
    fn as_signer(&self) -> &dyn Signer {
        self
    }
    fn as_decryptor(&self) -> &dyn Decryptor {
        self
    }
}

enum Inner {
    Rsa {
        sign: RsaKeyPair,
        decrypt: Pkcs1PrivateDecryptingKey,
        bits: usize,
    },
    P256(EcdsaKeyPair),
}

/// A private key held in process memory (RSA or ECDSA P-256).
///
/// The PKCS#8 encoding is kept in a zeroizing buffer so it can be written
/// out; the library's own key structures are freed (and cleared) by aws-lc.
pub struct SoftwareKey {
    inner: Inner,
    pkcs8: Zeroizing<Vec<u8>>,
    spki: SubjectPublicKeyInfoOwned,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareKey({:?})", self.kind())
    }
}

impl SoftwareKey {
    /// Generate a new key.
    pub fn generate(spec: KeySpec) -> Result<Self, KeyError> {
        let pkcs8 = match spec {
            KeySpec::EcP256 => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| KeyError::Operation("EC key generation"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            rsa => {
                let size = match rsa {
                    KeySpec::Rsa3072 => KeySize::Rsa3072,
                    KeySpec::Rsa4096 => KeySize::Rsa4096,
                    _ => KeySize::Rsa2048,
                };
                let k = PrivateDecryptingKey::generate(size).map_err(|_| KeyError::Operation("RSA key generation"))?;
                let der = k.as_der().map_err(|_| KeyError::Operation("RSA key export"))?;
                Zeroizing::new(der.as_ref().to_vec())
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Load a PKCS#8 PrivateKeyInfo (DER).
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der_bytes)
            .map_err(|_| KeyError::InvalidKey("not a PKCS#8 PrivateKeyInfo"))?;
        let alg = info.algorithm.oid;
        let pkcs8 = Zeroizing::new(der_bytes.to_vec());
        if alg == oid::RSA_ENCRYPTION {
            let sign = RsaKeyPair::from_pkcs8(der_bytes).map_err(|_| KeyError::InvalidKey("RSA key rejected"))?;
            let dk =
                PrivateDecryptingKey::from_pkcs8(der_bytes).map_err(|_| KeyError::InvalidKey("RSA key rejected"))?;
            let bits = dk.key_size_bits();
            let decrypt = Pkcs1PrivateDecryptingKey::new(dk).map_err(|_| KeyError::InvalidKey("RSA key rejected"))?;
            let spki_der = sign
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Operation("public key export"))?;
            let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_ref())?;
            Ok(Self {
                inner: Inner::Rsa { sign, decrypt, bits },
                pkcs8,
                spki,
            })
        } else if alg == oid::EC_PUBLIC_KEY {
            let kp = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der_bytes)
                .map_err(|_| KeyError::InvalidKey("only P-256 EC keys are supported"))?;
            let spki_der = kp
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Operation("public key export"))?;
            let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_ref())?;
            Ok(Self {
                inner: Inner::P256(kp),
                pkcs8,
                spki,
            })
        } else {
            Err(KeyError::UnsupportedKey(alg.to_string()))
        }
    }

    /// Load a PEM private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
    /// (PKCS#1, as micromdm and OpenSSL 1.x write) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der_bytes) =
            der::pem::decode_vec(pem.trim().as_bytes()).map_err(|_| KeyError::InvalidKey("not PEM"))?;
        let der_bytes = Zeroizing::new(der_bytes);
        Self::from_der_labelled(label, &der_bytes)
    }

    /// Load a DER private key in PKCS#8, PKCS#1 (RSA) or SEC1 (EC) form.
    pub fn from_der_any(der_bytes: &[u8]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der(der_bytes)
            .or_else(|_| Self::from_der_labelled("RSA PRIVATE KEY", der_bytes))
            .or_else(|_| Self::from_der_labelled("EC PRIVATE KEY", der_bytes))
    }

    fn from_der_labelled(label: &str, der_bytes: &[u8]) -> Result<Self, KeyError> {
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(der_bytes),
            "RSA PRIVATE KEY" => {
                let alg = AlgorithmIdentifierOwned {
                    oid: oid::RSA_ENCRYPTION,
                    parameters: Some(AnyRef::NULL.into()),
                };
                Self::wrap_pkcs8(alg, der_bytes)
            }
            "EC PRIVATE KEY" => {
                let kp = EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der_bytes)
                    .map_err(|_| KeyError::InvalidKey("only P-256 EC keys are supported"))?;
                let doc = kp.to_pkcs8v1().map_err(|_| KeyError::Operation("EC key export"))?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            _ => Err(KeyError::InvalidKey("unknown PEM label for a private key")),
        }
    }

    fn wrap_pkcs8(alg: AlgorithmIdentifierOwned, private: &[u8]) -> Result<Self, KeyError> {
        let alg_der = Zeroizing::new(alg.to_der()?);
        let alg_ref = spki::AlgorithmIdentifierRef::from_der(&alg_der)?;
        let info = pkcs8::PrivateKeyInfo::new(alg_ref, private);
        let der_bytes = Zeroizing::new(info.to_der()?);
        Self::from_pkcs8_der(&der_bytes)
    }

    /// The key as PKCS#8 DER (secret: zeroized on drop).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The key as a PKCS#8 PEM document (secret: zeroized on drop).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &self.pkcs8)
            .map(Zeroizing::new)
            .map_err(|e| KeyError::Encoding(e.to_string()))
    }
}

impl Signer for SoftwareKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn kind(&self) -> KeyKind {
        match &self.inner {
            Inner::Rsa { bits, .. } => KeyKind::Rsa(*bits),
            Inner::P256(_) => KeyKind::EcP256,
        }
    }
    fn supports(&self, alg: SignatureAlgorithm) -> bool {
        matches!(
            (&self.inner, alg),
            (
                Inner::Rsa { .. },
                SignatureAlgorithm::RsaPkcs1Sha1
                    | SignatureAlgorithm::RsaPkcs1Sha256
                    | SignatureAlgorithm::RsaPkcs1Sha512
            ) | (Inner::P256(_), SignatureAlgorithm::EcdsaP256Sha256)
        )
    }
    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match (&self.inner, alg) {
            (Inner::Rsa { .. }, SignatureAlgorithm::RsaPkcs1Sha1) => legacy::rsa_sha1_sign(&self.pkcs8, message),
            (Inner::Rsa { sign, .. }, SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha512) => {
                let enc: &'static dyn signature::RsaEncoding = if alg == SignatureAlgorithm::RsaPkcs1Sha256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA512
                };
                let mut out = vec![0u8; sign.public_modulus_len()];
                sign.sign(enc, &rng, message, &mut out)
                    .map_err(|_| KeyError::Operation("RSA signature"))?;
                Ok(out)
            }
            (Inner::P256(kp), SignatureAlgorithm::EcdsaP256Sha256) => {
                let sig = kp
                    .sign(&rng, message)
                    .map_err(|_| KeyError::Operation("ECDSA signature"))?;
                Ok(sig.as_ref().to_vec())
            }
            _ => Err(KeyError::UnsupportedAlgorithm(alg)),
        }
    }
}

impl Decryptor for SoftwareKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match &self.inner {
            Inner::Rsa { decrypt, .. } => {
                if ciphertext.len() != decrypt.key_size_bytes() {
                    return Err(KeyError::DecryptionFailed);
                }
                let mut buf = Zeroizing::new(vec![0u8; decrypt.min_output_size()]);
                let len = decrypt
                    .decrypt(ciphertext, &mut buf)
                    .map(|p| p.len())
                    .map_err(|_| KeyError::DecryptionFailed)?;
                buf.truncate(len);
                Ok(buf)
            }
            Inner::P256(_) => Err(KeyError::UnsupportedKey("EC keys cannot decrypt key transport".into())),
        }
    }
}

/// Describe a public key: kind and size, or an error for unsupported keys.
pub fn public_key_kind(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<KeyKind, KeyError> {
    if spki.algorithm.oid == oid::RSA_ENCRYPTION {
        let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki.to_der()?)
            .map_err(|_| KeyError::InvalidKey("RSA public key rejected"))?;
        Ok(KeyKind::Rsa(pk.key_size_bits()))
    } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        let curve: Option<ObjectIdentifier> = spki.algorithm.parameters.and_then(|p| p.decode_as().ok());
        if curve == Some(oid::SECP256R1) {
            Ok(KeyKind::EcP256)
        } else {
            Err(KeyError::UnsupportedKey("EC curve other than P-256".into()))
        }
    } else {
        Err(KeyError::UnsupportedKey(spki.algorithm.oid.to_string()))
    }
}

/// Verify `signature` over `message` with the public key in `spki`.
pub fn verify(
    spki: &SubjectPublicKeyInfoRef<'_>,
    alg: SignatureAlgorithm,
    message: &[u8],
    sig: &[u8],
) -> Result<(), KeyError> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or(KeyError::InvalidKey("unaligned key bits"))?;
    let is_rsa = spki.algorithm.oid == oid::RSA_ENCRYPTION;
    let params: &'static dyn signature::VerificationAlgorithm = match (alg, is_rsa) {
        (SignatureAlgorithm::RsaPkcs1Sha1, true) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (SignatureAlgorithm::RsaPkcs1Sha256, true) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        (SignatureAlgorithm::RsaPkcs1Sha512, true) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        (SignatureAlgorithm::EcdsaP256Sha256, false) if spki.algorithm.oid == oid::EC_PUBLIC_KEY => {
            &signature::ECDSA_P256_SHA256_ASN1
        }
        _ => return Err(KeyError::UnsupportedAlgorithm(alg)),
    };
    signature::UnparsedPublicKey::new(params, key)
        .verify(message, sig)
        .map_err(|_| KeyError::BadSignature)
}

/// Signature algorithms of X.509 certificates and CRLs that
/// [`verify_certificate_signature`] knows, beyond what [`SignatureAlgorithm`]
/// signs with: the chain validator checks certificates made by CAs we did
/// not write (RSA PKCS#1 v1.5 with SHA-1/256/384/512, ECDSA on P-256 and
/// P-384 with SHA-256/384).
pub mod x509_oid {
    use const_oid::ObjectIdentifier;
    /// sha384WithRSAEncryption (RFC 4055).
    pub const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// ecdsa-with-SHA384 (RFC 5758).
    pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// secp384r1 (RFC 5480).
    pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
}

/// Verify a certificate's (or CRL's) `sig` over `message` (the DER of its
/// to-be-signed part) with the issuer's public key `spki`, by the
/// signatureAlgorithm OID `sig_oid` (RFC 5280 §4.1.1.2). Unlike [`verify`],
/// this knows the algorithms other CAs sign with (see [`x509_oid`]); RSA
/// keys from 1024 bits are accepted with SHA-1/256/512 (as [`verify`] does)
/// and from 2048 bits with SHA-384 (all aws-lc offers); whether SHA-1 is
/// acceptable at all is the caller's decision.
pub fn verify_certificate_signature(
    spki: &SubjectPublicKeyInfoRef<'_>,
    sig_oid: &ObjectIdentifier,
    message: &[u8],
    sig: &[u8],
) -> Result<(), KeyError> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or(KeyError::InvalidKey("unaligned key bits"))?;
    let curve: Option<ObjectIdentifier> = spki.algorithm.parameters.and_then(|p| p.decode_as().ok());
    let is_rsa = spki.algorithm.oid == oid::RSA_ENCRYPTION;
    let is_ec = spki.algorithm.oid == oid::EC_PUBLIC_KEY;
    let p256 = is_ec && curve == Some(oid::SECP256R1);
    let p384 = is_ec && curve == Some(x509_oid::SECP384R1);
    let params: &'static dyn signature::VerificationAlgorithm = match *sig_oid {
        oid::SHA1_WITH_RSA if is_rsa => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        oid::SHA256_WITH_RSA if is_rsa => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        x509_oid::SHA384_WITH_RSA if is_rsa => &signature::RSA_PKCS1_2048_8192_SHA384,
        oid::SHA512_WITH_RSA if is_rsa => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        oid::ECDSA_WITH_SHA256 if p256 => &signature::ECDSA_P256_SHA256_ASN1,
        oid::ECDSA_WITH_SHA256 if p384 => &signature::ECDSA_P384_SHA256_ASN1,
        x509_oid::ECDSA_WITH_SHA384 if p256 => &signature::ECDSA_P256_SHA384_ASN1,
        x509_oid::ECDSA_WITH_SHA384 if p384 => &signature::ECDSA_P384_SHA384_ASN1,
        _ => {
            return Err(KeyError::UnsupportedKey(format!(
                "signature algorithm {sig_oid} with a {} key",
                spki.algorithm.oid
            )))
        }
    };
    signature::UnparsedPublicKey::new(params, key)
        .verify(message, sig)
        .map_err(|_| KeyError::BadSignature)
}

/// RSAES-PKCS1-v1_5 encryption to the RSA public key in `spki` (CMS key transport).
pub fn rsa_encrypt_pkcs1v15(spki: &SubjectPublicKeyInfoRef<'_>, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    if spki.algorithm.oid != oid::RSA_ENCRYPTION {
        return Err(KeyError::UnsupportedKey(spki.algorithm.oid.to_string()));
    }
    let pk = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&spki.to_der()?)
        .map_err(|_| KeyError::InvalidKey("RSA public key rejected"))?;
    let enc = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(pk)
        .map_err(|_| KeyError::InvalidKey("RSA public key rejected"))?;
    let mut out = vec![0u8; enc.ciphertext_size()];
    let len = enc
        .encrypt(plaintext, &mut out)
        .map(|c| c.len())
        .map_err(|_| KeyError::Operation("RSA encryption"))?;
    out.truncate(len);
    Ok(out)
}

/// SHA-1 RSA signatures for servers that offer nothing better (draft-era
/// SCEP servers). aws-lc-rs verifies SHA-1 but seals its signing encodings,
/// so this one call goes to aws-lc directly.
#[allow(unsafe_code)]
mod legacy {
    use super::KeyError;
    use aws_lc_sys::{
        CBS_init, EVP_PKEY_free, EVP_PKEY_get1_RSA, EVP_parse_private_key, NID_sha1, RSA_free, RSA_sign, RSA_size, CBS,
    };
    use std::mem::MaybeUninit;

    /// RSASSA-PKCS1-v1_5 with SHA-1 over `message`, with the PKCS#8 RSA key `pkcs8`.
    pub(super) fn rsa_sha1_sign(pkcs8: &[u8], message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let digest = super::DigestAlgorithm::Sha1.digest(message);
        // SAFETY: CBS_init only records the pointer and length of `pkcs8`, which outlives
        // `cbs`; EVP_parse_private_key reads within those bounds and returns an owned key
        // or null. EVP_PKEY_get1_RSA returns a new reference (or null) that we free after
        // use, as we free the EVP_PKEY. RSA_sign writes at most RSA_size(rsa) bytes into
        // `out`, which is allocated with exactly that size, and reports the length written.
        unsafe {
            let mut cbs = MaybeUninit::<CBS>::uninit();
            CBS_init(cbs.as_mut_ptr(), pkcs8.as_ptr(), pkcs8.len());
            let pkey = EVP_parse_private_key(cbs.as_mut_ptr());
            if pkey.is_null() {
                return Err(KeyError::InvalidKey("RSA key rejected"));
            }
            let rsa = EVP_PKEY_get1_RSA(pkey);
            EVP_PKEY_free(pkey);
            if rsa.is_null() {
                return Err(KeyError::InvalidKey("not an RSA key"));
            }
            let mut out = vec![0u8; RSA_size(rsa) as usize];
            let mut out_len: std::os::raw::c_uint = 0;
            let ok = RSA_sign(
                NID_sha1,
                digest.as_ptr(),
                digest.len(),
                out.as_mut_ptr(),
                &mut out_len,
                rsa,
            );
            RSA_free(rsa);
            if ok != 1 || out_len as usize > out.len() {
                return Err(KeyError::Operation("RSA SHA-1 signature"));
            }
            out.truncate(out_len as usize);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_sign_verify_and_decrypt_round_trip() {
        let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        assert_eq!(k.kind(), KeyKind::Rsa(2048));
        let spki_der = Signer::public_key(&k).to_der().unwrap();
        let spki = SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap();
        let sig = k.sign(SignatureAlgorithm::RsaPkcs1Sha256, b"hello").unwrap();
        verify(&spki, SignatureAlgorithm::RsaPkcs1Sha256, b"hello", &sig).unwrap();
        assert_eq!(
            verify(&spki, SignatureAlgorithm::RsaPkcs1Sha256, b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        let sig1 = k.sign(SignatureAlgorithm::RsaPkcs1Sha1, b"hello").unwrap();
        assert_eq!(sig1.len(), 256);
        verify(&spki, SignatureAlgorithm::RsaPkcs1Sha1, b"hello", &sig1).unwrap();
        assert_eq!(
            verify(&spki, SignatureAlgorithm::RsaPkcs1Sha1, b"hellO", &sig1),
            Err(KeyError::BadSignature)
        );
        let ct = rsa_encrypt_pkcs1v15(&spki, b"0123456789abcdef").unwrap();
        assert_eq!(&k.decrypt_pkcs1v15(&ct).unwrap()[..], b"0123456789abcdef");
        let mut bad = ct.clone();
        bad[10] ^= 1;
        assert!(k
            .decrypt_pkcs1v15(&bad)
            .map(|p| p.to_vec() != b"0123456789abcdef")
            .unwrap_or(true));
        assert_eq!(k.decrypt_pkcs1v15(&ct[1..]), Err(KeyError::DecryptionFailed));
    }

    #[test]
    fn p256_sign_verify_and_pem_round_trip() {
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let pem = k.to_pkcs8_pem().unwrap();
        let k2 = SoftwareKey::from_pem(&pem).unwrap();
        let spki_der = Signer::public_key(&k2).to_der().unwrap();
        let spki = SubjectPublicKeyInfoRef::from_der(&spki_der).unwrap();
        assert_eq!(public_key_kind(&spki).unwrap(), KeyKind::EcP256);
        let sig = k.sign(SignatureAlgorithm::EcdsaP256Sha256, b"m").unwrap();
        verify(&spki, SignatureAlgorithm::EcdsaP256Sha256, b"m", &sig).unwrap();
        assert!(verify(&spki, SignatureAlgorithm::RsaPkcs1Sha256, b"m", &sig).is_err());
    }

    #[test]
    fn garbage_keys_are_errors() {
        assert!(SoftwareKey::from_pem("nonsense").is_err());
        assert!(SoftwareKey::from_der_any(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }
}
