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
use crate::concurrency::Server;
use crate::helpers::{client_as, match_ids, session, Backend, TestApp};

pub const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub fn exchange() -> String {
    format!("cupola-test-{}", uuid::Uuid::new_v4().simple())
}

/// The test's exchange, queues and dead-letter objects, deleted when it ends.
pub struct Broker {
    pub conn: Connection,
    pub exchange: String,
}

impl Broker {
    pub async fn open(exchange: &str) -> Broker {
        let conn =
            Connection::connect(BROKER, ConnectionProperties::default()).await.expect("RabbitMQ on 127.0.0.1:5672");
        Broker { conn, exchange: exchange.to_string() }
    }

    /// Every message now in `provider`'s queue (routing key, message id, content type, body).
    pub async fn drain(&self, provider: &str) -> Vec<(String, String, String, Value)> {
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
    pub async fn wait_for(&self, provider: &str, n: usize, secs: u64) -> Vec<(String, String, String, Value)> {
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

    /// Deletes the test's queues (those of `providers` and of every provider in
    /// `mappings/providers`, which the gateway declares) and exchanges.
    pub async fn delete(self, providers: &[&str]) {
        let ch = self.conn.create_channel().await.unwrap();
        let mapped: Vec<String> = std::fs::read_dir("mappings/providers")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_string))
            .collect();
        for p in providers.iter().map(|p| p.to_string()).chain(mapped) {
            let _ = ch.queue_delete(&format!("{}.provider.{p}", self.exchange), QueueDeleteOptions::default()).await;
        }
        for q in ["dead-letter", "inbound"] {
            let _ = ch.queue_delete(&format!("{}.{q}", self.exchange), QueueDeleteOptions::default()).await;
        }
        for x in [self.exchange.clone(), format!("{}.dlx", self.exchange), format!("{}.inbound", self.exchange)] {
            let _ = ch.exchange_delete(&x, ExchangeDeleteOptions::default()).await;
        }
        let _ = self.conn.close(0, "test done").await;
    }
}

/// Galliera (provider code `galliera`, whose map has 89.52 but not 89.7) with an
/// agenda for `code`; returns its slots.
pub async fn galliera(app: &TestApp, code: &str) -> Vec<String> {
    provider(app, "org-galliera", "galliera", code).await
}

/// Provider Organization `org` (provider code `provider`) with an agenda for `code`,
/// 5-minute slots round the clock for four days from tomorrow; returns its slots.
pub async fn provider(app: &TestApp, org: &str, provider: &str, code: &str) -> Vec<String> {
    provider_at(&app.client, &app.base, org, provider, code).await
}

/// [`provider`] through `client` (an administrator's) at the FHIR base `base`.
async fn provider_at(client: &reqwest::Client, base: &str, org: &str, provider: &str, code: &str) -> Vec<String> {
    let put = |path: String, body: Value| async move {
        let r = client
            .put(format!("{base}/{path}"))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {path}: {}", r.text().await.unwrap_or_default());
    };
    put(
        format!("Organization/{org}"),
        json!({"resourceType": "Organization", "id": org, "name": provider,
            "identifier": [{"system": format!("{BASE}/sid/provider"), "value": provider}]}),
    )
    .await;
    put(
        format!("Location/loc-{org}"),
        json!({"resourceType": "Location", "id": format!("loc-{org}"), "name": provider,
            "managingOrganization": {"reference": format!("Organization/{org}")}}),
    )
    .await;
    let id = format!("{org}-{}", code.replace('.', "-"));
    put(
        format!("HealthcareService/{id}"),
        json!({"resourceType": "HealthcareService", "id": id, "providedBy": {"reference": format!("Organization/{org}")},
            "location": [{"reference": format!("Location/loc-{org}")}]}),
    )
    .await;
    let mut parts: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| session(d, "00:00:00", "23:55:00", 5))
        .collect();
    parts.push(json!({"url": "horizonDays", "valueInteger": 4}));
    put(
        format!("Schedule/{id}"),
        json!({"resourceType": "Schedule", "id": id, "active": true,
            "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
            "serviceType": [catalog(code)],
            "actor": [{"reference": format!("HealthcareService/{id}")}, {"reference": format!("Location/loc-{org}")}]}),
    )
    .await;
    let tomorrow = crate::helpers::today_rome() + chrono::Duration::days(1);
    let params =
        json!({"resourceType": "Parameters", "parameter": [{"name": "from", "valueDate": tomorrow.to_string()}]});
    let r = client
        .post(format!("{base}/Schedule/{id}/$generate-slots"))
        .header("content-type", "application/fhir+json")
        .body(params.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut slots = Vec::new();
    let mut url = Some(format!("{base}/Slot?schedule=Schedule/{id}&_sort=start&_count=1000"));
    while let Some(u) = url {
        let page: Value = client.get(u).send().await.unwrap().json().await.unwrap();
        slots.extend(match_ids(&page));
        url = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    slots
}

/// `$book` through `client` (a booking point's) at the FHIR base `base`.
async fn book_at(client: &reqwest::Client, base: &str, slot: &str, patient: &str) {
    ensure_patient(client, base, patient).await;
    let r = client
        .post(format!("{base}/Appointment/$book"))
        .header("content-type", "application/fhir+json")
        .body(book_params(proposal(slot, patient, None), None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// Patient `id` created unless it exists: a booking's patient must exist.
async fn ensure_patient(client: &reqwest::Client, base: &str, id: &str) {
    let url = format!("{base}/Patient/{id}");
    if client.get(&url).send().await.unwrap().status() != 404 {
        return;
    }
    let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]}).to_string();
    let r = client.put(&url).header("content-type", "application/fhir+json").body(body).send().await.unwrap();
    assert!(r.status().is_success(), "PUT Patient/{id}: {}", r.status());
}

pub async fn book(app: &TestApp, slot: &str, patient: &str) -> Value {
    ensure_patient(&app.client, &app.base, patient).await;
    let (status, out) =
        send(app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(slot, patient, None), None))
            .await;
    assert_eq!(status, 201, "{out}");
    out["entry"][0]["resource"].clone()
}

