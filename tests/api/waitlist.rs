//! Waiting lists: entries (`Appointment` `waitlist` without a slot) offered the
//! slots that free — cancellations (at once, from many clients), `$reopen`,
//! `$generate-slots` — class first then time in line; lapsed offers pass to the
//! next; only the enroller and the patient's app book an offer.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, booked_of, catalog, counter, region, send, slot_status, BASE};
use crate::helpers::{client_as, expression, As, Backend, TestApp, FHIR_JSON};

/// A waiting-list entry for cardiology (89.52) at the test region's place.
fn entry(patient: &str, class: Option<&str>, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    let mut a = json!({"resourceType": "Appointment", "status": "waitlist",
        "serviceType": [catalog("89.52")],
        "requestedPeriod": [{"start": from.to_rfc3339(), "end": to.to_rfc3339()}],
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "needs-action"},
            {"actor": {"reference": "Location/loc-x"}, "status": "accepted"}]});
    if let Some(c) = class {
        a["extension"] = json!([{"url": format!("{BASE}/StructureDefinition/priority-class"),
            "valueCoding": {"system": format!("{BASE}/CodeSystem/priority-class"), "code": c}}]);
    }
    a
}

/// Enrols `patient` (class `class`) for the next `days` days, as `who`; the entry's id.
pub(crate) async fn enrol(app: &TestApp, who: &As, patient: &str, class: &str, days: i64) -> String {
    let now = Utc::now();
    let (status, a) =
        send(app, who, Method::POST, "Appointment", &entry(patient, Some(class), now, now + Duration::days(days)))
            .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["status"], "waitlist");
    a["id"].as_str().unwrap_or_default().to_string()
}

pub(crate) async fn patients(app: &TestApp, ids: &[&str]) {
    for id in ids {
        let r = app.put(&format!("Patient/{id}"), &json!({"resourceType": "Patient", "id": id})).await;
        assert!(r.status().is_success(), "Patient/{id}");
    }
}

/// Books `slot` for `patient` at the counter; the booking's id.
async fn book(app: &TestApp, slot: &str, patient: &str) -> String {
    let a = json!({"resourceType": "Appointment", "status": "proposed", "slot": [{"reference": format!("Slot/{slot}")}],
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}]});
    let (status, b) = send(app, &counter(), Method::POST, "Appointment/$book", &book_params(a, None)).await;
    assert_eq!(status, 201, "{b}");
    booked_of(&b)["id"].as_str().unwrap_or_default().to_string()
}

/// Cancels `Appointment/id` at the counter.
pub(crate) async fn cancel(app: &TestApp, id: &str) {
    let (status, out) = send(
        app,
        &counter(),
        Method::POST,
        &format!("Appointment/{id}/$cancel"),
        &json!({"resourceType": "Parameters"}),
    )
    .await;
    assert_eq!(status, 200, "{out}");
}

fn by_reference(id: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]})
}

async fn appointment(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("Appointment/{id}"), 200).await
}

fn slot_of(a: &Value) -> String {
    a["slot"][0]["reference"].as_str().unwrap_or_default().trim_start_matches("Slot/").to_string()
}

