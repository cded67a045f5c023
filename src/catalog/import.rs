//! `cupola catalog import FILE`: a CSV catalog or a FHIR Bundle into the store, all or
//! nothing, idempotent.
//!
//! Everything is read and checked first (every row, then every resource against the
//! R4 definitions); then one store transaction writes what differs from the stored
//! version (`meta` aside) and commits. The import adds and updates, never removes a
//! code: tariffs of a code that the file does not list stay (their period closed by
//! the file's newer tariff). A CSV file is the whole catalog: a stored code it does
//! not list is retired from the effective date (concept `status` = `retired`, out of
//! its ValueSet, ActivityDefinition and current tariff retired, the tariff ending the
//! day before), so that bookings made under it still resolve; listed again, it is
//! active again. A Bundle may hold part of the catalog: it retires nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value;

use super::build::{self, first_of_each_code};
use super::report::{Counts, ImportReport, Tariff, TariffEvent};
use super::{branches, dashed, parse_csv, service_id, value_set_id, CatalogEntry, Progress, RowError, PROGRESS_ROWS};
use crate::access::Access;
use crate::error::Issue;
use crate::fhir::check::{At, Checker};
use crate::fhir::names;
use crate::store::{current, Store, Tx};

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Rejected CSV rows (up to 20), each with its line.
    #[error("{}", lines(.0.iter()))]
    Rows(Vec<RowError>),
    /// A rejected Bundle: what is wrong, entry by entry (up to 20).
    #[error("{}", lines(.0.iter()))]
    Bundle(Vec<String>),
    /// A resource built from the rows fails the R4 checks.
    #[error("{what} is not a valid FHIR R4 resource: {}", issue_text(.issues))]
    Invalid { what: String, issues: Vec<Issue> },
    #[error("the store refused the import: {}", store_text(.0))]
    Store(#[from] crate::Error),
}

fn lines<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
}

fn issue_text(issues: &[Issue]) -> String {
    let text: Vec<String> = issues
        .iter()
        .map(|i| format!("{}: {}", i.expression.as_deref().unwrap_or("(resource)"), i.diagnostics))
        .collect();
    text.join("; ")
}

fn store_text(e: &crate::Error) -> String {
    match e {
        crate::Error::Internal(a) => format!("{a:#}"),
        crate::Error::Invalid(i) | crate::Error::Unprocessable(i) => issue_text(i),
        other => other.to_string(),
    }
}

/// At most this many Bundle problems are reported.
const MAX_ERRORS: usize = 20;
/// The resource types a catalog Bundle may hold.
const CATALOG_TYPES: [&str; 4] = ["CodeSystem", "ValueSet", "ActivityDefinition", "ChargeItemDefinition"];

/// Imports the catalog in `path` (CSV, or a FHIR Bundle when the file starts with
/// `{`) into `store`, naming everything under `base` (`--canonical-base`); codes a
/// CSV no longer lists are retired from today (Europe/Rome).
pub async fn import(store: &Store, base: &str, path: &Path) -> Result<ImportReport, ImportError> {
    import_as_of(store, base, path, today()).await
}

/// The day in Rome: the region's calendar, whatever the machine's zone.
fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive()
}

/// [`import`] with the day the file takes effect: a code a CSV no longer lists is
/// retired from `effective` (its open tariff ends the day before).
pub async fn import_as_of(
    store: &Store,
    base: &str,
    path: &Path,
    effective: NaiveDate,
) -> Result<ImportReport, ImportError> {
    let base = base.trim_end_matches('/');
    let bytes = tokio::fs::read(path).await.map_err(|source| ImportError::Read { path: path.into(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        ImportError::Rows(vec![RowError { line, reason: "the file is not UTF-8 text".into() }])
    })?;
    let mut report = ImportReport { source: path.display().to_string(), ..ImportReport::default() };
    if text.trim_start_matches('\u{feff}').trim_start().starts_with('{') {
        report.format = "Bundle";
        import_bundle(store, &text, &mut report).await?;
    } else {
        report.format = "CSV";
        import_csv(store, base, &text, effective, &mut report).await?;
    }
    tracing::info!(
        file = %report.source,
        created = report.total().created,
        updated = report.total().updated,
        unchanged = report.total().unchanged,
        retired = report.retired.len(),
        reactivated = report.reactivated.len(),
        "catalog imported"
    );
    Ok(report)
}

fn type_and_id(r: &Value) -> (&str, &str) {
    (r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""))
}

