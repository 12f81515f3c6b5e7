//! The certs-only message: a degenerate CMS SignedData that carries
//! certificates and, optionally, CRLs, and no signature (RFC 5652 §5, the
//! "degenerate case where there are no signers"). SCEP's GetCACert reply
//! and the content of a CertRep (RFC 8894 §3.4, §4.2.1.2), EST's
//! `/cacerts`, `/simpleenroll` and `/serverkeygen` certificates (RFC 7030
//! §4.1.3) and CMC's Simple PKI Response (RFC 5272 §4.1) are all this one
//! structure:
//!
//! ```text
//! ContentInfo ::= SEQUENCE {
//!   contentType ContentType,                      -- id-signedData
//!   content [0] EXPLICIT ANY DEFINED BY contentType }
//!
//! SignedData ::= SEQUENCE {
//!   version CMSVersion,                           -- v1
//!   digestAlgorithms DigestAlgorithmIdentifiers,  -- empty
//!   encapContentInfo EncapsulatedContentInfo,     -- id-data, no eContent
//!   certificates [0] IMPLICIT CertificateSet OPTIONAL,
//!   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//!   signerInfos SignerInfos }                     -- empty
//!
//! CertificateSet ::= SET OF CertificateChoices
//! CertificateChoices ::= CHOICE {
//!   certificate Certificate,
//!   extendedCertificate [0] IMPLICIT ExtendedCertificate,  -- Obsolete
//!   v1AttrCert [1] IMPLICIT AttributeCertificateV1,        -- Obsolete
//!   v2AttrCert [2] IMPLICIT AttributeCertificateV2,
//!   other [3] IMPLICIT OtherCertificateFormat }
//!
//! RevocationInfoChoices ::= SET OF RevocationInfoChoice
//! RevocationInfoChoice ::= CHOICE {
//!   crl CertificateList,
//!   other [1] IMPLICIT OtherRevocationInfoFormat }
//! ```
//!
//! # Order
//!
//! **The caller's order is kept.** [`encode`] writes the certificates, and
//! the CRLs, in the order given, and [`decode`] returns them in the order
//! received. Callers put the end-entity certificate (the one issued, or the
//! sender's own, such as the SCEP RA) first and its issuers after it.
//! Strict DER would sort a SET OF by encoding (X.690 §11.6), which loses that
//! order; we do as OpenSSL does (its PKCS7 encodes the certificates as an
//! ordered sequence, `openssl crl2pkcs7` keeps the order of its input), and
//! as deployed peers expect: micromdm's SCEP client takes the first
//! certificate of a CertRep as the one issued, and EST peers (OpenSSL,
//! libest) keep a chain in the order given. Decoders must nevertheless not
//! rely on order: [`decode`] accepts any, and readers that look for "their"
//! certificate should match it by key or name.
//!
//! # Tolerance and bounds
//!
//! Input may be BER (indefinite lengths, chunked strings, from streaming
//! encoders): it goes through [`crate::ber::normalize`] first. At most
//! [`MAX_LEN`] bytes, [`MAX_CERTS`] certificates and [`MAX_CRLS`] CRLs are
//! read or written. Certificates are read under RFC 5280's rules
//! (`x509-cert`'s default profile). Choices other than a Certificate or a
//! CertificateList (attribute certificates, other formats) are skipped; an
//! eContent, if a peer put one, is ignored; a SignedData with signerInfos
//! is refused, since it is not certs-only.

use crate::ber::{self, BerError, Limits};
use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::crl::CertificateList;
use x509_cert::Certificate;

/// Most certificates read from or written to one certs-only message.
pub const MAX_CERTS: usize = 64;

/// Most CRLs read from or written to one certs-only message (SCEP's GetCRL
/// answers with one).
pub const MAX_CRLS: usize = 16;

/// Longest certs-only message read (16 MiB: CRLs can be large).
pub const MAX_LEN: usize = 16 * 1024 * 1024;

/// id-signedData (RFC 5652 §5.1).
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// id-data (RFC 5652 §4), the eContentType of a certs-only SignedData.
pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");

