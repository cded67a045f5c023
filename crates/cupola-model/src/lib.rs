//! The one place cupola calls fhirbolt (FHIR R4 typed model, JSON and XML).
//!
//! fhirbolt's parse and write functions are generic and expand into a lot of
//! code in whichever crate calls them, so every call lives here behind plain,
//! non-generic functions that take and return `serde_json::Value` and text.
//!
//! All input goes JSON/XML → fhirbolt's generic `Element` → typed R4
//! `Resource` (strict) → `Element` → JSON/XML. Going through `Element` on both
//! sides has two reasons:
//! - fhirbolt 0.4.0 has a bug when it parses a typed resource straight from
//!   JSON or XML: after a nested resource (`Bundle.entry.resource`,
//!   `contained`, `Parameters.parameter.resource`) it forgets the input
//!   format and fails on the next sibling field (e.g. `entry.request.method`:
//!   `invalid type: string "POST", expected Code`). Deserializing the typed
//!   model from an `Element` is not affected (the format it switches to is
//!   the one it already reads).
//! - the heavy typed (de)serializers are instantiated once each, for the
//!   `Element` (de)serializer, not once per output format.

// Functions stay under clippy.toml's threshold (80 lines); CI denies warnings.
#![warn(clippy::too_many_lines)]

mod diag;
mod xhtml;

use std::panic::{catch_unwind, AssertUnwindSafe};

use fhirbolt::element::Element;
use fhirbolt::model::r4::Resource;
use fhirbolt::serde::{DeserializationConfig, DeserializationMode};
use fhirbolt::FhirReleases;
use serde_json::{Map, Value};

type R4Element = Element<{ FhirReleases::R4 }>;

/// Output style for [`json_to_xml`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XmlOptions {
    /// Indent the XML (two spaces per level). When false, no whitespace is
    /// written between elements; narratives are kept exactly as given.
    pub pretty: bool,
}

/// Parses a FHIR R4 resource (JSON value) into fhirbolt's typed R4 model in
/// strict mode and reports the first problem (unknown element, value of the
/// wrong type, missing required element) as a message. Where it can, the
/// message names the path of the offending element, e.g.
/// ``invalid value: yes, expected a boolean (wrong type of value at Patient.active)``.
/// Unlike fhirbolt alone, an array where one value belongs (or the reverse)
/// is an error too.
///
/// Nested resources (Bundle entries, `contained`, `Parameters`) are checked
/// too. The narrative XHTML is not checked here (see [`json_to_xml`]).
pub fn check_typed(resource: &Value) -> Result<(), String> {
    guard(|| {
        let prepared = Prepared::new(resource, false)?;
        parse_json_typed(prepared.value, resource, Walk::Always).map(|_| ())
    })
}

/// [`check_typed`] for a resource whose shape the official JSON Schema has already
/// accepted (single values vs arrays): the shape walk then runs only to locate a
/// parse error.
pub fn check_typed_after_schema(resource: &Value) -> Result<(), String> {
    guard(|| {
        let mut prepared = Prepared::new(resource, false)?;
        // Without a nested resource the direct typed parse is not affected by
        // fhirbolt's bug (crate docs) and skips building the `Element` tree, most of
        // the parse's time. What it refuses goes through the `Element` path, which
        // has the last word and says what is wrong.
        if !has_nested_resource(resource) {
            if fhirbolt::json::from_json_value::<Resource>(prepared.value, strict()).is_ok() {
                return Ok(());
            }
            prepared = Prepared::new(resource, false)?;
        }
        parse_json_typed(prepared.value, resource, Walk::Skip).map(|_| ())
    })
}

/// Whether an object below the top of `resource` has a `resourceType` (a Bundle
/// entry, a contained resource, a resource in `Parameters`).
fn has_nested_resource(resource: &Value) -> bool {
    fn below(v: &Value) -> bool {
        match v {
            Value::Object(o) => o.contains_key("resourceType") || o.values().any(below),
            Value::Array(a) => a.iter().any(below),
            _ => false,
        }
    }
    match resource {
        Value::Object(o) => o.iter().any(|(k, v)| k != "resourceType" && below(v)),
        _ => false,
    }
}

/// Whether the shape walk runs when fhirbolt's parse succeeds.
#[derive(Clone, Copy)]
enum Walk {
    Always,
    Skip,
}

/// Converts a FHIR R4 JSON resource to FHIR XML text (via fhirbolt's typed
/// model, so elements come out in the order the specification requires).
///
/// Decimals keep their exact text (`20.00` stays `20.00`). Narrative `<div>`
/// markup is copied unchanged and must be one well-formed XHTML `<div>`.
pub fn json_to_xml(resource: &Value, opts: XmlOptions) -> Result<String, String> {
    guard(|| {
        let prepared = Prepared::new(resource, true)?;
        let typed = parse_json_typed(prepared.value, resource, Walk::Always)?;
        let element: R4Element = fhirbolt::element::to_element(typed).map_err(|e| e.to_string())?;
        let raw = fhirbolt::xml::to_string(&element, None).map_err(|e| e.to_string())?;
        xhtml::finish_xml(&raw, &prepared.divs, opts.pretty)
    })
}

