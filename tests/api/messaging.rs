//! Messages to provider systems through the real RabbitMQ (127.0.0.1:5672,
//! guest/guest): each test has its own exchange and queues, deleted at its end;
//! the shared broker is never stopped — a test cuts the gateway off it with a TCP
//! proxy of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};
use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, catalog, counter, proposal, send, BASE};
use crate::helpers::{match_ids, session, Backend, TestApp};

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn exchange() -> String {
    format!("cupola-test-{}", uuid::Uuid::new_v4().simple())
}

/// The test's exchange, queues and dead-letter objects, deleted when it ends.
struct Broker {
    conn: Connection,
    exchange: String,
}

impl Broker {
    async fn open(exchange: &str) -> Broker {
        let conn =
            Connection::connect(BROKER, ConnectionProperties::default()).await.expect("RabbitMQ on 127.0.0.1:5672");
        Broker { conn, exchange: exchange.to_string() }
    }

    /// Every message now in `provider`'s queue (routing key, message id, content type, body).
    async fn drain(&self, provider: &str) -> Vec<(String, String, String, Value)> {
        let ch = self.conn.create_channel().await.unwrap();
        let queue = format!("{}.provider.{provider}", self.exchange);
        let mut out = Vec::new();
        while let Ok(Some(m)) = ch.basic_get(&queue, BasicGetOptions { no_ack: true }).await {
            let d = &m.delivery;
            out.push((
                d.routing_key.to_string(),
                d.properties.message_id().as_ref().map(|s| s.to_string()).unwrap_or_default(),
                d.properties.content_type().as_ref().map(|s| s.to_string()).unwrap_or_default(),
                serde_json::from_slice(&d.data).unwrap_or(Value::Null),
            ));
        }
        out
    }

    /// Waits (up to `secs`) until `provider`'s queue has had `n` messages; returns them.
    async fn wait_for(&self, provider: &str, n: usize, secs: u64) -> Vec<(String, String, String, Value)> {
        let mut got = Vec::new();
        for _ in 0..secs * 10 {
            got.extend(self.drain(provider).await);
            if got.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got
    }

    async fn delete(self, providers: &[&str]) {
        let ch = self.conn.create_channel().await.unwrap();
        for p in providers {
            let _ = ch.queue_delete(&format!("{}.provider.{p}", self.exchange), QueueDeleteOptions::default()).await;
        }
        let _ = ch.queue_delete(&format!("{}.dead-letter", self.exchange), QueueDeleteOptions::default()).await;
        for x in [self.exchange.clone(), format!("{}.dlx", self.exchange)] {
            let _ = ch.exchange_delete(&x, ExchangeDeleteOptions::default()).await;
        }
        let _ = self.conn.close(0, "test done").await;
    }
}

/// Galliera (provider code `galliera`, whose map has 89.52 but not 89.7) with an
/// agenda for `code`; returns its slots.
async fn galliera(app: &TestApp, code: &str) -> Vec<String> {
    let put = |path: String, body: Value| async move {
        let r = app.put(&path, &body).await;
        assert!(r.status().is_success(), "PUT {path}: {}", r.text().await.unwrap_or_default());
    };
    put(
        "Organization/org-galliera".into(),
        json!({"resourceType": "Organization", "id": "org-galliera", "name": "E.O. Ospedali Galliera",
            "identifier": [{"system": format!("{BASE}/sid/provider"), "value": "galliera"}]}),
    )
    .await;
    put(
        "Location/loc-galliera".into(),
        json!({"resourceType": "Location", "id": "loc-galliera", "name": "Galliera",
            "managingOrganization": {"reference": "Organization/org-galliera"}}),
    )
    .await;
    let id = format!("gal-{}", code.replace('.', "-"));
    put(
        format!("HealthcareService/{id}"),
        json!({"resourceType": "HealthcareService", "id": id, "providedBy": {"reference": "Organization/org-galliera"},
            "location": [{"reference": "Location/loc-galliera"}]}),
    )
    .await;
    let mut parts: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| session(d, "00:00:00", "23:55:00", 5))
        .collect();
    parts.push(json!({"url": "horizonDays", "valueInteger": 2}));
    put(
        format!("Schedule/{id}"),
        json!({"resourceType": "Schedule", "id": id, "active": true,
            "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
            "serviceType": [catalog(code)],
            "actor": [{"reference": format!("HealthcareService/{id}")}, {"reference": "Location/loc-galliera"}]}),
    )
    .await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let params =
        json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": tomorrow.to_string()}]});
    assert_eq!(app.post(&format!("Schedule/{id}/$generate-slots"), &params).await.status(), 200);
    match_ids(&app.get_json(&format!("Slot?schedule=Schedule/{id}&_sort=start&_count=1000"), 200).await)
}

async fn book(app: &TestApp, slot: &str, patient: &str) -> Value {
    let (status, out) =
        send(app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(slot, patient, None), None))
            .await;
    assert_eq!(status, 201, "{out}");
    out["entry"][0]["resource"].clone()
}

async fn outbox(app: &TestApp, status: &str) -> Vec<Value> {
    let query = if status.is_empty() { String::new() } else { format!("status={status}&") };
    let p = app.get_json(&format!("$outbox?{query}_count=1000"), 200).await;
    p["parameter"].as_array().cloned().unwrap_or_default()
}

