//! Booking through the API: `$book`, `$hold`, `$cancel`, plain Appointment writes
//! under the same rules, reschedules, and no double booking under a race.

use futures::future::join_all;
use reqwest::{Client, Method};
use serde_json::{json, Value};

use crate::concurrency::Server;
use crate::helpers::{client_as, expression, match_ids, session, As, Backend, TestApp, TestDb, FHIR_JSON};

pub(crate) const BASE: &str = "http://example.org/cupola";

pub(crate) fn catalog(code: &str) -> Value {
    json!({"coding": [{"system": format!("{BASE}/CodeSystem/catalog"), "code": code}]})
}

/// A provider with one cardiology agenda, slots of 30 minutes 08:00–10:00 every day
/// for the next `days` days (the first slot of each day reserved for class U), and
/// two prescriptions for patient p1 (class D and class U). Returns the slot ids in
/// start order.
pub(crate) async fn region(base: &str, client: &Client, days: i64, capacity: i64) -> Vec<String> {
    let put = |path: String, body: Value| {
        let client = client.clone();
        let url = format!("{base}/{path}");
        async move {
            let r = client.put(url).header("content-type", FHIR_JSON).body(body.to_string()).send().await.unwrap();
            let status = r.status().as_u16();
            assert!(status == 200 || status == 201, "PUT {path}: {status} {}", r.text().await.unwrap_or_default());
        }
    };
    put("Organization/prov-x".into(), json!({"resourceType": "Organization", "id": "prov-x", "name": "Ospedale X"}))
        .await;
    // The patients the tests book for: a booking's references must resolve.
    for n in 1..=9 {
        let id = format!("p{n}");
        put(format!("Patient/{id}"), json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]})).await;
    }
    put(
        "Location/loc-x".into(),
        json!({"resourceType": "Location", "id": "loc-x", "name": "Poliambulatorio",
            "address": {"city": "Genova", "district": "Genova Levante"},
            "managingOrganization": {"reference": "Organization/prov-x"}}),
    )
    .await;
    put(
        "HealthcareService/cardio".into(),
        json!({"resourceType": "HealthcareService", "id": "cardio", "providedBy": {"reference": "Organization/prov-x"},
            "location": [{"reference": "Location/loc-x"}]}),
    )
    .await;
    let mut parts: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| {
            let mut s = session(d, "08:00:00", "10:00:00", 30);
            s["extension"].as_array_mut().unwrap().push(json!({"url": "capacity", "valueInteger": capacity}));
            s
        })
        .collect();
    parts.push(json!({"url": "horizonDays", "valueInteger": days}));
    parts.push(json!({"url": "reserve", "extension": [
        {"url": "priority", "valueCode": "U"}, {"url": "perSession", "valueInteger": 1},
        {"url": "releaseHours", "valueInteger": 0}]}));
    put(
        "Schedule/cardio-1".into(),
        json!({"resourceType": "Schedule", "id": "cardio-1", "active": true,
            "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
            "serviceType": [catalog("89.52")],
            "actor": [{"reference": "HealthcareService/cardio"}, {"reference": "Location/loc-x"}]}),
    )
    .await;
    for (id, class, code) in [("sr-d", "D", "89.52"), ("sr-u", "U", "89.52"), ("sr-visit", "D", "89.7")] {
        put(
            format!("ServiceRequest/{id}"),
            json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
                "subject": {"reference": "Patient/p1"}, "code": catalog(code),
                "extension": [{"url": format!("{BASE}/StructureDefinition/priority-class"),
                    "valueCoding": {"system": format!("{BASE}/CodeSystem/priority-class"), "code": class}}]}),
        )
        .await;
    }
    let tomorrow = crate::helpers::today_rome() + chrono::Duration::days(1);
    let params =
        json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": tomorrow.to_string()}]});
    let r = client
        .post(format!("{base}/Schedule/cardio-1/$generate-slots"))
        .header("content-type", FHIR_JSON)
        .body(params.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found: Value = client
        .get(format!("{base}/Slot?schedule=Schedule/cardio-1&_sort=start&_count=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match_ids(&found)
}

/// An Appointment for `patient` on `slot`, as a booking point proposes it.
pub(crate) fn proposal(slot: &str, patient: &str, request: Option<&str>) -> Value {
    let mut a = json!({"resourceType": "Appointment", "status": "proposed",
        "slot": [{"reference": format!("Slot/{slot}")}],
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "needs-action"}]});
    if let Some(r) = request {
        a["basedOn"] = json!([{"reference": format!("ServiceRequest/{r}")}]);
    }
    a
}

pub(crate) fn book_params(appointment: Value, replaces: Option<&str>) -> Value {
    let mut p = vec![json!({"name": "appointment-resource", "resource": appointment})];
    if let Some(r) = replaces {
        p.push(json!({"name": "cancelled-appt-id", "valueString": r}));
    }
    json!({"resourceType": "Parameters", "parameter": p})
}

