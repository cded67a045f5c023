//! `cupola-bench booking`: sustained bookings per second through `$book` over HTTP
//! (each client a booking point booking free slots one after another, tokens,
//! visibility, audit and the booking rules on), then `$find` latency, on each
//! backend; on PostgreSQL the same number of pgbench clients replay the writes of
//! one booking (`bench/pgbench-book.sql`) in the same run, in slices taken in turn with
//! the measured bookings (`--rounds`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::cpu::CpuCost;
use super::load::{Conn, PhaseFigures};
use super::rows::{per_booking, print_rows, row_counts, rows_written};
use super::server::{BenchDb, Gateway};
use super::slices::{Slices, Tallied};
use cupola::access::Access;
use cupola::store::Store;

/// Patients the bookings cycle through (each exists: `agendas` creates them).
pub(crate) const PATIENTS: usize = 20_000;

/// The `$book` Parameters of the `n`th booking, on `slot`: one of the patients
/// `agendas` creates, in turn.
pub(crate) fn book_body(slot: &str, n: usize) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-resource",
        "resource": {"resourceType": "Appointment", "status": "proposed",
            "slot": [{"reference": format!("Slot/{slot}")}],
            "participant": [{"actor": {"reference": format!("Patient/bench-{}", n % PATIENTS)}, "status": "accepted"}]}}]})
}

const BASE: &str = "http://example.org/cupola";

