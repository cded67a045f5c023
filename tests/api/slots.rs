//! Generated slots (kept compactly, rendered as Slots on read) behave, for every
//! client, as any other resource: read, vread, history, search with paging, sorting,
//! totals, includes and chains, conditional writes, deletion; regeneration after a
//! template edit removes what the template no longer makes but keeps what holds an
//! appointment; slots are found by district, provider, place and distance; a
//! provider sees only its own agendas' slots.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{expression, match_ids, session, As, Backend, TestApp, FHIR_JSON};

const BASE: &str = "http://example.org/cupola";
const CATALOG_CODE: &str = "89.52";

fn catalog_system() -> String {
    format!("{BASE}/CodeSystem/catalog")
}

/// A Schedule of HealthcareService `service` with an agenda template of `parts`.
fn schedule(id: &str, service: &str, parts: Vec<Value>) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": id,
        "active": true,
        "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
        "serviceType": [{"coding": [{"system": catalog_system(), "code": CATALOG_CODE}]}],
        "actor": [{"reference": format!("HealthcareService/{service}")}],
    })
}

fn template(horizon_days: i64, sessions: Vec<Value>) -> Vec<Value> {
    let mut parts = vec![
        json!({"url": "timeZone", "valueCode": "Europe/Rome"}),
        json!({"url": "horizonDays", "valueInteger": horizon_days}),
    ];
    parts.extend(sessions);
    parts
}

async fn put_ok(app: &TestApp, body: &Value) {
    let path = format!("{}/{}", body["resourceType"].as_str().expect("resourceType"), body["id"].as_str().expect("id"));
    let r = app.put(&path, body).await;
    let status = r.status().as_u16();
    assert!(status == 200 || status == 201, "PUT {path}: {status} {}", r.text().await.unwrap_or_default());
}

/// A provider organisation with its facility (district, position), a service there
/// and the service's agenda `Schedule/ag{n}` (template `parts`).
async fn facility(app: &TestApp, n: u32, district: &str, lat: f64, long: f64, parts: Vec<Value>) {
    put_ok(app, &json!({"resourceType": "Organization", "id": format!("o{n}"), "active": true, "name": format!("Provider {n}")}))
        .await;
    put_ok(
        app,
        &json!({"resourceType": "Location", "id": format!("l{n}"), "status": "active", "name": format!("Poliambulatorio {n}"),
            "address": {"city": "Liguria", "district": district},
            "position": {"latitude": lat, "longitude": long},
            "managingOrganization": {"reference": format!("Organization/o{n}")}}),
    )
    .await;
    put_ok(
        app,
        &json!({"resourceType": "HealthcareService", "id": format!("hs{n}"), "active": true, "name": format!("Cardiologia {n}"),
            "providedBy": {"reference": format!("Organization/o{n}")},
            "location": [{"reference": format!("Location/l{n}")}]}),
    )
    .await;
    put_ok(app, &schedule(&format!("ag{n}"), &format!("hs{n}"), parts)).await;
}

/// `$generate-slots` from `from`: the returned Parameters.
async fn generate(app: &TestApp, schedule: &str, from: &str) -> Value {
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": from}]});
    let r = app.post(&format!("Schedule/{schedule}/$generate-slots"), &params).await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "$generate-slots {schedule}: {body}");
    body
}

/// The integer output `name` of a `$generate-slots` report.
fn count(report: &Value, name: &str) -> i64 {
    let params = report["parameter"].as_array().expect("parameters");
    let found: Vec<&Value> = params.iter().filter(|p| p["name"] == name).collect();
    assert_eq!(found.len(), 1, "one {name} in {report}");
    found[0]["valueInteger"].as_i64().unwrap_or_else(|| panic!("{name} is an integer: {report}"))
}

fn held(report: &Value) -> Vec<String> {
    report["parameter"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["name"] == "held")
        .map(|p| p["valueString"].as_str().unwrap_or_else(|| panic!("held is a string: {report}")).to_string())
        .collect()
}

/// The url of a bundle's link `rel`.
fn link(bundle: &Value, rel: &str) -> Option<String> {
    bundle["link"].as_array()?.iter().find(|l| l["relation"] == rel).and_then(|l| l["url"].as_str()).map(str::to_string)
}