pub(crate) async fn send(app: &TestApp, who: &As, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let r =
        app.req_as(who, method, path).header("content-type", FHIR_JSON).body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `$book` by the counter of the tests.
async fn book_at_counter(app: &TestApp, appointment: Value, replaces: Option<&str>) -> (u16, Value) {
    send(app, &counter(), Method::POST, "Appointment/$book", &book_params(appointment, replaces)).await
}

pub(crate) fn booked_of(bundle: &Value) -> Value {
    assert_eq!(bundle["resourceType"], "Bundle", "{bundle}");
    bundle["entry"][0]["resource"].clone()
}

/// The element of `list` whose `key` is `value`.
pub(crate) fn with(list: &Value, key: &str, value: &str) -> Value {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|e| e[key] == value)
        .cloned()
        .unwrap_or_else(|| panic!("no {key} {value}"))
}

pub(crate) async fn slot_status(app: &TestApp, id: &str) -> String {
    app.get_json(&format!("Slot/{id}"), 200).await["status"].as_str().unwrap_or_default().to_string()
}

/// The statuses under which a search finds slot `id` (free or busy): what its index
/// rows say, where `slot_status` reads its body.
async fn slot_found_as(app: &TestApp, id: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for status in ["free", "busy"] {
        let bundle = app.get_json(&format!("Slot?_id={id}&status={status}"), 200).await;
        if bundle["entry"].as_array().is_some_and(|e| !e.is_empty()) {
            out.push(status);
        }
    }
    out
}

pub(crate) fn counter() -> As {
    As::booking_point("bp-genova")
}

async fn book_retry_cancel_and_the_same_rules_for_plain_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    assert_eq!(slots.len(), 8);
    let (free, free2) = (&slots[1], &slots[2]);

    let (status, out) = book_at_counter(&app, proposal(free, "p1", Some("sr-d")), None).await;
    assert_eq!(status, 201, "{out}");
    let booked = booked_of(&out);
    assert_eq!(booked["status"], "booked");
    // Linked to its slot's times and the agenda's service and place.
    assert!(booked["start"].is_string() && booked["end"].is_string(), "{booked}");
    let participants = booked["participant"].to_string();
    assert!(participants.contains("HealthcareService/cardio") && participants.contains("Location/loc-x"), "{booked}");
    let code = with(&booked["identifier"], "system", &format!("{BASE}/sid/booking-code"))["value"]
        .as_str()
        .expect("a booking code")
        .to_string();
    assert_eq!(code.len(), 9, "{code}");
    let by = with(&booked["extension"], "url", &format!("{BASE}/StructureDefinition/booked-by"));
    assert!(by.to_string().contains("\"counter\"") && by.to_string().contains("Organization/bp-genova"), "{by}");
    assert_eq!(slot_status(&app, free).await, "busy");
    // Moved out of the agenda's grid and turned busy in one transaction: found as busy only.
    assert_eq!(slot_found_as(&app, free).await, ["busy"]);

    // A client's retry gets the same booking.
    let (status, again) = book_at_counter(&app, proposal(free, "p1", Some("sr-d")), None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(booked_of(&again)["id"], booked["id"]);

    // Someone else on the full slot: 409, by $book or by a plain POST.
    let (status, oo) = book_at_counter(&app, proposal(free, "p2", None), None).await;
    assert_eq!(status, 409, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let mut plain = proposal(free, "p3", None);
    plain["status"] = json!("booked");
    let (status, _) = send(&app, &counter(), Method::POST, "Appointment", &plain).await;
    assert_eq!(status, 409);
    // A plain booking on a free slot is a booking like any other.
    let mut plain2 = proposal(free2, "p3", None);
    plain2["status"] = json!("booked");
    let (status, made) = send(&app, &counter(), Method::POST, "Appointment", &plain2).await;
    assert_eq!(status, 201, "{made}");
    assert!(made["identifier"].to_string().contains("booking-code"), "{made}");
    let free2_id = made["id"].as_str().unwrap().to_string();
    assert_eq!(slot_status(&app, free2).await, "busy");

    // No slot: only an administrator (data migration).
    let mut slotless = proposal(free, "p4", None);
    slotless.as_object_mut().unwrap().remove("slot");
    slotless["status"] = json!("booked");
    let (status, oo) = send(&app, &counter(), Method::POST, "Appointment", &slotless).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "Appointment.slot");
    assert_eq!(app.post("Appointment", &slotless).await.status(), 201);

    // Visit outcomes are the provider's; the provider sees the booking on its slot.
    let id = booked["id"].as_str().unwrap().to_string();
    let mut arrived = booked.clone();
    arrived["status"] = json!("arrived");
    let (status, _) = send(&app, &counter(), Method::PUT, &format!("Appointment/{id}"), &arrived).await;
    assert_eq!(status, 403);
    let provider = As::provider("prov-x");
    let seen = app.req_as(&provider, Method::GET, &format!("Appointment/{id}")).send().await.unwrap();
    assert_eq!(seen.status(), 200, "the provider sees appointments on its agenda");
    let (status, out) = send(&app, &provider, Method::PUT, &format!("Appointment/{free2_id}"), &{
        let mut a = made.clone();
        a["status"] = json!("arrived");
        a
    })
    .await;
    assert_eq!(status, 200, "the provider checks the patient in: {out}");
    assert_eq!(out["status"], "arrived");
    assert_eq!(slot_status(&app, free2).await, "busy", "an arrived patient keeps the place");

    // Cancel: the slot frees at once; the history keeps each step.
    let reason =
        json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "patient request"}]});
    let (status, cancelled) = send(&app, &counter(), Method::POST, &format!("Appointment/{id}/$cancel"), &reason).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancelationReason"]["text"], "patient request");
    assert_eq!(slot_status(&app, free).await, "free");
    assert_eq!(slot_found_as(&app, free).await, ["free"]);
    let history = app.get_json(&format!("Appointment/{id}/_history"), 200).await;
    let statuses: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["cancelled", "booked"]);
    let (status, _) = book_at_counter(&app, proposal(free, "p2", None), None).await;
    assert_eq!(status, 201, "the freed slot books again");
}

