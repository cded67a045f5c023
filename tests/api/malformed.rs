//! Bad input gets the right 4xx with an OperationOutcome naming the element, and the
//! store is unchanged.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{expression, Backend, TestApp};

/// How many versions the server holds (system history total).
async fn versions(app: &TestApp) -> i64 {
    app.stored_versions().await
}

async fn send(app: &TestApp, method: Method, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let r = app.req(method, path).header("content-type", content_type).body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn each_bad_request_gets_its_4xx_and_changes_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.create(&json!({"resourceType": "Patient", "id": "p1", "active": true})).await;
    let before = versions(&app).await;
    let j = "application/fhir+json";
    let cases: Vec<(Method, &str, &str, String, u16, &str)> = vec![
        (Method::POST, "Patient", j, "{\"resourceType\": \"Patient\",".into(), 400, ""),
        (Method::POST, "Patient", j, "".into(), 400, ""),
        (Method::POST, "Patient", "text/plain", "{\"resourceType\":\"Patient\"}".into(), 415, ""),
        (Method::POST, "Patient", j, json!({"resourceType": "Patient", "foo": 1}).to_string(), 400, "Patient.foo"),
        (Method::POST, "Patient", j, json!({"resourceType": "Patient", "active": "yes"}).to_string(), 400, "Patient.active"),
        (Method::POST, "Patient", j, json!({"resourceType": "Patient", "birthDate": "2023-02-31"}).to_string(), 400, "Patient.birthDate"),
        (Method::POST, "Patient", j, json!({"resourceType": "Patient", "gender": "x"}).to_string(), 400, "Patient.gender"),
        (Method::POST, "Patient", j, json!({"resourceType": "Appointment", "status": "booked", "participant": [{"status": "accepted"}]}).to_string(), 400, "Patient.resourceType"),
        (Method::POST, "Appointment", j, json!({"resourceType": "Appointment", "participant": [{"status": "accepted"}]}).to_string(), 400, "Appointment.status"),
        (Method::POST, "Slot", j, json!({"resourceType": "Slot", "schedule": {"reference": "Schedule/1"}, "status": "free", "end": "2024-01-01T10:00:00Z"}).to_string(), 400, "Slot.start"),
        (Method::POST, "ServiceRequest", j, json!({"resourceType": "ServiceRequest", "status": "bogus", "intent": "order", "subject": {"reference": "Patient/p1"}}).to_string(), 400, "ServiceRequest.status"),
        (Method::PUT, "Patient/p1", j, json!({"resourceType": "Patient", "id": "p2"}).to_string(), 400, "Patient.id"),
        (Method::POST, "Patient", "application/fhir+xml", "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/>".into(), 400, ""),
        (Method::POST, "Unknown", j, json!({"resourceType": "Unknown"}).to_string(), 404, ""),
        (Method::POST, "", j, json!({"resourceType": "Bundle", "type": "collection"}).to_string(), 400, "Bundle.type"),
        (Method::GET, "Patient/p1/nonsense/deeper", j, String::new(), 404, ""),
        (Method::PATCH, "Patient/p1", j, "{}".into(), 405, ""),
    ];
    for (method, path, ct, body, status, expr) in cases {
        let (got, oo) = send(&app, method.clone(), path, ct, &body).await;
        assert_eq!(got, status, "{method} {path} {body}: {oo}");
        assert_eq!(oo["resourceType"], "OperationOutcome", "{method} {path} {body}");
        if !expr.is_empty() {
            assert_eq!(expression(&oo), expr, "{method} {path} {body}: {oo}");
        }
    }
    assert_eq!(versions(&app).await, before, "no bad request may write anything");
}

async fn oversize_body_is_refused_with_413(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.max_body_bytes = 2048).await;
    let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(5000)}]});
    let (status, oo) = send(&app, Method::POST, "Patient", "application/fhir+json", &big.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(oo["issue"][0]["code"], "too-costly");
}

async fn invalid_codice_fiscale_violates_the_patient_profile(b: Backend) {
    let app = TestApp::spawn(b).await;
    let with_cf =
        |cf: &str, system: &str| json!({"resourceType": "Patient", "identifier": [{"system": system, "value": cf}]});
    let bad = app.post("Patient", &with_cf("RSSMRA85T10A562X", "http://hl7.it/sid/codiceFiscale")).await;
    assert_eq!(bad.status(), 422);
    assert_eq!(expression(&bad.json().await.unwrap()), "Patient.identifier[0].value");
    let bad_oid = app.post("Patient", &with_cf("RSSMRA85T10A562X", "urn:oid:2.16.840.1.113883.2.9.4.3.2")).await;
    assert_eq!(bad_oid.status(), 422);
    assert_eq!(
        app.post("Patient", &with_cf("RSSMRA85T10A562S", "http://hl7.it/sid/codiceFiscale")).await.status(),
        201
    );
    // Omocodia: digits replaced by letters, check character recomputed.
    assert_eq!(
        app.post("Patient", &with_cf("RSSMRA85T10A56NH", "http://hl7.it/sid/codiceFiscale")).await.status(),
        201
    );
    // A foreigner's STP code is not a codice fiscale and is accepted as it is.
    assert_eq!(
        app.post("Patient", &with_cf("STP1234567890123", "urn:oid:2.16.840.1.113883.2.9.4.3.7")).await.status(),
        201
    );
}

async fn search_injection_is_a_plain_value(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Rossi"}]})).await;
    let r = app.get_json("Patient?family=x'%3B%20DROP%20TABLE%20resources%3B--", 200).await;
    assert_eq!(r["entry"].as_array().map(|e| e.len()).unwrap_or(0), 0);
    let all = app.get_json("Patient", 200).await;
    assert_eq!(all["entry"].as_array().unwrap().len(), 1);
}

async fn unknown_search_parameter_is_400_unless_lenient(b: Backend) {
    let app = TestApp::spawn(b).await;
    let oo = app.get_json("Patient?colour=blue", 400).await;
    assert_eq!(expression(&oo), "colour");
    let oo = app.get_json("Patient?birthdate=2023-02-31", 400).await;
    assert_eq!(expression(&oo), "birthdate");
    let r = app.req(Method::GET, "Patient?colour=blue").header("prefer", "handling=lenient").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bundle: Value = r.json().await.unwrap();
    let outcome = bundle["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome");
    assert!(outcome.is_some(), "the ignored parameter is reported: {bundle}");
}

crate::on_both!(
    each_bad_request_gets_its_4xx_and_changes_nothing,
    oversize_body_is_refused_with_413,
    invalid_codice_fiscale_violates_the_patient_profile,
    search_injection_is_a_plain_value,
    unknown_search_parameter_is_400_unless_lenient,
);
