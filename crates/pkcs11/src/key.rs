//! Key pairs in a token: generation, lookup, the public key as a
//! SubjectPublicKeyInfo, and the Signer/Decryptor operations.

use crate::token::SlotSession;
use crate::uri::{ObjectType, Pkcs11Uri, MAX_ID_LEN, MAX_OBJECT_LABEL_LEN};
use crate::Pkcs11Error;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use der::asn1::{AnyRef, BitString, UintRef};
use der::{Decode, Encode, Sequence};
use enrolkit_keys::{oid, verify, Decryptor, DigestAlgorithm, KeyError, KeyKind, KeySpec, SignatureAlgorithm, Signer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// DER of the namedCurve OID prime256v1, as CKA_EC_PARAMS holds it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Largest RSA modulus accepted from a token, in bytes (8192 bits, as verification allows).
const MAX_MODULUS_LEN: usize = 1024;

/// DER DigestInfo prefixes (RFC 8017 §9.2, note 1): AlgorithmIdentifier with
/// NULL parameters, then the OCTET STRING header; the digest follows.
const DIGEST_INFO_SHA1: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const DIGEST_INFO_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40,
];

/// PKCS#1 RSAPublicKey.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// X9.62 / RFC 3279 Ecdsa-Sig-Value.
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// How a token key is protected, as the token reports it (PKCS#11 §4.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyProtection {
    /// CKA_SENSITIVE: the secret parts cannot be read out in the clear.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE: the key can be wrapped (exported encrypted).
    pub extractable: bool,
    /// CKA_ALWAYS_SENSITIVE: the key has been sensitive since it was made.
    pub always_sensitive: bool,
    /// CKA_NEVER_EXTRACTABLE: the key has never been extractable.
    pub never_extractable: bool,
}

impl KeyProtection {
    /// Whether the key was made inside the token and can never have left it
    /// (always sensitive, never extractable, and still neither).
    pub fn never_left_token(&self) -> bool {
        self.sensitive && !self.extractable && self.always_sensitive && self.never_extractable
    }
}

/// A key pair in a PKCS#11 token: signs (RSA PKCS#1 v1.5, ECDSA P-256) and,
/// for RSA, decrypts PKCS#1 v1.5 key transport, without the private key
/// leaving the token.
///
/// RSA signatures hash on the host and have the token apply CKM_RSA_PKCS to
/// the DigestInfo (so SHA-1, SHA-256 and SHA-512 work on any token with raw
/// PKCS#1 v1.5, and large messages never cross a slow smart-card link); a
/// token without it is asked for CKM_SHAx_RSA_PKCS instead. ECDSA hashes on
/// the host, signs with CKM_ECDSA and converts the token's r‖s to a DER
/// Ecdsa-Sig-Value. Every signature is checked against the public key before
/// it is returned, which catches a mismatched public key object at once.
pub struct Pkcs11Key {
    slot: Arc<SlotSession>,
    private: ObjectHandle,
    public: Option<ObjectHandle>,
    label: String,
    id: Vec<u8>,
    kind: KeyKind,
    spki: SubjectPublicKeyInfoOwned,
    modulus_len: usize,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.slot.label)
            .field("label", &self.label)
            .field("id", &hex(&self.id))
            .field("kind", &self.kind)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wanted(label: Option<&str>, id: Option<&[u8]>) -> String {
    match (label, id) {
        (Some(l), Some(i)) => format!("label {l:?} id {}", hex(i)),
        (Some(l), None) => format!("label {l:?}"),
        (None, Some(i)) => format!("id {}", hex(i)),
        (None, None) => "(any)".into(),
    }
}

