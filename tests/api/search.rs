//! Search through the public API: parameter types, prefixes, modifiers, chaining,
//! paging, sorting, totals, includes.

use serde_json::{json, Value};

use crate::helpers::{match_ids, Backend, TestApp};

async fn seed(app: &TestApp) {
    let patients = [
        ("p1", "Rossi", "1980-05-17", "RSSMRA80E57D969X"),
        ("p2", "Rossini", "1990-01-02", "RSSGNN90A02D969Y"),
        ("p3", "Bianchi", "2001-12-31", "BNCLCU01T71D969Z"),
    ];
    for (id, family, birth, mrn) in patients {
        let p = json!({"resourceType": "Patient", "id": id, "name": [{"family": family, "given": ["Anna"]}], "birthDate": birth,
            "identifier": [{"system": "http://example.org/sid/mrn", "value": mrn}], "gender": "female"});
        assert!(app.put(&format!("Patient/{id}"), &p).await.status().is_success());
    }
    for (id, patient, start) in [
        ("a1", "p1", "2024-03-01T09:00:00+01:00"),
        ("a2", "p1", "2024-03-02T09:00:00+01:00"),
        ("a3", "p3", "2024-04-10T15:30:00+02:00"),
    ] {
        let a = json!({"resourceType": "Appointment", "id": id, "status": "booked", "start": start, "end": start,
            "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}]});
        assert!(app.put(&format!("Appointment/{id}"), &a).await.status().is_success());
    }
}

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let mut v = match_ids(&app.get_json(query, 200).await);
    v.sort();
    v
}

/// The ids of a searchset's included resources.
fn included(bundle: &Value) -> Vec<&str> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().filter(|e| e["search"]["mode"] == "include").filter_map(|e| e["resource"]["id"].as_str()).collect()
}

async fn strings_tokens_and_ids(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    assert_eq!(ids(&app, "Patient?family=ross").await, ["p1", "p2"], "string search is a case-insensitive prefix");
    assert_eq!(ids(&app, "Patient?family:exact=Rossi").await, ["p1"]);
    assert_eq!(ids(&app, "Patient?family:contains=ssin").await, ["p2"]);
    assert_eq!(ids(&app, "Patient?identifier=http://example.org/sid/mrn|RSSGNN90A02D969Y").await, ["p2"]);
    assert_eq!(ids(&app, "Patient?identifier=RSSGNN90A02D969Y").await, ["p2"]);
    assert!(ids(&app, "Patient?identifier=http://other|RSSGNN90A02D969Y").await.is_empty());
    assert_eq!(ids(&app, "Patient?_id=p1,p3").await, ["p1", "p3"]);
    assert_eq!(ids(&app, "Patient?gender=female&family=bianchi").await, ["p3"]);
}

async fn dates_with_every_prefix(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    assert_eq!(ids(&app, "Patient?birthdate=1980-05-17").await, ["p1"]);
    assert_eq!(ids(&app, "Patient?birthdate=1980").await, ["p1"]);
    assert_eq!(ids(&app, "Patient?birthdate=gt1990-01-01").await, ["p2", "p3"]);
    assert_eq!(ids(&app, "Patient?birthdate=ge1990-01-02").await, ["p2", "p3"]);
    assert_eq!(ids(&app, "Patient?birthdate=lt1990-01-02").await, ["p1"]);
    assert_eq!(ids(&app, "Patient?birthdate=le1990-01-02").await, ["p1", "p2"]);
    assert_eq!(ids(&app, "Patient?birthdate=ne1990-01-02").await, ["p1", "p3"]);
    assert_eq!(ids(&app, "Patient?birthdate=sa2000").await, ["p3"]);
    assert_eq!(ids(&app, "Patient?birthdate=eb1985").await, ["p1"]);
    assert_eq!(ids(&app, "Patient?birthdate=ge1985&birthdate=lt2000").await, ["p2"]);
    assert_eq!(ids(&app, "Appointment?date=2024-03-01T08:00:00Z").await, ["a1"], "offsets are honoured");
    let recent = ids(&app, "Patient?_lastUpdated=gt2000-01-01").await;
    assert_eq!(recent.len(), 3);
}

