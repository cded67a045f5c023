//! The FHIR resources of the catalog, built from its rows. Pure: the same rows give
//! the same resources, field for field, so that a re-import changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::retired::is_retired;
use super::{branches, service_id, tariff_id, value_set_id, CatalogEntry, PROP_INACTIVE, PROP_NATIONAL, PROP_STATUS};
use crate::fhir::names::{self, PROP_ACCESS, PROP_BRANCH, PROP_KIND};

/// Every resource of a catalog made of `entries` alone: the branch and catalog
/// CodeSystems, a ValueSet per branch present, an ActivityDefinition per code and a
/// ChargeItemDefinition per tariff (each ending the day before the code's next one).
pub fn build_resources(base: &str, entries: &[CatalogEntry]) -> Vec<Value> {
    let codes = first_of_each_code(entries);
    let concepts: Vec<Value> = codes.iter().map(|e| concept(e)).collect();
    let sets = value_sets(base, &concepts);
    let mut out = vec![branch_code_system(base), catalog_code_system(base, concepts)];
    out.extend(sets);
    out.extend(codes.into_iter().map(|e| activity_definition(base, e)));
    out.extend(charge_item_definitions(base, entries, &BTreeMap::new()).into_iter().map(|(_, v)| v));
    out
}

/// One entry per code (the first row of each), sorted by code.
pub(crate) fn first_of_each_code(entries: &[CatalogEntry]) -> Vec<&CatalogEntry> {
    let mut by_code: BTreeMap<&str, &CatalogEntry> = BTreeMap::new();
    for e in entries {
        by_code.entry(e.code.as_str()).or_insert(e);
    }
    by_code.into_values().collect()
}

/// `CodeSystem/branch`: the specialist branches.
pub fn branch_code_system(base: &str) -> Value {
    let concepts: Vec<Value> = branches()
        .iter()
        .map(|b| {
            let mut c = json!({"code": b.code, "display": b.display});
            if let Some(d) = &b.definition {
                c["definition"] = json!(d);
            }
            c
        })
        .collect();
    json!({
        "resourceType": "CodeSystem",
        "id": "branch",
        "url": names::branch_system(base),
        "name": "CupolaBranch",
        "title": "Branche specialistiche",
        "status": "active",
        "description": "The specialist branches (branche specialistiche) of the regional catalog of services.",
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "concept": concepts,
    })
}

/// The catalog concept of a code, with its properties.
pub fn concept(e: &CatalogEntry) -> Value {
    json!({
        "code": e.code,
        "display": e.display,
        "property": [
            {"code": PROP_BRANCH, "valueCode": e.branch},
            {"code": PROP_KIND, "valueCode": e.kind.code()},
            {"code": PROP_ACCESS, "valueCode": e.access.code()},
            {"code": PROP_NATIONAL, "valueBoolean": e.national},
        ],
    })
}

/// `CodeSystem/catalog` holding `concepts` (sorted here by code).
pub fn catalog_code_system(base: &str, mut concepts: Vec<Value>) -> Value {
    concepts.sort_by(|a, b| code_of(a).cmp(code_of(b)));
    json!({
        "resourceType": "CodeSystem",
        "id": "catalog",
        "url": names::catalog_system(base),
        "name": "CupolaCatalog",
        "title": "Catalogo regionale delle prestazioni",
        "status": "active",
        "description": "The regional catalog of outpatient services: national nomenclator codes and regional ones.",
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "property": [
            {"code": PROP_BRANCH, "uri": names::branch_system(base), "type": "code",
             "description": "Specialist branch (a code of the branch CodeSystem)"},
            {"code": PROP_KIND, "type": "code",
             "description": "visit or exam (diagnostic): decides the D-class deadline, 30 or 60 days"},
            {"code": PROP_ACCESS, "type": "code",
             "description": "first or follow-up: the default access, which a prescription may override"},
            {"code": PROP_NATIONAL, "type": "boolean",
             "description": "true for a code of the national nomenclator, false for a regional code"},
            {"code": PROP_STATUS, "uri": CONCEPT_STATUS, "type": "code",
             "description": "retired on a code the regional catalog no longer lists (absent: active)"},
            {"code": PROP_INACTIVE, "uri": CONCEPT_INACTIVE, "type": "boolean",
             "description": "true on a retired code (absent: false)"},
        ],
        "concept": concepts,
    })
}