/// The ids (sorted) that a search matches.
async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let mut v = match_ids(&app.get_json(query, 200).await);
    v.sort();
    v
}

/// Ids of generated slots: `{schedule}-{YYYYMMDD}{HHMM}-0` for each day and time.
fn slot_ids(schedule: &str, days: &[&str], times: &[&str]) -> Vec<String> {
    days.iter().flat_map(|d| times.iter().map(move |t| format!("{schedule}-{d}{t}-0"))).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn instant(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is an instant"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).with_timezone(&Utc)
}

async fn send_put(app: &TestApp, path: &str, body: &Value, if_match: &str) -> reqwest::Response {
    app.req(Method::PUT, path)
        .header("content-type", FHIR_JSON)
        .header("if-match", if_match)
        .body(body.to_string())
        .send()
        .await
        .expect("PUT")
}

async fn generated_slots_behave_as_resources(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Two weeks from Monday 2027-03-22, across the spring change (Sunday 2027-03-28):
    // Mondays 22 (+01:00) and 29 (+02:00), four 30-minute slots from 08:00;
    // Wednesdays 24 (+01:00) and 31 (+02:00), three 20-minute slots from 14:00.
    let parts =
        template(14, vec![session("mon", "08:00:00", "10:00:00", 30), session("wed", "14:00:00", "15:00:00", 20)]);
    facility(&app, 1, "Genovese", 44.4056, 8.9463, parts).await;
    let mut expected = slot_ids("ag1", &["20270322", "20270329"], &["0800", "0830", "0900", "0930"]);
    expected.extend(slot_ids("ag1", &["20270324", "20270331"], &["1400", "1420", "1440"]));
    // Chronological order is the ids' order here (same prefix, fixed-width stamps).
    let expected = sorted(expected);
    assert_eq!(expected.len(), 14);

    let before = Utc::now();
    let report = generate(&app, "ag1", "2027-03-22").await;
    let after = Utc::now();
    assert_eq!((count(&report, "created"), count(&report, "kept"), count(&report, "removed")), (14, 0, 0), "{report}");
    assert!(held(&report).is_empty());

    // Read.
    let id = "ag1-202703220800-0";
    let r = app.get(&format!("Slot/{id}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("etag").expect("ETag on a read"), "W/\"1\"");
    let slot: Value = r.json().await.expect("json");
    assert_eq!(slot["resourceType"], "Slot");
    assert_eq!(slot["id"], id);
    assert_eq!(slot["meta"]["versionId"], "1");
    let updated = instant(&slot["meta"]["lastUpdated"]);
    // lastUpdated may be truncated to the millisecond or second.
    assert!(
        updated >= before - chrono::Duration::seconds(1) && updated <= after,
        "lastUpdated {updated} is the generation time ({before} … {after})"
    );
    assert_eq!(slot["status"], "free");
    assert_eq!(slot["schedule"]["reference"], "Schedule/ag1");
    assert_eq!(slot["start"], "2027-03-22T08:00:00+01:00");
    assert_eq!(slot["end"], "2027-03-22T08:30:00+01:00");
    let summer = app.get_json("Slot/ag1-202703290930-0", 200).await;
    assert_eq!(summer["start"], "2027-03-29T09:30:00+02:00", "after the spring change");
    assert_eq!(summer["end"], "2027-03-29T10:00:00+02:00");
    let wed = app.get_json("Slot/ag1-202703311440-0", 200).await;
    assert_eq!(
        (wed["start"].clone(), wed["end"].clone()),
        (json!("2027-03-31T14:40:00+02:00"), json!("2027-03-31T15:00:00+02:00"))
    );
    // Slots the template does not make are not there.
    app.get_json("Slot/ag1-202703221000-0", 404).await;
    app.get_json("Slot/ag1-202703230800-0", 404).await;

    // vread and history.
    assert_eq!(app.get_json(&format!("Slot/{id}/_history/1"), 200).await, slot, "vread 1 is the read");
    app.get_json(&format!("Slot/{id}/_history/2"), 404).await;
    let history = app.get_json(&format!("Slot/{id}/_history"), 200).await;
    let entries = history["entry"].as_array().expect("history entries");
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(history["total"], 1, "{history}");
    assert_eq!(entries[0]["resource"], slot);

    // Search by id.
    assert_eq!(ids(&app, &format!("Slot?_id={id}")).await, [id]);
    let found = app.get_json(&format!("Slot?_id={id}"), 200).await;
    assert_eq!(found["entry"][0]["resource"], slot, "a search renders the slot as a read does");

    // Paging in start order.
    let page = app.get_json("Slot?schedule=Schedule/ag1&_sort=start&_count=3", 200).await;
    assert_eq!(match_ids(&page), expected[..3].to_vec());
    let mut seen = match_ids(&page);
    let mut next = link(&page, "next");
    let mut pages = 1;
    while let Some(url) = next {
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        let r = app.client.get(&url).header("accept", FHIR_JSON).send().await.expect("next page");
        assert_eq!(r.status(), 200, "{url}");
        let page: Value = r.json().await.expect("json");
        let got = match_ids(&page);
        assert!(got.len() <= 3, "{url}: {got:?}");
        seen.extend(got);
        next = link(&page, "next");
    }
    assert_eq!(pages, 5, "14 slots in pages of 3");
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no slot twice over the pages: {seen:?}");
    assert_eq!(seen, expected, "all slots, in start order");
    let desc = app.get_json("Slot?schedule=Schedule/ag1&_sort=-start&_count=2", 200).await;
    assert_eq!(match_ids(&desc), ["ag1-202703311440-0", "ag1-202703311420-0"]);

    // Totals.
    let counted = app.get_json("Slot?schedule=Schedule/ag1&_summary=count", 200).await;
    assert_eq!(counted["total"], 14);
    assert!(counted.get("entry").is_none());
    let accurate = app.get_json("Slot?schedule=Schedule/ag1&_count=2&_total=accurate", 200).await;
    assert_eq!(accurate["total"], 14);
    assert_eq!(match_ids(&accurate).len(), 2);

    // _include the Schedule, once.
    let inc = app.get_json("Slot?schedule=Schedule/ag1&_include=Slot:schedule&_count=100", 200).await;
    assert_eq!(match_ids(&inc).len(), 14);
    let included: Vec<&Value> = inc["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| &e["resource"])
        .collect();
    assert_eq!(included.len(), 1, "{inc}");
    assert_eq!((included[0]["resourceType"].clone(), included[0]["id"].clone()), (json!("Schedule"), json!("ag1")));

    // Chains.
    assert_eq!(ids(&app, "Slot?schedule.actor=HealthcareService/hs1&_count=100").await, expected);
    assert!(ids(&app, "Slot?schedule.actor=HealthcareService/other").await.is_empty());
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&start=ge2027-03-29&_count=100").await, expected[7..].to_vec());
    assert_eq!(
        ids(&app, "Slot?schedule=Schedule/ag1&start=lt2027-03-22T07:30:00Z&_count=100").await,
        ["ag1-202703220800-0"],
        "08:00+01:00 is 07:00Z"
    );

    // A conditional update makes version 2; a stale one is refused.
    let path = format!("Slot/{id}");
    let mut changed = slot.clone();
    changed["comment"] = json!("prima visita");
    let r = send_put(&app, &path, &changed, "W/\"1\"").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("etag").expect("ETag on an update"), "W/\"2\"");
    let v2: Value = r.json().await.expect("json");
    assert_eq!(v2["meta"]["versionId"], "2");
    assert_eq!(v2["comment"], "prima visita");
    let mut stale = slot.clone();
    stale["comment"] = json!("seconda visita");
    let r = send_put(&app, &path, &stale, "W/\"1\"").await;
    assert_eq!(r.status(), 412);
    let oo: Value = r.json().await.expect("json");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let read = app.get_json(&path, 200).await;
    assert_eq!((read["meta"]["versionId"].clone(), read["comment"].clone()), (json!("2"), json!("prima visita")));
    let history = app.get_json(&format!("{path}/_history"), 200).await;
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(2), "{history}");
    assert_eq!(history["total"], 2);
    assert_eq!(app.get_json(&format!("{path}/_history/1"), 200).await, slot, "version 1 is the generated slot");
    assert_eq!(app.get_json(&format!("{path}/_history/2"), 200).await["comment"], "prima visita");

    // Found once, changed, and still in its place in start order.
    let all = app.get_json("Slot?schedule=Schedule/ag1&_sort=start&_count=100&_total=accurate", 200).await;
    assert_eq!(match_ids(&all), expected, "the updated slot is listed once");
    assert_eq!(all["total"], 14);
    assert_eq!(all["entry"][0]["resource"]["comment"], "prima visita");
    assert_eq!(all["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(ids(&app, &format!("Slot?_id={id}")).await, [id]);
    assert_eq!(app.get_json("Slot?schedule=Schedule/ag1&_summary=count", 200).await["total"], 14);

    // A delete.
    let gone = "ag1-202703240800-0";
    assert_eq!(app.get(&format!("Slot/{gone}")).await.status(), 404, "not a slot the template makes");
    let gone = "ag1-202703241420-0";
    let r = app.delete(&format!("Slot/{gone}")).await;
    assert!(r.status().is_success(), "DELETE: {}", r.status());
    let oo = app.get_json(&format!("Slot/{gone}"), 410).await;
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let left: Vec<String> = expected.iter().filter(|s| *s != gone).cloned().collect();
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, left);
    assert!(ids(&app, &format!("Slot?_id={gone}")).await.is_empty());
    assert_eq!(app.get_json("Slot?schedule=Schedule/ag1&_summary=count", 200).await["total"], 13);
    let history = app.get_json(&format!("Slot/{gone}/_history"), 200).await;
    assert_eq!(history["total"], 2, "created by generation, then deleted: {history}");
    // Regenerating does not bring the deleted slot back, nor duplicate the changed one.
    let again = generate(&app, "ag1", "2027-03-22").await;
    assert_eq!((count(&again, "created"), count(&again, "kept"), count(&again, "removed")), (0, 14, 0), "{again}");
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, left);
    app.get_json(&format!("Slot/{gone}"), 410).await;
}

async fn template_edit_removes_slots_no_longer_made(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Two weeks from Monday 2027-03-01: Mondays 1 and 8, four 30-minute slots from
    // 08:00; Tuesdays 2 and 9, three 20-minute slots from 09:00.
    let monday = session("mon", "08:00:00", "10:00:00", 30);
    let tuesday = session("tue", "09:00:00", "10:00:00", 20);
    facility(&app, 1, "Genovese", 44.4056, 8.9463, template(14, vec![monday.clone(), tuesday])).await;
    let mondays = slot_ids("ag1", &["20270301", "20270308"], &["0800", "0830", "0900", "0930"]);
    let tuesdays = slot_ids("ag1", &["20270302", "20270309"], &["0900", "0920", "0940"]);
    let report = generate(&app, "ag1", "2027-03-01").await;
    assert_eq!((count(&report, "created"), count(&report, "kept"), count(&report, "removed")), (14, 0, 0), "{report}");
    let all: Vec<String> = sorted(mondays.iter().chain(&tuesdays).cloned().collect());
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, all);

    // One Tuesday slot booked.
    let booked = "ag1-202703020920-0";
    put_ok(&app, &json!({"resourceType": "Patient", "id": "pat-1", "name": [{"family": "Rossi"}]})).await;
    put_ok(
        &app,
        &json!({"resourceType": "Appointment", "id": "appt-1", "status": "booked",
        "slot": [{"reference": format!("Slot/{booked}")}],
        "start": "2027-03-02T09:20:00+01:00", "end": "2027-03-02T09:40:00+01:00",
        "participant": [
            {"actor": {"reference": "Patient/pat-1"}, "status": "accepted"},
            {"actor": {"reference": "HealthcareService/hs1"}, "status": "accepted"}
        ]}),
    )
    .await;
    // The booking itself turned the slot busy.
    let booked_before = app.get_json(&format!("Slot/{booked}"), 200).await;
    assert_eq!(
        (booked_before["status"].clone(), booked_before["meta"]["versionId"].clone()),
        (json!("busy"), json!("2"))
    );
    let monday_before = app.get_json("Slot/ag1-202703080900-0", 200).await;

    // The Tuesday session is dropped.
    put_ok(&app, &schedule("ag1", "hs1", template(14, vec![monday]))).await;
    let report = generate(&app, "ag1", "2027-03-01").await;
    assert_eq!(
        (count(&report, "created"), count(&report, "kept"), count(&report, "removed")),
        (0, 8, tuesdays.len() as i64 - 1),
        "{report}"
    );
    let holding = held(&report);
    assert_eq!(holding.len(), 1, "{report}");
    assert!(
        holding[0].starts_with(&format!("Slot/{booked} holds Appointment/appt-1")),
        "names the slot and its appointment: {}",
        holding[0]
    );
    for t in tuesdays.iter().filter(|t| *t != booked) {
        let oo = app.get_json(&format!("Slot/{t}"), 410).await;
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    assert_eq!(app.get_json(&format!("Slot/{booked}"), 200).await, booked_before, "the booked slot is kept as it was");
    assert_eq!(app.get_json("Appointment/appt-1", 200).await["status"], "booked");
    assert_eq!(app.get_json("Slot/ag1-202703080900-0", 200).await, monday_before, "Monday slots are untouched");
    for m in &mondays {
        let s = app.get_json(&format!("Slot/{m}"), 200).await;
        assert_eq!(s["meta"]["versionId"], "1", "{m}");
        assert_eq!(s["status"], "free", "{m}");
    }
    let mut left = mondays.clone();
    left.push(booked.to_string());
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, sorted(left.clone()));
    assert_eq!(app.get_json("Slot?schedule=Schedule/ag1&_summary=count", 200).await["total"], 9);

    // Once more: nothing to do; the booked slot is still held.
    let again = generate(&app, "ag1", "2027-03-01").await;
    assert_eq!((count(&again, "created"), count(&again, "kept"), count(&again, "removed")), (0, 8, 0), "{again}");
    assert_eq!(held(&again), holding);
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, sorted(left));

    // Once the appointment is cancelled, the slot goes too.
    let mut appt = app.get_json("Appointment/appt-1", 200).await;
    appt["status"] = json!("cancelled");
    put_ok(&app, &appt).await;
    let last = generate(&app, "ag1", "2027-03-01").await;
    assert_eq!((count(&last, "created"), count(&last, "kept"), count(&last, "removed")), (0, 8, 1), "{last}");
    assert!(held(&last).is_empty(), "{last}");
    app.get_json(&format!("Slot/{booked}"), 410).await;
    assert_eq!(ids(&app, "Slot?schedule=Schedule/ag1&_count=100").await, mondays);
}

