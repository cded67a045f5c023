//! The load generator: N clients in a loop for a fixed time, each request timed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::BackendFigures;

/// Latency and throughput of one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseFigures {
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
    /// The gateway process's CPU time per request over the phase (ms).
    pub gateway_cpu_ms: Option<f64>,
    /// The whole machine's busy CPU time per request over the phase (ms).
    pub machine_cpu_ms: Option<f64>,
}

const MRN: &str = "http://example.org/cupola/sid/bench-mrn";

/// A Patient of about 1 KB, unique by its `n`.
impl PhaseFigures {
    /// The figures of a phase's latencies (µs), errors and length.
    pub(super) fn of(hist: &Histogram<u64>, errors: u64, length: Duration) -> PhaseFigures {
        PhaseFigures {
            requests: hist.len(),
            errors,
            per_second: hist.len() as f64 / length.as_secs_f64(),
            median_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            gateway_cpu_ms: None,
            machine_cpu_ms: None,
        }
    }
}

/// One client of a phase: its latencies (µs) and errors.
pub(super) type Client = tokio::task::JoinHandle<anyhow::Result<(Histogram<u64>, u64)>>;

/// The figures of a phase from its clients.
pub(super) async fn merged(tasks: Vec<Client>, start: Instant) -> anyhow::Result<PhaseFigures> {
    let (hist, errors) = merged_latencies(tasks).await?;
    Ok(PhaseFigures::of(&hist, errors, start.elapsed()))
}

/// The latencies (µs) and errors of a phase's clients, together.
pub(super) async fn merged_latencies(tasks: Vec<Client>) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut hist = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        hist.add(h)?;
        errors += e;
    }
    Ok((hist, errors))
}

pub fn sample_patient(n: u64) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {"use": "official", "system": "http://hl7.it/sid/codiceFiscale", "value": "RSSMRA85T10A562S"},
            {"system": MRN, "value": format!("B{n:012}")}
        ],
        "active": true,
        "name": [{"use": "official", "family": "Rossi", "given": ["Mario", "Giuseppe"]}],
        "telecom": [
            {"system": "phone", "value": "+39 010 555 0101", "use": "home"},
            {"system": "email", "value": "mario.rossi@example.org"}
        ],
        "gender": "male",
        "birthDate": "1985-12-10",
        "address": [{"use": "home", "line": ["Via XX Settembre 42"], "city": "Genova", "district": "GE", "postalCode": "16121", "country": "IT"}],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "it-IT"}]}, "preferred": true}],
        "generalPractitioner": [{"reference": "Practitioner/gp-0042", "display": "Dott. Luca Bianchi"}],
        "managingOrganization": {"reference": "Organization/asl3", "display": "ASL3 Genovese"}
    })
}

/// What one request of a phase sends.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Create,
    Read,
    Search,
    /// GETs of the population's paths (relative to the FHIR base), in turn.
    Get,
}

