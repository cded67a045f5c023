//! `$find`'s proposals that lapse: one nobody touched leaves only its deletion, one
//! a patient declined keeps its versions (its AppointmentResponse points at it).

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{counter, region, send, window};
use crate::helpers::{Backend, TestApp};

/// Index rows and versions the store keeps for `Appointment/id`.
async fn kept_rows(app: &TestApp, id: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(app.db_url()).await.expect("database");
    let pk = "(SELECT pk FROM resources WHERE res_type = 'Appointment' AND res_id = $1)";
    let mut index = 0;
    for t in ["idx_string", "idx_token", "idx_date", "idx_reference", "idx_uri", "idx_number", "idx_quantity"] {
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {t} WHERE res_pk = {pk}");
        index += sqlx::query_scalar::<_, i64>(&sql).bind(id).fetch_one(&mut c).await.expect("index rows");
    }
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM resource_versions WHERE res_pk = {pk}");
    (index, sqlx::query_scalar::<_, i64>(&sql).bind(id).fetch_one(&mut c).await.expect("versions"))
}

/// The versions `_history` lists for `Appointment/id`, newest first, by method.
async fn history(app: &TestApp, id: &str) -> Vec<String> {
    let h = app.get_json(&format!("Appointment/{id}/_history"), 200).await;
    let entries = h["entry"].as_array().cloned().unwrap_or_default();
    entries.iter().map(|e| e["request"]["method"].as_str().unwrap_or_default().to_string()).collect()
}

async fn a_lapsed_proposal_leaves_only_its_deletion(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.booking.proposal_seconds = 1;
        c.booking.sweep_ms = 100;
    })
    .await;
    region(&app.base, &app.client, 2, 1).await;
    let find = format!("Appointment/$find?{}&service-type=89.52&_count=2", window());
    let found: Value = app.req_as(&counter(), Method::GET, &find).send().await.unwrap().json().await.unwrap();
    let ids: Vec<String> =
        (0..2).map(|i| found["entry"][i]["resource"]["id"].as_str().unwrap_or_default().to_string()).collect();
    let (untouched, declined) = (&ids[0], &ids[1]);
    assert!(kept_rows(&app, untouched).await.0 > 0, "a proposal is searchable while it lasts");
    let refusal = json!({"resourceType": "AppointmentResponse", "participantStatus": "declined",
        "appointment": {"reference": format!("Appointment/{declined}")}, "actor": {"reference": "Patient/p1"}});
    assert_eq!(send(&app, &counter(), Method::POST, "AppointmentResponse", &refusal).await.0, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;

    // Swept: both read as deleted; the untouched one kept nothing but its deletion.
    for id in &ids {
        app.get_json(&format!("Appointment/{id}"), 410).await;
    }
    assert_eq!(history(&app, untouched).await, ["DELETE"]);
    assert_eq!(kept_rows(&app, untouched).await, (0, 1), "no index row, the deletion's version only");
    assert_eq!(history(&app, declined).await, ["DELETE", "POST"]);
    let reference = json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",
        "valueReference": {"reference": format!("Appointment/{untouched}")}}]});
    let (status, oo) = send(&app, &counter(), Method::POST, "Appointment/$book", &reference).await;
    assert_eq!(status, 410, "{oo}");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap_or_default().contains("expired"), "{oo}");
}

crate::on_both!(a_lapsed_proposal_leaves_only_its_deletion);
