use super::{pairs, registry};
use crate::query::{Cond, Filter, Prefix, SortExpr, SystemMatch};
use crate::{Dialect, SearchError, SearchQuery, TotalMode};

fn parse(t: &str, q: &[(&str, &str)]) -> Result<SearchQuery, SearchError> {
    registry().parse_search(t, &pairs(q), false)
}

fn err_param(t: &str, q: &[(&str, &str)]) -> String {
    match parse(t, q) {
        Err(e) => e.param,
        Ok(q) => panic!("expected an error for {q:?}"),
    }
}

fn conds(q: &SearchQuery) -> Vec<Cond> {
    match &q.filters[0] {
        Filter::Values { ors, .. } => ors.clone(),
        f => panic!("{f:?}"),
    }
}

#[test]
fn kinds_prefixes_modifiers() {
    let q = parse(
        "Patient",
        &[("birthdate", "ge1974-12"), ("name:exact", "Peter"), ("family:contains", "alm"), ("gender", "male,female")],
    )
    .expect("ok");
    assert_eq!(q.filters.len(), 4);
    assert!(matches!(conds(&q)[0], Cond::Date { prefix: Prefix::Ge, .. }));
    for (p, prefix) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ] {
        for v in [
            "2023",
            "2023-05",
            "2023-05-01",
            "2023-05-01T10:00",
            "2023-05-01T10:00:00Z",
            "2023-05-01T10:00:00.123+02:00",
        ] {
            let q = parse("Slot", &[("start", &format!("{p}{v}"))]).expect(v);
            assert!(matches!(conds(&q)[0], Cond::Date { prefix: x, .. } if x == prefix));
        }
        let q = parse("ChargeItem", &[("factor-override", &format!("{p}0.8"))]).expect("number");
        assert!(matches!(conds(&q)[0], Cond::Number { prefix: x, .. } if x == prefix));
        let q =
            parse("ChargeItem", &[("quantity", &format!("{p}5.4|http://unitsofmeasure.org|mg"))]).expect("quantity");
        assert!(
            matches!(&conds(&q)[0], Cond::Quantity { prefix: x, system: Some(_), code: Some(c), .. } if *x == prefix && c == "mg")
        );
    }
    let q =
        parse("Patient", &[("identifier", "http://a|1,|2,http://b|,3"), ("gender:not", "male"), ("gender:text", "Mä")])
            .expect("tokens");
    assert_eq!(
        conds(&q),
        vec![
            Cond::Token { system: SystemMatch::Is("http://a".into()), code: Some("1".into()) },
            Cond::Token { system: SystemMatch::Null, code: Some("2".into()) },
            Cond::Token { system: SystemMatch::Is("http://b".into()), code: None },
            Cond::Token { system: SystemMatch::Any, code: Some("3".into()) },
        ]
    );
    assert!(matches!(&q.filters[1], Filter::Values { not: true, .. }));
    assert!(matches!(&q.filters[2], Filter::Values { ors, .. } if ors == &vec![Cond::TokenText("ma".into())]));
    let q = parse("Patient", &[("name", "a\\,b,c")]).expect("escaped comma");
    assert_eq!(conds(&q), vec![Cond::StrPrefix("a,b".into()), Cond::StrPrefix("c".into())]);
    let q = parse(
        "Appointment",
        &[("actor", "Patient/1,2,http://x/fhir/Practitioner/3"), ("actor:Patient", "4"), ("actor:identifier", "sys|v")],
    )
    .expect("refs");
    assert_eq!(conds(&q)[0], Cond::Ref { target_type: Some("Patient".into()), id: "1".into() });
    assert_eq!(conds(&q)[1], Cond::Ref { target_type: None, id: "2".into() });
    assert!(matches!(&conds(&q)[2], Cond::RefUrl { target: Some((t, i)), .. } if t == "Practitioner" && i == "3"));
    assert!(
        matches!(&q.filters[1], Filter::Values { ors, .. } if ors == &vec![Cond::Ref { target_type: Some("Patient".into()), id: "4".into() }])
    );
    assert!(
        matches!(&q.filters[2], Filter::Values { ors, .. } if ors == &vec![Cond::RefIdentifier { system: Some("sys".into()), value: Some("v".into()) }])
    );
    let q = parse("ValueSet", &[("url:below", "http://a/"), ("url:above", "http://a/b/c"), ("url", "http://a/b")])
        .expect("uris");
    assert!(matches!(&q.filters[0], Filter::Values { ors, .. } if matches!(&ors[0], Cond::UriBelow(_))));
    let q =
        parse("Patient", &[("birthdate:missing", "true"), ("_id", "a,b"), ("_lastUpdated", "gt2020-01-01T00:00:00Z")])
            .expect("special");
    assert!(matches!(&q.filters[0], Filter::Missing { missing: true, .. }));
    assert_eq!(q.filters[1], Filter::Id(vec!["a".into(), "b".into()]));
    assert!(matches!(&q.filters[2], Filter::LastUpdated(_)));
    let q = parse(
        "Patient",
        &[("_tag", "http://t|x"), ("_profile", "http://p"), ("_security", "http://s|R"), ("_source", "http://src")],
    )
    .expect("meta");
    assert_eq!(q.filters.len(), 4);
    let q = parse(
        "ActivityDefinition",
        &[("context-type-value", "focus$http://snomed.info/sct|123"), ("context-type-quantity", "age$gt18")],
    )
    .expect("composite");
    assert!(matches!(&q.filters[0], Filter::Composite { ors, .. } if ors.len() == 1 && ors[0].len() == 2));
}

