//! Every official R4 example of a served type validates without errors.

use std::path::PathBuf;
use std::time::Instant;

use cupola_validate::{Severity, Validator};

fn examples() -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/examples exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let skip = ["AuditEvent-", "OperationOutcome-", "CapabilityStatement-"];
            if skip.iter().any(|s| name.starts_with(s)) {
                return None;
            }
            let text = std::fs::read_to_string(&p).expect("example readable");
            Some((name, serde_json::from_str(&text).expect("example is JSON")))
        })
        .collect()
}

#[test]
fn official_examples_have_no_errors() {
    let started = Instant::now();
    let validator = Validator::r4();
    eprintln!("Validator::r4(): {:?}", started.elapsed());
    let examples = examples();
    assert!(examples.len() >= 190, "examples found: {}", examples.len());
    let mut failures = Vec::new();
    // First pass compiles each type's schema; the second one is timed.
    for (name, resource) in &examples {
        for issue in validator.validate(resource) {
            if issue.severity == Severity::Error {
                failures.push(format!("{name}: {} {} — {}", issue.code, issue.expression, issue.diagnostics));
            }
        }
    }
    let started = Instant::now();
    for (_, resource) in &examples {
        validator.validate(resource);
    }
    eprintln!(
        "{} examples validated in {:?} ({:?} each, schemas compiled)",
        examples.len(),
        started.elapsed(),
        started.elapsed() / examples.len() as u32
    );
    assert!(failures.is_empty(), "{} false errors:\n{}", failures.len(), failures.join("\n"));
}

/// Start-up and per-resource costs; run with `--ignored --nocapture`
/// (and `--release` for release numbers).
#[test]
#[ignore]
fn timings() {
    let started = Instant::now();
    let validator = Validator::r4();
    eprintln!("Validator::r4(): {:?}", started.elapsed());
    let started = Instant::now();
    validator.warm_up();
    eprintln!("warm_up() of the 28 served types: {:?}", started.elapsed());
    let started = Instant::now();
    let _profiles = cupola_validate::Profiles::load();
    eprintln!("Profiles::load(): {:?}", started.elapsed());
    let examples = examples();
    for (name, resource) in &examples {
        validator.validate(resource); // compiles nested types' schemas
        let started = Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            validator.validate(resource);
        }
        if [
            "Patient-example.json",
            "Appointment-example.json",
            "Bundle-bundle-transaction.json",
            "ServiceRequest-physiotherapy.json",
            "CodeSystem-example.json",
        ]
        .contains(&name.as_str())
            || name.starts_with("Bundle-")
        {
            let bytes = serde_json::to_string(resource).map(|s| s.len()).unwrap_or(0);
            eprintln!("{name} ({bytes} bytes): {:?} per validation", started.elapsed() / rounds);
        }
    }
}
