//! Bounded BER → DER normalisation, so that messages from peers that stream
//! (OpenSSL `-stream`, BouncyCastle, some HSM toolkits) can be decoded by the
//! strict `der` crate.
//!
//! Handled: indefinite lengths, non-minimal length encodings, constructed
//! (chunked) OCTET STRINGs, and the chunked `[0] IMPLICIT OCTET STRING` of a
//! CMS EncryptedContentInfo (recognised by its position: the third element of
//! a SEQUENCE that starts with an OID and an AlgorithmIdentifier). Everything
//! else is copied unchanged. Depth and size are bounded.

use crate::error::{Result, ScepError};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 48;

struct Tlv<'a> {
    tag: &'a [u8],
    constructed: bool,
    /// Normalised content.
    content: Vec<u8>,
    /// For constructed elements: the normalised children (tag byte, content).
    children: Vec<(u8, usize, usize)>,
}

/// Re-encode `input` (one complete BER element, nothing after it) as DER-style definite lengths.
pub fn normalize(input: &[u8], limit: usize) -> Result<Vec<u8>> {
    if input.len() > limit {
        return Err(ScepError::TooLarge {
            what: "message",
            limit,
            actual: input.len(),
        });
    }
    let mut pos = 0;
    let tlv = parse(input, &mut pos, 0)?;
    if pos != input.len() {
        return Err(ScepError::Encoding(format!(
            "{} trailing bytes after the message",
            input.len() - pos
        )));
    }
    let mut out = Vec::with_capacity(input.len());
    emit(&tlv, &mut out);
    Ok(out)
}

fn err(msg: &str) -> ScepError {
    ScepError::Encoding(msg.to_owned())
}

fn byte(input: &[u8], pos: &mut usize) -> Result<u8> {
    let b = *input.get(*pos).ok_or_else(|| err("truncated"))?;
    *pos += 1;
    Ok(b)
}

fn parse<'a>(input: &'a [u8], pos: &mut usize, depth: usize) -> Result<Tlv<'a>> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let start = *pos;
    let first = byte(input, pos)?;
    if first & 0x1f == 0x1f {
        // High tag number form: at most 4 continuation bytes.
        let mut n = 0;
        loop {
            let b = byte(input, pos)?;
            n += 1;
            if n > 4 {
                return Err(err("tag number too large"));
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let tag = input.get(start..*pos).ok_or_else(|| err("truncated"))?;
    let constructed = first & 0x20 != 0;
    let lb = byte(input, pos)?;
    let len: Option<usize> = if lb < 0x80 {
        Some(lb as usize)
    } else if lb == 0x80 {
        None
    } else {
        let n = (lb & 0x7f) as usize;
        if n > 4 {
            return Err(err("length field too long"));
        }
        let mut l: usize = 0;
        for _ in 0..n {
            l = (l << 8) | byte(input, pos)? as usize;
        }
        Some(l)
    };
    if !constructed {
        let l = len.ok_or_else(|| err("indefinite length on a primitive element"))?;
        let end = pos.checked_add(l).ok_or_else(|| err("length overflow"))?;
        let content = input
            .get(*pos..end)
            .ok_or_else(|| err("truncated: length exceeds the input"))?
            .to_vec();
        *pos = end;
        return Ok(Tlv {
            tag,
            constructed,
            content,
            children: Vec::new(),
        });
    }
    let end = match len {
        Some(l) => {
            let e = pos.checked_add(l).ok_or_else(|| err("length overflow"))?;
            if e > input.len() {
                return Err(err("truncated: length exceeds the input"));
            }
            Some(e)
        }
        None => None,
    };
    let mut kids: Vec<Tlv<'a>> = Vec::new();
    loop {
        match end {
            Some(e) if *pos >= e => {
                if *pos > e {
                    return Err(err("child overruns its parent"));
                }
                break;
            }
            None if input.get(*pos..*pos + 2) == Some(&[0, 0]) => {
                *pos += 2;
                break;
            }
            _ => {}
        }
        if *pos >= input.len() {
            return Err(err("truncated: missing end-of-contents"));
        }
        let child = parse(input, pos, depth + 1)?;
        if let Some(e) = end {
            if *pos > e {
                return Err(err("child overruns its parent"));
            }
        }
        kids.push(child);
    }
    // Constructed OCTET STRING: concatenate chunks into a primitive one.
    if first == 0x24 {
        let mut content = Vec::new();
        for k in &kids {
            if k.tag != [0x04] {
                return Err(err("constructed OCTET STRING holds a non-OCTET STRING"));
            }
            content.extend_from_slice(&k.content);
        }
        return Ok(Tlv {
            tag: &[0x04],
            constructed: false,
            content,
            children: Vec::new(),
        });
    }
    // EncryptedContentInfo: SEQUENCE { OID, SEQUENCE, [0] IMPLICIT OCTET STRING (chunked) }.
    if first == 0x30 && kids.len() == 3 {
        let shape = kids.first().map(|k| k.tag == [0x06]).unwrap_or(false)
            && kids.get(1).map(|k| k.tag == [0x30]).unwrap_or(false);
        if shape {
            if let Some(last) = kids.get_mut(2) {
                if last.tag == [0xa0] && last.constructed && last.children.iter().all(|(t, _, _)| *t == 0x04) {
                    let mut content = Vec::new();
                    for (_, s, e) in &last.children {
                        content.extend_from_slice(last.content.get(*s..*e).ok_or_else(|| err("internal"))?);
                    }
                    *last = Tlv {
                        tag: &[0x80],
                        constructed: false,
                        content,
                        children: Vec::new(),
                    };
                }
            }
        }
    }
    let mut content = Vec::new();
    let mut children = Vec::with_capacity(kids.len());
    for k in &kids {
        let before = content.len();
        emit(k, &mut content);
        let hdr = header_len(k);
        children.push((k.tag.first().copied().unwrap_or(0), before + hdr, content.len()));
    }
    Ok(Tlv {
        tag,
        constructed,
        content,
        children,
    })
}

fn header_len(t: &Tlv<'_>) -> usize {
    t.tag.len() + length_len(t.content.len())
}

fn length_len(l: usize) -> usize {
    if l < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - l.leading_zeros() as usize / 8)
    }
}

