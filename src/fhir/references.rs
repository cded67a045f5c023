//! References inside a transaction Bundle: `urn:uuid:` placeholders replaced by the
//! ids the server assigned, and the literal references a resource makes.

use std::collections::HashMap;

use serde_json::Value;

/// Replaces every string equal to a key of `map` (an entry's `fullUrl`) by its value
/// (`Type/id`), anywhere in the resource.
pub fn rewrite(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(new) = map.get(s.as_str()) {
                *s = new.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, map)),
        Value::Object(fields) => fields.values_mut().for_each(|v| rewrite(v, map)),
        _ => {}
    }
}

/// Every `reference` string of every Reference in the resource, with its FHIRPath
/// location (`Appointment.participant[0].actor.reference`); contained resources are
/// walked too, their `#id` references are not returned.
pub fn literal_references(resource: &Value, root: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(resource, root.to_string(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                let p = format!("{path}.{k}");
                if k == "reference" {
                    if let Some(s) = v.as_str().filter(|s| !s.starts_with('#')) {
                        out.push((p, s.to_string()));
                        continue;
                    }
                }
                walk(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `Type/id` (optionally `/_history/n`, optionally under `base`) → (type, id).
pub fn split_relative<'a>(reference: &'a str, base: &str) -> Option<(&'a str, &'a str)> {
    let r = reference.strip_prefix(base).map(|r| r.trim_start_matches('/')).unwrap_or(reference);
    if r.contains("://") || r.starts_with("urn:") {
        return None;
    }
    let mut parts = r.split('/');
    let (t, id) = (parts.next()?, parts.next()?);
    let first = t.chars().next()?;
    (first.is_ascii_uppercase() && !id.is_empty()).then_some((t, id))
}

/// The type and id a literal reference points to, if it is a server-local one to
/// a type cupola serves.
pub fn local_target<'a>(reference: &'a str, base: &str) -> Option<(&'a str, &'a str)> {
    split_relative(reference, base).filter(|(t, _)| super::types::is_served(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_become_assigned_ids() {
        let mut r = json!({"subject": {"reference": "urn:uuid:1"}, "note": [{"text": "urn:uuid:2"}]});
        let map = HashMap::from([("urn:uuid:1".to_string(), "Patient/a".to_string())]);
        rewrite(&mut r, &map);
        assert_eq!(r["subject"]["reference"], "Patient/a");
        assert_eq!(r["note"][0]["text"], "urn:uuid:2");
    }

    #[test]
    fn references_are_found_with_their_path() {
        let r = json!({"participant": [{"actor": {"reference": "Patient/1"}}, {"actor": {"reference": "#c"}}]});
        assert_eq!(
            literal_references(&r, "Appointment"),
            vec![("Appointment.participant[0].actor.reference".into(), "Patient/1".into())]
        );
        assert_eq!(split_relative("Patient/1", "http://x/fhir"), Some(("Patient", "1")));
        assert_eq!(split_relative("http://x/fhir/Patient/1", "http://x/fhir"), Some(("Patient", "1")));
        assert_eq!(split_relative("http://other/Patient/1", "http://x/fhir"), None);
    }
}