fn check(checker: &Checker, r: &Value, line: Option<usize>) -> Result<(), ImportError> {
    let (t, id) = type_and_id(r);
    checker.check(r, t, Some(id), At::Body).map_err(|e| {
        let what = match line {
            Some(l) => format!("{t}/{id} (from line {l})"),
            None => format!("{t}/{id}"),
        };
        let issues = match e {
            crate::Error::Invalid(i) | crate::Error::Unprocessable(i) => i,
            other => vec![Issue::error("invalid", None, other.to_string())],
        };
        ImportError::Invalid { what, issues }
    })
}

async fn import_csv(
    store: &Store,
    base: &str,
    text: &str,
    effective: NaiveDate,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let entries = parse_csv(text).map_err(ImportError::Rows)?;
    report.rows = entries.len();
    if entries.is_empty() {
        return Err(ImportError::Rows(vec![RowError { line: 2, reason: "the file has a header but no rows".into() }]));
    }
    // The line of each resource built from rows, for error messages.
    let mut line_of: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        line_of.entry(super::service_id(&e.code)).or_insert(e.line);
        line_of.insert(super::tariff_id(&e.code, e.valid_from), e.line);
    }
    // Checked before the transaction: a file that cannot make valid resources is refused up front.
    let checker = Checker::shared();
    let mut checked: HashMap<(String, String), Value> = HashMap::new();
    for r in build::build_resources(base, &entries) {
        let (t, id) = type_and_id(&r);
        check(&checker, &r, line_of.get(id).copied())?;
        checked.insert((t.to_string(), id.to_string()), r);
    }

    let mut tx = store.begin().await?;
    let stored_catalog = read(store, &mut tx, "CodeSystem", "catalog").await?;
    let changes = code_changes(&entries, stored_catalog.as_ref());
    let mut codes: BTreeSet<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    codes.extend(changes.absent.iter().map(String::as_str));
    let stored_tariffs = stored_tariffs(store, &mut tx, base, &codes).await?;
    let mut resources = merged(base, &entries, stored_catalog.as_ref(), &stored_tariffs);
    resources.extend(retirements(store, &mut tx, &changes.absent, &stored_tariffs, effective).await?);
    for r in &resources {
        let (t, id) = type_and_id(r);
        if checked.get(&(t.to_string(), id.to_string())) != Some(r) {
            check(&checker, r, line_of.get(id).copied())?;
        }
    }

    let present: HashSet<String> = resources
        .iter()
        .filter(|r| r["resourceType"] == "ValueSet")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    let mut progress = Progress::new("catalog resources written", resources.len(), entries.len() > PROGRESS_ROWS);
    for (i, r) in resources.into_iter().enumerate() {
        let had_tariffs = r["resourceType"] == "ChargeItemDefinition"
            && r["code"]["coding"][0]["code"].as_str().is_some_and(|c| stored_tariffs.contains_key(c));
        upsert(store, &mut tx, r, report, had_tariffs).await?;
        progress.tick(i + 1);
    }
    // A branch left without codes loses its ValueSet (history kept).
    for b in branches() {
        let id = value_set_id(&b.code);
        if !present.contains(&id) && read(store, &mut tx, "ValueSet", &id).await?.is_some() {
            store.delete_in(&mut tx, &Access::gateway(), "ValueSet", &id).await?;
            report.count("ValueSet", Counts { deleted: 1, ..Counts::default() });
        }
    }
    tx.commit().await?;
    report.retired = changes.retired;
    report.reactivated = changes.reactivated;
    Ok(())
}

/// What a whole catalog file does to the codes of the stored one.
#[derive(Debug, Default, PartialEq, Eq)]
struct CodeChanges {
    /// Stored codes the file does not list (active until now or retired before).
    absent: BTreeSet<String>,
    /// Of those, the ones active until now.
    retired: Vec<String>,
    /// Retired codes the file lists again.
    reactivated: Vec<String>,
}