fn emit(t: &Tlv<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(t.tag);
    let l = t.content.len();
    if l < 0x80 {
        out.push(l as u8);
    } else {
        let bytes = l.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let sig = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | sig.len() as u8);
        out.extend_from_slice(sig);
    }
    out.extend_from_slice(&t.content);
}

/// Most elements accepted in one SET OF. `der` 0.7 sorts a SET OF with an
/// insertion sort when decoding (quadratic: RustCrypto/formats#2319, fixed in
/// the 0.8 line), so an unauthenticated 256 KiB message with one huge SET
/// would cost tens of seconds of CPU. SCEP's largest legitimate SETs (signed
/// attributes, certificate sets) hold a handful of elements.
pub const MAX_SET_ELEMENTS: usize = 256;

/// Check, without decoding, that no SET in `input` (BER or DER) holds more
/// than [`MAX_SET_ELEMENTS`] elements, looking also inside OCTET STRINGs and
/// BIT STRINGs that themselves hold an encoding (extensions, keys,
/// encapsulated content). Call before handing attacker input to `der`.
pub fn check_set_sizes(input: &[u8]) -> Result<()> {
    let mut pos = 0;
    while pos < input.len() {
        scan(input, &mut pos, 0, true)?;
    }
    Ok(())
}

/// Walk one element. Structural errors are returned when `strict` (the outer
/// input); inside strings they only mean "not an encoding" and stop the walk.
fn scan(input: &[u8], pos: &mut usize, depth: usize, strict: bool) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let first = byte(input, pos)?;
    if first & 0x1f == 0x1f {
        let mut n = 0;
        while byte(input, pos)? & 0x80 != 0 {
            n += 1;
            if n > 4 {
                return Err(err("tag number too large"));
            }
        }
    }
    let lb = byte(input, pos)?;
    let len = match lb {
        l if l < 0x80 => Some(l as usize),
        0x80 => None,
        l => {
            let n = (l & 0x7f) as usize;
            if n > 4 {
                return Err(err("length field too long"));
            }
            let mut v = 0usize;
            for _ in 0..n {
                v = (v << 8) | byte(input, pos)? as usize;
            }
            Some(v)
        }
    };
    let constructed = first & 0x20 != 0;
    let end = match len {
        Some(l) => Some(
            pos.checked_add(l)
                .filter(|e| *e <= input.len())
                .ok_or_else(|| err("truncated: length exceeds the input"))?,
        ),
        None if constructed => None,
        None => return Err(err("indefinite length on a primitive element")),
    };
    if !constructed {
        let e = end.unwrap_or(*pos);
        let content = input.get(*pos..e).unwrap_or(&[]);
        *pos = e;
        // Strings that carry an encoding (extnValue, eContent, subjectPublicKey…).
        let inner = match first {
            0x04 => content,
            0x03 => content.get(1..).unwrap_or(&[]),
            _ => &[],
        };
        if inner.first().is_some_and(|b| b & 0x20 != 0) {
            let mut p = 0;
            while p < inner.len() {
                match scan(inner, &mut p, depth + 1, false) {
                    Ok(()) => {}
                    Err(e @ ScepError::TooLarge { .. }) => return Err(e),
                    Err(_) => break,
                }
            }
        }
        return Ok(());
    }
    let mut count = 0usize;
    loop {
        match end {
            Some(e) if *pos >= e => break,
            None if input.get(*pos..*pos + 2) == Some(&[0, 0]) => {
                *pos += 2;
                break;
            }
            _ => {}
        }
        if *pos >= input.len() {
            return Err(err("truncated"));
        }
        scan(input, pos, depth + 1, strict)?;
        count += 1;
        if first == 0x31 && count > MAX_SET_ELEMENTS {
            return Err(ScepError::TooLarge {
                what: "SET OF element count",
                limit: MAX_SET_ELEMENTS,
                actual: count,
            });
        }
        if let Some(e) = end {
            if *pos > e {
                return Err(err("child overruns its parent"));
            }
        }
    }
    let _ = strict;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_sets_are_refused_also_inside_octet_strings() {
        let mut set = vec![0x31, 0x82];
        let n = MAX_SET_ELEMENTS + 1;
        let len = n * 2;
        set.extend([(len >> 8) as u8, len as u8]);
        for _ in 0..n {
            set.extend([0x05, 0x00]);
        }
        assert!(matches!(check_set_sizes(&set), Err(ScepError::TooLarge { .. })));
        let mut wrapped = vec![0x04, 0x82, (set.len() >> 8) as u8, set.len() as u8];
        wrapped.extend(&set);
        assert!(matches!(check_set_sizes(&wrapped), Err(ScepError::TooLarge { .. })));
        let small = [0x31, 0x04, 0x05, 0x00, 0x05, 0x00];
        check_set_sizes(&small).unwrap();
        // Strings that are not encodings are opaque.
        check_set_sizes(&[0x04, 0x03, 0x31, 0xff, 0x00]).unwrap();
    }

    #[test]
    fn der_passes_through_unchanged() {
        let der = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa];
        assert_eq!(normalize(&der, 100).unwrap(), der);
    }

    #[test]
    fn indefinite_and_chunked_octets_become_der() {
        // SEQUENCE (indef) { OCTET STRING (constructed, indef) { 04 01 aa, 04 01 bb } }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(normalize(&ber, 100).unwrap(), [0x30, 0x04, 0x04, 0x02, 0xaa, 0xbb]);
    }

    #[test]
    fn encrypted_content_info_chunks_are_joined() {
        // SEQUENCE { OID 1.2, SEQUENCE {}, [0] (indef) { 04 01 aa 04 01 bb } }
        let ber = [
            0x30, 0x80, 0x06, 0x01, 0x2a, 0x30, 0x00, 0xa0, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0, 0, 0, 0,
        ];
        assert_eq!(
            normalize(&ber, 100).unwrap(),
            [0x30, 0x09, 0x06, 0x01, 0x2a, 0x30, 0x00, 0x80, 0x02, 0xaa, 0xbb]
        );
    }

    #[test]
    fn non_minimal_length_is_fixed_and_long_lengths_work() {
        assert_eq!(normalize(&[0x04, 0x81, 0x01, 0x07], 10).unwrap(), [0x04, 0x01, 0x07]);
        let mut big = vec![0x04, 0x82, 0x01, 0x00];
        big.extend(std::iter::repeat_n(1u8, 256));
        assert_eq!(normalize(&big, 1000).unwrap(), big);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x30, 0x80, 0x02, 0x01, 0x01],
            &[0x04, 0x80, 0x00, 0x00],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
            &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x1f, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00],
            &[0x24, 0x03, 0x02, 0x01, 0x00],
            &[0x02, 0x01, 0x00, 0xff],
        ] {
            assert!(normalize(bad, 1000).is_err(), "{bad:02x?}");
        }
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend([0x30, 0x80]);
        }
        assert!(normalize(&deep, 1000).is_err());
        assert!(matches!(normalize(&[0; 11], 10), Err(ScepError::TooLarge { .. })));
    }
}
