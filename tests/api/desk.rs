//! The integration desk's outbox operations: `$outbox` by provider, a page at a
//! time and one message whole; `$outbox-summary`; `$resend` with today's code maps,
//! under the same id or a new one, once however many ask at once; administrators
//! only, every call audited. The broker is the machine's RabbitMQ where messages
//! must flow (as in `messaging`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{counter, send};
use crate::helpers::{expression, As, Backend, TestApp};
use crate::messaging::{book, galliera, gateway, message, outbox, part, process, provider, BROKER};

/// The values of a Parameters named `name`.
pub fn params<'a>(p: &'a Value, name: &str) -> Vec<&'a Value> {
    p["parameter"].as_array().into_iter().flatten().filter(|x| x["name"] == name).collect()
}

/// A part's value as text, whatever its type.
pub fn text(m: &Value, name: &str) -> String {
    let p = part(m, name);
    ["valueString", "valueCode", "valueInstant", "valueUri"]
        .iter()
        .find_map(|k| p[*k].as_str())
        .map(str::to_string)
        .or_else(|| p["valueInteger"].as_i64().map(|n| n.to_string()))
        .unwrap_or_default()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.get(path).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `$resend` of `ids`; the answer.
pub async fn resend(app: &TestApp, ids: &[impl AsRef<str>]) -> Value {
    let parameter: Vec<Value> = ids.iter().map(|i| json!({"name": "message-id", "valueString": i.as_ref()})).collect();
    let r = app.post("$resend", &json!({"resourceType": "Parameters", "parameter": parameter})).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Adds `code` → `local` to provider `code`'s ConceptMap, through the API.
pub async fn map_code(app: &TestApp, provider: &str, code: &str, local: &str) {
    let path = format!("ConceptMap/provider-{provider}");
    let mut map = app.get_json(&path, 200).await;
    map.as_object_mut().unwrap().remove("meta");
    let element = json!({"code": code, "target": [{"code": local, "equivalence": "equivalent"}]});
    map["group"][0]["element"].as_array_mut().unwrap().push(element);
    let r = app.put(&path, &map).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// The id of the one message of `status` (waiting up to 20 s for it).
pub async fn only_message(app: &TestApp, status: &str) -> String {
    for _ in 0..200 {
        let rows = outbox(app, status).await;
        if rows.len() == 1 {
            return text(&rows[0], "message-id");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not one {status} message: {:?}", outbox(app, "").await)
}

async fn the_outbox_by_provider_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = galliera(&app, "89.52").await;
    let other = provider(&app, "org-other", "other", "89.52").await;
    for (i, slot) in slots.iter().take(3).enumerate() {
        book(&app, slot, &format!("p{i}")).await;
    }
    book(&app, &other[0], "q0").await;
    book(&app, &other[1], "q1").await;
    for given in ["galliera", "org-galliera", "Organization/org-galliera"] {
        let (status, p) = get(&app, &format!("$outbox?provider={given}")).await;
        assert_eq!(status, 200, "{p}");
        let listed = params(&p, "message");
        assert_eq!(listed.len(), 3, "provider={given}: {p}");
        assert!(listed.iter().all(|m| text(m, "provider") == "galliera" && text(m, "status") == "pending"));
        assert!(listed.iter().all(|m| text(m, "attempts") == "0"), "{p}");
    }
    // A provider without a code map: its messages held, each with the reason.
    let (_, held) = get(&app, "$outbox?provider=other&status=failed").await;
    let held = params(&held, "message");
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|m| text(m, "reason").contains("provider other has no code for catalog code(s) 89.52")));
    // Pages of two, newest first, the next one linked until the last.
    let (_, first) = get(&app, "$outbox?provider=galliera&_count=2").await;
    let next = params(&first, "next")[0]["valueUri"].as_str().unwrap().to_string();
    let second: Value = app.client.get(&next).send().await.unwrap().json().await.unwrap();
    assert!(params(&second, "next").is_empty(), "{second}");
    let ids: Vec<String> = params(&first, "message")
        .iter()
        .chain(params(&second, "message").iter())
        .map(|m| text(m, "message-id"))
        .collect();
    assert_eq!(ids.len(), 3);
    let positions: Vec<i64> = [&first, &second]
        .iter()
        .flat_map(|p| params(p, "message"))
        .map(|m| part(m, "position")["valueInteger"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "newest first: {positions:?}");
    // One message whole: its Bundle, as it will be published.
    let (status, one) = get(&app, &format!("$outbox?message-id={}", ids[0])).await;
    assert_eq!(status, 200, "{one}");
    let bundle = &part(params(&one, "message")[0], "content")["resource"];
    assert_eq!(bundle["type"], "message");
    assert_eq!(bundle["entry"][0]["resource"]["id"], ids[0].as_str());
    assert_eq!(bundle["entry"][1]["resource"]["serviceType"][0]["coding"][0]["code"], "GAL-8952");
    // Bad input: named.
    for (query, name) in [
        ("provider=Organization/nope", "provider"),
        ("status=lost", "status"),
        ("_count=0", "_count"),
        ("message-id=nope", "message-id"),
        (&format!("message-id={}&status=sent", ids[0]) as &str, "status"),
        ("before=soon", "before"),
    ] {
        let (status, oo) = get(&app, &format!("$outbox?{query}")).await;
        assert_eq!((status, expression(&oo)), (400, name.to_string()), "{query}: {oo}");
    }
    let plain = json!({"resourceType": "Organization", "id": "org-plain", "name": "plain"});
    assert_eq!(app.put("Organization/org-plain", &plain).await.status(), 201);
    let (status, oo) = get(&app, "$outbox?provider=org-plain").await;
    assert_eq!((status, expression(&oo)), (400, "provider".to_string()), "{oo}");
}

/// Figures per provider: waiting by status, the oldest pending, the last answer, the lag.
async fn the_summary_gives_each_providers_figures(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    let held = galliera(&app, "89.7").await;
    book(&app, &slots[0], "p0").await;
    book(&app, &slots[1], "p1").await;
    book(&app, &held[0], "p2").await;
    let got = broker.wait_for("galliera", 2, 20).await;
    assert_eq!(got.len(), 2);
    let (first, second) = (got[0].1.clone(), got[1].1.clone());
    for _ in 0..100 {
        if outbox(&app, "sent").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ack =
        message("ack-s1", "acknowledgement", "org-galliera", None, Some(json!({"identifier": first, "code": "ok"})));
    assert_eq!(process(&app, "org-galliera", &ack).await.0, 200);
    let (status, p) = get(&app, "$outbox-summary?provider=Organization/org-galliera").await;
    assert_eq!(status, 200, "{p}");
    let figures = params(&p, "provider");
    assert_eq!(figures.len(), 1, "one provider asked for: {p}");
    let g = figures[0];
    assert_eq!(text(g, "provider"), "galliera");
    assert_eq!((text(g, "pending"), text(g, "failed"), text(g, "parked")), ("0".into(), "1".into(), "0".into()));
    let last = part(g, "last-acknowledgement");
    assert_eq!((text(last, "message-id"), text(last, "outcome")), (first.clone(), "ok".to_string()));
    assert_eq!(text(g, "oldest-unanswered"), second, "sent after the one answered, and unanswered");
    assert_eq!(part(g, "lag")["valueDuration"]["code"], "s");
    assert!(part(g, "lag")["valueDuration"]["value"].as_i64().is_some_and(|s| s >= 0));
    // Every provider with a map is listed.
    let (_, all) = get(&app, "$outbox-summary").await;
    let providers: Vec<String> = params(&all, "provider").iter().map(|g| text(g, "provider")).collect();
    assert!(providers.contains(&"galliera".to_string()) && providers.contains(&"asl3".to_string()), "{providers:?}");
    let answered =
        message("ack-s2", "acknowledgement", "org-galliera", None, Some(json!({"identifier": second, "code": "ok"})));
    assert_eq!(process(&app, "org-galliera", &answered).await.0, 200);
    let (_, p) = get(&app, "$outbox-summary?provider=galliera").await;
    let g = params(&p, "provider")[0];
    assert_eq!(part(g, "lag")["valueDuration"]["value"], 0, "all answered: {g}");
    assert!(part(g, "oldest-unanswered").is_null());
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// An unmapped code holds the message; the map fixed through the API, a resend
/// publishes it in the corrected code, under the same id.
async fn a_resend_after_a_map_fix_sends_the_corrected_code_under_the_same_id(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.7").await;
    book(&app, &slots[0], "p0").await;
    let id = only_message(&app, "failed").await;
    map_code(&app, "galliera", "89.7", "GAL-897").await;
    let answer = resend(&app, &[&id]).await;
    let r = params(&answer, "resent")[0];
    assert_eq!((text(r, "outcome"), text(r, "resent-id")), ("queued".to_string(), id.clone()), "{answer}");
    assert_eq!(params(&answer, "queued")[0]["valueInteger"], 1);
    let got = broker.wait_for("galliera", 1, 20).await;
    assert_eq!(got.len(), 1, "{:?}", outbox(&app, "").await);
    assert_eq!(got[0].1, id, "the same message id");
    let codings = got[0].3["entry"][1]["resource"]["serviceType"][0]["coding"].clone();
    let codes: Vec<&str> = codings.as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["GAL-897", "89.7"], "the corrected code, once, and the catalog's");
    let sent = only_message(&app, "sent").await;
    assert_eq!(sent, id);
    let row = &outbox(&app, "sent").await[0];
    assert!(text(row, "reason").starts_with("resent by an administrator (it was failed: provider galliera has no code"));
    assert_eq!(text(row, "resends"), "1");
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// A message the provider answered (ok, or fatal-error: parked) goes again under
/// a new id, which the answer names; asked again at once, it is not resent.
async fn an_answered_message_is_resent_under_a_new_id(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p0").await;
    let id = broker.wait_for("galliera", 1, 20).await[0].1.clone();
    only_message(&app, "sent").await;
    let ack = message("ack-n1", "acknowledgement", "org-galliera", None, Some(json!({"identifier": id, "code": "ok"})));
    assert_eq!(process(&app, "org-galliera", &ack).await.0, 200);
    let answer = resend(&app, &[&id]).await;
    let r = params(&answer, "resent")[0];
    let new = text(r, "resent-id");
    assert_eq!(text(r, "outcome"), "queued-as-new", "{answer}");
    assert_ne!(new, id);
    assert!(text(r, "detail").contains(&new), "{answer}");
    let got = broker.wait_for("galliera", 1, 20).await;
    assert_eq!((got.len(), &got[0].1), (1, &new));
    assert_eq!(got[0].3["entry"][0]["resource"]["id"], new.as_str(), "the header carries the new id");
    let (_, old) = get(&app, &format!("$outbox?message-id={id}")).await;
    assert_eq!(text(params(&old, "message")[0], "resent-as"), new);
    let (_, fresh) = get(&app, &format!("$outbox?message-id={new}")).await;
    assert_eq!(text(params(&fresh, "message")[0], "resent-from"), id);
    let again = resend(&app, &[&id]).await;
    let r = params(&again, "resent")[0];
    assert!(["already-resent", "already-pending"].contains(&text(r, "outcome").as_str()), "{again}");
    assert_eq!(text(r, "resent-id"), new, "the resend it became");
    // Refused by the provider (fatal-error: parked): pending again, as a new message.
    book(&app, &slots[1], "p1").await;
    let refused = broker.wait_for("galliera", 1, 20).await[0].1.clone();
    let nack = json!({"identifier": refused, "code": "fatal-error", "details": {"display": "unknown ward"}});
    assert_eq!(
        process(&app, "org-galliera", &message("ack-n2", "acknowledgement", "org-galliera", None, Some(nack))).await.0,
        200
    );
    let parked = only_message(&app, "parked").await;
    let answer = resend(&app, &[&parked]).await;
    assert_eq!(text(params(&answer, "resent")[0], "outcome"), "queued-as-new");
    assert_eq!(broker.wait_for("galliera", 1, 20).await.len(), 1);
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// 16 clients resending one message at once queue it once; likewise one the
/// provider answered gets one new message.
async fn concurrent_resends_queue_a_message_once(backend: Backend) {
    let (app, broker) = gateway(backend, BROKER.into()).await;
    let held = galliera(&app, "89.7").await;
    book(&app, &held[0], "p0").await;
    let id = only_message(&app, "failed").await;
    map_code(&app, "galliera", "89.7", "GAL-897").await;
    let outcomes = |answers: Vec<Value>| -> Vec<String> {
        answers.iter().map(|a| text(params(a, "resent")[0], "outcome")).collect()
    };
    let all = futures::future::join_all((0..16).map(|_| async { resend(&app, &[&id]).await })).await;
    let got = outcomes(all);
    assert_eq!(got.iter().filter(|o| *o == "queued").count(), 1, "{got:?}");
    assert!(got.iter().all(|o| ["queued", "already-pending", "already-resent"].contains(&o.as_str())), "{got:?}");
    let mut received = broker.wait_for("galliera", 1, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    received.extend(broker.drain("galliera").await);
    assert_eq!(received.len(), 1, "published once: {received:?}");
    // Answered: sixteen resends at once make one new message.
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p1").await;
    let answered = broker.wait_for("galliera", 1, 20).await[0].1.clone();
    let ack = json!({"identifier": answered, "code": "ok"});
    assert_eq!(
        process(&app, "org-galliera", &message("ack-c1", "acknowledgement", "org-galliera", None, Some(ack))).await.0,
        200
    );
    let all = futures::future::join_all((0..16).map(|_| async { resend(&app, &[&answered]).await })).await;
    let got = outcomes(all);
    assert_eq!(got.iter().filter(|o| *o == "queued-as-new").count(), 1, "{got:?}");
    let rows = outbox(&app, "").await;
    assert_eq!(rows.len(), 3, "two messages and one resend: {rows:?}");
    let mut received = broker.wait_for("galliera", 1, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    received.extend(broker.drain("galliera").await);
    assert_eq!(received.len(), 1, "{received:?}");
    drop(app);
    broker.delete(&["galliera"]).await;
}

/// Administrators only (403 otherwise, an OperationOutcome); bad input named; each
/// call audited, naming the messages it touched.
async fn the_desk_is_for_administrators_and_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slots = galliera(&app, "89.7").await;
    book(&app, &slots[0], "p0").await;
    let id = only_message(&app, "failed").await;
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "message-id", "valueString": id}]});
    for who in [counter(), As::provider("org-galliera"), As::patient("p0")] {
        for (method, path) in [
            (Method::GET, "$outbox"),
            (Method::GET, "$outbox-summary"),
            (Method::POST, "$resend"),
            (Method::GET, "$dead-letter"),
            (Method::POST, "$dead-letter-replay"),
        ] {
            let (status, oo) = send(&app, &who, method.clone(), path, &body).await;
            assert_eq!((status, oo["resourceType"].as_str()), (403, Some("OperationOutcome")), "{path} as {who:?}");
        }
    }
    let refused = |p: Value| json!({"resourceType": "Parameters", "parameter": p});
    for (body, name) in [
        (refused(json!([])), "message-id"),
        (refused(json!([{"name": "message-id", "valueString": "nope"}])), "message-id"),
        (refused(json!([{"name": "status", "valueCode": "pending"}])), "status"),
        (
            refused(json!([{"name": "message-id", "valueString": id}, {"name": "status", "valueCode": "failed"}])),
            "status",
        ),
        (refused(json!([{"name": "status", "valueCode": "failed"}, {"name": "_count", "valueInteger": 0}])), "_count"),
    ] {
        let r = app.post("$resend", &body).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(expression(&r.json().await.unwrap()), name, "{body}");
    }
    let r = app.get("$dead-letter").await;
    assert_eq!(r.status(), 409, "no broker, no dead-letter queue");
    assert_eq!(app.get(&format!("$outbox?message-id={id}")).await.status(), 200);
    assert_eq!(app.get("$outbox-summary").await.status(), 200);
    let bulk = json!({"resourceType": "Parameters", "parameter": [{"name": "status", "valueCode": "failed"}]});
    let r = app.post("$resend", &bulk).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(text(params(&answer, "resent")[0], "outcome"), "held", "89.7 is still unmapped: {answer}");
    let requests = |found: &Value| -> Vec<String> {
        let events = found["entry"].as_array().into_iter().flatten();
        events
            .flat_map(|e| e["resource"]["entity"].as_array().cloned().unwrap_or_default())
            .filter_map(|en| en["detail"][0]["valueString"].as_str().map(str::to_string))
            .collect()
    };
    let wanted = [format!("GET /$outbox?message-id={id}"), "POST /$resend".into()];
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = requests(&app.get_json(&format!("AuditEvent?entity=MessageHeader/{id}&_count=100"), 200).await);
        if wanted.iter().all(|w| seen.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(wanted.iter().all(|w| seen.contains(w)), "{seen:?}");
    let summary = "GET /$outbox-summary".to_string();
    for _ in 0..50 {
        seen = requests(&app.get_json("AuditEvent?subtype=operation&_count=1000", 200).await);
        if seen.contains(&summary) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.contains(&summary), "a summary that names no message is audited too: {seen:?}");
}

crate::on_both!(
    the_outbox_by_provider_a_page_at_a_time,
    the_summary_gives_each_providers_figures,
    a_resend_after_a_map_fix_sends_the_corrected_code_under_the_same_id,
    an_answered_message_is_resent_under_a_new_id,
    concurrent_resends_queue_a_message_once,
    the_desk_is_for_administrators_and_audited,
);
