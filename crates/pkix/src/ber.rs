//! Bounded BER → DER normalisation (ITU-T X.690), run before the strict
//! `der` decoders, so that messages from peers that stream (OpenSSL
//! `-stream`, BouncyCastle, some HSM toolkits, libest) decode, and so that
//! no decoder is handed more than it can cheaply take.
//!
//! There is no ASN.1 type here: the input is any one BER element,
//!
//! ```text
//! Element ::= identifier octets, length octets, contents octets
//!             [, end-of-contents octets 00 00 when the length is indefinite]
//! ```
//!
//! # What is rewritten
//!
//! | X.690 | BER allows | DER form written |
//! |---|---|---|
//! | §8.1.3.6 | indefinite length (`80` … `00 00`) on a constructed element | definite length |
//! | §8.1.3.5, §10.1 | a length in more octets than needed | the minimal length |
//! | §8.7.3, §10.2 | a constructed OCTET STRING (segments, themselves possibly constructed) | one primitive OCTET STRING |
//! | §8.6.3, §10.2 | a constructed BIT STRING (only the last segment may have unused bits) | one primitive BIT STRING |
//! | §8.23.6, §10.2 | a constructed restricted character string (UTF8String, PrintableString, IA5String, BMPString…) | one primitive string |
//!
//! and one CMS rule: the `encryptedContent [0] IMPLICIT OCTET STRING` of an
//! `EncryptedContentInfo` (RFC 5652 §6.1), which streaming encoders send
//! as a constructed `[0]` of OCTET STRING segments, becomes one primitive
//! `[0]`. It is recognised by its shape, the third element of a SEQUENCE
//! that starts with an OBJECT IDENTIFIER and a SEQUENCE, a constructed `[0]`
//! holding only OCTET STRINGs:
//!
//! ```text
//! EncryptedContentInfo ::= SEQUENCE {
//!   contentType ContentType,
//!   contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
//!   encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
//! ```
//!
//! Everything else is copied unchanged: DER input comes out byte for byte.
//! Not done: sorting SET OF (X.690 §11.6) and SET components, or
//! canonicalising BOOLEAN, BIT STRING padding bits or times; the `der`
//! decoders that follow refuse what they do not accept.
//!
//! # What is refused
//!
//! Truncation, anything after the one element, an end-of-contents marker
//! where none may be, an indefinite length on a primitive element, a
//! length field over 4 octets, a tag number over 28 bits, a segment of a
//! constructed string of another type, input longer than
//! [`Limits::max_len`], nesting deeper than [`Limits::max_depth`], and
//! more than [`Limits::max_elements`] elements in a SET or in a
//! context-specific constructed element (which may be an IMPLICIT SET OF),
//! counted also inside OCTET STRINGs and BIT STRINGs whose content is
//! itself an encoding (extnValue, eContent, subjectPublicKey): `der` 0.7
//! sorts a decoded SET OF by insertion, quadratic in its size
//! (RustCrypto/formats#2319), so an unauthenticated message with one huge
//! SET would cost seconds of CPU.
//!
//! Nothing here panics, allocates more than a small multiple of the input,
//! or recurses deeper than [`Limits::max_depth`].

use std::fmt;

/// Deepest nesting accepted by [`Limits::DEFAULT`].
pub const MAX_DEPTH: usize = 48;

/// Most elements of one SET or context-specific constructed element
/// accepted by [`Limits::DEFAULT`]: the largest legitimate ones in
/// enrolment messages (signed attributes, certificate sets) hold a handful.
pub const MAX_ELEMENTS: usize = 256;

/// Longest input accepted by [`Limits::DEFAULT`] (16 MiB: a large CRL).
pub const MAX_LEN: usize = 16 * 1024 * 1024;

/// The bounds one call works within; callers tighten them for what they expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest input, and longest output, in bytes.
    pub max_len: usize,
    /// Deepest nesting of constructed elements (the outer element is depth 0).
    pub max_depth: usize,
    /// Most elements of one SET or context-specific constructed element.
    pub max_elements: usize,
}

impl Limits {
    /// [`MAX_LEN`], [`MAX_DEPTH`], [`MAX_ELEMENTS`].
    pub const DEFAULT: Limits = Limits {
        max_len: MAX_LEN,
        max_depth: MAX_DEPTH,
        max_elements: MAX_ELEMENTS,
    };

