//! The project's own fuzz suite, with a fixed seed: mutations of the official R4
//! examples and of cupola's own resources (shapes, types, lengths, control
//! characters, encodings, nesting depth, numbers at the edges of their types,
//! dates at month ends and DST) sent through the HTTP API on both backends.
//! Asserted: no 5xx and no dropped connection; every input R4 forbids refused with
//! a 4xx and an OperationOutcome; every accepted resource read back in valid R4
//! shape. (Every element's shape mutation, over the definitions, runs in-process
//! against the checker: `crates/cupola-validate/tests/shapes.rs`.)

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod mutate;

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;

use helpers::{Backend, TestApp};
use mutate::{mutate, Verdict, KINDS};

/// The seed: the same cases every run. `CUPOLA_FUZZ_SEED` tries another.
const SEED: u64 = 30;
/// Mutations of each kind per backend.
const PER_KIND: usize = 100;

/// The official examples of the served types (the booking workflow's last, so that
/// what they name is stored before them) and a sample of the demo region's own.
fn corpus() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/examples");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(dir).expect("examples").filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let skip = ["AuditEvent-", "OperationOutcome-", "CapabilityStatement-"];
    let workflow = ["Appointment-", "ChargeItem-", "Invoice-", "PaymentNotice-"];
    let name = |p: &std::path::PathBuf| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    files.retain(|p| !skip.iter().any(|s| name(p).starts_with(s)));
    files.sort_by_key(|p| (workflow.iter().any(|w| name(p).starts_with(w)), name(p)));
    let mut out: Vec<Value> = files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("example is JSON"))
        .collect();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let demo = cupola::demo::build("http://example.org/cupola", today).expect("demo region builds");
    let mut seen = std::collections::HashSet::new();
    for r in demo {
        let t = r["resourceType"].as_str().unwrap_or_default().to_string();
        // One of each type (the catalog CodeSystem is large; Slots live in the grid).
        if t != "Slot" && t != "CodeSystem" && seen.insert(t) {
            out.insert(0, r);
        }
    }
    out
}

/// What the runs found, by kind: tried, refused, accepted; and every failure.
#[derive(Default)]
struct Findings {
    by_kind: BTreeMap<&'static str, [usize; 3]>,
    failures: Vec<String>,
}

async fn load(app: &TestApp, corpus: &[Value]) -> Vec<Value> {
    let mut stored = Vec::new();
    for r in corpus {
        let path =
            format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default());
        if app.put(&path, r).await.status().is_success() {
            stored.push(r.clone());
        }
    }
    stored
}

async fn one(
    app: &TestApp,
    v: &cupola_validate::Validator,
    kind: &'static str,
    base: &Value,
    body: Vec<u8>,
    verdict: Verdict,
    f: &mut Findings,
) {
    let t = base["resourceType"].as_str().unwrap_or_default();
    let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
    if std::env::var_os("CUPOLA_FUZZ_TRACE").is_some() {
        eprintln!("{kind} {t} {} bytes: {shown}", body.len());
    }
    let sent =
        app.req(reqwest::Method::POST, t).header("content-type", "application/fhir+json").body(body).send().await;
    let tally = f.by_kind.entry(kind).or_default();
    tally[0] += 1;
    let r = match sent {
        Ok(r) => r,
        Err(e) => return f.failures.push(format!("{kind} {t}: no answer ({e}): {shown}")),
    };
    let status = r.status().as_u16();
    let answer: Value = r.json().await.unwrap_or(Value::Null);
    match status {
        400..=499 if answer["resourceType"] == "OperationOutcome" => tally[1] += 1,
        200 | 201 if verdict == Verdict::Either => {
            tally[2] += 1;
            let id = answer["id"].as_str().unwrap_or_default();
            let back = app.get_json(&format!("{t}/{id}"), 200).await;
            let errors: Vec<String> = v
                .validate(&back)
                .into_iter()
                .filter(|i| i.severity == cupola_validate::Severity::Error)
                .map(|i| format!("{} {}", i.expression, i.diagnostics))
                .collect();
            if !errors.is_empty() {
                f.failures.push(format!("{kind} {t}: stored invalid: {errors:?}: {shown}"));
            }
        }
        _ => f.failures.push(format!("{kind} {t}: {status} ({verdict:?}): {answer}: {shown}")),
    }
}

async fn fuzz(b: Backend) {
    let seed = std::env::var("CUPOLA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let app = TestApp::spawn(b).await;
    let stored = load(&app, &corpus()).await;
    assert!(stored.len() > 200, "the corpus is stored first: {}", stored.len());
    let validator = cupola_validate::Validator::r4();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut f = Findings::default();
    for kind in KINDS {
        let mut made = 0;
        while made < PER_KIND {
            let Some(base) = stored.choose(&mut rng) else { break };
            let Some((body, verdict)) = mutate(kind, base, &mut rng) else { continue };
            one(&app, &validator, kind, base, body, verdict, &mut f).await;
            made += 1;
        }
    }
    eprintln!("fuzz on {b:?} (seed {seed}), per kind [tried, refused, stored valid]: {:?}", f.by_kind);
    assert!(f.failures.is_empty(), "{} failures:\n{}", f.failures.len(), f.failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutations_on_sqlite_get_a_4xx_or_are_stored_valid() {
    fuzz(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutations_on_postgres_get_a_4xx_or_are_stored_valid() {
    fuzz(Backend::Postgres).await
}