/// Warm-up, then create, read, search and mix phases against `base`.
pub async fn run_phases(
    base: &str,
    tokens: Arc<Vec<String>>,
    clients: usize,
    phase: Duration,
    gateway_pid: u32,
    pgbench: Option<Interleaved>,
) -> anyhow::Result<BackendFigures> {
    let counter = Arc::new(AtomicU64::new(0));
    // Warm-up creates give the read and search phases a population to pick from.
    let warm = outcome(
        run_phase(base, &tokens, Kind::Create, clients, Duration::from_secs(3), &counter, Arc::new(Vec::new())).await?,
    );
    tracing::info!(created = warm.0.requests, "warm-up done");
    // The measured creates, and pgbench's run, in alternate slices.
    let mut slices = super::slices::Slices::new(phase, pgbench.as_ref().map_or(1, |p| p.rounds), gateway_pid)?;
    let mut ids = Vec::new();
    for _ in 0..slices.rounds() {
        if let Some(p) = &pgbench {
            slices.pgbench(&p.db, clients, &super::pgbench::script()).await?;
        }
        let mark = slices.mark();
        let (h, e, made, _) =
            run_phase(base, &tokens, Kind::Create, clients, slices.slice(), &counter, Arc::new(Vec::new())).await?;
        slices.add(mark, h, e)?;
        ids.extend(made);
    }
    let tallied = slices.done();
    let create = tallied.phase;
    let mut population = warm.1;
    population.extend(ids);
    let population = Arc::new(population);
    let cost = Cost::start(gateway_pid);
    let (read, _) = outcome(run_phase(base, &tokens, Kind::Read, clients, phase, &counter, population.clone()).await?);
    let read = cost.finish(read, phase);
    let cost = Cost::start(gateway_pid);
    let (search, _) = outcome(run_phase(base, &tokens, Kind::Search, clients, phase, &counter, population).await?);
    let search = cost.finish(search, phase);
    let cost = Cost::start(gateway_pid);
    let mix = super::mix::run_mix(base, &tokens, clients, phase, &counter).await?;
    let mix = cost.finish(mix, phase);
    let (pgbench_tps, pgbench_cpu_ms) = match tallied.pgbench {
        Some((tps, cost)) => (Some(tps), cost.map(|c| c.ms_per_op)),
        None => (None, None),
    };
    Ok(BackendFigures { create, read, search, mix, pgbench_tps, pgbench_cpu_ms, ..Default::default() })
}

/// pgbench's side of the create phase: its database, and the slices each side's run
/// is cut into.
pub struct Interleaved {
    pub db: String,
    pub rounds: u32,
}

/// The CPU a phase cost the gateway and the whole machine: the gateway's own time is
/// what a change to its code moves, without the noise of the others sharing the cores.
struct Cost {
    pid: u32,
    gateway: Option<f64>,
    machine: Option<super::cpu::CpuTimes>,
}

impl Cost {
    fn start(pid: u32) -> Cost {
        Cost { pid, gateway: super::cpu::process_seconds(pid), machine: super::cpu::CpuTimes::now() }
    }

    fn finish(self, mut f: PhaseFigures, phase: Duration) -> PhaseFigures {
        let n = f.requests as f64;
        if n > 0.0 {
            f.gateway_cpu_ms = match (self.gateway, super::cpu::process_seconds(self.pid)) {
                (Some(a), Some(b)) => Some(1000.0 * (b - a) / n),
                _ => None,
            };
            f.machine_cpu_ms = self.machine.and_then(|m| m.per_op_since(n, phase.as_secs_f64())).map(|c| c.ms_per_op);
        }
        f
    }
}

/// One client's HTTP/1.1 connection, kept alive for the whole phase: the load
/// generator should spend as little CPU per request as it can, since it shares the
/// machine with the gateway and the database.
pub(super) struct Conn {
    send: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    host: String,
    /// `Bearer <token>` of this client.
    authorization: String,
    /// `Location` of the last answer (the id of what a create made).
    last_location: Option<String>,
}

impl Conn {
    pub(super) async fn open(base: &str, token: &str) -> anyhow::Result<Conn> {
        let url = url::Url::parse(base)?;
        let host = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(80));
        let stream = tokio::net::TcpStream::connect(&host).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn { send, host, authorization: format!("Bearer {token}"), last_location: None })
    }

    /// Sends one request; returns its status once the whole body has been read.
    pub(super) async fn send(&mut self, method: &str, path: &str, body: Option<String>) -> anyhow::Result<u16> {
        use http_body_util::BodyExt;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", &self.authorization)
            .header("accept", "application/fhir+json");
        if body.is_some() {
            req = req.header("content-type", "application/fhir+json").header("prefer", "return=minimal");
        }
        let req = req.body(http_body_util::Full::new(bytes::Bytes::from(body.unwrap_or_default())))?;
        self.send.ready().await?;
        let resp = self.send.send_request(req).await?;
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
        resp.into_body().collect().await?;
        self.last_location = location;
        Ok(status)
    }

    /// The id of what the last request created (from its `Location`).
    pub(super) fn created_id(&self) -> String {
        self.last_location.as_deref().and_then(|l| l.split('/').rev().nth(2)).unwrap_or("").to_string()
    }
}

