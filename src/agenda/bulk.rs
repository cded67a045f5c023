//! Generating many agendas at once (`cupola agenda generate`, the demo, the
//! benchmark): each Schedule in its own transaction, a few at a time, with progress.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::generate::{generate_for_schedule, SEARCH_LIMIT};
use crate::access::Access;
use crate::store::{Dialect, Store};
use crate::Result;

/// Totals of a bulk generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkReport {
    pub agendas: usize,
    pub created: usize,
    pub kept: usize,
    pub removed: usize,
    /// Slots kept because they hold an appointment (see `GenerateReport::held`).
    pub held: Vec<String>,
}

/// Generates the slots of `schedules` (every Schedule when empty) from `from`,
/// `concurrency` agendas at a time, logging progress about every 5 %.
pub async fn generate_all(
    store: &Store,
    base: &str,
    from: NaiveDate,
    schedules: Vec<String>,
    concurrency: usize,
) -> Result<BulkReport> {
    let ids = if schedules.is_empty() {
        let mut tx = store.begin().await?;
        let ids = store.search_ids_in(&mut tx, &Access::gateway(), "Schedule", &[], SEARCH_LIMIT).await?;
        tx.commit().await?;
        ids
    } else {
        schedules
    };
    let total = ids.len();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let step = (total / 20).max(1);
    let reports: Vec<super::GenerateReport> = stream::iter(ids)
        .map(|id| {
            let done = &done;
            async move {
                let r = generate_for_schedule(store, &id, from, base).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(step) || n == total {
                    tracing::info!(
                        agendas = n,
                        of = total,
                        seconds = started.elapsed().as_secs_f64(),
                        "generating agendas"
                    );
                }
                Ok::<_, crate::Error>(r)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut out = BulkReport { agendas: total, ..Default::default() };
    for r in reports {
        out.created += r.created;
        out.kept += r.kept;
        out.removed += r.removed;
        out.held.extend(r.held);
    }
    // Fresh statistics, so that the first searches plan on the new rows (an agenda's
    // shared index rows included: without them a district looks like one row).
    if store.dialect() == Dialect::Postgres && out.created > 0 {
        for table in ["slot_grid", "slot_agendas", "slot_services", "idx_string", "idx_reference", "idx_token"] {
            store.analyze(table).await?;
        }
    }
    Ok(out)
}

/// `cupola agenda …`.
#[derive(Debug, clap::Args)]
pub struct AgendaArgs {
    #[command(subcommand)]
    pub command: AgendaCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AgendaCommand {
    /// Generate (or regenerate) the slots of agendas from their templates.
    Generate {
        /// The store.
        #[arg(long, env = "CUPOLA_DATABASE_URL", default_value = "sqlite://cupola.db")]
        database_url: String,
        /// Base URL of cupola's CodeSystems and extensions.
        #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
        canonical_base: String,
        /// First local day (Europe/Rome) to generate; default today.
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Schedule ids (repeatable); default every Schedule.
        #[arg(long = "schedule")]
        schedules: Vec<String>,
        /// Agendas generated at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
    },
}

pub async fn run(args: AgendaArgs) -> anyhow::Result<()> {
    match args.command {
        AgendaCommand::Generate { database_url, canonical_base, from, schedules, concurrency } => {
            let registry = std::sync::Arc::new(crate::fhir::names::registry(&canonical_base));
            let pool = concurrency.max(1) as u32 + 1;
            let store = Store::connect(&database_url, pool, std::time::Duration::from_secs(30), registry).await?;
            let from = from.unwrap_or_else(|| chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive());
            let started = Instant::now();
            let r = generate_all(&store, &canonical_base, from, schedules, concurrency).await?;
            println!(
                "{} agendas: {} slots created, {} kept, {} removed, {} held by appointments ({:.1} s)",
                r.agendas,
                r.created,
                r.kept,
                r.removed,
                r.held.len(),
                started.elapsed().as_secs_f64()
            );
            for h in &r.held {
                println!("  held: {h}");
            }
            Ok(())
        }
    }
}
