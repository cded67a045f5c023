//! Agendas: slots generated from a Schedule's template into the store, read back
//! through the API; regenerating adds nothing; a closure takes slots out of use and
//! reports the appointments on them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate};
use serde_json::{json, Value};

use crate::helpers::{match_ids, session, Backend, TestApp};
use cupola::agenda::{close, generate_for_schedule, Closure};
use cupola::store::{Registry, Store};

const BASE: &str = "http://example.org/cupola";

fn schedule(id: &str, parts: Vec<Value>) -> Value {
    json!({
        "resourceType": "Schedule",
        "id": id,
        "active": true,
        "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
        "serviceType": [{"coding": [{"system": format!("{BASE}/CodeSystem/catalog"), "code": "89.52"}]}],
        "actor": [{"reference": "HealthcareService/cardio"}],
    })
}

async fn put_ok(app: &TestApp, path: &str, body: &Value) {
    let r = app.put(path, body).await;
    let status = r.status().as_u16();
    assert!(status == 200 || status == 201, "PUT {path}: {status} {}", r.text().await.unwrap_or_default());
}

async fn slots(app: &TestApp, query: &str) -> Vec<Value> {
    let bundle = app.get_json(&format!("Slot?schedule=Schedule/cardio-1&_count=1000{query}"), 200).await;
    bundle["entry"].as_array().map(|es| es.iter().map(|e| e["resource"].clone()).collect()).unwrap_or_default()
}

fn by_id<'a>(slots: &'a [Value], id: &str) -> &'a Value {
    slots.iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("slot {id} missing"))
}

