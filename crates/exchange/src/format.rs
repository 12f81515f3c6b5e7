//! The two wire formats and the bounded, strict decode / stable encode.

use crate::error::{ExchangeError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest message accepted, in octets.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most entries in any list.
pub const MAX_LIST: usize = 64;
/// Longest text value, in octets (identifiers, URIs, reasons).
pub const MAX_TEXT: usize = 1024;
/// Longest lifetime or expiry accepted, in seconds (ten years): anything a
/// receiver adds to its clock stays far from overflow.
pub const MAX_LIFETIME: u64 = 10 * 365 * 24 * 3600;

/// A serialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/xml`.
    Xml,
}

impl Format {
    /// The media type written in Content-Type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }

    /// From a Content-Type or Accept value (parameters ignored; the
    /// oneM2M `vnd.onem2m-res+json/xml` types are accepted too).
    pub fn from_media_type(value: &str) -> Result<Format> {
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "application/vnd.onem2m-res+json" => Ok(Format::Json),
            "application/xml" | "text/xml" | "application/vnd.onem2m-res+xml" => Ok(Format::Xml),
            _ => Err(ExchangeError::MediaType(value.to_owned())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Xml => "XML",
        }
    }
}

/// A message of the exchange: its XML root element and its own checks.
pub trait Message: Serialize + DeserializeOwned {
    /// Root element name in XML, and the name used in errors.
    const NAME: &'static str;
    /// Range and consistency checks after parsing (and before encoding).
    fn validate(&self) -> Result<()>;
}

/// Encode `m` in `format`: one byte string per message and format.
///
/// The result may hold a key (a Credential response), so it is zeroized on
/// drop; the buffer is sized up front so that growing it leaves no copies.
pub fn encode<M: Message>(m: &M, format: Format) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    m.validate()?;
    const INITIAL: usize = 16 * 1024;
    match format {
        Format::Json => {
            let mut out = zeroize::Zeroizing::new(Vec::with_capacity(INITIAL));
            serde_json::to_writer(&mut *out, m).map_err(|e| ExchangeError::Encode(e.to_string()))?;
            Ok(out)
        }
        Format::Xml => {
            let mut out = zeroize::Zeroizing::new(String::with_capacity(INITIAL));
            let mut ser = quick_xml::se::Serializer::with_root(&mut *out, Some(M::NAME))
                .map_err(|e| ExchangeError::Encode(e.to_string()))?;
            ser.expand_empty_elements(false);
            m.serialize(ser).map_err(|e| ExchangeError::Encode(e.to_string()))?;
            Ok(zeroize::Zeroizing::new(std::mem::take(&mut *out).into_bytes()))
        }
    }
}

/// Decode a `format` message: bounded, strict, then validated.
pub fn decode<M: Message>(input: &[u8], format: Format) -> Result<M> {
    if input.len() > MAX_MESSAGE {
        return Err(ExchangeError::TooLarge(input.len()));
    }
    let text = std::str::from_utf8(input).map_err(|_| ExchangeError::NotUtf8)?;
    let syntax = |reason: String| ExchangeError::Syntax {
        format: format.name(),
        message: M::NAME,
        reason,
    };
    // Errors name the field they happened at ("Status: invalid type…").
    fn at<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> String {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    }
    let m: M = match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let m = serde_path_to_error::deserialize(&mut de).map_err(|e| syntax(at(e)))?;
            de.end().map_err(|e| syntax(e.to_string()))?;
            // What the typed parse lets through: a struct written as an array
            // (serde accepts both), and null for an absent member.
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?;
            check_json_shape(&v, "").map_err(syntax)?;
            m
        }
        Format::Xml => {
            check_xml_shape(text, M::NAME).map_err(syntax)?;
            let mut de = quick_xml::de::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| syntax(at(e)))?
        }
    };
    m.validate()?;
    Ok(m)
}

