//! Operation parameters read through their declarations: other types that mean the
//! same are taken, the rest refused naming the parameter; and the declarations served
//! as the OperationDefinitions the CapabilityStatement names.

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{catalog_codes, counter, prescription, region, send, window, BASE, NRE};
use crate::helpers::{expression, As, Backend, TestApp};

/// The slots of `$find`'s proposals, in order.
fn slots_of(found: &Value) -> Vec<String> {
    let entries = found["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().filter_map(|e| e["resource"]["slot"][0]["reference"].as_str().map(str::to_string)).collect()
}

/// A `$find` Parameters over the test window with `extra`.
fn find_body(extra: Value) -> Value {
    let today = crate::helpers::today_rome();
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDate": today.to_string()},
        {"name": "end", "valueDateTime": format!("{}T23:59:59+01:00", today + chrono::Duration::days(10))},
        {"name": "_count", "valueInteger": 3},
        extra]})
}

async fn find_takes_a_token_as_identifier_coding_concept_or_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    region(&app.base, &app.client, 3, 1).await;
    catalog_codes(&app).await;
    // region() made Patient/p1, whom the prescription names.
    let sr = prescription("sr-n1", "070A12345678901", "89.52", "D", "p1");
    assert_eq!(app.put("ServiceRequest/sr-n1", &sr).await.status(), 201);
    let r = app.req_as(
        &counter(),
        Method::GET,
        &format!("Appointment/$find?{}&referral-identifier=070A12345678901&_count=3", window()),
    );
    let by_query: Value = r.send().await.unwrap().json().await.unwrap();
    let expected = slots_of(&by_query);
    assert_eq!(expected.len(), 3, "{by_query}");
    for value in [
        json!({"valueString": "070A12345678901"}),
        json!({"valueString": format!("{NRE}|070A12345678901")}),
        json!({"valueIdentifier": {"system": NRE, "value": "070A12345678901"}}),
        json!({"valueCoding": {"system": NRE, "code": "070A12345678901"}}),
        json!({"valueCodeableConcept": {"coding": [{"system": NRE, "code": "070A12345678901"}]}}),
    ] {
        let mut p = value.clone();
        p["name"] = json!("referral-identifier");
        let (status, found) = send(&app, &counter(), Method::POST, "Appointment/$find", &find_body(p)).await;
        assert_eq!(status, 200, "{value}: {found}");
        assert_eq!(slots_of(&found), expected, "{value}");
    }
    // service-type as a CodeableConcept: each coding is one of the services.
    let concept = json!({"name": "service-type", "valueCodeableConcept": {"coding": [
        {"system": format!("{BASE}/CodeSystem/catalog"), "code": "89.52"}]}});
    let (status, found) = send(&app, &counter(), Method::POST, "Appointment/$find", &find_body(concept)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(slots_of(&found).len(), 3, "{found}");
}

/// POSTs `body` to `path` as `who`; the status and the OperationOutcome.
async fn refused(app: &TestApp, who: &As, path: &str, body: Value) -> (u16, String, String) {
    let (status, oo) = send(app, who, Method::POST, path, &body).await;
    let diagnostics = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default().to_string();
    (status, expression(&oo), diagnostics)
}

fn parameters(list: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": list})
}

async fn wrong_types_missing_and_unknown_parameters_are_refused_naming_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = As::admin();
    for (who, path, body, name, says) in [
        (counter(), "Appointment/$find", find_body(json!({"name": "start", "valueBoolean": true})), "start", "date"),
        (
            counter(),
            "Appointment/$find",
            find_body(json!({"name": "referral-identifier", "valueBoolean": true})),
            "referral-identifier",
            "token",
        ),
        (
            counter(),
            "Appointment/$find",
            find_body(json!({"name": "patient-reference", "valueInteger": 3})),
            "patient-reference",
            "reference",
        ),
        (
            admin.clone(),
            "Schedule/s1/$generate-slots",
            parameters(json!([{"name": "from", "valueBoolean": false}])),
            "from",
            "date",
        ),
        (
            admin.clone(),
            "Schedule/s1/$generate-slots",
            parameters(json!([{"name": "from", "valueDate": "2026-02-31"}])),
            "from",
            "date",
        ),
        (
            admin.clone(),
            "$recovery",
            parameters(json!([{"name": "date", "valueCoding": {"code": "x"}}])),
            "date",
            "date",
        ),
        (
            counter(),
            "Appointment/$book",
            parameters(json!([{"name": "appointment-resource", "valueString": "a1"}])),
            "appointment-resource",
            "resource",
        ),
        (counter(), "Appointment/$hold", parameters(json!([])), "appointment-reference", "needs"),
        (
            counter(),
            "Appointment/$hold",
            parameters(json!([
            {"name": "appointment-reference", "valueReference": {"reference": "Appointment/a1"}},
            {"name": "appointment-reference", "valueString": "Appointment/a2"}])),
            "appointment-reference",
            "at most",
        ),
        (
            counter(),
            "Appointment/a1/$cancel",
            parameters(json!([{"name": "colour", "valueString": "red"}])),
            "colour",
            "reason",
        ),
        (admin.clone(), "$recovery", parameters(json!([{"name": "colour", "valueString": "red"}])), "colour", "date"),
        (
            admin.clone(),
            "ConceptMap/$translate",
            parameters(json!([{"name": "code", "valueCode": "89.52"}, {"name": "reverse", "valueString": "maybe"}])),
            "reverse",
            "boolean",
        ),
    ] {
        let (status, at, diagnostics) = refused(&app, &who, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {diagnostics}");
        assert_eq!(at, name, "{path} {body}: {diagnostics}");
        assert!(diagnostics.contains(says), "{path} {body}: {diagnostics}");
    }
    // The query's text is checked as the declared type.
    for (query, name) in [("_count=many", "_count"), ("start=2026-02-31", "start"), ("end=tomorrow", "end")] {
        let path = format!("Appointment/$find?start=2026-01-01&end=2026-01-02&service-type=89.52&{query}");
        let r = app.req_as(&counter(), Method::GET, &path).send().await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(expression(&r.json().await.unwrap()), name, "{query}");
    }
    let r = app.get("$outbox?_count=ten").await;
    assert_eq!(r.status(), 400);
    assert_eq!(expression(&r.json().await.unwrap()), "_count");
}