/// Generate a key pair in the token (see [`crate::Token::generate`]).
pub(crate) fn generate(
    slot: &Arc<SlotSession>,
    spec: KeySpec,
    label: &str,
    id: &[u8],
    label_unique: bool,
) -> Result<Pkcs11Key, Pkcs11Error> {
    if label.is_empty() || label.len() > MAX_OBJECT_LABEL_LEN {
        return Err(Pkcs11Error::InvalidArgument {
            what: "key label",
            reason: "must be 1 to 256 bytes",
        });
    }
    if !label_unique && id.is_empty() {
        return Err(Pkcs11Error::InvalidArgument {
            what: "key id",
            reason: "must not be empty when the label is shared",
        });
    }
    if id.len() > MAX_ID_LEN {
        return Err(Pkcs11Error::InvalidArgument {
            what: "key id",
            reason: "must be at most 256 bytes",
        });
    }
    let (mechanism, mech_type, mech_name) = match spec {
        KeySpec::EcP256 => (
            Mechanism::EccKeyPairGen,
            MechanismType::ECC_KEY_PAIR_GEN,
            "CKM_EC_KEY_PAIR_GEN",
        ),
        _ => (
            Mechanism::RsaPkcsKeyPairGen,
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            "CKM_RSA_PKCS_KEY_PAIR_GEN",
        ),
    };
    if !slot.has(mech_type) {
        return Err(Pkcs11Error::MechanismUnsupported {
            token: slot.label.clone(),
            mechanism: mech_name,
        });
    }
    let label_attr = Attribute::Label(label.as_bytes().to_vec());
    let id_attr = Attribute::Id(id.to_vec());
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        label_attr.clone(),
        id_attr.clone(),
    ];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        label_attr,
        id_attr,
    ];
    match spec {
        KeySpec::EcP256 => public.push(Attribute::EcParams(P256_PARAMS.to_vec())),
        rsa => {
            let bits: u64 = match rsa {
                KeySpec::Rsa3072 => 3072,
                KeySpec::Rsa4096 => 4096,
                _ => 2048,
            };
            public.push(Attribute::ModulusBits(bits.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            public.push(Attribute::Encrypt(true));
            private.push(Attribute::Decrypt(true));
        }
    }
    let (pub_h, priv_h) = {
        let session = slot.lock()?;
        let clash = |template: Vec<Attribute>| -> Result<bool, Pkcs11Error> {
            Ok(!session
                .find_objects(&template)
                .map_err(Pkcs11Error::token("C_FindObjects"))?
                .is_empty())
        };
        let mut taken = None;
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if label_unique
                && clash(vec![
                    Attribute::Class(class),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])?
            {
                taken = Some(format!("label {label:?}"));
            } else if !id.is_empty() && clash(vec![Attribute::Class(class), Attribute::Id(id.to_vec())])? {
                taken = Some(format!("id {}", hex(id)));
            }
        }
        if let Some(wanted) = taken {
            return Err(Pkcs11Error::KeyExists {
                token: slot.label.clone(),
                wanted,
            });
        }
        session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid | RvError::MechanismParamInvalid, _) => {
                    Pkcs11Error::MechanismUnsupported {
                        token: slot.label.clone(),
                        mechanism: mech_name,
                    }
                }
                e => Pkcs11Error::Token {
                    operation: "C_GenerateKeyPair",
                    source: e,
                },
            })?
    };
    match Pkcs11Key::load(slot.clone(), priv_h, Some(pub_h)) {
        Ok(k) => Ok(k),
        Err(e) => {
            // Do not leave a pair behind that we could not use.
            if let Ok(session) = slot.lock() {
                let _ = session.destroy_object(priv_h);
                let _ = session.destroy_object(pub_h);
            }
            Err(e)
        }
    }
}

/// Find a key pair by label and/or id (see [`crate::Token::find`]).
pub(crate) fn find(slot: &Arc<SlotSession>, label: Option<&str>, id: Option<&[u8]>) -> Result<Pkcs11Key, Pkcs11Error> {
    if label.is_none() && id.is_none() {
        return Err(Pkcs11Error::NoObject);
    }
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(l) = label {
        template.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if let Some(i) = id {
        template.push(Attribute::Id(i.to_vec()));
    }
    let found = slot
        .lock()?
        .find_objects(&template)
        .map_err(Pkcs11Error::token("C_FindObjects"))?;
    match found.as_slice() {
        [one] => Pkcs11Key::load(slot.clone(), *one, None),
        [] => Err(Pkcs11Error::KeyNotFound {
            token: slot.label.clone(),
            wanted: wanted(label, id),
        }),
        many => Err(Pkcs11Error::AmbiguousKey {
            token: slot.label.clone(),
            wanted: wanted(label, id),
            count: many.len(),
        }),
    }
}

/// Get one variable-length attribute (None when absent or unreadable).
fn bytes_attr(attrs: &[Attribute], want: AttributeType) -> Option<Vec<u8>> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::Label(v), AttributeType::Label)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent)
        | (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint) => Some(v.clone()),
        _ => None,
    })
}

