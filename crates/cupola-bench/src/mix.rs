//! The `mix` phase: a quarter each of creates, reads, updates and deletes of a 1 KB
//! Patient. Each client goes round its own patient's life — create it, read it,
//! update it, delete it — so that every request names a resource that exists and
//! no two clients touch the same one (a conflict would measure the retry, not the
//! store).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::load::{merged, sample_patient, Client, Conn, PhaseFigures};

/// `clients` loops of create, read, update, delete against `base` for `length`.
pub async fn run_mix(
    base: &str,
    tokens: &Arc<Vec<String>>,
    clients: usize,
    length: Duration,
    counter: &Arc<AtomicU64>,
) -> anyhow::Result<PhaseFigures> {
    let path = url::Url::parse(base)?.path().trim_end_matches('/').to_string();
    let template = Arc::new(sample_patient(0).to_string());
    let start = Instant::now();
    let mut tasks: Vec<Client> = Vec::new();
    for c in 0..clients {
        let token = tokens.get(c).cloned().unwrap_or_default();
        let job = Lives { base: base.to_string(), path: path.clone(), template: template.clone() };
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move { job.client(&token, &counter, start, length).await }));
    }
    merged(tasks, start).await
}

/// What one client of the mix needs.
struct Lives {
    base: String,
    path: String,
    template: Arc<String>,
}

impl Lives {
    /// One client: patients' lives one after another until `length` is over; its
    /// latencies (µs) and the requests that did not answer as they should.
    async fn client(
        &self,
        token: &str,
        counter: &AtomicU64,
        start: Instant,
        length: Duration,
    ) -> anyhow::Result<(Histogram<u64>, u64)> {
        let mut conn = Conn::open(&self.base, token).await?;
        let mut hist = Histogram::<u64>::new(3)?;
        let mut errors = 0u64;
        while start.elapsed() < length {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let body = self.template.replace("B000000000000", &format!("B{n:012}"));
            let created =
                timed(&mut conn, &mut hist, "POST", &format!("{}/Patient", self.path), Some(body.clone())).await;
            let id = match created {
                201 => conn.created_id(),
                _ => {
                    errors += 1;
                    continue;
                }
            };
            let target = format!("{}/Patient/{id}", self.path);
            // The same Patient with its id, moved house: a real change, a new version.
            let updated = format!("{{\"id\":\"{id}\",{}", body.get(1..).unwrap_or_default())
                .replace("Via XX Settembre 42", "Via XX Settembre 44");
            for (method, body, ok) in [("GET", None, 200), ("PUT", Some(updated), 200), ("DELETE", None, 204)] {
                let status = timed(&mut conn, &mut hist, method, &target, body).await;
                // A delete may answer 200 with an OperationOutcome as well as 204.
                if status != ok && !(method == "DELETE" && status == 200) {
                    errors += 1;
                }
            }
        }
        Ok((hist, errors))
    }
}

/// Sends one request, recording its latency; its status (0 when it failed).
async fn timed(conn: &mut Conn, hist: &mut Histogram<u64>, method: &str, target: &str, body: Option<String>) -> u16 {
    let t = Instant::now();
    let status = conn.send(method, target, body).await.unwrap_or(0);
    let _ = hist.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    status
}