async fn reschedule_moves_the_booking_or_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    let (a, b, full) = (&slots[1], &slots[2], &slots[3]);
    let (_, out) = book_at_counter(&app, proposal(a, "p1", Some("sr-d")), None).await;
    let first = booked_of(&out)["id"].as_str().unwrap().to_string();
    let (status, _) = book_at_counter(&app, proposal(full, "p9", None), None).await;
    assert_eq!(status, 201);

    // Onto a full slot: refused, and the first booking stands.
    let (status, oo) = book_at_counter(&app, proposal(full, "p1", None), Some(&first)).await;
    assert_eq!(status, 409, "{oo}");
    assert_eq!(app.get_json(&format!("Appointment/{first}"), 200).await["status"], "booked");
    assert_eq!(slot_status(&app, a).await, "busy");

    let (status, out) = book_at_counter(&app, proposal(b, "p1", None), Some(&first)).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(booked_of(&out)["status"], "booked");
    assert_eq!(out["entry"][1]["resource"]["id"], first.as_str());
    // Found by service (the NRE is booked already), the new place keeps the prescription.
    assert_eq!(booked_of(&out)["basedOn"], json!([{"reference": "ServiceRequest/sr-d"}]), "{out}");
    assert_eq!(app.get_json(&format!("Appointment/{first}"), 200).await["status"], "cancelled");
    assert_eq!(slot_status(&app, a).await, "free");
    assert_eq!(slot_status(&app, b).await, "busy");
}

async fn slots_that_cannot_be_booked_are_refused_with_the_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    let book = |slot: String, request: Option<&'static str>| {
        let app = &app;
        async move {
            send(app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(&slot, "p1", request), None))
                .await
        }
    };
    let (status, oo) = book("no-such-slot".into(), None).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "Appointment.slot");
    // Quotes and backslashes in a slot's id are only text to the store's lookups.
    let (status, oo) = book("it's-\\'; DROP TABLE slot_claims; --".into(), None).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "Appointment.slot");
    // The first slot of each day is kept for class U until it starts.
    let (status, oo) = book(slots[0].clone(), Some("sr-d")).await;
    assert_eq!(status, 422, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("reserved for priority class U"), "{oo}");
    let (status, _) = book(slots[0].clone(), Some("sr-u")).await;
    assert_eq!(status, 201);
    // A prescription for another service.
    let (status, oo) = book(slots[1].clone(), Some("sr-visit")).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "Appointment.basedOn");
    // A slot in the past.
    let past = json!({"resourceType": "Slot", "id": "past", "schedule": {"reference": "Schedule/cardio-1"}, "status": "free",
        "start": "2026-01-05T08:00:00+01:00", "end": "2026-01-05T08:30:00+01:00", "serviceType": [catalog("89.52")]});
    assert_eq!(app.put("Slot/past", &past).await.status(), 201);
    let (status, oo) = book("past".into(), None).await;
    assert_eq!(status, 422, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("already started"), "{oo}");
    // A closed agenda.
    let start = app.get_json(&format!("Slot/{}", slots[5]), 200).await["start"].as_str().unwrap().to_string();
    let end = app.get_json(&format!("Slot/{}", slots[5]), 200).await["end"].as_str().unwrap().to_string();
    let closure = json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDateTime": start}, {"name": "end", "valueDateTime": end},
        {"name": "reason", "valueString": "ferie"}]});
    assert_eq!(app.post("Schedule/cardio-1/$close", &closure).await.status(), 200);
    let (status, oo) = book(slots[5].clone(), None).await;
    assert_eq!(status, 422, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("closed"), "{oo}");
    // Nothing of the refused bookings was kept.
    let all = app.get_json("Appointment?patient=Patient/p1&_count=50", 200).await;
    assert_eq!(match_ids(&all).len(), 1);
}

