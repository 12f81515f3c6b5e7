//! A bounded pre-pass over BER/DER input, run before the strict `der` decoders.
//!
//! It does two things. It bounds what the decoders will be asked to do: the
//! nesting depth, and the number of elements of every SET and of every
//! context-specific constructed element, which may be an IMPLICIT SET OF
//! (the `der` crate sorts a decoded SET OF by insertion, quadratic in its
//! size). And it
//! rewrites the BER that streaming encoders emit — indefinite lengths,
//! non-minimal lengths, constructed OCTET STRINGs — into DER, so that a
//! certs-only response from such a peer decodes. Input that is already DER
//! comes out byte for byte unchanged.

use crate::error::{EstError, Result};

/// Deepest nesting accepted.
pub(crate) const MAX_DEPTH: usize = 32;

/// Rewrite one BER element (nothing may follow it) into DER form, checking
/// that no SET has more than `max_set` elements.
pub(crate) fn normalize(input: &[u8], max_set: usize) -> Result<Vec<u8>> {
    let mut p = Parser { input, pos: 0, max_set };
    let out = p
        .element(0)?
        .ok_or_else(|| err("end-of-contents marker at the top level"))?;
    if p.pos != input.len() {
        return Err(err(format!("{} bytes after the encoding", input.len() - p.pos)));
    }
    Ok(out)
}

/// Check depth and SET sizes of a DER (or BER) element without keeping a copy.
pub(crate) fn check(input: &[u8], max_set: usize) -> Result<()> {
    normalize(input, max_set).map(|_| ())
}

fn err(reason: impl std::fmt::Display) -> EstError {
    EstError::malformed("BER/DER encoding", reason)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    max_set: usize,
}

const UNIVERSAL_CONSTRUCTED_OCTET_STRING: u8 = 0x24;
const UNIVERSAL_SET: u8 = 0x31;

impl Parser<'_> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.input.get(self.pos).ok_or_else(|| err("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn at_eoc(&self) -> bool {
        self.input.get(self.pos..self.pos + 2) == Some(&[0, 0])
    }

    /// Parse one element and return its DER encoding; `None` for an
    /// end-of-contents marker (which the caller must expect).
    fn element(&mut self, depth: usize) -> Result<Option<Vec<u8>>> {
        if depth > MAX_DEPTH {
            return Err(err(format!("nested deeper than {MAX_DEPTH}")));
        }
        let tag_start = self.pos;
        let first = self.byte()?;
        if first & 0x1f == 0x1f {
            let mut n = 0;
            while self.byte()? & 0x80 != 0 {
                n += 1;
                if n >= 4 {
                    return Err(err("tag number too large"));
                }
            }
        }
        let tag = self.input.get(tag_start..self.pos).unwrap_or_default().to_vec();
        let constructed = first & 0x20 != 0;
        let len_byte = self.byte()?;
        let length = match len_byte {
            l if l < 0x80 => Some(usize::from(l)),
            0x80 => None,
            l => {
                let n = usize::from(l & 0x7f);
                if n > 4 {
                    return Err(err("length field longer than 4 bytes"));
                }
                let mut v = 0usize;
                for _ in 0..n {
                    v = (v << 8) | usize::from(self.byte()?);
                }
                Some(v)
            }
        };
        if first == 0 && len_byte == 0 {
            return Ok(None);
        }
        let end = match length {
            Some(l) => Some(
                self.pos
                    .checked_add(l)
                    .filter(|e| *e <= self.input.len())
                    .ok_or_else(|| err("truncated: a length runs past the end of the input"))?,
            ),
            None if constructed => None,
            None => return Err(err("indefinite length on a primitive element")),
        };
        if !constructed {
            let e = end.unwrap_or(self.pos);
            let content = self.input.get(self.pos..e).unwrap_or_default();
            self.pos = e;
            return Ok(Some(encode(&tag, content)));
        }
        let mut children: Vec<Vec<u8>> = Vec::new();
        loop {
            match end {
                Some(e) if self.pos >= e => break,
                None if self.at_eoc() => {
                    self.pos += 2;
                    break;
                }
                _ => {}
            }
            let child = self
                .element(depth + 1)?
                .ok_or_else(|| err("unexpected end-of-contents marker"))?;
            if let Some(e) = end {
                if self.pos > e {
                    return Err(err("an element runs past the end of its parent"));
                }
            }
            children.push(child);
            // SETs, and context-specific constructed elements (IMPLICIT
            // SET OFs such as a CSR's attributes), are bounded.
            if (first == UNIVERSAL_SET || first & 0xe0 == 0xa0) && children.len() > self.max_set {
                return Err(EstError::TooLarge {
                    what: "elements of a SET",
                    limit: self.max_set,
                });
            }
        }
        if first == UNIVERSAL_CONSTRUCTED_OCTET_STRING {
            // Chunked OCTET STRING: concatenate the (already flattened) chunks.
            let mut content = Vec::new();
            for c in &children {
                content.extend_from_slice(primitive_octets(c)?);
            }
            return Ok(Some(encode(&[0x04], &content)));
        }
        Ok(Some(encode(&tag, &children.concat())))
    }
}

