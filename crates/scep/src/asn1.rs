//! The CMS structures SCEP carries (RFC 5652 SignedData and EnvelopedData
//! with key transport), decoded as received and encoded as DER.
//!
//! Why not the `cms` crate's types: they hold certificates under x509-cert's
//! RFC 5280 profile, which refuses serial numbers longer than 20 octets.
//! Real requesters sign with self-signed certificates that break that rule
//! (certmonger 0.79 uses 32 random bytes) and the reply must be
//! encrypted to exactly that certificate, its issuer and serial copied into
//! the RecipientIdentifier. So certificates inside messages are kept under
//! the permissive [`Raw`] profile and identifiers carry any INTEGER.
//!
//! Two more things these types do that a derived `SetOfVec` does not: a SET
//! OF is read in the order received (no re-sorting, which is quadratic in
//! der 0.7 and would change what was signed), and the signed attributes keep
//! their received bytes, which is what the signature covers (RFC 5652 §5.4).

use cms::content_info::CmsVersion;
use cms::signed_data::EncapsulatedContentInfo;
use der::asn1::{Any, Int, OctetString};
use der::{
    Choice, Decode, DecodeValue, Encode, EncodeValue, ErrorKind, FixedTag, Header, Length, Reader, Sequence,
    SliceReader, Tag, Writer,
};
use enrolkit_pkix::ber::MAX_ELEMENTS as MAX_SET_ELEMENTS;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::certificate::{CertificateInner, Profile, Raw};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

/// A certificate as found in a message: parsed without RFC 5280's serial
/// number limits, because requesters' self-signed certificates break them.
pub type RawCertificate = CertificateInner<Raw>;

/// SET OF (or SEQUENCE OF) elements in the order they were received, at most
/// [`MAX_SET_ELEMENTS`]. Encoded in the order held: builders sort with
/// [`Elements::der_sorted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elements<T>(pub Vec<T>);

impl<T: Encode> Elements<T> {
    /// The elements in DER SET OF order (ascending by encoding, X.690 §11.6).
    pub fn der_sorted(items: Vec<T>) -> der::Result<Self> {
        let mut keyed = items
            .into_iter()
            .map(|t| t.to_der().map(|d| (d, t)))
            .collect::<der::Result<Vec<_>>>()?;
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Elements(keyed.into_iter().map(|(_, t)| t).collect()))
    }
}

impl<'a, T: Decode<'a>> DecodeValue<'a> for Elements<T> {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        reader.read_nested(header.length, |r| {
            let mut v = Vec::new();
            while !r.is_finished() {
                if v.len() >= MAX_SET_ELEMENTS {
                    return Err(ErrorKind::Overlength.into());
                }
                v.push(r.decode()?);
            }
            Ok(Elements(v))
        })
    }
}

impl<T: Encode> EncodeValue for Elements<T> {
    fn value_len(&self) -> der::Result<Length> {
        self.0.iter().try_fold(Length::ZERO, |acc, t| acc + t.encoded_len()?)
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.0.iter().try_for_each(|t| t.encode(writer))
    }
}

impl<T> FixedTag for Elements<T> {
    const TAG: Tag = Tag::Set;
}

/// A CHOICE whose first alternative is a SEQUENCE we use and whose others
/// (context-tagged) we carry along unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Known<T> {
    /// The alternative SCEP uses.
    Used(T),
    /// Any other alternative.
    Other(Any),
}

impl<'a, T: Decode<'a>> Decode<'a> for Known<T> {
    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        if reader.peek_tag()? == Tag::Sequence {
            Ok(Known::Used(reader.decode()?))
        } else {
            Ok(Known::Other(reader.decode()?))
        }
    }
}

impl<T: Encode> Encode for Known<T> {
    fn encoded_len(&self) -> der::Result<Length> {
        match self {
            Known::Used(t) => t.encoded_len(),
            Known::Other(a) => a.encoded_len(),
        }
    }
    fn encode(&self, writer: &mut impl Writer) -> der::Result<()> {
        match self {
            Known::Used(t) => t.encode(writer),
            Known::Other(a) => a.encode(writer),
        }
    }
}

/// IssuerAndSerialNumber with any INTEGER as serial (RFC 5652 §10.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct IssuerSerial {
    pub issuer: Name,
    pub serial_number: Int,
}

impl IssuerSerial {
    /// The issuer and serial of `cert`, whatever its profile.
    pub fn of<P: Profile>(cert: &CertificateInner<P>) -> der::Result<Self> {
        Ok(IssuerSerial {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: Int::from_der(&cert.tbs_certificate.serial_number.to_der()?)?,
        })
    }
}

/// SignerIdentifier and RecipientIdentifier, which share one shape.
#[derive(Debug, Clone, PartialEq, Eq, Choice)]
pub(crate) enum KeyId {
    IssuerAndSerialNumber(IssuerSerial),
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    SubjectKeyIdentifier(OctetString),
}

/// signedAttrs: the attributes, and the bytes they were received (or built)
/// as, over which the signature is computed with a SET OF tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedAttrs {
    pub attrs: Vec<Attribute>,
    value: Vec<u8>,
}

