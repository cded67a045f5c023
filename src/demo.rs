//! `serve --demo`: a small demo data set (`profiles/demo/demo-bundle.json`), loaded
//! into an empty store so that a first run has something to read.

use serde_json::Value;

use crate::auth::{default_scope, mint, Role, TokenRequest};
use crate::config::AuthConfig;
use crate::fhir::check::{At, Checker};
use crate::store::Store;

const DEMO: &str = include_str!("../profiles/demo/demo-bundle.json");

/// Loads the demo resources (each PUT with its own id) when the store is empty.
pub async fn load(store: &Store, checker: &Checker) -> anyhow::Result<()> {
    if store.has_any_resource().await? {
        tracing::info!("demo data not loaded: the store already holds resources");
        return Ok(());
    }
    let bundle: Value = serde_json::from_str(DEMO)?;
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        let (Some(t), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) else {
            continue;
        };
        checker
            .check(r, t, Some(id), At::Entry(i))
            .map_err(|e| anyhow::anyhow!("demo entry {i} is invalid: {:?}", e.issues()))?;
        store
            .update(&crate::access::Access::gateway(), t, id, r.clone(), None)
            .await
            .map_err(|e| anyhow::anyhow!("loading demo entry {i}: {e}"))?;
    }
    tracing::info!(resources = entries.len(), "demo data loaded");
    Ok(())
}

/// The demo's callers: one per role, each with an organisation of the demo data.
const DEMO_CALLERS: &[(Role, &str, Option<&str>, Option<&str>)] = &[
    (Role::Admin, "demo-admin", Some("asl3"), None),
    (Role::BookingPoint, "demo-counter", Some("asl3"), None),
    (Role::Provider, "demo-provider", Some("asl3"), None),
    (Role::PaymentPoint, "demo-payment-point", Some("asl3"), None),
    (Role::PatientApp, "demo-patient-app", None, Some("mario-rossi")),
];

/// Prints a ready token (valid for a day) for each role of the demo, signed with the
/// development key. Nothing to print when tokens come from an external issuer.
pub fn print_tokens(cfg: &AuthConfig) -> anyhow::Result<()> {
    if cfg.issuer.is_some() {
        return Ok(());
    }
    println!("demo tokens (valid 24 h; send as `Authorization: Bearer <token>`):");
    for (role, sub, org, patient) in DEMO_CALLERS {
        let req = TokenRequest {
            sub: (*sub).into(),
            role: *role,
            org: org.map(|o| format!("Organization/{o}")),
            channel: (*role == Role::BookingPoint).then(|| "counter".to_string()),
            patient: patient.map(str::to_string),
            scope: default_scope(*role).into(),
            ttl_secs: 24 * 3600,
            client_id: Some("cupola-demo".into()),
        };
        println!("  {:<14} {}", role.as_str(), mint(cfg, &req)?);
    }
    Ok(())
}
