//! `cupola-bench`: measures the gateway over HTTP as clients see it. The gateway runs
//! as its own process (`cupola serve`, the `cupola` binary found next to this one or
//! given by `--gateway-bin`, on a fresh database); this process is the load
//! generator. On PostgreSQL the create throughput is compared with `pgbench`
//! replaying the statements a create really runs (`bench/pgbench-create.sql`), with
//! the same number of clients, in the same run. Figures go to BENCHMARKS.md.

// Functions stay under clippy.toml's threshold (80 lines); CI denies warnings.
#![warn(clippy::too_many_lines)]

mod billing;
mod booking;
mod console;
mod cpu;
mod load;
mod mix;
mod pgbench;
mod relay;
pub mod replay;
mod report;
mod rows;
mod server;
mod slices;
mod slots;
mod subscriptions;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use load::sample_patient;
pub use pgbench::{book_script as pgbench_book_script, script as pgbench_script};
pub use server::BenchDb;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "cupola-bench",
    version,
    about = "cupola's load generator: measures the gateway over HTTP (see BENCHMARKS.md)"
)]
pub struct BenchArgs {
    /// The gateway binary started for each measurement (`cupola serve`); default: `cupola`
    /// next to this executable (build both with `cargo build --release -p cupola -p cupola-bench`).
    #[arg(long, global = true, env = "CUPOLA_GATEWAY_BIN")]
    pub gateway_bin: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Run the benchmark on each backend and write BENCHMARKS.md.
    Run(RunArgs),
    /// Print the pgbench script that replays one Patient create.
    PgbenchScript,
    /// Print the pgbench script that replays one booking's writes.
    PgbenchBookScript,
    /// Bookings per second through `$book`, and `$find` latency, on each backend.
    Booking(booking::BookingArgs),
    /// A year of the region's agendas in PostgreSQL: generation time, and the first
    /// free slot of a service in a district over HTTP.
    Slots(slots::SlotArgs),
    /// Ticket payments per second through `POST PaymentNotice`, on each backend.
    Payments(billing::PaymentArgs),
    /// The settlement of a month of the region's volume, on each backend.
    Settlement(billing::SettlementArgs),
    /// The outbox relay's throughput to RabbitMQ against a bare publisher with confirms.
    Relay(relay::RelayArgs),
    /// Each console desk's time to ready in headless Chromium (median of ten loads).
    Console(console::ConsoleArgs),
    /// Notifications of a thousand subscriptions while booking at a steady rate:
    /// their delay, and the gateway's CPU per booking against no subscriptions.
    Subscriptions(subscriptions::SubscriptionArgs),
    /// A year of the region (Liguria 2011 at --scale 1) driven over HTTP through the
    /// gateway, checked through the API and reported (docs/replay.md).
    Replay(replay::ReplayArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Concurrent HTTP clients (and pgbench clients).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds each measured phase lasts.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Backends to measure: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// PostgreSQL server for the benchmark databases (one is created per run and dropped after).
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// Markdown file the figures are written to (its generated section is replaced).
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub write: String,
    /// Slices each of pgbench's run and of the measured creates is cut into, run in
    /// turn (pgbench, creates, pgbench, …), so that the machine's drift weighs on both
    /// alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

/// Figures of one backend.
#[derive(Debug, Clone, Default)]
pub struct BackendFigures {
    pub backend: String,
    pub create: load::PhaseFigures,
    pub read: load::PhaseFigures,
    pub search: load::PhaseFigures,
    /// A quarter each of creates, reads, updates and deletes (`mix`).
    pub mix: load::PhaseFigures,
    /// Resident memory of the gateway after the run, and its peak (kB).
    pub rss_kb: u64,
    pub peak_rss_kb: u64,
    /// pgbench transactions per second for the same rows (PostgreSQL only).
    pub pgbench_tps: Option<f64>,
    /// The machine's busy CPU time per pgbench transaction (ms).
    pub pgbench_cpu_ms: Option<f64>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    server::set_gateway_bin(args.gateway_bin);
    match args.command {
        BenchCommand::PgbenchScript => {
            print!("{}", pgbench::script());
            Ok(())
        }
        BenchCommand::Run(r) => run_all(r).await,
        BenchCommand::PgbenchBookScript => {
            print!("{}", pgbench::book_script()?);
            Ok(())
        }
        BenchCommand::Booking(b) => booking::run(b).await,
        BenchCommand::Slots(s) => slots::run(s).await,
        BenchCommand::Payments(p) => billing::payments(p).await,
        BenchCommand::Settlement(s) => billing::settlement(s).await,
        BenchCommand::Relay(r) => relay::run(r).await,
        BenchCommand::Console(c) => console::run(c).await,
        BenchCommand::Subscriptions(s) => subscriptions::run(s).await,
        BenchCommand::Replay(r) => replay::run(r).await,
    }
}

async fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let phase = Duration::from_secs(args.seconds);
    let mut all = Vec::new();
    for backend in &args.backends {
        tracing::info!(backend, clients = args.clients, seconds = args.seconds, "benchmark starting");
        // pgbench on a fresh database of its own with the gateway's schema, in slices
        // taken in turn with the gateway's creates (see `load::run_phases`).
        let pgbench = match backend.as_str() {
            "postgres" => Some(server::BenchDb::create("postgres", &args.pg_url).await?),
            _ => None,
        };
        let interleaved = pgbench.as_ref().map(|p| load::Interleaved { db: p.url.clone(), rounds: args.rounds });
        let db = server::BenchDb::create(backend, &args.pg_url).await?;
        let measured = measure(&db.url, args.clients, phase, interleaved).await;
        // The databases go whatever happened, so that a failed run leaves nothing behind.
        db.drop_db().await;
        if let Some(p) = pgbench {
            p.drop_db().await;
        }
        let mut figures = measured?;
        figures.backend = backend.clone();
        tracing::info!(?figures, "benchmark done");
        all.push(figures);
    }
    report::write(&args, &all)?;
    println!("{}", report::table(&all));
    Ok(())
}

/// The gateway on `database_url`, loaded by the clients; its memory read at the end.
async fn measure(
    database_url: &str,
    clients: usize,
    phase: Duration,
    pgbench: Option<load::Interleaved>,
) -> anyhow::Result<BackendFigures> {
    let gateway = server::Gateway::start(database_url).await?;
    // The clients run on one thread of their own: on 2 cores, a second one would
    // only compete with the gateway and the database for them.
    let base = gateway.base.clone();
    let pid = gateway.pid();
    let tokens = std::sync::Arc::new(gateway.tokens(clients)?);
    let mut figures = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(load::run_phases(&base, tokens, clients, phase, pid, pgbench))
    })
    .await??;
    (figures.rss_kb, figures.peak_rss_kb) = gateway.memory_kb();
    Ok(figures)
}
