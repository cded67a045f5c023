//! The StructureDefinition walk: minimum cardinality, required bindings and
//! calendar dates, element by element, plus nested resources.

use serde_json::{Map, Value};

use crate::defs::{Element, Key, TypeDef};
use crate::narrative;
use crate::path::{child, indexed};
use crate::primitive;
use crate::schema::short_json;
use crate::shape;
use crate::terminology::Verdict;
use crate::{Issue, Validator};
use cupola_types::dates;

/// Deeper than this, the walk stops (serde_json's own parser stops at 128).
const MAX_DEPTH: usize = 200;

pub(crate) struct Walker<'v> {
    pub(crate) validator: &'v Validator,
    pub(crate) out: Vec<Issue>,
}

impl Walker<'_> {
    /// Walks the content of element `elem` of `td` found in `obj` at `expr`.
    pub(crate) fn object(&mut self, td: &TypeDef, elem: usize, obj: &Map<String, Value>, expr: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.out.push(Issue::error(
                "structure",
                expr.to_string(),
                format!("{expr} is nested too deeply (more than {MAX_DEPTH} levels)."),
            ));
            return;
        }
        let Some(element) = td.elements.get(elem) else {
            return;
        };
        for &c in &element.children {
            let Some(child_el) = td.elements.get(c) else {
                continue;
            };
            let found = self.child_values(td, child_el, obj, expr, depth);
            self.child_count(child_el, &found, expr);
        }
    }

    /// Walks the values of `el` in `obj` (under each of its keys: a choice element
    /// has one per type, each with its `_` key of extensions); the keys present.
    fn child_values<'e>(
        &mut self,
        td: &TypeDef,
        el: &'e Element,
        obj: &Map<String, Value>,
        expr: &str,
        depth: usize,
    ) -> Vec<&'e Key> {
        let mut found: Vec<&Key> = Vec::new();
        for key in &el.keys {
            self.empty_arrays(key, obj, expr);
            let value = obj.get(&key.json).filter(|v| present(v));
            let ext = obj.get(&key.ext).filter(|v| present(v));
            if value.is_none() && ext.is_none() {
                continue;
            }
            found.push(key);
            let at = child(expr, &key.json);
            if let Some(value) = value {
                self.values(td, el, key, value, &at, depth);
            }
            if let Some(ext) = ext {
                self.primitive_extensions(el, ext, &at, depth);
            }
        }
        found
    }

    /// An element written as `[]`, under its key or its `_` key.
    fn empty_arrays(&mut self, key: &Key, obj: &Map<String, Value>, expr: &str) {
        for name in [&key.json, &key.ext] {
            if obj.get(name).is_some_and(|v| matches!(v, Value::Array(a) if a.is_empty())) {
                self.out.push(Issue::error(
                    "structure",
                    child(expr, name),
                    format!(
                        "{} is an empty array: FHIR JSON leaves out an element that has no values.",
                        child(expr, name)
                    ),
                ));
            }
        }
    }

    /// `el` present under `found` keys: fewer values than its minimum, or more than
    /// one type of a choice element.
    fn child_count(&mut self, el: &Element, found: &[&Key], expr: &str) {
        if found.is_empty() && el.min >= 1 {
            let name = if el.choice { format!("{}[x]", el.name) } else { el.name.clone() };
            self.out.push(Issue::error(
                "required",
                child(expr, &el.name),
                format!(
                    "Missing required element '{name}' in {expr}: FHIR R4 requires at least {} value{}.",
                    el.min,
                    if el.min == 1 { "" } else { "s" }
                ),
            ));
        }
        if found.len() > 1 {
            let keys: Vec<&str> = found.iter().map(|k| k.json.as_str()).collect();
            self.out.push(Issue::error(
                "structure",
                child(expr, &el.name),
                format!(
                    "Only one type of the choice element '{}[x]' may be present in {expr}, found: {}.",
                    el.name,
                    keys.join(", ")
                ),
            ));
        }
    }

    fn values(&mut self, td: &TypeDef, el: &Element, key: &Key, value: &Value, at: &str, depth: usize) {
        // A wrong shape says everything there is to say about this element: its
        // content is not walked, so one mistake gives one issue.
        if let Some(issue) = shape::cardinality(el, value, at) {
            self.out.push(issue);
            return;
        }
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(td, el, key, item, &indexed(at, i), depth);
                }
            }
            single => self.value(td, el, key, single, at, depth),
        }
    }

    fn value(&mut self, td: &TypeDef, el: &Element, key: &Key, value: &Value, at: &str, depth: usize) {
        let defs = &self.validator.defs;
        if matches!(value, Value::Object(o) if o.is_empty()) {
            self.out.push(Issue::error(
                "invalid",
                at.to_string(),
                format!("{at} is an empty object: every FHIR element must have a value or children (ele-1)."),
            ));
            return;
        }
        let object_expected = el.inline.is_some() || key.ty == "Resource" || defs.data_type(&key.ty).is_some();
        if object_expected && !value.is_object() {
            self.out.push(shape::not_an_object(&key.ty, value, at));
            return;
        }
        if let Some(inline) = el.inline {
            if let Value::Object(obj) = value {
                self.object(td, inline, obj, at, depth + 1);
            }
        } else if key.ty == "Resource" {
            let nested = self.validator.check_resource(value, at, depth + 1);
            self.out.extend(nested);
        } else if let Some(dt) = defs.data_type(&key.ty) {
            if let Value::Object(obj) = value {
                self.object(dt, 0, obj, at, depth + 1);
            }
        } else if let (Value::String(div), "xhtml") = (value, key.ty.as_str()) {
            self.narrative(div, at);
        } else {
            self.primitive(&key.ty, value, at);
        }
        if let Some(vs) = el.binding {
            self.binding(vs, &key.ty, value, at);
        }
    }

    /// A narrative's XHTML `div`: an error when it is refused, a warning when it has
    /// no content.
    fn narrative(&mut self, div: &str, at: &str) {
        match narrative::check(div) {
            Ok(true) => {}
            Ok(false) => self.out.push(Issue {
                severity: crate::Severity::Warning,
                code: "value",
                expression: at.to_string(),
                diagnostics: format!("The narrative at {at} has no content; it should say something (txt-2)."),
            }),
            Err(reason) => self.out.push(Issue::error(
                "value",
                at.to_string(),
                format!("The narrative at {at} is refused: {reason}."),
            )),
        }
    }

    /// A value of the primitive type `ty`: its date or its lexical form.
    fn primitive(&mut self, ty: &str, value: &Value, at: &str) {
        let fault = match value {
            Value::String(s) => dates::check(ty, s).err().or_else(|| primitive::fault(ty, value)),
            other => primitive::fault(ty, other),
        };
        if let Some(reason) = fault {
            self.out.push(Issue::error(
                "value",
                at.to_string(),
                format!("{} is not a valid {}: {reason}.", short_json(value), ty),
            ));
        }
    }

    /// `_name`: the id/extensions of a primitive (an object, or an array with nulls).
    fn primitive_extensions(&mut self, el: &Element, ext: &Value, at: &str, depth: usize) {
        if let Some(issue) = shape::primitive_extension(el, ext, at) {
            self.out.push(issue);
            return;
        }
        let Some(extension) = self.validator.defs.data_type("Extension") else {
            return;
        };
        let one = |walker: &mut Self, obj: &Map<String, Value>, at: &str| {
            if let Some(Value::Array(exts)) = obj.get("extension") {
                for (i, e) in exts.iter().enumerate() {
                    if let Value::Object(e) = e {
                        let at = indexed(&child(at, "extension"), i);
                        walker.object(extension, 0, e, &at, depth + 1);
                    }
                }
            }
        };
        match ext {
            Value::Object(obj) => one(self, obj, at),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(obj) = item {
                        one(self, obj, &indexed(at, i));
                    }
                }
            }
            _ => {}
        }
    }

    fn binding(&mut self, vs: usize, ty: &str, value: &Value, at: &str) {
        let set = self.validator.terminology.get(vs);
        let (verdict, shown) = match (ty, value) {
            ("code", Value::String(code)) => (set.check_code(code), format!("'{code}'")),
            ("Coding", Value::Object(c)) => coding_verdict(set, c),
            ("CodeableConcept", Value::Object(cc)) => {
                let codings: Vec<_> = cc
                    .get("coding")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .map(|c| coding_verdict(set, c))
                    .collect();
                if codings.iter().any(|(v, _)| *v != Verdict::Invalid) {
                    (Verdict::Valid, String::new())
                } else {
                    let shown: Vec<String> = codings.into_iter().map(|(_, s)| s).collect();
                    let shown = if shown.is_empty() { "no coding".to_string() } else { shown.join(", ") };
                    (Verdict::Invalid, shown)
                }
            }
            _ => return,
        };
        if verdict == Verdict::Invalid {
            self.out.push(Issue::error(
                "code-invalid",
                at.to_string(),
                format!("{shown} is not in the required value set {}; allowed: {}.", set.url, set.describe()),
            ));
        }
    }
}

fn coding_verdict(set: &crate::terminology::CodeSet, c: &Map<String, Value>) -> (Verdict, String) {
    let system = c.get("system").and_then(Value::as_str);
    match c.get("code").and_then(Value::as_str) {
        Some(code) => (set.check_coding(system, code), format!("'{}#{code}'", system.unwrap_or_default())),
        None => (Verdict::Invalid, "a coding without code".into()),
    }
}

/// JSON `null` and empty arrays count as absent.
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => items.iter().any(|i| !i.is_null()),
        _ => true,
    }
}
