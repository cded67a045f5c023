//! `GET /metrics`: what it counts (requests by interaction, type and status, `$book`
//! by channel, the outbox, the relay, inbound messages), who may read it (an
//! administrator on the API's address, anyone on `--metrics-listen`), that scrapes
//! leave no AuditEvent, and that `promtool check metrics` accepts the exposition.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{counter, send};
use crate::helpers::{As, Backend, TestApp};
use crate::messaging::{book, galliera, gateway, outbox, BROKER};

/// The samples of an exposition: (name, labels) → value.
pub(crate) type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

pub(crate) fn samples(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        // The label values of these metrics hold no comma nor quote.
        let labels = labels
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        out.insert((name.to_string(), labels), value.parse().unwrap_or_else(|_| panic!("a number: {line}")));
    }
    out
}

/// The value of `name{labels}` (exactly those labels), if the exposition has it.
fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    s.get(&(name.to_string(), labels)).copied()
}

/// The same, 0 when the series is not there yet.
pub(crate) fn count(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(s, name, labels).unwrap_or(0.0)
}

/// `/metrics` on the API's address, as an administrator.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let url = app.base.replace("/fhir", "/metrics");
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    r.text().await.unwrap()
}

/// `promtool check metrics` (Debian's `prometheus` package; `.ci/run` installs it)
/// accepts `text`: its parser and its lint rules (names, units, HELP, `_total`).
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs: install Debian's `prometheus` package (.ci/run does)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics refused the exposition: {said}\n{text}");
}

/// The AuditEvents stored so far.
async fn audit_events(app: &TestApp) -> i64 {
    app.get_json("AuditEvent?_summary=count", 200).await["total"].as_i64().unwrap()
}

/// Waits until `n` AuditEvents are stored (the writer batches them, 100 ms at most).
async fn audit_events_reach(app: &TestApp, n: i64) {
    let mut now = 0;
    for _ in 0..100 {
        now = audit_events(app).await;
        if now >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(now, n, "AuditEvents stored");
}

async fn requests_and_bookings_are_counted_by_their_labels(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p1").await;
    let found = app.req_as(&counter(), Method::GET, "Appointment/$find?service-type=89.52&_count=2").send().await;
    let status = found.unwrap().status();
    assert!(status.as_u16() < 500, "$find answers: {status}");
    let before = samples(&scrape(&app).await);
    for _ in 0..3 {
        assert_eq!(app.get("Patient/p1").await.status(), 200);
    }
    assert_eq!(app.get("Patient/nobody").await.status(), 404);
    let text = scrape(&app).await;
    promtool_accepts(&text);
    let after = samples(&text);
    let moved = |name: &str, labels: &[(&str, &str)]| count(&after, name, labels) - count(&before, name, labels);
    let read = |code| [("interaction", "read"), ("type", "Patient"), ("code", code)];
    assert_eq!(moved("cupola_http_requests_total", &read("200")), 3.0, "{text}");
    assert_eq!(moved("cupola_http_requests_total", &read("404")), 1.0, "{text}");
    let reads = [("interaction", "read"), ("type", "Patient")];
    assert_eq!(moved("cupola_http_request_duration_seconds_count", &reads), 4.0);
    // The booking: its request, its latency, its channel, its message waiting (no broker).
    let booking = [("interaction", "$book"), ("type", "Appointment")];
    assert_eq!(count(&after, "cupola_http_requests_total", &[booking[0], booking[1], ("code", "201")]), 1.0);
    assert_eq!(count(&after, "cupola_http_request_duration_seconds_count", &booking), 1.0);
    let find = [("interaction", "$find"), ("type", "Appointment")];
    assert_eq!(count(&after, "cupola_http_request_duration_seconds_count", &find), 1.0, "{text}");
    assert_eq!(value(&after, "cupola_bookings_total", &[("channel", "counter")]), Some(1.0));
    assert_eq!(value(&after, "cupola_bookings_total", &[("channel", "pharmacy")]), Some(0.0), "known channels at 0");
    let pending = count(&after, "cupola_outbox_messages", &[("status", "pending"), ("provider", "galliera")]);
    assert!(pending >= 1.0, "the booking's message waits: {text}");
    assert!(count(&after, "cupola_outbox_oldest_pending_age_seconds", &[]) >= 0.0);
    // The writes waited for their transactions; the pool and the audit queue are shown.
    assert!(count(&after, "cupola_db_write_wait_seconds_count", &[]) > 0.0, "{text}");
    assert_eq!(value(&after, "cupola_db_connections_max", &[]), Some(5.0));
    assert!(value(&after, "cupola_db_connections", &[("state", "idle")]).is_some());
    assert!(value(&after, "cupola_audit_queue_events", &[]).is_some());
    for name in ["cupola_http_requests_total", "cupola_db_write_wait_seconds", "cupola_bookings_total"] {
        assert!(text.contains(&format!("# HELP {name} ")), "HELP of {name}");
    }
}

async fn only_administrators_scrape_the_api_address_and_scrapes_are_not_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.base.replace("/fhir", "/metrics");
    let before = audit_events(&app).await;
    for _ in 0..3 {
        scrape(&app).await;
    }
    let r = app.anonymous().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(r.json::<Value>().await.unwrap()["resourceType"], "OperationOutcome");
    let r = app.client.get(&url).bearer_auth(app.token(&As::booking_point("bp-genova"))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["resourceType"], "OperationOutcome");
    // The two refusals are recorded, as every refused request is, and nothing else:
    // written in order, once they are in the scrapes before them would be too.
    audit_events_reach(&app, before + 2).await;
    let refused = app.get_json("AuditEvent?subtype=operation&outcome=4", 200).await;
    assert_eq!(refused["entry"].as_array().map(Vec::len), Some(2), "{refused}");
}