async fn agenda_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    put_ok(
        &app,
        "HealthcareService/cardio",
        &json!({"resourceType": "HealthcareService", "id": "cardio", "active": true, "name": "Cardiologia"}),
    )
    .await;
    // The week of the autumn change: Monday 2026-10-19 … Sunday 2026-10-25.
    let template = vec![
        json!({"url": "timeZone", "valueCode": "Europe/Rome"}),
        json!({"url": "horizonDays", "valueInteger": 7}),
        session("mon", "08:00:00", "12:00:00", 20),
        session("wed", "14:00:00", "16:00:00", 30),
        session("sun", "01:00:00", "04:00:00", 30),
        json!({"url": "reserve", "extension": [
            {"url": "priority", "valueCode": "U"},
            {"url": "perSession", "valueInteger": 1},
            {"url": "releaseHours", "valueInteger": 72},
        ]}),
    ];
    put_ok(&app, "Schedule/cardio-1", &schedule("cardio-1", template)).await;

    let store = Store::connect(app.db_url(), 2, Duration::from_secs(5), Arc::new(Registry::r4())).await.expect("store");
    let monday = NaiveDate::from_ymd_opt(2026, 10, 19).expect("date");
    let report = generate_for_schedule(&store, "cardio-1", monday, BASE).await.expect("generate");
    let (created, kept) = (report.created, report.kept);
    assert_eq!((created, kept), (12 + 4 + 6, 0));

    let all = slots(&app, "").await;
    assert_eq!(all.len(), 22);
    let first = by_id(&all, "cardio-1-202610190800-0");
    assert_eq!(first["start"], "2026-10-19T08:00:00+02:00");
    assert_eq!(first["end"], "2026-10-19T08:20:00+02:00");
    assert_eq!(first["status"], "free");
    assert_eq!(first["serviceType"][0]["coding"][0]["code"], "89.52");
    let reserved = first["extension"].as_array().expect("extensions");
    assert!(reserved.iter().any(|e| e["valueCode"] == "U"), "{first}");
    assert!(reserved.iter().any(|e| e["valueDateTime"] == "2026-10-16T08:00:00+02:00"), "{first}");
    assert_eq!(by_id(&all, "cardio-1-202610211430-0")["end"], "2026-10-21T15:00:00+02:00");
    // The Sunday of the change: 02:30 local runs to 03:00 winter time, then +01:00.
    assert_eq!(by_id(&all, "cardio-1-202610250230-0")["end"], "2026-10-25T03:00:00+01:00");
    assert_eq!(by_id(&all, "cardio-1-202610250330-0")["start"], "2026-10-25T03:30:00+01:00");
    // The search index sees the instants as such.
    let late = slots(&app, "&start=ge2026-10-25T00:00:00Z").await;
    assert_eq!(late.len(), 4, "{:?}", late.iter().map(|s| s["id"].clone()).collect::<Vec<_>>());

    // Regenerating adds nothing.
    let again = generate_for_schedule(&store, "cardio-1", monday, BASE).await.expect("again");
    assert_eq!((again.created, again.kept, again.removed), (0, 22, 0));

    // One booked slot, one cancelled appointment on another.
    let booked_slot = "cardio-1-202610190820-0";
    let appointment = |id: &str, status: &str, slot: &str, start: &str, end: &str| {
        json!({
            "resourceType": "Appointment", "id": id, "status": status,
            "slot": [{"reference": format!("Slot/{slot}")}],
            "start": start, "end": end,
            "participant": [{"actor": {"reference": "HealthcareService/cardio"}, "status": "accepted"}],
        })
    };
    let a1 = appointment("appt-1", "booked", booked_slot, "2026-10-19T08:20:00+02:00", "2026-10-19T08:40:00+02:00");
    put_ok(&app, "Appointment/appt-1", &a1).await;
    let a2 = appointment(
        "appt-2",
        "cancelled",
        "cardio-1-202610190840-0",
        "2026-10-19T08:40:00+02:00",
        "2026-10-19T09:00:00+02:00",
    );
    put_ok(&app, "Appointment/appt-2", &a2).await;
    let mut slot = app.get_json(&format!("Slot/{booked_slot}"), 200).await;
    slot["status"] = json!("busy");
    put_ok(&app, &format!("Slot/{booked_slot}"), &slot).await;
    let before = app.get_json("Appointment/appt-1", 200).await;

    // Monday closes: its 12 slots, free and busy, become busy-unavailable.
    let closure = Closure {
        start: DateTime::parse_from_rfc3339("2026-10-19T00:00:00+02:00").expect("instant"),
        end: DateTime::parse_from_rfc3339("2026-10-20T00:00:00+02:00").expect("instant"),
        reason: "festa patronale".into(),
    };
    let report = close(&store, "cardio-1", &closure).await.expect("close");
    assert_eq!(report.slots_closed.len(), 12);
    assert_eq!(report.slots_closed[0], "cardio-1-202610190800-0");
    assert!(report.slots_closed.contains(&booked_slot.to_string()));
    assert_eq!(report.appointments_to_rebook, vec!["appt-1".to_string()]);
    let closed = slots(&app, "&status=busy-unavailable").await;
    assert_eq!(closed.len(), 12);
    assert!(closed
        .iter()
        .all(|s| s["comment"] == "festa patronale" && s["start"].as_str().unwrap_or("").starts_with("2026-10-19")));
    assert_eq!(slots(&app, "&status=free").await.len(), 10);
    assert_eq!(app.get_json("Appointment/appt-1", 200).await, before);

    // Closing again finds nothing open; regenerating leaves the closed slots closed.
    let again = close(&store, "cardio-1", &closure).await.expect("close again");
    assert!(again.slots_closed.is_empty() && again.appointments_to_rebook.is_empty());
    let after = generate_for_schedule(&store, "cardio-1", monday, BASE).await.expect("after closure");
    assert_eq!((after.created, after.kept), (0, 22));
    assert_eq!(slots(&app, "&status=busy-unavailable").await.len(), 12);
    assert_eq!(match_ids(&app.get_json("Slot?schedule=Schedule/cardio-1&_count=1000", 200).await).len(), 22);
}

