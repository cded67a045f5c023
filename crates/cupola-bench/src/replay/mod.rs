//! `cupola-bench replay --scale S`: a year of the region (Liguria 2011 at scale 1)
//! driven over HTTP through a running gateway, as the booking points, payment points,
//! providers and administrators do — then checked through the API and reported
//! (docs/replay.md).

mod api;
mod checks;
mod footprint;
mod later;
pub mod plan;
mod report;
mod run;
mod setup;
mod sim;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use checks::Check;
pub use setup::load_demo;
pub use sim::remove_broker_objects;

use super::server::{BenchDb, Gateway};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The share of the year to replay: 1.0 = Liguria's 2011 (3,732,784 bookings).
    #[arg(long, default_value_t = 0.001)]
    pub scale: f64,
    /// The plan's seed: the same seed, the same year.
    #[arg(long, default_value_t = 2011)]
    pub seed: u64,
    /// Clients sending the plan's steps at once.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// PostgreSQL server for the replay's database (one is created and dropped after).
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// The broker; the replay's exchange and queues are its own, removed at the end.
    #[arg(long, env = "CUPOLA_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// The region's code maps and rules, given to the gateway.
    #[arg(long, default_value = "mappings")]
    pub mappings_dir: PathBuf,
    /// Where the report (report.md and its SVG charts) is written.
    #[arg(long, default_value = "target/replay")]
    pub out: PathBuf,
    /// Places in the year's agendas per booking the plan makes.
    #[arg(long, default_value_t = 1.5)]
    pub headroom: f64,
    /// The gateway's database connections (`cupola serve --db-max-connections`): the
    /// clients and the providers' acknowledgements at once need more than its default.
    #[arg(long, default_value_t = 16)]
    pub db_connections: u32,
    /// No-shows reported by the providers through `$process-message` (slow at present:
    /// see docs/replay.md); by default the administrator records them.
    #[arg(long)]
    pub provider_no_shows: bool,
    /// How long to wait, after the last step, for the providers' acknowledgements.
    #[arg(long, default_value_t = 120)]
    pub ack_wait_secs: u64,
    /// Keeps the replay's database at the end (its URL is printed) for inspection;
    /// drop it with `dropdb` when done.
    #[arg(long)]
    pub keep_database: bool,
}

impl ReplayArgs {
    /// The defaults, at `scale`.
    pub fn at_scale(scale: f64) -> ReplayArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: ReplayArgs,
        }
        let mut a = Wrap::parse_from(["replay"]).args;
        a.scale = scale;
        a
    }
}

/// A gateway the replay drives: its FHIR base, the development key its tokens are
/// signed with, its database, and the broker exchange it publishes to.
pub struct Target {
    pub base: String,
    pub auth: cupola::config::AuthConfig,
    pub database_url: String,
    pub exchange: String,
}

/// What a replay leaves: the report and the checks.
#[derive(Debug)]
pub struct Outcome {
    pub report: PathBuf,
    pub checks: Vec<Check>,
    pub bookings: u64,
    pub payments: u64,
    pub bytes_per_booking: f64,
    pub bookings_per_second: f64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// A fresh database with the demo region, `cupola serve` on it publishing to an
/// exchange of the replay's own, the replay, and the database dropped.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let db = BenchDb::create("postgres", &args.pg_url).await?;
    let outcome = on_fresh_db(&args, &db.url).await;
    if args.keep_database {
        println!("the replay's database is kept: {}", db.url);
    } else {
        db.drop_db().await;
    }
    let outcome = outcome?;
    println!("report: {}", outcome.report.display());
    for c in &outcome.checks {
        println!("{}: {} ({})", c.name, if c.passed { "passed" } else { "FAILED" }, c.detail);
    }
    anyhow::ensure!(outcome.passed(), "a check failed: see {}", outcome.report.display());
    Ok(())
}

