//! Websocket subscriptions through the API, on both backends: a binding token from
//! `$get-ws-binding-token`, a real websocket client that binds with it, the
//! handshake, and appointments booked at the counter arriving on the socket — the
//! events written while no socket was bound included. Tokens that are wrong, used
//! or expired are refused, and another patient's app gets none.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::booking::{book_params, booked_of, counter, proposal, region, send, BASE};
use crate::helpers::{expression, As, Backend, TestApp};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn patient_app(id: &'static str) -> As {
    As { role: "patient-app", patient: Some(id), ..Default::default() }
}

/// A websocket Subscription to `patient`'s appointments, full resources.
fn on_websocket(patient: &str) -> Value {
    json!({"resourceType": "Subscription", "status": "requested", "reason": "test",
        "criteria": format!("{BASE}/SubscriptionTopic/appointment-changed"),
        "_criteria": {"extension": [{"url": format!("{BACKPORT}/backport-filter-criteria"),
            "valueString": format!("Appointment?patient=Patient/{patient}")}]},
        "channel": {"type": "websocket", "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": format!("{BACKPORT}/backport-payload-content"),
                "valueCode": "full-resource"}]}}})
}

async fn subscribe(app: &TestApp, who: &As, patient: &str) -> String {
    let (status, out) = send(app, who, Method::POST, "Subscription", &on_websocket(patient)).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["channel"]["type"], "websocket", "{out}");
    out["id"].as_str().unwrap().to_string()
}

/// `$get-ws-binding-token` on `id` as `who`: the status and the answer.
async fn token_for(app: &TestApp, who: &As, id: &str) -> (u16, Value) {
    let r = app.req_as(who, Method::GET, &format!("Subscription/{id}/$get-ws-binding-token")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn param<'a>(params: &'a Value, name: &str) -> &'a Value {
    params["parameter"].as_array().and_then(|ps| ps.iter().find(|p| p["name"] == name)).unwrap_or(&Value::Null)
}

/// A token's text and the websocket URL to present it at.
async fn token(app: &TestApp, who: &As, id: &str) -> (String, String) {
    let (status, out) = token_for(app, who, id).await;
    assert_eq!(status, 200, "{out}");
    let url = param(&out, "websocket-url")["valueUrl"].as_str().unwrap().to_string();
    (param(&out, "token")["valueString"].as_str().unwrap().to_string(), url)
}

/// Opens the websocket, sends `bind-with-token`, and returns it with the first answer.
async fn bind(url: &str, token: &str) -> (Socket, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("the websocket opens");
    ws.send(Message::text(format!("bind-with-token {token}"))).await.unwrap();
    let first = next(&mut ws).await.expect("an answer to bind-with-token");
    (ws, first)
}

/// The next text message as JSON; `None` once the socket closes.
async fn next(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s")? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The notification type and the (event number, focus id) of a notification.
fn events_of(bundle: &Value) -> (String, Vec<(String, String)>) {
    let status = &bundle["entry"][0]["resource"];
    let kind = param(status, "type")["valueCode"].as_str().unwrap_or_default().to_string();
    let events = status["parameter"].as_array().unwrap().iter().filter(|p| p["name"] == "notification-event");
    let part = |e: &Value, n: &str| e["part"].as_array().unwrap().iter().find(|x| x["name"] == n).cloned();
    let listed = events
        .map(|e| {
            let number = part(e, "event-number").unwrap()["valueString"].as_str().unwrap().to_string();
            let focus = part(e, "focus").unwrap()["valueReference"]["reference"].as_str().unwrap().to_string();
            (number, focus.rsplit('/').next().unwrap().to_string())
        })
        .collect();
    (kind, listed)
}

async fn book(app: &TestApp, slot: &str, patient: &str) -> String {
    let (status, out) =
        send(app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(slot, patient, None), None))
            .await;
    assert_eq!(status, 201, "{out}");
    booked_of(&out)["id"].as_str().unwrap().to_string()
}

