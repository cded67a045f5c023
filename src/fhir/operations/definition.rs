//! An operation's declaration as an R4 OperationDefinition.

use serde_json::{json, Map, Value};

use super::{Kind, Operation, Param, Use, MANY};

/// `Appointment-find` → `AppointmentFind` (opd-0: a name usable as an identifier).
fn computable_name(id: &str) -> String {
    id.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect()
}

fn parameter(p: &Param) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), json!(p.name));
    v.insert("use".into(), json!(if p.use_ == Use::In { "in" } else { "out" }));
    v.insert("min".into(), json!(p.min));
    v.insert("max".into(), json!(if p.max == MANY { "*".to_string() } else { p.max.to_string() }));
    v.insert("documentation".into(), json!(p.doc));
    if let Some(t) = p.kind.fhir_type() {
        v.insert("type".into(), json!(t));
    }
    // opd-3: a search type only on string parameters; a token is one.
    if p.kind == Kind::Token {
        v.insert("searchType".into(), json!("token"));
    }
    if !p.part.is_empty() {
        v.insert("part".into(), Value::Array(p.part.iter().map(parameter).collect()));
    }
    Value::Object(v)
}

/// The OperationDefinition of `op`, its canonical under `canonical` (`--canonical-base`).
pub fn definition(op: &Operation, canonical: &str) -> Value {
    let mut d = json!({
        "resourceType": "OperationDefinition",
        "id": op.id(),
        "url": op.url(canonical),
        "version": env!("CARGO_PKG_VERSION"),
        "name": computable_name(&op.id()),
        "title": format!("{}{}", op.resource.map(|r| format!("{r} ")).unwrap_or_default(), op.label()),
        "status": "active",
        "kind": "operation",
        "publisher": "cupola",
        "description": op.description,
        "affectsState": op.affects_state,
        "code": op.code,
        "system": op.resource.is_none(),
        "type": op.type_level,
        "instance": op.instance,
        "parameter": op.params.iter().map(parameter).collect::<Vec<_>>(),
    });
    if let Some(r) = op.resource {
        d["resource"] = json!([r]);
    }
    if let Some(b) = op.base {
        d["base"] = json!(b);
    }
    d
}