#[test]
fn chains() {
    let q = parse("Appointment", &[("actor:Patient.name", "peter"), ("patient.identifier", "sys|1")]).expect("chains");
    assert!(matches!(&q.filters[0], Filter::Chain { target_type, .. } if target_type == "Patient"));
    assert!(matches!(&q.filters[1], Filter::Chain { target_type, .. } if target_type == "Patient"));
    assert_eq!(err_param("Appointment", &[("actor.name", "x")]), "actor.name");
    assert_eq!(err_param("Appointment", &[("status.name", "x")]), "status.name");
    assert_eq!(err_param("Appointment", &[("patient.organization.name", "x")]), "patient.organization.name");
    assert_eq!(err_param("Appointment", &[("actor:Patient.nope", "x")]), "actor:Patient.nope");
}

#[test]
fn result_params_and_links() {
    let q = parse(
        "Patient",
        &[
            ("name", "a b"),
            ("_count", "5"),
            ("_sort", "-birthdate,_id,name"),
            ("_total", "accurate"),
            ("_summary", "count"),
            ("_elements", "id,name"),
            ("_include", "Patient:organization"),
            ("_revinclude", "Appointment:patient"),
            ("_format", "json"),
        ],
    )
    .expect("ok");
    assert_eq!(q.count(), 5);
    assert_eq!(q.sort.len(), 3);
    assert!(q.sort[0].desc && matches!(q.sort[1].expr, SortExpr::Id));
    assert_eq!(q.total(), Some(TotalMode::Accurate));
    assert_eq!(q.summary(), Some("count"));
    assert!(q.count_only() && q.wants_total());
    assert_eq!(q.elements(), ["id", "name"]);
    assert!(q.has_includes());
    let q2 = q.clone();
    assert_eq!(
        q2.link_query(5, 42),
        "name=a%20b&_sort=-birthdate%2C_id%2Cname&_total=accurate&_summary=count&_elements=id%2Cname&_include=Patient:organization&_revinclude=Appointment:patient&_count=5&_snapshot=42&_offset=5"
    );
    assert_eq!(q2.previous_offset(), None);
    assert_eq!(q2.next_offset(), 5);
    let q = parse("Patient", &[("_count", "5000"), ("_offset", "10"), ("_snapshot", "7")]).expect("clamped");
    assert_eq!((q.count(), q.offset(), q.snapshot()), (1000, 10, Some(7)));
    assert_eq!(q.warnings().len(), 1);
    assert_eq!(q.previous_offset(), Some(0));
    let again =
        parse("Patient", &crate::tests::parsing::decode(&q.link_query(q.next_offset(), 7))).expect("round trip");
    assert_eq!(again.offset(), 1010);
    assert_eq!(again.snapshot(), Some(7));
}

