//! CSR attributes (RFC 7030 §4.5.2, clarified and extended by RFC 9908).
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! ```
//!
//! A bare OID asks for something without a value (challengePassword: "put
//! the channel binding here", RFC 7030 §3.5; a signature algorithm: "sign
//! with this"). An attribute carries values: `extensionRequest` with the
//! Extensions to include (RFC 9908), `id-ecPublicKey` with the curve,
//! `rsaEncryption` with the modulus size (RFC 9908 examples), or an RFC 9908
//! `certificationRequestInfoTemplate` that describes the whole
//! request, with the values the client must fill in left out.

use crate::error::{EstError, Result};
use crate::oid;
use der::asn1::{Any, BitString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Length, Reader, Sequence, Tag, Tagged, ValueOrd, Writer};
use enrolkit_pkix::ber;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RelativeDistinguishedName};

/// Most AttrOrOID items accepted in one CSR attributes response.
pub const MAX_ITEMS: usize = 256;
/// Most values accepted in one attribute (and elements in any SET inside).
pub const MAX_VALUES: usize = 64;

/// Bounds of the BER pre-pass over CSR attributes and CSRs: [`MAX_VALUES`]
/// elements per SET (or IMPLICIT SET OF), nesting 32 deep, one body.
pub(crate) const BER_LIMITS: ber::Limits = ber::Limits::DEFAULT
    .with_max_len(crate::body::MAX_BODY)
    .with_max_depth(32)
    .with_max_elements(MAX_VALUES);

/// One element of a CSR attributes response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttrOrOid {
    /// A bare OID: include this (attribute, extension or algorithm).
    Oid(ObjectIdentifier),
    /// An attribute with values the request must carry or follow.
    Attribute(Attribute),
    /// A well-formed OID or attribute whose OID this library cannot hold:
    /// `const-oid` 0.9 limits the first two arcs to one encoded byte, so
    /// `2.999.1` (RFC 7030 appendix A.2's "example attributes that the
    /// client would ignore") does not fit. Kept verbatim, so the set
    /// re-encodes byte for byte, and ignored by every reader, as RFC 7030
    /// §4.5.2 asks of items a client does not understand.
    Unrecognised(Any),
}

/// Whether `content` is a well-formed OBJECT IDENTIFIER value (X.690
/// §8.19): base-128 subidentifiers, each minimally encoded, the last complete.
fn oid_syntax_ok(content: &[u8]) -> bool {
    let mut start = true;
    for &b in content {
        if start && b == 0x80 {
            return false;
        }
        start = b & 0x80 == 0;
    }
    !content.is_empty() && start
}

/// `SEQUENCE { OBJECT IDENTIFIER (well formed, not representable), SET }`.
fn attribute_with_foreign_type(any: &Any) -> bool {
    let Ok(mut r) = der::SliceReader::new(any.value()) else {
        return false;
    };
    let (Ok(ty), Ok(values)) = (Any::decode(&mut r), Any::decode(&mut r)) else {
        return false;
    };
    ty.tag() == Tag::ObjectIdentifier
        && oid_syntax_ok(ty.value())
        && ty.decode_as::<ObjectIdentifier>().is_err()
        && values.tag() == Tag::Set
        && r.is_finished()
}

impl<'a> Decode<'a> for AttrOrOid {
    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        let any = Any::decode(reader)?;
        match any.tag() {
            Tag::ObjectIdentifier => match any.decode_as::<ObjectIdentifier>() {
                Ok(o) => Ok(AttrOrOid::Oid(o)),
                Err(_) if oid_syntax_ok(any.value()) => Ok(AttrOrOid::Unrecognised(any)),
                Err(e) => Err(e),
            },
            Tag::Sequence => match any.decode_as::<Attribute>() {
                Ok(a) => Ok(AttrOrOid::Attribute(a)),
                Err(_) if attribute_with_foreign_type(&any) => Ok(AttrOrOid::Unrecognised(any)),
                Err(e) => Err(e),
            },
            t => Err(t.unexpected_error(None)),
        }
    }
}

impl Encode for AttrOrOid {
    fn encoded_len(&self) -> der::Result<Length> {
        match self {
            AttrOrOid::Oid(o) => o.encoded_len(),
            AttrOrOid::Attribute(a) => a.encoded_len(),
            AttrOrOid::Unrecognised(a) => a.encoded_len(),
        }
    }

    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        match self {
            AttrOrOid::Oid(o) => o.encode(writer),
            AttrOrOid::Attribute(a) => a.encode(writer),
            AttrOrOid::Unrecognised(a) => a.encode(writer),
        }
    }
}

/// The key a CSR attributes response asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRequirement {
    /// An EC key on this named curve.
    Ec {
        /// The curve OID (e.g. secp256r1).
        curve: ObjectIdentifier,
    },
    /// An RSA key, of this modulus size when given.
    Rsa {
        /// Modulus size in bits.
        bits: Option<u32>,
    },
}

/// RFC 9908 `SingleAttributeTemplate`: an RDN attribute whose value, when
/// absent, the client fills in.
#[derive(Clone, Debug, PartialEq, Eq, Sequence, ValueOrd)]
pub struct SingleAttributeTemplate {
    /// Attribute type (e.g. commonName).
    pub oid: ObjectIdentifier,
    /// The value the client must use, or `None` for "fill this in".
    #[asn1(optional = "true")]
    pub value: Option<Any>,
}

/// RFC 9908 `RelativeDistinguishedNameTemplate`.
pub type RelativeDistinguishedNameTemplate = SetOfVec<SingleAttributeTemplate>;

/// RFC 9908 `NameTemplate` (its only alternative, an `RDNSequenceTemplate`).
pub type NameTemplate = Vec<RelativeDistinguishedNameTemplate>;

/// RFC 9908 `SubjectPublicKeyInfoTemplate`: the key type wanted; the key
/// itself only as an RSA placeholder that gives the modulus size.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct SubjectPublicKeyInfoTemplate {
    /// Key algorithm, with the curve as parameter for EC.
    pub algorithm: AlgorithmIdentifierOwned,
    /// Placeholder public key (RSA size), usually absent.
    #[asn1(optional = "true")]
    pub subject_public_key: Option<BitString>,
}

/// RFC 9908 `ExtensionTemplate`: an extension the request must carry; its
/// value, when absent, the client fills in.
#[derive(Clone, Debug, PartialEq, Eq, Sequence, ValueOrd)]
pub struct ExtensionTemplate {
    /// Extension OID.
    pub extn_id: ObjectIdentifier,
    /// Criticality to use.
    #[asn1(default = "Default::default")]
    pub critical: bool,
    /// DER of the extension value the client must use, or `None` for "fill this in".
    #[asn1(optional = "true")]
    pub extn_value: Option<OctetString>,
}

impl From<Extension> for ExtensionTemplate {
    fn from(e: Extension) -> Self {
        ExtensionTemplate {
            extn_id: e.extn_id,
            critical: e.critical,
            extn_value: Some(e.extn_value),
        }
    }
}

/// RFC 9908 `ExtensionReqTemplate` (value of `id-aa-extensionReqTemplate`).
pub type ExtensionReqTemplate = Vec<ExtensionTemplate>;

/// RFC 9908 `CertificationRequestInfoTemplate` (value of
/// `id-aa-certificationRequestInfoTemplate`): a partly filled in
/// CertificationRequestInfo.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertificationRequestInfoTemplate {
    /// Always v1 (0).
    pub version: x509_cert::request::Version,
    /// Subject RDNs required, when the server has requirements on the subject.
    #[asn1(optional = "true")]
    pub subject: Option<NameTemplate>,
    /// Key type required, when the server has requirements on the key.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_pk_info: Option<SubjectPublicKeyInfoTemplate>,
    /// Attributes (extensionRequest or extensionReqTemplate, …).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT")]
    pub attributes: SetOfVec<Attribute>,
}

impl Default for CertificationRequestInfoTemplate {
    fn default() -> Self {
        CertificationRequestInfoTemplate {
            version: x509_cert::request::Version::V1,
            subject: None,
            subject_pk_info: None,
            attributes: SetOfVec::new(),
        }
    }
}

impl CertificationRequestInfoTemplate {
    /// The subject the template dictates: only the RDN attributes that have
    /// a value (the others are for the client to fill in). `None` when the
    /// template has no subject or no valued attribute.
    pub fn subject_name(&self) -> Result<Option<Name>> {
        let Some(subject) = &self.subject else {
            return Ok(None);
        };
        let mut rdns = Vec::new();
        for rdn in subject {
            let atvs: Vec<AttributeTypeAndValue> = rdn
                .iter()
                .filter_map(|a| {
                    a.value.as_ref().map(|v| AttributeTypeAndValue {
                        oid: a.oid,
                        value: v.clone(),
                    })
                })
                .collect();
            if !atvs.is_empty() {
                rdns.push(RelativeDistinguishedName(SetOfVec::try_from(atvs)?));
            }
        }
        Ok((!rdns.is_empty()).then_some(x509_cert::name::RdnSequence(rdns)))
    }

    /// RDN attribute types the template asks for, with or without a value.
    pub fn subject_attribute_types(&self) -> Vec<ObjectIdentifier> {
        self.subject
            .iter()
            .flatten()
            .flat_map(|rdn| rdn.iter().map(|a| a.oid))
            .collect()
    }

    /// The key requirement expressed by `subjectPKInfo`.
    pub fn key_requirement(&self) -> Option<KeyRequirement> {
        let spki = self.subject_pk_info.as_ref()?;
        if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()?
                .decode_as::<ObjectIdentifier>()
                .ok()?;
            Some(KeyRequirement::Ec { curve })
        } else if spki.algorithm.oid == oid::RSA_ENCRYPTION {
            let bits = spki
                .subject_public_key
                .as_ref()
                .and_then(|k| k.as_bytes())
                .and_then(enrolkit_pkix::pkcs10::rsa_modulus_bits);
            Some(KeyRequirement::Rsa { bits })
        } else {
            None
        }
    }

    /// The extension requirements of the template's attributes
    /// (extensionRequest and extensionReqTemplate).
    pub fn extension_templates(&self) -> Vec<ExtensionTemplate> {
        let mut out = Vec::new();
        for a in self.attributes.iter() {
            collect_extension_templates(a, &mut out);
        }
        out
    }
}

/// A CSR attributes response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrAttrs {
    /// The items, in order.
    pub items: Vec<AttrOrOid>,
}

impl CsrAttrs {
    /// An empty set of attributes ("no requirements").
    pub fn new() -> Self {
        CsrAttrs::default()
    }

    /// Decode DER (BER lengths tolerated), bounded to [`MAX_ITEMS`] items and
    /// [`MAX_VALUES`] values per attribute.
    pub fn from_der(input: &[u8]) -> Result<Self> {
        if input.len() > crate::body::MAX_BODY {
            return Err(EstError::TooLarge {
                what: "CSR attributes",
                limit: crate::body::MAX_BODY,
            });
        }
        let der_bytes = ber::normalize(input, &BER_LIMITS)?;
        let mut outer = der::SliceReader::new(&der_bytes)?;
        let header = der::Header::decode(&mut outer)?;
        if header.tag != Tag::Sequence {
            return Err(EstError::malformed(
                "CSR attributes",
                format!("tag {} where a SEQUENCE was expected", header.tag),
            ));
        }
        let value = outer.read_slice(header.length)?;
        let mut r = der::SliceReader::new(value)?;
        let mut items = Vec::new();
        while !r.is_finished() {
            if items.len() >= MAX_ITEMS {
                return Err(EstError::TooLarge {
                    what: "CSR attributes items",
                    limit: MAX_ITEMS,
                });
            }
            items.push(AttrOrOid::decode(&mut r)?);
        }
        outer.finish(())?;
        for item in &items {
            if let AttrOrOid::Attribute(a) = item {
                if a.values.len() > MAX_VALUES {
                    return Err(EstError::TooLarge {
                        what: "values of a CSR attribute",
                        limit: MAX_VALUES,
                    });
                }
            }
        }
        Ok(CsrAttrs { items })
    }

    /// Encode as DER.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        Ok(self.items.to_der()?)
    }

    /// Whether there are no items (the same as a 204 or 404 answer).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bare OIDs, in order.
    pub fn oids(&self) -> impl Iterator<Item = &ObjectIdentifier> {
        self.items.iter().filter_map(|i| match i {
            AttrOrOid::Oid(o) => Some(o),
            _ => None,
        })
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.items.iter().filter_map(|i| match i {
            AttrOrOid::Attribute(a) => Some(a),
            _ => None,
        })
    }

    /// Add a bare OID.
    pub fn with_oid(mut self, oid: ObjectIdentifier) -> Self {
        self.items.push(AttrOrOid::Oid(oid));
        self
    }

    /// Ask for a challengePassword: over TLS, the channel binding (RFC 7030 §3.5).
    pub fn with_challenge_password(self) -> Self {
        self.with_oid(oid::CHALLENGE_PASSWORD)
    }

    /// Ask for the CSR to be signed with this signature algorithm (e.g. ecdsa-with-SHA256).
    pub fn with_signature_algorithm(self, alg: ObjectIdentifier) -> Self {
        self.with_oid(alg)
    }

    /// Add an attribute with one value.
    pub fn with_attribute(mut self, oid: ObjectIdentifier, value: Any) -> Result<Self> {
        self.items.push(AttrOrOid::Attribute(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value])?,
        }));
        Ok(self)
    }

    /// Ask for an extension with a given value in the one extensionRequest
    /// attribute (RFC 9908: there must be only one), replacing an earlier one with the same OID.
    pub fn with_extension_request(mut self, ext: Extension) -> Result<Self> {
        let pos = self
            .items
            .iter()
            .position(|i| matches!(i, AttrOrOid::Attribute(a) if a.oid == oid::EXTENSION_REQUEST));
        let mut exts: Vec<Extension> = match pos.and_then(|p| self.items.get(p)) {
            Some(AttrOrOid::Attribute(a)) => match a.values.iter().next() {
                Some(v) => v.decode_as()?,
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        match exts.iter_mut().find(|e| e.extn_id == ext.extn_id) {
            Some(e) => *e = ext,
            None => exts.push(ext),
        }
        let attr = AttrOrOid::Attribute(Attribute {
            oid: oid::EXTENSION_REQUEST,
            values: SetOfVec::try_from(vec![Any::encode_from(&exts)?])?,
        });
        match pos.and_then(|p| self.items.get_mut(p)) {
            Some(slot) => *slot = attr,
            None => self.items.push(attr),
        }
        Ok(self)
    }

    /// Ask for an extKeyUsage extension with these key purposes, in an
    /// extensionRequest attribute (RFC 7030 §4.5.2 as clarified by RFC 9908).
    pub fn with_extension_request_ekus(self, ekus: &[ObjectIdentifier]) -> Result<Self> {
        let ext = Extension {
            extn_id: oid::EXT_KEY_USAGE,
            critical: false,
            extn_value: OctetString::new(ExtendedKeyUsage(ekus.to_vec()).to_der()?)?,
        };
        self.with_extension_request(ext)
    }

    /// Ask for an EC key on `curve`: attribute id-ecPublicKey whose value is
    /// the curve OID (RFC 7030 appendix A.2, RFC 9908 §5 examples).
    pub fn with_ec_key(self, curve: ObjectIdentifier) -> Result<Self> {
        self.with_attribute(oid::EC_PUBLIC_KEY, Any::encode_from(&curve)?)
    }

    /// Ask for an RSA key of `bits`: attribute rsaEncryption whose value is
    /// the modulus size as an INTEGER (the RFC 9908 §5 RSA example).
    pub fn with_rsa_key(self, bits: u32) -> Result<Self> {
        self.with_attribute(oid::RSA_ENCRYPTION, Any::encode_from(&bits)?)
    }

    /// Add an RFC 9908 certificationRequestInfoTemplate attribute.
    pub fn with_template(self, template: CertificationRequestInfoTemplate) -> Result<Self> {
        self.with_attribute(oid::CERTIFICATION_REQUEST_INFO_TEMPLATE, Any::encode_from(&template)?)
    }

    /// Whether a challengePassword is asked for (bare OID, attribute, or
    /// inside the template's attributes).
    pub fn challenge_password_requested(&self) -> bool {
        self.items.iter().any(|i| match i {
            AttrOrOid::Oid(o) => *o == oid::CHALLENGE_PASSWORD,
            AttrOrOid::Attribute(a) => a.oid == oid::CHALLENGE_PASSWORD,
            AttrOrOid::Unrecognised(_) => false,
        }) || self
            .template()
            .ok()
            .flatten()
            .is_some_and(|t| t.attributes.iter().any(|a| a.oid == oid::CHALLENGE_PASSWORD))
    }

    /// Every extension requirement: the Extensions of extensionRequest
    /// attributes, the ExtensionTemplates of extensionReqTemplate attributes,
    /// and those inside a certificationRequestInfoTemplate. Values that do
    /// not decode as Extensions (such as the bare OID of the RFC 7030
    /// appendix A.2 example) are skipped; see [`CsrAttrs::extension_request_oids`].
    pub fn requested_extensions(&self) -> Vec<ExtensionTemplate> {
        let mut out = Vec::new();
        for a in self.attributes() {
            collect_extension_templates(a, &mut out);
        }
        if let Ok(Some(t)) = self.template() {
            out.extend(t.extension_templates());
        }
        out
    }

    /// The key purposes asked for in extKeyUsage extension requirements
    /// that carry a value, deduplicated, in order.
    pub fn requested_ekus(&self) -> Vec<ObjectIdentifier> {
        let mut out = Vec::new();
        for e in self.requested_extensions() {
            if e.extn_id != oid::EXT_KEY_USAGE {
                continue;
            }
            let Some(v) = e.extn_value else { continue };
            if let Ok(eku) = decode_bounded::<ExtendedKeyUsage>(v.as_bytes()) {
                for o in eku.0 {
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
            }
        }
        out
    }

    /// OIDs given as values of an extensionRequest attribute, where
    /// Extensions belong. RFC 7030's own example does this (with macAddress);
    /// RFC 9908 restates that example with a bare OID and calls the original
    /// incorrect, but servers copied it.
    pub fn extension_request_oids(&self) -> Vec<ObjectIdentifier> {
        self.attributes()
            .filter(|a| a.oid == oid::EXTENSION_REQUEST)
            .flat_map(|a| a.values.iter())
            .filter_map(|v| v.decode_as::<ObjectIdentifier>().ok())
            .collect()
    }

    /// The key asked for: from the template's subjectPKInfo when there is
    /// one (RFC 9908 co-existence rules: the template takes precedence), else from an
    /// id-ecPublicKey attribute (value: curve), an rsaEncryption attribute
    /// (value: modulus bits) or a bare rsaEncryption OID.
    pub fn key_requirement(&self) -> Option<KeyRequirement> {
        if let Some(k) = self.template().ok().flatten().and_then(|t| t.key_requirement()) {
            return Some(k);
        }
        for item in &self.items {
            match item {
                AttrOrOid::Attribute(a) if a.oid == oid::EC_PUBLIC_KEY => {
                    if let Some(curve) = a.values.iter().find_map(|v| v.decode_as::<ObjectIdentifier>().ok()) {
                        return Some(KeyRequirement::Ec { curve });
                    }
                }
                AttrOrOid::Attribute(a) if a.oid == oid::RSA_ENCRYPTION => {
                    let bits = a.values.iter().find_map(|v| v.decode_as::<u32>().ok());
                    return Some(KeyRequirement::Rsa { bits });
                }
                AttrOrOid::Oid(o) if *o == oid::RSA_ENCRYPTION => return Some(KeyRequirement::Rsa { bits: None }),
                _ => {}
            }
        }
        None
    }

    /// The first bare OID that names a known signature algorithm.
    pub fn signature_algorithm(&self) -> Option<ObjectIdentifier> {
        self.oids().find(|o| oid::SIGNATURE_ALGORITHMS.contains(o)).copied()
    }

    /// The RFC 9908 certificationRequestInfoTemplate, if there is one.
    /// More than one template attribute, or one with other than exactly one
    /// value, is an error.
    pub fn template(&self) -> Result<Option<CertificationRequestInfoTemplate>> {
        let mut found = None;
        for a in self
            .attributes()
            .filter(|a| a.oid == oid::CERTIFICATION_REQUEST_INFO_TEMPLATE)
        {
            if found.is_some() {
                return Err(EstError::malformed(
                    "CSR attributes",
                    "more than one certificationRequestInfoTemplate",
                ));
            }
            let mut values = a.values.iter();
            let (Some(v), None) = (values.next(), values.next()) else {
                return Err(EstError::malformed(
                    "certificationRequestInfoTemplate",
                    "the attribute must have exactly one value",
                ));
            };
            let t: CertificationRequestInfoTemplate = decode_bounded(&v.to_der()?)?;
            found = Some(t);
        }
        Ok(found)
    }
}

/// Extension requirements of one extensionRequest or extensionReqTemplate attribute.
fn collect_extension_templates(a: &Attribute, out: &mut Vec<ExtensionTemplate>) {
    for v in a.values.iter() {
        if a.oid == oid::EXTENSION_REQUEST {
            if let Ok(exts) = v.decode_as::<Vec<Extension>>() {
                out.extend(exts.into_iter().map(ExtensionTemplate::from));
            }
        } else if a.oid == oid::EXTENSION_REQ_TEMPLATE {
            if let Ok(exts) = v.decode_as::<ExtensionReqTemplate>() {
                out.extend(exts);
            }
        }
    }
}

/// Decode `T` from DER after bounding depth and SET sizes.
pub(crate) fn decode_bounded<'a, T: Decode<'a>>(der_bytes: &'a [u8]) -> Result<T> {
    ber::check(der_bytes, &BER_LIMITS)?;
    Ok(T::from_der(der_bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_roundtrip() {
        let a = CsrAttrs::new()
            .with_challenge_password()
            .with_ec_key(oid::SECP256R1)
            .unwrap()
            .with_signature_algorithm(oid::ECDSA_WITH_SHA256);
        let der = a.to_der().unwrap();
        assert_eq!(CsrAttrs::from_der(&der).unwrap(), a);
        assert_eq!(CsrAttrs::from_der(&[0x30, 0x00]).unwrap(), CsrAttrs::new());
        assert!(CsrAttrs::from_der(&[0x30, 0x02, 0x05, 0x00]).is_err());
        assert!(CsrAttrs::from_der(&[0x31, 0x00]).is_err());
    }

    #[test]
    fn item_bound() {
        let mut a = CsrAttrs::new();
        for _ in 0..=MAX_ITEMS {
            a = a.with_challenge_password();
        }
        let der = a.to_der().unwrap();
        assert_eq!(
            CsrAttrs::from_der(&der),
            Err(EstError::TooLarge {
                what: "CSR attributes items",
                limit: MAX_ITEMS
            })
        );
    }
}
