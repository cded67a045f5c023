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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::Value;

use super::build;
use super::bundle::import_bundle;
use super::merge::{code_changes, merged, retirements, stored_tariffs};
use super::report::{Counts, ImportReport};
use super::{branches, parse_csv, value_set_id, CatalogEntry, Progress, RowError, PROGRESS_ROWS};
use crate::access::Access;
use crate::error::Issue;
use crate::fhir::check::{At, Checker};
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

pub(super) fn type_and_id(r: &Value) -> (&str, &str) {
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
    // Checked before the transaction: a file that cannot make valid resources is refused up front.
    let checker = Checker::shared();
    let built = Built::checked(&checker, base, &entries)?;

    let mut tx = store.begin().await?;
    let stored_catalog = read(store, &mut tx, "CodeSystem", "catalog").await?;
    let changes = code_changes(&entries, stored_catalog.as_ref());
    let mut codes: BTreeSet<&str> = entries.iter().map(|e| e.code.as_str()).collect();
    codes.extend(changes.absent.iter().map(String::as_str));
    let stored_tariffs = stored_tariffs(store, &mut tx, base, &codes).await?;
    let mut resources = merged(base, &entries, stored_catalog.as_ref(), &stored_tariffs);
    resources.extend(retirements(store, &mut tx, &changes.absent, &stored_tariffs, effective).await?);
    for r in &resources {
        built.check_again(&checker, r)?;
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
    delete_empty_value_sets(store, &mut tx, &present, report).await?;
    tx.commit().await?;
    report.retired = changes.retired;
    report.reactivated = changes.reactivated;
    Ok(())
}

/// The resources built from a file's rows, each checked against the R4
/// definitions, and the line of the file each comes from (for error messages).
struct Built {
    line_of: HashMap<String, usize>,
    checked: HashMap<(String, String), Value>,
}

impl Built {
    fn checked(checker: &Checker, base: &str, entries: &[CatalogEntry]) -> Result<Built, ImportError> {
        let mut line_of: HashMap<String, usize> = HashMap::new();
        for e in entries {
            line_of.entry(super::service_id(&e.code)).or_insert(e.line);
            line_of.insert(super::tariff_id(&e.code, e.valid_from), e.line);
        }
        let mut checked: HashMap<(String, String), Value> = HashMap::new();
        for r in build::build_resources(base, entries) {
            let (t, id) = type_and_id(&r);
            check(checker, &r, line_of.get(id).copied())?;
            checked.insert((t.to_string(), id.to_string()), r);
        }
        Ok(Built { line_of, checked })
    }

    /// `r` checked, unless it is a built resource as it was checked.
    fn check_again(&self, checker: &Checker, r: &Value) -> Result<(), ImportError> {
        let (t, id) = type_and_id(r);
        if self.checked.get(&(t.to_string(), id.to_string())) != Some(r) {
            check(checker, r, self.line_of.get(id).copied())?;
        }
        Ok(())
    }
}

/// A branch left without codes (no ValueSet among `present`) loses its ValueSet
/// (history kept).
async fn delete_empty_value_sets(
    store: &Store,
    tx: &mut Tx,
    present: &HashSet<String>,
    report: &mut ImportReport,
) -> Result<(), crate::Error> {
    for b in branches() {
        let id = value_set_id(&b.code);
        if !present.contains(&id) && read(store, tx, "ValueSet", &id).await?.is_some() {
            store.delete_in(tx, &Access::gateway(), "ValueSet", &id).await?;
            report.count("ValueSet", Counts { deleted: 1, ..Counts::default() });
        }
    }
    Ok(())
}

/// The current version of a resource without its `meta`; `None` when absent or deleted.
pub(super) async fn read(store: &Store, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<Value>, crate::Error> {
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

/// Writes `resource` unless the stored version is the same (`meta` aside).
pub(super) async fn upsert(
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
