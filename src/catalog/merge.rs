//! What a whole CSV catalog does to the stored one: the codes it no longer lists
//! (retired) or lists again (reactivated), the stored tariffs of its codes, and the
//! resources to write, the stored concepts and tariffs merged with the file's.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::Value;

use super::build::{self, first_of_each_code};
use super::import::read;
use super::report::Tariff;
use super::retired;
use super::{dashed, service_id, CatalogEntry};
use crate::access::Access;
use crate::fhir::names;
use crate::store::{Store, Tx};

/// What a whole catalog file does to the codes of the stored one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CodeChanges {
    /// Stored codes the file does not list (active until now or retired before).
    pub absent: BTreeSet<String>,
    /// Of those, the ones active until now.
    pub retired: Vec<String>,
    /// Retired codes the file lists again.
    pub reactivated: Vec<String>,
}

pub(super) fn code_changes(entries: &[CatalogEntry], stored_catalog: Option<&Value>) -> CodeChanges {
    let listed: HashSet<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    let mut out = CodeChanges::default();
    for c in stored_catalog.and_then(|cs| cs["concept"].as_array()).into_iter().flatten() {
        let Some(code) = c["code"].as_str() else { continue };
        match (listed.contains(code), retired::is_retired(c)) {
            (false, was_retired) => {
                out.absent.insert(code.to_string());
                if !was_retired {
                    out.retired.push(code.to_string());
                }
            }
            (true, true) => out.reactivated.push(code.to_string()),
            (true, false) => {}
        }
    }
    out.retired.sort();
    out.reactivated.sort();
    out
}

/// The ActivityDefinitions and current tariffs of the `absent` codes, retired from
/// `effective`; those already retired (or never stored) are left out.
pub(super) async fn retirements(
    store: &Store,
    tx: &mut Tx,
    absent: &BTreeSet<String>,
    stored_tariffs: &BTreeMap<String, BTreeMap<NaiveDate, Value>>,
    effective: NaiveDate,
) -> Result<Vec<Value>, crate::Error> {
    let mut out = Vec::new();
    for code in absent {
        if let Some(ad) = read(store, tx, "ActivityDefinition", &service_id(code)).await? {
            out.extend(retired::retired_activity(&ad));
        }
        let tariffs = stored_tariffs.get(code).into_iter().flat_map(BTreeMap::values);
        out.extend(tariffs.filter_map(|t| retired::retired_tariff(t, effective)));
    }
    Ok(out)
}

/// The resources to write: the branch CodeSystem, the catalog CodeSystem (the stored
/// concepts, retired, with the file's added or replacing theirs), its ValueSets, the file's
/// ActivityDefinitions and ChargeItemDefinitions (stored tariffs of the file's codes
/// kept, their periods set from all dates).
pub(super) fn merged(
    base: &str,
    entries: &[CatalogEntry],
    stored_catalog: Option<&Value>,
    stored_tariffs: &BTreeMap<String, BTreeMap<NaiveDate, Value>>,
) -> Vec<Value> {
    let concepts = merged_concepts(entries, stored_catalog);
    let sets = build::value_sets(base, &concepts);
    let mut out = vec![build::branch_code_system(base), build::catalog_code_system(base, concepts)];
    out.extend(sets);
    out.extend(first_of_each_code(entries).into_iter().map(|e| build::activity_definition(base, e)));
    out.extend(build::charge_item_definitions(base, entries, stored_tariffs).into_iter().map(|(_, v)| v));
    out
}

fn merged_concepts(entries: &[CatalogEntry], stored_catalog: Option<&Value>) -> Vec<Value> {
    let mut by_code: BTreeMap<String, Value> = BTreeMap::new();
    for c in stored_catalog.and_then(|cs| cs["concept"].as_array()).into_iter().flatten() {
        // Retired unless the file lists the code (which then replaces it, active).
        if let Some(code) = c["code"].as_str() {
            by_code.insert(code.to_string(), retired::retired_concept(c));
        }
    }
    for e in first_of_each_code(entries) {
        by_code.insert(e.code.clone(), build::concept(e));
    }
    by_code.into_values().collect()
}

/// The stored tariffs of `codes`: code → start → ChargeItemDefinition (without `meta`).
pub(super) async fn stored_tariffs(
    store: &Store,
    tx: &mut Tx,
    base: &str,
    codes: &BTreeSet<&str>,
) -> Result<BTreeMap<String, BTreeMap<NaiveDate, Value>>, crate::Error> {
    let by_dashed: HashMap<String, &str> = codes.iter().map(|c| (dashed(c), *c)).collect();
    let query = [("identifier".to_string(), format!("{}|", names::catalog_system(base)))];
    let ids = store.search_ids_in(tx, &Access::gateway(), "ChargeItemDefinition", &query, 100_000_000).await?;
    let mut out: BTreeMap<String, BTreeMap<NaiveDate, Value>> = BTreeMap::new();
    for id in ids {
        let Some(code) =
            id.strip_prefix("tariff-").and_then(|r| r.rsplit_once('-')).and_then(|(d, _)| by_dashed.get(d))
        else {
            continue;
        };
        let Some(body) = read(store, tx, "ChargeItemDefinition", &id).await? else { continue };
        let t = Tariff::of(&body);
        if let (true, Some(start)) = (t.code == *code, t.start) {
            out.entry(code.to_string()).or_default().insert(start, body);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse_csv;

    #[test]
    fn codes_the_file_no_longer_lists_are_retired_once_and_come_back_when_listed() {
        let header = "code,display,branch,kind,access,tariff,valid_from\n";
        let ecg = "89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01\n";
        let visit = "89.7A.3,Prima visita cardiologica,cardiology,visit,first,20.66,2024-01-01\n";
        let both = parse_csv(&format!("{header}{ecg}{visit}")).expect("parses");
        let only_visit = parse_csv(&format!("{header}{visit}")).expect("parses");
        let stored = build::build_resources("http://x", &both).swap_remove(1);
        assert_eq!(code_changes(&both, None), CodeChanges::default(), "a first import retires nothing");
        let changes = code_changes(&only_visit, Some(&stored));
        assert_eq!((changes.absent.len(), changes.retired.as_slice()), (1, ["89.52".to_string()].as_slice()));
        let concepts = merged_concepts(&only_visit, Some(&stored));
        assert!(retired::is_retired(&concepts[0]) && !retired::is_retired(&concepts[1]));
        let retired = build::catalog_code_system("http://x", concepts);
        let again = code_changes(&only_visit, Some(&retired));
        assert!(again.retired.is_empty() && again.absent.contains("89.52"), "already retired: {again:?}");
        let back = code_changes(&both, Some(&retired));
        assert_eq!((back.retired.len(), back.reactivated.as_slice()), (0, ["89.52".to_string()].as_slice()));
        assert!(merged_concepts(&both, Some(&retired)).iter().all(|c| !retired::is_retired(c)));
    }
}
