//! The JSON shape of every element, derived from the official definitions:
//! for every element of every served type (and of every data type, carried in
//! an extension value), the element sent as an array where it has one value,
//! or as one value where it repeats, is refused with a `structure` issue at
//! that element; and the right shape is not. Primitive elements are also tried
//! through their `_name` (id and extensions).

use std::collections::HashMap;
use std::path::PathBuf;

use cupola_validate::{Validator, SERVED_TYPES};
use serde_json::{json, Map, Value};

/// StructureDefinitions by name, read from the files the validator embeds.
fn definitions() -> HashMap<String, Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/r4/definitions");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(&dir).expect("profiles/r4/definitions exists").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("StructureDefinition-") {
            continue;
        }
        let sd: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).expect("readable")).expect("JSON");
        out.insert(sd["id"].as_str().expect("id").to_string(), sd);
    }
    out
}

/// One element of a snapshot, as the test needs it.
struct El {
    path: String,
    many: bool,
    /// Its types: one, or each of a choice element's.
    tys: Vec<String>,
    choice: bool,
    backbone: bool,
}

fn elements(sd: &Value) -> Vec<El> {
    let raw = sd.pointer("/snapshot/element").and_then(Value::as_array).expect("snapshot");
    let paths: Vec<&str> = raw.iter().filter_map(|e| e["path"].as_str()).collect();
    raw.iter()
        .skip(1)
        .filter(|e| e.get("sliceName").is_none())
        .map(|e| {
            let path = e["path"].as_str().expect("path").to_string();
            let mut tys: Vec<String> = e["type"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["code"].as_str().map(str::to_string))
                .collect();
            if tys.is_empty() {
                tys.push("BackboneElement".into());
            }
            let prefix = format!("{path}.");
            El {
                many: !matches!(e["max"].as_str(), Some("0" | "1")),
                choice: path.ends_with("[x]"),
                backbone: e.get("contentReference").is_some() || paths.iter().any(|p| p.starts_with(&prefix)),
                path,
                tys,
            }
        })
        .collect()
}

fn sample(ty: &str, backbone: bool, defs: &HashMap<String, Value>) -> Value {
    let ext = json!({"extension": [{"url": "http://example.org/x", "valueString": "x"}]});
    if backbone || defs.get(ty).is_some_and(|d| d["kind"] == "complex-type") {
        return ext;
    }
    match ty {
        "Resource" => json!({"resourceType": "Basic", "code": {"text": "x"}}),
        "boolean" => json!(true),
        "integer" | "positiveInt" | "unsignedInt" => json!(1),
        "decimal" => json!(1.5),
        "date" | "dateTime" => json!("2020-01-31"),
        "instant" => json!("2020-01-31T10:00:00Z"),
        "time" => json!("10:00:00"),
        "uri" | "url" | "canonical" => json!("http://example.org/x"),
        "base64Binary" => json!("AAAA"),
        "xhtml" => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
        _ => json!("x"),
    }
}