fn bool_attr(attrs: &[Attribute], want: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::Sensitive(b), AttributeType::Sensitive)
        | (Attribute::Extractable(b), AttributeType::Extractable)
        | (Attribute::AlwaysSensitive(b), AttributeType::AlwaysSensitive)
        | (Attribute::NeverExtractable(b), AttributeType::NeverExtractable) => Some(*b),
        _ => None,
    })
}

/// SubjectPublicKeyInfo for an RSA key from CKA_MODULUS and CKA_PUBLIC_EXPONENT.
fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<(SubjectPublicKeyInfoOwned, usize, usize), Pkcs11Error> {
    let modulus = UintRef::new(modulus)?;
    let exponent = UintRef::new(exponent)?;
    let m = modulus.as_bytes();
    let bits = match m.first() {
        Some(&top) if m.len() <= MAX_MODULUS_LEN => (m.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        _ => {
            return Err(Pkcs11Error::UnsupportedKey(
                "RSA modulus empty or over 8192 bits".into(),
            ))
        }
    };
    if bits < 1024 {
        return Err(Pkcs11Error::UnsupportedKey(format!("RSA key of {bits} bits")));
    }
    let key = RsaPublicKey {
        modulus,
        public_exponent: exponent,
    }
    .to_der()?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL.into()),
        },
        subject_public_key: BitString::from_bytes(&key)?,
    };
    Ok((spki, bits, m.len()))
}

/// SubjectPublicKeyInfo for a P-256 key from CKA_EC_POINT: a DER OCTET
/// STRING around the uncompressed point (as PKCS#11 says), or the bare
/// point (as some older tokens return).
fn ec_spki(params: &[u8], point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, Pkcs11Error> {
    if params != P256_PARAMS {
        return Err(Pkcs11Error::UnsupportedKey("EC curve other than P-256".into()));
    }
    let raw: Vec<u8> = if point.len() == 65 {
        point.to_vec()
    } else {
        der::asn1::OctetString::from_der(point)
            .map_err(|_| Pkcs11Error::UnsupportedKey("CKA_EC_POINT is not an OCTET STRING".into()))?
            .into_bytes()
    };
    if raw.len() != 65 || raw.first() != Some(&0x04) {
        return Err(Pkcs11Error::UnsupportedKey(
            "CKA_EC_POINT is not an uncompressed P-256 point".into(),
        ));
    }
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(der::asn1::Any::from(&oid::SECP256R1)),
        },
        subject_public_key: BitString::from_bytes(&raw)?,
    })
}

/// Map a token failure during signing or decryption to the trait's error.
fn op_error(e: &CkError, what: &'static str) -> KeyError {
    match e {
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) => KeyError::Operation("token session is not logged in"),
        CkError::Pkcs11(
            RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::DeviceError
            | RvError::SessionClosed
            | RvError::SessionHandleInvalid,
            _,
        ) => KeyError::Operation("token removed or its session lost"),
        CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => {
            KeyError::Operation("the token does not permit this use of the key")
        }
        CkError::Pkcs11(RvError::MechanismInvalid | RvError::KeyTypeInconsistent, _) => {
            KeyError::Operation("the token refused the mechanism for this key")
        }
        _ => KeyError::Operation(what),
    }
}

fn is_mechanism_refusal(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::MechanismInvalid | RvError::KeyFunctionNotPermitted | RvError::KeyTypeInconsistent,
            _
        )
    )
}

/// r‖s (as CKM_ECDSA returns it) to a DER Ecdsa-Sig-Value.
fn ecdsa_to_der(raw: &[u8]) -> Result<Vec<u8>, KeyError> {
    if raw.len() != 64 {
        return Err(KeyError::Operation(
            "token returned an ECDSA signature of the wrong length",
        ));
    }
    let (r, s) = raw.split_at(32);
    Ok(EcdsaSigValue {
        r: UintRef::new(r)?,
        s: UintRef::new(s)?,
    }
    .to_der()?)
}