/// The standard FHIR concept properties a retired code carries.
const CONCEPT_STATUS: &str = "http://hl7.org/fhir/concept-properties#status";
const CONCEPT_INACTIVE: &str = "http://hl7.org/fhir/concept-properties#inactive";

fn code_of(concept: &Value) -> &str {
    concept["code"].as_str().unwrap_or("")
}

/// The value of a concept's code property.
pub(crate) fn property<'a>(concept: &'a Value, name: &str) -> Option<&'a str> {
    concept["property"].as_array()?.iter().find(|p| p["code"] == name)?["valueCode"].as_str()
}

/// A ValueSet per branch of `concepts` (catalog concepts), listing its bookable codes
/// (retired ones left out) by code.
pub fn value_sets(base: &str, concepts: &[Value]) -> Vec<Value> {
    let mut by_branch: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for c in concepts.iter().filter(|c| !is_retired(c)) {
        if let Some(branch) = property(c, PROP_BRANCH) {
            by_branch.entry(branch).or_default().push(c);
        }
    }
    by_branch
        .into_iter()
        .map(|(branch, mut cs)| {
            cs.sort_by(|a, b| code_of(a).cmp(code_of(b)));
            let listed: Vec<Value> = cs.iter().map(|c| json!({"code": c["code"], "display": c["display"]})).collect();
            let title = branches().iter().find(|b| b.code == branch).map_or(branch, |b| b.display.as_str());
            json!({
                "resourceType": "ValueSet",
                "id": value_set_id(branch),
                "url": names::branch_value_set(base, branch),
                "title": format!("Prestazioni di {title}"),
                "status": "active",
                "compose": {"include": [{"system": names::catalog_system(base), "concept": listed}]},
            })
        })
        .collect()
}

/// The service of a code.
pub fn activity_definition(base: &str, e: &CatalogEntry) -> Value {
    let id = service_id(&e.code);
    let mut service = json!({
        "resourceType": "ActivityDefinition",
        "id": id,
        "url": format!("{base}/ActivityDefinition/{id}"),
        "identifier": [{"system": names::catalog_system(base), "value": e.code}],
        "title": e.display,
        "status": "active",
        "topic": [{"coding": [{"system": names::branch_system(base), "code": e.branch}]}],
        "kind": "ServiceRequest",
        "code": {"coding": [{"system": names::catalog_system(base), "code": e.code, "display": e.display}]},
    });
    if let Some(text) = &e.preparation {
        service["extension"] = json!([{"url": names::structure(base, PREPARATION), "valueString": text}]);
    }
    service
}

/// The extension of a service's preparation notes for the patient (R4's
/// ActivityDefinition has no element for them: `usage` is for clinicians).
pub const PREPARATION: &str = "preparation";

/// The tariff of `e` from `e.valid_from` to `end` (included; `None`: open).
pub fn charge_item_definition(base: &str, e: &CatalogEntry, end: Option<NaiveDate>) -> Value {
    let id = tariff_id(&e.code, e.valid_from);
    let mut period = json!({"start": e.valid_from.to_string()});
    if let Some(end) = end {
        period["end"] = json!(end.to_string());
    }
    json!({
        "resourceType": "ChargeItemDefinition",
        "id": id,
        "url": format!("{base}/ChargeItemDefinition/{id}"),
        "identifier": [{"system": names::catalog_system(base), "value": e.code}],
        "title": format!("Tariffa {} dal {}", e.code, e.valid_from.format("%d/%m/%Y")),
        "status": "active",
        "code": {"coding": [{"system": names::catalog_system(base), "code": e.code, "display": e.display}]},
        "effectivePeriod": period,
        "propertyGroup": [{"priceComponent": [{"type": "base", "amount": {"value": money(e.tariff), "currency": "EUR"}}]}],
    })
}

