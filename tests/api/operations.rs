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
    let today = chrono::Utc::now().date_naive();
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
    assert_eq!(app.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"})).await.status(), 201);
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

crate::on_both!(
    find_takes_a_token_as_identifier_coding_concept_or_text,
    wrong_types_missing_and_unknown_parameters_are_refused_naming_them,
);
