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
pub fn encode<M: Message>(m: &M, format: Format) -> Result<Vec<u8>> {
    m.validate()?;
    match format {
        Format::Json => serde_json::to_vec(m).map_err(|e| ExchangeError::Encode(e.to_string())),
        Format::Xml => {
            let mut out = String::new();
            let mut ser = quick_xml::se::Serializer::with_root(&mut out, Some(M::NAME))
                .map_err(|e| ExchangeError::Encode(e.to_string()))?;
            ser.expand_empty_elements(false);
            m.serialize(ser).map_err(|e| ExchangeError::Encode(e.to_string()))?;
            Ok(out.into_bytes())
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

/// What serde does not see in XML: the root element's name, DOCTYPE (no
/// entity tricks), attributes (refused: none are defined), processing
/// instructions other than the XML declaration, and nesting deeper than
/// the schema needs.
fn check_xml_shape(text: &str, root: &str) -> core::result::Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) if depth == 0 && seen_root => {
                return Err(format!("second root element <{}>", e.name().into_inner()))
            }
            ev @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(e) | Event::Empty(e)) = &ev else {
                    continue;
                };
                if depth == 0 {
                    if e.name().into_inner() != root {
                        return Err(format!("root element <{}>, expected <{root}>", e.name().into_inner()));
                    }
                    seen_root = true;
                }
                if e.attributes().next().is_some() {
                    return Err(format!("attribute on <{}>: none are defined", e.name().into_inner()));
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                    if depth > 4 {
                        return Err("elements nested deeper than the schema".into());
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
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

/// Bound a text field.
pub(crate) fn check_text(field: &'static str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(crate::error::invalid(field, "empty"));
    }
    if v.len() > MAX_TEXT {
        return Err(crate::error::invalid(field, format!("longer than {MAX_TEXT} octets")));
    }
    if v.chars().any(char::is_control) {
        return Err(crate::error::invalid(field, "control characters"));
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
