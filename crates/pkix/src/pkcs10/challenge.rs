//! The challengePassword attribute (PKCS#9, RFC 2985 §5.4.1): an enrolment
//! code (SCEP, RFC 8894 §2.2) or a TLS channel binding (EST, RFC 7030 §3.5).
//!
//! ```text
//! challengePassword ATTRIBUTE ::= {
//!         WITH SYNTAX DirectoryString {pkcs-9-ub-challengePassword}
//!         EQUALITY MATCHING RULE caseExactMatch
//!         SINGLE VALUE TRUE
//!         ID pkcs-9-at-challengePassword
//! }
//! pkcs-9-ub-challengePassword INTEGER ::= 255
//!
//! DirectoryString { INTEGER:maxSize } ::= CHOICE {
//!         teletexString TeletexString (SIZE (1..maxSize)),
//!         printableString PrintableString (SIZE (1..maxSize)),
//!         bmpString BMPString (SIZE (1..maxSize)),
//!         universalString UniversalString (SIZE (1..maxSize)),
//!         uTF8String UTF8String (SIZE (1..maxSize))
//! }
//! ```

use super::error::{Pkcs10Error, Result};
use super::oid;
use der::asn1::{Any, BmpString, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Tag, Tagged};
use x509_cert::attr::Attribute;
use zeroize::Zeroizing;

/// Longest challengePassword in characters (pkcs-9-ub-challengePassword).
pub const MAX_CHALLENGE: usize = 255;

/// The attribute for `password`: a PrintableString when every character
/// fits, else a UTF8String. Refuses an empty or over-long password.
pub fn encode(password: &str) -> Result<Attribute> {
    let chars = password.chars().count();
    if chars == 0 || chars > MAX_CHALLENGE {
        return Err(Pkcs10Error::invalid(
            "challengePassword",
            format!("must be 1 to {MAX_CHALLENGE} characters, not {chars}"),
        ));
    }
    let bad = |e: der::Error| Pkcs10Error::invalid("challengePassword", e);
    let value = match PrintableStringRef::new(password) {
        Ok(p) => Any::encode_from(&p).map_err(bad)?,
        Err(_) => Any::encode_from(&Utf8StringRef::new(password).map_err(bad)?).map_err(bad)?,
    };
    Ok(Attribute {
        oid: oid::CHALLENGE_PASSWORD,
        values: SetOfVec::try_from(vec![value]).map_err(bad)?,
    })
}

/// The password of a challengePassword attribute, which must have exactly
/// one value of at most [`MAX_CHALLENGE`] characters. An empty one is
/// read as empty rather than refused: SCEP clients have sent one with a
/// renewal (and enrolkit's own did), and whether it opens anything is the
/// policy's question.
pub fn decode(attr: &Attribute) -> Result<Zeroizing<String>> {
    let mut values = attr.values.iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(Pkcs10Error::malformed(
            "challengePassword",
            "must have exactly one value",
        ));
    };
    directory_string(v)
}

/// Text of a DirectoryString-like value.
fn directory_string(v: &Any) -> Result<Zeroizing<String>> {
    let bad = |reason: &str| Pkcs10Error::malformed("challengePassword", reason);
    let s = match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::VisibleString => {
            Zeroizing::new(std::str::from_utf8(v.value()).map_err(|_| bad("not UTF-8"))?.to_owned())
        }
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Zeroizing::new(v.value().iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            let b: BmpString = v.decode_as().map_err(|_| bad("bad BMPString"))?;
            Zeroizing::new(b.to_string())
        }
        t => return Err(bad(&format!("unexpected tag {t}"))),
    };
    if s.chars().count() > MAX_CHALLENGE {
        return Err(bad("longer than 255 characters"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn string_types() {
        let a = encode("AbC+/09=").unwrap();
        assert_eq!(a.values.get(0).unwrap().tag(), Tag::PrintableString);
        assert_eq!(decode(&a).unwrap().as_str(), "AbC+/09=");
        let a = encode("pässwörd_!").unwrap();
        assert_eq!(a.values.get(0).unwrap().tag(), Tag::Utf8String);
        assert_eq!(decode(&a).unwrap().as_str(), "pässwörd_!");
        // 255 two-byte characters are 255 characters.
        assert!(encode(&"é".repeat(255)).is_ok());
        assert!(encode("").is_err());
        assert!(encode(&"x".repeat(256)).is_err());
    }

    #[test]
    fn latin1_teletex_and_bmp() {
        let t = Any::new(Tag::TeletexString, vec![b'p', 0xe4, b's']).unwrap();
        let b = Any::encode_from(&BmpString::from_utf8("bmp-pw").unwrap()).unwrap();
        for (v, want) in [(t, "päs"), (b, "bmp-pw")] {
            let a = Attribute {
                oid: oid::CHALLENGE_PASSWORD,
                values: SetOfVec::try_from(vec![v]).unwrap(),
            };
            assert_eq!(decode(&a).unwrap().as_str(), want);
        }
        let empty = Attribute {
            oid: oid::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![Any::new(Tag::PrintableString, vec![]).unwrap()]).unwrap(),
        };
        assert_eq!(decode(&empty).unwrap().as_str(), "");
        let int = Any::new(Tag::Integer, vec![1]).unwrap();
        let a = Attribute {
            oid: oid::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![int]).unwrap(),
        };
        assert!(matches!(decode(&a), Err(Pkcs10Error::Malformed { .. })));
    }
}
