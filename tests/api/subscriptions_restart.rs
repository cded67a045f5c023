//! Subscription events survive the gateway: an event whose delivery was under way
//! when its gateway process was killed is delivered by the next process started on
//! the same database, under the same number.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::booking::BASE;
use crate::concurrency::Server;
use crate::helpers::{client_as, As, Backend, TestDb};

/// An endpoint that hangs (and then fails) while `hang` is set, and records what
/// it answers 200 to otherwise.
#[derive(Default)]
struct Endpoint {
    hang: AtomicBool,
    got: Mutex<Vec<Value>>,
}

async fn take(State(e): State<Arc<Endpoint>>, body: String) -> StatusCode {
    if e.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(20)).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    e.got.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
    StatusCode::OK
}

async fn endpoint() -> (String, Arc<Endpoint>) {
    let state = Arc::new(Endpoint::default());
    let app = axum::Router::new().route("/hook", axum::routing::post(take)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

async fn put(client: &reqwest::Client, base: &str, path: &str, body: Value) {
    let r = client.put(format!("{base}/{path}")).header("content-type", "application/fhir+json").body(body.to_string());
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "PUT {path}: {}", r.text().await.unwrap_or_default());
}

async fn an_event_in_flight_when_the_gateway_dies_is_delivered_after_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dev-key.json");
    let flags = ["--subscription-allow-insecure", "--notify-retry-base-ms", "50"].map(String::from);
    let first = Server::start_with(&db.url, &key, &flags).await;
    let admin = client_as(&cupola::config::AuthConfig::dev(&key), &As::admin());
    let (url, hook) = endpoint().await;
    hook.hang.store(true, Ordering::SeqCst);
    let sub = json!({"resourceType": "Subscription", "status": "requested", "reason": "restart",
        "criteria": format!("{BASE}/SubscriptionTopic/agenda-changed"),
        "channel": {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json"}});
    let r = admin.post(format!("{}/Subscription", first.base)).header("content-type", "application/fhir+json");
    let r = r.body(sub.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    put(&admin, &first.base, "Location/loc-r", json!({"resourceType": "Location", "id": "loc-r", "name": "R"})).await;
    let schedule =
        json!({"resourceType": "Schedule", "id": "ag-r", "active": true, "actor": [{"reference": "Location/loc-r"}]});
    put(&admin, &first.base, "Schedule/ag-r", schedule).await;
    // Its notification is on its way to the hanging endpoint when the gateway dies.
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(first);
    hook.hang.store(false, Ordering::SeqCst);
    let second = Server::start_with(&db.url, &key, &flags).await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = hook.got.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), 1, "delivered once, by the gateway started after: {got:?}");
    let status = &got[0]["entry"][0]["resource"]["parameter"];
    let event = status.as_array().unwrap().iter().find(|p| p["name"] == "notification-event").unwrap();
    assert_eq!(event["part"][0]["valueString"], "1", "the first event, under its number: {event}");
    assert!(got[0]["entry"][1]["resource"]["id"] == "ag-r", "{got:?}");
    drop(second);
}

crate::on_both!(an_event_in_flight_when_the_gateway_dies_is_delivered_after_restart);
