//! Every official R4 example of the CUP's types (but AuditEvent, OperationOutcome and
//! CapabilityStatement) is accepted on PUT with its own id and reads back equal,
//! decimals exactly as sent.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};

fn examples() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("examples folder") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
        if ["AuditEvent-", "OperationOutcome-", "CapabilityStatement-"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        out.push((name, serde_json::from_str(&text).expect("example is JSON")));
    }
    // The booking workflow's resources last: their references must resolve, and the
    // examples they name (Patient/example, Slot/example …) are among the others.
    let workflow =
        |name: &str| ["Appointment-", "ChargeItem-", "Invoice-", "PaymentNotice-"].iter().any(|p| name.starts_with(p));
    out.sort_by(|a, b| (workflow(&a.0), &a.0).cmp(&(workflow(&b.0), &b.0)));
    out
}

/// The resource without what the server sets (`meta.versionId`, `meta.lastUpdated`).
fn without_server_meta(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            v.as_object_mut().map(|o| o.remove("meta"));
        }
    }
    v
}

async fn every_official_example_is_accepted_and_reads_back_equal(b: Backend) {
    let app = TestApp::spawn(b).await;
    let all = examples();
    assert!(all.len() > 190, "examples present");
    let mut failures = Vec::new();
    for (name, ex) in &all {
        let path = format!("{}/{}", ex["resourceType"].as_str().unwrap(), ex["id"].as_str().unwrap());
        let r = app.put(&path, ex).await;
        let status = r.status();
        if !status.is_success() {
            failures.push(format!("{name}: {status} {}", r.text().await.unwrap_or_default()));
            continue;
        }
        let back = app.get_json(&path, 200).await;
        if without_server_meta(back.clone()) != without_server_meta(ex.clone()) {
            failures.push(format!("{name}: read back differs"));
        }
    }
    assert!(failures.is_empty(), "{} of {} examples failed:\n{}", failures.len(), all.len(), failures.join("\n"));
}

async fn decimals_keep_their_written_precision(b: Backend) {
    let app = TestApp::spawn(b).await;
    let body: Value = serde_json::from_str(
        r#"{"resourceType":"ChargeItemDefinition","id":"tariff-1","url":"http://example.org/cid/1","status":"active",
            "propertyGroup":[{"priceComponent":[{"type":"base","amount":{"value":20.00,"currency":"EUR"}}]}]}"#,
    )
    .unwrap();
    assert_eq!(app.put("ChargeItemDefinition/tariff-1", &body).await.status(), 201);
    let text = app.get("ChargeItemDefinition/tariff-1").await.text().await.unwrap();
    assert!(text.contains("\"value\":20.00"), "{text}");
}

crate::on_both!(every_official_example_is_accepted_and_reads_back_equal, decimals_keep_their_written_precision);