/// Patient `id`, so that the messages about its bookings carry it.
async fn patient(app: &TestApp, id: &str) {
    let r = app
        .put(&format!("Patient/{id}"), &json!({"resourceType": "Patient", "id": id, "name": [{"family": id}]}))
        .await;
    assert!(r.status().is_success(), "PUT Patient/{id}: {}", r.status());
}

pub async fn outbox(app: &TestApp, status: &str) -> Vec<Value> {
    let query = if status.is_empty() { String::new() } else { format!("status={status}&") };
    let p = app.get_json(&format!("$outbox?{query}_count=1000"), 200).await;
    // The messages; a full page ends with `next`.
    p["parameter"].as_array().into_iter().flatten().filter(|m| m["name"] == "message").cloned().collect()
}

/// A gateway on `backend` publishing through `url` to an exchange of its own.
pub async fn gateway(backend: Backend, url: String) -> (TestApp, Broker) {
    let x = exchange();
    let broker = Broker::open(&x).await;
    let app = TestApp::spawn_with(backend, move |c| {
        c.amqp_url = Some(url);
        c.amqp_exchange = Some(x);
    })
    .await;
    (app, broker)
}

pub fn part<'a>(message: &'a Value, name: &str) -> &'a Value {
    message["part"].as_array().and_then(|l| l.iter().find(|p| p["name"] == name)).unwrap_or(&Value::Null)
}