    /// These limits with another [`Limits::max_len`].
    pub const fn with_max_len(self, max_len: usize) -> Self {
        Limits { max_len, ..self }
    }

    /// These limits with another [`Limits::max_depth`].
    pub const fn with_max_depth(self, max_depth: usize) -> Self {
        Limits { max_depth, ..self }
    }

    /// These limits with another [`Limits::max_elements`].
    pub const fn with_max_elements(self, max_elements: usize) -> Self {
        Limits { max_elements, ..self }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why an input could not be normalised or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// A bound of [`Limits`] was exceeded.
    #[error("{what} is {actual}, more than the limit of {limit}")]
    TooLarge {
        /// What was too large: "input", "output", "elements of a SET".
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The size or count seen (for counts: the first one over the limit).
        actual: usize,
    },
    /// The encoding is broken: the reason names the X.690 rule.
    #[error("malformed BER: {0}")]
    Malformed(Reason),
}

/// What was wrong with a malformed encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(&'static str);

impl Reason {
    /// The reason as text.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

fn bad(reason: &'static str) -> BerError {
    BerError::Malformed(Reason(reason))
}

/// Re-encode `input`, one complete BER element with nothing after it, in
/// DER form (see the module docs for what is rewritten), within `limits`.
pub fn normalize(input: &[u8], limits: &Limits) -> Result<Vec<u8>, BerError> {
    check_len("input", input.len(), limits)?;
    let mut p = Parser { input, pos: 0, limits };
    let node = p
        .element(0)?
        .ok_or_else(|| bad("end-of-contents marker at the top level"))?;
    if p.pos != input.len() {
        return Err(bad("bytes after the element"));
    }
    let mut out = Vec::with_capacity(node.encoded_len());
    node.emit(&mut out);
    check_len("output", out.len(), limits)?;
    Ok(out)
}

/// Check that `input` (one BER or DER element, nothing after it) is well
/// formed and within `limits`, exactly as [`normalize`] would, keeping
/// nothing: use it before DER is decoded in place by `der`.
pub fn check(input: &[u8], limits: &Limits) -> Result<(), BerError> {
    normalize(input, limits).map(drop)
}

/// Append a minimal DER length (X.690 §10.1) for `len` content octets.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
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

fn check_len(what: &'static str, actual: usize, limits: &Limits) -> Result<(), BerError> {
    if actual > limits.max_len {
        return Err(BerError::TooLarge {
            what,
            limit: limits.max_len,
            actual,
        });
    }
    Ok(())
}

fn len_len(len: usize) -> usize {
    let mut v = Vec::new();
    push_len(&mut v, len);
    v.len()
}

/// What [`BerError::TooLarge`] names for nesting too deep.
const DEPTH: &str = "nesting depth";

const EOC: u8 = 0x00;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OBJECT_IDENTIFIER: u8 = 0x06;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const CONTEXT_0_CONSTRUCTED: u8 = 0xa0;
const CONTEXT_0_PRIMITIVE: u8 = 0x80;
const CONSTRUCTED: u8 = 0x20;

/// Universal string types that BER may send constructed (X.690 §8.23.6).
fn is_string_type(number: u8) -> bool {
    matches!(number, 3 | 4 | 12 | 18 | 19 | 20 | 21 | 22 | 25 | 26 | 27 | 28 | 30)
}

/// Whether a child (identifier octet `child`) of a constructed element
/// (identifier octet `parent`) counts towards [`Limits::max_elements`]:
/// every element of a SET; every element of a context-specific constructed
/// element but OCTET STRINGs, the segments of an IMPLICIT OCTET STRING
/// (a streamed `encryptedContent` may have thousands; no IMPLICIT SET OF
/// OCTET STRING occurs in CMS, PKIX, SCEP or EST).
fn is_counted(parent: u8, child: u8) -> bool {
    parent == SET || (parent & 0xe0 == 0xa0 && child & !CONSTRUCTED != OCTET_STRING)
}

/// An identifier and length read from the input.
struct Header {
    first: u8,
    tag_end: usize,
    /// `None` for the indefinite form.
    length: Option<usize>,
}

/// Read an identifier and a length at `*pos`.
fn header(input: &[u8], pos: &mut usize) -> Result<Header, BerError> {
    let first = byte(input, pos)?;
    if first & 0x1f == 0x1f {
        // High tag number form (X.690 §8.1.2.4): at most 4 subsequent octets.
        let mut n = 0;
        while byte(input, pos)? & 0x80 != 0 {
            n += 1;
            if n >= 4 {
                return Err(bad("tag number longer than 4 octets"));
            }
        }
    }
    let tag_end = *pos;
    let length = match byte(input, pos)? {
        l if l < 0x80 => Some(usize::from(l)),
        0x80 => None,
        l => {
            let n = usize::from(l & 0x7f);
            if n > 4 {
                return Err(bad("length field longer than 4 octets"));
            }
            let mut v = 0usize;
            for _ in 0..n {
                v = (v << 8) | usize::from(byte(input, pos)?);
            }
            Some(v)
        }
    };
    Ok(Header { first, tag_end, length })
}

fn byte(input: &[u8], pos: &mut usize) -> Result<u8, BerError> {
    let b = *input.get(*pos).ok_or_else(|| bad("truncated"))?;
    *pos += 1;
    Ok(b)
}

/// End of the content of a definite-length element starting at `pos`.
fn content_end(input: &[u8], pos: usize, length: usize) -> Result<usize, BerError> {
    pos.checked_add(length)
        .filter(|e| *e <= input.len())
        .ok_or_else(|| bad("truncated: a length runs past the end of the input"))
}

fn at_eoc(input: &[u8], pos: usize) -> bool {
    input.get(pos..pos.saturating_add(2)) == Some(&[EOC, 0][..])
}

fn too_many(limits: &Limits, count: usize) -> BerError {
    BerError::TooLarge {
        what: "elements of a SET or context-specific element",
        limit: limits.max_elements,
        actual: count,
    }
}

/// One element in DER form: its identifier octets and normalised content.
struct Node {
    tag: Vec<u8>,
    constructed: bool,
    content: Vec<u8>,
}

impl Node {
    fn encoded_len(&self) -> usize {
        self.tag.len() + len_len(self.content.len()) + self.content.len()
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag);
        push_len(out, self.content.len());
        out.extend_from_slice(&self.content);
    }

