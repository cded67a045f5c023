//! What the catalog says of each service code (its kind, first access or follow-up,
//! branch, display, retirement), read from the catalog CodeSystem once per version
//! of it and shared by `$find`, the waiting-time lists, prescriptions and tickets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use super::views::Prescription;
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
    let map = read_catalog(&cs)?;
    let facts: Facts = Arc::new(map);
    if let Ok(mut c) = cache.lock() {
        *c = Some((version, facts.clone()));
    }
    Ok(facts)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RawCatalog {
    concept: Vec<RawConcept>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawConcept {
    code: Option<String>,
    display: Option<String>,
    property: Vec<RawProperty>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawProperty {
    code: String,
    value_code: Option<String>,
}

/// Each code of the catalog CodeSystem `cs` with what the catalog says of it.
fn read_catalog(cs: &Value) -> Result<HashMap<String, ServiceFacts>> {
    let raw = RawCatalog::deserialize(cs).map_err(anyhow::Error::from)?;
    let mut map = HashMap::with_capacity(raw.concept.len());
    for c in raw.concept {
        let prop = |name: &str| {
            c.property.iter().find(|p| p.code == name).and_then(|p| p.value_code.clone()).unwrap_or_default()
        };
        let facts = ServiceFacts {
            kind: prop(names::PROP_KIND),
            access: prop(names::PROP_ACCESS),
            branch: prop(names::PROP_BRANCH),
            display: c.display.clone().unwrap_or_default(),
            retired: prop("status") == "retired",
        };
        if let Some(code) = c.code {
            map.insert(code, facts);
        }
    }
    Ok(map)
}

/// First access or follow-up: the request's `access-type` extension, else the
/// catalog code's default.
pub(crate) fn access_type(facts: &HashMap<String, ServiceFacts>, r: &Prescription) -> String {
    match &r.access_type {
        Some(w) => w.clone(),
        None => {
            r.codes.iter().find_map(|(_, c)| facts.get(c).map(|f| f.access.clone())).unwrap_or_else(|| "first".into())
        }
    }
}

/// The code of a search token (`system|code` or `code`).
pub(super) fn code_part(token: &str) -> &str {
    token.rsplit('|').next().unwrap_or(token)
}
