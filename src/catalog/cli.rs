//! `cupola catalog …`: the catalog tools.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::store::Store;

/// `cupola catalog`.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum CatalogCommand {
    /// Import a catalog file (CSV, or a FHIR Bundle JSON) into the store: all or nothing,
    /// idempotent; prints what it created, updated and left unchanged.
    Import(ImportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The catalog: CSV with header `code,display,branch,kind,access,tariff,valid_from[,national]`
    /// (see README.md), or a FHIR Bundle (collection or transaction) of catalog resources.
    pub file: PathBuf,

    /// The store to import into: `sqlite://FILE` or `postgres://…`.
    #[arg(long, env = "CUPOLA_DATABASE_URL", default_value = "sqlite://cupola.db")]
    pub database_url: String,

    /// Base URL of the catalog's CodeSystems, ValueSets and definitions (as for `serve`).
    #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
    pub canonical_base: String,
}

/// Runs a `cupola catalog` command: the report on stdout; when the file is refused,
/// the reasons (with line numbers) on stderr and exit status 1.
pub async fn run(args: CatalogArgs) -> anyhow::Result<()> {
    match args.command {
        CatalogCommand::Import(a) => {
            let registry = Arc::new(crate::fhir::names::registry(&a.canonical_base));
            let store = Store::connect(&a.database_url, 2, Duration::from_secs(5), registry).await?;
            match super::import(&store, &a.canonical_base, &a.file).await {
                Ok(report) => {
                    print!("{report}");
                    Ok(())
                }
                Err(e) => {
                    // The reasons alone (no backtrace): they are the user's to act on.
                    eprintln!("{e}\nnothing was imported from {}", a.file.display());
                    std::process::exit(1)
                }
            }
        }
    }
}
