//! `cupola bench`: a load generator, run as its own process against a running
//! gateway. Filled in with the benchmark work.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// FHIR base URL of the gateway under test.
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    pub base: String,
}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
