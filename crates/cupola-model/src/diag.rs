//! Finds where in a JSON resource a problem is.
//!
//! fhirbolt's messages ("invalid type: boolean `true`, expected a string") do
//! not say which element is wrong, so we walk the JSON with fhirbolt's own type
//! hints (`ElementPath`) to name the first element that is unknown or has a
//! value of the wrong kind. The walk also catches what fhirbolt lets through
//! silently: an array where one value is expected and a lone value where an
//! array is expected.

use fhirbolt_shared::{path::ElementPath, FhirReleases};
use serde_json::{Map, Value};

const PRIMITIVE_CHILDREN: &[&str] = &["id", "extension", "value"];

/// Dotted path of the first unknown or wrongly typed element, if any is found,
/// with a short reason.
pub(crate) fn locate(resource: &Value) -> Option<String> {
    let obj = resource.as_object()?;
    let mut path = ElementPath::new(FhirReleases::R4);
    let mut names = Vec::new();
    walk_object(obj, &mut path, &mut names)
}

fn walk_object(obj: &Map<String, Value>, path: &mut ElementPath, names: &mut Vec<String>) -> Option<String> {
    let mut in_resource = false;
    // Only the outermost resource type starts the path; nested ones are named
    // by their position (e.g. `Bundle.entry[0].resource.active`).
    let named = names.is_empty();
    if path.is_empty() || path.current_element_is_resource() {
        if let Some(Value::String(rt)) = obj.get("resourceType") {
            path.push(rt);
            if named {
                names.push(rt.clone());
            }
            in_resource = true;
        }
    }
    let mut found = None;
    for (key, value) in obj {
        if in_resource && key == "resourceType" {
            continue;
        }
        let name = key.strip_prefix('_').unwrap_or(key);
        if !field_is_known(path, name) {
            found = Some(format!("unknown element {}", join(names, key)));
            break;
        }
        path.push(name);
        names.push(key.clone());
        found = walk_value(value, path, names);
        path.pop();
        names.pop();
        if found.is_some() {
            break;
        }
    }
    if in_resource {
        path.pop();
        if named {
            names.pop();
        }
    }
    found
}

fn walk_value(value: &Value, path: &mut ElementPath, names: &mut Vec<String>) -> Option<String> {
    match value {
        Value::Array(items) => {
            if !path.current_element_is_sequence() {
                return Some(format!("expected a single value, not an array, at {}", join(names, "")));
            }
            for (i, item) in items.iter().enumerate() {
                let last = names.pop().unwrap_or_default();
                names.push(format!("{last}[{i}]"));
                let found = match item {
                    Value::Object(o) => walk_object(o, path, names),
                    Value::Null => None,
                    Value::Array(_) => Some(format!("nested array at {}", join(names, ""))),
                    p => check_primitive(p, path, names),
                };
                names.pop();
                names.push(last);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Null => None,
        _ if path.current_element_is_sequence() => Some(format!("expected an array at {}", join(names, ""))),
        Value::Object(o) => walk_object(o, path, names),
        p => check_primitive(p, path, names),
    }
}

fn field_is_known(path: &ElementPath, name: &str) -> bool {
    if path.current_element_is_primitive() {
        PRIMITIVE_CHILDREN.contains(&name)
    } else {
        path.children().map(|s| s.contains(name)).unwrap_or(false)
    }
}

/// Mirrors the value checks fhirbolt applies to primitives.
fn check_primitive(value: &Value, path: &ElementPath, names: &[String]) -> Option<String> {
    let is_int = |n: &serde_json::Number| n.is_i64() || n.is_u64();
    let ok = if path.current_element_is_boolean() {
        match value {
            Value::Bool(_) => true,
            Value::String(s) => s.parse::<bool>().is_ok(),
            _ => false,
        }
    } else if path.current_element_is_integer()
        || path.current_element_is_integer64()
        || path.current_element_is_positive_integer()
        || path.current_element_is_unsigned_integer()
    {
        match value {
            Value::Number(n) => is_int(n),
            Value::String(s) => s.parse::<i64>().is_ok(),
            _ => false,
        }
    } else if path.current_element_is_decimal() {
        matches!(value, Value::Number(_) | Value::String(_))
    } else if path.current_element_is_primitive() || path.current_element() == Some("url") {
        // `Extension.url` is a plain string attribute, not a primitive element.
        matches!(value, Value::String(_))
    } else {
        // A complex element given as a bare value.
        false
    };
    if ok {
        None
    } else {
        Some(format!("wrong type of value at {}", join(names, "")))
    }
}

fn join(names: &[String], last: &str) -> String {
    let mut s = names.join(".");
    if !last.is_empty() {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(last);
    }
    s
}
