//! The demo region (`serve --demo`, `cupola demo load`): a deterministic Liguria
//! (see [`region`]), the regional catalog of `profiles/demo/catalog-liguria.csv`,
//! eight weeks of agendas from today, a few patients with one booked appointment;
//! loaded into an empty store in one transaction, in seconds.

mod network;
pub mod region;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use crate::auth::{default_scope, mint, Role, TokenRequest};
use crate::config::AuthConfig;
use crate::fhir::names;
use crate::store::Store;

const PATIENTS: &str = include_str!("../../profiles/demo/demo-bundle.json");
const CATALOG: &str = include_str!("../../profiles/demo/catalog-liguria.csv");

/// The agenda the showcase appointment is booked on.
pub const SHOWCASE_AGENDA: &str = "ag-galliera-cardiology";

/// Every resource of the demo region for agendas starting `from`, slots included,
/// with the showcase appointment booked on the first open slot of
/// [`SHOWCASE_AGENDA`].
pub fn build(base: &str, from: chrono::NaiveDate) -> anyhow::Result<Vec<Value>> {
    let catalog = crate::catalog::parse_csv(CATALOG)
        .map_err(|errors| anyhow::anyhow!("the demo catalog is invalid: {errors:?}"))?;
    let services = |branch: &str| -> Vec<(String, String)> {
        // The first-access visit (what the agendas book by default) and two more codes.
        let mut of_branch: Vec<&crate::catalog::CatalogEntry> = catalog.iter().filter(|e| e.branch == branch).collect();
        of_branch.sort_by_key(|e| (e.kind != "visit", e.access != "first", e.code.clone()));
        of_branch.dedup_by_key(|e| e.code.clone());
        of_branch.iter().take(3).map(|e| (e.code.clone(), e.display.clone())).collect()
    };
    let mut out = crate::catalog::build_resources(base, &catalog);
    let region = region::resources(base, &services);
    let by_ref: std::collections::HashMap<String, Value> = region
        .iter()
        .map(|r| {
            (format!("{}/{}", r["resourceType"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or("")), r.clone())
        })
        .collect();
    for schedule in region.iter().filter(|r| r["resourceType"] == "Schedule") {
        let id = schedule["id"].as_str().unwrap_or_default();
        let template = crate::agenda::parse_template(schedule, base)
            .map_err(|e| anyhow::anyhow!("demo agenda {id}: {e}"))?
            .with_context(|| format!("demo agenda {id} has no template"))?;
        let mut slots = crate::agenda::generate_slots(id, &template, from, base);
        let place = crate::agenda::place_of(schedule, &|r: &str| by_ref.get(r).cloned());
        crate::agenda::place_slots(&mut slots, &place, base);
        out.extend(slots);
    }
    out.extend(region);
    let patients: Value = serde_json::from_str(PATIENTS)?;
    out.extend(patients["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()));
    book_showcase(&mut out, base)?;
    Ok(out)
}

/// Mario Rossi's cardiology visit at Galliera, on the first slot open to everyone.
fn book_showcase(all: &mut Vec<Value>, base: &str) -> anyhow::Result<()> {
    let reserved = names::structure(base, "slot-reserved-for");
    let schedule_ref = format!("Schedule/{SHOWCASE_AGENDA}");
    let slot = all
        .iter_mut()
        .filter(|r| r["resourceType"] == "Slot" && r["schedule"]["reference"] == schedule_ref.as_str())
        .find(|r| !r["extension"].as_array().into_iter().flatten().any(|e| e["url"] == reserved.as_str()))
        .context("the showcase agenda has no open slot")?;
    let appointment = json!({
        "resourceType": "Appointment", "id": "appt-1", "status": "booked",
        "serviceType": slot["serviceType"].clone(),
        "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap_or_default())}],
        "start": slot["start"].clone(), "end": slot["end"].clone(),
        "participant": [
            {"actor": {"reference": "Patient/mario-rossi"}, "status": "accepted"},
            {"actor": {"reference": "HealthcareService/hs-galliera-cardiology"}, "status": "accepted"}
        ]
    });
    all.push(appointment);
    Ok(())
}

/// Loads the demo region when the store is empty (agendas from today, Europe/Rome).
pub async fn load(store: &Store, base: &str) -> anyhow::Result<()> {
    if store.has_any_resource().await? {
        tracing::info!("demo data not loaded: the store already holds resources");
        return Ok(());
    }
    let started = Instant::now();
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let resources = build(base, today)?;
    let mut by_type: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for r in resources {
        let t = r["resourceType"].as_str().unwrap_or_default().to_string();
        let id = r["id"].as_str().unwrap_or_default().to_string();
        by_type.entry(t).or_default().push((id, r));
    }
    // Slots go to the compact slot table through agenda generation, as in production;
    // those the demo changed (the showcase booking) are then updated like any slot.
    let slots = by_type.remove("Slot").unwrap_or_default();
    // Appointments are booked through the booking rules, which take their slots.
    let appointments = by_type.remove("Appointment").unwrap_or_default();
    let total: usize = by_type.values().map(Vec::len).sum::<usize>() + slots.len();
    let mut tx = store.begin().await?;
    let schedules: Vec<String> = by_type.get("Schedule").into_iter().flatten().map(|(id, _)| id.clone()).collect();
    for (t, list) in by_type {
        tracing::info!(resource_type = %t, count = list.len(), "loading demo resources");
        store.insert_many_with_ids(&mut tx, &t, list).await.with_context(|| format!("loading demo {t}"))?;
    }
    tracing::info!(agendas = schedules.len(), slots = slots.len(), "generating demo agendas");
    for id in &schedules {
        crate::agenda::generate_in(store, &mut tx, id, today, base)
            .await
            .with_context(|| format!("demo agenda {id}"))?;
    }
    let gateway = crate::access::Access::gateway();
    for (id, slot) in slots.into_iter().filter(|(_, s)| s["status"] != "free") {
        store.update_in(&mut tx, &gateway, "Slot", &id, slot, None).await.with_context(|| format!("demo Slot/{id}"))?;
    }
    for (id, appointment) in appointments {
        store
            .create_in(&mut tx, &gateway, "Appointment", appointment, Some(id.clone()))
            .await
            .with_context(|| format!("demo Appointment/{id}"))?;
    }
    tx.commit().await?;
    tracing::info!(resources = total, seconds = started.elapsed().as_secs_f64(), "demo region loaded");
    Ok(())
}

/// One of the demo's callers: its role, the organisation (or patient) it speaks for,
/// what it is for, and the shell variable the README's tour reads its token from.
struct DemoCaller {
    role: Role,
    sub: &'static str,
    org: Option<&'static str>,
    patient: Option<&'static str>,
    what: &'static str,
    var: &'static str,
}

/// The demo's callers: one per role, each with an organisation of the demo data.
const DEMO_CALLERS: &[DemoCaller] = &[
    DemoCaller {
        role: Role::Admin,
        sub: "demo-admin",
        org: Some(region::REGION_ORG),
        patient: None,
        what: "the region's administrator, sees and changes everything",
        var: "ADMIN",
    },
    DemoCaller {
        role: Role::BookingPoint,
        sub: "demo-counter",
        org: Some("bp-counter-001"),
        patient: None,
        what: "a CUP counter (channel counter), books for patients",
        var: "BOOKING",
    },
    DemoCaller {
        role: Role::Provider,
        sub: "demo-provider",
        org: Some("prov-galliera"),
        patient: None,
        what: "the Galliera hospital, its agendas and the appointments on them",
        var: "PROVIDER",
    },
    DemoCaller {
        role: Role::PaymentPoint,
        sub: "demo-payment-point",
        org: Some("bp-pharmacy-001"),
        patient: None,
        what: "a pharmacy, takes ticket payments",
        var: "PAYMENT",
    },
    DemoCaller {
        role: Role::PatientApp,
        sub: "demo-patient-app",
        org: None,
        patient: Some("mario-rossi"),
        what: "Mario Rossi's app, his own appointments and tickets",
        var: "PATIENT",
    },
];

/// A demo token, with what it is for.
pub struct DemoToken {
    /// The role, as `cupola token --role` names it.
    pub role: &'static str,
    /// Whom the token speaks for: `Organization/…`, or `Patient/…` for the patient app.
    pub on_behalf_of: String,
    pub what: &'static str,
    /// The shell variable the README's tour reads it from (`BOOKING`, …).
    pub var: &'static str,
    pub token: String,
}

/// A token (valid for a day) for each caller of the demo, signed with `cfg`'s key.
pub fn tokens(cfg: &AuthConfig) -> anyhow::Result<Vec<DemoToken>> {
    DEMO_CALLERS
        .iter()
        .map(|c| {
            let req = TokenRequest {
                sub: c.sub.into(),
                role: c.role,
                org: c.org.map(|o| format!("Organization/{o}")),
                channel: (c.role == Role::BookingPoint).then(|| "counter".to_string()),
                patient: c.patient.map(str::to_string),
                scope: default_scope(c.role).into(),
                ttl_secs: 24 * 3600,
                client_id: Some("cupola-demo".into()),
            };
            let on_behalf_of = match (c.org, c.patient) {
                (Some(o), _) => format!("Organization/{o}"),
                (None, p) => format!("Patient/{}", p.unwrap_or_default()),
            };
            Ok(DemoToken { role: c.role.as_str(), on_behalf_of, what: c.what, var: c.var, token: mint(cfg, &req)? })
        })
        .collect()
}

/// The FHIR base and canonical base of a gateway started with the defaults.
const DEFAULT_BASE: &str = "http://127.0.0.1:8080/fhir";
const DEFAULT_CANONICAL_BASE: &str = "http://example.org/cupola";

/// Prints a ready token for each role of the demo, labelled with its role and
/// organisation, then the next command to try. Nothing to print when tokens come
/// from an external issuer.
pub fn print_tokens(cfg: &AuthConfig) -> anyhow::Result<()> {
    if cfg.issuer.is_some() {
        return Ok(());
    }
    let tokens = tokens(cfg)?;
    println!("demo tokens, one per role, valid 24 h (send as `Authorization: Bearer <token>`):");
    for t in &tokens {
        println!("\n  {} of {}: {}", t.role, t.on_behalf_of, t.what);
        println!("  {:<14} {}", t.role, t.token);
    }
    println!("{}", next_command(&tokens));
    Ok(())
}

/// What to paste next: the tokens under the names the README's tour reads, and the
/// first free slots from now on.
fn next_command(tokens: &[DemoToken]) -> String {
    let vars: Vec<String> = tokens.iter().map(|t| format!("{}={}", t.var, t.token)).collect();
    let catalog = names::catalog_system(DEFAULT_CANONICAL_BASE);
    format!(
        "\nnext, in another terminal: the tokens under the names the README's tour uses (another --listen: change B),\n\
         then the first free cardiology visits from now on, as the counter sees them:\n\n  \
         export B={DEFAULT_BASE} {}\n  \
         curl -s -H \"Authorization: Bearer $BOOKING\" \
         \"$B/Slot?service-type={catalog}|89.7A.3&status=free&start=ge$(date -u +%FT%TZ)&_sort=start&_count=3&_elements=start,status\"\n",
        vars.join(" ")
    )
}

/// `cupola demo load`: the demo region into any (empty) store.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub command: DemoCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// Load the demo region (nothing is loaded into a store that holds resources).
    Load {
        /// The store to load into.
        #[arg(long, env = "CUPOLA_DATABASE_URL", default_value = "sqlite://cupola.db")]
        database_url: String,
        /// Base URL of cupola's CodeSystems and identifiers.
        #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
        canonical_base: String,
        /// The region's code maps and rules, as `serve` is given them: the showcase
        /// booking is made by the booking rules.
        #[arg(long, env = "CUPOLA_MAPPINGS_DIR", default_value = "mappings")]
        mappings_dir: std::path::PathBuf,
    },
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.command {
        DemoCommand::Load { database_url, canonical_base, mappings_dir } => {
            load_into(&database_url, &canonical_base, &mappings_dir).await
        }
    }
}

/// `cupola demo load`: the demo region into the (empty) store at `database_url`,
/// written under the domain's rules as `serve --demo` writes it. A store without
/// them took the showcase Appointment without its place on its slot, which a later
/// booking of that slot then took too (found by the year replay's over-booking check).
pub async fn load_into(database_url: &str, canonical_base: &str, mappings_dir: &std::path::Path) -> anyhow::Result<()> {
    let mut config = crate::config::Config::for_database(database_url);
    config.canonical_base = canonical_base.to_string();
    config.mappings_dir = mappings_dir.to_path_buf();
    config.db_busy_timeout_secs = 30;
    let store = crate::api::store_with_rules(&config).await?;
    load(&store, canonical_base).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::check::{At, Checker};

    #[test]
    fn the_demo_region_is_valid_r4_and_complete() {
        let from = chrono::NaiveDate::from_ymd_opt(2026, 3, 23).expect("date");
        let all = build("http://example.org/cupola", from).expect("demo builds");
        let checker = Checker::shared();
        let mut slots = 0;
        for r in &all {
            let t = r["resourceType"].as_str().expect("type");
            if t == "Slot" {
                slots += 1;
                // A sample of the slots: they all come from one generator.
                if slots > 300 {
                    continue;
                }
            }
            if let Err(e) = checker.check(r, t, r["id"].as_str(), At::Body) {
                panic!("{t}/{}: {:?}", r["id"], e.issues());
            }
        }
        let count = |t: &str| all.iter().filter(|r| r["resourceType"] == t).count();
        assert!(count("ActivityDefinition") >= 50, "at least 50 services");
        assert_eq!(count("Schedule"), 54);
        assert!(slots > 20_000, "eight weeks of agendas: {slots}");
        assert_eq!(count("Appointment"), 1);
    }
}
