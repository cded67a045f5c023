//! The catalog import (`cupola catalog import`) into a running gateway's store, read
//! back through the FHIR API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use cupola::catalog::{import, import_as_of, ImportError, TariffEvent};
use cupola::store::{Registry, Store};
use serde_json::{json, Value};

use crate::helpers::{match_ids, Backend, TestApp};

const BASE: &str = "http://example.org/cupola";
/// Codes in the sample catalog.
const SAMPLE_CODES: usize = 88;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo/catalog-liguria.csv")
}

fn sample_text() -> String {
    std::fs::read_to_string(sample()).expect("sample catalog")
}

fn system() -> String {
    format!("{BASE}/CodeSystem/catalog")
}

/// A second store on the gateway's database, as `cupola catalog import` opens it.
async fn store(app: &TestApp) -> Store {
    Store::connect(app.db_url(), 2, Duration::from_secs(5), Arc::new(Registry::r4())).await.expect("store")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The only match of a search.
async fn one(app: &TestApp, query: &str) -> Value {
    let bundle = app.get_json(query, 200).await;
    assert_eq!(match_ids(&bundle).len(), 1, "{query}: {bundle}");
    bundle["entry"][0]["resource"].clone()
}

async fn ids(app: &TestApp, query: &str) -> Vec<String> {
    let mut ids = match_ids(&app.get_json(query, 200).await);
    ids.sort();
    ids
}

fn price(cid: &Value) -> String {
    cid["propertyGroup"][0]["priceComponent"][0]["amount"]["value"].to_string()
}

async fn the_sample_catalog_is_served(b: Backend) {
    let app = TestApp::spawn(b).await;
    let report = import(&store(&app).await, BASE, &sample()).await.expect("sample imports");
    assert_eq!(report.format, "CSV");
    assert_eq!(report.counts_of("CodeSystem").created, 2, "{report}");
    assert_eq!(report.counts_of("ActivityDefinition").created, SAMPLE_CODES, "{report}");
    assert_eq!(report.counts_of("ChargeItemDefinition").created, SAMPLE_CODES, "{report}");
    assert!(report.counts_of("ValueSet").created >= 10, "{report}");
    assert!(report.tariffs.is_empty(), "a first import opens no new period of an existing tariff: {report}");

    let catalog = one(&app, &format!("CodeSystem?url={}", system())).await;
    assert_eq!(catalog["id"], "catalog");
    assert_eq!(catalog["concept"].as_array().map(Vec::len), Some(SAMPLE_CODES));
    assert_eq!(ids(&app, "CodeSystem?code=89.7A.3").await, ["catalog"]);
    assert_eq!(one(&app, &format!("CodeSystem?url={BASE}/CodeSystem/branch")).await["id"], "branch");
    let cardiology = one(&app, &format!("ValueSet?url={BASE}/ValueSet/catalog-cardiology")).await;
    assert!(cardiology["compose"]["include"][0]["concept"].as_array().is_some_and(|c| c.len() >= 5));

    let service = one(&app, &format!("ActivityDefinition?identifier={}|89.52", system())).await;
    assert_eq!(service["id"], "svc-89-52");
    assert_eq!(
        service["code"]["coding"][0],
        json!({"system": system(), "code": "89.52", "display": "Elettrocardiogramma"})
    );

    let tariff = one(&app, &format!("ChargeItemDefinition?identifier={}|89.52", system())).await;
    assert_eq!(tariff["id"], "tariff-89-52-20240101");
    assert_eq!(price(&tariff), "11.62", "the price as an exact decimal");
    assert_eq!(tariff["propertyGroup"][0]["priceComponent"][0]["amount"]["currency"], "EUR");
    assert_eq!(tariff["effectivePeriod"], json!({"start": "2024-01-01"}));
    let raw = app.get("ChargeItemDefinition/tariff-89-52-20240101").await.text().await.expect("body");
    assert!(raw.contains(r#""value":11.62"#), "served exactly as written: {raw}");
}

async fn a_reimport_changes_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    let first = import(&store, BASE, &sample()).await.expect("first import");
    let versions = app.stored_versions().await;
    let again = import(&store, BASE, &sample()).await.expect("second import");
    assert!(!again.changed(), "{again}");
    assert_eq!(again.total().unchanged, first.total().created, "{again}");
    assert!(again.to_string().contains("nothing changed"), "{again}");
    assert_eq!(app.get_json("CodeSystem/catalog/_history", 200).await["total"], 1);
    assert_eq!(app.stored_versions().await, versions, "no new version of anything");
}

async fn a_new_tariff_opens_a_new_period_and_keeps_the_old_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    import(&store, BASE, &sample()).await.expect("first import");
    let dir = tempfile::tempdir().expect("temp dir");
    let old_row = "89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01,yes";
    let new_row = "89.52,Elettrocardiogramma,cardiology,exam,first,12.50,2026-01-01,yes";
    assert!(sample_text().contains(old_row));
    // The new list holds only the new tariff: the old one stays for bookings made under it.
    let changed = write(&dir, "catalog-2026.csv", &sample_text().replace(old_row, new_row));
    let report = import(&store, BASE, &changed).await.expect("changed file imports");
    let tariffs = report.counts_of("ChargeItemDefinition");
    assert_eq!((tariffs.created, tariffs.updated, tariffs.unchanged), (1, 1, SAMPLE_CODES - 1), "{report}");
    for t in ["CodeSystem", "ValueSet", "ActivityDefinition"] {
        let c = report.counts_of(t);
        assert_eq!((c.created, c.updated), (0, 0), "{t}: {report}");
    }
    let events: Vec<(String, TariffEvent)> =
        report.tariffs.iter().map(|t| (t.start.map(|d| d.to_string()).unwrap_or_default(), t.event.clone())).collect();
    assert!(events.contains(&("2026-01-01".into(), TariffEvent::NewPeriod)), "{report}");
    assert!(events.contains(&("2024-01-01".into(), TariffEvent::PeriodChanged { previous_end: None })), "{report}");

    assert_eq!(
        ids(&app, &format!("ChargeItemDefinition?identifier={}|89.52", system())).await,
        ["tariff-89-52-20240101", "tariff-89-52-20260101"]
    );
    let old = app.get_json("ChargeItemDefinition/tariff-89-52-20240101", 200).await;
    assert_eq!(old["effectivePeriod"], json!({"start": "2024-01-01", "end": "2025-12-31"}));
    assert_eq!(price(&old), "11.62", "the old price unchanged");
    let new = app.get_json("ChargeItemDefinition/tariff-89-52-20260101", 200).await;
    assert_eq!(new["effectivePeriod"], json!({"start": "2026-01-01"}));
    assert_eq!(price(&new), "12.50");

    let again = import(&store, BASE, &changed).await.expect("the same file again");
    assert!(!again.changed(), "{again}");
}

async fn a_bad_row_imports_nothing_of_its_file(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    import(&store, BASE, &sample()).await.expect("first import");
    let versions = app.stored_versions().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write(
        &dir,
        "bad.csv",
        "code,display,branch,kind,access,tariff,valid_from,national\n\
         R.TEST.01,Visita di prova regionale,cardiology,visit,first,20.66,2024-01-01,no\n\
         89.52,Elettrocardiogramma,cardiology,exam,first,12.50,2026-01-01,yes\n\
         89.7A.3,Prima visita cardiologica,cardiology,visit,first,22.00,2024-01-01,yes\n\
         90.27.1,Glucosio,laboratory,exam,first,1.17,2024-01-01,yes\n\
         95.02,Prima visita oculistica (esame complessivo dell'occhio),ophthalmology,visit,first,20.66,2024-01-01,yes\n\
         89.50,Elettrocardiogramma dinamico (Holter),cardiology,exam,first,-61.97,2024-01-01,yes\n",
    );
    let err = import(&store, BASE, &bad).await.expect_err("a negative tariff");
    match &err {
        ImportError::Rows(rows) => {
            assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [7], "{err}");
            assert!(rows[0].reason.contains("negative"), "{err}");
        }
        other => panic!("expected row errors, got {other}"),
    }
    assert!(err.to_string().starts_with("line 7: "), "{err}");
    assert!(ids(&app, &format!("ActivityDefinition?identifier={}|R.TEST.01", system())).await.is_empty());
    assert!(ids(&app, "CodeSystem?code=R.TEST.01").await.is_empty());
    assert_eq!(price(&app.get_json("ChargeItemDefinition/tariff-89-7A-3-20240101", 200).await), "20.66");
    assert_eq!(app.stored_versions().await, versions, "nothing written");
}