/// What a certs-only message carries, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertsOnly {
    /// The certificates, end-entity first when the sender followed the rule.
    pub certificates: Vec<Certificate>,
    /// The CRLs (SCEP GetCRL), usually none.
    pub crls: Vec<CertificateList>,
}

/// Why a certs-only message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertsOnlyError {
    /// More bytes, certificates or CRLs than the bounds allow.
    #[error("{what}: {actual} is more than the limit of {limit}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The limit.
        limit: usize,
        /// What was seen (for counts: the first one over the limit).
        actual: usize,
    },
    /// The input is not a certs-only SignedData; the reason says what is wrong.
    #[error("malformed certs-only SignedData: {0}")]
    Malformed(String),
    /// A certificate or CRL could not be encoded.
    #[error("cannot encode a certs-only SignedData: {0}")]
    Encode(der::Error),
}

impl From<BerError> for CertsOnlyError {
    fn from(e: BerError) -> Self {
        match e {
            BerError::TooLarge { what, limit, actual } => CertsOnlyError::TooLarge { what, limit, actual },
            BerError::Malformed(r) => malformed(format!("BER: {r}")),
        }
    }
}

fn malformed(reason: impl std::fmt::Display) -> CertsOnlyError {
    CertsOnlyError::Malformed(reason.to_string())
}