/// The id of an OperationDefinition canonical the CapabilityStatement names.
fn id_of(canonical: &str) -> String {
    let prefix = format!("{BASE}/OperationDefinition/");
    canonical.strip_prefix(&prefix).unwrap_or_else(|| panic!("{canonical} is not cupola's")).to_string()
}

async fn every_listed_operation_is_served_as_a_valid_operation_definition(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cs = app.get_json("metadata", 200).await;
    let rest = &cs["rest"][0];
    let mut listed: Vec<(String, String)> = Vec::new();
    let resources = rest["resource"].as_array().unwrap();
    for ops in std::iter::once(&rest["operation"]).chain(resources.iter().map(|r| &r["operation"])) {
        for op in ops.as_array().map(Vec::as_slice).unwrap_or_default() {
            listed.push((op["name"].as_str().unwrap().into(), op["definition"].as_str().unwrap().into()));
        }
    }
    assert_eq!(listed.len(), 23, "{listed:?}");
    let validator = cupola_validate::Validator::r4();
    // OperationDefinition is not a type the validator takes at the top: it checks it
    // in a Bundle, as a nested resource (the official R4 schema and calendar).
    let errors = |od: &Value| -> Vec<String> {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": od}]});
        validator
            .validate(&bundle)
            .into_iter()
            .filter(|i| i.severity == cupola_validate::Severity::Error)
            .map(|i| format!("{} {}", i.expression, i.diagnostics))
            .collect()
    };
    for (name, canonical) in &listed {
        let od = app.get_json(&format!("OperationDefinition/{}", id_of(canonical)), 200).await;
        assert_eq!(od["resourceType"], "OperationDefinition");
        assert_eq!(&od["url"], canonical);
        assert_eq!(&od["code"], name);
        assert_eq!(errors(&od), Vec::<String>::new(), "{canonical}");
        let mut broken = od.clone();
        broken["parameter"][0]["use"] = json!("sideways");
        broken["kind"] = json!(7);
        assert!(errors(&broken).len() >= 2, "the check sees errors: {:?}", errors(&broken));
    }
    // The listing: each served definition is the one the CapabilityStatement names.
    let all = app.get_json("OperationDefinition", 200).await;
    let served: Vec<&str> =
        all["entry"].as_array().unwrap().iter().map(|e| e["resource"]["url"].as_str().unwrap()).collect();
    assert_eq!(served.len(), listed.len());
    for url in served {
        assert!(listed.iter().any(|(_, c)| c == url), "{url} is not in the CapabilityStatement");
    }
    // What $find accepts, with its types; the IHE definition it follows in `base`.
    let find = app.get_json("OperationDefinition/Appointment-find", 200).await;
    assert_eq!(find["base"], "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find");
    let inputs: Vec<(String, String)> = find["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["use"] == "in")
        .map(|p| (p["name"].as_str().unwrap().into(), p["type"].as_str().unwrap_or_default().into()))
        .collect();
    let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "start",
            "end",
            "referral-identifier",
            "service-type",
            "patient-reference",
            "location-reference",
            "organization",
            "priority-class",
            "district",
            "near",
            "_count"
        ]
    );
    assert!(inputs.contains(&("patient-reference".into(), "Reference".into())));
    assert_eq!(app.get_json("OperationDefinition?code=close", 200).await["total"], 1);
    // Read by any authenticated caller, whatever its scopes; written by nobody.
    let patient = As::patient("p1").scope("patient/Patient.r");
    let r = app.req_as(&patient, Method::GET, "OperationDefinition/Schedule-close").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.anonymous().get(app.url("OperationDefinition/Schedule-close")).send().await.unwrap().status(), 401);
    assert_eq!(app.get("OperationDefinition/nope").await.status(), 404);
    let r = app.put("OperationDefinition/Schedule-close", &find).await;
    assert_eq!(r.status(), 405);
}

crate::on_both!(
    find_takes_a_token_as_identifier_coding_concept_or_text,
    wrong_types_missing_and_unknown_parameters_are_refused_naming_them,
    every_listed_operation_is_served_as_a_valid_operation_definition,
);