async fn a_bundle_imports_like_a_csv(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    let entries = cupola::catalog::parse_csv(
        "code,display,branch,kind,access,tariff,valid_from\n\
         89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01\n\
         89.7A.3,Prima visita cardiologica,cardiology,visit,first,20.66,2024-01-01\n",
    )
    .expect("parses");
    let resources = cupola::catalog::build_resources(BASE, &entries);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": resources.iter().map(|r| json!({
        "resource": r,
        "request": {"method": "PUT", "url": format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""))}
    })).collect::<Vec<_>>()});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir, "catalog.json", &serde_json::to_string_pretty(&bundle).expect("json"));
    let report = import(&store, BASE, &path).await.expect("bundle imports");
    assert_eq!((report.format, report.rows, report.total().created), ("Bundle", resources.len(), resources.len()));
    assert_eq!(price(&one(&app, &format!("ChargeItemDefinition?identifier={}|89.52", system())).await), "11.62");
    // The same catalog as CSV: the same resources, nothing to change.
    let csv = write(
        &dir,
        "catalog.csv",
        "code,display,branch,kind,access,tariff,valid_from\n\
         89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01\n\
         89.7A.3,Prima visita cardiologica,cardiology,visit,first,20.66,2024-01-01\n",
    );
    let again = import(&store, BASE, &csv).await.expect("csv imports");
    assert!(!again.changed(), "{again}");
}