impl Pkcs11Key {
    /// Open the token `uri` names and find the key pair its `object`/`id`
    /// attributes name: one call for `--key pkcs11:…` options.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        crate::Token::open(uri)?.find_uri(uri)
    }

    /// Read what the public key needs from the token and build the handle.
    fn load(slot: Arc<SlotSession>, private: ObjectHandle, public: Option<ObjectHandle>) -> Result<Self, Pkcs11Error> {
        let session = slot.lock()?;
        let get = |h: ObjectHandle, types: &[AttributeType]| {
            session
                .get_attributes(h, types)
                .map_err(Pkcs11Error::token("C_GetAttributeValue"))
        };
        let attrs = get(
            private,
            &[AttributeType::KeyType, AttributeType::Label, AttributeType::Id],
        )?;
        let key_type = attrs.iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(*t),
            _ => None,
        });
        let label = String::from_utf8_lossy(&bytes_attr(&attrs, AttributeType::Label).unwrap_or_default()).into_owned();
        let id = bytes_attr(&attrs, AttributeType::Id).unwrap_or_default();

        // The public key object, when not handed over: same class-pair convention (id, else label).
        let find_public = |key_type: KeyType| -> Result<Option<ObjectHandle>, Pkcs11Error> {
            if public.is_some() {
                return Ok(public);
            }
            let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::KeyType(key_type)];
            if id.is_empty() {
                template.push(Attribute::Label(label.as_bytes().to_vec()));
            } else {
                template.push(Attribute::Id(id.clone()));
            }
            let found = session
                .find_objects(&template)
                .map_err(Pkcs11Error::token("C_FindObjects"))?;
            Ok(match found.as_slice() {
                [one] => Some(*one),
                _ => None,
            })
        };

        let (spki, kind, modulus_len, public) = match key_type {
            Some(KeyType::RSA) => {
                // RSA private key objects carry the public parts (PKCS#11 §2.1.4).
                let mut a = get(private, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
                let public = find_public(KeyType::RSA)?;
                if bytes_attr(&a, AttributeType::Modulus).is_none() {
                    if let Some(p) = public {
                        a = get(p, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
                    }
                }
                let (m, e) = match (
                    bytes_attr(&a, AttributeType::Modulus),
                    bytes_attr(&a, AttributeType::PublicExponent),
                ) {
                    (Some(m), Some(e)) => (m, e),
                    _ => {
                        return Err(Pkcs11Error::UnsupportedKey(
                            "RSA key without a readable modulus and public exponent".into(),
                        ))
                    }
                };
                let (spki, bits, len) = rsa_spki(&m, &e)?;
                (spki, KeyKind::Rsa(bits), len, public)
            }
            Some(KeyType::EC) => {
                let public = find_public(KeyType::EC)?.ok_or_else(|| Pkcs11Error::KeyNotFound {
                    token: slot.label.clone(),
                    wanted: format!("public key for {}", wanted(Some(&label), Some(&id))),
                })?;
                let a = get(public, &[AttributeType::EcParams, AttributeType::EcPoint])?;
                let (params, point) = match (
                    bytes_attr(&a, AttributeType::EcParams),
                    bytes_attr(&a, AttributeType::EcPoint),
                ) {
                    (Some(p), Some(q)) => (p, q),
                    _ => {
                        return Err(Pkcs11Error::UnsupportedKey(
                            "EC public key without CKA_EC_PARAMS and CKA_EC_POINT".into(),
                        ))
                    }
                };
                (ec_spki(&params, &point)?, KeyKind::EcP256, 0, Some(public))
            }
            Some(other) => return Err(Pkcs11Error::UnsupportedKey(format!("key type {other}"))),
            None => return Err(Pkcs11Error::UnsupportedKey("private key without CKA_KEY_TYPE".into())),
        };
        drop(session);
        Ok(Pkcs11Key {
            slot,
            private,
            public,
            label,
            id,
            kind,
            spki,
            modulus_len,
        })
    }

    /// The key's label (CKA_LABEL).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key's id (CKA_ID).
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The label of the token the key is in.
    pub fn token_label(&self) -> &str {
        &self.slot.label
    }

    /// A URI that finds this key again (module, token label and serial,
    /// object label, id, `type=private`), without any PIN: add one with
    /// [`Pkcs11Uri::set_pin`] or [`Pkcs11Uri::set_pin_source`] to use it.
    pub fn uri(&self) -> Pkcs11Uri {
        let mut uri = Pkcs11Uri::default();
        uri.token = Some(self.slot.label.clone());
        uri.serial = Some(self.slot.serial.clone());
        uri.object = Some(self.label.clone());
        uri.id = Some(self.id.clone());
        uri.object_type = Some(ObjectType::Private);
        uri.module_path = Some(self.slot.module_path.clone());
        uri
    }

    /// How the token protects the private key: CKA_SENSITIVE,
    /// CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE as the
    /// token reports them. An attribute the token does not report counts as
    /// the unprotected value.
    pub fn attributes(&self) -> Result<KeyProtection, Pkcs11Error> {
        let a = self
            .slot
            .lock()?
            .get_attributes(
                self.private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(Pkcs11Error::token("C_GetAttributeValue"))?;
        Ok(KeyProtection {
            sensitive: bool_attr(&a, AttributeType::Sensitive).unwrap_or(false),
            extractable: bool_attr(&a, AttributeType::Extractable).unwrap_or(true),
            always_sensitive: bool_attr(&a, AttributeType::AlwaysSensitive).unwrap_or(false),
            never_extractable: bool_attr(&a, AttributeType::NeverExtractable).unwrap_or(false),
        })
    }

    /// Try to read the private key's secret parts out of the token
    /// (CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2 for RSA; CKA_VALUE for
    /// EC) and say whether any came back. Whatever is read is zeroized at
    /// once and never returned: this is a probe that proves the token keeps
    /// the key, for tests and for `enrol` to report.
    pub fn secret_readable(&self) -> Result<bool, Pkcs11Error> {
        let types: &[AttributeType] = match self.kind {
            KeyKind::Rsa(_) => &[
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Prime2,
            ],
            KeyKind::EcP256 => &[AttributeType::Value],
        };
        let attrs = self
            .slot
            .lock()?
            .get_attributes(self.private, types)
            .map_err(Pkcs11Error::token("C_GetAttributeValue"))?;
        let mut readable = false;
        for a in attrs {
            if let Attribute::PrivateExponent(mut v)
            | Attribute::Prime1(mut v)
            | Attribute::Prime2(mut v)
            | Attribute::Value(mut v) = a
            {
                readable |= !v.is_empty();
                v.zeroize();
            }
        }
        Ok(readable)
    }

    /// Delete the key pair (private and public key objects) from the token.
    pub fn destroy(self) -> Result<(), Pkcs11Error> {
        let session = self.slot.lock()?;
        session
            .destroy_object(self.private)
            .map_err(Pkcs11Error::token("C_DestroyObject"))?;
        if let Some(p) = self.public {
            session
                .destroy_object(p)
                .map_err(Pkcs11Error::token("C_DestroyObject"))?;
        }
        Ok(())
    }

    /// The RSA mechanisms `alg` can use on this token, preferred first.
    fn rsa_mechanisms(&self, alg: SignatureAlgorithm) -> Vec<(Mechanism<'static>, bool)> {
        let (combined, combined_type) = match alg.digest() {
            DigestAlgorithm::Sha1 => (Mechanism::Sha1RsaPkcs, MechanismType::SHA1_RSA_PKCS),
            DigestAlgorithm::Sha256 => (Mechanism::Sha256RsaPkcs, MechanismType::SHA256_RSA_PKCS),
            DigestAlgorithm::Sha512 => (Mechanism::Sha512RsaPkcs, MechanismType::SHA512_RSA_PKCS),
        };
        let mut out = Vec::new();
        if self.slot.has(MechanismType::RSA_PKCS) {
            out.push((Mechanism::RsaPkcs, true));
        }
        if self.slot.has(combined_type) {
            out.push((combined, false));
        }
        out
    }

    fn sign_raw(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let session = self
            .slot
            .lock()
            .map_err(|_| KeyError::Operation("token session unusable after an earlier failure"))?;
        match (self.kind, alg) {
            (
                KeyKind::Rsa(_),
                SignatureAlgorithm::RsaPkcs1Sha1
                | SignatureAlgorithm::RsaPkcs1Sha256
                | SignatureAlgorithm::RsaPkcs1Sha512,
            ) => {
                let digest = alg.digest();
                let prefix = match digest {
                    DigestAlgorithm::Sha1 => DIGEST_INFO_SHA1,
                    DigestAlgorithm::Sha256 => DIGEST_INFO_SHA256,
                    DigestAlgorithm::Sha512 => DIGEST_INFO_SHA512,
                };
                let mut last = Err(KeyError::UnsupportedAlgorithm(alg));
                for (mechanism, raw) in self.rsa_mechanisms(alg) {
                    let result = if raw {
                        let mut digest_info = prefix.to_vec();
                        digest_info.extend_from_slice(&digest.digest(message));
                        session.sign(&mechanism, self.private, &digest_info)
                    } else {
                        session.sign(&mechanism, self.private, message)
                    };
                    match result {
                        Ok(sig) if sig.len() == self.modulus_len => return Ok(sig),
                        Ok(_) => {
                            return Err(KeyError::Operation(
                                "token returned an RSA signature of the wrong length",
                            ))
                        }
                        // Some tokens forbid raw PKCS#1 for a key: try the hashing mechanism.
                        Err(e) if is_mechanism_refusal(&e) => last = Err(op_error(&e, "token RSA signature")),
                        Err(e) => return Err(op_error(&e, "token RSA signature")),
                    }
                }
                last
            }
            (KeyKind::EcP256, SignatureAlgorithm::EcdsaP256Sha256) => {
                if !self.slot.has(MechanismType::ECDSA) {
                    return Err(KeyError::UnsupportedAlgorithm(alg));
                }
                let hash = DigestAlgorithm::Sha256.digest(message);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.private, &hash)
                    .map_err(|e| op_error(&e, "token ECDSA signature"))?;
                ecdsa_to_der(&raw)
            }
            _ => Err(KeyError::UnsupportedAlgorithm(alg)),
        }
    }
}