/// An exact JSON number for a decimal (`11.62` stays `11.62`).
pub fn money(d: Decimal) -> Value {
    d.to_string().parse::<serde_json::Number>().map(Value::Number).unwrap_or(Value::Null)
}

/// The ChargeItemDefinitions of `entries`' tariffs, by (code, start), and those of
/// `stored` (code → start → stored resource) whose date the entries do not have, with
/// their period end set from all dates of their code. Stored tariffs of codes without
/// entries are left out (nothing to change).
pub(crate) fn charge_item_definitions(
    base: &str,
    entries: &[CatalogEntry],
    stored: &BTreeMap<String, BTreeMap<NaiveDate, Value>>,
) -> Vec<((String, NaiveDate), Value)> {
    let mut by_code: BTreeMap<&str, BTreeMap<NaiveDate, Option<&CatalogEntry>>> = BTreeMap::new();
    for e in entries {
        by_code.entry(&e.code).or_default().insert(e.valid_from, Some(e));
    }
    for (code, dates) in by_code.iter_mut() {
        for start in stored.get(*code).map(|s| s.keys().copied().collect::<BTreeSet<_>>()).unwrap_or_default() {
            dates.entry(start).or_insert(None);
        }
    }
    let mut out = Vec::new();
    for (code, dates) in by_code {
        let starts: Vec<NaiveDate> = dates.keys().copied().collect();
        for (i, (start, entry)) in dates.into_iter().enumerate() {
            let end = starts.get(i + 1).and_then(|next| next.pred_opt());
            let resource = match entry {
                Some(e) => charge_item_definition(base, e, end),
                None => match stored.get(code).and_then(|s| s.get(&start)) {
                    Some(old) => with_end(old.clone(), end),
                    None => continue,
                },
            };
            out.push(((code.to_string(), start), resource));
        }
    }
    out
}

