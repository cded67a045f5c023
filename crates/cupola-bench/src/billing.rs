//! `cupola-bench payments`: ticket payments per second through `POST PaymentNotice`
//! over HTTP, each client a payment point of its own (tokens, visibility, audit and
//! the payment rules on), on invoices made by real bookings through `$book`.
//!
//! `cupola-bench settlement`: the settlement of one month of the region's volume
//! (`--bookings`, default 300,000, a third of them paid) as `cupola settlement` runs
//! it. The month's bookings and payments are written straight into the tables the
//! gateway keeps them in (`ticket_lines`, `payments`, `payment_shares`): booking
//! 300,000 appointments through the API would take the machine most of an hour,
//! and the settlement reads only those tables.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::Value;

use super::load::{Conn, PhaseFigures};
use super::server::{BenchDb, Gateway};
use cupola::store::{Dialect, Store};

const BASE: &str = "http://example.org/cupola";

#[derive(Debug, Clone, clap::Args)]
pub struct PaymentArgs {
    /// Concurrent payment points.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of the measured phase (it ends earlier when every invoice is paid).
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Invoices booked (through `$book`, 8 clients) before the payments start.
    #[arg(long, default_value_t = 6000)]
    pub invoices: usize,
    /// Backends: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SettlementArgs {
    /// Bookings in the month.
    #[arg(long, default_value_t = 300_000)]
    pub bookings: usize,
    /// The month settled.
    #[arg(long, default_value = "2026-10")]
    pub period: String,
    /// Backends: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
}

pub async fn payments(args: PaymentArgs) -> anyhow::Result<()> {
    for backend in &args.backends {
        let db = BenchDb::create(backend, &args.pg_url).await?;
        let measured = measure_payments(&args, &db.url).await;
        db.drop_db().await;
        let (booked, f) = measured?;
        println!(
            "{backend}: {} invoices booked; payments {:.0}/s with {} payment points (median {:.1} ms, p99 {:.1} ms, {} requests, {} errors)",
            booked, f.per_second, args.clients, f.median_ms, f.p99_ms, f.requests, f.errors
        );
    }
    Ok(())
}

/// Books `args.invoices` appointments (one ticket each), then pays them.
async fn measure_payments(args: &PaymentArgs, url: &str) -> anyhow::Result<(usize, PhaseFigures)> {
    let setup = super::booking::BookingArgs {
        clients: 8,
        seconds: 0,
        backends: vec![],
        agendas: 8,
        days: ((args.invoices / (8 * 288)) + 2) as u32,
        pg_url: args.pg_url.clone(),
        rounds: 1,
    };
    let slots = Arc::new(super::booking::agendas(&setup, url).await?);
    let gateway = Gateway::start(url).await?;
    let booking_tokens = gateway.tokens(8)?;
    let pay_tokens = Arc::new(gateway.payment_tokens(args.clients)?);
    let started = Instant::now();
    let invoices = book_invoices(&gateway.base, &booking_tokens, &slots, args.invoices).await?;
    tracing::info!(invoices = invoices.len(), seconds = started.elapsed().as_secs(), "invoices booked");
    let (base, clients, length) = (gateway.base.clone(), args.clients, Duration::from_secs(args.seconds));
    let invoices = Arc::new(invoices);
    let booked = invoices.len();
    let figures = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(pay_phase(
            &base,
            &pay_tokens,
            clients,
            length,
            &invoices,
        ))
    })
    .await??;
    Ok((booked, figures))
}

/// `$book` of `n` slots by 8 booking points; the invoices made (id, amount owed).
async fn book_invoices(
    base: &str,
    tokens: &[String],
    slots: &Arc<Vec<String>>,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for token in tokens {
        let (client, base, token, slots, next) =
            (client.clone(), base.to_string(), token.clone(), slots.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = slots.get(i).filter(|_| i < n) else { break };
                let body = super::booking::book_body(slot, i);
                let r = client
                    .post(format!("{base}/Appointment/$book"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await?;
                let out: Value = r.json().await?;
                let invoice = out["entry"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| &e["resource"])
                    .find(|r| r["resourceType"] == "Invoice");
                if let Some(inv) = invoice {
                    made.push((
                        inv["id"].as_str().unwrap_or_default().to_string(),
                        inv["totalNet"]["value"].to_string(),
                    ));
                }
            }
            Ok::<_, anyhow::Error>(made)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn pay_phase(
    base: &str,
    tokens: &Arc<Vec<String>>,
    clients: usize,
    length: Duration,
    invoices: &Arc<Vec<(String, String)>>,
) -> anyhow::Result<PhaseFigures> {
    let path = url::Url::parse(base)?.path().trim_end_matches('/').to_string();
    let day = cupola::billing::rome_day(cupola::store::now_micros()).to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, path, next, invoices, day) =
            (base.to_string(), path.clone(), next.clone(), invoices.clone(), day.clone());
        let token = tokens.get(c).cloned().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&base, &token).await?;
            let mut hist = Histogram::<u64>::new(3)?;
            let mut errors = 0u64;
            while start.elapsed() < length {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((invoice, amount)) = invoices.get(i) else { break };
                let body = format!(
                    r#"{{"resourceType":"PaymentNotice","status":"active","identifier":[{{"system":"urn:x-bench:point-{c}","value":"P-{i}"}}],"request":{{"reference":"Invoice/{invoice}"}},"created":"{day}T10:00:00+01:00","payment":{{"identifier":{{"system":"{BASE}/sid/remittance","value":"pharmacy-{c}/{day}"}}}},"recipient":{{"reference":"Organization/ssr-liguria"}},"amount":{{"value":{amount},"currency":"EUR"}}}}"#
                );
                let t = Instant::now();
                let status = conn.send("POST", &format!("{path}/PaymentNotice"), Some(body)).await.unwrap_or(0);
                let _ = hist.record(t.elapsed().as_micros() as u64);
                if status != 201 {
                    errors += 1;
                }
            }
            Ok::<_, anyhow::Error>((hist, errors))
        }));
    }
    super::load::merged(tasks, start).await
}