impl Signer for Pkcs11Key {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn kind(&self) -> KeyKind {
        self.kind
    }
    fn supports(&self, alg: SignatureAlgorithm) -> bool {
        match (self.kind, alg) {
            (KeyKind::EcP256, SignatureAlgorithm::EcdsaP256Sha256) => self.slot.has(MechanismType::ECDSA),
            (
                KeyKind::Rsa(_),
                SignatureAlgorithm::RsaPkcs1Sha1
                | SignatureAlgorithm::RsaPkcs1Sha256
                | SignatureAlgorithm::RsaPkcs1Sha512,
            ) => !self.rsa_mechanisms(alg).is_empty(),
            _ => false,
        }
    }
    fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = self.sign_raw(alg, message)?;
        // A signature that does not verify (a faulty token, or a public key
        // object that is not this key's) must not go out.
        let spki_der = self.spki.to_der()?;
        let spki = SubjectPublicKeyInfoRef::from_der(&spki_der)?;
        verify(&spki, alg, message, &sig)
            .map_err(|_| KeyError::Operation("token signature does not verify with the key's public key"))?;
        Ok(sig)
    }
}

impl Decryptor for Pkcs11Key {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    /// CKM_RSA_PKCS decryption in the token. The padding check, and its
    /// timing, are the token's; every failure about the ciphertext is the
    /// same [`KeyError::DecryptionFailed`], and the caller applies implicit
    /// rejection on top.
    fn decrypt_pkcs1v15(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if !matches!(self.kind, KeyKind::Rsa(_)) {
            return Err(KeyError::UnsupportedKey("EC keys cannot decrypt key transport".into()));
        }
        if !self.slot.has(MechanismType::RSA_PKCS) {
            return Err(KeyError::Operation(
                "the token does not support CKM_RSA_PKCS decryption",
            ));
        }
        if ciphertext.len() != self.modulus_len {
            return Err(KeyError::DecryptionFailed);
        }
        let session = self
            .slot
            .lock()
            .map_err(|_| KeyError::Operation("token session unusable after an earlier failure"))?;
        match session.decrypt(&Mechanism::RsaPkcs, self.private, ciphertext) {
            Ok(plain) => Ok(Zeroizing::new(plain)),
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            )) => Err(KeyError::DecryptionFailed),
            Err(e) => Err(op_error(&e, "token RSA decryption")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use enrolkit_keys::SoftwareKey;

    #[test]
    fn digest_info_prefixes_match_der() {
        for (d, prefix) in [
            (DigestAlgorithm::Sha1, DIGEST_INFO_SHA1),
            (DigestAlgorithm::Sha256, DIGEST_INFO_SHA256),
            (DigestAlgorithm::Sha512, DIGEST_INFO_SHA512),
        ] {
            #[derive(Sequence)]
            struct DigestInfo {
                alg: AlgorithmIdentifierOwned,
                digest: der::asn1::OctetString,
            }
            let value = d.digest(b"x");
            let di = DigestInfo {
                alg: AlgorithmIdentifierOwned {
                    oid: d.oid(),
                    parameters: Some(AnyRef::NULL.into()),
                },
                digest: der::asn1::OctetString::new(value.clone()).unwrap(),
            }
            .to_der()
            .unwrap();
            let mut expected = prefix.to_vec();
            expected.extend_from_slice(&value);
            assert_eq!(di, expected, "{d:?}");
        }
    }

    #[test]
    fn spki_from_token_attributes_matches_software_keys() {
        // RSA: rebuild the SPKI from the modulus and exponent and compare.
        let k = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
        let der_spki = Signer::public_key(&k).to_der().unwrap();
        let spki = SubjectPublicKeyInfoRef::from_der(&der_spki).unwrap();
        #[derive(Sequence)]
        struct Owned {
            n: der::asn1::Uint,
            e: der::asn1::Uint,
        }
        let parts = Owned::from_der(spki.subject_public_key.raw_bytes()).unwrap();
        // Tokens may pad the modulus with a zero byte: that must not matter.
        let mut padded = vec![0u8];
        padded.extend_from_slice(parts.n.as_bytes());
        let (rebuilt, bits, len) = rsa_spki(&padded, parts.e.as_bytes()).unwrap();
        assert_eq!(rebuilt.to_der().unwrap(), der_spki);
        assert_eq!((bits, len), (2048, 256));

        // EC: both CKA_EC_POINT encodings give the software key's SPKI.
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let der_spki = Signer::public_key(&k).to_der().unwrap();
        let point = Signer::public_key(&k).subject_public_key.raw_bytes().to_vec();
        let wrapped = der::asn1::OctetString::new(point.clone()).unwrap().to_der().unwrap();
        assert_eq!(ec_spki(&P256_PARAMS, &wrapped).unwrap().to_der().unwrap(), der_spki);
        assert_eq!(ec_spki(&P256_PARAMS, &point).unwrap().to_der().unwrap(), der_spki);
        assert!(ec_spki(&P256_PARAMS, &point[..33]).is_err());
        let p384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
        assert!(ec_spki(&p384, &wrapped).is_err());
        assert!(rsa_spki(&[0x01; 64], &[1, 0, 1]).is_err(), "512-bit RSA refused");
    }

    #[test]
    fn ecdsa_raw_signature_to_der() {
        // High bit set: INTEGER needs a leading zero. Leading zeros: stripped.
        let mut raw = vec![0x80u8; 32];
        raw.extend_from_slice(&[0x00, 0x00, 0x7f]);
        raw.extend_from_slice(&[0x01; 29]);
        let der_sig = ecdsa_to_der(&raw).unwrap();
        assert_eq!(&der_sig[..5], &[0x30, 0x43, 0x02, 0x21, 0x00]);
        assert_eq!(&der_sig[37..40], &[0x02, 0x1e, 0x7f]);
        assert!(ecdsa_to_der(&raw[..63]).is_err());

        // A real P-256 signature, converted to r‖s and back, still verifies.
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let sig = k.sign(SignatureAlgorithm::EcdsaP256Sha256, b"m").unwrap();
        let parsed = EcdsaSigValue::from_der(&sig).unwrap();
        let mut rs = vec![0u8; 64];
        let (r, s) = (parsed.r.as_bytes(), parsed.s.as_bytes());
        rs[32 - r.len()..32].copy_from_slice(r);
        rs[64 - s.len()..].copy_from_slice(s);
        assert_eq!(ecdsa_to_der(&rs).unwrap(), sig);
    }
}
