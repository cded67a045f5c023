//! `cupola-bench`: the load generator's command line (see BENCHMARKS.md).

// Functions stay under clippy.toml's threshold (80 lines); CI denies warnings.
#![warn(clippy::too_many_lines)]

use clap::Parser;

// As the gateway's: the clients allocate a JSON tree per request too.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cupola::telemetry::init();
    cupola_bench::run(cupola_bench::BenchArgs::parse()).await
}