    fn first(&self) -> u8 {
        self.tag.first().copied().unwrap_or(EOC)
    }
}

struct Parser<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    limits: &'l Limits,
}

impl Parser<'_, '_> {
    /// One element in DER form; `None` for an end-of-contents marker.
    fn element(&mut self, depth: usize) -> Result<Option<Node>, BerError> {
        if depth > self.limits.max_depth {
            return Err(BerError::TooLarge {
                what: DEPTH,
                limit: self.limits.max_depth,
                actual: depth,
            });
        }
        let start = self.pos;
        let h = header(self.input, &mut self.pos)?;
        if h.first == EOC {
            return if h.length == Some(0) && h.tag_end == start + 1 {
                Ok(None)
            } else {
                Err(bad("tag 0 is reserved for end-of-contents"))
            };
        }
        let tag = self.input.get(start..h.tag_end).unwrap_or_default().to_vec();
        let constructed = h.first & CONSTRUCTED != 0;
        let end = match h.length {
            Some(l) => Some(content_end(self.input, self.pos, l)?),
            None if constructed => None,
            None => return Err(bad("indefinite length on a primitive element")),
        };
        if !constructed {
            let e = end.unwrap_or(self.pos);
            let content = self.input.get(self.pos..e).unwrap_or_default();
            self.pos = e;
            peek(content, h.first, depth, self.limits)?;
            return Ok(Some(Node {
                tag,
                constructed,
                content: content.to_vec(),
            }));
        }
        let mut children = Vec::new();
        let mut count = 0usize;
        loop {
            match end {
                Some(e) if self.pos >= e => break,
                None if at_eoc(self.input, self.pos) => {
                    self.pos += 2;
                    break;
                }
                _ => {}
            }
            if self.pos >= self.input.len() {
                return Err(bad("truncated: missing end-of-contents"));
            }
            let child = self
                .element(depth + 1)?
                .ok_or_else(|| bad("end-of-contents marker inside a definite length"))?;
            if end.is_some_and(|e| self.pos > e) {
                return Err(bad("an element runs past the end of its parent"));
            }
            if is_counted(h.first, child.first()) {
                count += 1;
                if count > self.limits.max_elements {
                    return Err(too_many(self.limits, count));
                }
            }
            children.push(child);
        }
        if h.first & 0xe0 == CONSTRUCTED && is_string_type(h.first & 0x1f) {
            return join_segments(h.first & !CONSTRUCTED, &children, depth, self.limits).map(Some);
        }
        if h.first == SEQUENCE {
            encrypted_content_info(&mut children)?;
        }
        let mut content = Vec::with_capacity(children.iter().map(Node::encoded_len).sum());
        for c in &children {
            c.emit(&mut content);
        }
        Ok(Some(Node {
            tag,
            constructed,
            content,
        }))
    }
}