async fn references_and_chains(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    assert_eq!(ids(&app, "Appointment?actor=Patient/p1").await, ["a1", "a2"]);
    assert_eq!(ids(&app, "Appointment?patient=p3").await, ["a3"]);
    assert_eq!(ids(&app, "Appointment?patient.family=bianchi").await, ["a3"]);
    assert_eq!(
        ids(&app, "Appointment?actor:Patient.identifier=http://example.org/sid/mrn|RSSMRA80E57D969X").await,
        ["a1", "a2"]
    );
}

/// `patient`, `practitioner` and `location` of an Appointment are its `actor`
/// references of one type: searched, sorted, included and updated as such.
async fn narrowing_parameters_are_the_actors_of_their_type(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    let dr = json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Verdi"}]});
    assert!(app.put("Practitioner/dr1", &dr).await.status().is_success());
    let l1 = json!({"resourceType": "Location", "id": "l1", "name": "Ambulatorio"});
    assert!(app.put("Location/l1", &l1).await.status().is_success());
    let actor = |r: &str| json!({"actor": {"reference": r}, "status": "accepted"});
    let a4 = json!({"resourceType": "Appointment", "id": "a4", "status": "booked",
        "participant": [actor("Patient/p2"), actor("Practitioner/dr1"), actor("Location/l1")]});
    assert!(app.put("Appointment/a4", &a4).await.status().is_success());
    let a5 =
        json!({"resourceType": "Appointment", "id": "a5", "status": "proposed", "participant": [actor("Location/l1")]});
    assert!(app.put("Appointment/a5", &a5).await.status().is_success());

    assert_eq!(ids(&app, "Appointment?patient=p2").await, ["a4"]);
    assert_eq!(ids(&app, "Appointment?practitioner=dr1").await, ["a4"]);
    assert_eq!(ids(&app, "Appointment?location=Location/l1").await, ["a4", "a5"]);
    assert!(ids(&app, "Appointment?patient=dr1").await.is_empty(), "a Practitioner is not a patient");
    assert!(ids(&app, "Appointment?location=p2").await.is_empty(), "a Patient is not a location");
    assert_eq!(ids(&app, "Appointment?patient:missing=true").await, ["a5"]);
    assert_eq!(ids(&app, "Appointment?practitioner:missing=false").await, ["a4"]);
    assert_eq!(ids(&app, "Appointment?practitioner.family=verdi").await, ["a4"]);
    let sorted = app.get_json("Appointment?_id=a1,a3,a4&_sort=-patient", 200).await;
    assert_eq!(match_ids(&sorted), ["a3", "a4", "a1"]);
    let inc = app.get_json("Appointment?_id=a4&_include=Appointment:practitioner", 200).await;
    assert_eq!(included(&inc), ["dr1"], "{inc}");
    let rev = app.get_json("Location?_id=l1&_revinclude=Appointment:location", 200).await;
    assert_eq!(rev["entry"].as_array().unwrap().len(), 3, "{rev}");

    // A new patient on the appointment: found by the new one only.
    let moved = json!({"resourceType": "Appointment", "id": "a4", "status": "booked",
        "participant": [actor("Patient/p3"), actor("Practitioner/dr1")]});
    assert!(app.put("Appointment/a4", &moved).await.status().is_success());
    assert!(ids(&app, "Appointment?patient=p2").await.is_empty());
    assert_eq!(ids(&app, "Appointment?patient=p3").await, ["a3", "a4"]);
    assert_eq!(ids(&app, "Appointment?location=l1").await, ["a5"]);
}

