//! FHIR R4 validation for cupola.
//!
//! [`Validator`] checks a resource against the official R4 JSON Schema (one
//! compiled validator per resource type, nested resources validated on their
//! own) and against what the schema cannot say, taken from the official
//! StructureDefinitions: minimum cardinality, required bindings and real
//! calendar dates. [`Profiles`] adds cupola's own rules (`profiles/cupola/`).
//! Everything is embedded at build time; nothing is read from disk at run time.

// Functions stay under clippy.toml's threshold (80 lines); CI denies warnings.
#![warn(clippy::too_many_lines)]

mod codice_fiscale;
mod defs;
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
mod narrative;
mod path;
mod primitive;
mod profiles;
mod reftable;
mod schema;
mod shape;
mod terminology;
mod walk;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::defs::Definitions;
use crate::path::{child, indexed};
use crate::schema::SchemaSet;
use crate::terminology::Terminology;
use crate::walk::Walker;

pub use crate::profiles::Profiles;

/// The resource types cupola accepts at the top level: the served ones, listed once
/// in `cupola-types` (which search and the CapabilityStatement read too).
pub use cupola_types::RESOURCE_TYPES as SERVED_TYPES;

/// How serious an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The resource must be rejected.
    Error,
    /// Worth telling the sender; the resource is accepted.
    Warning,
}

/// One problem found in a resource, shaped like an `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// FHIR issue-type code: "structure" (unknown element, wrong JSON type), "required" (missing required element), "value" (bad value/format/date), "code-invalid" (code outside a required value set), "invalid" (other)
    pub code: &'static str,
    /// FHIRPath-style location of the element at fault, e.g. `Appointment.start`, `Patient.name[0].family`, `Bundle.entry[2].resource.status` — as precise as possible.
    pub expression: String,
    /// A sentence a developer understands: what is wrong and what is allowed.
    pub diagnostics: String,
}

impl Issue {
    pub(crate) fn error(code: &'static str, expression: String, diagnostics: String) -> Issue {
        Issue { severity: Severity::Error, code, expression, diagnostics }
    }
}

/// The R4 validator: schema, digested StructureDefinitions and value sets.
/// Build it once with [`Validator::r4`] and share it (it is `Send + Sync`).
pub struct Validator {
    schema: SchemaSet,
    defs: Definitions,
    terminology: Terminology,
}

impl Validator {
    /// Loads the embedded schema and definitions (call once; cheap to share via Arc; must be Send + Sync).
    ///
    /// Schema validators are compiled lazily, on the first resource of each
    /// type (see [`Validator::warm_up`] to pay that at start-up instead).
    pub fn r4() -> Validator {
        let resources: Vec<Value> = embedded::DEFINITIONS
            .iter()
            .map(|(name, text)| {
                serde_json::from_str(text).unwrap_or_else(|e| panic!("embedded definition {name} parses: {e}"))
            })
            .collect();
        let terminology = Terminology::build(&resources);
        let defs = Definitions::build(&resources, &terminology);
        Validator { schema: SchemaSet::load(embedded::SCHEMA), defs, terminology }
    }

    /// Compiles the schema validators of every served type now (about 0.4 s
    /// for all 28 in a debug build, 15 ms each), so that no request pays for
    /// it later. Without it, the first resource of each type pays its share.
    pub fn warm_up(&self) {
        self.schema.warm(SERVED_TYPES.iter().copied());
    }

