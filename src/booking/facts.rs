//! What the catalog says of each service code (its kind, first access or follow-up,
//! branch, display, retirement), read from the catalog CodeSystem once per version
//! of it and shared by `$find`, the waiting-time lists, prescriptions and tickets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::rules::{self, RequestFacts};
use crate::fhir::names;
use crate::store::{current, value_of, Store, Tx};
use crate::Result;

/// The id of the catalog CodeSystem (`cupola catalog import` writes it).
pub(crate) const CATALOG_ID: &str = "catalog";

/// What the catalog says of a code.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceFacts {
    pub kind: String,
    pub access: String,
    pub branch: String,
    pub display: String,
    /// Retired from the catalog: no longer prescribed or booked.
    pub retired: bool,
}

pub(crate) type Facts = Arc<HashMap<String, ServiceFacts>>;

/// The catalog facts last read, by the catalog CodeSystem's (pk, version): one per
/// store (see `Settings`), so that each process re-reads them when the catalog changes.
#[derive(Debug, Clone, Default)]
pub struct CatalogCache(Arc<Mutex<Option<Cached>>>);

/// The catalog CodeSystem's (pk, version) and the facts read from it.
type Cached = ((i64, i64), Facts);

/// The catalog's `kind` and `access` per code, read once per catalog version.
pub(crate) async fn catalog_facts(store: &Store, tx: &mut Tx) -> Result<Facts> {
    let cache = &store.settings().catalog_cache.0;
    let Some(version) = store.current_version(tx, "CodeSystem", CATALOG_ID).await? else {
        return Ok(Arc::default());
    };
    if let Some((v, f)) = cache.lock().ok().and_then(|c| c.clone()) {
        if v == version {
            return Ok(f);
        }
    }
    let cs = value_of(current(tx, store.dialect(), "CodeSystem", CATALOG_ID, false).await?)?;
    let mut map = HashMap::new();
    for c in cs["concept"].as_array().into_iter().flatten() {
        let prop = |name: &str| {
            c["property"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["code"] == name)
                .and_then(|p| p["valueCode"].as_str())
                .unwrap_or_default()
                .to_string()
        };
        if let Some(code) = c["code"].as_str() {
            map.insert(
                code.to_string(),
                ServiceFacts {
                    kind: prop(names::PROP_KIND),
                    access: prop(names::PROP_ACCESS),
                    branch: prop(names::PROP_BRANCH),
                    display: c["display"].as_str().unwrap_or_default().to_string(),
                    retired: prop("status") == "retired",
                },
            );
        }
    }
    let facts: Facts = Arc::new(map);
    if let Ok(mut c) = cache.lock() {
        *c = Some((version, facts.clone()));
    }
    Ok(facts)
}

/// First access or follow-up: the request's `access-type` extension, else the
/// catalog code's default.
pub(crate) fn access_type(
    request: &Value,
    base: &str,
    facts: &HashMap<String, ServiceFacts>,
    r: &RequestFacts,
) -> String {
    let written = rules::extension(request, &names::structure(base, "access-type"))
        .and_then(|e| e["valueCoding"]["code"].as_str().or(e["valueCode"].as_str()));
    match written {
        Some(w) => w.to_string(),
        None => {
            r.codes.iter().find_map(|(_, c)| facts.get(c).map(|f| f.access.clone())).unwrap_or_else(|| "first".into())
        }
    }
}

/// The code of a search token (`system|code` or `code`).
pub(super) fn code_part(token: &str) -> &str {
    token.rsplit('|').next().unwrap_or(token)
}