async fn bad_templates_and_missing_schedules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = Store::connect(app.db_url(), 2, Duration::from_secs(5), Arc::new(Registry::r4())).await.expect("store");
    let day = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
    let overlapping =
        schedule("bad-1", vec![session("mon", "08:00:00", "12:00:00", 20), session("mon", "11:00:00", "13:00:00", 20)]);
    put_ok(&app, "Schedule/bad-1", &overlapping).await;
    let e = generate_for_schedule(&store, "bad-1", day, BASE).await.expect_err("overlap refused");
    assert_eq!(e.status().as_u16(), 422);
    assert_eq!(e.issues()[0].expression.as_deref(), Some("Schedule.extension[0].extension[1]"));
    let bad_zone = schedule("bad-2", vec![json!({"url": "timeZone", "valueCode": "Mars/Olympus"})]);
    put_ok(&app, "Schedule/bad-2", &bad_zone).await;
    let e = generate_for_schedule(&store, "bad-2", day, BASE).await.expect_err("zone refused");
    assert_eq!(e.issues()[0].expression.as_deref(), Some("Schedule.extension[0].extension[0]"));
    assert!(e.issues()[0].diagnostics.contains("Mars/Olympus"));
    assert_eq!(slots_of(&app, "bad-1").await + slots_of(&app, "bad-2").await, 0);

    let e = generate_for_schedule(&store, "nowhere", day, BASE).await.expect_err("no schedule");
    assert_eq!(e.status().as_u16(), 404);
    let plain =
        json!({"resourceType": "Schedule", "id": "plain", "actor": [{"reference": "HealthcareService/cardio"}]});
    put_ok(&app, "Schedule/plain", &plain).await;
    assert_eq!(generate_for_schedule(&store, "plain", day, BASE).await.expect("no template"), Default::default());
}

async fn slots_of(app: &TestApp, schedule: &str) -> usize {
    match_ids(&app.get_json(&format!("Slot?schedule=Schedule/{schedule}&_count=1000"), 200).await).len()
}

crate::on_both!(
    agenda_lifecycle,
    bad_templates_and_missing_schedules,
    agenda_operations_over_http,
    a_sync_that_removes_a_booked_slot_is_refused,
    agenda_generate_command,
    generations_of_one_agenda_at_once_take_turns,
    slot_ids_another_agenda_holds_are_a_conflict
);

/// A gateway on `backend` with the HealthcareService `cardio`.
async fn with_cardio(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    put_ok(
        &app,
        "HealthcareService/cardio",
        &json!({"resourceType": "HealthcareService", "id": "cardio", "active": true}),
    )
    .await;
    app
}

