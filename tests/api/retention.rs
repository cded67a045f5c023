//! Outbox bodies past their retention: a message its provider acknowledged `ok`
//! loses its Bundle once `--outbox-body-retention-hours` have passed (0 here: at the
//! next sweep); its row stays on the desk, `$resend` says it cannot rebuild it, and
//! a message not acknowledged `ok` keeps its body.

use std::time::Duration;

use serde_json::{json, Value};

use crate::desk::{params, resend, text};
use crate::helpers::{Backend, TestApp};
use crate::messaging::{book, exchange, galliera, message, process, Broker, BROKER};

/// `$outbox?message-id=` of `id`: the status and the answer.
async fn one(app: &TestApp, id: &str) -> (u16, Value) {
    let r = app.get(&format!("$outbox?message-id={id}")).await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The names of the parts of `id`'s one message.
fn parts(answer: &Value) -> Vec<String> {
    let m = params(answer, "message");
    let parts = m.first().and_then(|m| m["part"].as_array()).cloned().unwrap_or_default();
    parts.iter().filter_map(|p| p["name"].as_str().map(str::to_string)).collect()
}

async fn an_acknowledged_messages_body_goes_after_its_retention(backend: Backend) {
    let x = exchange();
    let broker = Broker::open(&x).await;
    let app = TestApp::spawn_with(backend, move |c| {
        c.amqp_url = Some(BROKER.into());
        c.amqp_exchange = Some(x);
        c.outbox_body_retention_hours = 0;
        c.outbox_retention_sweep_secs = 1;
    })
    .await;
    let slots = galliera(&app, "89.52").await;
    book(&app, &slots[0], "p0").await;
    book(&app, &slots[1], "p1").await;
    let got = broker.wait_for("galliera", 2, 20).await;
    let (acked, unanswered) = (got[0].1.clone(), got[1].1.clone());
    // Before its answer, the message is whole.
    assert!(parts(&one(&app, &acked).await.1).contains(&"content".to_string()));
    let ack =
        message("ack-r1", "acknowledgement", "org-galliera", None, Some(json!({"identifier": acked, "code": "ok"})));
    assert_eq!(process(&app, "org-galliera", &ack).await.0, 200);
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = parts(&one(&app, &acked).await.1);
        if seen.contains(&"content-removed".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.contains(&"content-removed".to_string()) && !seen.contains(&"content".to_string()), "{seen:?}");
    let (status, row) = one(&app, &acked).await;
    assert_eq!(status, 200);
    let m = params(&row, "message")[0];
    assert_eq!((text(m, "status"), text(m, "delivery")), ("sent".into(), "ok".into()), "{row}");
    // Resent with the other, it cannot be rebuilt: it says so and why; the one not
    // answered keeps its body and goes again.
    assert!(parts(&one(&app, &unanswered).await.1).contains(&"content".to_string()));
    let answer = resend(&app, &[&acked, &unanswered]).await;
    let (gone, again) = (params(&answer, "resent")[0], params(&answer, "resent")[1]);
    assert_eq!(text(gone, "outcome"), "body-removed", "{answer}");
    assert!(text(gone, "detail").contains("retention"), "{answer}");
    assert_eq!(text(again, "outcome"), "queued", "{answer}");
    assert_eq!(broker.wait_for("galliera", 1, 20).await[0].1, unanswered, "the unanswered one went again");
    drop(app);
    broker.delete(&["galliera"]).await;
}

crate::on_both!(an_acknowledged_messages_body_goes_after_its_retention);