/// A constructed string's segments (already joined if they were constructed
/// themselves) as one primitive string of type `primitive`.
fn join_segments(primitive: u8, segments: &[Node], depth: usize, limits: &Limits) -> Result<Node, BerError> {
    let mut content = Vec::new();
    if primitive == BIT_STRING {
        // Each segment: one octet of unused bits, then the bits; only the last may leave bits unused.
        let mut unused = 0u8;
        for (i, s) in segments.iter().enumerate() {
            if s.first() != BIT_STRING {
                return Err(bad("a segment of a constructed BIT STRING is not a BIT STRING"));
            }
            let (&u, bits) = s.content.split_first().ok_or_else(|| bad("empty BIT STRING segment"))?;
            if u > 7 || (u != 0 && bits.is_empty()) || (u != 0 && i + 1 != segments.len()) {
                return Err(bad("unused bits in a BIT STRING segment other than the last"));
            }
            unused = u;
            content.extend_from_slice(bits);
        }
        content.insert(0, unused);
    } else {
        for s in segments {
            if s.first() != primitive || s.tag.len() != 1 {
                return Err(bad("a segment of a constructed string is of another type"));
            }
            content.extend_from_slice(&s.content);
        }
    }
    // What the segments held together may be an encoding: bound it as any other string.
    peek(&content, primitive, depth, limits)?;
    Ok(Node {
        tag: vec![primitive],
        constructed: false,
        content,
    })
}

/// RFC 5652 §6.1: a chunked `encryptedContent [0] IMPLICIT OCTET STRING`
/// (third element of SEQUENCE { OID, SEQUENCE, [0] { OCTET STRING… } })
/// becomes one primitive `[0]`.
fn encrypted_content_info(children: &mut [Node]) -> Result<(), BerError> {
    let [oid, alg, last] = children else { return Ok(()) };
    if oid.first() != OBJECT_IDENTIFIER
        || alg.first() != SEQUENCE
        || last.tag != [CONTEXT_0_CONSTRUCTED]
        || !last.constructed
    {
        return Ok(());
    }
    // The children of `last` are already DER: read them back.
    let mut joined = Vec::with_capacity(last.content.len());
    let mut pos = 0;
    while pos < last.content.len() {
        let h = header(&last.content, &mut pos)?;
        let l = h.length.ok_or_else(|| bad("indefinite length in normalised content"))?;
        let e = content_end(&last.content, pos, l)?;
        if h.first != OCTET_STRING {
            return Ok(());
        }
        joined.extend_from_slice(last.content.get(pos..e).unwrap_or_default());
        pos = e;
    }
    *last = Node {
        tag: vec![CONTEXT_0_PRIMITIVE],
        constructed: false,
        content: joined,
    };
    Ok(())
}

/// Count the elements of encodings held in an OCTET STRING or BIT STRING
/// (`first` is the string's identifier octet). Content that does not parse
/// is not an encoding and is left alone; only a bound exceeded is an error.
fn peek(content: &[u8], first: u8, depth: usize, limits: &Limits) -> Result<(), BerError> {
    let inner = match first {
        OCTET_STRING => content,
        BIT_STRING => content.get(1..).unwrap_or_default(),
        _ => return Ok(()),
    };
    if inner.first().is_none_or(|b| b & CONSTRUCTED == 0) {
        return Ok(());
    }
    let mut p = Parser {
        input: inner,
        pos: 0,
        limits,
    };
    while p.pos < inner.len() {
        match p.element(depth + 1) {
            Ok(Some(_)) => {}
            // Nested too deep to look at, or not an encoding: opaque.
            Err(BerError::TooLarge { what: DEPTH, .. }) | Err(BerError::Malformed(_)) | Ok(None) => break,
            Err(e @ BerError::TooLarge { .. }) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
