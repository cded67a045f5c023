//! `cupola-bench relay`: the outbox relay's throughput to the local RabbitMQ with
//! publisher confirms, against a bare publisher with confirms on the same broker
//! in the same run (1 KB messages, at most 500 unconfirmed).
//!
//! The bare publisher publishes `--messages` messages to an exchange and queue of
//! its own. The relay publishes the same number from the product's outbox table of
//! a fresh database (the rows written with one statement, as bookings would have
//! written them one by one), through `messaging::relay` exactly as the gateway
//! runs it; the time runs from its start to the last row marked sent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use super::server::BenchDb;
use cupola::messaging::Topology;
use cupola::store::{Dialect, Store};

#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Bytes per message body.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Unconfirmed messages the bare publisher keeps in flight.
    #[arg(long, default_value_t = 500)]
    pub in_flight: usize,
    #[arg(long, env = "CUPOLA_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Backends for the outbox: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "postgres,sqlite")]
    pub backends: Vec<String>,
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// Bookings for the end-to-end delay (0: not measured).
    #[arg(long, default_value_t = 1000)]
    pub bookings: usize,
    /// Bookings per second sent for the end-to-end delay (8 clients).
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
}

pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    if args.bookings > 0 {
        let db = BenchDb::create("postgres", &args.pg_url).await?;
        let measured = end_to_end(&args, &db.url).await;
        db.drop_db().await;
        let (median, p99, n, achieved) = measured?;
        println!(
            "postgres: $book returning → message in the provider's queue: median {median:.1} ms, p99 {p99:.1} ms \
             ({n} bookings, asked at {}/s, made at {achieved:.0}/s)",
            args.rate
        );
    }
    let bare = bare_publisher(&args).await?;
    println!(
        "bare publisher with confirms: {bare:.0} messages/s ({} × {} B, {} in flight)",
        args.messages, args.size, args.in_flight
    );
    for backend in &args.backends {
        let db = BenchDb::create(backend, &args.pg_url).await?;
        let measured = relay(&args, &db.url).await;
        db.drop_db().await;
        let rate = measured?;
        println!("{backend}: relay {rate:.0} messages/s: {:.0} % of the bare publisher", 100.0 * rate / bare);
    }
    Ok(())
}

async fn bare_publisher(args: &RelayArgs) -> anyhow::Result<f64> {
    let conn = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let t = Topology { exchange: format!("cupola-bench-bare-{}", std::process::id()), providers: vec!["bench".into()] };
    cupola::messaging::relay::declare(&ch, &t).await?;
    let body = vec![b'x'; args.size];
    let start = Instant::now();
    let mut pending = VecDeque::with_capacity(args.in_flight);
    for i in 0..args.messages {
        if pending.len() >= args.in_flight {
            if let Some(c) = pending.pop_front() {
                let _: lapin::publisher_confirm::Confirmation = c.await?;
            }
        }
        let props = BasicProperties::default().with_message_id(format!("m{i}").into()).with_delivery_mode(2);
        pending.push_back(
            ch.basic_publish(&t.exchange, "bench.appointment.booked", BasicPublishOptions::default(), &body, props)
                .await?,
        );
    }
    for c in pending {
        c.await?;
    }
    let rate = args.messages as f64 / start.elapsed().as_secs_f64();
    cleanup(&ch, &t).await;
    let _ = conn.close(0, "bench done").await;
    Ok(rate)
}

async fn cleanup(ch: &lapin::Channel, t: &Topology) {
    let queues = t.providers.iter().map(|p| t.provider_queue(p));
    for q in queues.chain([t.dead_letter_queue(), t.inbound_queue()]) {
        let _ = ch.queue_delete(&q, QueueDeleteOptions::default()).await;
    }
    for x in [t.exchange.clone(), t.dead_letter_exchange(), t.inbound_exchange()] {
        let _ = ch.exchange_delete(&x, ExchangeDeleteOptions::default()).await;
    }
}

