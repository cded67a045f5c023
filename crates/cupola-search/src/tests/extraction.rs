use serde_json::{json, Value};

use super::{example, examples_dir, registry};
use crate::{IndexRow, IndexValue};
use cupola_types::dates::parse_range;

fn rows_of(rows: &[IndexRow], param: &str) -> Vec<IndexValue> {
    rows.iter().filter(|r| r.param == param).map(|r| r.value.clone()).collect()
}

fn token(system: Option<&str>, code: &str) -> (Option<String>, Option<String>) {
    (system.map(str::to_string), Some(code.to_string()))
}

fn tokens(rows: &[IndexRow], param: &str) -> Vec<(Option<String>, Option<String>)> {
    rows_of(rows, param)
        .into_iter()
        .filter_map(|v| match v {
            IndexValue::Token { system, code, .. } => Some((system, code)),
            _ => None,
        })
        .collect()
}

#[test]
fn registry_loads() {
    let r = registry();
    let p = r.params_of("Patient");
    let codes: Vec<&str> = p.iter().map(|p| p.code.as_str()).collect();
    for c in [
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
        "name",
        "birthdate",
        "identifier",
        "general-practitioner",
    ] {
        assert!(codes.contains(&c), "{c} missing from {codes:?}");
    }
    assert!(!codes.contains(&"_text"));
    let name = p.iter().find(|p| p.code == "family").expect("family");
    assert_eq!(name.kind, "string");
    assert!(name.definition.starts_with("http://hl7.org/fhir/SearchParameter/"));
    assert!(r.params_of("Location").iter().any(|p| p.code == "near"));
    assert!(r.params_of("Nope").is_empty());
    // Every served type has its R4 parameters (Subscription and Basic, the fewest, six).
    for t in crate::RESOURCE_TYPES {
        assert!(r.params_of(t).len() >= 6, "{t}: {}", r.params_of(t).len());
    }
}

#[test]
fn patient_example() {
    let p = example("Patient-example.json");
    let rows = registry().extract("Patient", &p);
    let families: Vec<String> = rows_of(&rows, "family")
        .into_iter()
        .filter_map(|v| match v {
            IndexValue::String { exact, .. } => Some(exact),
            _ => None,
        })
        .collect();
    assert_eq!(families, vec!["Chalmers", "Windsor"]);
    assert!(rows_of(&rows, "name").contains(&IndexValue::String { norm: "jim".into(), exact: "Jim".into() }));
    assert!(tokens(&rows, "identifier").contains(&token(Some("urn:oid:1.2.36.146.595.217.0.1"), "12345")));
    assert_eq!(tokens(&rows, "gender"), vec![token(None, "male")]);
    assert_eq!(tokens(&rows, "active"), vec![token(None, "true")]);
    assert_eq!(tokens(&rows, "deceased"), vec![token(None, "false")]);
    assert!(tokens(&rows, "phone").contains(&token(Some("phone"), "(03) 5555 6473")));
    let b = parse_range("1974-12-25").expect("date");
    assert_eq!(rows_of(&rows, "birthdate"), vec![IndexValue::Date { lo: b.lo, hi: b.hi }]);
    assert!(rows_of(&rows, "address-city")
        .contains(&IndexValue::String { norm: "pleasantville".into(), exact: "PleasantVille".into() }));
    assert!(rows_of(&rows, "organization").iter().any(|v| matches!(v, IndexValue::Reference { target_type: Some(t), target_id: Some(i), .. } if t == "Organization" && i == "1")));
}

#[test]
fn appointment_example() {
    let a = example("Appointment-example.json");
    let rows = registry().extract("Appointment", &a);
    let start = parse_range("2013-12-10T09:00:00Z").expect("date");
    assert_eq!(rows_of(&rows, "date"), vec![IndexValue::Date { lo: start.lo, hi: start.hi }]);
    assert_eq!(tokens(&rows, "status"), vec![token(None, "booked")]);
    let refs = |param: &str| -> Vec<String> {
        rows_of(&rows, param)
            .into_iter()
            .filter_map(|v| match v {
                IndexValue::Reference { raw, .. } => raw,
                _ => None,
            })
            .collect()
    };
    assert_eq!(refs("actor"), vec!["Patient/example", "Practitioner/example", "Location/1"]);
    // `patient`, `practitioner`, `location`: the `actor` rows of their type.
    for narrowing in ["patient", "practitioner", "location"] {
        assert!(refs(narrowing).is_empty(), "{narrowing}");
    }
    assert!(tokens(&rows, "specialty").contains(&token(Some("http://snomed.info/sct"), "394814009")));
    let st = rows_of(&rows, "service-type");
    assert!(st.contains(&IndexValue::Token {
        system: None,
        code: Some("52".into()),
        text: Some("general discussion".into())
    }));
}

#[test]
fn every_example_extracts() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let v: Value = serde_json::from_str(&text).expect("json");
        let rtype = v.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_string();
        let rows = registry().extract(&rtype, &v);
        if crate::RESOURCE_TYPES.contains(&rtype.as_str()) {
            assert!(!rows.is_empty(), "{}", path.display());
            n += 1;
        }
        let stmts = registry().index_inserts(1, &rtype, &rows, crate::Dialect::Sqlite);
        for s in stmts {
            assert!(s.binds.len() < 32766);
        }
    }
    assert!(n > 100);
}