#[derive(Debug, Clone, clap::Args)]
pub struct BookingArgs {
    /// Concurrent booking points (and pgbench clients).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// Backends: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// Agendas to book into (each 5-minute slots round the clock).
    #[arg(long, default_value_t = 16)]
    pub agendas: usize,
    /// Days of slots per agenda.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// Slices each of pgbench's run and of the measured bookings is cut into, run in
    /// turn (pgbench, bookings, pgbench, …), so that the machine's drift over the run
    /// weighs on both alike; 1: pgbench's whole run, then the bookings.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

/// What one backend measured.
#[derive(Debug, Clone, Default)]
pub struct BookingFigures {
    pub backend: String,
    pub book: PhaseFigures,
    pub find: PhaseFigures,
    pub pgbench_tps: Option<f64>,
    /// The machine's CPU per booking, and per pgbench transaction.
    pub book_cpu: Option<CpuCost>,
    pub pgbench_cpu: Option<CpuCost>,
    /// Rows per booking in each table, written by the gateway's bookings and by
    /// pgbench's (PostgreSQL).
    pub rows: Option<Rows>,
    pub pgbench_rows: Option<Rows>,
}

/// Rows added per booking, by table (index tables and `resources` by resource type too:
/// `idx_token:Appointment`).
pub type Rows = BTreeMap<String, f64>;

pub async fn run(args: BookingArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for backend in &args.backends {
        // pgbench replays a booking's writes on a database of its own, in slices
        // between the gateway's (see `measure`).
        let pgbench = match backend.as_str() {
            "postgres" => Some(BenchDb::create("postgres", &args.pg_url).await?),
            _ => None,
        };
        let db = BenchDb::create(backend, &args.pg_url).await?;
        let measured = measure(&args, &db.url, pgbench.as_ref().map(|p| p.url.clone())).await;
        db.drop_db().await;
        let pgbench_rows = match (&pgbench, &measured) {
            (Some(p), Ok(_)) => per_booking(&BTreeMap::new(), &row_counts(&p.url).await?),
            _ => None,
        };
        if let Some(p) = pgbench {
            p.drop_db().await;
        }
        let mut f = measured?;
        f.backend = backend.clone();
        f.pgbench_rows = pgbench_rows;
        print_rows(&f);
        print_rates(&f);
        all.push(f);
    }
    Ok(())
}

/// The CPU per booking against pgbench's, and the rates and latencies of `$book` and `$find`.
fn print_rates(f: &BookingFigures) {
    if let (Some(b), Some(p)) = (f.book_cpu, f.pgbench_cpu) {
        println!(
            "{}: machine CPU {:.2} ms per booking (the gateway's own {}), {:.2} ms per pgbench transaction: {:.0} % (steal {:.0} %, {:.0} %)",
            f.backend,
            b.ms_per_op,
            f.book.gateway_cpu_ms.map_or("not measured".to_string(), |g| format!("{g:.2} ms")),
            p.ms_per_op,
            100.0 * p.ms_per_op / b.ms_per_op,
            100.0 * b.steal,
            100.0 * p.steal
        );
    }
    println!(
        "{}: $book {:.0}/s (median {:.1} ms, p99 {:.1} ms, {} errors){}; $find median {:.1} ms, p99 {:.1} ms ({:.0}/s, {} errors)",
        f.backend,
        f.book.per_second,
        f.book.median_ms,
        f.book.p99_ms,
        f.book.errors,
        f.pgbench_tps
            .map(|t| format!(", pgbench {t:.0} tps: {:.0} %", 100.0 * f.book.per_second / t))
            .unwrap_or_default(),
        f.find.median_ms,
        f.find.p99_ms,
        f.find.per_second,
        f.find.errors,
    );
}

/// Agendas of 5-minute slots round the clock, from tomorrow, of one provider, with
/// the service's tariff (so that each booking prices its ticket); returns the slot ids.
pub(super) async fn agendas(args: &BookingArgs, url: &str) -> anyhow::Result<Vec<String>> {
    let registry = Arc::new(cupola::fhir::names::registry(BASE));
    let store = Store::connect(url, 3, Duration::from_secs(30), registry).await?;
    let sessions: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| {
            json!({"url": "session", "extension": [
                {"url": "day", "valueCode": d}, {"url": "start", "valueTime": "00:00:00"},
                {"url": "end", "valueTime": "23:55:00"}, {"url": "slotMinutes", "valueInteger": 5}]})
        })
        .collect();
    let mut parts = sessions;
    parts.push(json!({"url": "horizonDays", "valueInteger": args.days}));
    let list: Vec<(String, Value)> = (0..args.agendas)
        .map(|n| {
            let id = format!("bench-{n}");
            let s = json!({"resourceType": "Schedule", "id": id, "active": true,
                "extension": [{"url": format!("{BASE}/StructureDefinition/agenda-template"), "extension": parts}],
                "serviceType": [{"coding": [{"system": format!("{BASE}/CodeSystem/catalog"), "code": "89.52"}]}],
                "actor": [{"reference": "HealthcareService/bench-ecg"}]});
            (id, s)
        })
        .collect();
    let ids: Vec<String> = list.iter().map(|(id, _)| id.clone()).collect();
    let mut tx = store.begin().await?;
    // A provider with its code, so that each booking also writes its message.
    let provider = json!({"resourceType": "Organization", "id": "galliera", "name": "E.O. Ospedali Galliera",
        "identifier": [{"system": format!("{BASE}/sid/provider"), "value": "galliera"}]});
    store.insert_many_with_ids(&mut tx, "Organization", vec![("galliera".into(), provider)]).await?;
    let service = json!({"resourceType": "HealthcareService", "id": "bench-ecg",
        "providedBy": {"reference": "Organization/galliera"}});
    store.insert_many_with_ids(&mut tx, "HealthcareService", vec![("bench-ecg".into(), service)]).await?;
    let tariff = json!({"resourceType": "ChargeItemDefinition", "id": "tariff-89-52-20200101",
        "url": format!("{BASE}/ChargeItemDefinition/tariff-89-52-20200101"),
        "identifier": [{"system": format!("{BASE}/CodeSystem/catalog"), "value": "89.52"}], "status": "active",
        "code": {"coding": [{"system": format!("{BASE}/CodeSystem/catalog"), "code": "89.52"}]},
        "effectivePeriod": {"start": "2020-01-01"},
        "propertyGroup": [{"priceComponent": [{"type": "base", "amount": {"value": cupola::catalog::decimal_value("11.62".parse()?), "currency": "EUR"}}]}]});
    store.insert_many_with_ids(&mut tx, "ChargeItemDefinition", vec![("tariff-89-52-20200101".into(), tariff)]).await?;
    store.insert_many_with_ids(&mut tx, "Schedule", list).await?;
    // The patients booked for: a booking's patient must exist (referential integrity).
    let patients: Vec<(String, Value)> = (0..PATIENTS)
        .map(|n| (format!("bench-{n}"), json!({"resourceType": "Patient", "id": format!("bench-{n}")})))
        .collect();
    store.insert_many_with_ids(&mut tx, "Patient", patients).await?;
    tx.commit().await?;
    let from = (chrono::Utc::now() + chrono::Duration::days(1)).with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let report = cupola::agenda::generate_all(&store, BASE, from, ids, 2).await?;
    tracing::info!(slots = report.created, "agendas generated");
    let mut tx = store.begin().await?;
    let slots = store.search_ids_in(&mut tx, &Access::gateway(), "Slot", &[], 1_000_000).await?;
    tx.commit().await?;
    Ok(slots)
}

