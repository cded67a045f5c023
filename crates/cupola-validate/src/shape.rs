//! The JSON shape of an element, from its definition: a repeating element
//! (`max` over 1) is an array, any other a single value; a complex type or a
//! backbone element is an object. The official JSON Schema says the first half
//! only for repeating elements and none of the second (its definitions carry no
//! `"type": "object"`), so without this an array of one where one value is
//! allowed would be stored as sent, and strict R4 parsers would fail on it.

use serde_json::Value;

use crate::defs::Element;
use crate::schema::short_json;
use crate::Issue;

/// An issue when `value` is an array where `el` has one value, or a single
/// value where `el` repeats.
pub(crate) fn cardinality(el: &Element, value: &Value, at: &str) -> Option<Issue> {
    match (el.many, value) {
        (true, Value::Array(_)) | (false, Value::Null) => None,
        (true, other) => Some(Issue::error(
            "structure",
            at.to_string(),
            format!("{at} repeats in FHIR R4: it must be a JSON array, found {}.", short_json(other)),
        )),
        (false, Value::Array(_)) => Some(Issue::error(
            "structure",
            at.to_string(),
            format!("{at} has at most one value in FHIR R4: it must not be a JSON array (send the value itself)."),
        )),
        (false, _) => None,
    }
}

/// The issue for a complex or backbone element whose value is not an object.
pub(crate) fn not_an_object(ty: &str, value: &Value, at: &str) -> Issue {
    let what = if ty.is_empty() || ty == "BackboneElement" || ty == "Element" { "an element" } else { ty };
    Issue::error(
        "structure",
        at.to_string(),
        format!("{at} must be a JSON object ({what}), found {}.", short_json(value)),
    )
}

/// `_name` beside a primitive: an object when the element has one value, an
/// array of objects and nulls (one per value) when it repeats.
pub(crate) fn primitive_extension(el: &Element, ext: &Value, at: &str) -> Option<Issue> {
    let name = at.rsplit('.').next().unwrap_or(at);
    let ext_at = format!("{}_{name}", at.strip_suffix(name).unwrap_or_default());
    let bad = |expected: &str| {
        Some(Issue::error(
            "structure",
            at.to_string(),
            format!("{ext_at} (the id and extensions of {at}) must be {expected}, found {}.", short_json(ext)),
        ))
    };
    match (el.many, ext) {
        (false, Value::Object(_)) => None,
        (false, _) => bad("a JSON object"),
        (true, Value::Array(items)) if items.iter().all(|i| i.is_object() || i.is_null()) => None,
        (true, _) => bad("a JSON array of objects and nulls, one per value"),
    }
}