async fn the_command_reports_and_fails_with_the_line(b: Backend) {
    let app = TestApp::spawn(b).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |file: PathBuf| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cupola"))
            .args(["catalog", "import"])
            .arg(file)
            .args(["--database-url", app.db_url(), "--canonical-base", BASE])
            .env("RUST_LOG", "warn")
            .output()
            .expect("cupola runs")
    };
    let out = run(sample());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ChargeItemDefinition") && stdout.contains(&format!("{SAMPLE_CODES} created")), "{stdout}");
    let bad = write(
        &dir,
        "bad.csv",
        "code,display,branch,kind,access,tariff,valid_from\n89.52,ECG,astrology,exam,first,1,2024-01-01\n",
    );
    let out = run(bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2: branch \"astrology\" is unknown"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
}

/// The row of 89.52 in the sample: its only tariff.
const ECG_ROW: &str = "89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01,yes,\n";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

/// The served catalog concept of `code`.
async fn served_concept(app: &TestApp, code: &str) -> Value {
    let catalog = app.get_json("CodeSystem/catalog", 200).await;
    let concepts = catalog["concept"].as_array().cloned().unwrap_or_default();
    concepts.into_iter().find(|c| c["code"] == code).unwrap_or_else(|| panic!("{code} in {catalog}"))
}

fn has_property(concept: &Value, property: Value) -> bool {
    concept["property"].as_array().is_some_and(|ps| ps.contains(&property))
}

async fn cardiology_codes(app: &TestApp) -> Vec<String> {
    let vs = app.get_json("ValueSet/catalog-cardiology", 200).await;
    let listed = vs["compose"]["include"][0]["concept"].as_array().cloned().unwrap_or_default();
    listed.iter().filter_map(|c| c["code"].as_str().map(str::to_string)).collect()
}

async fn a_code_missing_from_the_file_is_retired_and_comes_back(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    import(&store, BASE, &sample()).await.expect("first import");
    assert!(sample_text().contains(ECG_ROW));
    let dir = tempfile::tempdir().expect("temp dir");
    let without = write(&dir, "catalog-without-ecg.csv", &sample_text().replace(ECG_ROW, ""));

    let report = import_as_of(&store, BASE, &without, day(2025, 6, 1)).await.expect("file without 89.52");
    assert_eq!(report.retired, ["89.52"], "{report}");
    assert!(report.to_string().contains("retired: 1 (89.52)"), "{report}");
    for t in ["CodeSystem", "ValueSet", "ActivityDefinition", "ChargeItemDefinition"] {
        assert_eq!(report.counts_of(t).updated, 1, "{t}: {report}");
    }
    assert!(report.tariffs.iter().any(|t| t.event == TariffEvent::Retired { previous_end: None }), "{report}");

    let concept = served_concept(&app, "89.52").await;
    assert!(has_property(&concept, json!({"code": "status", "valueCode": "retired"})), "{concept}");
    assert!(has_property(&concept, json!({"code": "inactive", "valueBoolean": true})), "{concept}");
    assert!(has_property(&concept, json!({"code": "branch", "valueCode": "cardiology"})), "{concept}");
    let catalog = app.get_json("CodeSystem/catalog", 200).await;
    assert_eq!(catalog["concept"].as_array().map(Vec::len), Some(SAMPLE_CODES), "the concept stays");
    let status = json!({"code": "status", "uri": "http://hl7.org/fhir/concept-properties#status", "type": "code"});
    let declared = |p: &Value| ["code", "uri", "type"].iter().all(|k| p[*k] == status[*k]);
    assert!(catalog["property"].as_array().is_some_and(|ps| ps.iter().any(declared)), "{catalog}");
    assert_eq!(app.get_json("ActivityDefinition/svc-89-52", 200).await["status"], "retired");
    let tariff = app.get_json("ChargeItemDefinition/tariff-89-52-20240101", 200).await;
    assert_eq!(tariff["status"], "retired");
    assert_eq!(tariff["effectivePeriod"], json!({"start": "2024-01-01", "end": "2025-05-31"}));
    assert_eq!(price(&tariff), "11.62", "its price kept");
    let cardiology = cardiology_codes(&app).await;
    assert!(!cardiology.iter().any(|c| c == "89.52") && cardiology.iter().any(|c| c == "89.7A.3"), "{cardiology:?}");
    assert_eq!(app.get_json("ActivityDefinition/svc-89-7A-3", 200).await["status"], "active", "others untouched");

    // Retired once: another day's import of the same file changes nothing.
    let again = import_as_of(&store, BASE, &without, day(2025, 7, 1)).await.expect("the same file again");
    assert!(!again.changed() && again.retired.is_empty(), "{again}");

    let back = import_as_of(&store, BASE, &sample(), day(2025, 9, 1)).await.expect("the whole file again");
    assert_eq!((back.retired.len(), back.reactivated.as_slice()), (0, ["89.52".to_string()].as_slice()), "{back}");
    let concept = served_concept(&app, "89.52").await;
    assert!(!concept.to_string().contains("retired") && !concept.to_string().contains("inactive"), "{concept}");
    assert_eq!(app.get_json("ActivityDefinition/svc-89-52", 200).await["status"], "active");
    let tariff = app.get_json("ChargeItemDefinition/tariff-89-52-20240101", 200).await;
    assert_eq!((&tariff["status"], &tariff["effectivePeriod"]), (&json!("active"), &json!({"start": "2024-01-01"})));
    assert!(cardiology_codes(&app).await.iter().any(|c| c == "89.52"));

    let versions = app.stored_versions().await;
    let third = import(&store, BASE, &sample()).await.expect("a third identical import");
    assert!(!third.changed() && third.reactivated.is_empty(), "{third}");
    assert!(third.to_string().contains("retired: 0") && third.to_string().contains("nothing changed"), "{third}");
    assert_eq!(app.stored_versions().await, versions, "no new version of anything");
}

