//! `cupola-bench subscriptions`: bookings at a steady rate through `$book` (tokens,
//! visibility, audit and the booking rules on, PostgreSQL) with a thousand active
//! id-only rest-hook subscriptions, two of which match each booking, delivered to a
//! receiver in this process: how long a notification takes from the change that
//! caused it to its arrival, and the gateway's CPU per booking against runs with no
//! subscription, alternated.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::booking::{agendas, BookingArgs};
use super::cpu::{process_seconds, thread_seconds};
use super::server::{BenchDb, Gateway};

const BASE: &str = "http://example.org/cupola";

#[derive(Debug, Clone, clap::Args)]
pub struct SubscriptionArgs {
    /// Active subscriptions (two per patient: a patient app and a GP platform).
    #[arg(long, default_value_t = 1000)]
    pub subscriptions: usize,
    /// Bookings per second, sent at a steady pace.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Seconds of bookings in each run.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Pairs of runs, with and without subscriptions, alternated.
    #[arg(long, default_value_t = 3)]
    pub pairs: u32,
    #[arg(long, env = "CUPOLA_BENCH_PG", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
    /// The subscriptions filter on patients nobody books: the matching alone is
    /// measured (no event is written or sent).
    #[arg(long)]
    pub match_none: bool,
}

/// One run's figures.
#[derive(Debug, Default)]
struct Run {
    subscribed: bool,
    booked: u64,
    errors: u64,
    /// Gateway CPU per booking, notification work included (ms).
    cpu_ms: f64,
    /// Events delivered, and expected (two per booking when subscriptions match).
    delivered: u64,
    expected: u64,
    /// From the event's change to its arrival (ms): median, p99, max.
    latency: Option<(f64, f64, f64)>,
}

pub async fn run(args: SubscriptionArgs) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for pair in 0..args.pairs {
        // Which goes first alternates, so that the machine's drift weighs on both.
        let order = if pair % 2 == 0 { [true, false] } else { [false, true] };
        for subscribed in order {
            let r = one(&args, subscribed).await?;
            print_run(&r);
            runs.push(r);
        }
    }
    summary(&runs);
    let floor = bare_sender(2 * args.rate, 2 * args.rate * args.seconds).await?;
    println!(
        "floor: a bare HTTP sender (one reqwest client, its own thread) posting an id-only notification: \
         {floor:.3} ms of CPU per notification, {:.2} ms per booking of two",
        2.0 * floor
    );
    Ok(())
}

/// The CPU (ms) one POST of a notification costs its sender: `n` posts at `rate`
/// a second to a receiver of this process, from a thread of their own (whose CPU
/// is read, the receiver's not counted) — the least a gateway pays per event.
async fn bare_sender(rate: u64, n: u64) -> anyhow::Result<f64> {
    let (hook, received) = receiver().await?;
    let at = cupola::fhir::meta::instant(chrono::Utc::now().timestamp_micros());
    let bundle = json!({"resourceType": "Bundle", "type": "history", "timestamp": at, "entry": [
        {"fullUrl": "urn:uuid:0", "resource": {"resourceType": "Parameters", "parameter": [
            {"name": "subscription", "valueReference": {"reference": format!("{BASE}/Subscription/x")}},
            {"name": "topic", "valueCanonical": format!("{BASE}/SubscriptionTopic/appointment-changed")},
            {"name": "status", "valueCode": "active"}, {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueString": "1"},
            {"name": "notification-event", "part": [{"name": "event-number", "valueString": "1"},
                {"name": "timestamp", "valueInstant": at},
                {"name": "focus", "valueReference": {"reference": format!("{BASE}/Appointment/x")}}]}]},
         "request": {"method": "GET", "url": "Subscription/x/$status"}, "response": {"status": "200"}},
        {"fullUrl": format!("{BASE}/Appointment/x"), "request": {"method": "PUT", "url": "Appointment/x"},
         "response": {"status": "200"}}]});
    let sent = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let client = reqwest::Client::new();
            let before = thread_seconds().unwrap_or(0.0);
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            for _ in 0..n {
                tick.tick().await;
                let r = client.post(&hook).header("content-type", "application/fhir+json").body(bundle.to_string());
                r.send().await?;
            }
            Ok(1000.0 * (thread_seconds().unwrap_or(0.0) - before) / n.max(1) as f64)
        })
    })
    .await??;
    drop(received);
    Ok(sent)
}