async fn a_booking_reaches_its_providers_queue_in_its_codes(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    patient(&app, "p1").await;
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
    let patient = bundle["entry"].as_array().unwrap().iter().find(|e| e["resource"]["resourceType"] == "Patient");
    assert_eq!(patient.map(|e| &e["resource"]["id"]), Some(&json!("p1")), "the patient the booking is for: {types:?}");
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
    // A closure of the agenda tells the provider which appointments to rebook.
    let kept = book(&app, &slots[3], "p2").await;
    let (start, end) = (kept["start"].as_str().unwrap(), kept["end"].as_str().unwrap());
    let close = json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDateTime": start}, {"name": "end", "valueDateTime": end},
        {"name": "reason", "valueString": "device broken"}]});
    let r = app.post("Schedule/org-galliera-89-52/$close", &close).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let got = broker.wait_for("galliera", 2, 10).await;
    let keys: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(keys, ["galliera.appointment.booked", "galliera.agenda.closure"]);
    assert_eq!(
        got[1].3["entry"][0]["resource"]["focus"][0]["reference"],
        format!("Appointment/{}", kept["id"].as_str().unwrap())
    );
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// A booking with a ticket sends two messages to the provider: the charge item
/// created, carrying the appointment as booked (its booking code too), and the
/// appointment booked, carrying its charge item.
async fn a_ticket_reaches_its_provider_with_the_booked_appointment(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    crate::billing::tariff(&app, "89.52", "2020-01-01", None, "11.62").await;
    patient(&app, "p1").await;
    let booked = book(&app, &slots[0], "p1").await;
    let id = booked["id"].as_str().unwrap();
    let got = broker.wait_for("galliera", 2, 20).await;
    let keys: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(keys, ["galliera.chargeitem.created", "galliera.appointment.booked"]);
    let resources = |bundle: &Value| -> Vec<Value> {
        bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect()
    };
    let charge = resources(&got[0].3);
    assert_eq!(charge[0]["resourceType"], "MessageHeader");
    assert_eq!(charge[1]["resourceType"], "ChargeItem");
    assert_eq!(charge[0]["focus"][0]["reference"], format!("ChargeItem/{}", charge[1]["id"].as_str().unwrap()));
    let appointment =
        charge.iter().find(|r| r["resourceType"] == "Appointment").unwrap_or_else(|| panic!("{charge:?}"));
    assert_eq!(appointment["id"], id);
    assert_eq!(appointment["status"], "booked");
    assert_eq!(appointment["identifier"], booked["identifier"], "the booking code as the booking shows it");
    let patient = charge.iter().find(|r| r["resourceType"] == "Patient").unwrap_or_else(|| panic!("{charge:?}"));
    assert_eq!(patient["id"], "p1");
    let booking = resources(&got[1].3);
    assert_eq!(booking[1]["id"], id);
    let item = booking.iter().find(|r| r["resourceType"] == "ChargeItem").unwrap_or_else(|| panic!("{booking:?}"));
    assert_eq!(item["id"], charge[1]["id"]);
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

/// 1,000 bookings made while the broker cannot be reached all arrive once it can.
async fn bookings_made_while_the_broker_is_away_all_arrive_once_it_is_back(backend: Backend) {
    let proxy = Proxy::start().await;
    let (app, broker) = gateway(backend, proxy.url()).await;
    let slots = galliera(&app, "89.52").await;
    let n = 1000;
    assert!(slots.len() > n);
    use futures::StreamExt;
    let jobs = slots.iter().take(n).enumerate().map(|(i, s)| {
        let app = &app;
        async move { book(app, s, &format!("p{i}")).await }
    });
    futures::stream::iter(jobs).buffer_unordered(16).collect::<Vec<_>>().await;
    assert_eq!(outbox(&app, "pending").await.len(), n, "they wait in the outbox");
    proxy.set(true);
    let got = broker.wait_for("galliera", n, 60).await;
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
    // Each row is marked sent once its confirm is in (just after delivery).
    let mut pending = outbox(&app, "pending").await;
    for _ in 0..300 {
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        pending = outbox(&app, "pending").await;
    }
    assert!(pending.is_empty(), "{} still pending", pending.len());
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// A provider's message: `event` about `focus` (included), from `sender`.
pub fn message(id: &str, event: &str, sender: &str, focus: Option<&Value>, response: Option<Value>) -> Value {
    let mut h = json!({"resourceType": "MessageHeader", "id": id,
        "eventCoding": {"system": format!("{BASE}/CodeSystem/message-event"), "code": event},
        "sender": {"reference": format!("Organization/{sender}")},
        "source": {"endpoint": "urn:provider:system"}});
    let mut entry = vec![];
    if let Some(f) = focus {
        h["focus"] = json!([{"reference": format!("Appointment/{}", f["id"].as_str().unwrap())}]);
    }
    if let Some(r) = response {
        h["response"] = r;
    }
    entry.push(json!({"resource": h}));
    if let Some(f) = focus {
        entry.push(json!({"resource": f}));
    }
    json!({"resourceType": "Bundle", "type": "message", "entry": entry})
}

pub async fn process(app: &TestApp, org: &'static str, m: &Value) -> (u16, Value) {
    send(app, &crate::helpers::As::provider(org), Method::POST, "$process-message", m).await
}

async fn providers_answer_over_http_once_per_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = galliera(&app, "89.52").await;
    let booked = book(&app, &slots[0], "p1").await;
    let id = booked["id"].as_str().unwrap().to_string();
    let pending = outbox(&app, "pending").await;
    assert_eq!(pending.len(), 1, "without a broker the message waits: {pending:?}");
    let sent_id = part(&pending[0], "message-id")["valueString"].as_str().unwrap().to_string();

    // A fatal error parks the message for an operator; an ok records the delivery.
    let nack = message(
        "ack-1",
        "acknowledgement",
        "org-galliera",
        None,
        Some(json!({"identifier": sent_id, "code": "fatal-error", "details": {"display": "unknown ward"}})),
    );
    let (status, out) = process(&app, "org-galliera", &nack).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["entry"][0]["resource"]["response"]["identifier"], "ack-1");
    let parked = outbox(&app, "parked").await;
    assert_eq!(parked.len(), 1);
    assert_eq!(part(&parked[0], "delivery")["valueCode"], "fatal-error");
    assert_eq!(part(&parked[0], "reason")["valueString"], "unknown ward");
    // A transient error puts it back among the messages to send, after a pause.
    let retry = message(
        "ack-t",
        "acknowledgement",
        "org-galliera",
        None,
        Some(json!({"identifier": sent_id, "code": "transient-error"})),
    );
    assert_eq!(process(&app, "org-galliera", &retry).await.0, 200);
    let again = outbox(&app, "pending").await;
    assert_eq!(again.len(), 1);
    assert_eq!(part(&again[0], "delivery")["valueCode"], "transient-error");
    let ack =
        message("ack-2", "acknowledgement", "org-galliera", None, Some(json!({"identifier": sent_id, "code": "ok"})));
    assert_eq!(process(&app, "org-galliera", &ack).await.0, 200);
    assert_eq!(part(&outbox(&app, "sent").await[0], "delivery")["valueCode"], "ok");

    // The patient arrives, then is seen: each message once, however often it comes.
    let mut arrived = booked.clone();
    arrived["status"] = json!("arrived");
    let m = message("st-1", "appointment-status-changed", "org-galliera", Some(&arrived), None);
    let (status, first) = process(&app, "org-galliera", &m).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = process(&app, "org-galliera", &m).await;
    assert_eq!(status, 200);
    assert_eq!(again, first, "the same message id answers the first response");
    let history = app.get_json(&format!("Appointment/{id}/_history"), 200).await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 2, "booked, arrived: one effect");
    assert_eq!(app.get_json(&format!("Appointment/{id}"), 200).await["status"], "arrived");

    // Posing as another provider, a malformed message, an unknown event: refused, nothing changed.
    let other = provider(&app, "org-other", "other", "89.52").await;
    assert!(!other.is_empty());
    let mut done = booked.clone();
    done["status"] = json!("fulfilled");
    let posing = message("st-2", "appointment-status-changed", "org-galliera", Some(&done), None);
    assert_eq!(process(&app, "org-other", &posing).await.0, 403);
    let not_theirs = message("st-3", "appointment-status-changed", "org-other", Some(&done), None);
    assert_eq!(process(&app, "org-other", &not_theirs).await.0, 404, "another provider's appointment");
    let (status, oo) = process(&app, "org-galliera", &json!({"resourceType": "Bundle", "type": "collection"})).await;
    assert_eq!((status, crate::helpers::expression(&oo)), (400, "Bundle.type".to_string()));
    let unknown = message("st-4", "lab-result", "org-galliera", Some(&done), None);
    assert_eq!(process(&app, "org-galliera", &unknown).await.0, 422);
    assert_eq!(app.get_json(&format!("Appointment/{id}"), 200).await["status"], "arrived");
    // Only providers send messages.
    let (status, _) = send(&app, &counter(), Method::POST, "$process-message", &m).await;
    assert_eq!(status, 403);
}

