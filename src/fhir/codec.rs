//! Request and response bodies: FHIR JSON and FHIR XML (XML through fhirbolt, in the
//! `cupola-model` crate so that its heavy generic code is compiled once).

use serde_json::Value;

use crate::{Error, Result};

/// A body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

/// How to write a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub pretty: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output { format: Format::Json, pretty: false }
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }

    /// The format a MIME type or `_format` value names, if any.
    pub fn from_mime(mime: &str) -> Option<Format> {
        let m = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match m.as_str() {
            "json" | "application/fhir+json" | "application/json" | "application/json+fhir" => Some(Format::Json),
            "xml" | "application/fhir+xml" | "application/xml" | "text/xml" | "application/xml+fhir" => {
                Some(Format::Xml)
            }
            _ => None,
        }
    }
}

/// Chooses the response format: `_format` first, then `Accept`, else JSON.
pub fn negotiate(format_param: Option<&str>, pretty_param: Option<&str>, accept: Option<&str>) -> Result<Output> {
    let pretty = matches!(pretty_param, Some("true"));
    let format = match format_param {
        Some(f) => Format::from_mime(f).ok_or_else(|| {
            Error::NotAcceptable(format!(
                "_format={f} is not supported: use json, xml, application/fhir+json or application/fhir+xml"
            ))
        })?,
        None => accept.and_then(|a| a.split(',').filter_map(Format::from_mime).next()).unwrap_or(Format::Json),
    };
    Ok(Output { format, pretty })
}

/// Parses a request body into a JSON resource value.
pub fn parse_body(bytes: &[u8], content_type: Option<&str>) -> Result<Value> {
    let format = match content_type {
        Some(ct) => Format::from_mime(ct).ok_or_else(|| {
            Error::UnsupportedMedia(format!(
                "Content-Type {ct} is not supported: send application/fhir+json or application/fhir+xml"
            ))
        })?,
        None => {
            return Err(Error::UnsupportedMedia(
                "Content-Type is missing: send application/fhir+json or application/fhir+xml".into(),
            ))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("required", None, "the request body is empty; send a FHIR resource"));
    }
    let deepest = match format {
        Format::Json => super::depth::json_depth(bytes),
        Format::Xml => super::depth::xml_depth(&String::from_utf8_lossy(bytes)),
    };
    if deepest > super::depth::MAX_DEPTH {
        return Err(Error::invalid(
            "structure",
            None,
            format!("the body nests {deepest} levels deep; at most {} are accepted", super::depth::MAX_DEPTH),
        ));
    }
    match format {
        Format::Json => serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid("structure", None, format!("the body is not valid JSON: {e}"))),
        Format::Xml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::invalid("structure", None, "the XML body is not UTF-8"))?;
            cupola_model::xml_to_json(text)
                .map_err(|e| Error::invalid("structure", None, format!("the body is not valid FHIR XML: {e}")))
        }
    }
}

/// Writes a resource in the chosen format.
pub fn render(value: &Value, out: Output) -> Result<Vec<u8>> {
    let bytes = match (out.format, out.pretty) {
        (Format::Json, false) => serde_json::to_vec(value).map_err(anyhow::Error::from)?,
        (Format::Json, true) => serde_json::to_vec_pretty(value).map_err(anyhow::Error::from)?,
        (Format::Xml, pretty) => cupola_model::json_to_xml(value, cupola_model::XmlOptions { pretty })
            .map_err(|e| anyhow::anyhow!("writing XML: {e}"))?
            .into_bytes(),
    };
    Ok(bytes)
}

/// Writes a stored JSON body; plain JSON goes out as stored, without re-parsing.
pub fn render_stored(body: &str, out: Output) -> Result<Vec<u8>> {
    if out == Output::default() {
        return Ok(body.as_bytes().to_vec());
    }
    let value: Value = serde_json::from_str(body).map_err(anyhow::Error::from)?;
    render(&value, out)
}