/// What the receiver got: each event's change time (µs) and arrival time (µs).
#[derive(Default)]
struct Received {
    events: Mutex<Vec<(i64, i64)>>,
}

async fn take(State(r): State<Arc<Received>>, body: String) -> axum::http::StatusCode {
    let now = chrono::Utc::now().timestamp_micros();
    let bundle: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let params = bundle["entry"][0]["resource"]["parameter"].as_array().cloned().unwrap_or_default();
    let mut got = r.events.lock().unwrap_or_else(|e| e.into_inner());
    for p in params.iter().filter(|p| p["name"] == "notification-event") {
        let at = p["part"].as_array().and_then(|ps| ps.iter().find(|x| x["name"] == "timestamp").cloned());
        let at = at.and_then(|x| x["valueInstant"].as_str().map(str::to_string)).unwrap_or_default();
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&at) {
            got.push((t.timestamp_micros(), now));
        }
    }
    axum::http::StatusCode::OK
}

async fn receiver() -> anyhow::Result<(String, Arc<Received>)> {
    let state = Arc::new(Received::default());
    let app = axum::Router::new().route("/hook", axum::routing::post(take)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, state))
}

/// Patients the bookings cycle through: each has two subscriptions when subscribed.
fn patients(args: &SubscriptionArgs) -> usize {
    (args.subscriptions / 2).max(1)
}

/// One run on a database of its own.
async fn one(args: &SubscriptionArgs, subscribed: bool) -> anyhow::Result<Run> {
    let db = BenchDb::create("postgres", &args.pg_url).await?;
    let result = measure(args, &db.url, subscribed).await;
    db.drop_db().await;
    result
}

async fn measure(args: &SubscriptionArgs, url: &str, subscribed: bool) -> anyhow::Result<Run> {
    let setup = BookingArgs {
        clients: 8,
        seconds: args.seconds,
        backends: vec!["postgres".into()],
        agendas: 4,
        days: 30,
        pg_url: args.pg_url.clone(),
        rounds: 1,
    };
    let slots = agendas(&setup, url).await?;
    let gateway = Gateway::start_with(url, &["--subscription-allow-insecure".to_string()]).await?;
    let (hook, received) = receiver().await?;
    if subscribed {
        let offset = if args.match_none { 1_000_000 } else { 0 };
        subscribe(&gateway, &hook, patients(args), offset).await?;
    }
    let tokens = gateway.tokens(8)?;
    let n = usize::try_from(args.rate * args.seconds).unwrap_or(0).min(slots.len());
    let cpu_before = process_seconds(gateway.pid()).unwrap_or(0.0);
    let (booked, errors) = book_steadily(&gateway.base, &tokens, &slots[..n], args.rate, patients(args)).await;
    let expected = if subscribed && !args.match_none { 2 * booked } else { 0 };
    // The notifications still on their way are part of the bookings' cost.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (received.events.lock().map(|e| e.len() as u64).unwrap_or(0)) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = process_seconds(gateway.pid()).unwrap_or(0.0) - cpu_before;
    let events = received.events.lock().map(|e| e.clone()).unwrap_or_default();
    Ok(Run {
        subscribed,
        booked,
        errors,
        cpu_ms: 1000.0 * cpu / booked.max(1) as f64,
        delivered: events.len() as u64,
        expected,
        latency: latency(&events),
    })
}