async fn the_inbound_queue_takes_a_providers_messages_and_dead_letters_the_rest(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    // The broker user of these tests is `guest`: here it is the provider `guest`.
    let slots = provider(&app, "org-guest", "guest", "89.52").await;
    let booked = book(&app, &slots[0], "p1").await;
    let id = booked["id"].as_str().unwrap().to_string();
    let ch = broker.conn.create_channel().await.unwrap();
    let publish = |body: Vec<u8>, user: Option<&str>| {
        let ch = ch.clone();
        let exchange = format!("{}.inbound", broker.exchange);
        let mut props = lapin::BasicProperties::default().with_content_type("application/fhir+json".into());
        if let Some(u) = user {
            props = props.with_user_id(u.into());
        }
        async move {
            // The gateway declares the inbound exchange when it connects.
            for _ in 0..100 {
                let sent = ch
                    .basic_publish(&exchange, "", lapin::options::BasicPublishOptions::default(), &body, props.clone())
                    .await;
                if sent.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the inbound exchange was never declared");
        }
    };
    let mut arrived = booked.clone();
    arrived["status"] = json!("arrived");
    publish(
        message("q-1", "appointment-status-changed", "org-guest", Some(&arrived), None).to_string().into_bytes(),
        Some("guest"),
    )
    .await;
    let mut status = String::new();
    for _ in 0..100 {
        status =
            app.get_json(&format!("Appointment/{id}"), 200).await["status"].as_str().unwrap_or_default().to_string();
        if status == "arrived" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "arrived");
    // Poison, no user, or posing as galliera: each to the dead-letter queue with its reason.
    publish(b"not json at all".to_vec(), Some("guest")).await;
    let mut fulfilled = booked.clone();
    fulfilled["status"] = json!("fulfilled");
    publish(
        message("q-2", "appointment-status-changed", "org-galliera", Some(&fulfilled), None).to_string().into_bytes(),
        Some("guest"),
    )
    .await;
    publish(
        message("q-3", "appointment-status-changed", "org-guest", Some(&fulfilled), None).to_string().into_bytes(),
        None,
    )
    .await;
    let dead_queue = format!("{}.dead-letter", broker.exchange);
    let mut dead = Vec::new();
    for _ in 0..100 {
        while let Ok(Some(m)) = ch.basic_get(&dead_queue, BasicGetOptions { no_ack: true }).await {
            let why = m.delivery.properties.headers().as_ref().and_then(|h| h.inner().get("x-cupola-outcome").cloned());
            dead.push(match why {
                Some(lapin::types::AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).to_string(),
                other => format!("{other:?}"),
            });
        }
        if dead.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(dead.iter().all(|d| d.contains("OperationOutcome")), "{dead:?}");
    assert!(dead.iter().any(|d| d.contains("org-galliera")), "the posing message says why: {dead:?}");
    assert_eq!(app.get_json(&format!("Appointment/{id}"), 200).await["status"], "arrived", "nothing changed");
    // The metrics count what came by the queue: the status change, and the three refused.
    let s = crate::metrics::samples(&crate::metrics::scrape(&app).await);
    let by_queue = |o| crate::metrics::count(&s, "cupola_inbound_messages_total", &[("via", "queue"), ("outcome", o)]);
    assert_eq!((by_queue("processed"), by_queue("refused"), by_queue("failed")), (1.0, 3.0, 0.0));
    drop(app);
    broker.delete(&["guest", "galliera"]).await;
}

/// A gateway process killed after its bookings committed but before it could
/// publish them (the broker cut off by a proxy): another started on the same
/// database sends them.
async fn a_gateway_killed_before_publishing_sends_after_restart(backend: Backend) {
    let db = crate::helpers::TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dev-key.json");
    let x = exchange();
    let broker = Broker::open(&x).await;
    let proxy = Proxy::start().await;
    let args = |url: String| vec!["--amqp-url".to_string(), url, "--amqp-exchange".to_string(), x.clone()];
    let first = Server::start_with(&db.url, &key, &args(proxy.url())).await;
    let auth = cupola::config::AuthConfig::dev(&key);
    let admin = client_as(&auth, &crate::helpers::As::admin());
    let slots = provider_at(&admin, &first.base, "org-galliera", "galliera", "89.52").await;
    let at_counter = client_as(&auth, &counter());
    for (i, slot) in slots.iter().take(5).enumerate() {
        book_at(&at_counter, &first.base, slot, &format!("p{i}")).await;
    }
    drop(first); // killed: SIGKILL, nothing flushed
    let second = Server::start_with(&db.url, &key, &args(BROKER.to_string())).await;
    let got = broker.wait_for("galliera", 5, 30).await;
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), 5, "{got:?}");
    drop(second);
    broker.delete(&["galliera"]).await;
}