fn bound(what: &'static str, limit: usize, actual: usize) -> Result<(), CertsOnlyError> {
    if actual > limit {
        return Err(CertsOnlyError::TooLarge { what, limit, actual });
    }
    Ok(())
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;

/// Encode `certificates` and `crls`, each in the order given, as a DER
/// certs-only ContentInfo (see the module docs for the order rule): version
/// 1, no digestAlgorithms, id-data without content, no signerInfos; the
/// `certificates` and `crls` fields are left out when empty.
pub fn encode(certificates: &[Certificate], crls: &[CertificateList]) -> Result<Vec<u8>, CertsOnlyError> {
    bound("certificates in a certs-only SignedData", MAX_CERTS, certificates.len())?;
    bound("CRLs in a certs-only SignedData", MAX_CRLS, crls.len())?;
    let mut sd = Vec::new();
    tlv(&mut sd, INTEGER, &[1]); // version CMSVersion = v1
    tlv(&mut sd, SET, &[]); // digestAlgorithms: none
    tlv(&mut sd, SEQUENCE, &ID_DATA.to_der().map_err(CertsOnlyError::Encode)?); // encapContentInfo
    if !certificates.is_empty() {
        let mut set = Vec::new();
        for c in certificates {
            c.encode_to_vec(&mut set).map_err(CertsOnlyError::Encode)?;
        }
        tlv(&mut sd, CONTEXT_0, &set); // certificates [0] IMPLICIT, in the caller's order
    }
    if !crls.is_empty() {
        let mut set = Vec::new();
        for c in crls {
            c.encode_to_vec(&mut set).map_err(CertsOnlyError::Encode)?;
        }
        tlv(&mut sd, CONTEXT_1, &set); // crls [1] IMPLICIT, in the caller's order
    }
    tlv(&mut sd, SET, &[]); // signerInfos: none
    let mut explicit = Vec::new();
    tlv(&mut explicit, SEQUENCE, &sd);
    let mut ci = ID_SIGNED_DATA.to_der().map_err(CertsOnlyError::Encode)?;
    tlv(&mut ci, CONTEXT_0, &explicit);
    let mut out = Vec::new();
    tlv(&mut out, SEQUENCE, &ci);
    Ok(out)
}

fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    ber::push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Decode a certs-only ContentInfo (DER, or BER from streaming encoders)
/// into its certificates and CRLs, in the order received.
pub fn decode(input: &[u8]) -> Result<CertsOnly, CertsOnlyError> {
    bound("certs-only SignedData bytes", MAX_LEN, input.len())?;
    let der_bytes = ber::normalize(input, &Limits::DEFAULT.with_max_len(MAX_LEN))?;
    let der = |e: der::Error| malformed(e);
    let mut r = SliceReader::new(&der_bytes).map_err(der)?;
    let content_info = AnyRef::decode(&mut r).map_err(der)?;
    r.finish(()).map_err(der)?;
    expect(&content_info, Tag::Sequence, "ContentInfo")?;
    let mut r = SliceReader::new(content_info.value()).map_err(der)?;
    let content_type = ObjectIdentifier::decode(&mut r).map_err(der)?;
    if content_type != ID_SIGNED_DATA {
        return Err(malformed(format!("content type {content_type} is not id-signedData")));
    }
    let explicit = AnyRef::decode(&mut r).map_err(der)?;
    r.finish(()).map_err(der)?;
    expect(&explicit, context(TagNumber::N0), "ContentInfo content")?;
    let mut r = SliceReader::new(explicit.value()).map_err(der)?;
    let signed_data = AnyRef::decode(&mut r).map_err(der)?;
    r.finish(()).map_err(der)?;
    expect(&signed_data, Tag::Sequence, "SignedData")?;

    let mut r = SliceReader::new(signed_data.value()).map_err(der)?;
    expect(
        &AnyRef::decode(&mut r).map_err(der)?,
        Tag::Integer,
        "SignedData version",
    )?;
    expect(&AnyRef::decode(&mut r).map_err(der)?, Tag::Set, "digestAlgorithms")?;
    let encap = AnyRef::decode(&mut r).map_err(der)?;
    expect(&encap, Tag::Sequence, "encapContentInfo")?;
    ObjectIdentifier::decode(&mut SliceReader::new(encap.value()).map_err(der)?)
        .map_err(|e| malformed(format!("encapContentInfo: {e}")))?;
    let mut out = CertsOnly::default();
    let mut next = AnyRef::decode(&mut r).map_err(der)?;
    if next.tag() == context(TagNumber::N0) {
        out.certificates = choices(
            next.value(),
            MAX_CERTS,
            "certificates in a certs-only SignedData",
            |any| Certificate::from_der(&any.to_der()?),
        )?;
        next = AnyRef::decode(&mut r).map_err(der)?;
    }
    if next.tag() == context(TagNumber::N1) {
        out.crls = choices(next.value(), MAX_CRLS, "CRLs in a certs-only SignedData", |any| {
            CertificateList::from_der(&any.to_der()?)
        })?;
        next = AnyRef::decode(&mut r).map_err(der)?;
    }
    expect(&next, Tag::Set, "signerInfos")?;
    if !next.value().is_empty() {
        return Err(malformed("it has signerInfos; a certs-only SignedData is unsigned"));
    }
    r.finish(()).map_err(|e| malformed(format!("after signerInfos: {e}")))?;
    Ok(out)
}

/// The SEQUENCE alternatives of a SET OF CHOICE (`content`), decoded by
/// `decode` in the order received, at most `max` of any alternative.
fn choices<T>(
    content: &[u8],
    max: usize,
    what: &'static str,
    decode: impl Fn(&AnyRef<'_>) -> der::Result<T>,
) -> Result<Vec<T>, CertsOnlyError> {
    let mut r = SliceReader::new(content).map_err(malformed)?;
    let mut out = Vec::new();
    let mut seen = 0usize;
    while !r.is_finished() {
        let choice = AnyRef::decode(&mut r).map_err(malformed)?;
        seen += 1;
        bound(what, max, seen)?;
        if choice.tag() == Tag::Sequence {
            out.push(decode(&choice).map_err(|e| malformed(format!("{what}, number {seen}: {e}")))?);
        }
    }
    Ok(out)
}

fn context(number: TagNumber) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number,
    }
}

fn expect(any: &AnyRef<'_>, tag: Tag, what: &str) -> Result<(), CertsOnlyError> {
    if any.tag() == tag {
        Ok(())
    } else {
        Err(malformed(format!("{what} has tag {}, expected {tag}", any.tag())))
    }
}
