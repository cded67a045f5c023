//! StructureDefinition snapshots digested into a compact lookup: per type,
//! its elements with minimum cardinality, JSON keys (choice types expanded),
//! children, content references and required bindings.

use std::collections::HashMap;

use serde_json::Value;

use crate::terminology::Terminology;

/// One element of a type, as the walker needs it.
#[derive(Debug)]
pub(crate) struct Element {
    /// JSON name without `[x]` (e.g. `status`, `value`).
    pub(crate) name: String,
    pub(crate) min: u32,
    /// `max` is not `1` (nor `0`): the element repeats, and JSON carries it as an array.
    pub(crate) many: bool,
    pub(crate) choice: bool,
    /// The JSON keys this element may appear under, each with its type code
    /// (one key for ordinary elements, one per type for choice elements).
    pub(crate) keys: Vec<Key>,
    /// Element whose children describe this element's content: itself for
    /// inline backbone elements, the target of a `contentReference`.
    pub(crate) inline: Option<usize>,
    pub(crate) children: Vec<usize>,
    /// Required binding: index of the value set in [`Terminology`].
    pub(crate) binding: Option<usize>,
    /// `isSummary: true` in the ElementDefinition (part of `_summary=true`).
    pub(crate) summary: bool,
}

/// A JSON key of an element and the FHIR type found under it.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) json: String,
    /// `_json`: the key holding a primitive's id/extensions.
    pub(crate) ext: String,
    pub(crate) ty: String,
}

/// A resource or data type; `elements[0]` is the root.
#[derive(Debug)]
pub(crate) struct TypeDef {
    pub(crate) is_resource: bool,
    pub(crate) elements: Vec<Element>,
}

/// All digested types, by name (`Patient`, `HumanName`, `Age`…).
#[derive(Default)]
pub(crate) struct Definitions {
    types: HashMap<String, TypeDef>,
}

impl Definitions {
    pub(crate) fn build(resources: &[Value], terminology: &Terminology) -> Definitions {
        let mut types = HashMap::new();
        for sd in resources {
            if sd.get("resourceType").and_then(Value::as_str) != Some("StructureDefinition") {
                continue;
            }
            let Some(name) = sd.get("id").and_then(Value::as_str) else {
                continue;
            };
            let kind = sd.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind == "primitive-type" || kind == "logical" {
                continue;
            }
            let elements = sd
                .pointer("/snapshot/element")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("StructureDefinition {name} has a snapshot"));
            types.insert(
                name.to_string(),
                TypeDef { is_resource: kind == "resource", elements: digest(elements, terminology) },
            );
        }
        Definitions { types }
    }

    /// A complex data type (not a resource) with a definition.
    pub(crate) fn data_type(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name).filter(|t| !t.is_resource)
    }

    /// A resource type with a definition.
    pub(crate) fn resource(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name).filter(|t| t.is_resource)
    }
}

fn digest(raw: &[Value], terminology: &Terminology) -> Vec<Element> {
    let mut elements = Vec::with_capacity(raw.len());
    let mut by_path: HashMap<&str, usize> = HashMap::new();
    let mut content_refs = Vec::new();
    for e in raw {
        if e.get("sliceName").is_some() {
            continue;
        }
        let Some(path) = e.get("path").and_then(Value::as_str) else {
            continue;
        };
        let index = elements.len();
        if let Some(parent) = path.rfind('.').and_then(|i| by_path.get(&path[..i])) {
            let parent: usize = *parent;
            elements_children_push(&mut elements, parent, index);
        }
        by_path.insert(path, index);
        if let Some(target) = e.get("contentReference").and_then(Value::as_str) {
            content_refs.push((index, target.trim_start_matches('#').to_string()));
        }
        elements.push(element(e, path, terminology));
    }
    for (index, element) in elements.iter_mut().enumerate() {
        if !element.children.is_empty() && index > 0 {
            element.inline = Some(index);
        }
    }
    for (index, target) in content_refs {
        elements[index].inline = by_path.get(target.as_str()).copied();
    }
    elements
}

/// The element at `path` of a snapshot (its children are added as they come):
/// name, cardinality, the JSON keys of its type or types, its required binding.
fn element(e: &Value, path: &str, terminology: &Terminology) -> Element {
    let last = path.rsplit('.').next().unwrap_or(path);
    let choice = last.ends_with("[x]");
    let name = last.trim_end_matches("[x]").to_string();
    let codes: Vec<String> = e
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("code").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let keys = if choice {
        codes.iter().map(|ty| key(format!("{name}{}", capitalize(ty)), ty)).collect()
    } else {
        let ty = codes.first().cloned().unwrap_or_default();
        vec![key(name.clone(), &ty)]
    };
    let binding = e
        .get("binding")
        .filter(|b| b.get("strength").and_then(Value::as_str) == Some("required"))
        .and_then(|b| b.get("valueSet").and_then(Value::as_str))
        .and_then(|vs| terminology.find(vs));
    Element {
        name,
        min: e.get("min").and_then(Value::as_u64).unwrap_or(0) as u32,
        many: !matches!(e.get("max").and_then(Value::as_str), Some("0" | "1")),
        choice,
        keys,
        inline: None,
        children: Vec::new(),
        binding,
        summary: e.get("isSummary").and_then(Value::as_bool) == Some(true),
    }
}

fn elements_children_push(elements: &mut [Element], parent: usize, child: usize) {
    if let Some(p) = elements.get_mut(parent) {
        p.children.push(child);
    }
}

fn key(json: String, ty: &str) -> Key {
    Key { ext: format!("_{json}"), json, ty: ty.to_string() }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