async fn measure(args: &BookingArgs, url: &str, pgbench: Option<String>) -> anyhow::Result<BookingFigures> {
    let slots = Arc::new(agendas(args, url).await?);
    let gateway = Gateway::start(url).await?;
    let tokens = Arc::new(gateway.tokens(args.clients)?);
    let length = Duration::from_secs(args.seconds);
    let next = Arc::new(AtomicUsize::new(0));
    let load = Load { base: gateway.base.clone(), tokens, clients: args.clients, slots, next };
    let pid = gateway.pid();
    let url = url.to_string();
    let script = pgbench.as_ref().map(|_| super::pgbench::book_script()).transpose()?;
    let mut slices = Slices::new(length, args.rounds, pid)?;
    let (book, find, book_cpu, pgbench_figures, rows) = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            // Warm-up, then the measured phase.
            load.phase(Duration::from_secs(3), Phase::Book).await?;
            let store = analyzed(&url).await?;
            let postgres = url.starts_with("postgres");
            let rows_before = if postgres { Some(row_counts(&url).await?) } else { None };
            // The measured bookings, and pgbench's run, in alternate slices.
            book_in_slices(&load, &mut slices, pgbench.as_deref().zip(script.as_deref())).await?;
            let Tallied { phase: book, machine: book_cpu, pgbench: pgbench_figures } = slices.done();
            let rows = rows_written(rows_before, &url).await?;
            // What autovacuum does after such a burst of writes (the booked slots
            // moved into `resources`), so that `$find` is planned on today's tables.
            for table in INDEXED.into_iter().chain(["slot_grid"]) {
                store.analyze(table).await?;
            }
            drop(store);
            let start = Instant::now();
            let (h, e) = load.phase(length, Phase::Find).await?;
            let find = PhaseFigures::of(&h, e, start.elapsed());
            Ok::<_, anyhow::Error>((book, find, book_cpu, pgbench_figures, rows))
        })
    })
    .await??;
    let (pgbench_tps, pgbench_cpu) = match pgbench_figures {
        Some((tps, cpu)) => (Some(tps), cpu),
        None => (None, None),
    };
    Ok(BookingFigures { book, find, book_cpu, rows, pgbench_tps, pgbench_cpu, ..Default::default() })
}

/// The tables whose planner statistics are taken again around the phases.
const INDEXED: [&str; 6] = ["resources", "resource_versions", "idx_token", "idx_date", "idx_reference", "idx_string"];

/// A store on `url` once its index tables are analysed, as autovacuum does in a
/// store in use (their statistics match their size): the generation analysed
/// index tables that were nearly empty, and plans cached on those figures (a
/// sequential scan of `idx_token` for an update's index rows) would stay until the
/// next ANALYZE.
async fn analyzed(url: &str) -> anyhow::Result<Store> {
    let registry = Arc::new(cupola::fhir::names::registry(BASE));
    let store = Store::connect(url, 1, Duration::from_secs(30), registry).await?;
    for table in INDEXED {
        store.analyze(table).await?;
    }
    Ok(store)
}

/// The clients of a measurement and the slots they book.
struct Load {
    base: String,
    tokens: Arc<Vec<String>>,
    clients: usize,
    slots: Arc<Vec<String>>,
    /// The next slot to book, shared by every phase.
    next: Arc<AtomicUsize>,
}

impl Load {
    /// One phase of `what` for `length`: its latencies and errors.
    async fn phase(&self, length: Duration, what: Phase) -> anyhow::Result<(Histogram<u64>, u64)> {
        phase_latencies(&self.base, &self.tokens, self.clients, length, &self.slots, &self.next, what).await
    }
}

/// The measured bookings in `slices`, each after a slice of pgbench's run of
/// `pgbench` (its database and script) when there is one.
async fn book_in_slices(load: &Load, slices: &mut Slices, pgbench: Option<(&str, &str)>) -> anyhow::Result<()> {
    for _ in 0..slices.rounds() {
        if let Some((db, script)) = pgbench {
            slices.pgbench(db, load.clients, script).await?;
        }
        let mark = slices.mark();
        let (h, e) = load.phase(slices.slice(), Phase::Book).await?;
        slices.add(mark, h, e)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Book,
    Find,
}

/// The latencies (µs) and errors of `clients` sending `what` for `length`.
async fn phase_latencies(
    base: &str,
    tokens: &Arc<Vec<String>>,
    clients: usize,
    length: Duration,
    slots: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    what: Phase,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let path = url::Url::parse(base)?.path().trim_end_matches('/').to_string();
    let start = Instant::now();
    let today = chrono::Utc::now().date_naive();
    let find = format!(
        "{path}/Appointment/$find?start={today}&end={}&service-type=89.52&_count=1",
        today + chrono::Duration::days(60)
    );
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, path, slots, next, find) =
            (base.to_string(), path.clone(), slots.clone(), next.clone(), find.clone());
        let token = tokens.get(c).cloned().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&base, &token).await?;
            let mut hist = Histogram::<u64>::new(3)?;
            let mut errors = 0u64;
            while start.elapsed() < length {
                let (method, target, body, ok) = match what {
                    Phase::Book => {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = slots.get(n) else { break };
                        let body = book_body(slot, n);
                        ("POST", format!("{path}/Appointment/$book"), Some(body.to_string()), 201)
                    }
                    Phase::Find => ("GET", find.clone(), None, 200),
                };
                let t = Instant::now();
                let status = conn.send(method, &target, body).await.unwrap_or(0);
                let _ = hist.record(t.elapsed().as_micros() as u64);
                if status != ok {
                    errors += 1;
                }
            }
            Ok::<_, anyhow::Error>((hist, errors))
        }));
    }
    super::load::merged_latencies(tasks).await
}
