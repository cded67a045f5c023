//! `cupola settlement` and `cupola recovery`: the month's settlement with the
//! providers and the credit-recovery run, from the command line (the same work as
//! the `$settlement` and `$recovery` operations).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::mappings::BillingRules;
use crate::store::Store;

/// Where the store and the rules are.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store.
    #[arg(long, env = "CUPOLA_DATABASE_URL", default_value = "sqlite://cupola.db")]
    pub database_url: String,
    /// Base URL of cupola's CodeSystems, extensions and identifier systems.
    #[arg(long, env = "CUPOLA_CANONICAL_BASE", default_value = "http://example.org/cupola")]
    pub canonical_base: String,
    /// The region's rules (`billing/rules.json` is read).
    #[arg(long, env = "CUPOLA_MAPPINGS_DIR", default_value = "mappings")]
    pub mappings_dir: PathBuf,
}

impl StoreArgs {
    async fn store(&self) -> anyhow::Result<Store> {
        let registry = Arc::new(crate::fhir::names::registry(&self.canonical_base));
        let store = Store::connect(&self.database_url, 4, std::time::Duration::from_secs(30), registry).await?;
        let rules = BillingRules::load(&self.mappings_dir.join("billing").join("rules.json"), &self.canonical_base)
            .map_err(|e| anyhow::anyhow!("{e}; fix the file and run again"))?;
        let settings = crate::booking::Settings {
            base: self.canonical_base.clone(),
            billing: Arc::new(rules),
            ..Default::default()
        };
        Ok(crate::booking::hooks::configured(store, settings))
    }
}

#[derive(Debug, clap::Args)]
pub struct SettlementArgs {
    /// The month to settle, `YYYY-MM` (Europe/Rome).
    #[arg(long)]
    pub period: String,
    /// Also write the settlement as CSV to this file (`-`: standard output).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, clap::Args)]
pub struct RecoveryArgs {
    /// Run as of this day (Europe/Rome); default today.
    #[arg(long)]
    pub date: Option<NaiveDate>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `cupola settlement --period 2026-10`: one PaymentReconciliation per provider,
/// stored; a summary (and CSV) printed.
pub async fn settlement(args: SettlementArgs) -> anyhow::Result<()> {
    let store = args.store.store().await?;
    let started = std::time::Instant::now();
    let (all, total) = super::settle(&store, &args.period).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let settlements: Vec<super::settlement::Settlement> = all.into_iter().map(|(s, _)| s).collect();
    let collected: rust_decimal::Decimal = settlements.iter().map(|s| s.collected).sum();
    for s in &settlements {
        println!(
            "{:<24} collected {:>12.2} EUR  fees {:>10.2} EUR  net {:>12.2} EUR",
            s.provider, s.collected, s.fees, s.net
        );
    }
    println!(
        "{} providers settled for {}: {:.2} EUR collected, payments of the period {:.2} EUR ({}), in {:.1} s",
        settlements.len(),
        args.period,
        collected,
        total,
        if collected == total { "reconciled" } else { "NOT reconciled: report this" },
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = args.csv {
        let text = super::settlement::csv(&args.period, &settlements);
        if path.as_os_str() == "-" {
            print!("{text}");
        } else {
            std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// `cupola recovery [--date D]`: moves each overdue ticket one stage and lists it.
pub async fn recovery(args: RecoveryArgs) -> anyhow::Result<()> {
    let store = args.store.store().await?;
    let day = args.date.unwrap_or_else(|| super::rome_day(crate::store::now_micros()));
    let steps = super::recover(&store, day).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for s in &steps {
        println!("Invoice/{}\t{}", s.invoice, s.stage);
    }
    println!("{} invoices moved on {day}", steps.len());
    Ok(())
}