fn code_changes(entries: &[CatalogEntry], stored_catalog: Option<&Value>) -> CodeChanges {
    let listed: HashSet<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    let mut out = CodeChanges::default();
    for c in stored_catalog.and_then(|cs| cs["concept"].as_array()).into_iter().flatten() {
        let Some(code) = c["code"].as_str() else { continue };
        match (listed.contains(code), build::is_retired(c)) {
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
async fn retirements(
    store: &Store,
    tx: &mut Tx,
    absent: &BTreeSet<String>,
    stored_tariffs: &BTreeMap<String, BTreeMap<NaiveDate, Value>>,
    effective: NaiveDate,
) -> Result<Vec<Value>, crate::Error> {
    let mut out = Vec::new();
    for code in absent {
        if let Some(ad) = read(store, tx, "ActivityDefinition", &service_id(code)).await? {
            out.extend(build::retired_activity(&ad));
        }
        let tariffs = stored_tariffs.get(code).into_iter().flat_map(BTreeMap::values);
        out.extend(tariffs.filter_map(|t| build::retired_tariff(t, effective)));
    }
    Ok(out)
}

/// The resources to write: the branch CodeSystem, the catalog CodeSystem (the stored
/// concepts, retired, with the file's added or replacing theirs), its ValueSets, the file's
/// ActivityDefinitions and ChargeItemDefinitions (stored tariffs of the file's codes
/// kept, their periods set from all dates).
fn merged(
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
            by_code.insert(code.to_string(), build::retired_concept(c));
        }
    }
    for e in first_of_each_code(entries) {
        by_code.insert(e.code.clone(), build::concept(e));
    }
    by_code.into_values().collect()
}

/// The current version of a resource without its `meta`; `None` when absent or deleted.
async fn read(store: &Store, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<Value>, crate::Error> {
    let Some(body) =
        current(tx, store.dialect(), res_type, id, false).await?.filter(|s| !s.deleted).and_then(|s| s.body)
    else {
        return Ok(None);
    };
    let mut v: Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
    if let Some(fields) = v.as_object_mut() {
        fields.remove("meta");
    }
    Ok(Some(v))
}

/// The stored tariffs of `codes`: code → start → ChargeItemDefinition (without `meta`).
async fn stored_tariffs(
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

/// Writes `resource` unless the stored version is the same (`meta` aside).
async fn upsert(
    store: &Store,
    tx: &mut Tx,
    resource: Value,
    report: &mut ImportReport,
    had_tariffs: bool,
) -> Result<(), crate::Error> {
    let (t, id) = type_and_id(&resource);
    let (t, id) = (t.to_string(), id.to_string());
    let before = read(store, tx, &t, &id).await?;
    let mut bare = resource.clone();
    if let Some(fields) = bare.as_object_mut() {
        fields.remove("meta");
    }
    let counts = match &before {
        Some(b) if *b == bare => Counts { unchanged: 1, ..Counts::default() },
        Some(_) => Counts { updated: 1, ..Counts::default() },
        None => Counts { created: 1, ..Counts::default() },
    };
    if counts.unchanged == 0 {
        if t == "ChargeItemDefinition" {
            report.tariff(before.as_ref(), &bare, had_tariffs);
        }
        store.update_in(tx, &Access::gateway(), &t, &id, resource, None).await?;
    }
    report.count(&t, counts);
    Ok(())
}

/// A Bundle (collection or transaction) of catalog resources, each upserted as it is.
async fn import_bundle(store: &Store, text: &str, report: &mut ImportReport) -> Result<(), ImportError> {
    let bundle: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
        ImportError::Bundle(vec![format!("not valid JSON at line {}, column {}: {e}", e.line(), e.column())])
    })?;
    let resources = bundle_resources(&bundle).map_err(ImportError::Bundle)?;
    report.rows = resources.len();
    let mut tx = store.begin().await?;
    let mut progress = Progress::new("catalog resources written", resources.len(), resources.len() > PROGRESS_ROWS);
    for (i, r) in resources.into_iter().enumerate() {
        upsert(store, &mut tx, r, report, true).await?;
        progress.tick(i + 1);
    }
    tx.commit().await?;
    // Without a look at the stored tariffs, a created tariff is reported as a new
    // period when the import also changed the period of another tariff of its code.
    let changed: HashSet<String> = report
        .tariffs
        .iter()
        .filter(|t| matches!(t.event, TariffEvent::PeriodChanged { .. }))
        .map(|t| t.code.clone())
        .collect();
    report.tariffs.retain(|t| t.event != TariffEvent::NewPeriod || changed.contains(&t.code));
    Ok(())
}

/// The Bundle's resources, each checked (type, id, R4); or every problem found (up to 20).
fn bundle_resources(bundle: &Value) -> Result<Vec<Value>, Vec<String>> {
    if bundle["resourceType"] != "Bundle" {
        return Err(vec!["a JSON catalog must be a FHIR Bundle (resourceType \"Bundle\")".into()]);
    }
    if !matches!(bundle["type"].as_str(), Some("collection" | "transaction")) {
        return Err(vec![format!(
            "Bundle.type is {}: a catalog Bundle is a collection or a transaction",
            bundle["type"]
        )]);
    }
    let checker = Checker::shared();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let r = &entry["resource"];
        let (t, id) = type_and_id(r);
        let at = format!("Bundle.entry[{i}].resource");
        if !CATALOG_TYPES.contains(&t) {
            errors.push(format!("{at}: resourceType {:?} is not a catalog type ({})", t, CATALOG_TYPES.join(", ")));
            continue;
        }
        if id.is_empty() {
            errors.push(format!("{at}: the {t} has no id; catalog resources are imported under their own id"));
            continue;
        }
        if let Some(first) = seen.insert(format!("{t}/{id}"), i) {
            errors.push(format!("{at}: {t}/{id} is already Bundle.entry[{first}]"));
            continue;
        }
        match checker.check(r, t, Some(id), At::Entry(i)) {
            Ok(()) => out.push(r.clone()),
            Err(crate::Error::Invalid(is) | crate::Error::Unprocessable(is)) => errors.extend(
                is.iter()
                    .filter(|i| i.severity == "error")
                    .map(|i| format!("{}: {}", i.expression.as_deref().unwrap_or(&at), i.diagnostics)),
            ),
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push("the Bundle has no entries".into());
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(MAX_ERRORS);
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bundle(resources: Vec<Value>) -> Value {
        json!({"resourceType": "Bundle", "type": "collection",
            "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    }

    #[test]
    fn a_bundle_of_built_resources_is_accepted() {
        let entries = parse_csv(
            "code,display,branch,kind,access,tariff,valid_from\n89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01\n",
        )
        .expect("parses");
        let built = build::build_resources("http://x", &entries);
        let got = bundle_resources(&bundle(built.clone())).expect("accepted");
        assert_eq!(got, built);
    }

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
        assert!(build::is_retired(&concepts[0]) && !build::is_retired(&concepts[1]));
        let retired = build::catalog_code_system("http://x", concepts);
        let again = code_changes(&only_visit, Some(&retired));
        assert!(again.retired.is_empty() && again.absent.contains("89.52"), "already retired: {again:?}");
        let back = code_changes(&both, Some(&retired));
        assert_eq!((back.retired.len(), back.reactivated.as_slice()), (0, ["89.52".to_string()].as_slice()));
        assert!(merged_concepts(&both, Some(&retired)).iter().all(|c| !build::is_retired(c)));
    }

    #[test]
    fn a_bad_bundle_names_each_entry() {
        let b = bundle(vec![
            json!({"resourceType": "Patient", "id": "p"}),
            json!({"resourceType": "ActivityDefinition", "status": "active"}),
            json!({"resourceType": "ActivityDefinition", "id": "a", "status": "unknown-status"}),
        ]);
        let errors = bundle_resources(&b).expect_err("refused");
        assert!(errors[0].starts_with("Bundle.entry[0].resource: resourceType \"Patient\""), "{errors:?}");
        assert!(errors[1].contains("Bundle.entry[1].resource: the ActivityDefinition has no id"), "{errors:?}");
        assert!(errors[2].starts_with("Bundle.entry[2].resource.status"), "{errors:?}");
        let errors = bundle_resources(&json!({"resourceType": "Bundle", "type": "searchset"})).expect_err("refused");
        assert!(errors[0].contains("collection or a transaction"), "{errors:?}");
    }
}