impl SignedAttrs {
    /// DER-sorted signed attributes for a message we build.
    pub fn new(attrs: Vec<Attribute>) -> der::Result<Self> {
        let sorted = Elements::der_sorted(attrs)?;
        let mut value = Vec::new();
        sorted.encode_value(&mut value)?;
        Ok(SignedAttrs { attrs: sorted.0, value })
    }

    /// What the signature covers: the attributes as an explicitly tagged SET OF.
    pub fn signed_bytes(&self) -> der::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.value.len() + 6);
        Header::new(Tag::Set, Length::try_from(self.value.len())?)?.encode(&mut out)?;
        out.extend_from_slice(&self.value);
        Ok(out)
    }
}

impl<'a> DecodeValue<'a> for SignedAttrs {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let value = reader.read_slice(header.length)?;
        let mut inner = SliceReader::new(value)?;
        let Elements(attrs) = Elements::<Attribute>::decode_value(&mut inner, header)?;
        inner.finish(())?;
        if attrs.is_empty() {
            // RFC 5652 §5.3: SIZE (1..MAX).
            return Err(Tag::Set.value_error());
        }
        Ok(SignedAttrs {
            attrs,
            value: value.to_vec(),
        })
    }
}

impl EncodeValue for SignedAttrs {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.value.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.value)
    }
}

impl FixedTag for SignedAttrs {
    const TAG: Tag = Tag::Set;
}

/// SignerInfo (RFC 5652 §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct SignerInfo {
    pub version: CmsVersion,
    pub sid: KeyId,
    pub digest_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub signed_attrs: Option<SignedAttrs>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: OctetString,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub unsigned_attrs: Option<Elements<Any>>,
}

/// SignedData (RFC 5652 §5.1). Certificates other than X.509 ones and
/// revocation information other than CRLs are carried, not read.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct SignedData {
    pub version: CmsVersion,
    pub digest_algorithms: Elements<AlgorithmIdentifierOwned>,
    pub encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<Elements<Known<RawCertificate>>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<Elements<Known<CertificateList>>>,
    pub signer_infos: Elements<SignerInfo>,
}

/// KeyTransRecipientInfo (RFC 5652 §6.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct KeyTransRecipientInfo {
    pub version: CmsVersion,
    pub rid: KeyId,
    pub key_enc_alg: AlgorithmIdentifierOwned,
    pub enc_key: OctetString,
}

/// EncryptedContentInfo (RFC 5652 §6.1); the content is [0] IMPLICIT.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct EncryptedContentInfo {
    pub content_type: const_oid::ObjectIdentifier,
    pub content_enc_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub encrypted_content: Option<OctetString>,
}

/// EnvelopedData (RFC 5652 §6.1). Recipient kinds other than key transport
/// are carried, not read.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub(crate) struct EnvelopedData {
    pub version: CmsVersion,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub originator_info: Option<Elements<Any>>,
    pub recip_infos: Elements<Known<KeyTransRecipientInfo>>,
    pub encrypted_content: EncryptedContentInfo,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub unprotected_attrs: Option<Elements<Any>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_received_order_and_sort_when_built() {
        // SET { INTEGER 2, INTEGER 1 }: not DER order, read as sent.
        let bytes = [0x31, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01];
        let e = Elements::<u8>::from_der(&bytes).unwrap();
        assert_eq!(e.0, vec![2, 1]);
        assert_eq!(e.to_der().unwrap(), bytes);
        let sorted = Elements::der_sorted(vec![2u8, 1]).unwrap();
        assert_eq!(sorted.0, vec![1, 2]);
    }

    #[test]
    fn elements_are_bounded() {
        let mut body = Vec::new();
        for _ in 0..=MAX_SET_ELEMENTS {
            body.extend_from_slice(&[0x05, 0x00]);
        }
        let mut bytes = Vec::new();
        Header::new(Tag::Set, Length::try_from(body.len()).unwrap())
            .unwrap()
            .encode(&mut bytes)
            .unwrap();
        bytes.extend_from_slice(&body);
        assert!(Elements::<der::asn1::Null>::from_der(&bytes).is_err());
    }

    #[test]
    fn signed_attrs_sign_over_the_bytes_received() {
        // Two attributes in non-DER order stay in that order for the signature.
        let a = |n: u8| Attribute {
            oid: const_oid::ObjectIdentifier::new_unwrap("2.5.4.3"),
            values: der::asn1::SetOfVec::try_from(vec![Any::encode_from(&n).unwrap()]).unwrap(),
        };
        let (x, y) = (a(9).to_der().unwrap(), a(1).to_der().unwrap());
        let mut value = x.clone();
        value.extend_from_slice(&y);
        let mut implicit = vec![0xa0, value.len() as u8];
        implicit.extend_from_slice(&value);
        let header = Header::new(Tag::Set, Length::try_from(value.len()).unwrap()).unwrap();
        let mut r = SliceReader::new(&implicit[2..]).unwrap();
        let s = SignedAttrs::decode_value(&mut r, header).unwrap();
        let mut want = vec![0x31, value.len() as u8];
        want.extend_from_slice(&value);
        assert_eq!(s.signed_bytes().unwrap(), want);
        assert_eq!(s.attrs.len(), 2);
        // Built ones are sorted.
        let built = SignedAttrs::new(vec![a(9), a(1)]).unwrap();
        assert_eq!(built.attrs[0], a(1));
    }
}