async fn on_fresh_db(args: &ReplayArgs, url: &str) -> anyhow::Result<Outcome> {
    let exchange = format!("cupola-replay-{}-{}", std::process::id(), args.seed);
    let mappings = args.mappings_dir.canonicalize().with_context(|| {
        format!("no mappings at {}: run from the repository or pass --mappings-dir", args.mappings_dir.display())
    })?;
    setup::load_demo(url, &mappings).await?;
    let flags: Vec<String> = vec![
        "--amqp-url".into(),
        args.amqp_url.clone(),
        "--amqp-exchange".into(),
        exchange.clone(),
        "--mappings-dir".into(),
        mappings.display().to_string(),
        "--db-max-connections".into(),
        args.db_connections.to_string(),
    ];
    let gateway = Gateway::start_with(url, &flags).await?;
    let target =
        Target { base: gateway.base.clone(), auth: gateway.auth.clone(), database_url: url.to_string(), exchange };
    replay(&target, args).await
}

/// The year of `args` through the gateway of `target` (whose store holds the demo
/// region): setup, the run with its progress, the checks and the report.
pub async fn replay(target: &Target, args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let setup_start = Instant::now();
    let mix = plan::Mix::shipped()?;
    let plan = Arc::new(plan::Plan::new(&mix, args.scale, args.seed));
    tracing::info!(bookings = plan.prescriptions.len(), events = plan.events.len(), "the year's plan drawn");
    let stats = Arc::new(stats::Stats::new());
    let api = Arc::new(api::Api::new(&target.base, target.auth.clone(), stats.clone())?);
    let region = setup::Region::read(&api).await?;
    // The simulators own the exchange's queues: they are removed whatever happens next.
    let sim = sim::Sim::start(api.clone(), &args.amqp_url, &target.exchange, &region.providers).await?;
    let prepared = async {
        let capacity = setup::size_agendas(&api, &region, &plan, args.headroom).await?;
        setup::patients(&api, &region, &plan).await?;
        setup::cancel_showcase(&api).await?;
        Ok::<_, anyhow::Error>((capacity, footprint::Footprint::take(&target.database_url).await?))
    }
    .await;
    let (capacity, db_before) = match prepared {
        Ok(p) => p,
        Err(e) => {
            sim.stop().await;
            return Err(e);
        }
    };
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let mut run = run::Run::new(api.clone(), plan.clone(), region);
    run.provider_no_shows = args.provider_no_shows;
    let run = Arc::new(run);
    let result = drive(&run, args).await;
    let db_after = footprint::Footprint::take(&target.database_url).await;
    sim.stop().await;
    let (run_secs, checks) = result?;
    let figures = report::Figures {
        scale: args.scale,
        seed: args.seed,
        clients: args.clients,
        capacity,
        setup_secs,
        run_secs,
        db_before,
        db_after: db_after?,
        latencies: stats.latencies(),
        per_second: stats.per_second(),
        outbox: stats.outbox_samples(),
        checks,
    };
    outcome(args, &run, figures)
}

/// The plan's steps with the progress and the outbox sampled, then the
/// acknowledgements awaited and the checks: (the run's seconds, the checks).
async fn drive(run: &Arc<run::Run>, args: &ReplayArgs) -> anyhow::Result<(f64, Vec<Check>)> {
    let started = Instant::now();
    let total = run.plan.events.len();
    let watcher = {
        let api = run.api.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                api.stats.progress(total);
                if let Ok(s) = checks::outbox_sample(&api, api.stats.start.elapsed().as_secs_f64()).await {
                    api.stats.push_outbox(s);
                }
            }
        })
    };
    let driven = run.drive(args.clients).await;
    let run_secs = started.elapsed().as_secs_f64();
    run.api.stats.progress(total);
    let settled = checks::settle_outbox(&run.api, Duration::from_secs(args.ack_wait_secs)).await;
    watcher.abort();
    driven?;
    tracing::info!(outbox = ?settled?, "the outbox after the run");
    Ok((run_secs, checks::all(run).await?))
}

fn outcome(args: &ReplayArgs, run: &run::Run, figures: report::Figures) -> anyhow::Result<Outcome> {
    use std::sync::atomic::Ordering::Relaxed;
    let bookings = run.tally.booked.load(Relaxed) + run.tally.rebooked.load(Relaxed);
    let report = report::write(&args.out, run, &figures)?;
    Ok(Outcome {
        report,
        bookings,
        payments: run.tally.paid.load(Relaxed),
        bytes_per_booking: figures.bytes_per_booking(bookings),
        bookings_per_second: bookings as f64 / figures.run_secs.max(0.001),
        checks: figures.checks,
    })
}