async fn a_hold_is_the_holders_and_frees_its_slot_when_it_expires(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.booking.hold_seconds = 1;
        c.booking.sweep_ms = 100;
    })
    .await;
    let slots = region(&app.base, &app.client, 1, 1).await;
    let (status, proposed) =
        send(&app, &counter(), Method::POST, "Appointment", &proposal(&slots[1], "p1", None)).await;
    assert_eq!(status, 201, "{proposed}");
    assert_eq!(slot_status(&app, &slots[1]).await, "free", "a proposal takes no place");
    let id = proposed["id"].as_str().unwrap().to_string();
    let reference = json!({"resourceType": "Parameters", "parameter": [
        {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]});
    let operator =
        As { role: "booking-point", org: Some("cc-genova"), channel: Some("call-centre"), ..Default::default() };
    let (status, held) = send(&app, &operator, Method::POST, "Appointment/$hold", &reference).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["status"], "pending");
    assert!(held.to_string().contains("hold-expires"), "{held}");
    // Sending the hold again does not extend it.
    let expiry = |a: &Value| with(&a["extension"], "url", &format!("{BASE}/StructureDefinition/hold-expires"));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, again) = send(&app, &operator, Method::PUT, &format!("Appointment/{id}"), &held).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(expiry(&again), expiry(&held));
    assert_eq!(slot_status(&app, &slots[1]).await, "busy");
    let other = As { role: "booking-point", org: Some("cc-other"), channel: Some("call-centre"), ..Default::default() };
    let (status, _) = send(&app, &other, Method::POST, "Appointment/$book", &reference).await;
    assert_eq!(status, 403, "only the holder books a hold");
    let (status, booked) = send(&app, &operator, Method::POST, "Appointment/$book", &reference).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked_of(&booked)["status"], "booked");
    let (status, _) = send(
        &app,
        &operator,
        Method::POST,
        &format!("Appointment/{id}/$cancel"),
        &json!({"resourceType": "Parameters"}),
    )
    .await;
    assert_eq!(status, 200);
    // A second hold, left to lapse.
    let (_, proposed) = send(&app, &counter(), Method::POST, "Appointment", &proposal(&slots[1], "p1", None)).await;
    let id = proposed["id"].as_str().unwrap().to_string();
    let reference = json!({"resourceType": "Parameters", "parameter": [
        {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]});
    let (status, _) = send(&app, &operator, Method::POST, "Appointment/$hold", &reference).await;
    assert_eq!(status, 200);
    // Nobody runs anything: the hold lapses and the slot frees.
    let mut waited = 0;
    while slot_status(&app, &slots[1]).await != "free" && waited < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(slot_status(&app, &slots[1]).await, "free");
    let lapsed = app.get_json(&format!("Appointment/{id}"), 200).await;
    assert_eq!(lapsed["status"], "cancelled");
    assert_eq!(lapsed["cancelationReason"]["text"], "hold expired");
}

/// `clients` booking points race for the first `slots` open slots through `bases`
/// (one or more gateways): exactly one booking per place.
async fn race(bases: &[String], client: &Client, slots: &[String], clients: usize) {
    for n in 0..clients {
        let url = format!("{}/Patient/racer-{n}", bases[0]);
        let body = json!({"resourceType": "Patient", "id": format!("racer-{n}")});
        let r = client.put(url).header("content-type", FHIR_JSON).body(body.to_string()).send().await.unwrap();
        assert!(r.status().is_success(), "Patient/racer-{n}: {}", r.status());
    }
    let sends = (0..clients).map(|n| {
        let url = format!("{}/Appointment/$book", bases[n % bases.len()]);
        let body = book_params(proposal(&slots[n % slots.len()], &format!("racer-{n}"), None), None);
        let client = client.clone();
        async move {
            let r = client.post(url).header("content-type", FHIR_JSON).body(body.to_string()).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status == 409 {
                assert_eq!(body["resourceType"], "OperationOutcome");
            }
            status
        }
    });
    let statuses = join_all(sends).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), slots.len(), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), clients - slots.len(), "{statuses:?}");
    for slot in slots {
        let url = format!("{}/Appointment?slot=Slot/{slot}&status=booked&_summary=count", bases[0]);
        let found: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["total"], 1, "Slot/{slot}");
    }
}

async fn a_hundred_clients_race_for_ten_slots(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 3, 1).await;
    let open: Vec<String> =
        slots.iter().enumerate().filter(|(i, _)| i % 4 != 0).map(|(_, s)| s.clone()).take(10).collect();
    race(std::slice::from_ref(&app.base), &client_as(&app.auth, &counter()), &open, 100).await;
}

/// The same `$book` sent many times at once (a client retrying before its first
/// answer): one booking, and every request is answered with it, none with a 409.
async fn the_same_booking_sent_many_times_at_once_is_made_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 1, 1).await;
    let client = client_as(&app.auth, &counter());
    let body = book_params(proposal(&slots[1], "p1", Some("sr-d")), None).to_string();
    let sends = (0..12).map(|_| {
        let (client, body) = (client.clone(), body.clone());
        let url = format!("{}/Appointment/$book", app.base);
        async move {
            let r = client.post(url).header("content-type", FHIR_JSON).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    let answers = join_all(sends).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 11, "{statuses:?}");
    let ids: std::collections::BTreeSet<String> =
        answers.iter().map(|(_, b)| booked_of(b)["id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let found = app.get_json(&format!("Appointment?slot=Slot/{}&status=booked", slots[1]), 200).await;
    assert_eq!(match_ids(&found).len(), 1, "{found}");
}

/// The race across two gateway processes on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_postgres_never_double_book() {
    let db = TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("dev-key.json");
    let (a, b) = futures::join!(Server::start(&db.url, &key), Server::start(&db.url, &key));
    let auth = cupola::config::AuthConfig::dev(&key);
    let slots = region(&a.base, &client_as(&auth, &As::admin()), 3, 1).await;
    let open: Vec<String> =
        slots.iter().enumerate().filter(|(i, _)| i % 4 != 0).map(|(_, s)| s.clone()).take(10).collect();
    race(&[a.base.clone(), b.base.clone()], &client_as(&auth, &counter()), &open, 100).await;
}

pub(crate) const NRE: &str = "urn:oid:2.16.840.1.113883.2.9.4.3.9";

/// The catalog facts the rules read: 89.52 a cardiology exam, 89.7 a visit, 89.01 retired.
pub(crate) async fn catalog_codes(app: &TestApp) {
    let concept = |code: &str, branch: &str, kind: &str| {
        json!({"code": code, "display": code, "property": [
            {"code": "branch", "valueCode": branch}, {"code": "kind", "valueCode": kind},
            {"code": "access", "valueCode": "first"}]})
    };
    let mut retired = concept("89.01", "general", "visit");
    retired["property"].as_array_mut().unwrap().push(json!({"code": "status", "valueCode": "retired"}));
    let cs = json!({"resourceType": "CodeSystem", "id": "catalog", "url": format!("{BASE}/CodeSystem/catalog"),
    "status": "active", "content": "complete",
    "property": [{"code": "branch", "type": "code"}, {"code": "kind", "type": "code"}, {"code": "access", "type": "code"}],
    "concept": [concept("89.52", "cardiology", "exam"), concept("89.7", "general", "visit"), retired]});
    let r = app.put("CodeSystem/catalog", &cs).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
}

pub(crate) fn prescription(id: &str, nre: &str, code: &str, class: &str, patient: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
        "requisition": {"system": NRE, "value": nre},
        "subject": {"reference": format!("Patient/{patient}")}, "code": catalog(code),
        "extension": [{"url": format!("{BASE}/StructureDefinition/priority-class"),
            "valueCoding": {"system": format!("{BASE}/CodeSystem/priority-class"), "code": class}}]})
}

