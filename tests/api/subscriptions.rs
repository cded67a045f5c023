//! FHIR Subscriptions through the API, on both backends: what a Subscription may
//! be and who sees it, the topics served, and events delivered to a real HTTP
//! receiver started by the test — each topic's filters, the owner's visibility,
//! `$status` and `$events`, retries of an endpoint that fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, booked_of, proposal, region, send, BASE};
use crate::helpers::{expression, As, Backend, TestApp};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";

/// What the receiver got at one path: each notification Bundle and its headers.
#[derive(Default)]
struct Received {
    got: Mutex<Vec<(String, Value, HeaderMap)>>,
    /// Requests to refuse (500) before answering.
    refuse: Mutex<usize>,
}

/// An HTTP endpoint of the test: `POST /{path}` records and answers 200 (or 500
/// while `refuse` lasts).
async fn receiver() -> (String, Arc<Received>) {
    let state = Arc::new(Received::default());
    let app = axum::Router::new().route("/{path}", axum::routing::post(take)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

async fn take(
    State(s): State<Arc<Received>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    {
        let mut refuse = s.refuse.lock().unwrap();
        if *refuse > 0 {
            *refuse -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let bundle: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    s.got.lock().unwrap().push((path, bundle, headers));
    StatusCode::OK
}

impl Received {
    /// The notifications that reached `path`.
    fn at(&self, path: &str) -> Vec<(Value, HeaderMap)> {
        self.got.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, b, h)| (b.clone(), h.clone())).collect()
    }

    /// The focus references of the events delivered at `path`, in order.
    fn foci(&self, path: &str) -> Vec<String> {
        self.at(path).iter().flat_map(|(b, _)| events_of(b)).filter_map(|(_, f)| f).collect()
    }

    async fn wait_for(&self, path: &str, n: usize) -> Vec<String> {
        for _ in 0..100 {
            if self.foci(path).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.foci(path)
    }
}

/// (event number, focus) of a notification's status.
fn events_of(bundle: &Value) -> Vec<(String, Option<String>)> {
    let status = &bundle["entry"][0]["resource"];
    let params = status["parameter"].as_array().cloned().unwrap_or_default();
    params
        .iter()
        .filter(|p| p["name"] == "notification-event")
        .map(|p| {
            let part = |n: &str| p["part"].as_array().and_then(|ps| ps.iter().find(|x| x["name"] == n).cloned());
            let number = part("event-number").and_then(|x| x["valueString"].as_str().map(str::to_string));
            let focus = part("focus").and_then(|x| x["valueReference"]["reference"].as_str().map(str::to_string));
            (
                number.unwrap_or_default(),
                focus
                    .map(|f| f.rsplit('/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("/")),
            )
        })
        .collect()
}

fn topic(name: &str) -> String {
    format!("{BASE}/SubscriptionTopic/{name}")
}

/// A rest-hook Subscription on `criteria` (a topic or a search), with `filter`
/// (the backport's filter criteria) and `payload` content.
fn subscription(criteria: &str, filter: Option<&str>, endpoint: &str, payload: &str) -> Value {
    let mut s = json!({"resourceType": "Subscription", "status": "requested", "reason": "test",
        "criteria": criteria,
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": format!("{BACKPORT}/backport-payload-content"), "valueCode": payload}]},
            "header": ["X-Token: secret-of-the-subscriber"]}});
    if let Some(f) = filter {
        s["_criteria"] =
            json!({"extension": [{"url": format!("{BACKPORT}/backport-filter-criteria"), "valueString": f}]});
    }
    s
}

fn patient_app(id: &'static str) -> As {
    As { role: "patient-app", patient: Some(id), ..Default::default() }
}

async fn subscribe(app: &TestApp, who: &As, body: &Value) -> String {
    let (status, out) = send(app, who, Method::POST, "Subscription", body).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["status"], "active", "{out}");
    assert!(out["channel"].get("header").is_none(), "the headers are never returned: {out}");
    out["id"].as_str().unwrap().to_string()
}

async fn book(app: &TestApp, slot: &str, patient: &str) -> Value {
    let (status, out) = send(
        app,
        &crate::booking::counter(),
        Method::POST,
        "Appointment/$book",
        &book_params(proposal(slot, patient, None), None),
    )
    .await;
    assert_eq!(status, 201, "{out}");
    booked_of(&out)
}

async fn get_as(app: &TestApp, who: &As, path: &str) -> (u16, Value) {
    let r = app.req_as(who, Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A gateway that calls the test's receiver (a loopback address), retrying after
/// 50 ms; its region's slots; the receiver.
async fn delivering(backend: Backend) -> (TestApp, Vec<String>, String, Arc<Received>) {
    let (app, url, got) = delivering_app(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    (app, slots, url, got)
}

/// The same without a region.
async fn delivering_app(backend: Backend) -> (TestApp, String, Arc<Received>) {
    let app = TestApp::spawn_with(backend, |c| {
        c.notify.subscription_allow_insecure = true;
        c.notify.notify_retry_base_ms = 50;
    })
    .await;
    let (url, got) = receiver().await;
    (app, url, got)
}

/// A patient waiting in line hears, through their subscription, that a freed slot
/// is held for them: the waiting Appointment, now `pending` on that slot.
async fn a_waitlist_offer_reaches_the_patients_subscription(backend: Backend) {
    let (app, url, got) = delivering_app(backend).await;
    let (_, bookings) = crate::waitlist::full_region(&app).await;
    crate::waitlist::patients(&app, &["w1"]).await;
    let me = As::patient("w1");
    let body = subscription(
        &topic("appointment-changed"),
        Some("Appointment?patient=Patient/w1"),
        &format!("{url}/w1"),
        "full-resource",
    );
    subscribe(&app, &me, &body).await;
    let id = crate::waitlist::enrol(&app, &me, "w1", "D", 5).await;
    let focus = format!("Appointment/{id}");
    assert_eq!(got.wait_for("w1", 1).await, std::slice::from_ref(&focus), "in line: the waiting Appointment");
    crate::waitlist::cancel(&app, &bookings[3]).await;
    assert_eq!(got.wait_for("w1", 2).await, [focus.clone(), focus]);
    let (offer, _) = got.at("w1").last().cloned().unwrap();
    let held = &offer["entry"][1]["resource"];
    assert_eq!(held["status"], "pending", "the slot is held for them: {offer}");
    assert!(held["slot"][0]["reference"].as_str().is_some_and(|s| s.starts_with("Slot/")), "{held}");
}

async fn a_subscription_is_checked_and_its_owners_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cs = app.get_json("metadata", 200).await;
    let sub =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Subscription").cloned().unwrap();
    let listed: Vec<&str> =
        sub["extension"].as_array().unwrap().iter().filter_map(|e| e["valueCanonical"].as_str()).collect();
    assert!(listed.contains(&topic("slot-freed").as_str()) && listed.len() == 4, "{listed:?}");
    let me = patient_app("p1");
    // The topics are served read-only.
    let (status, t) = get_as(&app, &me, "Basic/topic-appointment-changed").await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(send(&app, &As::admin(), Method::PUT, "Basic/topic-appointment-changed", &t).await.0, 403);

    let hook = "https://hooks.example.org/cupola";
    for (body, element) in [
        (subscription("Patient?name=x", None, hook, "id-only"), "Subscription.criteria"),
        (
            subscription(&topic("appointment-changed"), Some("Appointment?location=Location/x"), hook, "id-only"),
            "Subscription.criteria",
        ),
        // A filter on another type than the topic's.
        (
            subscription(&topic("appointment-changed"), Some("Slot?service-type=89.52"), hook, "id-only"),
            "Subscription.criteria",
        ),
        (
            subscription(&topic("appointment-changed"), None, "http://127.0.0.1:9/x", "id-only"),
            "Subscription.channel.endpoint",
        ),
        (
            subscription(&topic("appointment-changed"), None, "https://10.1.2.3/x", "id-only"),
            "Subscription.channel.endpoint",
        ),
        (subscription(&topic("appointment-changed"), None, hook, "everything"), "Subscription.channel.payload"),
    ] {
        let (status, oo) = send(&app, &me, Method::POST, "Subscription", &body).await;
        assert_eq!(status, 422, "{oo}");
        assert_eq!(expression(&oo), element, "{oo}");
    }
    let body = subscription(&topic("appointment-changed"), Some("Appointment?patient=Patient/p1"), hook, "id-only");
    let id = subscribe(&app, &me, &body).await;
    let (status, read) = get_as(&app, &me, &format!("Subscription/{id}")).await;
    assert_eq!(status, 200);
    assert!(read["channel"].get("header").is_none(), "{read}");
    // Another patient's app, and a counter, do not see it; an administrator does.
    assert_eq!(get_as(&app, &patient_app("p2"), &format!("Subscription/{id}")).await.0, 404);
    let (_, found) = get_as(&app, &crate::booking::counter(), "Subscription").await;
    assert_eq!(found["total"], 0, "{found}");
    let (_, mine) = get_as(&app, &me, "Subscription").await;
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(get_as(&app, &As::admin(), &format!("Subscription/{id}")).await.0, 200);
    assert_eq!(get_as(&app, &patient_app("p2"), &format!("Subscription/{id}/$status")).await.0, 404);
}

async fn events_reach_each_endpoint_with_their_filters(backend: Backend) {
    let (app, slots, url, got) = delivering(backend).await;
    let p1 = patient_app("p1");
    let full = subscription(
        &topic("appointment-changed"),
        Some("Appointment?patient=Patient/p1"),
        &format!("{url}/p1"),
        "full-resource",
    );
    let mine = subscribe(&app, &p1, &full).await;
    // R4's own criteria subscription, by a counter, ids only.
    let counter = crate::booking::counter();
    let theirs = subscribe(
        &app,
        &counter,
        &subscription("Appointment?patient=Patient/p2", None, &format!("{url}/p2"), "id-only"),
    )
    .await;
    // A slot freed for the agenda's service.
    let freed = subscription(&topic("slot-freed"), Some("Slot?service-type=89.52"), &format!("{url}/freed"), "id-only");
    subscribe(&app, &counter, &freed).await;

    let a1 = book(&app, &slots[1], "p1").await;
    let a2 = book(&app, &slots[2], "p2").await;
    let id1 = format!("Appointment/{}", a1["id"].as_str().unwrap());
    let id2 = format!("Appointment/{}", a2["id"].as_str().unwrap());
    assert_eq!(got.wait_for("p1", 1).await, std::slice::from_ref(&id1));
    assert_eq!(got.wait_for("p2", 1).await, std::slice::from_ref(&id2));
    let (bundle, headers) = got.at("p1")[0].clone();
    assert_eq!(bundle["type"], "history");
    assert_eq!(headers["x-token"], "secret-of-the-subscriber", "the subscriber's header goes with each notification");
    assert_eq!(bundle["entry"][1]["resource"]["id"], a1["id"], "full-resource carries the appointment");
    let (ids_only, _) = got.at("p2")[0].clone();
    assert!(ids_only["entry"][1].get("resource").is_none(), "id-only carries no resource: {ids_only}");

    // Cancelling frees the slot: one event on slot-freed, one more for p1.
    let (status, out) =
        send(&app, &counter, Method::POST, &format!("{id1}/$cancel"), &json!({"resourceType": "Parameters"})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(got.wait_for("freed", 1).await, [format!("Slot/{}", slots[1])]);
    assert_eq!(got.wait_for("p1", 2).await, [id1.clone(), id1.clone()]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!got.foci("p1").contains(&id2) && !got.foci("p2").contains(&id1), "nobody hears of another's appointment");

    // $status and $events: what was sent, read again by its owner.
    let (status, st) = get_as(&app, &p1, &format!("Subscription/{mine}/$status")).await;
    assert_eq!(status, 200, "{st}");
    let count = st["entry"][0]["resource"]["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "events-since-subscription-start")
        .unwrap()["valueString"]
        .clone();
    assert_eq!(count, "2");
    let (status, again) =
        get_as(&app, &p1, &format!("Subscription/{mine}/$events?eventsSinceNumber=2&content=id-only")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(events_of(&again), [("2".to_string(), Some(id1.clone()))]);
    assert_eq!(get_as(&app, &counter, &format!("Subscription/{theirs}/$events?eventsSinceNumber=0")).await.0, 400);
}

async fn a_failing_endpoint_gets_each_event_once_after_retries(backend: Backend) {
    let (app, slots, url, got) = delivering(backend).await;
    *got.refuse.lock().unwrap() = 3;
    let p3 = patient_app("p3");
    let body = subscription(
        &topic("appointment-changed"),
        Some("Appointment?patient=Patient/p3"),
        &format!("{url}/p3"),
        "id-only",
    );
    let id = subscribe(&app, &p3, &body).await;
    let booked = book(&app, &slots[1], "p3").await;
    let focus = format!("Appointment/{}", booked["id"].as_str().unwrap());
    assert_eq!(got.wait_for("p3", 1).await, [focus], "delivered once, after three refusals");
    let (_, st) = get_as(&app, &p3, &format!("Subscription/{id}/$status")).await;
    let status =
        st["entry"][0]["resource"]["parameter"].as_array().unwrap().iter().find(|p| p["name"] == "status").unwrap()
            ["valueCode"]
            .clone();
    assert_eq!(status, "active", "{st}");

    // An endpoint that never answers: after the fifth attempt the subscription is `error`.
    *got.refuse.lock().unwrap() = 1_000;
    book(&app, &slots[2], "p3").await;
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = app.get_json(&format!("Subscription/{id}"), 200).await;
        if seen["status"] == "error" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen["status"], "error", "{seen}");
    assert_eq!(got.foci("p3").len(), 1, "nothing more reached it");
}

/// A quiet subscription that asked for heartbeats hears from cupola anyway; a
/// provider hears of its own appointments only.
async fn heartbeats_and_a_providers_own_appointments(backend: Backend) {
    let (app, slots, url, got) = delivering(backend).await;
    let mut quiet = subscription(&topic("agenda-changed"), None, &format!("{url}/quiet"), "empty");
    quiet["channel"]["extension"] =
        json!([{"url": format!("{BACKPORT}/backport-heartbeat-period"), "valueUnsignedInt": 1}]);
    subscribe(&app, &As::admin(), &quiet).await;
    let ours = subscription(&topic("appointment-changed"), None, &format!("{url}/prov-x"), "id-only");
    subscribe(&app, &As::provider("prov-x"), &ours).await;
    let other = subscription(&topic("appointment-changed"), None, &format!("{url}/prov-y"), "id-only");
    subscribe(&app, &As::provider("prov-y"), &other).await;
    let booked = book(&app, &slots[1], "p4").await;
    let focus = format!("Appointment/{}", booked["id"].as_str().unwrap());
    assert_eq!(got.wait_for("prov-x", 1).await, [focus], "the agenda's provider hears of the booking");
    let mut beats = Vec::new();
    for _ in 0..60 {
        beats = got.at("quiet");
        if !beats.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kind = |b: &Value| {
        let params = b["entry"][0]["resource"]["parameter"].as_array().cloned().unwrap_or_default();
        params.iter().find(|p| p["name"] == "type").map(|p| p["valueCode"].clone()).unwrap_or(Value::Null)
    };
    assert!(!beats.is_empty(), "a heartbeat within a few seconds");
    assert_eq!(kind(&beats[0].0), "heartbeat");
    assert!(got.at("prov-y").is_empty(), "another provider hears nothing of it");
}

crate::on_both!(
    a_subscription_is_checked_and_its_owners_alone,
    a_waitlist_offer_reaches_the_patients_subscription,
    heartbeats_and_a_providers_own_appointments,
    events_reach_each_endpoint_with_their_filters,
    a_failing_endpoint_gets_each_event_once_after_retries,
);