async fn a_bound_socket_gets_the_events_written_before_and_after_binding(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = region(&app.base, &app.client, 2, 1).await;
    let p1 = patient_app("p1");
    let id = subscribe(&app, &p1, "p1").await;
    // Booked while no socket is bound: the event waits, and no failure is counted.
    let first = book(&app, &slots[1], "p1").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(app.get_json(&format!("Subscription/{id}"), 200).await["status"], "active");

    let (status, out) = token_for(&app, &p1, &id).await;
    assert_eq!(status, 200, "{out}");
    let url = param(&out, "websocket-url")["valueUrl"].as_str().unwrap();
    assert_eq!(url, app.base.replace("http://", "ws://") + "/$subscription-ws");
    assert!(param(&out, "expiration")["valueDateTime"].is_string(), "{out}");
    assert!(param(&out, "subscription")["valueString"].as_str().unwrap().ends_with(&format!("Subscription/{id}")));
    let (mut ws, handshake) = bind(url, param(&out, "token")["valueString"].as_str().unwrap()).await;
    assert_eq!(handshake["type"], "history", "{handshake}");
    assert_eq!(events_of(&handshake), ("handshake".to_string(), vec![]));

    let waited = next(&mut ws).await.expect("the event written before binding");
    assert_eq!(events_of(&waited), ("event-notification".to_string(), vec![("1".to_string(), first.clone())]));
    assert_eq!(waited["entry"][1]["resource"]["id"], first.as_str(), "full-resource carries the appointment");
    let second = book(&app, &slots[2], "p1").await;
    let got = next(&mut ws).await.expect("the event written while bound");
    assert_eq!(events_of(&got).1, [("2".to_string(), second)]);

    // A closed socket unbinds: the next event waits for another socket.
    ws.close(None).await.unwrap();
    assert!(next(&mut ws).await.is_none(), "the close is answered once the socket is unbound");
    crate::waitlist::cancel(&app, &first).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (token, url) = token(&app, &p1, &id).await;
    let (mut ws, handshake) = bind(&url, &token).await;
    assert_eq!(events_of(&handshake).0, "handshake");
    let got = next(&mut ws).await.expect("the event written after the socket closed");
    assert_eq!(events_of(&got).1, [("3".to_string(), first)]);
}

/// The socket's answer to `token`: an OperationOutcome, then the socket closes.
async fn refused(url: &str, token: &str) -> String {
    let (mut ws, answer) = bind(url, token).await;
    assert_eq!(answer["resourceType"], "OperationOutcome", "{answer}");
    assert!(next(&mut ws).await.is_none(), "the socket closes");
    answer["issue"][0]["diagnostics"].as_str().unwrap_or_default().to_string()
}

async fn wrong_used_and_expired_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.notify.subscription_ws_token_secs = 1).await;
    let p1 = patient_app("p1");
    let id = subscribe(&app, &p1, "p1").await;
    // Another patient's app gets no token for it; a rest-hook subscription has none.
    assert_eq!(token_for(&app, &patient_app("p2"), &id).await.0, 404);
    let mut hook = on_websocket("p1");
    hook["channel"]["type"] = json!("rest-hook");
    hook["channel"]["endpoint"] = json!("https://hooks.example.org/cupola");
    let (_, created) = send(&app, &p1, Method::POST, "Subscription", &hook).await;
    let (status, oo) = token_for(&app, &p1, created["id"].as_str().unwrap()).await;
    assert_eq!((status, expression(&oo).as_str()), (422, "Subscription.channel.type"), "{oo}");

    let (token, url) = token(&app, &p1, &id).await;
    assert!(refused(&url, "not-a-token").await.contains("unknown"));
    let (mut ws, handshake) = bind(&url, &token).await;
    assert_eq!(events_of(&handshake).0, "handshake");
    ws.close(None).await.unwrap();
    assert!(refused(&url, &token).await.contains("unknown or was used"), "a token binds once");

    let (token, url) = self::token(&app, &p1, &id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(refused(&url, &token).await.contains("expired"));
}

crate::on_both!(
    a_bound_socket_gets_the_events_written_before_and_after_binding,
    wrong_used_and_expired_tokens_are_refused,
);