pub(crate) fn window() -> String {
    let today = crate::helpers::today_rome();
    format!("start={}&end={}", today, today + chrono::Duration::days(10))
}

async fn find_proposes_free_slots_earliest_first_and_books_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 3, 1).await;
    catalog_codes(&app).await;
    let patient =
        json!({"resourceType": "Patient", "id": "p1", "address": [{"city": "Genova", "district": "Genova Levante"}]});
    assert_eq!(app.put("Patient/p1", &patient).await.status(), 200, "region() made p1; this gives it an address");
    assert_eq!(
        app.put("ServiceRequest/sr-n1", &prescription("sr-n1", "070A12345678901", "89.52", "D", "p1")).await.status(),
        201
    );
    let get = |path: String| {
        let app = &app;
        async move {
            let r = app.req_as(&counter(), Method::GET, &path).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, found) =
        get(format!("Appointment/$find?{}&referral-identifier=070A12345678901&_count=3", window())).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["type"], "searchset");
    let proposals: Vec<Value> = found["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect();
    assert_eq!(proposals.len(), 3);
    let slot_of = |a: &Value| a["slot"][0]["reference"].as_str().unwrap().trim_start_matches("Slot/").to_string();
    // Class D: the first slot of each day is kept for class U, so it is not offered.
    assert_eq!(proposals.iter().map(slot_of).collect::<Vec<_>>(), slots[1..4].to_vec());
    for p in &proposals {
        assert_eq!(p["status"], "proposed");
        assert_eq!(p["basedOn"][0]["reference"], "ServiceRequest/sr-n1");
        assert_eq!(
            with(&p["extension"], "url", &format!("{BASE}/StructureDefinition/within-guarantee"))["valueBoolean"],
            true
        );
    }
    // The same by POST, narrowed to the provider; another provider has nothing.
    let today = crate::helpers::today_rome();
    let post = json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDate": today.to_string()},
        {"name": "end", "valueDate": (today + chrono::Duration::days(10)).to_string()},
        {"name": "service-type", "valueString": "89.52"},
        {"name": "organization", "valueReference": {"reference": "Organization/prov-x"}},
        {"name": "_count", "valueInteger": 2}]});
    let (status, posted) = send(&app, &counter(), Method::POST, "Appointment/$find", &post).await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["entry"].as_array().unwrap().len(), 2);
    let (_, elsewhere) =
        get(format!("Appointment/$find?{}&service-type=89.52&organization=Organization/prov-other", window())).await;
    assert!(elsewhere["entry"].as_array().is_none_or(|e| e.is_empty()), "{elsewhere}");
    // The same rule as a Slot search parameter.
    let open = |class: &'static str| {
        let app = &app;
        async move {
            let q = format!("Slot?schedule=Schedule/cardio-1&open-to={class}&_sort=start&_count=1");
            match_ids(&app.get_json(&q, 200).await)
        }
    };
    assert_eq!(open("D").await, [slots[1].clone()]);
    assert_eq!(open("U").await, [slots[0].clone()]);
    let r = app.get("Slot?open-to=Z").await;
    assert_eq!(r.status(), 400);
    // Class U gets the kept slot first.
    let (_, urgent) = get(format!("Appointment/$find?{}&service-type=89.52&priority-class=U&_count=1", window())).await;
    assert_eq!(slot_of(&urgent["entry"][0]["resource"]), slots[0]);

    // A proposal is booked by reference, linked to its prescription, slot and patient.
    let reference = json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",
        "valueReference": {"reference": format!("Appointment/{}", proposals[0]["id"].as_str().unwrap())}}]});
    let (status, out) = send(&app, &counter(), Method::POST, "Appointment/$book", &reference).await;
    assert_eq!(status, 201, "{out}");
    let booked = booked_of(&out);
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["basedOn"][0]["reference"], "ServiceRequest/sr-n1");
    assert!(booked["participant"].to_string().contains("Patient/p1"), "{booked}");
    assert!(booked["participant"].to_string().contains("Location/loc-x"), "{booked}");
    assert!(booked.get("extension").is_some_and(|e| !e.to_string().contains("proposal-expires")), "{booked}");
    // The prescription is now fully booked.
    let (status, oo) = get(format!("Appointment/$find?{}&referral-identifier=070A12345678901", window())).await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "referral-identifier");

    // Nothing in the patient's district: the region, with the guarantee pathway said.
    let (status, wide) =
        get(format!("Appointment/$find?{}&service-type=89.52&priority-class=D&district=Savonese&_count=2", window()))
            .await;
    assert_eq!(status, 200, "{wide}");
    let entries = wide["entry"].as_array().unwrap();
    assert_eq!(entries.iter().filter(|e| e["search"]["mode"] == "match").count(), 2);
    let outcome = entries.iter().find(|e| e["search"]["mode"] == "outcome").expect("an OperationOutcome");
    assert!(
        outcome["resource"]["issue"][0]["diagnostics"].as_str().unwrap().contains("guarantee pathway"),
        "{outcome}"
    );
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "information");

    // Bad requests name the parameter.
    for (query, param) in [
        ("end=2030-01-01&service-type=89.52".to_string(), "start"),
        (format!("{}&service-type=89.52&colour=red", window()), "colour"),
        (format!("{}&service-type=89.52&priority-class=X", window()), "priority-class"),
        (window(), "service-type"),
    ] {
        let (status, oo) = get(format!("Appointment/$find?{query}")).await;
        assert_eq!(status, 400, "{query}: {oo}");
        assert_eq!(expression(&oo), param, "{query}");
    }
}