/// Minimal decoding of a query string built by `link_query`.
pub(crate) fn decode(qs: &str) -> Vec<(&'static str, &'static str)> {
    let dec = |s: &str| -> &'static str {
        let bytes = percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        Box::leak(bytes.into_boxed_str())
    };
    qs.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (dec(k), dec(v))).collect()
}

#[test]
fn errors_name_the_parameter() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("Patient", &[("nope", "1")], "nope"),
        ("Patient", &[("birthdate", "2023-02-31")], "birthdate"),
        ("Patient", &[("birthdate", "ge2023-13")], "birthdate"),
        ("Patient", &[("birthdate:exact", "2023")], "birthdate:exact"),
        ("Patient", &[("name:fuzzy", "x")], "name:fuzzy"),
        ("Patient", &[("identifier", "a|b|c")], "identifier"),
        ("ChargeItem", &[("factor-override", "abc")], "factor-override"),
        ("ChargeItem", &[("quantity", "5|mg")], "quantity"),
        ("Patient", &[("_count", "-1")], "_count"),
        ("Patient", &[("_count", "x")], "_count"),
        ("Patient", &[("_sort", "nope")], "_sort"),
        ("Patient", &[("_total", "all")], "_total"),
        ("Patient", &[("_summary", "maybe")], "_summary"),
        ("Patient", &[("_include", "Patient:name")], "_include"),
        ("Patient", &[("_include", "Appointment:patient")], "_include"),
        ("Patient", &[("_revinclude", "Nope:x")], "_revinclude"),
        ("Patient", &[("_text", "x")], "_text"),
        ("Patient", &[("_has:Observation:patient:code", "x")], "_has:Observation:patient:code"),
        ("Patient", &[("general-practitioner", "Patient/../x")], "general-practitioner"),
        ("Patient", &[("birthdate:missing", "maybe")], "birthdate:missing"),
        ("Patient", &[("_id:exact", "1")], "_id:exact"),
        ("ActivityDefinition", &[("context-type-value", "focus")], "context-type-value"),
        ("Observation", &[("code", "1")], "Observation"),
        ("Patient", &[("_elements", "name;drop")], "_elements"),
    ];
    for (t, q, param) in cases {
        let e = parse(t, q).err().unwrap_or_else(|| panic!("{q:?} should fail"));
        assert_eq!(&e.param, param, "{q:?}: {}", e.message);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn lenient_and_injection() {
    let q = registry()
        .parse_search("Patient", &pairs(&[("nope", "1"), ("_text", "x"), ("name", "x")]), true)
        .expect("lenient");
    assert_eq!(q.warnings().len(), 2);
    assert_eq!(q.filters.len(), 1);
    assert!(!q.link_query(0, 1).contains("nope"));
    let q = registry().parse_search("Patient", &pairs(&[("birthdate", "bad")]), true);
    assert!(q.is_err());
    let evil = "x'; DROP TABLE resources;--";
    let q = parse("Patient", &[("name", evil), ("name:exact", evil), ("identifier", evil)]).expect("plain values");
    let sql = q.page_sql(Dialect::Sqlite, 1);
    assert!(!sql.text.contains("DROP"));
    assert!(sql.binds.contains(&crate::Bind::Text(evil.to_string())));
}

#[test]
fn open_to_takes_the_priority_classes_its_caller_gives() {
    let open_to = serde_json::json!({"resourceType": "SearchParameter", "url": "http://x/SearchParameter/Slot-open-to",
        "code": "open-to", "base": ["Slot"], "type": "special",
        "expression": "Slot.extension('http://x/StructureDefinition/slot-reserved-for').value"});
    let r = crate::Registry::with_extra(&[open_to]).with_open_to_classes(vec!["U".into(), "Z".into()]);
    let q = r.parse_search("Slot", &pairs(&[("open-to", "Z")]), false).expect("a class the caller gave");
    assert!(matches!(q.filters.as_slice(), [Filter::AnyOf(_)]), "{:?}", q.filters);
    let e = r.parse_search("Slot", &pairs(&[("open-to", "B")]), false).expect_err("a class the caller did not give");
    assert_eq!(e.param, "open-to");
    assert!(e.message.contains("a priority class (U or Z), not 'B'"), "{}", e.message);
}
