//! Provider code maps: one FHIR `ConceptMap` per provider, regional catalog code →
//! the provider's local code, and the translation through any ConceptMap.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use super::{line_of, MappingError};
use crate::fhir::check::{At, Checker};
use crate::fhir::names;

/// A provider's map, checked.
#[derive(Debug, Clone)]
pub struct ProviderMap {
    /// The provider's short code (the file name).
    pub provider: String,
    /// The ConceptMap, `{canonical-base}` replaced.
    pub concept_map: Value,
}

/// One translation of a code.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// `equivalent`, `wider`, `narrower`… (`unmatched` maps are not matches).
    pub equivalence: String,
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
    /// The ConceptMap's url.
    pub source: Option<String>,
}

impl ProviderMap {
    /// Reads and checks one `providers/<code>.json`.
    pub fn load(file: &Path, base: &str, checker: &Checker) -> Result<ProviderMap, MappingError> {
        let err = |line, msg: String| MappingError::new(file, line, msg);
        let provider = file.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        if provider.is_empty() || !provider.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(err(
                None,
                "the file name must be the provider's short code: a-z, 0-9 and -, then .json".into(),
            ));
        }
        let raw = std::fs::read_to_string(file).map_err(|e| err(None, format!("cannot read: {e}")))?;
        let text = raw.replace("{canonical-base}", base);
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| err(Some(e.line()), format!("not valid JSON: {e}; fix the file or remove it")))?;
        let id = format!("provider-{provider}");
        if value.get("resourceType").and_then(Value::as_str) != Some("ConceptMap") {
            return Err(err(line_of(&text, "resourceType", 1), "must be a FHIR ConceptMap".into()));
        }
        if value.get("id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(err(line_of(&text, "\"id\"", 1), format!("ConceptMap.id must be {id:?} (from the file name)")));
        }
        if let Err(e) = checker.check(&value, "ConceptMap", Some(&id), At::Body) {
            let first = e.issues().into_iter().next();
            let (at, text_msg) = first
                .map(|i| (i.expression.unwrap_or_else(|| "ConceptMap".into()), i.diagnostics))
                .unwrap_or_else(|| ("ConceptMap".into(), e.to_string()));
            return Err(err(None, format!("{at}: {text_msg}")));
        }
        check_groups(&value, &text, base).map_err(|(line, msg)| err(line, msg))?;
        Ok(ProviderMap { provider, concept_map: value })
    }

    /// The local code systems the map translates into (its groups' targets).
    pub fn targets(&self) -> Vec<String> {
        let groups = self.concept_map.get("group").and_then(Value::as_array).into_iter().flatten();
        groups.filter_map(|g| g.get("target").and_then(Value::as_str).map(str::to_string)).collect()
    }

    /// The provider's codes for a regional catalog code: empty when unmapped.
    pub fn translate(&self, catalog_code: &str, base: &str) -> Vec<Match> {
        translate(&self.concept_map, Some(&names::catalog_system(base)), catalog_code, None)
    }
}

/// Every group maps from the catalog to one local system, and no code is mapped twice.
fn check_groups(map: &Value, text: &str, base: &str) -> Result<(), (Option<usize>, String)> {
    let catalog = names::catalog_system(base);
    let groups = map.get("group").and_then(Value::as_array).cloned().unwrap_or_default();
    if groups.is_empty() {
        return Err((
            line_of(text, "\"resourceType\"", 1),
            "ConceptMap.group: a provider map needs at least one group".into(),
        ));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        let at = format!("ConceptMap.group[{g}]");
        if group.get("source").and_then(Value::as_str) != Some(catalog.as_str()) {
            return Err((
                line_of(text, "\"source\"", 1),
                format!("{at}.source must be the regional catalog {catalog}"),
            ));
        }
        if group.get("target").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err((line_of(text, "\"group\"", 1), format!("{at}.target: name the provider's local code system")));
        }
        for (e, element) in group.get("element").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let code = element.get("code").and_then(Value::as_str).unwrap_or("");
            let needle = format!("\"{code}\"");
            let first_line = seen.get(code).copied();
            let line = line_of(text, &needle, first_line.map_or(1, |l| l + 1));
            if let Some(first) = first_line {
                return Err((
                    line,
                    format!(
                        "{at}.element[{e}]: catalog code {code:?} is mapped twice (first at line {first}); keep one"
                    ),
                ));
            }
            seen.insert(code.to_string(), line.unwrap_or(0));
            let targets = element.get("target").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
            if targets == 0 {
                return Err((line, format!("{at}.element[{e}]: code {code:?} has no target; map it or remove it")));
            }
        }
    }
    Ok(())
}