/// Six administrators generate one agenda at the same moment, first when it is new,
/// then after its horizon grew: every request succeeds, the slots are made once, and
/// the reports add up to what was made.
async fn generations_of_one_agenda_at_once_take_turns(backend: Backend) {
    let app = with_cardio(backend).await;
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": "2026-11-30"}]});
    for (weeks, total) in [(4, 16), (8, 32)] {
        let mut sch = schedule("cardio-1", vec![session("mon", "08:00:00", "10:00:00", 30)]);
        sch["extension"][0]["extension"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": "horizonDays", "valueInteger": weeks * 7}));
        put_ok(&app, "Schedule/cardio-1", &sch).await;
        let runs = (0..6).map(|_| async {
            let r = app.post("Schedule/cardio-1/$generate-slots", &params).await;
            let status = r.status().as_u16();
            let out: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{out}");
            assert_eq!(out["parameter"][0]["name"], "created");
            out["parameter"][0]["valueInteger"].as_i64().unwrap()
        });
        let created: i64 = futures::future::join_all(runs).await.into_iter().sum();
        assert_eq!(created, 16, "each new slot made once over {weeks} weeks");
        assert_eq!(slots_of(&app, "cardio-1").await, total);
    }
}

/// A long Schedule id gives its slots a shortened, hashed id prefix; a Schedule
/// whose own id is that prefix cannot generate into the same slot ids: 409 naming
/// it, not a server error, and the first agenda keeps its slots.
async fn slot_ids_another_agenda_holds_are_a_conflict(backend: Backend) {
    let app = with_cardio(backend).await;
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": "2026-11-30"}]});
    let long = format!("cardio-{}", "x".repeat(50));
    let short = cupola::agenda::slot_id_prefix(&long);
    assert_ne!(short, long, "a {}-character id is shortened", long.len());
    for id in [&long, &short] {
        put_ok(&app, &format!("Schedule/{id}"), &schedule(id, vec![session("mon", "08:00:00", "09:00:00", 30)])).await;
    }
    let first = app.post(&format!("Schedule/{long}/$generate-slots"), &params).await;
    assert_eq!(first.status().as_u16(), 200, "{}", first.text().await.unwrap_or_default());
    let made = slots_of(&app, &long).await;
    assert!(made > 0);
    let second = app.post(&format!("Schedule/{short}/$generate-slots"), &params).await;
    assert_eq!(second.status().as_u16(), 409);
    let outcome: Value = second.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let said = outcome["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(said.contains(&format!("Schedule/{short}")) && said.contains("another agenda"), "{said}");
    assert_eq!(slots_of(&app, &long).await, made, "the first agenda's slots stay as they were");
    assert_eq!(slots_of(&app, &short).await, 0);
}

/// `cupola agenda generate`: every agenda of the store from a day, a report on
/// stdout, the slots then served; a second run creates nothing.
async fn agenda_generate_command(backend: Backend) {
    let app = with_cardio(backend).await;
    let template = vec![json!({"url": "horizonDays", "valueInteger": 7}), session("mon", "08:00:00", "09:00:00", 20)];
    put_ok(&app, "Schedule/cardio-1", &schedule("cardio-1", template)).await;
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cupola"))
            .args(["agenda", "generate", "--database-url", app.db_url(), "--from", "2026-10-19"])
            .env("RUST_LOG", "warn")
            .output()
            .expect("cupola agenda generate");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let first = run();
    assert!(first.starts_with("1 agendas: 3 slots created, 0 kept, 0 removed"), "{first}");
    let all = slots(&app, "").await;
    assert_eq!(all.len(), 3);
    assert_eq!(by_id(&all, "cardio-1-202610190840-0")["end"], "2026-10-19T09:00:00+02:00");
    let again = run();
    assert!(again.starts_with("1 agendas: 0 slots created, 3 kept, 0 removed"), "{again}");
}

/// The operations over HTTP: the owning provider generates and closes, another
/// provider may not, a booking point may not generate.
async fn agenda_operations_over_http(backend: Backend) {
    use crate::helpers::As;
    use reqwest::Method;
    let app = TestApp::spawn(backend).await;
    put_ok(&app, "Organization/prov-x", &json!({"resourceType": "Organization", "id": "prov-x", "name": "X"})).await;
    put_ok(&app, "Location/loc-x", &json!({"resourceType": "Location", "id": "loc-x", "name": "Poliambulatorio",
        "address": {"city": "Genova", "district": "Genova Levante"}, "managingOrganization": {"reference": "Organization/prov-x"}})).await;
    put_ok(
        &app,
        "HealthcareService/cardio",
        &json!({"resourceType": "HealthcareService", "id": "cardio", "providedBy": {"reference": "Organization/prov-x"},
            "location": [{"reference": "Location/loc-x"}]}),
    )
    .await;
    let mut sch = schedule("cardio-1", vec![session("mon", "08:00:00", "10:00:00", 30)]);
    sch["extension"][0]["extension"].as_array_mut().unwrap().push(json!({"url": "horizonDays", "valueInteger": 14}));
    put_ok(&app, "Schedule/cardio-1", &sch).await;
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": "2026-11-30"}]});
    let post = |who: As, path: &'static str, body: Value| {
        app.req_as(&who, Method::POST, path)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
    };
    // Another provider does not see the agenda; a booking point sees it but may not
    // change it; the owning provider generates.
    let r = post(As::provider("prov-other"), "Schedule/cardio-1/$generate-slots", params.clone()).await.unwrap();
    assert_eq!(r.status(), 404, "another provider's agenda");
    let r = post(As::booking_point("bp-1"), "Schedule/cardio-1/$generate-slots", params.clone()).await.unwrap();
    assert_eq!(r.status(), 403, "a booking point may not generate");
    let r = post(As::provider("prov-x"), "Schedule/cardio-1/$generate-slots", params.clone()).await.unwrap();
    assert_eq!(r.status(), 200, "the owning provider generates");
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["parameter"][0]["valueInteger"], 8, "two Mondays of four slots: {out}");
    let again: Value = app.post("Schedule/cardio-1/$generate-slots", &params).await.json().await.unwrap();
    assert_eq!(again["parameter"][0]["valueInteger"], 0);
    assert_eq!(again["parameter"][1]["valueInteger"], 8);
    // Slots are found by district, provider and place (cupola's SearchParameters).
    for q in [
        "district=Genova%20Levante",
        "provider=Organization/prov-x",
        "location=Location/loc-x",
        "district:exact=Genova%20Levante&status=free&_sort=start",
    ] {
        let found = app.get_json(&format!("Slot?{q}&_count=100"), 200).await;
        assert_eq!(match_ids(&found).len(), 8, "{q}");
    }
    assert!(match_ids(&app.get_json("Slot?district=Savonese", 200).await).is_empty());
    let sp = app.get_json("SearchParameter/Slot-district", 200).await;
    assert_eq!(sp["code"], "district");
    let cs = app.get_json("metadata", 200).await;
    let slot = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Slot").unwrap().clone();
    assert!(
        slot["searchParam"].as_array().unwrap().iter().any(|p| p["name"] == "district"),
        "listed in the CapabilityStatement"
    );

    let closure = json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDateTime": "2026-11-30T00:00:00+01:00"},
        {"name": "end", "valueDateTime": "2026-12-01T00:00:00+01:00"},
        {"name": "reason", "valueString": "guasto apparecchiatura"}
    ]});
    let r = post(As::provider("prov-other"), "Schedule/cardio-1/$close", closure.clone()).await.unwrap();
    assert_eq!(r.status(), 404, "another provider does not see this agenda");
    let r = post(As::provider("prov-x"), "Schedule/cardio-1/$close", closure).await.unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    let closed = out["parameter"].as_array().unwrap().iter().filter(|p| p["name"] == "closed").count();
    assert_eq!(closed, 4);
    let unavailable = slots(&app, "&status=busy-unavailable").await;
    assert_eq!(unavailable.len(), 4);
    let r = app.post("Schedule/cardio-1/$close", &json!({"resourceType": "Parameters", "parameter": []})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(crate::helpers::expression(&r.json().await.unwrap()), "start");
}

