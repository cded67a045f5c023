//! `_elements` and `_summary`: the parts of a resource a client asked for.

use serde_json::{json, Map, Value};

/// Elements every summary keeps.
const ALWAYS: &[&str] = &["resourceType", "id", "meta"];

/// Keeps only the named top-level elements (plus id and meta) and tags the result
/// SUBSETTED, as the specification asks.
pub fn select(resource: &Value, elements: &[String]) -> Value {
    let Value::Object(fields) = resource else {
        return resource.clone();
    };
    let keep = |k: &str| {
        ALWAYS.contains(&k)
            || elements
                .iter()
                .any(|e| e == k || e.strip_suffix("[x]").is_some_and(|p| k.starts_with(p)))
    };
    let mut out: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| keep(k.trim_start_matches('_')))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    mark_subsetted(&mut out);
    Value::Object(out)
}

/// `_summary=text`: id, meta, text and the mandatory top-level elements we cannot
/// know here, so the narrative and identity only; `_summary=data`: everything but text.
pub fn summary(resource: &Value, mode: &str) -> Value {
    let Value::Object(fields) = resource else {
        return resource.clone();
    };
    let mut out: Map<String, Value> = match mode {
        "text" => fields
            .iter()
            .filter(|(k, _)| ALWAYS.contains(&k.as_str()) || k.as_str() == "text")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        "data" => fields
            .iter()
            .filter(|(k, _)| k.as_str() != "text")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => return resource.clone(),
    };
    mark_subsetted(&mut out);
    Value::Object(out)
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
