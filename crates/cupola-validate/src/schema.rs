//! The official R4 JSON Schema: one validator per resource type, compiled
//! lazily, with its errors mapped to [`Issue`]s.

use std::collections::HashMap;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::ValidationError;
use serde_json::{json, Value};

use crate::path::{child, indexed, pointer_to_fhirpath};
use crate::{Issue, Severity};
use cupola_types::dates;

/// The R4 schema, pre-digested: every definition compiled once, on first use.
pub(crate) struct SchemaSet {
    /// Every definition, compiled once on first use (see `reftable`).
    table: std::sync::Arc<crate::reftable::RefTable>,
    /// The resource types the schema defines.
    resource_types: std::collections::HashSet<String>,
    /// Regex pattern → name of the primitive type that owns it (for messages).
    patterns: HashMap<String, String>,
    /// Definition → its properties that lead to a date type or to another
    /// definition (for the calendar check of types without a StructureDefinition).
    fields: HashMap<String, Vec<(String, String)>>,
}

impl SchemaSet {
    /// Parses the embedded schema; `ResourceList` is relaxed to "any object"
    /// because nested resources are validated on their own.
    pub(crate) fn load(text: &str) -> SchemaSet {
        let mut schema: Value = serde_json::from_str(text).expect("embedded fhir.schema.json parses");
        let mapping = schema
            .pointer("/discriminator/mapping")
            .and_then(Value::as_object)
            .expect("fhir.schema.json has discriminator.mapping");
        let resource_types = mapping.keys().cloned().collect();
        let mut definitions = schema.get_mut("definitions").map(Value::take).expect("fhir.schema.json has definitions");
        let defs = definitions.as_object_mut().expect("definitions is an object");
        defs.insert("ResourceList".into(), json!({"type": "object"}));
        canonical_extensions(defs);
        let patterns: HashMap<String, String> = defs
            .iter()
            .filter_map(|(name, d)| {
                let p = d.get("pattern")?.as_str()?;
                Some((p.to_string(), name.clone()))
            })
            .collect();
        let fields = defs
            .iter()
            .map(|(name, d)| (name.clone(), fields_of(d, defs, &patterns)))
            .filter(|(_, f)| !f.is_empty())
            .collect();
        let table = crate::reftable::RefTable::new(defs);
        SchemaSet { table, resource_types, patterns, fields }
    }

    /// Real-calendar check of every date, dateTime, instant and time in
    /// `value`, typed by the schema definition `def` (nested resources excluded).
    pub(crate) fn calendar(&self, def: &str, value: &Value, expr: &str, depth: usize, out: &mut Vec<Issue>) {
        let (Some(fields), Value::Object(obj), true) = (self.fields.get(def), value, depth < 200) else {
            return;
        };
        for (name, target) in fields {
            let Some(v) = obj.get(name) else { continue };
            let at = child(expr, name);
            let items: Vec<(String, &Value)> = match v {
                Value::Array(items) => items.iter().enumerate().map(|(i, x)| (indexed(&at, i), x)).collect(),
                single => vec![(at, single)],
            };
            for (at, item) in items {
                match item {
                    Value::String(text) => {
                        if let Err(reason) = dates::check(target, text) {
                            out.push(Issue::error(
                                "value",
                                at,
                                format!("{} is not a valid {target}: {reason}.", short_json(item)),
                            ));
                        }
                    }
                    Value::Object(_) => self.calendar(target, item, &at, depth + 1, out),
                    _ => {}
                }
            }
        }
    }

    /// Whether the schema knows this resource type.
    pub(crate) fn knows(&self, resource_type: &str) -> bool {
        self.resource_types.contains(resource_type)
    }

    /// Compiles the validators of the given types now instead of on first use.
    pub(crate) fn warm<'a>(&self, types: impl IntoIterator<Item = &'a str>) {
        for t in types {
            let _ = self.validator(t);
        }
    }

    fn validator(&self, resource_type: &str) -> Option<&jsonschema::Validator> {
        self.table.get(resource_type)
    }

    /// Schema issues for one resource of a known type; `base` is the FHIRPath of the resource.
    pub(crate) fn check(&self, resource_type: &str, resource: &Value, base: &str) -> Vec<Issue> {
        let Some(validator) = self.validator(resource_type) else {
            return Vec::new();
        };
        // `is_valid` stops at the first failure and builds no errors: most resources
        // pass, and only those that fail pay for the full list.
        if validator.is_valid(resource) {
            return Vec::new();
        }
        let mut issues = Vec::new();
        for error in validator.iter_errors(resource) {
            let pattern_owner = |pattern: &str| self.patterns.get(pattern).map(|t| format!("a valid {t}"));
            map_error(&error, base, &pattern_owner, &mut issues);
        }
        issues
    }
}