    /// The top-level elements of `resource_type` that `_summary=true` keeps: those
    /// whose ElementDefinition has `isSummary: true`, plus `id` and `meta` always
    /// (first, once). Names are JSON names; a choice element keeps its `[x]` form
    /// (`deceased[x]`), so match `deceasedBoolean` by the prefix before `[x]`.
    /// `resourceType` is not listed. For a type without an embedded definition,
    /// only `id` and `meta`.
    pub fn summary_elements(&self, resource_type: &str) -> Vec<String> {
        let mut out = vec!["id".to_string(), "meta".to_string()];
        let Some(td) = self.defs.resource(resource_type) else {
            return out;
        };
        let top = td.elements.first().map(|root| root.children.as_slice());
        for e in top.unwrap_or_default().iter().filter_map(|&i| td.elements.get(i)) {
            let name = if e.choice { format!("{}[x]", e.name) } else { e.name.clone() };
            if e.summary && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// All errors/warnings for one resource (empty = valid). Never panics on any JSON input.
    pub fn validate(&self, resource: &Value) -> Vec<Issue> {
        let Some(obj) = resource.as_object() else {
            return vec![Issue::error(
                "structure",
                "Resource".into(),
                format!("A resource must be a JSON object, found {}.", schema::short_json(resource)),
            )];
        };
        let rt = match obj.get("resourceType") {
            None => {
                return vec![Issue::error(
                    "required",
                    "Resource.resourceType".into(),
                    "The resource has no 'resourceType'.".into(),
                )]
            }
            Some(Value::String(rt)) => rt.as_str(),
            Some(other) => {
                return vec![Issue::error(
                    "structure",
                    "Resource.resourceType".into(),
                    format!("'resourceType' must be a JSON string, found {}.", schema::short_json(other)),
                )]
            }
        };
        if !SERVED_TYPES.contains(&rt) {
            return vec![Issue::error(
                "value",
                "Resource.resourceType".into(),
                format!("Resource type '{rt}' is not served here; accepted types: {}.", SERVED_TYPES.join(", ")),
            )];
        }
        self.check_resource(resource, rt, 0)
    }

    /// Full check of one (top-level or nested) resource found at `expr`.
    pub(crate) fn check_resource(&self, value: &Value, expr: &str, depth: usize) -> Vec<Issue> {
        let Some(obj) = value.as_object() else {
            return vec![Issue::error(
                "structure",
                expr.to_string(),
                format!("{expr} must be a resource (a JSON object), found {}.", schema::short_json(value)),
            )];
        };
        let at = child(expr, "resourceType");
        let rt = match obj.get("resourceType") {
            Some(Value::String(rt)) if self.schema.knows(rt) => rt.as_str(),
            Some(Value::String(rt)) => {
                return vec![Issue::error("value", at, format!("'{rt}' is not a FHIR R4 resource type."))]
            }
            None => return vec![Issue::error("required", at, format!("{expr} has no 'resourceType'."))],
            Some(other) => {
                return vec![Issue::error(
                    "structure",
                    at,
                    format!("'resourceType' must be a JSON string, found {}.", schema::short_json(other)),
                )]
            }
        };
        let schema_issues = self.schema.check(rt, value, expr);
        let mut walker = Walker { validator: self, out: Vec::new() };
        match self.defs.resource(rt) {
            Some(td) => walker.object(td, 0, obj, expr, depth),
            None => {
                self.schema.calendar(rt, value, expr, depth, &mut walker.out);
                self.scan_nested(obj, expr, depth, &mut walker.out);
            }
        }
        merge(schema_issues, walker.out)
    }

    /// For resource types without an embedded definition: finds nested
    /// resources (objects with a `resourceType`) and validates them.
    fn scan_nested(&self, obj: &Map<String, Value>, expr: &str, depth: usize, out: &mut Vec<Issue>) {
        if depth > 200 {
            return;
        }
        for (key, value) in obj {
            let at = child(expr, key);
            let items: Vec<(String, &Value)> = match value {
                Value::Array(items) => items.iter().enumerate().map(|(i, v)| (indexed(&at, i), v)).collect(),
                other => vec![(at, other)],
            };
            for (at, item) in items {
                if let Value::Object(inner) = item {
                    if inner.get("resourceType").is_some_and(Value::is_string) {
                        out.extend(self.check_resource(item, &at, depth + 1));
                    } else {
                        self.scan_nested(inner, &at, depth + 1, out);
                    }
                }
            }
        }
    }
}

/// Schema issues plus rule issues, without saying the same thing twice:
/// a rule issue wins over a schema issue of the same code at the same place,
/// and a wrong JSON type hides a pattern failure there.
fn merge(schema: Vec<Issue>, rules: Vec<Issue>) -> Vec<Issue> {
    let said: HashSet<(&str, &str)> = rules.iter().map(|i| (i.code, i.expression.as_str())).collect();
    let wrong_type: HashSet<&str> =
        schema.iter().filter(|i| i.code == "structure").map(|i| i.expression.as_str()).collect();
    let mut out: Vec<Issue> = schema
        .iter()
        .filter(|i| !said.contains(&(i.code, i.expression.as_str())))
        .filter(|i| !(i.code == "value" && wrong_type.contains(i.expression.as_str())))
        .cloned()
        .collect();
    out.extend(rules);
    out
}
