//! `cupola`: the gateway (`serve`) and its tools (`token`, `catalog`,
//! `settlement`, `recovery` …).

// Functions stay under clippy.toml's threshold (80 lines): CI keeps it.
#![warn(clippy::too_many_lines)]

use clap::{Parser, Subcommand};

// The gateway allocates a JSON tree per request; glibc's malloc took ~20 % of its CPU.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cupola",
    version,
    about = "FHIR R4 integration gateway for a regional healthcare booking centre (CUP)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    // Boxed: the settings outweigh every other command's arguments.
    Serve(Box<cupola::Config>),
    /// Mint a bearer token signed with the development key; prints only the token.
    Token(cupola::auth::TokenArgs),
    /// Moved: the load generator is its own binary, `cupola-bench` (see BENCHMARKS.md).
    #[command(hide = true, disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The regional catalog of services: `catalog import FILE` (CSV or FHIR Bundle).
    Catalog(cupola::catalog::CatalogArgs),
    /// Load the demo region into an empty store (as `serve --demo` does).
    Demo(cupola::demo::DemoArgs),
    /// Agendas: generate slots from templates.
    Agenda(cupola::agenda::AgendaArgs),
    /// Settle a month's tickets with each provider organisation (PaymentReconciliation, CSV).
    Settlement(cupola::billing::cli::SettlementArgs),
    /// Credit recovery: move unpaid tickets to their next notice or to collection.
    Recovery(cupola::billing::cli::RecoveryArgs),
    /// Write each provider's daily appointment list of a day to the outbox.
    DispatchLists(cupola::messaging::cli::DispatchArgs),
    /// A provider system on RabbitMQ: acknowledges its messages, reports arrivals, visits, no-shows.
    ProviderSim(SimArgs),
    /// Providers on the broker: `provider add CODE` creates its user, permissions and queue.
    Provider {
        #[command(subcommand)]
        command: ProviderCommand,
    },
    /// Exit 0 when the gateway answers ready (for container health checks).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:8080/health/ready")]
        url: String,
    },
}

#[derive(Subcommand)]
enum ProviderCommand {
    /// The provider's broker user (reads only its queue, writes only to the inbound exchange) and its queue.
    Add(cupola::messaging::cli::ProviderAddArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    #[command(flatten)]
    sim: cupola::messaging::cli::SimArgs,
    /// Base URL of cupola's CodeSystems (the event codes).
    #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
    canonical_base: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cupola::telemetry::init();
    match Cli::parse().command {
        Command::Serve(config) => serve(*config).await,
        Command::Token(args) => {
            println!("{}", cupola::auth::mint(&args.auth, &args.request())?);
            Ok(())
        }
        Command::Bench { args } => bench_moved(&args),
        Command::Catalog(args) => cupola::catalog::run(args).await,
        Command::Demo(args) => cupola::demo::run(args).await,
        Command::Agenda(args) => cupola::agenda::run(args).await,
        Command::Settlement(args) => cupola::billing::cli::settlement(args).await,
        Command::Recovery(args) => cupola::billing::cli::recovery(args).await,
        Command::DispatchLists(args) => cupola::messaging::cli::dispatch(args).await,
        Command::ProviderSim(args) => cupola::messaging::cli::provider_sim(args.sim, &args.canonical_base).await,
        Command::Provider { command: ProviderCommand::Add(args) } => {
            let code = args.code.clone();
            let url = cupola::messaging::cli::provider_add(args).await?;
            println!("provider {code}: broker user, permissions and queue ready; its system connects with {url}");
            Ok(())
        }
        Command::Health { url } => cupola::messaging::cli::health(&url).await,
    }
}

/// `cupola bench …`: the load generator is its own binary now; says how to run it.
fn bench_moved(args: &[String]) -> ! {
    let sub = if args.is_empty() { "<subcommand>".to_string() } else { args.join(" ") };
    eprintln!(
        "error: `cupola bench` moved to its own binary, `cupola-bench`: run\n  \
         cargo run --release -p cupola-bench -- {sub}\n\
         or `cupola-bench {sub}` after `cargo build --release -p cupola -p cupola-bench` (see BENCHMARKS.md)"
    );
    std::process::exit(2)
}

async fn serve(config: cupola::Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}; choose another --listen address", config.listen))?;
    let bound = listener.local_addr()?;
    let state = cupola::api::build_state(config, bound).await?;
    let background = cupola::background::start(&state);
    let served = cupola::api::run(listener, state, shutdown_signal()).await;
    background.stop();
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