async fn an_expired_proposal_cannot_be_booked(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.booking.proposal_seconds = 1;
        c.booking.sweep_ms = 100;
    })
    .await;
    region(&app.base, &app.client, 2, 1).await;
    let r = app.req_as(&counter(), Method::GET, &format!("Appointment/$find?{}&service-type=89.52&_count=1", window()));
    let found: Value = r.send().await.unwrap().json().await.unwrap();
    let id = found["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let reference = json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",
        "valueReference": {"reference": format!("Appointment/{id}")}}]});
    let (status, oo) = send(&app, &counter(), Method::POST, "Appointment/$book", &reference).await;
    assert_eq!(status, 410, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("expired"), "{oo}");
}

async fn prescriptions_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_codes(&app).await;
    assert_eq!(app.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"})).await.status(), 201);
    let (status, oo) =
        send(&app, &counter(), Method::PUT, "ServiceRequest/bad", &prescription("bad", "12345", "89.52", "D", "p1"))
            .await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "ServiceRequest.requisition.value");
    for (code, why) in [("99.99", "not a code of the regional catalog"), ("89.01", "retired")] {
        let (status, oo) = send(
            &app,
            &counter(),
            Method::PUT,
            "ServiceRequest/x",
            &prescription("x", "070A00000000009", code, "D", "p1"),
        )
        .await;
        assert_eq!(status, 422, "{oo}");
        assert_eq!(expression(&oo), "ServiceRequest.code");
        assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains(why), "{oo}");
    }
    for n in 1..=8 {
        let id = format!("sr-{n}");
        let (status, out) = send(
            &app,
            &counter(),
            Method::PUT,
            &format!("ServiceRequest/{id}"),
            &prescription(&id, "070A00000000001", "89.52", "D", "p1"),
        )
        .await;
        assert_eq!(status, 201, "{out}");
    }
    let (status, oo) = send(
        &app,
        &counter(),
        Method::PUT,
        "ServiceRequest/sr-9",
        &prescription("sr-9", "070A00000000001", "89.52", "D", "p1"),
    )
    .await;
    assert_eq!(status, 422, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("at most 8"), "{oo}");
    // Another branch has its own eight; an update of one of the eight is not a ninth.
    let (status, _) = send(
        &app,
        &counter(),
        Method::PUT,
        "ServiceRequest/sr-9",
        &prescription("sr-9", "070A00000000001", "89.7", "D", "p1"),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(
        &app,
        &counter(),
        Method::PUT,
        "ServiceRequest/sr-1",
        &prescription("sr-1", "070A00000000001", "89.52", "B", "p1"),
    )
    .await;
    assert_eq!(status, 200);
}

