//! Stored bodies are compressed (zstd with the store's dictionary), and the plain
//! texts a gateway before migration 24 wrote are served as they were.

use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

async fn connect(app: &TestApp) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(app.db_url()).await.expect("database")
}

/// The stored bytes of `res_type/id`'s current version.
async fn stored_len(c: &mut sqlx::AnyConnection, res_type: &str, id: &str) -> i64 {
    let sql = "SELECT CAST(length(v.body) AS BIGINT) FROM resource_versions v JOIN resources r ON r.pk = v.res_pk \
               AND v.version = r.version WHERE r.res_type = $1 AND r.res_id = $2";
    sqlx::query_scalar(sql).bind(res_type).bind(id).fetch_one(&mut *c).await.expect("a stored version")
}

fn appointment() -> Value {
    json!({
        "resourceType": "Appointment", "status": "proposed",
        "serviceType": [{"coding": [{"system": "http://cupola.example/fhir/CodeSystem/nomenclatore", "code": "89.7", "display": "Visita generale"}]}],
        "description": "Prima visita cardiologica",
        "participant": [
            {"actor": {"reference": "Patient/p-1", "display": "Mario Rossi"}, "status": "accepted"},
            {"actor": {"reference": "Location/l-1", "display": "Ospedale Galliera"}, "status": "accepted"}
        ]
    })
}

/// A resource takes far fewer bytes at rest than it is served with, and reads,
/// searches and its history give it back whole.
async fn a_resource_is_stored_compressed_and_served_whole(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&appointment()).await;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let served = app.get_json(&format!("Appointment/{id}"), 200).await;
    assert_eq!(served, created);
    let mut c = connect(&app).await;
    let text = serde_json::to_string(&served).unwrap_or_default().len() as i64;
    let at_rest = stored_len(&mut c, "Appointment", &id).await;
    assert!(at_rest * 2 < text, "{at_rest} bytes stored for {text} served");
    let found = app.get_json("Appointment?service-type=89.7", 200).await;
    assert_eq!(found["entry"][0]["resource"], served);
    let history = app.get_json(&format!("Appointment/{id}/_history"), 200).await;
    assert_eq!(history["entry"][0]["resource"], served);
}

/// Puts `res_type/id`'s stored body back as the plain text a gateway before
/// migration 24 wrote (on PostgreSQL, in the TEXT column it had), the migration not
/// applied.
async fn as_before_migration_24(c: &mut sqlx::AnyConnection, b: Backend, id: &str, text: &str) {
    if b == Backend::Postgres {
        for table in ["resource_versions", "outbox_bodies"] {
            let sql = format!("ALTER TABLE {table} ALTER COLUMN body TYPE TEXT USING encode(body, 'escape')");
            sqlx::query(&sql).execute(&mut *c).await.expect("the old column type");
        }
    }
    let sql = "UPDATE resource_versions SET body = $1 WHERE res_pk = \
               (SELECT pk FROM resources WHERE res_type = 'Appointment' AND res_id = $2)";
    sqlx::query(sql).bind(text).bind(id).execute(&mut *c).await.expect("the old body");
    sqlx::query("DELETE FROM cupola_migrations WHERE version = 24").execute(&mut *c).await.expect("unapplied");
}

/// A body written as plain text before the bodies were compressed reads, searches
/// and updates as before, once the migration has run.
async fn bodies_written_before_migration_24_are_served_as_they_were(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&appointment()).await;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let mut old = created.clone();
    old["description"] = json!("Scritto in chiaro da un gateway precedente");
    let mut c = connect(&app).await;
    as_before_migration_24(&mut c, b, &id, &serde_json::to_string(&old).unwrap_or_default()).await;
    let registry = std::sync::Arc::new(cupola::store::Registry::r4());
    let store = cupola::store::Store::connect(app.db_url(), 2, std::time::Duration::from_secs(5), registry).await;
    drop(store.expect("migrations run"));
    assert_eq!(app.get_json(&format!("Appointment/{id}"), 200).await, old);
    let found = app.get_json("Appointment?service-type=89.7", 200).await;
    assert_eq!(found["entry"][0]["resource"]["description"], old["description"]);
    let mut next = old.clone();
    next["status"] = json!("cancelled");
    let r = app.put(&format!("Appointment/{id}"), &next).await;
    assert_eq!(r.status(), 200);
    let history = app.get_json(&format!("Appointment/{id}/_history"), 200).await;
    let versions: Vec<&Value> =
        history["entry"].as_array().map(|e| e.iter().map(|e| &e["resource"]).collect()).unwrap_or_default();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["description"], old["description"], "the old text, as it was");
    assert_eq!(versions[0]["status"], "cancelled");
}

crate::on_both!(
    a_resource_is_stored_compressed_and_served_whole,
    bodies_written_before_migration_24_are_served_as_they_were,
);
