//! `_elements` and `_summary`: the parts of a resource a client asked for.

use serde_json::{json, Map, Value};

use super::check::Checker;
use crate::Result;

/// Elements every subset keeps.
const ALWAYS: &[&str] = &["resourceType", "id", "meta"];

/// The stored `body` cut down as `_elements` or `_summary` ask; `None` when the
/// resource goes out whole (the caller then sends the stored text as it is).
pub fn shaped(body: &str, elements: &[String], summary: Option<&str>, checker: &Checker) -> Result<Option<Value>> {
    if elements.is_empty() && !matches!(summary, Some("true" | "text" | "data")) {
        return Ok(None);
    }
    let resource: Value = serde_json::from_str(body).map_err(anyhow::Error::from)?;
    let Value::Object(fields) = &resource else { return Ok(Some(resource)) };
    let keep: Box<dyn Fn(&str) -> bool> = if !elements.is_empty() {
        Box::new(|k: &str| named(elements, k))
    } else {
        match summary {
            Some("text") => Box::new(|k: &str| k == "text"),
            Some("data") => Box::new(|k: &str| k != "text"),
            _ => {
                let t = fields.get("resourceType").and_then(Value::as_str).unwrap_or("");
                let listed = checker.summary_elements(t);
                Box::new(move |k: &str| named(&listed, k))
            }
        }
    };
    let mut out: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| {
            let k = k.trim_start_matches('_');
            ALWAYS.contains(&k) || keep(k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    mark_subsetted(&mut out);
    Ok(Some(Value::Object(out)))
}

/// Whether `key` (a JSON name such as `deceasedBoolean`) is among `names`
/// (element names, choice elements as `deceased[x]`).
fn named(names: &[String], key: &str) -> bool {
    names.iter().any(|e| e == key || e.strip_suffix("[x]").is_some_and(|p| key.starts_with(p)))
}

fn mark_subsetted(out: &mut Map<String, Value>) {
    let meta = out.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        let tags = m.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(t) = tags {
            t.push(json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}));
        }
    }
}