async fn declining_a_proposal_in_time_leaves_the_guarantee(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    region(&app.base, &app.client, 2, 1).await;
    catalog_codes(&app).await;
    assert_eq!(
        app.put("ServiceRequest/sr-n2", &prescription("sr-n2", "070A12345678902", "89.52", "D", "p1")).await.status(),
        201
    );
    let find = format!("Appointment/$find?{}&referral-identifier=070A12345678902&_count=1", window());
    let found: Value = app.req_as(&counter(), Method::GET, &find).send().await.unwrap().json().await.unwrap();
    let first = found["entry"][0]["resource"].clone();
    let within = format!("{BASE}/StructureDefinition/within-guarantee");
    assert_eq!(with(&first["extension"], "url", &within)["valueBoolean"], true);
    // The class's deadline: class D, an exam, 60 days from the first request (rules.json).
    let deadline = format!("{BASE}/StructureDefinition/guarantee-deadline");
    let by = with(&first["extension"], "url", &deadline)["valueDateTime"].as_str().unwrap_or_default().to_string();
    let by = chrono::DateTime::parse_from_rfc3339(&by).expect("a dateTime with its offset");
    let hours = (by.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((60 * 24 - 1..=60 * 24).contains(&hours), "{first}");
    let refusal = json!({"resourceType": "AppointmentResponse", "participantStatus": "declined",
        "appointment": {"reference": format!("Appointment/{}", first["id"].as_str().unwrap())},
        "actor": {"reference": "Patient/p1"}});
    let (status, _) = send(&app, &counter(), Method::POST, "AppointmentResponse", &refusal).await;
    assert_eq!(status, 201);
    let again: Value = app.req_as(&counter(), Method::GET, &find).send().await.unwrap().json().await.unwrap();
    let entries = again["entry"].as_array().unwrap();
    assert_eq!(with(&entries[0]["resource"]["extension"], "url", &within)["valueBoolean"], false, "{again}");
    assert!(!entries[0]["resource"].to_string().contains("guarantee-deadline"), "no deadline once declined");
    let outcome = entries.iter().find(|e| e["search"]["mode"] == "outcome").expect("said why");
    assert!(outcome.to_string().contains("declined"), "{outcome}");
}

async fn waiting_times_count_bookings_waits_deadlines_and_channels(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 3, 1).await;
    catalog_codes(&app).await;
    let call_centre =
        As { role: "booking-point", org: Some("cc-genova"), channel: Some("call-centre"), ..Default::default() };
    // A class D prescription, and two bookings without one.
    let (status, _) = book_at_counter(&app, proposal(&slots[1], "p1", Some("sr-d")), None).await;
    assert_eq!(status, 201);
    let (status, _) = book_at_counter(&app, proposal(&slots[2], "p2", None), None).await;
    assert_eq!(status, 201);
    let (status, _) = send(
        &app,
        &call_centre,
        Method::POST,
        "Appointment/$book",
        &book_params(proposal(&slots[5], "p3", None), None),
    )
    .await;
    assert_eq!(status, 201);
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let figures = |query: String| {
        let app = &app;
        async move {
            let r = app.req_as(&As::provider("prov-x"), Method::GET, &format!("$waiting-times?period={today}{query}"));
            let v: Value = r.send().await.unwrap().json().await.unwrap();
            assert_eq!(v["resourceType"], "Parameters", "{v}");
            v
        }
    };
    let all = figures(String::new()).await;
    let param = |v: &Value, name: &str| with(&v["parameter"], "name", name);
    assert_eq!(param(&all, "bookings")["valueInteger"], 3);
    assert_eq!(param(&all, "with-deadline")["valueInteger"], 1);
    assert_eq!(param(&all, "within-deadline-share")["valueDecimal"].as_f64(), Some(1.0));
    let median = param(&all, "wait-median-days")["valueDecimal"].as_f64().unwrap();
    let p90 = param(&all, "wait-p90-days")["valueDecimal"].as_f64().unwrap();
    assert!((0.0..=4.0).contains(&median) && median <= p90 && p90 <= 4.0, "{all}");
    let channels: Vec<(String, i64)> = all["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "channel")
        .map(|p| {
            (p["part"][0]["valueCode"].as_str().unwrap().to_string(), p["part"][1]["valueInteger"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(channels, [("counter".to_string(), 2), ("call-centre".to_string(), 1)]);
    let d = figures("&priority-class=D&branch=cardiology&district=Genova%20Levante".into()).await;
    assert_eq!(param(&d, "bookings")["valueInteger"], 1, "{d}");
    let none = figures("&service=89.7".into()).await;
    assert_eq!(param(&none, "bookings")["valueInteger"], 0);
    // group=day: each Rome day's bookings by channel, for the day and for the month.
    let month = today.format("%Y-%m").to_string();
    for query in [format!("period={today}&group=day"), format!("period={month}&group=day")] {
        let r = app.req_as(&As::provider("prov-x"), Method::GET, &format!("$waiting-times?{query}"));
        let by_day: Value = r.send().await.unwrap().json().await.unwrap();
        let days: Vec<(String, String, i64)> = by_day["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "day")
            .map(|p| {
                let part = |n: &str| with(&p["part"], "name", n).clone();
                (
                    part("date")["valueDate"].as_str().unwrap().to_string(),
                    part("code")["valueCode"].as_str().unwrap().to_string(),
                    part("bookings")["valueInteger"].as_i64().unwrap(),
                )
            })
            .collect();
        let day = today.to_string();
        assert_eq!(days, [(day.clone(), "counter".to_string(), 2), (day, "call-centre".to_string(), 1)], "{query}");
    }
    assert!(all["parameter"].as_array().unwrap().iter().all(|p| p["name"] != "day"), "only when asked");
    // group=service: each service's own figures, ranked per service by the database;
    // with one service booked they are the whole period's, counted the other way.
    let by_service = figures("&group=service".into()).await;
    let services: Vec<&Value> =
        by_service["parameter"].as_array().unwrap().iter().filter(|p| p["name"] == "service").collect();
    assert_eq!(services.len(), 1, "{by_service}");
    let part = |n: &str| with(&services[0]["part"], "name", n).clone();
    assert_eq!(part("code")["valueCode"], "89.52");
    assert_eq!(part("bookings")["valueInteger"], 3);
    assert_eq!(part("wait-median-days")["valueDecimal"].as_f64(), Some(median), "{by_service}");
    assert_eq!(part("wait-p90-days")["valueDecimal"].as_f64(), Some(p90), "{by_service}");
    assert_eq!(part("within-deadline-share")["valueDecimal"].as_f64(), Some(1.0));
    let none = figures("&group=service&priority-class=B".into()).await;
    assert!(none["parameter"].as_array().unwrap().iter().all(|p| p["name"] != "service"), "{none}");
    let r = app.get(&format!("$waiting-times?period={today}&group=week")).await;
    assert_eq!(r.status(), 400);
    assert_eq!(expression(&r.json().await.unwrap()), "group");
    let classes = app.get_json("CodeSystem/priority-class", 200).await;
    assert_eq!(classes["concept"].as_array().unwrap().len(), 4, "the priority classes are published");
    assert_eq!(app.get_json("CodeSystem/access-type", 200).await["concept"][1]["code"], "follow-up");
    let cs = app.get_json("metadata", 200).await;
    assert!(cs["rest"][0]["operation"].to_string().contains("waiting-times"), "listed in the CapabilityStatement");
    let appointment = with(&cs["rest"][0]["resource"], "type", "Appointment");
    let ops: Vec<&str> =
        appointment["operation"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(ops, ["find", "hold", "book", "cancel"]);
    for period in ["2026-13", "4294967295", "2147483647-12"] {
        let r = app.get(&format!("$waiting-times?period={period}")).await;
        assert_eq!(r.status(), 400, "{period}");
        assert_eq!(expression(&r.json().await.unwrap()), "period");
    }
}

/// At the same start time, the place nearest the patient's home comes first.
async fn at_equal_times_the_nearest_place_comes_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    // A second agenda, same hours, at a place in Chiavari; the patient lives there.
    let put = |path: &'static str, body: Value| {
        let app = &app;
        async move { assert!(app.put(path, &body).await.status().is_success(), "{path}") }
    };
    put(
        "Location/loc-x",
        json!({"resourceType": "Location", "id": "loc-x", "name": "Genova",
        "address": {"district": "Genova Levante"}, "managingOrganization": {"reference": "Organization/prov-x"},
        "position": {"latitude": 44.4056, "longitude": 8.9463}}),
    )
    .await;
    put(
        "Location/loc-y",
        json!({"resourceType": "Location", "id": "loc-y", "name": "Chiavari",
        "address": {"district": "Genova Levante"}, "managingOrganization": {"reference": "Organization/prov-x"},
        "position": {"latitude": 44.3168, "longitude": 9.3220}}),
    )
    .await;
    let mut second = app.get_json("Schedule/cardio-1", 200).await;
    second["id"] = json!("cardio-2");
    second["actor"] = json!([{"reference": "HealthcareService/cardio"}, {"reference": "Location/loc-y"}]);
    second.as_object_mut().unwrap().remove("meta");
    put("Schedule/cardio-2", second).await;
    let tomorrow = crate::helpers::today_rome() + chrono::Duration::days(1);
    let params =
        json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": tomorrow.to_string()}]});
    assert_eq!(app.post("Schedule/cardio-2/$generate-slots", &params).await.status(), 200);
    put(
        "Patient/p9",
        json!({"resourceType": "Patient", "id": "p9", "address": [{"city": "Chiavari",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [
            {"url": "latitude", "valueDecimal": 44.3170}, {"url": "longitude", "valueDecimal": 9.3210}]}]}]}),
    )
    .await;
    let first = |query: String| {
        let app = &app;
        async move {
            let r = app.req_as(
                &counter(),
                Method::GET,
                &format!("Appointment/$find?{}&service-type=89.52&_count=1{query}", window()),
            );
            let found: Value = r.send().await.unwrap().json().await.unwrap();
            found["entry"][0]["resource"]["slot"][0]["reference"].as_str().unwrap_or_default().to_string()
        }
    };
    let near_home = first("&patient-reference=Patient/p9".into()).await;
    assert!(near_home.starts_with("Slot/cardio-2-"), "{near_home}");
    assert_eq!(near_home.trim_start_matches("Slot/cardio-2"), slots[1].trim_start_matches("cardio-1"), "the same time");
    let near_genova = first("&near=44.41|8.94".into()).await;
    assert_eq!(near_genova, format!("Slot/{}", slots[1]));
}

crate::on_both!(
    at_equal_times_the_nearest_place_comes_first,
    waiting_times_count_bookings_waits_deadlines_and_channels,
    declining_a_proposal_in_time_leaves_the_guarantee,
    book_retry_cancel_and_the_same_rules_for_plain_writes,
    reschedule_moves_the_booking_or_changes_nothing,
    slots_that_cannot_be_booked_are_refused_with_the_reason,
    a_hold_is_the_holders_and_frees_its_slot_when_it_expires,
    a_hundred_clients_race_for_ten_slots,
    the_same_booking_sent_many_times_at_once_is_made_once,
    find_proposes_free_slots_earliest_first_and_books_them,
    an_expired_proposal_cannot_be_booked,
    prescriptions_are_checked,
);
