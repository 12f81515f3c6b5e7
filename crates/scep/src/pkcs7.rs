//! The CMS layers SCEP uses: SignedData with authenticated attributes,
//! EnvelopedData with RSA key transport. Built strictly as DER; opened
//! after BER normalisation.

use crate::asn1::{
    Elements, EncryptedContentInfo, EnvelopedData, IssuerSerial, KeyId, KeyTransRecipientInfo, Known, RawCertificate,
    SignedAttrs, SignedData, SignerInfo,
};
use crate::error::{Result, ScepError};
use crate::types::{oid, ContentEncryption};
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::EncapsulatedContentInfo;
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Tag, Tagged};
use enrolkit_keys::{oid as koid, Decryptor, DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer};
use enrolkit_pkix::ber;
use rand_core::{CryptoRng, RngCore};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_cert::attr::Attribute;
use x509_cert::certificate::{CertificateInner, Profile};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Decode a ContentInfo of type `expected` holding a `T`: as DER directly
/// (the common case, no copy), else after BER normalisation.
pub(crate) fn decode_cms<T: for<'a> der::Decode<'a>>(
    input: &[u8],
    expected: ObjectIdentifier,
    name: &'static str,
    limit: usize,
) -> Result<T> {
    if input.len() > limit {
        return Err(ScepError::TooLarge {
            what: "message",
            limit,
            actual: input.len(),
        });
    }
    fn typed<T: for<'a> der::Decode<'a>>(
        der_bytes: &[u8],
        expected: ObjectIdentifier,
        name: &'static str,
    ) -> Result<T> {
        let ci = ContentInfo::from_der(der_bytes)?;
        if ci.content_type != expected {
            return Err(ScepError::UnexpectedContentType {
                expected: name,
                found: ci.content_type.to_string(),
            });
        }
        Ok(T::from_der(&ci.content.to_der()?)?)
    }
    match typed(input, expected, name) {
        Ok(t) => Ok(t),
        Err(e @ ScepError::UnexpectedContentType { .. }) => Err(e),
        Err(_) => typed(
            &ber::normalize(input, &ber::Limits::DEFAULT.with_max_len(limit))?,
            expected,
            name,
        ),
    }
}

fn content_info<T: der::Tagged + der::EncodeValue>(content_type: ObjectIdentifier, value: &T) -> Result<Vec<u8>> {
    Ok(ContentInfo {
        content_type,
        content: Any::encode_from(value)?,
    }
    .to_der()?)
}

/// The IssuerAndSerialNumber of a certificate.
pub fn issuer_and_serial(cert: &Certificate) -> IssuerAndSerialNumber {
    IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    }
}

fn spki_der<P: Profile>(cert: &CertificateInner<P>) -> Result<Vec<u8>> {
    Ok(cert.tbs_certificate.subject_public_key_info.to_der()?)
}

/// Subject of a certificate as a string for errors and logs.
pub fn subject_string<P: Profile>(cert: &CertificateInner<P>) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// A certificate from a message under RFC 5280's rules (serial number at
/// most 20 octets), for callers that need one: fails on certificates only
/// the permissive profile accepts.
pub fn to_rfc5280(cert: &RawCertificate) -> Result<Certificate> {
    Certificate::from_der(&cert.to_der()?).map_err(|e| ScepError::malformed("certificate", e))
}

/// Any certificate under the permissive profile messages use (e.g. to
/// fill [`crate::ReplyTo::requester_certificate`] from a certificate at hand).
pub fn to_raw<P: Profile>(cert: &CertificateInner<P>) -> Result<RawCertificate> {
    Ok(RawCertificate::from_der(&cert.to_der()?)?)
}

/// Whether two certificates, whatever their profiles, are the same (same DER).
pub fn same_certificate<P: Profile, Q: Profile>(a: &CertificateInner<P>, b: &CertificateInner<Q>) -> bool {
    matches!((a.to_der(), b.to_der()), (Ok(x), Ok(y)) if x == y)
}

// ---------------------------------------------------------------- SignedData

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

/// Whether `id` names `cert`.
fn identifies<P: Profile>(id: &KeyId, cert: &CertificateInner<P>) -> bool {
    match id {
        KeyId::IssuerAndSerialNumber(ias) => IssuerSerial::of(cert).is_ok_and(|ours| ours == *ias),
        KeyId::SubjectKeyIdentifier(ski) => subject_key_id(cert).as_deref() == Some(ski.as_bytes()),
    }
}