pub async fn settlement(args: SettlementArgs) -> anyhow::Result<()> {
    for backend in &args.backends {
        let db = BenchDb::create(backend, &args.pg_url).await?;
        let measured = measure_settlement(&args, &db.url).await;
        db.drop_db().await;
        let (seed, first, second, providers, reconciled) = measured?;
        println!(
            "{backend}: {} bookings, {} payments seeded in {:.1} s; settlement of {} with {providers} providers: {:.2} s, again {:.2} s ({})",
            args.bookings,
            args.bookings / 3,
            seed.as_secs_f64(),
            args.period,
            first.as_secs_f64(),
            second.as_secs_f64(),
            if reconciled { "reconciled to the cent" } else { "NOT reconciled" }
        );
    }
    Ok(())
}

/// Seeds the month, then settles it twice; (seed time, first, second, providers, reconciled).
async fn measure_settlement(
    args: &SettlementArgs,
    url: &str,
) -> anyhow::Result<(Duration, Duration, Duration, usize, bool)> {
    let registry = Arc::new(cupola::fhir::names::registry(BASE));
    let store = Store::connect(url, 4, Duration::from_secs(60), registry).await?;
    let rules = cupola::mappings::BillingRules::load(std::path::Path::new("mappings/billing/rules.json"), BASE)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = cupola::booking::hooks::configured(
        store,
        cupola::booking::Settings { base: BASE.into(), billing: Arc::new(rules), ..Default::default() },
    );
    let (_, _, from_us, to_us) = cupola::billing::month(&args.period)
        .ok_or_else(|| anyhow::anyhow!("--period {} is not a month like 2026-10", args.period))?;
    let started = Instant::now();
    seed_month(&store, url, args.bookings, from_us, to_us).await?;
    let seed = started.elapsed();
    let t = Instant::now();
    let (all, total) = cupola::billing::settle(&store, &args.period).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let first = t.elapsed();
    let t = Instant::now();
    cupola::billing::settle(&store, &args.period).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let second = t.elapsed();
    let collected: rust_decimal::Decimal = all.iter().map(|(s, _)| s.collected).sum();
    Ok((seed, first, second, all.len(), collected == total && !total.is_zero()))
}

/// A month of bookings and payments, as the gateway records them: eight providers,
/// the channels in the seed's proportions (22 % call centre), one payment in three,
/// each a ticket of 11.62 to 36.15 EUR.
async fn seed_month(store: &Store, url: &str, n: usize, from_us: i64, to_us: i64) -> anyhow::Result<()> {
    let series = |count: usize| match store.dialect() {
        Dialect::Postgres => format!("SELECT g FROM generate_series(1, {count}) AS s(g)"),
        Dialect::Sqlite => {
            format!("WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count}) SELECT g FROM s")
        }
    };
    let span = (to_us - from_us - 1).max(1);
    let provider = "'prov-' || (g % 8)";
    let channel = "CASE WHEN g % 100 < 22 THEN 'call-centre' WHEN g % 100 < 40 THEN 'pharmacy' \
                   WHEN g % 100 < 90 THEN 'counter' ELSE 'web' END";
    let at = format!("{from_us} + (g * {span}) / {n}");
    let cents = "1162 + (g % 2454)";
    let statements = [
        format!(
            "INSERT INTO ticket_lines (charge_item, invoice, appointment, request, code, provider, tariff_cents, \
             share_cents, exemption, billable, missed, channel, point, booking_code, booked_us) \
             SELECT 'ci-' || g, 'inv-' || g, 'ap-' || g, NULL, '89.52', {provider}, {cents}, {cents}, NULL, 1, 0, \
             {channel}, 'point-' || (g % 700), NULL, {at} FROM ({}) AS q",
            series(n)
        ),
        format!(
            "INSERT INTO payments (point, reference, notice, invoice, amount_cents, channel, day, paid_us) \
             SELECT 'point-' || (g % 700), 'ref-' || g, 'pn-' || g, 'inv-' || (g * 3), {cents}, {channel}, \
             '2026-10-01', {at} FROM ({}) AS q",
            series(n / 3)
        ),
        format!(
            "INSERT INTO payment_shares (notice, invoice, provider, amount_cents) \
             SELECT 'pn-' || g, 'inv-' || (g * 3), {provider}, {cents} FROM ({}) AS q",
            series(n / 3)
        ),
    ];
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    for s in statements {
        tracing::info!(rows = n, "seeding the month");
        sqlx::query(&s).execute(&mut c).await?;
    }
    for table in ["ticket_lines", "payments", "payment_shares"] {
        store.analyze(table).await?;
    }
    Ok(())
}