/// A gateway on `backend` publishing through `url` to an exchange of its own.
async fn gateway(backend: Backend, url: String) -> (TestApp, Broker) {
    let x = exchange();
    let broker = Broker::open(&x).await;
    let app = TestApp::spawn_with(backend, move |c| {
        c.amqp_url = Some(url);
        c.amqp_exchange = Some(x);
    })
    .await;
    (app, broker)
}

fn part<'a>(message: &'a Value, name: &str) -> &'a Value {
    message["part"].as_array().and_then(|l| l.iter().find(|p| p["name"] == name)).unwrap_or(&Value::Null)
}

async fn a_booking_reaches_its_providers_queue_in_its_codes(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    let booked = book(&app, &slots[0], "p1").await;
    let id = booked["id"].as_str().unwrap();
    let got = broker.wait_for("galliera", 1, 20).await;
    assert_eq!(got.len(), 1, "{got:?}; outbox: {:?}", outbox(&app, "").await);
    let (key, message_id, content_type, bundle) = &got[0];
    assert_eq!(key, "galliera.appointment.booked");
    assert_eq!(content_type, "application/fhir+json");
    assert_eq!(bundle["type"], "message");
    let header = &bundle["entry"][0]["resource"];
    assert_eq!(header["resourceType"], "MessageHeader");
    assert_eq!(&header["id"], message_id, "the AMQP message id is the MessageHeader id");
    assert_eq!(header["eventCoding"]["code"], "appointment-booked");
    assert_eq!(header["focus"][0]["reference"], format!("Appointment/{id}"));
    assert_eq!(header["destination"][0]["receiver"]["reference"], "Organization/org-galliera");
    let appointment = &bundle["entry"][1]["resource"];
    assert_eq!(
        appointment["serviceType"][0]["coding"][0]["code"], "GAL-8952",
        "the provider's own code first: {appointment}"
    );
    let types: Vec<&str> =
        bundle["entry"].as_array().unwrap().iter().filter_map(|e| e["resource"]["resourceType"].as_str()).collect();
    assert!(types.contains(&"Slot") && types.contains(&"Location"), "{types:?}");
    // Sent, as the outbox shows once the broker's confirm is in (just after delivery).
    let mut sent = Vec::new();
    for _ in 0..50 {
        sent = outbox(&app, "sent").await;
        if sent.iter().any(|m| part(m, "message-id")["valueString"] == *message_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent.iter().any(|m| part(m, "message-id")["valueString"] == *message_id), "{sent:?}");
    // A cancellation follows the same way.
    let reason =
        json!({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "patient request"}]});
    let (status, _) = send(&app, &counter(), Method::POST, &format!("Appointment/{id}/$cancel"), &reason).await;
    assert_eq!(status, 200);
    let got = broker.wait_for("galliera", 1, 10).await;
    assert_eq!(got.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(), ["galliera.appointment.cancelled"]);
    drop(app);
    broker.delete(&["galliera"]).await;
}

async fn an_unmapped_code_is_held_with_its_reason(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.7").await;
    book(&app, &slots[0], "p1").await;
    let failed = outbox(&app, "failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let reason = part(&failed[0], "reason")["valueString"].as_str().unwrap_or_default();
    assert!(reason.contains("89.7") && reason.contains("galliera"), "{reason}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(broker.drain("galliera").await.is_empty(), "a wrong code is never sent");
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// A TCP proxy to the broker that can be switched off (every connection cut, new
/// ones refused) and on again.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else { return };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                                if !flag.load(Ordering::SeqCst) { return; }
                            }
                        }
                    }
                });
            }
        });
        Proxy { port, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

async fn bookings_made_while_the_broker_is_away_all_arrive_once_it_is_back(backend: Backend) {
    let proxy = Proxy::start().await;
    let (app, broker) = gateway(backend, proxy.url()).await;
    let slots = galliera(&app, "89.52").await;
    let n = 200;
    let jobs = slots.iter().take(n).enumerate().map(|(i, s)| {
        let app = &app;
        async move { book(app, s, &format!("p{i}")).await }
    });
    futures::future::join_all(jobs).await;
    assert_eq!(outbox(&app, "pending").await.len(), n, "they wait in the outbox");
    proxy.set(true);
    let got = broker.wait_for("galliera", n, 30).await;
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), n, "every booking's message arrived (duplicates share their id)");
    assert!(got.iter().all(|m| m.0 == "galliera.appointment.booked"));
    // Cut again mid-stream: what is booked meanwhile arrives after.
    proxy.set(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = book(&app, &slots[n], "late").await;
    proxy.set(true);
    let got = broker.wait_for("galliera", 1, 30).await;
    assert!(got.iter().any(|m| m.3["entry"][0]["resource"]["focus"][0]["reference"]
        == format!("Appointment/{}", more["id"].as_str().unwrap())));
    assert!(outbox(&app, "pending").await.is_empty());
    drop(app);
    broker.delete(&["galliera"]).await;
}

crate::on_both!(
    a_booking_reaches_its_providers_queue_in_its_codes,
    an_unmapped_code_is_held_with_its_reason,
    bookings_made_while_the_broker_is_away_all_arrive_once_it_is_back,
);
