//! `serve --demo`: a small demo data set (`profiles/demo/demo-bundle.json`), loaded
//! into an empty store so that a first run has something to read.

use serde_json::Value;

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
        store.update(t, id, r.clone(), None).await.map_err(|e| anyhow::anyhow!("loading demo entry {i}: {e}"))?;
    }
    tracing::info!(resources = entries.len(), "demo data loaded");
    Ok(())
}