async fn relay(args: &RelayArgs, url: &str) -> anyhow::Result<f64> {
    let registry = Arc::new(cupola::fhir::names::registry("http://example.org/cupola"));
    let store = Store::connect(url, 4, Duration::from_secs(30), registry).await?;
    let series = match store.dialect() {
        Dialect::Postgres => format!("SELECT g FROM generate_series(1, {}) AS s(g)", args.messages),
        Dialect::Sqlite => format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {}) SELECT g FROM s",
            args.messages
        ),
    };
    let body = "x".repeat(args.size);
    let sql = format!(
        "INSERT INTO outbox (message_id, provider, routing_key, event, focus, body, status, attempts, created_us) \
         SELECT 'm' || g, 'bench', 'bench.appointment.booked', 'appointment-booked', 'Appointment/x', '', \
         'pending', 0, 1 FROM ({series}) AS q"
    );
    let bodies = format!("INSERT INTO outbox_bodies (message_id, body) SELECT 'm' || g, '{body}' FROM ({series}) AS q");
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query(&sql).execute(&mut c).await?;
    sqlx::query(&bodies).execute(&mut c).await?;
    let t =
        Topology { exchange: format!("cupola-bench-relay-{}", std::process::id()), providers: vec!["bench".into()] };
    let wake = Arc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    let relay = tokio::spawn(cupola::messaging::relay::run_forever(
        store.clone(),
        args.amqp_url.clone(),
        Arc::new(t.clone()),
        wake,
        // Counted, and never scraped: the bench reads the outbox instead.
        Arc::new(cupola::metrics::Metrics::new(&[])?),
    ));
    loop {
        let sent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'").fetch_one(&mut c).await?;
        if sent as usize >= args.messages {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the relay sent {sent} of {} messages in 10 minutes", args.messages);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = args.messages as f64 / start.elapsed().as_secs_f64();
    relay.abort();
    let conn = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    cleanup(&conn.create_channel().await?, &t).await;
    let _ = conn.close(0, "bench done").await;
    Ok(rate)
}

/// The gateway (its own process, relay on) booking at `--rate`/s through `$book`
/// with 8 booking points; a consumer on the provider's queue times each message
/// from the moment its `$book` returned. (median ms, p99 ms, bookings).
/// The delay's median and p99 (ms), the bookings timed, and the booking rate reached.
async fn end_to_end(args: &RelayArgs, url: &str) -> anyhow::Result<(f64, f64, usize, f64)> {
    let setup = super::booking::BookingArgs {
        clients: 8,
        seconds: 0,
        backends: vec![],
        agendas: 8,
        days: ((args.bookings / (8 * 288)) + 2) as u32,
        pg_url: args.pg_url.clone(),
        rounds: 1,
    };
    let slots = super::booking::agendas(&setup, url).await?;
    let t =
        Topology { exchange: format!("cupola-bench-e2e-{}", std::process::id()), providers: vec!["galliera".into()] };
    let extra =
        vec!["--amqp-url".to_string(), args.amqp_url.clone(), "--amqp-exchange".to_string(), t.exchange.clone()];
    let gateway = super::server::Gateway::start_with(url, &extra).await?;
    let tokens = gateway.tokens(8)?;
    let conn = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    cupola::messaging::relay::declare(&ch, &t).await?;
    let (arrived, consuming) = time_arrivals(&ch, &t).await?;
    let booking = Instant::now();
    let returned = book_at_rate(args, &gateway.base, tokens, slots).await?;
    let expected = returned.len();
    let achieved = expected as f64 / booking.elapsed().as_secs_f64();
    let waited = Instant::now();
    while arrived.lock().map(|a| a.len()).unwrap_or_default() < expected && waited.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consuming.abort();
    let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
    if let Ok(a) = arrived.lock() {
        for (id, at) in &returned {
            if let Some(got) = a.get(id) {
                let _ = hist.record(got.saturating_duration_since(*at).as_micros() as u64);
            }
        }
    }
    // The gateway declared a queue for every provider of its mappings: all of them go.
    let t = Topology { providers: mapped_providers().unwrap_or_else(|| t.providers.clone()), ..t };
    cleanup(&ch, &t).await;
    let _ = conn.close(0, "bench done").await;
    Ok((
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.len() as usize,
        achieved,
    ))
}

/// When each appointment's first message reached the provider's queue, by
/// appointment id, filled in by the returned task until it is aborted.
type Arrivals = Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>;

async fn time_arrivals(ch: &lapin::Channel, t: &Topology) -> anyhow::Result<(Arrivals, tokio::task::JoinHandle<()>)> {
    use futures_util::StreamExt;
    let arrived: Arrivals = Arc::default();
    let mut consumer = ch
        .basic_consume(
            &t.provider_queue("galliera"),
            "bench",
            lapin::options::BasicConsumeOptions { no_ack: true, ..Default::default() },
            lapin::types::FieldTable::default(),
        )
        .await?;
    let seen = arrived.clone();
    let consuming = tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let now = Instant::now();
            let m: serde_json::Value = serde_json::from_slice(&d.data).unwrap_or_default();
            if let Some(focus) = m["entry"][0]["resource"]["focus"][0]["reference"].as_str() {
                if let Ok(mut s) = seen.lock() {
                    s.entry(focus.trim_start_matches("Appointment/").to_string()).or_insert(now);
                }
            }
        }
    });
    Ok((arrived, consuming))
}

/// `--bookings` `$book`s at `--rate`/s over the booking points' `tokens`, one slot
/// each; the id of each appointment booked and when its `$book` returned.
async fn book_at_rate(
    args: &RelayArgs,
    base: &str,
    tokens: Vec<String>,
    slots: Vec<String>,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let client = reqwest::Client::new();
    let returned: Arc<std::sync::Mutex<Vec<(String, Instant)>>> = Arc::default();
    let interval = Duration::from_secs_f64(8.0 / args.rate.max(1) as f64);
    let slots = Arc::new(slots);
    let mut tasks = Vec::new();
    for (c, token) in tokens.into_iter().enumerate() {
        let (client, base, slots, returned) = (client.clone(), base.to_string(), slots.clone(), returned.clone());
        let n = args.bookings;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            for i in (c..n).step_by(8) {
                tick.tick().await;
                let Some(slot) = slots.get(i) else { break };
                let body = super::booking::book_body(slot, i);
                let r = client
                    .post(format!("{base}/Appointment/$book"))
                    .bearer_auth(&token)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await?;
                let at = Instant::now();
                let out: serde_json::Value = r.json().await?;
                if let Some(id) = out["entry"][0]["resource"]["id"].as_str() {
                    if let Ok(mut v) = returned.lock() {
                        v.push((id.to_string(), at));
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let out = returned.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(out)
}

/// The providers of the mappings the gateway started with (`CUPOLA_MAPPINGS_DIR`, or
/// `mappings`), whose queues it declared.
fn mapped_providers() -> Option<Vec<String>> {
    let dir = std::env::var_os("CUPOLA_MAPPINGS_DIR").unwrap_or_else(|| "mappings".into());
    let checker = cupola::fhir::check::Checker::shared();
    let m = cupola::mappings::Mappings::load(std::path::Path::new(&dir), "http://example.org/cupola", &checker).ok()?;
    Some(m.providers.into_iter().map(|p| p.provider).collect())
}
