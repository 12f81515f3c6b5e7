//! The outer CMS wrapper of every SCEP message (RFC 5652 §3), decoded as
//! DER when it is DER and after `enrolkit_pkix::ber` normalisation when not:
//!
//! ```text
//! ContentInfo ::= SEQUENCE {
//!   contentType ContentType,
//!   content [0] EXPLICIT ANY DEFINED BY contentType }
//!
//! ContentType ::= OBJECT IDENTIFIER
//! ```

use crate::error::{Result, ScepError};
use cms::content_info::ContentInfo;
use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::{Decode, Encode};
use enrolkit_pkix::ber;

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

pub(crate) fn content_info<T: der::Tagged + der::EncodeValue>(
    content_type: ObjectIdentifier,
    value: &T,
) -> Result<Vec<u8>> {
    Ok(ContentInfo {
        content_type,
        content: Any::encode_from(value)?,
    }
    .to_der()?)
}
