//! The certs-only Simple PKI Response (RFC 7030 §4.1.3, §4.2.3; RFC 5272
//! §4.1): a degenerate CMS SignedData that carries certificates and nothing
//! else.
//!
//! The SignedData is encoded and decoded here rather than through the `cms`
//! crate, because its `CertificateSet` is a DER SET OF and so sorted: EST
//! peers (OpenSSL, libest) keep certificates in the order they were given,
//! and a chain's order is information worth keeping.

use crate::error::{EstError, Result};
use crate::oid;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use enrolkit_pkix::ber;
use x509_cert::Certificate;

/// Most certificates accepted in (or written to) a certs-only response.
pub const MAX_CERTS: usize = 64;

/// Most elements of any SET in a certs-only response.
const MAX_SET: usize = MAX_CERTS + 16;

/// Encode `certs`, in the given order, as a DER certs-only ContentInfo:
/// SignedData version 1, no digestAlgorithms, id-data with no content, no
/// CRLs, no signerInfos.
pub fn encode_certs_only(certs: &[Certificate]) -> Result<Vec<u8>> {
    if certs.len() > MAX_CERTS {
        return Err(EstError::TooLarge {
            what: "certificates in a certs-only response",
            limit: MAX_CERTS,
        });
    }
    let mut cert_bytes = Vec::new();
    for c in certs {
        c.encode_to_vec(&mut cert_bytes)?;
    }
    let mut sd = Vec::new();
    tlv(&mut sd, 0x02, &[0x01]); // version CMSVersion = v1
    tlv(&mut sd, 0x31, &[]); // digestAlgorithms: empty SET
    let mut eci = Vec::new();
    oid::DATA.encode_to_vec(&mut eci)?;
    tlv(&mut sd, 0x30, &eci); // encapContentInfo: id-data, no eContent
    if !certs.is_empty() {
        tlv(&mut sd, 0xa0, &cert_bytes); // certificates [0] IMPLICIT
    }
    tlv(&mut sd, 0x31, &[]); // signerInfos: empty SET
    let mut explicit = Vec::new();
    tlv(&mut explicit, 0x30, &sd);
    let mut ci = Vec::new();
    oid::SIGNED_DATA.encode_to_vec(&mut ci)?;
    tlv(&mut ci, 0xa0, &explicit);
    let mut out = Vec::new();
    tlv(&mut out, 0x30, &ci);
    Ok(out)
}

fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    ber::push_len(out, content.len());
    out.extend_from_slice(content);
}

fn bad(reason: impl std::fmt::Display) -> EstError {
    EstError::malformed("certs-only response", reason)
}

/// Decode a certs-only ContentInfo (DER, or BER from streaming encoders) and
/// return its certificates in the order received.
///
/// There must be no signerInfos; CRLs, when present, are skipped; other
/// certificate choices (attribute certificates…) are skipped; an eContent,
/// if a peer put one, is ignored.
pub fn decode_certs_only(input: &[u8]) -> Result<Vec<Certificate>> {
    if input.len() > crate::body::MAX_BODY {
        return Err(EstError::TooLarge {
            what: "certs-only response",
            limit: crate::body::MAX_BODY,
        });
    }
    let der_bytes = ber::normalize(
        input,
        &ber::Limits::DEFAULT
            .with_max_len(crate::body::MAX_BODY)
            .with_max_depth(32)
            .with_max_elements(MAX_SET),
    )?;
    let mut r = SliceReader::new(&der_bytes)?;
    let content_info = AnyRef::decode(&mut r)?;
    r.finish(())?;
    expect_tag(&content_info, Tag::Sequence, "ContentInfo")?;
    let mut r = SliceReader::new(content_info.value())?;
    let content_type = ObjectIdentifier::decode(&mut r)?;
    if content_type != oid::SIGNED_DATA {
        return Err(bad(format!("content type {content_type} is not signedData")));
    }
    let explicit = AnyRef::decode(&mut r)?;
    r.finish(())?;
    expect_tag(&explicit, context(0, true), "ContentInfo content")?;
    let mut r = SliceReader::new(explicit.value())?;
    let signed_data = AnyRef::decode(&mut r)?;
    r.finish(())?;
    expect_tag(&signed_data, Tag::Sequence, "SignedData")?;

    let mut r = SliceReader::new(signed_data.value())?;
    let version = AnyRef::decode(&mut r)?;
    expect_tag(&version, Tag::Integer, "SignedData version")?;
    let digest_algorithms = AnyRef::decode(&mut r)?;
    expect_tag(&digest_algorithms, Tag::Set, "SignedData digestAlgorithms")?;
    let encap = AnyRef::decode(&mut r)?;
    expect_tag(&encap, Tag::Sequence, "SignedData encapContentInfo")?;
    let mut next = AnyRef::decode(&mut r)?;
    let mut certs = Vec::new();
    if next.tag() == context(0, true) {
        let mut cr = SliceReader::new(next.value())?;
        let mut seen = 0usize;
        while !cr.is_finished() {
            let choice = AnyRef::decode(&mut cr)?;
            seen += 1;
            if seen > MAX_CERTS {
                return Err(EstError::TooLarge {
                    what: "certificates in a certs-only response",
                    limit: MAX_CERTS,
                });
            }
            if choice.tag() == Tag::Sequence {
                let cert =
                    Certificate::from_der(&choice.to_der()?).map_err(|e| bad(format!("certificate {seen}: {e}")))?;
                certs.push(cert);
            }
        }
        next = AnyRef::decode(&mut r)?;
    }
    if next.tag() == context(1, true) {
        next = AnyRef::decode(&mut r)?;
    }
    expect_tag(&next, Tag::Set, "SignedData signerInfos")?;
    if !next.value().is_empty() {
        return Err(bad("it has signerInfos; a certs-only response is unsigned"));
    }
    r.finish(())?;
    Ok(certs)
}

fn context(n: u8, constructed: bool) -> Tag {
    // Only [0] and [1] occur in a SignedData header.
    Tag::ContextSpecific {
        constructed,
        number: if n == 0 { TagNumber::N0 } else { TagNumber::N1 },
    }
}

fn expect_tag(any: &AnyRef<'_>, tag: Tag, what: &str) -> Result<()> {
    if any.tag() == tag {
        Ok(())
    } else {
        Err(bad(format!("{what} has tag {}, expected {tag}", any.tag())))
    }
}