/// A free port of the loopback address, for `--metrics-listen`.
fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn the_metrics_address_needs_no_token(backend: Backend) {
    let addr = free_address();
    let listen = addr.clone();
    let app = TestApp::spawn_with(backend, move |c| c.metrics_listen = Some(listen)).await;
    let before = audit_events(&app).await;
    assert_eq!(app.get("Patient/p1").await.status(), 404);
    let plain = reqwest::Client::new();
    let r = plain.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    promtool_accepts(&text);
    let s = samples(&text);
    let read = [("interaction", "read"), ("type", "Patient"), ("code", "404")];
    assert_eq!(value(&s, "cupola_http_requests_total", &read), Some(1.0), "{text}");
    // That address serves nothing else; the API's own /metrics still wants a token.
    assert_eq!(plain.get(format!("http://{addr}/fhir/metadata")).send().await.unwrap().status(), 404);
    let main = app.base.replace("/fhir", "/metrics");
    assert_eq!(app.anonymous().get(main).send().await.unwrap().status(), 401);
    // The read of patient data and that refusal: no AuditEvent for the scrape.
    audit_events_reach(&app, before + 2).await;
}

/// A provider's message over HTTP (`$process-message`): an acknowledgement of `sent`.
fn acknowledgement(id: &str, sent: &str) -> Value {
    json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {
        "resourceType": "MessageHeader", "id": id,
        "eventCoding": {"system": format!("{}/CodeSystem/message-event", crate::booking::BASE), "code": "acknowledgement"},
        "sender": {"reference": "Organization/org-galliera"},
        "source": {"endpoint": "urn:provider:system"},
        "response": {"identifier": sent, "code": "ok"}}}]})
}

async fn the_relay_and_inbound_messages_are_counted(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p1").await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent = outbox(&app, "sent").await;
        if !sent.is_empty() && outbox(&app, "pending").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sent.is_empty(), "the relay sent the booking's messages");
    let s = samples(&scrape(&app).await);
    let n = sent.len() as f64;
    assert!(count(&s, "cupola_relay_publishes_total", &[("result", "ok")]) >= n);
    assert!(count(&s, "cupola_relay_confirms_total", &[("result", "ack")]) >= n);
    assert_eq!(value(&s, "cupola_relay_publishes_total", &[("result", "error")]), Some(0.0));
    let sent_id = crate::messaging::part(&sent[0], "message-id")["valueString"].as_str().unwrap().to_string();
    let provider = As::provider("org-galliera");
    let (status, out) =
        send(&app, &provider, Method::POST, "$process-message", &acknowledgement("ack-1", &sent_id)).await;
    assert_eq!(status, 200, "{out}");
    let malformed = json!({"resourceType": "Bundle", "type": "collection"});
    assert_eq!(send(&app, &provider, Method::POST, "$process-message", &malformed).await.0, 400);
    let text = scrape(&app).await;
    promtool_accepts(&text);
    let s = samples(&text);
    let inbound = |outcome| count(&s, "cupola_inbound_messages_total", &[("via", "http"), ("outcome", outcome)]);
    assert_eq!((inbound("processed"), inbound("refused"), inbound("failed")), (1.0, 1.0, 0.0), "{text}");
    assert_eq!(count(&s, "cupola_outbox_messages", &[("status", "pending"), ("provider", "galliera")]), 0.0);
    drop(app);
    broker.delete(&["galliera"]).await;
}

crate::on_both!(
    requests_and_bookings_are_counted_by_their_labels,
    only_administrators_scrape_the_api_address_and_scrapes_are_not_audited,
    the_metrics_address_needs_no_token,
    the_relay_and_inbound_messages_are_counted,
);