/// The daily lists on demand, and the provider simulator answering everything its
/// queue holds (the provider is `guest`, the broker user of the tests, with a code
/// map of its own).
async fn daily_lists_and_the_provider_simulator(backend: Backend) {
    let mappings = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(mappings.path().join("providers")).unwrap();
    let map = json!({"resourceType": "ConceptMap", "id": "provider-guest", "url": "{canonical-base}/ConceptMap/provider-guest",
        "status": "active", "group": [{"source": "{canonical-base}/CodeSystem/catalog", "target": "urn:guest:codes",
            "element": [{"code": "89.52", "target": [{"code": "G-8952", "equivalence": "equivalent"}]}]}]});
    std::fs::write(mappings.path().join("providers/guest.json"), serde_json::to_string_pretty(&map).unwrap()).unwrap();
    let x = exchange();
    let broker = Broker::open(&x).await;
    let (ex, dir) = (x.clone(), mappings.path().to_path_buf());
    let app = TestApp::spawn_with(backend, move |c| {
        c.amqp_url = Some(BROKER.into());
        c.amqp_exchange = Some(ex);
        c.mappings_dir = dir;
    })
    .await;
    let slots = provider(&app, "org-guest", "guest", "89.52").await;
    let a = book(&app, &slots[0], "p1").await;
    let b = book(&app, &slots[1], "p2").await;
    let day = chrono::DateTime::parse_from_rfc3339(a["start"].as_str().unwrap()).unwrap();
    let day = day.with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let r = app.req(Method::POST, &format!("$dispatch-lists?date={day}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let lists: Value = r.json().await.unwrap();
    let list = &lists["parameter"][0]["part"];
    assert_eq!(list[0]["valueReference"]["reference"], "Organization/org-guest");
    assert_eq!(list[1]["valueInteger"], 2);
    let sim = cupola::messaging::cli::SimArgs {
        provider: "guest".into(),
        amqp_url: BROKER.into(),
        exchange: x.clone(),
        arrive: 1.0,
        fulfil: 1.0,
        count: Some(3),
    };
    tokio::time::timeout(Duration::from_secs(30), cupola::messaging::cli::provider_sim(sim, BASE))
        .await
        .expect("the simulator answers its three messages")
        .unwrap();
    for (appointment, _) in [(&a, ()), (&b, ())] {
        let id = appointment["id"].as_str().unwrap();
        let mut status = String::new();
        for _ in 0..100 {
            status = app.get_json(&format!("Appointment/{id}"), 200).await["status"].as_str().unwrap().to_string();
            if status == "fulfilled" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "fulfilled");
    }
    let mut acked = 0;
    for _ in 0..100 {
        let rows = outbox(&app, "sent").await;
        acked = rows.iter().filter(|m| part(m, "delivery")["valueCode"] == "ok").count();
        if acked >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(acked >= 3, "the two bookings and the list acknowledged");
    let events: Vec<String> = outbox(&app, "")
        .await
        .iter()
        .map(|m| part(m, "event")["valueCode"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(events.contains(&"agenda-daily-list".to_string()), "{events:?}");
    drop(app);
    broker.delete(&["guest"]).await;
}

/// Bookings sent at once are booked in shared transactions (`--book-lanes`), each one
/// still all or nothing: of two bookings racing for a slot one wins, a slot that does
/// not exist is refused, a reschedule of an appointment that does not exist is refused
/// after its new booking was written, and the refused ones leave no appointment, no
/// taken slot and no message.
async fn bookings_sent_together_are_each_all_or_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.booking.book_lanes = 2).await;
    let slots = galliera(&app, "89.52").await;
    let requests: Vec<(String, String)> = (0..12)
        .map(|n| (slots[n].clone(), format!("p-first-{n}")))
        .chain((0..6).map(|n| (slots[n].clone(), format!("p-second-{n}"))))
        .chain((0..6).map(|n| (format!("no-such-slot-{n}"), format!("p-none-{n}"))))
        .collect();
    let others = (12..16).map(|n| format!("p-move-{n}")).chain(["p-later".to_string()]);
    for patient in requests.iter().map(|(_, p)| p.clone()).chain(others) {
        ensure_patient(&app.client, &app.base, &patient).await;
    }
    // Four more move appointments that do not exist onto slots 12..16: refused only
    // once their new booking is written, which must then leave nothing behind.
    let moves = futures::future::join_all((12..16).map(|n| {
        let (app, who) = (&app, counter());
        let body = book_params(proposal(&slots[n], &format!("p-move-{n}"), None), Some("no-such-appointment"));
        async move { send(app, &who, Method::POST, "Appointment/$book", &body).await }
    }));
    let answers = futures::future::join_all(requests.iter().map(|(slot, patient)| {
        let (app, who, body) = (&app, counter(), book_params(proposal(slot, patient, None), None));
        async move { send(app, &who, Method::POST, "Appointment/$book", &body).await }
    }));
    let (moves, answers) = futures::future::join(moves, answers).await;
    for (status, out) in &moves {
        assert!((400..500).contains(status), "a move of nothing: {status} {out}");
        assert_eq!(out["resourceType"], "OperationOutcome");
    }
    let mut booked = std::collections::BTreeSet::new();
    for (n, ((slot, _), (status, out))) in requests.iter().zip(&answers).enumerate() {
        match (n, *status) {
            (0..=17, 201) => {
                let a = &out["entry"][0]["resource"];
                assert_eq!(a["slot"][0]["reference"], format!("Slot/{slot}"), "{out}");
                booked.insert(format!("Appointment/{}", a["id"].as_str().unwrap()));
            }
            (0..=5 | 12..=17, 409) => assert_eq!(out["resourceType"], "OperationOutcome"),
            (18.., 422) => assert_eq!(out["issue"][0]["expression"][0], "Appointment.slot", "{out}"),
            _ => panic!("request {n} ({slot}): {status} {out}"),
        }
    }
    assert_eq!(booked.len(), 12, "one booking per slot: {answers:?}");
    for n in 0..6 {
        let one_won = [answers[n].0, answers[n + 12].0];
        assert!(one_won.contains(&201) && one_won.contains(&409), "Slot/{}: {one_won:?}", slots[n]);
    }
    let all = app.get_json("Appointment?_summary=count", 200).await;
    assert_eq!(all["total"], 12, "nothing kept of the refused bookings");
    // The refused moves left their slots free.
    for slot in &slots[12..16] {
        let (status, out) = send(
            &app,
            &counter(),
            Method::POST,
            "Appointment/$book",
            &book_params(proposal(slot, "p-later", None), None),
        )
        .await;
        assert_eq!(status, 201, "Slot/{slot} after a refused move: {out}");
        booked.insert(format!("Appointment/{}", out["entry"][0]["resource"]["id"].as_str().unwrap()));
    }
    // Every message is about something that was kept, and each booking has its one.
    let messages = outbox(&app, "").await;
    let mut announced = std::collections::BTreeSet::new();
    for m in &messages {
        let focus = part(m, "focus")["valueReference"]["reference"].as_str().unwrap().to_string();
        app.get_json(&focus, 200).await;
        if part(m, "event")["valueCode"] == "appointment-booked" {
            assert!(announced.insert(focus.clone()), "{focus} announced twice");
        }
    }
    assert_eq!(announced, booked);
}

/// An agenda change from `sender`: the message's focus is `resources`, in order.
fn agenda_message(id: &str, sender: &str, resources: &[Value]) -> Value {
    let focus: Vec<Value> = resources
        .iter()
        .map(|r| json!({"reference": format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())}))
        .collect();
    let mut entry = vec![json!({"resource": {"resourceType": "MessageHeader", "id": id,
        "eventCoding": {"system": format!("{BASE}/CodeSystem/message-event"), "code": "agenda-changed"},
        "sender": {"reference": format!("Organization/{sender}")},
        "source": {"endpoint": "urn:provider:system"}, "focus": focus}})];
    entry.extend(resources.iter().map(|r| json!({"resource": r})));
    json!({"resourceType": "Bundle", "type": "message", "entry": entry})
}

async fn a_provider_changes_its_agenda_by_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = galliera(&app, "89.52").await;
    let booked = book(&app, &slots[0], "p1").await;
    // A new slot like the generated ones, a week later; a free slot removed.
    let mut added = app.get_json(&format!("Slot/{}", slots[1]), 200).await;
    added.as_object_mut().unwrap().remove("meta");
    added["id"] = json!("extra-1");
    let later = |t: &Value| {
        let t = chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap() + chrono::Duration::days(7);
        json!(t.to_rfc3339())
    };
    added["start"] = later(&added["start"]);
    added["end"] = later(&added["end"]);
    let mut removed = app.get_json(&format!("Slot/{}", slots[2]), 200).await;
    removed.as_object_mut().unwrap().remove("meta");
    removed["status"] = json!("entered-in-error");
    let m = agenda_message("ag-1", "org-galliera", &[added.clone(), removed.clone()]);
    let (status, first) = process(&app, "org-galliera", &m).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(app.get_json("Slot/extra-1", 200).await["status"], "free");
    app.get_json(&format!("Slot/{}", slots[2]), 410).await;
    let found = app.get_json("Slot?schedule=Schedule/org-galliera-89-52&_id=extra-1", 200).await;
    assert_eq!(match_ids(&found), vec!["extra-1".to_string()], "the new slot is found by its agenda");
    // The same message again: the first answer, no second version.
    let (status, again) = process(&app, "org-galliera", &m).await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(app.get_json("Slot/extra-1/_history", 200).await["entry"].as_array().unwrap().len(), 1);

    // Removing the booked slot is refused, naming its appointment, and the whole
    // message changes nothing (the slot it adds is not made).
    let mut other = added.clone();
    other["id"] = json!("extra-2");
    let mut held = app.get_json(&format!("Slot/{}", slots[0]), 200).await;
    held.as_object_mut().unwrap().remove("meta");
    held["status"] = json!("entered-in-error");
    let (status, oo) =
        process(&app, "org-galliera", &agenda_message("ag-2", "org-galliera", &[other.clone(), held])).await;
    assert_eq!(status, 409, "{oo}");
    let booked_id = booked["id"].as_str().unwrap();
    assert!(oo.to_string().contains(&format!("Appointment/{booked_id}")), "names the appointment: {oo}");
    app.get_json("Slot/extra-2", 404).await;
    app.get_json(&format!("Slot/{}", slots[0]), 200).await;

    // A slot that breaks R4 is refused naming the element; a focus not included, or
    // not an agenda resource, too; another provider cannot change Galliera's agenda.
    let mut bad = other.clone();
    bad["start"] = json!("2027-02-31T08:00:00+01:00");
    let (status, oo) = process(&app, "org-galliera", &agenda_message("ag-3", "org-galliera", &[bad])).await;
    assert_eq!((status, crate::helpers::expression(&oo)), (400, "Bundle.entry[1].resource.start".to_string()));
    let mut missing = agenda_message("ag-4", "org-galliera", &[other.clone()]);
    missing["entry"].as_array_mut().unwrap().truncate(1);
    let (status, oo) = process(&app, "org-galliera", &missing).await;
    assert_eq!((status, crate::helpers::expression(&oo)), (400, "MessageHeader.focus[0]".to_string()));
    let (status, oo) =
        process(&app, "org-galliera", &agenda_message("ag-5", "org-galliera", std::slice::from_ref(&booked))).await;
    assert_eq!((status, crate::helpers::expression(&oo)), (400, "MessageHeader.focus[0]".to_string()));
    provider(&app, "org-other", "other", "89.52").await;
    let mut taken = added.clone();
    taken["comment"] = json!("not theirs");
    let (status, oo) = process(&app, "org-other", &agenda_message("ag-6", "org-other", &[taken])).await;
    assert!(status == 403 || status == 404, "{status} {oo}");
    assert!(app.get_json("Slot/extra-1", 200).await.get("comment").is_none());
    app.get_json("Slot/extra-2", 404).await;
}

crate::on_both!(
    a_provider_changes_its_agenda_by_message,
    daily_lists_and_the_provider_simulator,
    a_gateway_killed_before_publishing_sends_after_restart,
    providers_answer_over_http_once_per_message,
    the_inbound_queue_takes_a_providers_messages_and_dead_letters_the_rest,
    a_booking_reaches_its_providers_queue_in_its_codes,
    a_ticket_reaches_its_provider_with_the_booked_appointment,
    an_unmapped_code_is_held_with_its_reason,
    bookings_made_while_the_broker_is_away_all_arrive_once_it_is_back,
    bookings_sent_together_are_each_all_or_nothing,
);

/// RabbitMQ's management API, through which `cupola provider add` creates users: a
/// fresh machine's broker has the plugin but not enabled, so the first test to need it
/// enables it (as `.ci/run` does) and waits for the API to answer.
async fn management_api() {
    static READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let up = || async { tokio::net::TcpStream::connect("127.0.0.1:15672").await.is_ok() };
            if up().await {
                return;
            }
            let enabled = tokio::process::Command::new("rabbitmq-plugins")
                .args(["enable", "--quiet", "rabbitmq_management"])
                .output()
                .await
                .expect("rabbitmq-plugins (RabbitMQ's own tool) enables the management API");
            assert!(enabled.status.success(), "rabbitmq-plugins enable rabbitmq_management: {enabled:?}");
            for _ in 0..120 {
                if up().await {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            panic!("RabbitMQ's management API does not answer on 127.0.0.1:15672 a minute after enabling it");
        })
        .await;
}

/// `cupola provider add`: the provider's broker user reads only its own queue and
/// writes only to the inbound exchange, under its own name (RabbitMQ checks
/// `user_id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_user_reads_only_its_queue_and_writes_only_inbound() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let x = exchange();
    let broker = Broker::open(&x).await;
    let code = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let args = cupola::messaging::cli::ProviderAddArgs {
        code: code.clone(),
        password: None,
        management_url: "http://guest:guest@127.0.0.1:15672".into(),
        amqp_url: BROKER.into(),
        exchange: x.clone(),
    };
    management_api().await;
    let url = cupola::messaging::cli::provider_add(args).await.expect("management API on 127.0.0.1:15672");
    assert!(url.starts_with(&format!("amqp://{code}:")), "{url}");
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.expect("the provider connects");
    let own = conn.create_channel().await.unwrap();
    assert!(own.basic_get(&format!("{x}.provider.{code}"), BasicGetOptions { no_ack: true }).await.is_ok());
    let other = conn.create_channel().await.unwrap();
    assert!(
        other.basic_get(&format!("{x}.dead-letter"), BasicGetOptions { no_ack: true }).await.is_err(),
        "another queue is refused"
    );
    let publish = |exchange: String, user: String| {
        let conn = &conn;
        async move {
            let ch = conn.create_channel().await.unwrap();
            ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
            let props = lapin::BasicProperties::default().with_user_id(user.into());
            match ch.basic_publish(&exchange, "", BasicPublishOptions::default(), b"{}", props).await {
                Ok(confirm) => confirm.await.is_ok_and(|c| c.is_ack()),
                Err(_) => false,
            }
        }
    };
    assert!(publish(format!("{x}.inbound"), code.clone()).await, "its own name to the inbound exchange");
    assert!(!publish(x.clone(), code.clone()).await, "the outbound exchange is refused");
    assert!(!publish(format!("{x}.inbound"), "galliera".into()).await, "another provider's name is refused");
    let _ = conn.close(0, "done").await;
    let r = reqwest::Client::new()
        .delete(format!("http://127.0.0.1:15672/api/users/{code}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    broker.delete(&[&code]).await;
}

/// Two gateway processes on one PostgreSQL, each with its relay, share the outbox:
/// every booking's message is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_the_outbox_without_sending_twice() {
    let db = crate::helpers::TestDb::new(Backend::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dev-key.json");
    let x = exchange();
    let broker = Broker::open(&x).await;
    let args = vec!["--amqp-url".to_string(), BROKER.to_string(), "--amqp-exchange".to_string(), x.clone()];
    let (a, b) = futures::join!(Server::start_with(&db.url, &key, &args), Server::start_with(&db.url, &key, &args));
    let auth = cupola::config::AuthConfig::dev(&key);
    let slots =
        provider_at(&client_as(&auth, &crate::helpers::As::admin()), &a.base, "org-galliera", "galliera", "89.52")
            .await;
    let at_counter = client_as(&auth, &counter());
    let n = 60;
    let jobs = slots.iter().take(n).enumerate().map(|(i, slot)| {
        let (client, base) = (&at_counter, if i % 2 == 0 { &a.base } else { &b.base });
        async move { book_at(client, base, slot, &format!("p{i}")).await }
    });
    futures::future::join_all(jobs).await;
    let got = broker.wait_for("galliera", n, 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = broker.drain("galliera").await;
    let ids: std::collections::BTreeSet<&str> = got.iter().chain(late.iter()).map(|m| m.1.as_str()).collect();
    assert_eq!(ids.len(), n, "every message");
    assert_eq!(got.len() + late.len(), n, "none twice");
    drop((a, b));
    broker.delete(&["galliera"]).await;
}