/// Waits (up to 5 s) until `Appointment/id` is `status`.
async fn until_status(app: &TestApp, id: &str, status: &str) -> Value {
    for _ in 0..50 {
        let a = appointment(app, id).await;
        if a["status"] == status {
            return a;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Appointment/{id} never became {status}: {}", appointment(app, id).await)
}

/// The 9 open (not reserved) slots of a 3-day region, all booked by p1…p9.
pub(crate) async fn full_region(app: &TestApp) -> (Vec<String>, Vec<String>) {
    let slots = region(&app.base, &app.client, 3, 1).await;
    let open: Vec<String> = slots.iter().enumerate().filter(|(i, _)| i % 4 != 0).map(|(_, s)| s.clone()).collect();
    let mut bookings = Vec::new();
    for (n, slot) in open.iter().enumerate() {
        bookings.push(book(app, slot, &format!("p{}", n + 1)).await);
    }
    (open, bookings)
}

async fn cancellations_at_once_go_by_class_then_time_in_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, bookings) = full_region(&app).await;
    patients(&app, &["w1", "w2", "w3", "w4", "w5"]).await;
    let mut line = Vec::new();
    for (p, class) in [("w1", "P"), ("w2", "D"), ("w3", "B"), ("w4", "D"), ("w5", "P")] {
        line.push(enrol(&app, &counter(), p, class, 5).await);
    }
    // Four bookings cancelled at the same moment, by four clients.
    let cancels = bookings.iter().take(4).map(|id| {
        let client = client_as(&app.auth, &counter());
        let url = app.url(&format!("Appointment/{id}/$cancel"));
        async move {
            let r = client.post(url).header("content-type", FHIR_JSON).body(r#"{"resourceType":"Parameters"}"#);
            r.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
        }
    });
    assert!(join_all(cancels).await.iter().all(|s| *s == 200));
    // B, then D by time in line, then the first P: w3, w2, w4, w1; w5 still waits.
    let mut offered_slots = Vec::new();
    for id in [&line[2], &line[1], &line[3], &line[0]] {
        let a = appointment(&app, id).await;
        assert_eq!(a["status"], "pending", "{a}");
        assert!(a.to_string().contains("hold-expires"), "{a}");
        assert_eq!(slot_status(&app, &slot_of(&a)).await, "busy");
        offered_slots.push(slot_of(&a));
    }
    assert_eq!(appointment(&app, &line[4]).await["status"], "waitlist");
    offered_slots.sort();
    offered_slots.dedup();
    assert_eq!(offered_slots.len(), 4, "no slot offered twice");
    let notes = app.get_json("Communication?subject=Patient/w3", 200).await;
    let note = &notes["entry"][0]["resource"];
    assert!(note["payload"][0]["contentString"].as_str().unwrap_or_default().contains("fino al"), "{note}");
    assert_eq!(note["about"][0]["reference"], format!("Appointment/{}", line[2]));
    // w5 waits twice; the five other bookings cancelled at once: w5 gets one of
    // their slots, once (one offer per patient at a time).
    enrol(&app, &counter(), "w5", "P", 5).await;
    let cancels = bookings.iter().skip(4).map(|id| cancel(&app, id));
    join_all(cancels).await;
    let mut free = 0;
    for id in &bookings[4..] {
        let slot = slot_of(&appointment(&app, id).await);
        free += usize::from(slot_status(&app, &slot).await == "free");
    }
    assert_eq!(free, 4, "one freed slot offered, the others free");
    // Either entry of w5 may be the one (two slots freed at once race for them).
    for (status, n) in [("pending", 1), ("waitlist", 1)] {
        let found = app.get_json(&format!("Appointment?patient=Patient/w5&status={status}&_summary=count"), 200).await;
        assert_eq!(found["total"], n, "w5 {status}");
    }
    // The counter that enrolled w3 books the offer; w3 leaves the line.
    let (status, booked) = send(&app, &counter(), Method::POST, "Appointment/$book", &by_reference(&line[2])).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked_of(&booked)["status"], "booked");
}

async fn an_offer_not_booked_in_time_passes_to_the_next(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.booking.waitlist_hold_seconds = 1;
        c.booking.sweep_ms = 100;
    })
    .await;
    let (_, bookings) = full_region(&app).await;
    patients(&app, &["w1", "w2"]).await;
    let first = enrol(&app, &counter(), "w1", "B", 5).await;
    let second = enrol(&app, &counter(), "w2", "D", 5).await;
    cancel(&app, &bookings[0]).await;
    let offer = appointment(&app, &first).await;
    assert_eq!(offer["status"], "pending", "{offer}");
    let lapsed = until_status(&app, &first, "cancelled").await;
    assert_eq!(lapsed["cancelationReason"]["text"], "waitlist offer expired");
    let next = until_status(&app, &second, "pending").await;
    assert_eq!(slot_of(&next), slot_of(&offer), "the same slot, to the next in line");
}

