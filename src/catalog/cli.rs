//! `cupola catalog …`: the catalog tools.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
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
    /// idempotent; prints what it created, updated and left unchanged, and the codes a
    /// CSV (the whole catalog) no longer lists, now retired.
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

    /// The day the file takes effect (`YYYY-MM-DD`): codes a CSV no longer lists are
    /// retired from this day, their open tariff ending the day before. Default: today
    /// (Europe/Rome).
    #[arg(long)]
    pub effective_date: Option<NaiveDate>,
}

/// Runs a `cupola catalog` command: the report on stdout; when the file is refused,
/// the reasons (with line numbers) on stderr and exit status 1.
pub async fn run(args: CatalogArgs) -> anyhow::Result<()> {
    match args.command {
        CatalogCommand::Import(a) => {
            let registry = Arc::new(crate::fhir::names::registry(&a.canonical_base));
            let store = Store::connect(&a.database_url, 2, Duration::from_secs(5), registry).await?;
            let imported = match a.effective_date {
                Some(day) => super::import_as_of(&store, &a.canonical_base, &a.file, day).await,
                None => super::import(&store, &a.canonical_base, &a.file).await,
            };
            match imported {
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