/// Agenda sync: a provider's transaction that removes a slot holding an appointment
/// is refused, naming the appointment, and changes nothing.
async fn a_sync_that_removes_a_booked_slot_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    put_ok(&app, "Schedule/cardio-1", &schedule("cardio-1", vec![session("mon", "08:00:00", "10:00:00", 30)])).await;
    for n in 1..=2 {
        put_ok(&app, &format!("Slot/s{n}"), &json!({"resourceType": "Slot", "id": format!("s{n}"), "schedule": {"reference": "Schedule/cardio-1"},
            "status": "free", "start": format!("2026-12-07T0{}:00:00+01:00", 7 + n), "end": format!("2026-12-07T0{}:30:00+01:00", 7 + n)})).await;
    }
    put_ok(
        &app,
        "Appointment/a1",
        &json!({"resourceType": "Appointment", "id": "a1", "status": "booked",
        "slot": [{"reference": "Slot/s1"}], "start": "2026-12-07T08:00:00+01:00", "end": "2026-12-07T08:30:00+01:00",
        "participant": [{"actor": {"reference": "Schedule/cardio-1"}, "status": "accepted"}]}),
    )
    .await;
    let sync = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": "Slot/s2"}},
        {"request": {"method": "DELETE", "url": "Slot/s1"}}
    ]});
    let r = app.post("", &sync).await;
    assert_eq!(r.status(), 409);
    let oo: Value = r.json().await.unwrap();
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap_or("").contains("Appointment/a1"), "{oo}");
    assert_eq!(app.get("Slot/s2").await.status(), 200, "all or nothing");
    assert_eq!(app.delete("Slot/s1").await.status(), 409);
    assert_eq!(app.delete("Slot/s2").await.status(), 200);
}