fn find_signer_cert<'a>(sid: &KeyId, certs: &'a [RawCertificate]) -> Result<&'a RawCertificate> {
    certs
        .iter()
        .find(|c| identifies(sid, c))
        .ok_or(ScepError::SignerCertificateMissing)
}

fn subject_key_id<P: Profile>(c: &CertificateInner<P>) -> Option<Vec<u8>> {
    use x509_cert::ext::pkix::SubjectKeyIdentifier;
    let exts = c.tbs_certificate.extensions.as_ref()?;
    let e = exts
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)?;
    SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
        .ok()
        .map(|s| s.0.as_bytes().to_vec())
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

// ------------------------------------------------------------- EnvelopedData

/// Key for implicit rejection of bad RSA key transports.
///
/// When the RSA decryption of the content-encryption key fails (bad padding,
/// wrong length) we go on with a key derived from this secret and the
/// ciphertext, exactly as if decryption had succeeded. The content
/// decryption then fails the same way as with a wrong key, so the error does
/// not tell an attacker whether the padding was valid, and the selection
/// between real and synthetic key is constant time (Bleichenbacher/Marvin;
/// RFC 5246 §7.4.7.1 uses the same idea). What remains is the key
/// operation's own timing: aws-lc checks PKCS#1 v1.5 padding in constant
/// time but takes its error path on bad padding; implicit rejection inside
/// the key operation (raw RSA plus constant-time unpadding) would close that.
pub struct RejectionKey(Zeroizing<[u8; 32]>);

impl RejectionKey {
    /// From 32 secret random bytes (keep one per responder process).
    pub fn new(secret: [u8; 32]) -> Self {
        RejectionKey(Zeroizing::new(secret))
    }
    /// A fresh random key.
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        RejectionKey(Zeroizing::new(k))
    }
    fn synthetic(&self, encrypted_key: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0[..]);
        let tag = aws_lc_rs::hmac::sign(&key, encrypted_key);
        Zeroizing::new(tag.as_ref().iter().copied().cycle().take(len).collect())
    }
}

impl std::fmt::Debug for RejectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RejectionKey(..)")
    }
}

fn cbc_encrypt<C: BlockEncryptMut + KeyIvInit>(key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    let c =
        C::new_from_slices(key, iv).map_err(|_| ScepError::Key(enrolkit_keys::KeyError::Operation("cipher setup")))?;
    Ok(c.encrypt_padded_vec_mut::<Pkcs7>(pt))
}

fn cbc_decrypt<C: BlockDecryptMut + KeyIvInit>(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let c = C::new_from_slices(key, iv).map_err(|_| ScepError::DecryptionFailed)?;
    c.decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map(Zeroizing::new)
        .map_err(|_| ScepError::DecryptionFailed)
}

fn encrypt_content(cipher: ContentEncryption, key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    match cipher {
        ContentEncryption::Aes128Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes128>>(key, iv, pt),
        ContentEncryption::Aes192Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes192>>(key, iv, pt),
        ContentEncryption::Aes256Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes256>>(key, iv, pt),
        ContentEncryption::DesEde3Cbc => cbc_encrypt::<cbc::Encryptor<des::TdesEde3>>(key, iv, pt),
        ContentEncryption::DesCbc => cbc_encrypt::<cbc::Encryptor<des::Des>>(key, iv, pt),
    }
}

fn decrypt_content(cipher: ContentEncryption, key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    match cipher {
        ContentEncryption::Aes128Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes128>>(key, iv, ct),
        ContentEncryption::Aes192Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes192>>(key, iv, ct),
        ContentEncryption::Aes256Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes256>>(key, iv, ct),
        ContentEncryption::DesEde3Cbc => cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(key, iv, ct),
        ContentEncryption::DesCbc => cbc_decrypt::<cbc::Decryptor<des::Des>>(key, iv, ct),
    }
}

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

/// Decrypt an EnvelopedData addressed to `recipient` with `key`.
/// Returns the plaintext and the cipher the sender chose.
pub fn open_envelope<P: Profile>(
    input: &[u8],
    recipient: &CertificateInner<P>,
    key: &dyn Decryptor,
    rejection: &RejectionKey,
) -> Result<(Zeroizing<Vec<u8>>, ContentEncryption)> {
    let ed: EnvelopedData = decode_cms(input, oid::ENVELOPED_DATA, "envelopedData", crate::transport::MAX_REPLY)?;
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
