//! The limits a received PKCS#10 request is held to, checked on the DER
//! before the `der` decoders see it.
//!
//! The decoders recurse only as deep as the ASN.1 of RFC 2986 goes, but
//! they sort every SET OF they decode by insertion (quadratic in its
//! size), and an attribute value or extension value is arbitrary DER. So
//! before decoding, one walk over the element tree bounds the nesting
//! depth and the number of elements of every constructed value; the same
//! walk runs over each extension value before it is decoded. The walk
//! accepts DER's definite lengths only (see the module notes on BER).

use super::error::{Pkcs10Error, Result};

/// Largest request accepted, in bytes. An RSA-16384 request with a long
/// subjectAltName is well under 8 KiB.
pub const MAX_CSR: usize = 64 * 1024;
/// Deepest nesting of constructed values accepted. The deepest a request
/// legitimately goes is a directoryName in a subjectAltName (about 10).
pub const MAX_DEPTH: usize = 32;
/// Most elements in one constructed value (a SET OF, a SEQUENCE OF).
pub const MAX_ELEMENTS: usize = 256;
/// Most attributes in a CertificationRequestInfo.
pub const MAX_ATTRIBUTES: usize = 32;
/// Most extensions requested, over all extensionRequest attributes.
pub const MAX_EXTENSIONS: usize = 64;

/// Check that `input` is exactly one DER element within [`MAX_DEPTH`] and
/// [`MAX_ELEMENTS`]. Does not check that the element is a request.
pub fn check_shape(input: &[u8]) -> Result<()> {
    let end = element(input, 0, 0)?;
    if end != input.len() {
        return Err(Pkcs10Error::malformed(
            "PKCS#10 request",
            format!("{} bytes after the encoding", input.len() - end),
        ));
    }
    Ok(())
}

fn truncated() -> Pkcs10Error {
    Pkcs10Error::malformed("PKCS#10 request", "truncated encoding")
}

fn byte(input: &[u8], pos: &mut usize) -> Result<u8> {
    let b = *input.get(*pos).ok_or_else(truncated)?;
    *pos += 1;
    Ok(b)
}

/// Walk the element at `pos`; return the position after it.
fn element(input: &[u8], mut pos: usize, depth: usize) -> Result<usize> {
    if depth > MAX_DEPTH {
        return Err(Pkcs10Error::TooDeep { limit: MAX_DEPTH });
    }
    let first = byte(input, &mut pos)?;
    if first & 0x1f == 0x1f {
        // High tag number: base-128, at most 4 octets (tags past 2^28 are not ASN.1 we read).
        let mut n = 0;
        while byte(input, &mut pos)? & 0x80 != 0 {
            n += 1;
            if n >= 4 {
                return Err(Pkcs10Error::malformed("PKCS#10 request", "tag number too large"));
            }
        }
    }
    let len = match byte(input, &mut pos)? {
        l if l < 0x80 => usize::from(l),
        0x80 => {
            return Err(Pkcs10Error::malformed(
                "PKCS#10 request",
                "indefinite length (BER); a request must be DER",
            ))
        }
        l => {
            let n = usize::from(l & 0x7f);
            if n > 4 {
                return Err(Pkcs10Error::malformed("PKCS#10 request", "length field too long"));
            }
            let mut v = 0usize;
            for _ in 0..n {
                v = (v << 8) | usize::from(byte(input, &mut pos)?);
            }
            v
        }
    };
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= input.len())
        .ok_or_else(truncated)?;
    if first & 0x20 != 0 {
        let mut count = 0usize;
        while pos < end {
            count += 1;
            if count > MAX_ELEMENTS {
                return Err(Pkcs10Error::TooMany {
                    what: "elements in one constructed value",
                    limit: MAX_ELEMENTS,
                });
            }
            pos = element(input.get(..end).ok_or_else(truncated)?, pos, depth + 1)?;
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut v = vec![0x05, 0x00];
        for _ in 0..depth {
            let mut out = vec![0x30];
            if v.len() < 0x80 {
                out.push(v.len() as u8);
            } else {
                out.push(0x82);
                out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(&v);
            v = out;
        }
        v
    }

    #[test]
    fn depth_is_bounded() {
        check_shape(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(
            check_shape(&nested(MAX_DEPTH + 1)),
            Err(Pkcs10Error::TooDeep { limit: MAX_DEPTH })
        );
    }

    #[test]
    fn element_count_is_bounded() {
        let set = |n: usize| {
            let body: Vec<u8> = std::iter::repeat_n([0x05u8, 0x00], n).flatten().collect();
            let mut v = vec![0x31, 0x82];
            v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            v.extend_from_slice(&body);
            v
        };
        check_shape(&set(MAX_ELEMENTS)).unwrap();
        assert!(matches!(
            check_shape(&set(MAX_ELEMENTS + 1)),
            Err(Pkcs10Error::TooMany { .. })
        ));
    }

    #[test]
    fn ber_and_broken_lengths_are_refused() {
        assert!(check_shape(&[0x30, 0x80, 0x05, 0x00, 0x00, 0x00]).is_err());
        assert!(check_shape(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_err());
        assert!(check_shape(&[0x30, 0x03, 0x05, 0x00]).is_err());
        assert!(check_shape(&[0x05, 0x00, 0x00]).is_err());
        assert!(check_shape(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00]).is_err());
        assert!(check_shape(&[]).is_err());
        // A child running past its parent's end.
        assert!(check_shape(&[0x30, 0x02, 0x04, 0x05, 1, 2, 3, 4, 5]).is_err());
    }
}