fn is_primitive(ty: &str) -> bool {
    ty.starts_with("http://hl7.org/fhirpath/") || ty.chars().next().is_some_and(char::is_lowercase)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Builds the object of the type holding `value` at the element `el`: every
/// ancestor backbone element filled in, as an array where it repeats. Returns
/// the object and the element's expression relative to the type.
fn place(all: &[El], el: &El, key: &str, value: Value) -> (Map<String, Value>, String) {
    let segments: Vec<&str> = el.path.split('.').collect();
    let mut expr = String::new();
    let mut chain: Vec<(String, bool)> = Vec::new();
    for depth in 1..segments.len() - 1 {
        let p = segments[..=depth].join(".");
        let many = all.iter().find(|e| e.path == p).is_some_and(|e| e.many);
        chain.push((segments[depth].to_string(), many));
        expr = if expr.is_empty() { segments[depth].to_string() } else { format!("{expr}.{}", segments[depth]) };
        if many {
            expr.push_str("[0]");
        }
    }
    let leaf = key.trim_start_matches('_');
    expr = if expr.is_empty() { leaf.to_string() } else { format!("{expr}.{leaf}") };
    let mut obj = Map::new();
    obj.insert(key.to_string(), value);
    for (name, many) in chain.into_iter().rev() {
        let inner = Value::Object(obj);
        let mut outer = Map::new();
        outer.insert(name, if many { json!([inner]) } else { inner });
        obj = outer;
    }
    (obj, expr)
}

/// Where a type's instance is carried in a served resource, and the expression of that place.
fn host(type_name: &str, resource: bool, obj: Map<String, Value>) -> (Value, String) {
    if resource {
        let mut obj = obj;
        obj.insert("resourceType".into(), json!(type_name));
        return (Value::Object(obj), type_name.to_string());
    }
    match type_name {
        "Extension" => (json!({"resourceType": "Patient", "extension": [obj]}), "Patient.extension[0]".into()),
        "Narrative" => (json!({"resourceType": "Patient", "text": obj}), "Patient.text".into()),
        _ => {
            let key = format!("value{type_name}");
            let ext = json!({"url": "http://example.org/x", key.clone(): obj});
            (json!({"resourceType": "Patient", "extension": [ext]}), format!("Patient.extension[0].{key}"))
        }
    }
}

struct Tally {
    tried: usize,
    failures: Vec<String>,
}

impl Tally {
    fn expect(&mut self, v: &Validator, resource: &Value, at: &str, refused: bool, what: &str) {
        self.tried += 1;
        let found = v.validate(resource).iter().any(|i| i.code == "structure" && i.expression == at);
        if found != refused {
            let verdict = if refused { "accepted" } else { "refused" };
            self.failures.push(format!("{what} at {at}: {verdict}; {resource}"));
        }
    }
}

/// Both shapes of one element (of each of its types, and of `_name` for a primitive).
fn try_element(v: &Validator, defs: &HashMap<String, Value>, ty: &str, res: bool, all: &[El], el: &El, t: &mut Tally) {
    let name = el.path.rsplit('.').next().unwrap_or_default().trim_end_matches("[x]");
    // The official JSON Schema (which the validator applies too) lists no `valueMeta`
    // for an extension, though R4's Extension definition allows it: a Meta in an
    // extension is refused as an unknown element, a known gap left as it is.
    for el_ty in el.tys.iter().filter(|t| !(el.path == "Extension.value[x]" && *t == "Meta")) {
        let key = if el.choice { format!("{name}{}", capitalize(el_ty)) } else { name.to_string() };
        let mut keys = vec![(key.clone(), sample(el_ty, el.backbone, defs))];
        // An xhtml narrative has no `_div` in FHIR JSON; `id` and `url` are System types.
        let extensible = !matches!(el_ty.as_str(), "xhtml") && !el.path.ends_with(".id") && !el.path.ends_with(".url");
        if is_primitive(el_ty) && extensible {
            keys.push((format!("_{key}"), json!({"id": "e1"})));
        }
        for (key, one) in keys {
            let (right, wrong) = if el.many { (json!([one.clone()]), one) } else { (one.clone(), json!([one])) };
            for (value, refused) in [(right, false), (wrong, true)] {
                let (obj, rel) = place(all, el, &key, value);
                let (resource, base) = host(ty, res, obj);
                let what = if refused { "wrong shape" } else { "right shape" };
                t.expect(v, &resource, &format!("{base}.{rel}"), refused, what);
            }
        }
    }
}

#[test]
fn every_element_in_the_wrong_json_shape_is_refused() {
    let v = Validator::r4();
    let defs = definitions();
    let value_types: Vec<String> = defs["Extension"]
        .pointer("/snapshot/element")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e["path"] == "Extension.value[x]")
        .flat_map(|e| e["type"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["code"].as_str().map(str::to_string))
        .collect();
    let mut tally = Tally { tried: 0, failures: Vec::new() };
    let mut types: Vec<(&str, bool)> = SERVED_TYPES.iter().map(|t| (*t, true)).collect();
    let mut data_types: Vec<&String> = defs
        .iter()
        .filter(|(_, d)| d["kind"] == "complex-type" && d["abstract"] != true)
        .filter(|(n, _)| value_types.contains(n) || matches!(n.as_str(), "Extension" | "Narrative"))
        .map(|(n, _)| n)
        .collect();
    data_types.sort();
    types.extend(data_types.iter().map(|n| (n.as_str(), false)));
    for (ty, res) in types {
        let all = elements(&defs[ty]);
        for el in &all {
            try_element(&v, &defs, ty, res, &all, el, &mut tally);
        }
    }
    eprintln!("shape mutations tried: {} over {} types", tally.tried, SERVED_TYPES.len() + data_types.len());
    assert!(tally.tried > 4000, "only {} mutations tried", tally.tried);
    assert!(tally.failures.is_empty(), "{} of {}:\n{}", tally.failures.len(), tally.tried, tally.failures.join("\n"));
}
