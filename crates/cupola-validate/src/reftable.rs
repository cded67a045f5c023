//! Each schema definition compiled once, with `$ref`s between definitions turned
//! into a custom keyword that dispatches to the shared table at validation time.
//!
//! Why: the jsonschema crate compiles a `$ref` inline at its first occurrence and
//! lazily (a fresh copy per site) at the others. With FHIR's schema, where every
//! primitive's `_element` reaches `Extension` and through it ~50 data types, a
//! validator per type took ~8 MB at start and grew past 2 GB once varied resources
//! had been validated. Here memory is bounded by the number of definitions.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::{LazyLocation, Location};
use jsonschema::{Draft, Keyword, ValidationError};
use serde_json::{Map, Value};

/// The keyword that stands for `{"$ref": "#/definitions/NAME"}`.
const KEYWORD: &str = "cupolaRef";

pub(crate) struct RefTable {
    /// Definitions with their `$ref`s rewritten to the keyword.
    defs: HashMap<String, Value>,
    compiled: HashMap<String, OnceLock<Option<jsonschema::Validator>>>,
    me: Weak<RefTable>,
}

impl RefTable {
    pub(crate) fn new(definitions: &Map<String, Value>) -> Arc<RefTable> {
        let defs: HashMap<String, Value> = definitions.iter().map(|(k, v)| (k.clone(), rewrite(v))).collect();
        let compiled = defs.keys().map(|k| (k.clone(), OnceLock::new())).collect();
        Arc::new_cyclic(|me| RefTable { defs, compiled, me: me.clone() })
    }

    /// The validator of one definition, compiled on first use.
    #[allow(clippy::result_large_err)] // the keyword factory's error type is jsonschema's
    pub(crate) fn get(&self, name: &str) -> Option<&jsonschema::Validator> {
        let cell = self.compiled.get(name)?;
        cell.get_or_init(|| {
            let schema = self.defs.get(name)?;
            let table = self.me.clone();
            jsonschema::options()
                .with_draft(Draft::Draft6)
                .with_keyword(KEYWORD, move |_parent, value, _path| {
                    let target = value.as_str().unwrap_or_default().to_string();
                    Ok(Box::new(RefKeyword { table: table.clone(), target }) as Box<dyn Keyword>)
                })
                .build(schema)
                .ok()
        })
        .as_ref()
    }
}

/// `$ref: #/definitions/X` → `cupolaRef: X`, everywhere in a definition.
fn rewrite(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, x) in m {
                match (k.as_str(), x.as_str().and_then(|r| r.strip_prefix("#/definitions/"))) {
                    ("$ref", Some(name)) => out.insert(KEYWORD.into(), Value::String(name.into())),
                    _ => out.insert(k.clone(), rewrite(x)),
                };
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(rewrite).collect()),
        other => other.clone(),
    }
}

struct RefKeyword {
    table: Weak<RefTable>,
    target: String,
}

impl Keyword for RefKeyword {
    fn validate<'i>(&self, instance: &'i Value, location: &LazyLocation) -> Result<(), ValidationError<'i>> {
        let Some(table) = self.table.upgrade() else { return Ok(()) };
        let Some(v) = table.get(&self.target) else { return Ok(()) };
        // One problem below this point (a wrong JSON type first: it explains the rest);
        // the caller's other sites report theirs.
        let errors: Vec<ValidationError> = v.iter_errors(instance).collect();
        let pick = errors.iter().position(|e| matches!(e.kind, ValidationErrorKind::Type { .. })).unwrap_or(0);
        let Some(inner) = errors.into_iter().nth(pick).map(ValidationError::to_owned) else { return Ok(()) };
        let mut path = Location::from(location);
        for segment in inner.instance_path.as_str().split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            path = match segment.parse::<usize>() {
                Ok(i) => path.join(i),
                Err(_) => path.join(segment.as_str()),
            };
        }
        Err(ValidationError {
            instance: inner.instance,
            kind: inner.kind,
            instance_path: path,
            schema_path: inner.schema_path,
        })
    }

    fn is_valid(&self, instance: &Value) -> bool {
        let Some(table) = self.table.upgrade() else { return true };
        table.get(&self.target).is_none_or(|v| v.is_valid(instance))
    }
}
