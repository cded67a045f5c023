//! Nothing lost to the broker's routing (the real RabbitMQ, as in `messaging`): a
//! message no queue takes comes back to the relay (published `mandatory`), which
//! declares the topology again and sends it, or keeps it `unroutable`, with the
//! broker's reason, and tries again after a backoff until a queue takes it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicGetOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::messaging::{book, galliera, gateway, outbox, part, BROKER};

async fn connect() -> Connection {
    Connection::connect(BROKER, ConnectionProperties::default()).await.expect("RabbitMQ on 127.0.0.1:5672")
}

/// The message ids reaching `queue`, taken as they come, through the queue's
/// deletions (a channel the broker closes because the queue is gone is replaced).
fn collect(queue: String, ids: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let conn = connect().await;
        while !stop.load(Ordering::SeqCst) {
            let Ok(ch) = conn.create_channel().await else { return };
            loop {
                match ch.basic_get(&queue, BasicGetOptions { no_ack: true }).await {
                    Ok(Some(m)) => {
                        let id = m.delivery.properties.message_id().as_ref().map(|s| s.to_string());
                        ids.lock().unwrap().push(id.unwrap_or_default());
                    }
                    Ok(None) if !stop.load(Ordering::SeqCst) => tokio::time::sleep(Duration::from_millis(2)).await,
                    _ => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = conn.close(0, "collected").await;
    })
}

/// Deletes `queue` as an operator would by mistake, at a moment it holds no
/// message (what it held would be the operator's loss, not the relay's).
async fn delete_when_empty(queue: &str) {
    let conn = connect().await;
    for _ in 0..4000 {
        let ch = conn.create_channel().await.unwrap();
        let empty = QueueDeleteOptions { if_empty: true, ..Default::default() };
        if ch.queue_delete(queue, empty).await.is_ok() {
            let _ = conn.close(0, "deleted").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{queue} was never empty");
}

/// Waits (up to `secs`) until the outbox rows of `status` number `n`; returns them.
async fn rows(app: &TestApp, status: &str, n: usize, secs: u64) -> Vec<Value> {
    let mut got = outbox(app, status).await;
    for _ in 0..secs * 10 {
        if got.len() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = outbox(app, status).await;
    }
    got
}

fn text<'a>(message: &'a Value, name: &str) -> &'a str {
    let p = part(message, name);
    p["valueString"].as_str().or(p["valueCode"].as_str()).or(p["valueInstant"].as_str()).unwrap_or_default()
}

/// Books `slots` with 16 clients at once.
async fn book_all(app: &TestApp, slots: &[String], phase: usize) {
    let jobs = slots.iter().enumerate().map(|(i, s)| async move { book(app, s, &format!("p{phase}-{i}")).await });
    futures::stream::iter(jobs).buffer_unordered(16).collect::<Vec<_>>().await;
}

/// 300 bookings by 16 clients at once, in three runs; between them galliera's queue
/// is deleted on the broker: every booking's message reaches the queue, none is lost.
/// The queue is deleted once nothing is in flight to it, because RabbitMQ drops what
/// is being routed to a queue as it is deleted, and confirms it: no publisher can
/// tell (see the README).
async fn a_queue_deleted_under_bookings_loses_no_message(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    let queue = format!("{}.provider.galliera", broker.exchange);
    let (ids, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
    let collector = collect(queue.clone(), ids.clone(), stop.clone());
    let n = 300;
    for (phase, run) in slots[..n].chunks(n / 3).enumerate() {
        if phase > 0 {
            let sent = rows(&app, "sent", phase * n / 3, 30).await;
            assert_eq!(sent.len(), phase * n / 3, "the run before is sent");
            delete_when_empty(&queue).await;
        }
        book_all(&app, run, phase).await;
    }
    let made: BTreeSet<String> = outbox(&app, "").await.iter().map(|m| text(m, "message-id").to_string()).collect();
    assert_eq!(made.len(), n, "one message per booking");
    let mut received = BTreeSet::new();
    for _ in 0..600 {
        received = ids.lock().unwrap().iter().cloned().collect();
        if received.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let _ = collector.await;
    let lost: Vec<&String> = made.difference(&received).collect();
    let lost_rows: Vec<Value> =
        outbox(&app, "").await.into_iter().filter(|m| lost.contains(&&text(m, "message-id").to_string())).collect();
    assert!(lost.is_empty(), "{} of the {n} bookings' messages never reached the queue: {lost_rows:?}", lost.len());
    assert!(received.is_subset(&made), "only the bookings' messages");
    let sent = rows(&app, "sent", n, 30).await;
    assert_eq!(sent.len(), n, "all sent; still waiting: {:?}", outbox(&app, "unroutable").await);
    let returned: Vec<&str> = sent.iter().map(|m| text(m, "reason")).filter(|r| !r.is_empty()).collect();
    assert!(!returned.is_empty(), "some were published while the queue was gone, and came back");
    assert!(
        returned.iter().all(|r| r.contains("NO_ROUTE") && r.contains("galliera.appointment.booked")),
        "{returned:?}"
    );
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// Galliera's queue re-created by hand with other arguments and no binding: declaring
/// the topology again cannot fix it (the broker refuses the declaration), so the
/// booking's message stays `unroutable` with the broker's reason and is tried again
/// and again; once the operator deletes the wrong queue, the relay's next attempt
/// declares it right and the message is sent.
async fn a_message_no_queue_takes_waits_unroutable_until_one_does(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p0").await;
    assert_eq!(broker.wait_for("galliera", 1, 20).await.len(), 1, "the relay is connected");
    let queue = format!("{}.provider.galliera", broker.exchange);
    let conn = connect().await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(&queue, durable, FieldTable::default()).await.unwrap();
    let booked = book(&app, &slots[1], "p1").await;
    let waiting = rows(&app, "unroutable", 1, 20).await;
    assert_eq!(waiting.len(), 1, "{:?}", outbox(&app, "").await);
    let m = &waiting[0];
    assert_eq!(
        part(m, "focus")["valueReference"]["reference"],
        format!("Appointment/{}", booked["id"].as_str().unwrap())
    );
    let reason = text(m, "reason");
    assert!(reason.contains("312 NO_ROUTE") && reason.contains("galliera.appointment.booked"), "{reason}");
    assert!(text(m, "next-attempt") > text(m, "created"), "{m}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = rows(&app, "unroutable", 1, 1).await;
    assert!(part(&later[0], "attempts")["valueInteger"].as_i64() >= Some(2), "tried again: {later:?}");
    assert!(text(&later[0], "next-attempt") > text(m, "next-attempt"), "{later:?}");
    assert!(broker.drain("galliera").await.is_empty(), "the hand-made queue has no binding");
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    let got = broker.wait_for("galliera", 1, 30).await;
    assert_eq!(got.len(), 1, "sent once the operator removed the wrong queue");
    assert_eq!(got[0].1, text(m, "message-id"));
    let sent = rows(&app, "sent", 2, 10).await;
    assert!(sent.iter().any(|s| text(s, "message-id") == got[0].1), "{sent:?}");
    assert!(outbox(&app, "unroutable").await.is_empty());
    let _ = conn.close(0, "done").await;
    drop(app);
    broker.delete(&["galliera"]).await;
}

crate::on_both!(
    a_queue_deleted_under_bookings_loses_no_message,
    a_message_no_queue_takes_waits_unroutable_until_one_does,
);