async fn a_bundle_retires_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    import(&store, BASE, &sample()).await.expect("sample imports");
    // A Bundle may carry part of the catalog: one service alone.
    let service = app.get_json("ActivityDefinition/svc-89-7A-3", 200).await;
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": service}]});
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir, "one-service.json", &bundle.to_string());
    let report = import(&store, BASE, &path).await.expect("bundle imports");
    assert!(report.retired.is_empty() && !report.to_string().contains("retired"), "{report}");
    assert_eq!(app.get_json("ActivityDefinition/svc-89-52", 200).await["status"], "active");
    assert!(!served_concept(&app, "89.52").await.to_string().contains("retired"));
}

async fn the_preparation_column_is_optional_and_served_on_the_service(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = store(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let head = "code,display,branch,kind,access,tariff,valid_from";
    let rows = "88.76.1,Ecografia dell'addome completo,radiology,exam,first,69.95,2024-01-01\n\
                89.52,Elettrocardiogramma,cardiology,exam,first,11.62,2024-01-01";
    let without = write(&dir, "without.csv", &format!("{head}\n{rows}\n"));
    import(&store, BASE, &without).await.expect("a file without the column imports");
    let service = app.get_json("ActivityDefinition/svc-88-76-1", 200).await;
    assert!(service.get("extension").is_none(), "{service}");

    let with = rows.replace("2024-01-01\n", "2024-01-01,\"Digiuno da 8 ore, vescica piena\"\n") + ",";
    let path = write(&dir, "with.csv", &format!("{head},preparation\n{with}\n"));
    let report = import(&store, BASE, &path).await.expect("a file with the column imports");
    assert_eq!(report.counts_of("ActivityDefinition").updated, 1, "{report}");
    let service = one(&app, &format!("ActivityDefinition?identifier={}|88.76.1", system())).await;
    assert_eq!(
        service["extension"],
        json!([{"url": format!("{BASE}/StructureDefinition/preparation"), "valueString": "Digiuno da 8 ore, vescica piena"}])
    );
    assert!(app.get_json("ActivityDefinition/svc-89-52", 200).await.get("extension").is_none());

    let bad = with.replace("vescica piena", &"x".repeat(501));
    let path = write(&dir, "bad.csv", &format!("{head},preparation\n{bad}\n"));
    match import(&store, BASE, &path).await.expect_err("too long a preparation") {
        ImportError::Rows(rows) => {
            assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2], "{rows:?}");
            assert!(rows[0].reason.contains("preparation of code 88.76.1 has 519 characters"), "{}", rows[0]);
        }
        other => panic!("not a row error: {other}"),
    }
}

crate::on_both!(
    the_preparation_column_is_optional_and_served_on_the_service,
    the_sample_catalog_is_served,
    a_reimport_changes_nothing,
    a_new_tariff_opens_a_new_period_and_keeps_the_old_one,
    a_bad_row_imports_nothing_of_its_file,
    a_bundle_imports_like_a_csv,
    the_command_reports_and_fails_with_the_line,
    a_code_missing_from_the_file_is_retired_and_comes_back,
    a_bundle_retires_nothing,
);