async fn reopen_and_generate_offer_their_slots(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 1, 1).await;
    let day = app.get_json(&format!("Slot/{}", slots[0]), 200).await;
    let (start, end) = (day["start"].as_str().unwrap_or_default(), day["start"].as_str().unwrap_or_default());
    let period = |op: &str| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "start", "valueDateTime": start.replace("08:00:00", "00:00:00")},
            {"name": "end", "valueDateTime": end.replace("08:00:00", "23:00:00")},
            {"name": "reason", "valueString": op}]})
    };
    let provider = As::provider("prov-x");
    let (status, _) = send(&app, &provider, Method::POST, "Schedule/cardio-1/$close", &period("sciopero")).await;
    assert_eq!(status, 200);
    patients(&app, &["w1", "w2"]).await;
    let first = enrol(&app, &counter(), "w1", "D", 3).await;
    assert_eq!(appointment(&app, &first).await["status"], "waitlist", "a closed day offers nothing");
    let (status, out) = send(&app, &provider, Method::POST, "Schedule/cardio-1/$reopen", &period("sciopero")).await;
    assert_eq!(status, 200, "{out}");
    let parts = |name: &str| out["parameter"].as_array().map_or(0, |p| p.iter().filter(|x| x["name"] == name).count());
    assert_eq!(parts("reopened"), 4, "{out}");
    assert_eq!(parts("offered"), 1, "{out}");
    let offer = appointment(&app, &first).await;
    assert_eq!(offer["status"], "pending");
    assert_eq!(slot_of(&offer), slots[1], "the first slot class D may take (the 08:00 is kept for U)");
    assert!(app.get_json(&format!("Slot/{}", slots[2]), 200).await.get("comment").is_none());
    // New slots: the day after, offered to the next in line.
    let after = crate::helpers::today_rome() + Duration::days(2);
    let from = after.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let body = entry("w2", Some("B"), from, from + Duration::days(3));
    let (status, second) = send(&app, &counter(), Method::POST, "Appointment", &body).await;
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_str().unwrap_or_default().to_string();
    let after = after.to_string();
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": after}]});
    let (status, out) = send(&app, &provider, Method::POST, "Schedule/cardio-1/$generate-slots", &params).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["parameter"].as_array().map(|p| p.iter().any(|x| x["name"] == "offered")), Some(true), "{out}");
    let offer = appointment(&app, &second).await;
    assert_eq!(offer["status"], "pending", "{offer}");
    assert!(slot_of(&offer).contains(&after.replace('-', "")), "{offer}");
}

async fn a_patient_app_enrols_and_books_its_offer_another_point_cannot(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, bookings) = full_region(&app).await;
    patients(&app, &["w1"]).await;
    let own = As::patient("w1");
    let id = enrol(&app, &own, "w1", "D", 5).await;
    cancel(&app, &bookings[3]).await;
    assert_eq!(appointment(&app, &id).await["status"], "pending");
    let other = As { role: "booking-point", org: Some("cc-other"), channel: Some("call-centre"), ..Default::default() };
    let (status, refused) = send(&app, &other, Method::POST, "Appointment/$book", &by_reference(&id)).await;
    assert_eq!(status, 403, "{refused}");
    let (status, booked) = send(&app, &own, Method::POST, "Appointment/$book", &by_reference(&id)).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked_of(&booked)["status"], "booked");
}

async fn incomplete_entries_are_refused_naming_the_element(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    region(&app.base, &app.client, 1, 1).await;
    let now = Utc::now();
    let good = entry("p1", Some("D"), now, now + Duration::days(3));
    let mut no_patient = good.clone();
    no_patient["participant"].as_array_mut().map(|p| p.remove(0));
    let mut no_service = good.clone();
    no_service.as_object_mut().map(|o| o.remove("serviceType"));
    let mut no_period = good.clone();
    no_period.as_object_mut().map(|o| o.remove("requestedPeriod"));
    let mut no_place = good.clone();
    no_place["participant"].as_array_mut().map(|p| p.remove(1));
    let cases = [
        (no_patient, "Appointment.participant"),
        (no_service, "Appointment.serviceType"),
        (no_period, "Appointment.requestedPeriod"),
        (entry("p1", None, now, now + Duration::days(3)), "Appointment.extension:priority-class"),
        (no_place, "Appointment.participant"),
    ];
    for (body, element) in cases {
        let (status, out) = send(&app, &counter(), Method::POST, "Appointment", &body).await;
        assert_eq!((status, expression(&out)), (422, element.to_string()), "{out}");
    }
    let mut put = good.clone();
    put["id"] = json!("wl-1");
    let (status, out) = send(&app, &counter(), Method::PUT, "Appointment/wl-1", &put).await;
    assert_eq!(status, 201, "a PUT enrols too: {out}");
}

crate::on_both!(
    cancellations_at_once_go_by_class_then_time_in_line,
    an_offer_not_booked_in_time_passes_to_the_next,
    reopen_and_generate_offer_their_slots,
    a_patient_app_enrols_and_books_its_offer_another_point_cannot,
    incomplete_entries_are_refused_naming_the_element,
);
