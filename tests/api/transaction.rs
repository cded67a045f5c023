//! Transaction (all or nothing, urn:uuid references, conditional entries) and batch.

use serde_json::{json, Value};

use crate::helpers::{expression, match_ids, Backend, TestApp};

fn patient_entry(uuid: &str, mrn: &str) -> Value {
    json!({"fullUrl": format!("urn:uuid:{uuid}"),
        "resource": {"resourceType": "Patient", "identifier": [{"system": "http://example.org/sid/mrn", "value": mrn}]},
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier=http://example.org/sid/mrn|{mrn}")}})
}

fn appointment_entry(patient_ref: &str) -> Value {
    json!({"resource": {"resourceType": "Appointment", "status": "booked", "start": "2024-05-01T10:00:00+02:00", "end": "2024-05-01T10:20:00+02:00",
            "participant": [{"actor": {"reference": patient_ref}, "status": "accepted"}]},
        "request": {"method": "POST", "url": "Appointment"}})
}

async fn transaction_resolves_placeholders_and_commits_together(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        appointment_entry("urn:uuid:5b0d1f52-0000-4000-8000-000000000001"),
        patient_entry("5b0d1f52-0000-4000-8000-000000000001", "T-1"),
    ]});
    let r = app.post("", &bundle).await;
    assert_eq!(r.status(), 200);
    let resp: Value = r.json().await.unwrap();
    assert_eq!(resp["type"], "transaction-response");
    assert_eq!(resp["entry"][0]["response"]["status"], "201 Created");
    let patient_id = resp["entry"][1]["resource"]["id"].as_str().unwrap().to_string();
    let appt_id = resp["entry"][0]["resource"]["id"].as_str().unwrap();
    let appt = app.get_json(&format!("Appointment/{appt_id}"), 200).await;
    assert_eq!(appt["participant"][0]["actor"]["reference"], format!("Patient/{patient_id}"));
    // The same transaction again: the conditional create matches, no second patient.
    let again: Value = app.post("", &bundle).await.json().await.unwrap();
    assert_eq!(again["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(again["entry"][1]["resource"]["id"], patient_id.as_str());
    assert_eq!(match_ids(&app.get_json("Patient?identifier=T-1", 200).await).len(), 1);
}

async fn failed_transaction_leaves_no_trace(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.stored_versions().await;
    let dangling = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        patient_entry("5b0d1f52-0000-4000-8000-000000000002", "T-2"),
        appointment_entry("Patient/does-not-exist"),
    ]});
    let r = app.post("", &dangling).await;
    assert_eq!(r.status(), 400);
    assert_eq!(expression(&r.json().await.unwrap()), "Bundle.entry[1].resource.participant[0].actor.reference");
    let invalid = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        patient_entry("5b0d1f52-0000-4000-8000-000000000003", "T-3"),
        {"resource": {"resourceType": "Patient", "birthDate": "2023-02-31"}, "request": {"method": "POST", "url": "Patient"}},
    ]});
    let r = app.post("", &invalid).await;
    assert_eq!(r.status(), 400);
    assert_eq!(expression(&r.json().await.unwrap()), "Bundle.entry[1].resource.birthDate");
    let stale = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        patient_entry("5b0d1f52-0000-4000-8000-000000000004", "T-4"),
        {"resource": {"resourceType": "Patient", "id": "nope", "active": true}, "request": {"method": "PUT", "url": "Patient/nope", "ifMatch": "W/\"3\""}},
    ]});
    assert_eq!(app.post("", &stale).await.status(), 412);
    assert_eq!(app.stored_versions().await, before, "nothing of the failed transactions was stored");
}

async fn batch_runs_each_entry_on_its_own(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.create(&json!({"resourceType": "Patient", "id": "x"})).await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "bogus"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"request": {"method": "GET", "url": "Patient?active=true"}},
    ]});
    let r: Value = app.post("", &batch).await.json().await.unwrap();
    assert_eq!(r["type"], "batch-response");
    assert_eq!(r["entry"][0]["response"]["status"], "201 Created");
    assert!(r["entry"][1]["response"]["status"].as_str().unwrap().starts_with("400"));
    assert_eq!(r["entry"][1]["response"]["outcome"]["resourceType"], "OperationOutcome");
    assert!(r["entry"][2]["response"]["status"].as_str().unwrap().starts_with("404"));
    assert_eq!(r["entry"][3]["resource"]["type"], "searchset");
    assert_eq!(match_ids(&r["entry"][3]["resource"]).len(), 1);
}

async fn conditional_update_and_delete_by_search(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = json!({"resourceType": "Patient", "identifier": [{"system": "http://example.org/sid/mrn", "value": "C-1"}], "active": true});
    let r = app.put("Patient?identifier=http://example.org/sid/mrn|C-1", &p).await;
    assert_eq!(r.status(), 201);
    let r = app
        .put(
            "Patient?identifier=http://example.org/sid/mrn|C-1",
            &json!({"resourceType": "Patient", "identifier": p["identifier"], "active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let found = app.get_json("Patient?identifier=C-1", 200).await;
    assert_eq!(found["entry"][0]["resource"]["active"], false);
    assert_eq!(found["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(app.delete("Patient?identifier=http://example.org/sid/mrn|C-1").await.status(), 200);
    assert!(match_ids(&app.get_json("Patient?identifier=C-1", 200).await).is_empty());
}

async fn get_entries_of_a_transaction_read_inside_it(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(
        app.put("Patient/g1", &json!({"resourceType": "Patient", "id": "g1", "active": true})).await.status(),
        201
    );
    assert_eq!(
        app.put("Patient/g1", &json!({"resourceType": "Patient", "id": "g1", "active": false})).await.status(),
        200
    );
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient?identifier=G-2"}},
        {"request": {"method": "GET", "url": "Patient/g1/_history/1"}},
        {"resource": {"resourceType": "Patient", "identifier": [{"system": "http://example.org/sid/mrn", "value": "G-2"}]},
         "request": {"method": "POST", "url": "Patient"}},
    ]});
    let r: Value = app.post("", &bundle).await.json().await.unwrap();
    assert_eq!(r["type"], "transaction-response", "{r}");
    // GETs run after the writes of the same transaction and see them.
    assert_eq!(match_ids(&r["entry"][0]["resource"]).len(), 1, "{r}");
    assert_eq!(r["entry"][1]["resource"]["active"], true);
    assert_eq!(r["entry"][1]["resource"]["meta"]["versionId"], "1");
}

crate::on_both!(
    get_entries_of_a_transaction_read_inside_it,
    transaction_resolves_placeholders_and_commits_together,
    failed_transaction_leaves_no_trace,
    batch_runs_each_entry_on_its_own,
    conditional_update_and_delete_by_search,
);