/// A stored tariff with its period's end set (or removed), `meta` dropped.
pub(super) fn with_end(mut resource: Value, end: Option<NaiveDate>) -> Value {
    if let Some(fields) = resource.as_object_mut() {
        fields.remove("meta");
    }
    let period = &mut resource["effectivePeriod"];
    match (end, period.as_object_mut()) {
        (Some(end), _) => period["end"] = json!(end.to_string()),
        (None, Some(p)) => {
            p.remove("end");
        }
        (None, None) => {}
    }
    resource
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::catalog::parse_csv;
    use crate::fhir::check::{At, Checker};

    pub(in crate::catalog) const BASE: &str = "http://example.org/cupola";

    pub(in crate::catalog) fn entries() -> Vec<CatalogEntry> {
        parse_csv(
            "code,display,branch,kind,access,tariff,valid_from\n\
             89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01\n\
             89.52,Elettrocardiogramma,cardiology,exam,first,12.50,2026-01-01\n\
             89.7A.3,Prima visita cardiologica,cardiology,visit,first,20.66,2024-01-01\n\
             90.62.2,Emocromo,laboratory,exam,first,3.17,2024-01-01\n",
        )
        .expect("parses")
    }

    #[test]
    fn two_tariffs_of_a_code_make_two_periods_the_older_ending_the_day_before() {
        let all = build_resources(BASE, &entries());
        let tariffs: Vec<&Value> = all
            .iter()
            .filter(|r| r["resourceType"] == "ChargeItemDefinition" && r["code"]["coding"][0]["code"] == "89.52")
            .collect();
        assert_eq!(tariffs.len(), 2);
        assert_eq!(tariffs[0]["id"], "tariff-89-52-20240101");
        assert_eq!(tariffs[0]["effectivePeriod"], json!({"start": "2024-01-01", "end": "2025-12-31"}));
        assert_eq!(tariffs[1]["id"], "tariff-89-52-20260101");
        assert_eq!(tariffs[1]["effectivePeriod"], json!({"start": "2026-01-01"}));
        let price = &tariffs[0]["propertyGroup"][0]["priceComponent"][0]["amount"];
        assert_eq!(price["value"].to_string(), "11.62", "the exact decimal");
        assert_eq!(price["currency"], "EUR");
    }

    #[test]
    fn every_resource_is_valid_r4_and_ids_are_deterministic() {
        let all = build_resources(BASE, &entries());
        let checker = Checker::shared();
        for r in &all {
            let (t, id) = (r["resourceType"].as_str().expect("type"), r["id"].as_str().expect("id"));
            checker.check(r, t, Some(id), At::Body).unwrap_or_else(|e| panic!("{t}/{id}: {e:?}"));
        }
        let ids: Vec<String> = all.iter().map(|r| format!("{}/{}", r["resourceType"], r["id"])).collect();
        assert_eq!(
            ids.iter().map(|s| s.replace('"', "")).collect::<Vec<_>>(),
            [
                "CodeSystem/branch",
                "CodeSystem/catalog",
                "ValueSet/catalog-cardiology",
                "ValueSet/catalog-laboratory",
                "ActivityDefinition/svc-89-52",
                "ActivityDefinition/svc-89-7A-3",
                "ActivityDefinition/svc-90-62-2",
                "ChargeItemDefinition/tariff-89-52-20240101",
                "ChargeItemDefinition/tariff-89-52-20260101",
                "ChargeItemDefinition/tariff-89-7A-3-20240101",
                "ChargeItemDefinition/tariff-90-62-2-20240101",
            ]
        );
        assert_eq!(build_resources(BASE, &entries()), all, "the same rows give the same resources");
        let catalog = &all[1];
        assert_eq!(catalog["url"], "http://example.org/cupola/CodeSystem/catalog");
        assert_eq!(catalog["concept"].as_array().map(Vec::len), Some(3));
        let vs = &all[2];
        assert_eq!(
            vs["compose"]["include"][0]["concept"],
            json!([{"code": "89.52", "display": "Elettrocardiogramma"},
            {"code": "89.7A.3", "display": "Prima visita cardiologica"}])
        );
    }

    #[test]
    fn the_sample_catalog_parses_into_valid_resources() {
        let entries = parse_csv(include_str!("../../profiles/demo/catalog-liguria.csv")).expect("sample parses");
        let codes = first_of_each_code(&entries);
        assert!(codes.len() >= 55, "{} codes", codes.len());
        let branches: BTreeSet<&str> = codes.iter().map(|e| e.branch.as_str()).collect();
        assert!(branches.len() >= 10, "{branches:?}");
        assert!(codes.iter().any(|e| !e.national), "some regional codes");
        let ecg = codes.iter().find(|e| e.code == "89.52").expect("ECG");
        assert_eq!(ecg.tariff.to_string(), "11.62");
        let checker = Checker::shared();
        for r in build_resources(BASE, &entries) {
            let (t, id) = (r["resourceType"].as_str().expect("type"), r["id"].as_str().expect("id"));
            checker.check(&r, t, Some(id), At::Body).unwrap_or_else(|e| panic!("{t}/{id}: {e:?}"));
        }
    }

    #[test]
    fn a_stored_tariff_not_in_the_file_is_kept_and_closed_by_a_newer_one() {
        let file = parse_csv(
            "code,display,branch,kind,access,tariff,valid_from\n89.52,Elettrocardiogramma,cardiology,exam,first,12.50,2026-01-01\n",
        )
        .expect("parses");
        let old = build_resources(BASE, &entries()[..1])
            .into_iter()
            .find(|r| r["id"] == "tariff-89-52-20240101")
            .expect("old tariff");
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        let stored = BTreeMap::from([("89.52".to_string(), BTreeMap::from([(start, old.clone())]))]);
        let built = charge_item_definitions(BASE, &file, &stored);
        assert_eq!(built.len(), 2);
        assert_eq!(built[0].1["effectivePeriod"]["end"], "2025-12-31");
        assert_eq!(built[0].1["propertyGroup"], old["propertyGroup"], "its price unchanged");
        assert_eq!(built[1].1["id"], "tariff-89-52-20260101");
    }
}