/// Two id-only rest-hook subscriptions per patient, on its appointments.
async fn subscribe(gateway: &Gateway, hook: &str, patients: usize, offset: usize) -> anyhow::Result<()> {
    let admin = admin_token(gateway)?;
    let client = reqwest::Client::new();
    for p in 0..patients {
        for _ in 0..2 {
            let body = json!({"resourceType": "Subscription", "status": "requested", "reason": "bench",
                "criteria": format!("{BASE}/SubscriptionTopic/appointment-changed"),
                "_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                    "valueString": format!("Appointment?patient=Patient/bench-{}", p + offset)}]},
                "channel": {"type": "rest-hook", "endpoint": hook, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content", "valueCode": "id-only"}]}}});
            let r = client
                .post(format!("{}/Subscription", gateway.base))
                .bearer_auth(&admin)
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "a subscription was refused: {}", r.text().await?);
        }
    }
    Ok(())
}

fn admin_token(gateway: &Gateway) -> anyhow::Result<String> {
    use cupola::auth::{default_scope, mint, Role, TokenRequest};
    let req = TokenRequest {
        sub: "bench-admin".into(),
        role: Role::Admin,
        org: None,
        channel: None,
        patient: None,
        scope: default_scope(Role::Admin).into(),
        ttl_secs: 24 * 3600,
        client_id: Some("cupola-bench".into()),
    };
    mint(&gateway.auth, &req)
}

/// Books `slots` one after another at `rate` a second (each on its own task, so a
/// slow answer delays no other), the patients in turn; (booked, errors).
async fn book_steadily(base: &str, tokens: &[String], slots: &[String], rate: u64, patients: usize) -> (u64, u64) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    let mut tasks = Vec::with_capacity(slots.len());
    for (n, slot) in slots.iter().enumerate() {
        tick.tick().await;
        let body = json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-resource",
            "resource": {"resourceType": "Appointment", "status": "proposed",
                "slot": [{"reference": format!("Slot/{slot}")}],
                "participant": [{"actor": {"reference": format!("Patient/bench-{}", n % patients)}, "status": "accepted"}]}}]});
        let req = client
            .post(format!("{base}/Appointment/$book"))
            .bearer_auth(&tokens[n % tokens.len()])
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
        tasks.push(tokio::spawn(async move { req.send().await.is_ok_and(|r| r.status().is_success()) }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    (ok, slots.len() as u64 - ok)
}

/// Median, p99 and max of arrival − change, in ms.
fn latency(events: &[(i64, i64)]) -> Option<(f64, f64, f64)> {
    let mut h = Histogram::<u64>::new(3).ok()?;
    for (at, arrived) in events {
        h.record(u64::try_from(arrived - at).unwrap_or(0)).ok()?;
    }
    (!h.is_empty()).then(|| {
        let ms = |v: u64| v as f64 / 1000.0;
        (ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()))
    })
}

fn print_run(r: &Run) {
    let lat = r.latency.map_or("—".into(), |(m, p, x)| format!("median {m:.1} ms, p99 {p:.1} ms, max {x:.1} ms"));
    println!(
        "{}: {} booked ({} errors), gateway CPU {:.2} ms/booking; {} events delivered of {}; {lat}",
        if r.subscribed { "subscribed" } else { "no subscriptions" },
        r.booked,
        r.errors,
        r.cpu_ms,
        r.delivered,
        r.expected,
    );
}

/// The medians of each kind of run, and the cost of the subscriptions.
fn summary(runs: &[Run]) {
    let median = |with: bool| {
        let mut v: Vec<f64> = runs.iter().filter(|r| r.subscribed == with).map(|r| r.cpu_ms).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    if let (Some(with), Some(without)) = (median(true), median(false)) {
        println!(
            "gateway CPU per booking, median of runs: {with:.2} ms with subscriptions, {without:.2} ms without: {:+.1} %",
            100.0 * (with - without) / without
        );
    }
}
