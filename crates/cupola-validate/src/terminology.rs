//! Required-binding value sets, expanded once from the embedded ValueSets and
//! CodeSystems.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// One expanded value set: for each code system, its allowed codes, or
/// `None` when the codes cannot be known here (code system not embedded, or a
/// filter): such systems are accepted without checking.
#[derive(Debug, Default)]
pub(crate) struct CodeSet {
    pub(crate) url: String,
    systems: HashMap<String, Option<HashSet<String>>>,
}

/// Outcome of checking one code against a [`CodeSet`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid,
    /// Cannot be decided here (unknown system content): accepted.
    Unknown,
    Invalid,
}

impl CodeSet {
    /// A bare `code` (no system): valid if any system of the set has it.
    pub(crate) fn check_code(&self, code: &str) -> Verdict {
        if self.systems.values().any(Option::is_none) {
            return Verdict::Unknown;
        }
        if self.systems.values().flatten().any(|s| s.contains(code)) {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }

    /// A `Coding` (system + code).
    pub(crate) fn check_coding(&self, system: Option<&str>, code: &str) -> Verdict {
        match system {
            None => self.check_code(code),
            Some(system) => match self.systems.get(system) {
                Some(None) => Verdict::Unknown,
                Some(Some(codes)) if codes.contains(code) => Verdict::Valid,
                _ => Verdict::Invalid,
            },
        }
    }

    /// A short list of the allowed codes for messages.
    pub(crate) fn describe(&self) -> String {
        let mut codes: Vec<&str> = self.systems.values().flatten().flat_map(|s| s.iter().map(String::as_str)).collect();
        codes.sort_unstable();
        let total = codes.len();
        let mut text = codes.into_iter().take(40).collect::<Vec<_>>().join(", ");
        if total > 40 {
            text.push_str(&format!(", … ({total} codes)"));
        }
        text
    }
}

/// All required-binding value sets, by canonical URL (without version).
#[derive(Default)]
pub(crate) struct Terminology {
    sets: Vec<CodeSet>,
    by_url: HashMap<String, usize>,
}

impl Terminology {
    /// Expands every embedded ValueSet.
    pub(crate) fn build(resources: &[Value]) -> Terminology {
        let mut code_systems: HashMap<&str, HashSet<String>> = HashMap::new();
        let mut value_sets: HashMap<&str, &Value> = HashMap::new();
        for r in resources {
            let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
            match r.get("resourceType").and_then(Value::as_str) {
                Some("CodeSystem") => {
                    let mut codes = HashSet::new();
                    collect_concepts(r.get("concept"), &mut codes);
                    code_systems.insert(url, codes);
                }
                Some("ValueSet") => {
                    value_sets.insert(url, r);
                }
                _ => {}
            }
        }
        let mut terminology = Terminology::default();
        for url in value_sets.keys() {
            let mut set = CodeSet { url: url.to_string(), ..CodeSet::default() };
            expand(url, &value_sets, &code_systems, &mut set, &mut Vec::new());
            terminology.by_url.insert(url.to_string(), terminology.sets.len());
            terminology.sets.push(set);
        }
        terminology
    }

    /// Index of the value set with this canonical (a `|version` suffix is ignored).
    pub(crate) fn find(&self, canonical: &str) -> Option<usize> {
        let url = canonical.split('|').next().unwrap_or(canonical);
        self.by_url.get(url).copied()
    }

    pub(crate) fn get(&self, index: usize) -> &CodeSet {
        &self.sets[index]
    }
}

fn collect_concepts(concepts: Option<&Value>, out: &mut HashSet<String>) {
    for c in concepts.and_then(Value::as_array).into_iter().flatten() {
        if let Some(code) = c.get("code").and_then(Value::as_str) {
            out.insert(code.to_string());
        }
        collect_concepts(c.get("concept"), out);
    }
}

fn add(set: &mut CodeSet, system: &str, codes: Option<HashSet<String>>) {
    let entry = set.systems.entry(system.to_string()).or_insert(Some(HashSet::new()));
    match (entry.as_mut(), codes) {
        (Some(existing), Some(codes)) => existing.extend(codes),
        _ => *entry = None,
    }
}

fn expand(
    url: &str,
    value_sets: &HashMap<&str, &Value>,
    code_systems: &HashMap<&str, HashSet<String>>,
    set: &mut CodeSet,
    visiting: &mut Vec<String>,
) {
    if visiting.iter().any(|v| v == url) {
        return;
    }
    let Some(vs) = value_sets.get(url) else {
        // An imported value set that is not embedded: nothing can be checked.
        add(set, "", None);
        return;
    };
    visiting.push(url.to_string());
    let compose = vs.get("compose");
    for include in compose.and_then(|c| c.get("include")).and_then(Value::as_array).into_iter().flatten() {
        for imported in
            include.get("valueSet").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
        {
            let imported = imported.split('|').next().unwrap_or(imported);
            expand(imported, value_sets, code_systems, set, visiting);
        }
        let Some(system) = include.get("system").and_then(Value::as_str) else {
            continue;
        };
        if let Some(concepts) = include.get("concept").and_then(Value::as_array) {
            let codes =
                concepts.iter().filter_map(|c| c.get("code").and_then(Value::as_str)).map(str::to_string).collect();
            add(set, system, Some(codes));
        } else if include.get("filter").is_some() {
            add(set, system, None);
        } else {
            add(set, system, code_systems.get(system).cloned());
        }
    }
    for exclude in compose.and_then(|c| c.get("exclude")).and_then(Value::as_array).into_iter().flatten() {
        let system = exclude.get("system").and_then(Value::as_str).unwrap_or_default();
        if let Some(Some(codes)) = set.systems.get_mut(system) {
            for c in exclude.get("concept").and_then(Value::as_array).into_iter().flatten() {
                if let Some(code) = c.get("code").and_then(Value::as_str) {
                    codes.remove(code);
                }
            }
        }
    }
    visiting.pop();
}
