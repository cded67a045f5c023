//! Many writers at once, as SQLite's one writer groups them (each request a
//! savepoint of a shared transaction) and as PostgreSQL runs them: no write lost,
//! no place booked twice, a refusal undoes only its own request, and each write is
//! read right after its answer.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, counter, proposal, region, send};
use crate::helpers::{match_ids, Backend, TestApp, FHIR_JSON};

fn patient(value: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": "http://example.org/sid/mrn", "value": value}]})
}

/// The slots open to a class-D booking, `n` of them (the first of each day is kept
/// for class U).
async fn open_slots(app: &TestApp, n: usize) -> Vec<String> {
    let slots = region(&app.base, &app.client, 8, 1).await;
    slots.iter().enumerate().filter(|(i, _)| i % 4 != 0).map(|(_, s)| s.clone()).take(n).collect()
}

/// One client: creates its patient, then books `slot` for it; the patient's id and
/// the booking's status.
async fn create_and_book(app: &TestApp, n: usize, slot: &str) -> (String, u16) {
    let r = app.post("Patient", &patient(&format!("CB-{n}"))).await;
    assert_eq!(r.status(), 201, "create {n}");
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let (status, body) =
        send(app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(slot, &id, None), None)).await;
    assert!(status == 201 || status == 409, "book {n}: {status} {body}");
    (id, status)
}

/// 32 clients create a patient and book at once, two for each of 16 places: every
/// patient is there, each place is booked exactly once, and every booking answered
/// 201 is found.
async fn thirty_two_clients_create_and_book_at_once_and_nothing_is_lost(b: Backend) {
    let app = TestApp::spawn(b).await;
    let slots = open_slots(&app, 16).await;
    let answers = join_all((0..32).map(|n| create_and_book(&app, n, &slots[n % 16]))).await;
    assert_eq!(answers.iter().filter(|(_, s)| *s == 201).count(), 16, "{answers:?}");
    for (n, (id, status)) in answers.iter().enumerate() {
        let found = app.get_json(&format!("Patient?identifier=CB-{n}"), 200).await;
        assert_eq!(match_ids(&found), [id.as_str()], "CB-{n}");
        let booked = app.get_json(&format!("Appointment?patient=Patient/{id}&status=booked&_summary=count"), 200).await;
        assert_eq!(booked["total"], i64::from(*status == 201), "Patient/{id}");
    }
    for slot in &slots {
        let found = app.get_json(&format!("Appointment?slot=Slot/{slot}&status=booked&_summary=count"), 200).await;
        assert_eq!(found["total"], 1, "Slot/{slot}");
    }
}

/// A stale If-Match update: 412, nothing written.
async fn stale_update(app: &TestApp, id: &str, n: usize) -> u16 {
    let mut body = patient(&format!("STALE-{n}"));
    body["id"] = json!(id);
    let r = app
        .req(Method::PUT, &format!("Patient/{id}"))
        .header("content-type", FHIR_JSON)
        .header("if-match", "W/\"7\"")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// Refused requests (stale updates, bookings of an unknown patient, a booking of a
/// place another takes) in the middle of concurrent creates and bookings: each is
/// refused alone, and every accepted write of the burst is there.
async fn refusals_among_concurrent_writes_undo_only_themselves(b: Backend) {
    let app = TestApp::spawn(b).await;
    let slots = open_slots(&app, 8).await;
    let app = &app;
    let target = app.create(&patient("TARGET")).await["id"].as_str().unwrap().to_string();
    let creates =
        (0..16).map(|n| async move { app.post("Patient", &patient(&format!("KEEP-{n}"))).await.status().as_u16() });
    let stale = (0..8).map(|n| stale_update(app, &target, n));
    let books = (0..8).map(|n| {
        let patient = if n % 2 == 0 { format!("p{}", n / 2 + 1) } else { "nobody-here".to_string() };
        let body = book_params(proposal(&slots[n], &patient, None), None);
        async move { send(app, &counter(), Method::POST, "Appointment/$book", &body).await.0 }
    });
    let (created, refused, booked) = futures::join!(join_all(creates), join_all(stale), join_all(books));
    assert!(created.iter().all(|s| *s == 201), "{created:?}");
    assert!(refused.iter().all(|s| *s == 412), "{refused:?}");
    for (n, status) in booked.iter().enumerate() {
        let found =
            app.get_json(&format!("Appointment?slot=Slot/{}&status=booked&_summary=count", slots[n]), 200).await;
        if n % 2 == 0 {
            assert_eq!(*status, 201, "booking {n}");
            assert_eq!(found["total"], 1, "booking {n}");
        } else {
            assert!((400..500).contains(status), "booking {n} of an unknown patient: {status}");
            assert_eq!(found["total"], 0, "booking {n}");
        }
    }
    for n in 0..16 {
        assert_eq!(match_ids(&app.get_json(&format!("Patient?identifier=KEEP-{n}"), 200).await).len(), 1, "KEEP-{n}");
    }
    let current = app.get_json(&format!("Patient/{target}"), 200).await;
    assert_eq!(current["meta"]["versionId"], "1");
    assert!(match_ids(&app.get_json("Patient?identifier=STALE-0", 200).await).is_empty());
}

/// One client's round: each write is read (by id and by search) right after its
/// answer, while the other clients write.
async fn write_then_read(app: &TestApp, n: usize) {
    let created = app.create(&patient(&format!("RAW-{n}"))).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(app.get_json(&format!("Patient/{id}"), 200).await["meta"]["versionId"], "1");
    let mut body = patient(&format!("RAW2-{n}"));
    body["id"] = json!(id);
    assert_eq!(app.put(&format!("Patient/{id}"), &body).await.status(), 200);
    assert_eq!(app.get_json(&format!("Patient/{id}"), 200).await["meta"]["versionId"], "2");
    assert_eq!(match_ids(&app.get_json(&format!("Patient?identifier=RAW2-{n}"), 200).await), [id.as_str()]);
    assert_eq!(app.delete(&format!("Patient/{id}")).await.status().as_u16() / 100, 2);
    assert_eq!(app.get(&format!("Patient/{id}")).await.status(), 410);
}

/// 24 clients at once create, update and delete, each reading its own write right
/// after each answer.
async fn each_write_is_read_right_after_its_answer(b: Backend) {
    let app = TestApp::spawn(b).await;
    join_all((0..24).map(|n| write_then_read(&app, n))).await;
}

crate::on_both!(
    thirty_two_clients_create_and_book_at_once_and_nothing_is_lost,
    refusals_among_concurrent_writes_undo_only_themselves,
    each_write_is_read_right_after_its_answer
);
