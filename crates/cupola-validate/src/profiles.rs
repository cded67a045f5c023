//! cupola's own profiles (`profiles/cupola/`): one JSON Schema per resource
//! type, plus the rules a schema cannot say (codice fiscale check character).

use std::collections::HashMap;

use serde_json::Value;

use crate::path::{child, indexed};
use crate::schema::map_error;
use crate::{codice_fiscale, embedded, Issue};

/// Identifier systems of the Italian codice fiscale.
pub(crate) const CODICE_FISCALE_SYSTEMS: [&str; 2] =
    ["http://hl7.it/sid/codiceFiscale", "urn:oid:2.16.840.1.113883.2.9.4.3.2"];

struct Profile {
    validator: jsonschema::Validator,
    /// Pattern → the `description` next to it, for messages.
    patterns: HashMap<String, String>,
}

/// cupola's own profiles (profiles/cupola/): JSON Schema checked with the jsonschema crate plus rules that need code. Violations → the caller answers 422.
pub struct Profiles {
    by_type: HashMap<String, Profile>,
}

impl Profiles {
    /// Compiles the embedded profiles (`<ResourceType>.schema.json`).
    pub fn load() -> Profiles {
        let mut by_type = HashMap::new();
        for (name, text) in embedded::CUPOLA_PROFILES {
            let Some(resource_type) = name.strip_suffix(".schema.json") else {
                continue;
            };
            let schema: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("profile {name} parses: {e}"));
            let validator = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("profile {name} is a valid JSON Schema: {e}"));
            let mut patterns = HashMap::new();
            collect_patterns(&schema, &mut patterns);
            by_type.insert(resource_type.to_string(), Profile { validator, patterns });
        }
        Profiles { by_type }
    }

    /// The profile violations of one resource (empty = conforms). Resources of
    /// types without a profile always conform. Never panics on any JSON input.
    pub fn check(&self, resource: &Value) -> Vec<Issue> {
        let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
            return Vec::new();
        };
        let mut issues = Vec::new();
        if let Some(profile) = self.by_type.get(rt) {
            let describe = |p: &str| profile.patterns.get(p).cloned();
            for error in profile.validator.iter_errors(resource) {
                map_error(&error, rt, &describe, &mut issues);
            }
        }
        if rt == "Patient" {
            let coded: Vec<Issue> = codice_fiscale_issues(resource)
                .into_iter()
                .filter(|i| !issues.iter().any(|s| s.expression == i.expression))
                .collect();
            issues.extend(coded);
        }
        issues
    }
}

/// Check characters of the codici fiscali among `Patient.identifier`.
fn codice_fiscale_issues(patient: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let identifiers = patient.get("identifier").and_then(Value::as_array);
    for (i, identifier) in identifiers.into_iter().flatten().enumerate() {
        let system = identifier.get("system").and_then(Value::as_str);
        if !system.is_some_and(|s| CODICE_FISCALE_SYSTEMS.contains(&s)) {
            continue;
        }
        let Some(value) = identifier.get("value").and_then(Value::as_str) else {
            continue;
        };
        if let Err(reason) = codice_fiscale::check(value) {
            issues.push(Issue::error(
                "value",
                child(&indexed("Patient.identifier", i), "value"),
                format!("Invalid codice fiscale: {reason}."),
            ));
        }
    }
    issues
}

fn collect_patterns(schema: &Value, out: &mut HashMap<String, String>) {
    match schema {
        Value::Object(map) => {
            if let (Some(Value::String(p)), Some(Value::String(d))) = (map.get("pattern"), map.get("description")) {
                out.insert(p.clone(), d.clone());
            }
            map.values().for_each(|v| collect_patterns(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_patterns(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_and_code_agree_on_the_codice_fiscale_systems() {
        let (_, text) = embedded::CUPOLA_PROFILES
            .iter()
            .find(|(name, _)| *name == "Patient.schema.json")
            .expect("Patient profile embedded");
        let schema: Value = serde_json::from_str(text).expect("profile parses");
        let systems = schema.pointer("/properties/identifier/items/if/properties/system/enum").expect("system enum");
        assert_eq!(systems, &serde_json::json!(CODICE_FISCALE_SYSTEMS));
    }
}