/// One phase's latencies (µs), errors, what it created and how long it took.
pub(super) type Raw = (Histogram<u64>, u64, Vec<(String, u64)>, Duration);

/// A phase's figures, and what it created, from its [`Raw`] outcome.
pub(super) fn outcome((hist, errors, made, took): Raw) -> (PhaseFigures, Vec<(String, u64)>) {
    (PhaseFigures::of(&hist, errors, took), made)
}

/// One phase: `clients` loops for `length`; its latencies, errors and length and, for
/// creates, the (id, number) of what was created.
pub(super) async fn run_phase(
    base: &str,
    tokens: &Arc<Vec<String>>,
    kind: Kind,
    clients: usize,
    length: Duration,
    counter: &Arc<AtomicU64>,
    population: Arc<Vec<(String, u64)>>,
) -> anyhow::Result<Raw> {
    let path = url::Url::parse(base)?.path().trim_end_matches('/').to_string();
    // The body text made once; each create changes only its number.
    let template = Arc::new(sample_patient(0).to_string());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (base, path, counter, population, template) =
            (base.to_string(), path.clone(), counter.clone(), population.clone(), template.clone());
        let token = tokens.get(c).cloned().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&base, &token).await?;
            let mut hist = Histogram::<u64>::new(3)?;
            let (mut errors, mut made) = (0u64, Vec::new());
            let mut i = c;
            while start.elapsed() < length {
                let (method, target, body, n) = request(kind, &path, &template, &counter, &population, i);
                let t = Instant::now();
                let status = conn.send(method, &target, body).await.unwrap_or(0);
                let _ = hist.record(t.elapsed().as_micros() as u64);
                match (kind, status) {
                    (Kind::Create, 201) => made.push((conn.created_id(), n)),
                    (Kind::Read | Kind::Search | Kind::Get, 200) => {}
                    _ => errors += 1,
                }
                i += clients;
            }
            Ok::<_, anyhow::Error>((hist, errors, made))
        }));
    }
    let (hist, errors, made) = joined(tasks).await?;
    Ok((hist, errors, made, start.elapsed()))
}

/// A client's `i`-th request of a phase of `kind`: method, target, body, and the
/// number of the patient it creates or names.
fn request(
    kind: Kind,
    path: &str,
    template: &str,
    counter: &AtomicU64,
    population: &[(String, u64)],
    i: usize,
) -> (&'static str, String, Option<String>, u64) {
    match kind {
        Kind::Create => {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            ("POST", format!("{path}/Patient"), Some(template.replace("B000000000000", &format!("B{n:012}"))), n)
        }
        Kind::Read | Kind::Search | Kind::Get => {
            let (id, n) = &population[(i * 7919) % population.len().max(1)];
            match kind {
                Kind::Read => ("GET", format!("{path}/Patient/{id}"), None, *n),
                Kind::Get => ("GET", format!("{path}/{id}"), None, *n),
                _ => ("GET", format!("{path}/Patient?identifier={MRN}%7CB{n:012}"), None, *n),
            }
        }
    }
}

/// The clients' latencies, errors and creations, added up.
async fn joined(tasks: Vec<ClientTask>) -> anyhow::Result<(Histogram<u64>, u64, Vec<(String, u64)>)> {
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut errors, mut made) = (0, Vec::new());
    for t in tasks {
        let (h, e, m) = t.await??;
        hist.add(h)?;
        errors += e;
        made.extend(m);
    }
    Ok((hist, errors, made))
}

/// One client of a phase: its latencies, errors and what it created.
type ClientTask = tokio::task::JoinHandle<anyhow::Result<(Histogram<u64>, u64, Vec<(String, u64)>)>>;