async fn paging_is_stable_and_sorting_and_totals_work(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    let page1 = app.get_json("Patient?_count=2&_sort=-birthdate&_total=accurate", 200).await;
    assert_eq!(page1["total"], 3);
    assert_eq!(match_ids(&page1), ["p3", "p2"]);
    let link = |b: &Value, rel: &str| {
        b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == rel)
            .map(|l| l["url"].as_str().unwrap().to_string())
    };
    let next = link(&page1, "next").expect("next link");
    app.create(&json!({"resourceType": "Patient", "birthDate": "2020-01-01"})).await;
    let page2: Value = app.client.get(&next).send().await.unwrap().json().await.unwrap();
    assert_eq!(match_ids(&page2), ["p1"], "a create after page 1 does not shift page 2");
    let prev = link(&page2, "previous").expect("previous link");
    let back: Value = app.client.get(&prev).send().await.unwrap().json().await.unwrap();
    assert_eq!(match_ids(&back), ["p3", "p2"]);
    let by_family = app.get_json("Patient?_sort=family&family=ross,bianchi", 200).await;
    assert_eq!(match_ids(&by_family), ["p3", "p1", "p2"]);
    let count = app.get_json("Patient?_summary=count", 200).await;
    assert_eq!(count["total"], 4);
    assert!(count.get("entry").is_none());
}

async fn includes_revincludes_and_elements(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    let inc = app.get_json("Appointment?_id=a1&_include=Appointment:patient", 200).await;
    let entries = inc["entry"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["search"]["mode"] == "include" && e["resource"]["id"] == "p1"), "{inc}");
    let rev = app.get_json("Patient?_id=p1&_revinclude=Appointment:patient", 200).await;
    assert_eq!(included(&rev).len(), 2, "{rev}");
    let el = app.get_json("Patient?_id=p1&_elements=birthDate", 200).await;
    let r = &el["entry"][0]["resource"];
    assert_eq!(r["birthDate"], "1980-05-17");
    assert!(r.get("name").is_none());
    assert!(r["meta"]["tag"].as_array().unwrap().iter().any(|t| t["code"] == "SUBSETTED"));
    let summary = app.get_json("Patient/p1?_summary=true", 200).await;
    assert_eq!(summary["name"][0]["family"], "Rossi", "name is a summary element");
    assert!(summary.get("text").is_none());
    let appt = app.get_json("Appointment?_id=a1&_summary=true", 200).await;
    let a = &appt["entry"][0]["resource"];
    assert_eq!(a["status"], "booked");
    assert!(a.get("participant").is_none(), "participant is not a summary element in R4");
}

async fn post_search_and_xml_format(b: Backend) {
    let app = TestApp::spawn(b).await;
    seed(&app).await;
    let r = app
        .req(reqwest::Method::POST, "Patient/_search")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=bianchi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(match_ids(&r.json().await.unwrap()), ["p3"]);
    let xml = app.client.get(app.url("Patient/p1?_format=xml")).send().await.unwrap();
    assert!(xml.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+xml"));
    let text = xml.text().await.unwrap();
    assert!(text.contains("<Patient") && text.contains("<family value=\"Rossi\""), "{text}");
    let xml_search = app
        .client
        .get(app.url("Patient?family=bianchi"))
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xml_search.contains("<Bundle") && xml_search.contains("<family value=\"Bianchi\""), "{xml_search}");
}

async fn xml_create_reads_back_as_json(b: Backend) {
    let app = TestApp::spawn(b).await;
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/><name><family value="Esposito"/></name></Patient>"#;
    let r = app
        .req(reqwest::Method::POST, "Patient")
        .header("content-type", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["name"][0]["family"], "Esposito");
    let pretty =
        app.get(&format!("Patient/{}?_pretty=true", created["id"].as_str().unwrap())).await.text().await.unwrap();
    assert!(pretty.contains("\n  "), "pretty JSON is indented");
}

async fn locations_near_a_point(b: Backend) {
    let app = TestApp::spawn(b).await;
    for (id, lat, long) in
        [("genova", "44.4056", "8.9463"), ("savona", "44.3091", "8.4772"), ("spezia", "44.1025", "9.8241")]
    {
        let body = format!(
            r#"{{"resourceType":"Location","id":"{id}","status":"active","position":{{"latitude":{lat},"longitude":{long}}}}}"#
        );
        assert!(app.put(&format!("Location/{id}"), &serde_json::from_str(&body).unwrap()).await.status().is_success());
    }
    assert_eq!(ids(&app, "Location?near=44.41|8.93|10|km").await, ["genova"]);
    assert_eq!(ids(&app, "Location?near=44.41|8.93|60|km").await, ["genova", "savona"]);
    assert_eq!(ids(&app, "Location?near=44.41|8.93|100|km").await, ["genova", "savona", "spezia"]);
    assert_eq!(ids(&app, "Location?near=44.41|8.93|30|mi").await, ["genova", "savona"]);
    let oo = app.get_json("Location?near=95|8.93|10|km", 400).await;
    assert_eq!(crate::helpers::expression(&oo), "near");
}