/// The official schema has no `_name` (id and extensions) beside its `canonical`
/// elements, which FHIR JSON allows as for every other primitive: add them, an
/// Element where the canonical has one value and an array where it repeats.
fn canonical_extensions(defs: &mut serde_json::Map<String, Value>) {
    const CANONICAL: &str = "#/definitions/canonical";
    for def in defs.values_mut() {
        let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        let missing: Vec<(String, bool)> = props
            .iter()
            .filter(|(name, _)| !props.contains_key(&format!("_{name}")))
            .filter_map(|(name, p)| match (p.get("$ref"), p.pointer("/items/$ref")) {
                (Some(r), _) if r == CANONICAL => Some((name.clone(), false)),
                (_, Some(r)) if r == CANONICAL => Some((name.clone(), true)),
                _ => None,
            })
            .collect();
        for (name, many) in missing {
            let element = json!({"$ref": "#/definitions/Element"});
            let shape = if many { json!({"type": "array", "items": element}) } else { element };
            props.insert(format!("_{name}"), shape);
        }
    }
}

/// Maps one jsonschema error to issues at FHIRPath locations below `base`;
/// `describe_pattern` names what a failed pattern stands for.
pub(crate) fn map_error(
    error: &ValidationError<'_>,
    base: &str,
    describe_pattern: &dyn Fn(&str) -> Option<String>,
    out: &mut Vec<Issue>,
) {
    let at = pointer_to_fhirpath(base, error.instance_path.as_str());
    let shown = short_json(&error.instance);
    let (code, diagnostics) = match &error.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for name in unexpected {
                out.push(Issue::error(
                        "structure",
                        child(&at, name.strip_prefix('_').unwrap_or(name)),
                        format!("Unknown element '{name}' in {at}: it is not defined by FHIR R4 for this type (check spelling and the choice-type suffix)."),
                    ));
            }
            return;
        }
        ValidationErrorKind::Type { kind } => {
            ("structure", format!("{at} has the wrong JSON type: expected {}, found {shown}.", type_names(kind)))
        }
        ValidationErrorKind::Pattern { pattern } => match describe_pattern(pattern) {
            Some(what) => ("value", format!("{shown} is not {what} (it must match {pattern}).")),
            None => ("value", format!("{shown} does not match the pattern {pattern}.")),
        },
        ValidationErrorKind::Enum { options } => {
            ("code-invalid", format!("{shown} is not an allowed code; allowed: {}.", list(options)))
        }
        ValidationErrorKind::Constant { expected_value } => {
            ("value", format!("{shown} is not allowed here; expected {expected_value}."))
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(Issue::error(
                "required",
                child(&at, name),
                format!("Required element '{name}' is missing in {at}."),
            ));
            return;
        }
        _ => ("invalid", format!("{at}: {error}")),
    };
    out.push(Issue { severity: Severity::Error, code, expression: at, diagnostics });
}

/// The properties of a definition typed by a date type or by another
/// definition that has properties (`ResourceList` excluded).
/// Choice-type properties carry their primitive's pattern inline instead of a
/// `$ref`; `patterns` maps it back to the primitive.
fn fields_of(
    def: &Value,
    defs: &serde_json::Map<String, Value>,
    patterns: &HashMap<String, String>,
) -> Vec<(String, String)> {
    let Some(props) = def.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .filter_map(|(name, p)| {
            let target = match p.get("$ref").or_else(|| p.pointer("/items/$ref")) {
                Some(r) => r.as_str()?.strip_prefix("#/definitions/")?,
                None => patterns.get(p.get("pattern")?.as_str()?)?.as_str(),
            };
            let dated = matches!(target, "date" | "dateTime" | "instant" | "time");
            let complex = target != "ResourceList" && defs.get(target).is_some_and(|d| d.get("properties").is_some());
            (dated || complex).then(|| (name.clone(), target.to_string()))
        })
        .collect()
}

fn type_names(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => json_type_name(&t.to_string()),
        TypeKind::Multiple(set) => set.iter().map(|t| json_type_name(&t.to_string())).collect::<Vec<_>>().join(" or "),
    }
}

fn json_type_name(t: &str) -> String {
    match t {
        "array" => "a JSON array (this element repeats)".into(),
        "object" => "a JSON object".into(),
        other => format!("a JSON {other}"),
    }
}

fn list(options: &Value) -> String {
    match options.as_array() {
        Some(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        None => options.to_string(),
    }
}

/// A JSON value shortened for a message.
pub(crate) fn short_json(v: &Value) -> String {
    let s = match v {
        Value::Object(_) => return "a JSON object".into(),
        Value::Array(_) => return "a JSON array".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}