async fn slot_search_by_district_provider_place_and_distance(b: Backend) {
    let (app, one, two, both) = two_agendas(b).await;

    let generated = app.get_json("Slot/ag1-202703010800-0", 200).await;
    let ext = generated["extension"].as_array().expect("extensions");
    let value_of = |name: &str| -> Value {
        ext.iter()
            .find(|e| e["url"] == format!("{BASE}/StructureDefinition/{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("{name} on {generated}"))
    };
    assert_eq!(value_of("slot-district")["valueString"], "Genovese");
    assert_eq!(value_of("slot-provider")["valueReference"]["reference"], "Organization/o1");
    assert_eq!(value_of("slot-location")["valueReference"]["reference"], "Location/l1");

    let check = |label: &'static str, want: &[String]| (label, sorted(want.to_vec()));
    for (query, (label, want)) in [
        ("Slot?district=Genovese", check("district 1", &one)),
        ("Slot?district=genov", check("district prefix", &one)),
        ("Slot?district:exact=Savonese", check("district 2", &two)),
        ("Slot?provider=Organization/o2", check("provider 2", &two)),
        ("Slot?provider=Organization/o1", check("provider 1", &one)),
        ("Slot?location=Location/l1", check("location 1", &one)),
        ("Slot?location=Location/l2", check("location 2", &two)),
        ("Slot?near=44.4056|8.9463|10|km", check("10 km of Genova", &one)),
        ("Slot?near=44.4056|8.9463|30|km", check("30 km of Genova", &one)),
        ("Slot?near=44.4056|8.9463|50|km", check("50 km of Genova", &both)),
        ("Slot?near=44.3078|8.4811|10|km", check("10 km of Savona", &two)),
        ("Slot?near=44.4056|8.9463", check("default 10 km", &one)),
        ("Slot?near=44.4056|8.9463|30|mi", check("30 miles", &both)),
        ("Slot?near=45.4642|9.19|50|km", check("Milano", &[])),
        ("Slot?district=Genovese&provider=Organization/o2", check("nobody", &[])),
    ] {
        assert_eq!(ids(&app, &format!("{query}&_count=100")).await, want, "{label}: {query}");
    }
    let oo = app.get_json("Slot?near=abc", 400).await;
    assert_eq!(expression(&oo), "near", "{oo}");
    let oo = app.get_json("Slot?near=95|8.93|10|km", 400).await;
    assert_eq!(expression(&oo), "near", "{oo}");

    // The earliest free slot of a service across both agendas.
    let earliest = |from: &'static str| {
        let system = catalog_system();
        let app = &app;
        async move {
            let q =
                format!("Slot?service-type={system}|{CATALOG_CODE}&status=free&start=ge{from}&_sort=start&_count=1");
            match_ids(&app.get_json(&q, 200).await)
        }
    };
    assert_eq!(earliest("2027-03-01").await, ["ag2-202703010745-0"]);
    assert_eq!(earliest("2027-03-01T07:50:00%2B01:00").await, ["ag1-202703010800-0"]);
    assert_eq!(earliest("2027-03-01T08:01:00%2B01:00").await, ["ag2-202703010805-0"]);
    assert!(earliest("2027-03-02").await.is_empty());
    let other = app.get_json("Slot?service-type=http://other|89.52&_count=100", 200).await;
    assert!(match_ids(&other).is_empty(), "{other}");
    assert_eq!(ids(&app, &format!("Slot?service-type={CATALOG_CODE}&_count=100")).await, both);

    // A slot moved out of the compact table (changed) is found the same way.
    let mut first = app.get_json("Slot/ag2-202703010745-0", 200).await;
    first["comment"] = json!("solo ecografia");
    put_ok(&app, &first).await;
    assert_eq!(earliest("2027-03-01").await, ["ag2-202703010745-0"]);
    assert_eq!(ids(&app, "Slot?near=44.3078|8.4811|10|km&_count=100").await, two);
    assert_eq!(ids(&app, "Slot?near=44.4056|8.9463|50|km&_count=100").await, both);
    assert_eq!(ids(&app, "Slot?district=Savonese&_count=100").await, two);
    assert_eq!(ids(&app, "Slot?provider=Organization/o2&_count=100").await, two);
    // Busy now: no longer the earliest free one.
    first = app.get_json("Slot/ag2-202703010745-0", 200).await;
    first["status"] = json!("busy");
    put_ok(&app, &first).await;
    assert_eq!(earliest("2027-03-01").await, ["ag1-202703010800-0"]);

    let cs = app.get_json("metadata", 200).await;
    let slot = cs["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Slot")
        .cloned()
        .expect("Slot in the CapabilityStatement");
    let near = slot["searchParam"].as_array().expect("search params").iter().find(|p| p["name"] == "near").cloned();
    let near = near.unwrap_or_else(|| panic!("Slot's near is listed: {slot}"));
    assert_eq!(near["type"], "special", "{near}");
}

async fn providers_see_only_their_generated_slots(b: Backend) {
    let (app, one, two, both) = two_agendas(b).await;
    let get_as = |who: As, path: &str| {
        let (app, path) = (&app, path.to_string());
        async move {
            let r = app.req_as(&who, Method::GET, &path).send().await.expect("GET");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Every check runs; the mismatches are reported together.
    let mut failures: Vec<String> = Vec::new();
    let mut expect = |what: &str, got: Value, want: Value| {
        if got != want {
            failures.push(format!("{what}: got {got}, expected {want}"));
        }
    };
    let p1 = As::provider("o1");
    let ids_json = |b: &Value| json!(sorted(match_ids(b)));

    let (status, found) = get_as(p1.clone(), "Slot?_count=1000").await;
    expect("o1: Slot?_count=1000 status", json!(status), json!(200));
    expect("o1: Slot?_count=1000", ids_json(&found), json!(one));
    let (_, found) = get_as(p1.clone(), "Slot?_count=2&_total=accurate&_sort=start").await;
    expect("o1: _total=accurate", found["total"].clone(), json!(4));
    expect("o1: first page by start", json!(match_ids(&found)), json!(one[..2]));
    let (_, counted) = get_as(p1.clone(), "Slot?_summary=count").await;
    expect("o1: _summary=count", counted["total"].clone(), json!(4));
    let (_, near) = get_as(p1.clone(), "Slot?near=44.4056|8.9463|50|km&_count=100").await;
    expect("o1: near 50 km", ids_json(&near), json!(one));
    let (_, by_id) = get_as(p1.clone(), "Slot?_id=ag2-202703010745-0,ag1-202703010830-0").await;
    expect("o1: _id of one of each", ids_json(&by_id), json!(["ag1-202703010830-0"]));
    let (_, chained) = get_as(p1.clone(), "Slot?schedule.actor=HealthcareService/hs2").await;
    expect("o1: chain to the other service", ids_json(&chained), json!([]));
    for own in ["Slot/ag1-202703010800-0", "Slot/ag1-202703010800-0/_history/1", "Slot/ag1-202703010800-0/_history"] {
        expect(&format!("o1: GET {own}"), json!(get_as(p1.clone(), own).await.0), json!(200));
    }
    for theirs in ["Slot/ag2-202703010745-0", "Slot/ag2-202703010745-0/_history/1", "Slot/ag2-202703010745-0/_history"]
    {
        expect(&format!("o1: GET {theirs}"), json!(get_as(p1.clone(), theirs).await.0), json!(404));
    }

    // Provider o2 sees the others; the administrator sees both.
    let (_, found) = get_as(As::provider("o2"), "Slot?_count=1000").await;
    expect("o2: Slot?_count=1000", ids_json(&found), json!(two));
    expect("admin: Slot?_count=1000", json!(ids(&app, "Slot?_count=1000").await), json!(both));
    expect(
        "admin: read ag2's",
        app.get_json("Slot/ag2-202703010745-0", 200).await["id"].clone(),
        json!("ag2-202703010745-0"),
    );

    // Provider o1 may change its own generated slot but not another's.
    let put_as = |who: As, path: &str, body: Value| {
        let (app, path) = (&app, path.to_string());
        async move {
            let r =
                app.req_as(&who, Method::PUT, &path).header("content-type", FHIR_JSON).body(body.to_string()).send();
            r.await.expect("PUT").status().as_u16()
        }
    };
    let mut mine = app.get_json("Slot/ag1-202703010800-0", 200).await;
    mine["comment"] = json!("riservato");
    expect("o1: PUT its own", json!(put_as(p1.clone(), "Slot/ag1-202703010800-0", mine).await), json!(200));
    let mut theirs = app.get_json("Slot/ag2-202703010745-0", 200).await;
    theirs["comment"] = json!("riservato");
    let status = put_as(p1.clone(), "Slot/ag2-202703010745-0", theirs).await;
    expect("o1: PUT ag2's refused", json!([403, 404].contains(&status)), json!(true));
    let after = app.get_json("Slot/ag2-202703010745-0", 200).await;
    expect(
        "ag2's slot unchanged",
        json!([after.get("comment"), Some(&after["meta"]["versionId"])]),
        json!([null, "1"]),
    );
    let (_, found) = get_as(p1.clone(), "Slot?_count=1000").await;
    expect("o1: after its change", ids_json(&found), json!(one));
    assert!(failures.is_empty(), "what providers see:\n{}", failures.join("\n"));
}

/// References to a generated slot resolve as to any Slot: `_include` and chains from
/// an Appointment, `_revinclude` from the slot. Each check is compared with the same
/// one on a slot that left the compact table, and all are reported together.
async fn references_to_generated_slots_resolve(b: Backend) {
    let app = TestApp::spawn(b).await;
    facility(&app, 1, "Genovese", 44.4056, 8.9463, template(7, vec![session("mon", "08:00:00", "10:00:00", 30)])).await;
    assert_eq!(count(&generate(&app, "ag1", "2027-03-01").await, "created"), 4);
    put_ok(&app, &json!({"resourceType": "Patient", "id": "pat-1", "name": [{"family": "Rossi"}]})).await;
    let appointment = |id: &str, slot: &str, start: &str, end: &str| {
        // A proposal takes no place, so its slot stays generated; a booking moves it.
        let status = if id == "appt-g" { "proposed" } else { "booked" };
        json!({"resourceType": "Appointment", "id": id, "status": status,
            "slot": [{"reference": format!("Slot/{slot}")}], "start": start, "end": end,
            "participant": [{"actor": {"reference": "Patient/pat-1"}, "status": "accepted"}]})
    };
    // appt-g is on a slot nothing has changed; appt-r on one that was (comment).
    let (generated, changed) = ("ag1-202703010800-0", "ag1-202703010900-0");
    put_ok(&app, &appointment("appt-g", generated, "2027-03-01T08:00:00+01:00", "2027-03-01T08:30:00+01:00")).await;
    put_ok(&app, &appointment("appt-r", changed, "2027-03-01T09:00:00+01:00", "2027-03-01T09:30:00+01:00")).await;
    let mut slot = app.get_json(&format!("Slot/{changed}"), 200).await;
    slot["comment"] = json!("cambiato");
    put_ok(&app, &slot).await;
    assert_eq!(app.get_json(&format!("Slot/{generated}"), 200).await["meta"]["versionId"], "1");

    let mut failures: Vec<String> = Vec::new();
    let mut expect = |what: String, got: Vec<String>, want: Vec<String>| {
        if got != want {
            failures.push(format!("{what}: got {got:?}, expected {want:?}"));
        }
    };
    for (appt, slot, start) in [("appt-g", generated, "08:00"), ("appt-r", changed, "09:00")] {
        let inc = app.get_json(&format!("Appointment?_id={appt}&_include=Appointment:slot"), 200).await;
        let included: Vec<String> = inc["entry"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| e["search"]["mode"] == "include")
                    .map(|e| {
                        format!(
                            "{}/{}",
                            e["resource"]["resourceType"].as_str().unwrap_or("?"),
                            e["resource"]["id"].as_str().unwrap_or("?")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        expect(format!("Appointment?_id={appt}&_include=Appointment:slot"), included, vec![format!("Slot/{slot}")]);
        let start = format!("2027-03-01T{start}:00%2B01:00");
        for chain in
            ["slot.schedule=Schedule/ag1".to_string(), format!("slot.start={start}"), format!("slot._id={slot}")]
        {
            let q = format!("Appointment?_id={appt}&{chain}");
            expect(q.clone(), match_ids(&app.get_json(&q, 200).await), vec![appt.to_string()]);
        }
        let q = format!("Slot?_id={slot}&_revinclude=Appointment:slot");
        let rev = app.get_json(&q, 200).await;
        let got: Vec<String> = rev["entry"]
            .as_array()
            .map(|es| es.iter().filter_map(|e| e["resource"]["id"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        expect(q, got, vec![slot.to_string(), appt.to_string()]);
    }
    assert!(failures.is_empty(), "references to slots:\n{}", failures.join("\n"));
}

crate::on_both!(
    generated_slots_behave_as_resources,
    template_edit_removes_slots_no_longer_made,
    slot_search_by_district_provider_place_and_distance,
    providers_see_only_their_generated_slots,
    references_to_generated_slots_resolve,
);

/// Two agendas one week from Monday 2027-03-01, generated: Genova (08:00, 08:30,
/// 09:00, 09:30) and Savona (07:45, 08:05, 08:25, 08:45), ~38.6 km apart. Returns
/// the app and the slot ids of each and of both, sorted.
async fn two_agendas(b: Backend) -> (TestApp, Vec<String>, Vec<String>, Vec<String>) {
    let app = TestApp::spawn(b).await;
    facility(&app, 1, "Genovese", 44.4056, 8.9463, template(7, vec![session("mon", "08:00:00", "10:00:00", 30)])).await;
    facility(&app, 2, "Savonese", 44.3078, 8.4811, template(7, vec![session("mon", "07:45:00", "09:05:00", 20)])).await;
    for ag in ["ag1", "ag2"] {
        let report = generate(&app, ag, "2027-03-01").await;
        assert_eq!(count(&report, "created"), 4, "{ag}: {report}");
    }
    let one = slot_ids("ag1", &["20270301"], &["0800", "0830", "0900", "0930"]);
    let two = slot_ids("ag2", &["20270301"], &["0745", "0805", "0825", "0845"]);
    let both = sorted(one.iter().chain(&two).cloned().collect());
    (app, one, two, both)
}