/// What serde does not see in XML: an XML declaration anywhere but first
/// or with an encoding other than UTF-8; DOCTYPE (no entity tricks);
/// processing instructions; attributes and namespace prefixes (none are
/// defined, and an undeclared prefix is a namespace error); the root
/// element's name; anything but whitespace and comments outside the root;
/// and nesting deeper than the schema needs.
fn check_xml_shape(text: &str, root: &str) -> core::result::Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut first = true;
    loop {
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        let was_first = std::mem::replace(&mut first, false);
        match &ev {
            Event::Decl(d) => {
                if !was_first {
                    return Err("an XML declaration must come first".into());
                }
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| e.to_string())?;
                    if !enc.eq_ignore_ascii_case("utf-8") {
                        return Err(format!("encoding {enc:?}: only UTF-8"));
                    }
                }
            }
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name().into_inner();
                if depth == 0 && seen_root {
                    return Err(format!("second root element <{name}>"));
                }
                if name.contains(':') {
                    return Err(format!("namespace prefix on <{name}>: none is defined"));
                }
                if depth == 0 {
                    if name != root {
                        return Err(format!("root element <{name}>, expected <{root}>"));
                    }
                    seen_root = true;
                }
                if e.attributes().next().is_some() {
                    return Err(format!("attribute on <{name}>: none are defined"));
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                    if depth > 4 {
                        return Err("elements nested deeper than the schema".into());
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth == 0 && !t.as_ref().chars().all(|c: char| c.is_ascii_whitespace()) => {
                return Err("text outside the root element".into());
            }
            Event::CData(_) | Event::GeneralRef(_) if depth == 0 => {
                return Err("content outside the root element".into());
            }
            Event::DocType(_) => return Err("DOCTYPE is not allowed".into()),
            Event::PI(_) => return Err("processing instructions are not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
    }
    if seen_root {
        Ok(())
    } else {
        Err("no root element".into())
    }
}

/// Members whose value is a list; everywhere else an array stands for a
/// struct, which this crate does not accept.
const ARRAY_MEMBERS: &[&str] = &["securityType", "eku", "directKey", "response", "trustAnchor"];

fn check_json_shape(v: &serde_json::Value, member: &str) -> core::result::Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Null => Err(format!("{member}: null is not a value here; leave the member out")),
        Value::Array(items) => {
            if !ARRAY_MEMBERS.contains(&member) {
                return Err(format!(
                    "{}: an array where an object or a value belongs",
                    if member.is_empty() { "message" } else { member }
                ));
            }
            items.iter().try_for_each(|i| match i {
                Value::Array(_) => Err(format!("{member}: nested array")),
                other => check_json_shape(other, "[item]"),
            })
        }
        Value::Object(map) => map.iter().try_for_each(|(k, v)| check_json_shape(v, k)),
        _ if member.is_empty() => Err("the message must be a JSON object".into()),
        _ => Ok(()),
    }
}

/// Bound a text field.
pub(crate) fn check_text(field: &'static str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(crate::error::invalid(field, "empty"));
    }
    if v.len() > MAX_TEXT {
        return Err(crate::error::invalid(field, format!("longer than {MAX_TEXT} octets")));
    }
    if let Some(c) = v.chars().find(|&c| forbidden_char(c)) {
        return Err(crate::error::invalid(
            field,
            format!(
                "character U+{:04X} is not allowed (controls, invisible formatting, line separators, noncharacters)",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// Characters refused in any text: controls; the invisible formatting and
/// bidirectional controls (log and display spoofing); line and paragraph
/// separators; the byte-order mark; noncharacters (not legal in XML).
fn forbidden_char(c: char) -> bool {
    let u = c as u32;
    c.is_control()
        || matches!(u, 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
        || (0xFDD0..=0xFDEF).contains(&u)
        || (u & 0xFFFE) == 0xFFFE
}

/// Bound a lifetime in seconds: 1 to [`MAX_LIFETIME`].
pub(crate) fn check_lifetime(field: &'static str, v: u64) -> Result<()> {
    if v == 0 || v > MAX_LIFETIME {
        return Err(crate::error::invalid(field, format!("{v} s: 1 to {MAX_LIFETIME} s")));
    }
    Ok(())
}

/// Bound a list.
pub(crate) fn check_list<T>(field: &'static str, v: &[T]) -> Result<()> {
    if v.len() > MAX_LIST {
        return Err(crate::error::invalid(field, format!("more than {MAX_LIST} entries")));
    }
    Ok(())
}
