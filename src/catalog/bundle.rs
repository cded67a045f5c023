//! A catalog given as a FHIR Bundle (collection or transaction) of catalog
//! resources: each checked (catalog type, own id, R4), then upserted as it is. A
//! Bundle may hold part of the catalog: it retires nothing.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::import::{type_and_id, upsert, ImportError};
use super::report::{ImportReport, TariffEvent};
use super::{Progress, PROGRESS_ROWS};
use crate::fhir::check::{At, Checker};
use crate::store::Store;

/// At most this many Bundle problems are reported.
const MAX_ERRORS: usize = 20;
/// The resource types a catalog Bundle may hold.
const CATALOG_TYPES: [&str; 4] = ["CodeSystem", "ValueSet", "ActivityDefinition", "ChargeItemDefinition"];

/// A Bundle (collection or transaction) of catalog resources, each upserted as it is.
pub(super) async fn import_bundle(store: &Store, text: &str, report: &mut ImportReport) -> Result<(), ImportError> {
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
    use crate::catalog::{build_resources, parse_csv};

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
        let built = build_resources("http://x", &entries);
        let got = bundle_resources(&bundle(built.clone())).expect("accepted");
        assert_eq!(got, built);
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
