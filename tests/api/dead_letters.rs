//! The dead-letter queue through the integration desk (the machine's RabbitMQ, as in
//! `messaging`): `$dead-letter` lists each message with why it is there and leaves
//! them all in the queue; `$dead-letter-replay` puts one back on its way — a
//! provider's rejected message to its queue, an inbound message processed again —
//! and only then does it leave the queue; one whose replay fails stays.

use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicPublishOptions, BasicRejectOptions};
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{counter, send, BASE};
use crate::desk::{params, text};
use crate::helpers::{Backend, TestApp};
use crate::messaging::{book, galliera, gateway, message, part, provider, Broker, BROKER};

/// `$dead-letter`: the queue's total and its messages.
async fn dead(app: &TestApp) -> (i64, Vec<Value>) {
    let p = app.get_json("$dead-letter", 200).await;
    let total = params(&p, "total")[0]["valueInteger"].as_i64().unwrap();
    (total, params(&p, "message").into_iter().cloned().collect())
}

/// Waits (up to 20 s) until the queue holds `n` messages.
async fn dead_count(app: &TestApp, n: i64) -> Vec<Value> {
    for _ in 0..200 {
        let (total, listed) = dead(app).await;
        if total == n {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dead-letter queue never held {n}: {:?}", dead(app).await)
}

async fn replay(app: &TestApp, parameter: Value) -> Vec<Value> {
    let r = app.post("$dead-letter-replay", &json!({"resourceType": "Parameters", "parameter": parameter})).await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    params(&p, "replayed").into_iter().cloned().collect()
}

/// Publishes `body` to the inbound exchange as the broker user `guest`.
async fn publish_inbound(broker: &Broker, body: Vec<u8>, message_id: Option<&str>) {
    let ch = broker.conn.create_channel().await.unwrap();
    let mut props = lapin::BasicProperties::default().with_user_id("guest".into());
    if let Some(id) = message_id {
        props = props.with_message_id(id.into());
    }
    let exchange = format!("{}.inbound", broker.exchange);
    let _confirm = ch.basic_publish(&exchange, "", BasicPublishOptions::default(), &body, props).await.unwrap();
}

/// Galliera's system takes its message and rejects it: RabbitMQ dead-letters it.
async fn reject_one(broker: &Broker) -> String {
    let queue = format!("{}.provider.galliera", broker.exchange);
    for _ in 0..200 {
        // Until the gateway's relay has declared its queues the broker answers
        // NOT_FOUND and closes the channel: a new one for each look.
        let ch = broker.conn.create_channel().await.unwrap();
        if let Ok(Some(m)) = ch.basic_get(&queue, BasicGetOptions { no_ack: false }).await {
            let id = m.delivery.properties.message_id().as_ref().map(|s| s.to_string()).unwrap();
            m.delivery.acker.reject(BasicRejectOptions { requeue: false }).await.unwrap();
            return id;
        }
        let _ = ch.close(200, "nothing yet").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("galliera's message never came")
}

fn find<'a>(listed: &'a [Value], id: &str) -> &'a Value {
    listed.iter().find(|m| text(m, "dead-letter-id") == id).unwrap_or_else(|| panic!("no {id} in {listed:?}"))
}

async fn dead_letters_are_read_without_loss_and_replayed(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    // The broker user of the tests is `guest`: here it is the provider `guest`.
    let slots = provider(&app, "org-guest", "guest", "89.52").await;
    let booked = book(&app, &slots[0], "p1").await;
    let appointment = booked["id"].as_str().unwrap().to_string();
    book(&app, &galliera(&app, "89.52").await[0], "p2").await;
    let rejected = reject_one(&broker).await;
    // The provider's Organization loses its code: its status change is refused.
    let org = json!({"resourceType": "Organization", "id": "org-guest", "name": "guest"});
    assert_eq!(app.put("Organization/org-guest", &org).await.status(), 200);
    let mut arrived = booked.clone();
    arrived["status"] = json!("arrived");
    let change = message("dl-status", "appointment-status-changed", "org-guest", Some(&arrived), None);
    publish_inbound(&broker, change.to_string().into_bytes(), Some("dl-status")).await;
    publish_inbound(&broker, b"not json at all".to_vec(), None).await;
    let listed = dead_count(&app, 3).await;
    let refused = find(&listed, "dl-status");
    assert_eq!((text(refused, "origin"), text(refused, "provider")), ("inbound".into(), "guest".into()));
    assert!(text(refused, "reason").contains("is not a provider with a code"), "{refused}");
    assert_eq!(part(refused, "outcome")["resource"]["resourceType"], "OperationOutcome");
    assert_eq!(part(refused, "content")["resource"]["type"], "message");
    let back = find(&listed, &rejected);
    assert_eq!(text(back, "origin"), "queue");
    assert_eq!(text(back, "routing-key"), "galliera.appointment.booked");
    assert!(text(back, "reason").starts_with("rejected by a consumer of queue"), "{back}");
    let poison = listed.iter().find(|m| text(m, "content-text") == "not json at all").expect("the poison");
    assert!(text(poison, "reason").contains("not JSON"), "{poison}");
    let poison_id = text(poison, "dead-letter-id");
    // Read again: nothing was taken away, nothing moved.
    let (total, again) = dead(&app).await;
    assert_eq!(total, 3);
    let ids = |l: &[Value]| l.iter().map(|m| text(m, "dead-letter-id")).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&listed));
    // The code back, the status change replayed: processed, and gone from the queue.
    let with_code = json!({"resourceType": "Organization", "id": "org-guest", "name": "guest",
        "identifier": [{"system": format!("{BASE}/sid/provider"), "value": "guest"}]});
    assert_eq!(app.put("Organization/org-guest", &with_code).await.status(), 200);
    let done = replay(&app, json!([{"name": "dead-letter-id", "valueString": "dl-status"}])).await;
    assert_eq!(text(&done[0], "outcome"), "replayed", "{done:?}");
    assert_eq!(app.get_json(&format!("Appointment/{appointment}"), 200).await["status"], "arrived");
    let left = dead_count(&app, 2).await;
    assert!(left.iter().all(|m| text(m, "dead-letter-id") != "dl-status"));
    // The rejected message back in galliera's queue, under its id.
    let done = replay(&app, json!([{"name": "dead-letter-id", "valueString": rejected}])).await;
    assert_eq!(text(&done[0], "outcome"), "replayed", "{done:?}");
    let got = broker.wait_for("galliera", 1, 20).await;
    assert_eq!(got.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(), [rejected.as_str()]);
    // All: the poison fails again and stays; an id not there is said so.
    let done = replay(&app, json!([{"name": "all", "valueBoolean": true}])).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!((text(&done[0], "dead-letter-id"), text(&done[0], "outcome")), (poison_id, "failed".into()));
    assert!(text(&done[0], "detail").contains("not JSON"), "{done:?}");
    dead_count(&app, 1).await;
    let done = replay(&app, json!([{"name": "dead-letter-id", "valueString": "nope"}])).await;
    assert_eq!(text(&done[0], "outcome"), "not-found");
    for path in ["$dead-letter", "$dead-letter-replay"] {
        let body = json!({"resourceType": "Parameters", "parameter": [{"name": "all", "valueBoolean": true}]});
        assert_eq!(send(&app, &counter(), Method::POST, path, &body).await.0, 403, "{path}");
    }
    dead_count(&app, 1).await;
    drop(app);
    broker.delete(&["guest", "galliera"]).await;
}

crate::on_both!(dead_letters_are_read_without_loss_and_replayed);