/// An update rewrites only the index rows that change: every search must still see
/// the resource as its current version is, whichever parameters changed, appeared,
/// vanished or stayed.
async fn updates_keep_every_search_true(b: Backend) {
    let app = TestApp::spawn(b).await;
    let v1 = json!({"resourceType": "Patient", "id": "u1", "gender": "female", "birthDate": "1980-05-17",
        "name": [{"family": "Rossi", "given": ["Anna"]}],
        "identifier": [{"system": "http://example.org/sid/mrn", "value": "M1"}],
        "generalPractitioner": [{"reference": "Practitioner/gp1"}]});
    assert!(app.put("Patient/u1", &v1).await.status().is_success());
    // Family changed, identifier removed, telecom added, gender and the GP kept.
    let v2 = json!({"resourceType": "Patient", "id": "u1", "gender": "female", "birthDate": "1980-05-17",
        "name": [{"family": "Bianchi", "given": ["Anna"]}],
        "telecom": [{"system": "phone", "value": "010 555"}],
        "managingOrganization": {"identifier": {"system": "http://example.org/sid/asl", "value": "ASL3"}},
        "generalPractitioner": [{"reference": "Practitioner/gp1"}]});
    assert!(app.put("Patient/u1", &v2).await.status().is_success());
    assert_eq!(
        ids(&app, "Patient?organization:identifier=http://example.org/sid/asl|ASL3").await,
        ["u1"],
        "a reference given by identifier is found by it"
    );
    assert!(ids(&app, "Patient?family=rossi").await.is_empty(), "the old family is gone");
    assert_eq!(ids(&app, "Patient?family=bianchi").await, ["u1"]);
    assert!(ids(&app, "Patient?identifier=M1").await.is_empty(), "the removed identifier is gone");
    assert_eq!(ids(&app, "Patient?phone=010 555").await, ["u1"], "the new telecom is found");
    assert_eq!(ids(&app, "Patient?gender=female&general-practitioner=Practitioner/gp1").await, ["u1"]);
    assert_eq!(ids(&app, "Patient?birthdate=1980-05-17&given=anna").await, ["u1"], "unchanged rows stay");
    // Back again, then a second name: repeated values of one parameter.
    let v3 = json!({"resourceType": "Patient", "id": "u1", "gender": "male", "birthDate": "1980-05-18",
        "name": [{"family": "Rossi", "given": ["Anna"]}, {"family": "Verdi"}],
        "identifier": [{"system": "http://example.org/sid/mrn", "value": "M1"}]});
    assert!(app.put("Patient/u1", &v3).await.status().is_success());
    assert_eq!(ids(&app, "Patient?family=rossi").await, ["u1"]);
    assert_eq!(ids(&app, "Patient?family=verdi").await, ["u1"]);
    assert!(ids(&app, "Patient?family=bianchi").await.is_empty());
    assert!(ids(&app, "Patient?gender=female").await.is_empty());
    assert!(ids(&app, "Patient?birthdate=1980-05-17").await.is_empty());
    assert!(ids(&app, "Patient?general-practitioner=Practitioner/gp1").await.is_empty());
    assert!(ids(&app, "Patient?phone=010 555").await.is_empty());
    assert!(ids(&app, "Patient?organization:identifier=ASL3").await.is_empty());
    assert_eq!(ids(&app, "Patient?identifier=http://example.org/sid/mrn|M1").await, ["u1"]);
    // Deleted, then written again: the new version alone is found.
    assert_eq!(app.delete("Patient/u1").await.status(), 200);
    assert!(ids(&app, "Patient?family=rossi").await.is_empty());
    assert!(app.put("Patient/u1", &v2).await.status().is_success());
    assert_eq!(ids(&app, "Patient?family=bianchi").await, ["u1"]);
    assert!(ids(&app, "Patient?family=verdi").await.is_empty());
    assert!(ids(&app, "Patient?identifier=M1").await.is_empty());
}