/// Content of a DER OCTET STRING produced by [`Parser::element`].
fn primitive_octets(der: &[u8]) -> Result<&[u8]> {
    let (&tag, rest) = der.split_first().ok_or_else(|| err("empty chunk"))?;
    if tag != 0x04 {
        return Err(err("a chunk of a constructed OCTET STRING is not an OCTET STRING"));
    }
    let (&l, rest) = rest.split_first().ok_or_else(|| err("empty chunk"))?;
    let skip = if l < 0x80 { 0 } else { usize::from(l & 0x7f) };
    rest.get(skip..).ok_or_else(|| err("bad chunk length"))
}

/// TLV with a minimal DER length.
fn encode(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 5 + content.len());
    out.extend_from_slice(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Append a minimal DER length.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_is_unchanged() {
        let der = [0x30, 0x06, 0x31, 0x04, 0x02, 0x01, 0x01, 0x05, 0x00];
        assert!(normalize(&der, 8).is_err()); // length says 6, content is 7
        let der = [0x30, 0x07, 0x31, 0x05, 0x02, 0x01, 0x01, 0x05, 0x00];
        assert_eq!(normalize(&der, 8).unwrap(), der);
    }

    #[test]
    fn indefinite_and_chunked() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { 04 01 aa, 04 01 bb } }
        let ber = [0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0, 0, 0, 0];
        assert_eq!(normalize(&ber, 8).unwrap(), [0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb]);
        // Non-minimal length.
        assert_eq!(normalize(&[0x04, 0x81, 0x01, 0xaa], 8).unwrap(), [0x04, 0x01, 0xaa]);
    }

    #[test]
    fn bounds() {
        let mut set = vec![0x31, 0x0a];
        for _ in 0..5 {
            set.extend_from_slice(&[0x05, 0x00]);
        }
        assert!(normalize(&set, 5).is_ok());
        assert!(matches!(normalize(&set, 4), Err(EstError::TooLarge { .. })));
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        deep.extend(std::iter::repeat_n(0, 80));
        assert!(normalize(&deep, 4).is_err());
        assert!(normalize(&[0x04, 0x80, 0, 0], 4).is_err());
        assert!(normalize(&[0x30, 0x85, 1, 1, 1, 1, 1], 4).is_err());
        assert!(normalize(&[0, 0], 4).is_err());
        assert!(normalize(&[0x05, 0x00, 0x05], 4).is_err());
    }

    #[test]
    fn long_lengths() {
        let mut v = Vec::new();
        push_len(&mut v, 0x1234);
        assert_eq!(v, [0x82, 0x12, 0x34]);
    }
}