/// Translates `code` (of `system`, when given) through one ConceptMap, keeping the
/// targets in `target_system` when given. Targets marked `unmatched` or `disjoint`
/// are not matches.
pub fn translate(map: &Value, system: Option<&str>, code: &str, target_system: Option<&str>) -> Vec<Match> {
    let url = map.get("url").and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::new();
    for group in map.get("group").and_then(Value::as_array).into_iter().flatten() {
        let source = group.get("source").and_then(Value::as_str);
        let target = group.get("target").and_then(Value::as_str);
        if system.is_some_and(|s| source.is_some_and(|g| g != s)) || target_system.is_some_and(|t| target != Some(t)) {
            continue;
        }
        let elements = group.get("element").and_then(Value::as_array).into_iter().flatten();
        for element in elements.filter(|e| e.get("code").and_then(Value::as_str) == Some(code)) {
            for t in element.get("target").and_then(Value::as_array).into_iter().flatten() {
                let equivalence = t.get("equivalence").and_then(Value::as_str).unwrap_or("equivalent").to_string();
                if equivalence == "unmatched" || equivalence == "disjoint" {
                    continue;
                }
                let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
                out.push(Match {
                    equivalence,
                    system: target.map(str::to_string),
                    code: text("code"),
                    display: text("display"),
                    source: url.clone(),
                });
            }
        }
    }
    out
}

/// The `Parameters` answer of `$translate` for `matches` of `code`.
pub fn translate_parameters(code: &str, matches: &[Match]) -> Value {
    let mut parameter = vec![json!({"name": "result", "valueBoolean": !matches.is_empty()})];
    if matches.is_empty() {
        parameter.push(json!({"name": "message", "valueString": format!("no mapping for code {code:?}: it is unmapped, not passed on")}));
    }
    for m in matches {
        let mut coding = json!({});
        for (k, v) in [("system", &m.system), ("code", &m.code), ("display", &m.display)] {
            if let Some(v) = v {
                coding[k] = json!(v);
            }
        }
        let mut part = vec![
            json!({"name": "equivalence", "valueCode": m.equivalence}),
            json!({"name": "concept", "valueCoding": coding}),
        ];
        if let Some(s) = &m.source {
            part.push(json!({"name": "source", "valueUri": s}));
        }
        parameter.push(json!({"name": "match", "part": part}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://example.org/cupola";

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn map_text(codes: &[(&str, &str)]) -> String {
        let elements: Vec<String> = codes
            .iter()
            .map(|(c, t)| format!("        {{\"code\": \"{c}\", \"target\": [{{\"code\": \"{t}\", \"equivalence\": \"equivalent\"}}]}}"))
            .collect();
        format!(
            "{{\n  \"resourceType\": \"ConceptMap\",\n  \"id\": \"provider-galliera\",\n  \"url\": \"{{canonical-base}}/ConceptMap/provider-galliera\",\n  \"status\": \"active\",\n  \"group\": [\n    {{\n      \"source\": \"{{canonical-base}}/CodeSystem/catalog\",\n      \"target\": \"http://galliera.it/codes\",\n      \"element\": [\n{}\n      ]\n    }}\n  ]\n}}\n",
            elements.join(",\n")
        )
    }

    #[test]
    fn a_map_loads_and_translates() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "galliera.json", &map_text(&[("89.52", "ECG01"), ("89.7A.3", "VCARD")]));
        let m = ProviderMap::load(&f, BASE, &Checker::shared()).unwrap();
        assert_eq!(m.provider, "galliera");
        assert_eq!(m.translate("89.52", BASE)[0].code.as_deref(), Some("ECG01"));
        assert!(m.translate("89.50", BASE).is_empty(), "unmapped is reported as no match");
        let p = translate_parameters("89.50", &[]);
        assert_eq!(p["parameter"][0]["valueBoolean"], false);
    }

    #[test]
    fn a_code_mapped_twice_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "galliera.json", &map_text(&[("89.52", "A"), ("89.50", "B"), ("89.52", "C")]));
        let e = ProviderMap::load(&f, BASE, &Checker::shared()).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("mapped twice"), "{e}");
    }

    #[test]
    fn broken_files_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "galliera.json", "{\n  \"resourceType\": \"ConceptMap\",\n  \"id\": \n}");
        let e = ProviderMap::load(&f, BASE, &Checker::shared()).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let f = write(dir.path(), "Bad Name.json", &map_text(&[]));
        assert!(ProviderMap::load(&f, BASE, &Checker::shared()).unwrap_err().message.contains("file name"));
        let f = write(dir.path(), "other.json", &map_text(&[("89.52", "A")]));
        assert!(ProviderMap::load(&f, BASE, &Checker::shared()).unwrap_err().message.contains("provider-other"));
    }
}