#[test]
fn composite_quantity_money_canonical() {
    let r = json!({"resourceType": "ActivityDefinition", "url": "http://x/ActivityDefinition/a", "status": "active",
        "useContext": [
            {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
             "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "123"}]}},
            {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
             "valueRange": {"low": {"value": 18, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}, "high": {"value": 65.5}}}
        ],
        "relatedArtifact": [{"type": "depends-on", "resource": "http://x/Library/lib|1.0"}, {"type": "citation", "url": "http://y"}]});
    let rows = registry().extract("ActivityDefinition", &r);
    let comp: Vec<&IndexRow> = rows.iter().filter(|r| r.param.starts_with("context-type-value$")).collect();
    assert_eq!(comp.len(), 2);
    assert!(comp.iter().all(|r| r.group == 1));
    let q: Vec<&IndexRow> = rows.iter().filter(|r| r.param.starts_with("context-type-quantity$")).collect();
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|r| r.group == 2));
    assert!(q.iter().any(
        |r| matches!(&r.value, IndexValue::Quantity { lo: 18_000_000, hi: 65_500_000, code: Some(c), .. } if c == "a")
    ));
    let dep = rows_of(&rows, "depends-on");
    assert_eq!(
        dep,
        vec![IndexValue::Reference {
            target_type: Some("Library".into()),
            target_id: Some("lib".into()),
            raw: Some("http://x/Library/lib|1.0".into()),
            ident_system: None,
            ident_value: None
        }]
    );
    let inv = json!({"resourceType": "Invoice", "status": "issued", "totalGross": {"value": 48.00, "currency": "EUR"}});
    let rows = registry().extract("Invoice", &inv);
    assert_eq!(
        rows_of(&rows, "totalgross"),
        vec![IndexValue::Quantity {
            lo: 48_000_000,
            hi: 48_000_000,
            system: Some("urn:iso:std:iso:4217".into()),
            code: Some("EUR".into()),
            unit: None
        }]
    );
}

#[test]
fn meta_and_periods() {
    let r = json!({"resourceType": "Schedule", "meta": {"tag": [{"system": "http://t", "code": "x"}], "profile": ["http://p"], "source": "http://s#1"},
        "planningHorizon": {"start": "2023-01-01"}, "active": true});
    let rows = registry().extract("Schedule", &r);
    assert_eq!(tokens(&rows, "_tag"), vec![token(Some("http://t"), "x")]);
    assert_eq!(rows_of(&rows, "_profile"), vec![IndexValue::Uri { uri: "http://p".into() }]);
    assert_eq!(rows_of(&rows, "_source"), vec![IndexValue::Uri { uri: "http://s#1".into() }]);
    let lo = parse_range("2023-01-01").expect("d").lo;
    assert_eq!(rows_of(&rows, "date"), vec![IndexValue::Date { lo, hi: i64::MAX }]);
}

/// A parameter that narrows another to one target type has no rows of its own: the
/// rows of the one it narrows serve it.
#[test]
fn narrowing_parameters_have_no_rows_of_their_own() {
    let r = registry();
    let narrowing = r.narrowing_params();
    for (t, p) in [("Appointment", "patient"), ("Appointment", "location"), ("AuditEvent", "patient")] {
        assert!(narrowing.contains(&(t.to_string(), p.to_string())), "{t}.{p} in {narrowing:?}");
    }
    assert!(!narrowing.iter().any(|(_, p)| p == "actor" || p == "subject" || p == "entity"));
    let appt = json!({"resourceType": "Appointment", "status": "booked", "participant": [
        {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
        {"actor": {"reference": "Location/l1"}, "status": "accepted"}]});
    let rows = r.extract("Appointment", &appt);
    assert_eq!(rows_of(&rows, "actor").len(), 2);
    assert!(rows_of(&rows, "patient").is_empty() && rows_of(&rows, "location").is_empty());
    let audit = json!({"resourceType": "AuditEvent", "entity": [{"what": {"reference": "Patient/p1"}}]});
    let rows = r.extract("AuditEvent", &audit);
    assert_eq!(rows_of(&rows, "entity").len(), 1);
    assert!(rows_of(&rows, "patient").is_empty());
}

#[test]
fn each_row_once_in_the_order_found_with_few_values_or_many() {
    // Few values: the same identifier twice gives one row.
    let id = json!({"system": "urn:x", "value": "1"});
    let p = json!({"resourceType": "Patient", "identifier": [id, {"system": "urn:x", "value": "2"}, id]});
    let rows = registry().extract("Patient", &p);
    assert_eq!(tokens(&rows, "identifier"), vec![token(Some("urn:x"), "1"), token(Some("urn:x"), "2")]);
    // Many values (past the scan, into the set): 80 codes, each given twice, in order.
    let codes: Vec<String> = (0..80).map(|n| format!("c{n}")).collect();
    let concept: Vec<Value> = codes.iter().chain(codes.iter()).map(|c| json!({"code": c})).collect();
    let cs = json!({"resourceType": "CodeSystem", "url": "urn:cs", "status": "active", "content": "complete", "concept": concept});
    let rows = registry().extract("CodeSystem", &cs);
    let found: Vec<String> = tokens(&rows, "code").into_iter().filter_map(|(_, c)| c).collect();
    assert_eq!(found, codes);
    let mut all = rows.clone();
    all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    all.dedup();
    assert_eq!(all.len(), rows.len(), "no row twice");
}
