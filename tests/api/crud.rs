//! create, read, vread, update, delete, history, on both backends.

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Maria"]}], "gender": "female", "birthDate": "1980-05-17"})
}

async fn create_answers_201_with_location_and_etag(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app.post("Patient", &patient("Rossi")).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(r.headers()["etag"], "W/\"1\"");
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, app.url(&format!("Patient/{id}/_history/1")));
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(body["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let read = app.get_json(&format!("Patient/{id}"), 200).await;
    assert_eq!(read, body);
}

async fn update_makes_versions_and_vread_reads_each(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&patient("Rossi")).await;
    let id = created["id"].as_str().unwrap();
    let mut changed = created.clone();
    changed["name"][0]["family"] = json!("Bianchi");
    let r = app.put(&format!("Patient/{id}"), &changed).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "W/\"2\"");
    let v1 = app.get_json(&format!("Patient/{id}/_history/1"), 200).await;
    let v2 = app.get_json(&format!("Patient/{id}/_history/2"), 200).await;
    assert_eq!(v1["name"][0]["family"], "Rossi");
    assert_eq!(v2["name"][0]["family"], "Bianchi");
    assert_eq!(v2["meta"]["versionId"], "2");
    app.get_json(&format!("Patient/{id}/_history/3"), 404).await;
}

async fn stale_if_match_is_refused_with_412(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&patient("Rossi")).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("Patient/{id}");
    let send = |tag: &'static str| {
        app.req(reqwest::Method::PUT, &path)
            .header("content-type", "application/fhir+json")
            .header("if-match", tag)
            .body(created.to_string())
            .send()
    };
    assert_eq!(send("W/\"1\"").await.unwrap().status(), 200);
    let stale = send("W/\"1\"").await.unwrap();
    assert_eq!(stale.status(), 412);
    let oo: Value = stale.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(app.get_json(&path, 200).await["meta"]["versionId"], "2");
}

async fn update_of_a_new_id_creates_it(b: Backend) {
    let app = TestApp::spawn(b).await;
    let mut p = patient("Verdi");
    p["id"] = json!("pat-new-1");
    let r = app.put("Patient/pat-new-1", &p).await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.get_json("Patient/pat-new-1", 200).await["name"][0]["family"], "Verdi");
}

async fn deleted_resource_reads_as_gone_and_keeps_history(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&patient("Neri")).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("Patient/{id}")).await.status(), 200);
    let gone = app.get_json(&format!("Patient/{id}"), 410).await;
    assert_eq!(gone["issue"][0]["code"], "deleted");
    app.get_json(&format!("Patient/{id}/_history/1"), 200).await;
    let h = app.get_json(&format!("Patient/{id}/_history"), 200).await;
    assert_eq!(h["type"], "history");
    assert_eq!(h["total"], 2);
    assert_eq!(h["entry"][0]["request"]["method"], "DELETE");
    assert_eq!(h["entry"][1]["request"]["method"], "POST");
    app.get_json("Patient/never-there", 404).await;
    // Deleting again changes nothing.
    assert_eq!(app.delete(&format!("Patient/{id}")).await.status(), 200);
    assert_eq!(app.get_json(&format!("Patient/{id}/_history"), 200).await["total"], 2);
}

async fn type_history_pages_newest_first(b: Backend) {
    let app = TestApp::spawn(b).await;
    for n in 0..5 {
        app.create(&patient(&format!("F{n}"))).await;
    }
    let page1 = app.get_json("Patient/_history?_count=2", 200).await;
    assert_eq!(page1["total"], 5);
    assert_eq!(page1["entry"].as_array().unwrap().len(), 2);
    assert_eq!(page1["entry"][0]["resource"]["name"][0]["family"], "F4");
    let next = page1["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next").unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    app.create(&patient("Later")).await;
    let page2: Value = app.client.get(&next).send().await.unwrap().json().await.unwrap();
    assert_eq!(page2["entry"][0]["resource"]["name"][0]["family"], "F2", "a write after page 1 must not shift page 2");
}

async fn prefer_return_minimal_and_operation_outcome(b: Backend) {
    let app = TestApp::spawn(b).await;
    let minimal = app
        .req(reqwest::Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(patient("A").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(minimal.status(), 201);
    assert!(minimal.headers().contains_key("location"));
    assert!(minimal.bytes().await.unwrap().is_empty());
    let oo = app
        .req(reqwest::Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=OperationOutcome")
        .body(patient("B").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(oo.status(), 201);
    assert_eq!(oo.json::<Value>().await.unwrap()["resourceType"], "OperationOutcome");
}

async fn metadata_lists_types_interactions_and_search_params(b: Backend) {
    let app = TestApp::spawn(b).await;
    let cs = app.get_json("metadata", 200).await;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let appt = resources.iter().find(|r| r["type"] == "Appointment").unwrap();
    let params: Vec<&str> =
        appt["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(params.contains(&"date") && params.contains(&"actor") && params.contains(&"_id"), "{params:?}");
    assert_eq!(resources.len(), 30);
}

async fn health_endpoints_answer(b: Backend) {
    let app = TestApp::spawn(b).await;
    let root = app.base.trim_end_matches("/fhir").to_string();
    assert_eq!(app.client.get(format!("{root}/health/live")).send().await.unwrap().status(), 200);
    assert_eq!(app.client.get(format!("{root}/health/ready")).send().await.unwrap().status(), 200);
}

/// An update-as-create refused by a rule of its own (the slot is full) answers that
/// refusal: it used to be taken for another client's create of the same id and
/// retried without end, until the gateway's stack overflowed.
async fn update_as_create_on_a_full_slot_is_409(b: Backend) {
    let app = TestApp::spawn(b).await;
    let appointment = |id: &str| {
        json!({"resourceType": "Appointment", "id": id, "status": "booked", "slot": [{"reference": "Slot/s1"}],
            "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00",
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]})
    };
    for (path, body) in [
        ("Patient/p1", json!({"resourceType": "Patient", "id": "p1"})),
        ("Schedule/sc1", json!({"resourceType": "Schedule", "id": "sc1", "actor": [{"reference": "Patient/p1"}]})),
        (
            "Slot/s1",
            json!({"resourceType": "Slot", "id": "s1", "schedule": {"reference": "Schedule/sc1"}, "status": "free",
            "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00"}),
        ),
        ("Appointment/first", appointment("first")),
    ] {
        assert!(app.put(path, &body).await.status().is_success(), "{path}");
    }
    let r = app.put("Appointment/second", &appointment("second")).await;
    assert_eq!(r.status(), 409);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(oo.to_string().contains("Slot/s1"), "names the slot: {oo}");
    app.get_json("Appointment/second", 404).await;
}

crate::on_both!(
    update_as_create_on_a_full_slot_is_409,
    create_answers_201_with_location_and_etag,
    update_makes_versions_and_vread_reads_each,
    stale_if_match_is_refused_with_412,
    update_of_a_new_id_creates_it,
    deleted_resource_reads_as_gone_and_keeps_history,
    type_history_pages_newest_first,
    prefer_return_minimal_and_operation_outcome,
    metadata_lists_types_interactions_and_search_params,
    health_endpoints_answer,
);
