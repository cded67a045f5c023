//! `Appointment/{id}/$cancel` with `preview=true`: the refund rule's outcome before
//! the operator confirms, with nothing changed — and the same outcome as the real
//! cancellation that follows.

use reqwest::Method;
use serde_json::{json, Value};

use crate::billing::{agenda, amount, book, catalog_and_tariffs, owed, patient, pay, pharmacy};
use crate::booking::{counter, send, with};
use crate::helpers::{Backend, TestApp};

fn cancel_body(preview: bool) -> Value {
    let mut parameter = vec![json!({"name": "reason", "valueString": "patient request"})];
    if preview {
        parameter.push(json!({"name": "preview", "valueBoolean": true}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

/// What a preview must leave as it was: the Appointment, its Slot, the Invoice, the
/// outbox and the payments.
async fn state(app: &TestApp, appointment: &str, invoice: &str) -> Vec<Value> {
    let a = app.get_json(&format!("Appointment/{appointment}"), 200).await;
    let slot = a["slot"][0]["reference"].as_str().unwrap().to_string();
    let outbox = app.get_json("$outbox?_count=1000", 200).await;
    let notices = app.get_json(&format!("PaymentNotice?request=Invoice/{invoice}"), 200).await;
    vec![
        a.clone(),
        app.get_json(&slot, 200).await,
        app.get_json(&format!("Invoice/{invoice}"), 200).await,
        json!(outbox["parameter"].as_array().map_or(0, Vec::len)),
        json!(notices["total"]),
    ]
}

async fn preview(app: &TestApp, appointment: &str) -> Value {
    let path = format!("Appointment/{appointment}/$cancel");
    let (status, out) = send(app, &counter(), Method::POST, &path, &cancel_body(true)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["resourceType"], "Parameters", "{out}");
    out
}

fn part(p: &Value, name: &str) -> Value {
    with(&p["parameter"], "name", name)
}

async fn a_preview_tells_the_refund_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    catalog_and_tariffs(&app).await;
    let ecg = agenda(&app, "prov-y", "89.52", 5).await;
    patient(&app, "p1", None).await;

    // In time and paid: a refund of what was paid.
    let (a, inv) = book(&app, &counter(), &ecg[ecg.len() - 1], "p1", None).await;
    let (id, invoice) = (a["id"].as_str().unwrap().to_string(), inv["id"].as_str().unwrap().to_string());
    let (status, paid) = pay(&app, &pharmacy("farmacia-1"), &invoice, "R-1", "11.62").await;
    assert_eq!(status, 201, "{paid}");
    let before = state(&app, &id, &invoice).await;
    let p = preview(&app, &id).await;
    assert_eq!(part(&p, "outcome")["valueCode"], "refund", "{p}");
    assert_eq!(amount(&part(&p, "refund")["valueMoney"]), "11.62");
    assert_eq!(amount(&part(&p, "owed-before")["valueMoney"]), "11.62");
    assert_eq!(part(&p, "appointment")["resource"]["status"], "cancelled");
    assert!(part(&p, "detail")["valueString"].as_str().unwrap().contains("given back"));
    assert_eq!(state(&app, &id, &invoice).await, before, "a preview changes nothing");

    // The real cancellation does what the preview said.
    let path = format!("Appointment/{id}/$cancel");
    let (status, cancelled) = send(&app, &counter(), Method::POST, &path, &cancel_body(false)).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["resourceType"], "Appointment");
    assert_eq!(cancelled["status"], part(&p, "appointment")["resource"]["status"]);
    assert_eq!(cancelled["cancelationReason"], part(&p, "appointment")["resource"]["cancelationReason"]);
    let after = app.get_json(&format!("Invoice/{invoice}"), 200).await;
    let previewed = part(&p, "invoice")["resource"].clone();
    assert_eq!(after["status"], previewed["status"]);
    assert_eq!(amount(&after["totalNet"]), amount(&previewed["totalNet"]));
    let notices = app.get_json(&format!("PaymentNotice?request=Invoice/{invoice}"), 200).await;
    assert!(notices["entry"].as_array().unwrap().iter().any(|e| amount(&e["resource"]["amount"]) == "-11.62"));

    // Late (tomorrow's slot): the ticket stays owed, and the preview says so first.
    let (late, inv) = book(&app, &counter(), &ecg[0], "p1", None).await;
    let (late_id, late_inv) = (late["id"].as_str().unwrap().to_string(), inv["id"].as_str().unwrap().to_string());
    let before = state(&app, &late_id, &late_inv).await;
    let p = preview(&app, &late_id).await;
    assert_eq!(part(&p, "outcome")["valueCode"], "kept", "{p}");
    assert_eq!(amount(&part(&p, "refund")["valueMoney"]), "0.00");
    assert!(part(&p, "detail")["valueString"].as_str().unwrap().contains("48 hours"), "{p}");
    assert_eq!(state(&app, &late_id, &late_inv).await, before);
    let (status, _) =
        send(&app, &counter(), Method::POST, &format!("Appointment/{late_id}/$cancel"), &cancel_body(false)).await;
    assert_eq!(status, 200);
    assert_eq!(owed(&app, "p1").await, "11.62", "owed as the preview said");

    // Bad input is named; a cancelled appointment previews as itself.
    let bad = json!({"resourceType": "Parameters", "parameter": [{"name": "preview", "valueString": "maybe"}]});
    let (status, oo) = send(&app, &counter(), Method::POST, &path, &bad).await;
    assert_eq!(status, 400, "{oo}");
    let again = preview(&app, &id).await;
    assert_eq!(part(&again, "appointment")["resource"]["status"], "cancelled");
}

crate::on_both!(a_preview_tells_the_refund_and_changes_nothing);