/// References searched by their text: an absolute url, and a canonical with or
/// without its `|version` (the rows that keep `raw` in its index).
async fn references_by_url_and_canonical(b: Backend) {
    let app = TestApp::spawn(b).await;
    for (id, gp) in [("ua", "http://other.org/fhir/Practitioner/9"), ("ub", "Practitioner/9"), ("uc", "Practitioner/8")]
    {
        let p = json!({"resourceType": "Patient", "id": id, "generalPractitioner": [{"reference": gp}]});
        assert!(app.put(&format!("Patient/{id}"), &p).await.status().is_success());
    }
    assert_eq!(ids(&app, "Patient?general-practitioner=http://other.org/fhir/Practitioner/9").await, ["ua", "ub"]);
    assert_eq!(ids(&app, "Patient?general-practitioner=Practitioner/9").await, ["ua", "ub"]);
    assert!(ids(&app, "Patient?general-practitioner=http://other.org/fhir/Practitioner/7").await.is_empty());
    for (id, from) in
        [("ad1", "http://example.org/canonical/base-visit|2.0"), ("ad2", "http://example.org/canonical/base")]
    {
        let ad = json!({"resourceType": "ActivityDefinition", "id": id, "status": "active",
            "relatedArtifact": [{"type": "derived-from", "resource": from}]});
        let r = app.put(&format!("ActivityDefinition/{id}"), &ad).await;
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }
    let q = |v: &str| format!("ActivityDefinition?derived-from={}", v.replace('|', "%7C"));
    assert_eq!(ids(&app, &q("http://example.org/canonical/base-visit")).await, ["ad1"], "any version");
    assert_eq!(ids(&app, &q("http://example.org/canonical/base-visit|2.0")).await, ["ad1"], "that version");
    assert!(ids(&app, &q("http://example.org/canonical/base-visit|1.0")).await.is_empty());
    assert_eq!(ids(&app, &q("http://example.org/canonical/base")).await, ["ad2"], "not a prefix of another url");
}

/// The parameters cupola leaves off (`profiles/cupola/search-parameters-off.json`):
/// a search on one is 400 naming it, the CapabilityStatement does not list it, and
/// the audit trail is still found by those it keeps.
async fn parameters_left_off_are_refused_and_not_listed(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(app.get("Patient?family=x").await.status(), 200);
    for (param, value) in
        [("type", "rest"), ("action", "R"), ("entity-type", "2"), ("agent-role", "admin"), ("address", "127.0.0.1")]
    {
        let r = app.get(&format!("AuditEvent?{param}={value}")).await;
        assert_eq!(r.status(), 400, "{param}");
        assert_eq!(crate::helpers::expression(&r.json().await.unwrap()), param);
    }
    let cs = app.get_json("metadata", 200).await;
    let audit = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "AuditEvent").unwrap();
    let listed: Vec<&str> =
        audit["searchParam"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    for kept in ["entity", "agent", "subtype", "outcome", "date", "patient", "altid"] {
        assert!(listed.contains(&kept), "{kept}: {listed:?}");
    }
    for off in ["type", "action", "entity-type", "agent-role", "address"] {
        assert!(!listed.contains(&off), "{off}: {listed:?}");
    }
    let mut found = 0;
    for _ in 0..50 {
        let b = app.get_json("AuditEvent?subtype=search-type&outcome=0&_summary=count", 200).await;
        found = b["total"].as_i64().unwrap_or(0);
        if found > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found > 0, "the search above is in the trail");
}

crate::on_both!(
    parameters_left_off_are_refused_and_not_listed,
    updates_keep_every_search_true,
    references_by_url_and_canonical,
    locations_near_a_point,
    strings_tokens_and_ids,
    dates_with_every_prefix,
    references_and_chains,
    narrowing_parameters_are_the_actors_of_their_type,
    paging_is_stable_and_sorting_and_totals_work,
    includes_revincludes_and_elements,
    post_search_and_xml_format,
    xml_create_reads_back_as_json,
);