/// Converts FHIR XML text to a FHIR R4 JSON resource (via fhirbolt's typed
/// model, strict). Malformed XML, a non-FHIR namespace or unknown elements are
/// reported as errors. Narrative `<div>` markup is kept byte for byte (line
/// ends normalised to `\n`).
pub fn xml_to_json(xml: &str) -> Result<Value, String> {
    guard(|| {
        let extracted = xhtml::extract_divs(xml)?;
        let element: R4Element =
            fhirbolt::xml::from_str(&extracted.xml, strict()).map_err(|e| format!("invalid FHIR XML: {e}"))?;
        let typed: Resource =
            fhirbolt::element::from_element(element, strict()).map_err(|e| format!("invalid FHIR XML: {e}"))?;
        let element: R4Element = fhirbolt::element::to_element(typed).map_err(|e| e.to_string())?;
        let mut json = fhirbolt::json::to_json_value(element, None).map_err(|e| e.to_string())?;
        restore_divs(&mut json, &extracted.divs, &extracted.marker);
        Ok(json)
    })
}

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig { mode: DeserializationMode::Strict })
}

/// JSON → `Element` → typed resource (see the crate docs for why not
/// directly). `original` is the caller's value, used to say where a problem is.
fn parse_json_typed(prepared: Value, original: &Value, walk: Walk) -> Result<Resource, String> {
    let parsed = fhirbolt::json::from_json_value::<R4Element>(prepared, strict())
        .map_err(|e| e.to_string())
        .and_then(|element| fhirbolt::element::from_element(element, strict()).map_err(|e| e.to_string()));
    // fhirbolt accepts an array for a single value and the reverse; the walk
    // rejects those, and on errors it names the element. The caller may skip it
    // when the JSON Schema has already checked the shape (`Walk::Skip`).
    match (parsed, walk) {
        (Ok(r), Walk::Skip) => Ok(r),
        (parsed, _) => match (parsed, diag::locate(original)) {
            (Ok(r), None) => Ok(r),
            (Ok(_), Some(problem)) => Err(problem),
            (Err(e), Some(problem)) => Err(format!("{e} ({problem})")),
            (Err(e), None) => Err(e),
        },
    }
}

/// Runs a fhirbolt call so that a panic inside it becomes an error instead of
/// taking the request down.
fn guard<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err("internal error in the FHIR model library".to_string()))
}

/// A copy of the input made ready for fhirbolt.
struct Prepared {
    value: Value,
    /// Narratives taken out (when asked), by placeholder index.
    divs: Vec<String>,
}

impl Prepared {
    fn new(resource: &Value, take_divs: bool) -> Result<Self, String> {
        if !resource.is_object() {
            return Err("a FHIR resource must be a JSON object".into());
        }
        let mut divs = Vec::new();
        let value = prepare(resource, take_divs.then_some(&mut divs))?;
        Ok(Prepared { value, divs })
    }
}

/// Clones `v` with `resourceType` moved to the front of every object (fhirbolt
/// needs to see it before the other fields to know their types) and, if
/// `divs` is given, each narrative replaced by a placeholder.
fn prepare(v: &Value, mut divs: Option<&mut Vec<String>>) -> Result<Value, String> {
    Ok(match v {
        Value::Object(o) => {
            let mut out = Map::with_capacity(o.len());
            if let Some(rt) = o.get("resourceType") {
                out.insert("resourceType".into(), rt.clone());
            }
            for (k, val) in o {
                if k == "resourceType" {
                    continue;
                }
                let new = match (k.as_str(), val, divs.as_deref_mut()) {
                    ("div", Value::String(s), Some(list)) => {
                        list.push(xhtml::checked_div(s)?);
                        Value::String(xhtml::placeholder("", list.len() - 1))
                    }
                    _ => prepare(val, divs.as_deref_mut())?,
                };
                out.insert(k.clone(), new);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| prepare(x, divs.as_deref_mut())).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

/// Puts the narratives taken out by [`xhtml::extract_divs`] back.
fn restore_divs(v: &mut Value, divs: &[String], marker: &str) {
    match v {
        Value::Object(o) => {
            for (k, val) in o.iter_mut() {
                if let (true, Value::String(s)) = (k == "div", &*val) {
                    if let Some(orig) = xhtml::placeholder_index(s, marker).and_then(|i| divs.get(i)) {
                        *val = Value::String(orig.clone());
                    }
                    continue;
                }
                restore_divs(val, divs, marker);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| restore_divs(x, divs, marker)),
        _ => {}
    }
}
