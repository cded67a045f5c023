//! What the run measures as it goes: each operation's latencies, the operations
//! of each second, the outbox's lag, and the progress shown in the log.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The operations timed, as the report names them.
pub const OPS: [&str; 11] =
    ["prescribe", "$find", "decline", "$hold", "$book", "pay", "$cancel", "reschedule", "no-show", "lists", "ack"];

/// Latency percentiles of one operation (ms).
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub count: u64,
    pub errors: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One sample of the outbox: seconds into the run, messages waiting, and the
/// longest wait for an acknowledgement (s) among the providers.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxSample {
    pub at: f64,
    pub pending: u64,
    pub lag_secs: f64,
}

pub struct Stats {
    pub start: Instant,
    hist: Mutex<BTreeMap<&'static str, (Histogram<u64>, u64)>>,
    per_second: Mutex<Vec<u64>>,
    pub outbox: Mutex<Vec<OutboxSample>>,
    /// Events of the plan done.
    pub done: AtomicUsize,
    /// Answers `503` (the gateway busy), each retried.
    pub busy: AtomicUsize,
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            start: Instant::now(),
            hist: Mutex::new(BTreeMap::new()),
            per_second: Mutex::new(Vec::new()),
            outbox: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    /// One call of `op` that took `took`; `ok` whether it answered as expected.
    pub fn record(&self, op: &'static str, took: Duration, ok: bool) {
        if let Ok(mut h) = self.hist.lock() {
            let entry = h.entry(op).or_insert_with(|| (Histogram::new(3).expect("3 significant figures"), 0));
            let _ = entry.0.record(took.as_micros().max(1) as u64);
            if !ok {
                entry.1 += 1;
            }
        }
        let second = self.start.elapsed().as_secs() as usize;
        if let Ok(mut s) = self.per_second.lock() {
            if s.len() <= second {
                s.resize(second + 1, 0);
            }
            s[second] += 1;
        }
    }

    /// The percentiles of each operation called.
    pub fn latencies(&self) -> Vec<(&'static str, Latency)> {
        let Ok(h) = self.hist.lock() else { return Vec::new() };
        let ms = |v: u64| v as f64 / 1000.0;
        OPS.iter()
            .filter_map(|op| h.get(op).map(|(hist, errors)| (*op, hist, *errors)))
            .map(|(op, hist, errors)| {
                let l = Latency {
                    count: hist.len(),
                    errors,
                    p50: ms(hist.value_at_quantile(0.5)),
                    p90: ms(hist.value_at_quantile(0.9)),
                    p99: ms(hist.value_at_quantile(0.99)),
                    max: ms(hist.max()),
                };
                (op, l)
            })
            .collect()
    }

    /// The operations of each second of the run.
    pub fn per_second(&self) -> Vec<u64> {
        self.per_second.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn outbox_samples(&self) -> Vec<OutboxSample> {
        self.outbox.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn push_outbox(&self, sample: OutboxSample) {
        if let Ok(mut s) = self.outbox.lock() {
            s.push(sample);
        }
    }

    /// Logs the progress: events done of `total`, their rate, elapsed and ETA.
    pub fn progress(&self, total: usize) {
        let done = self.done.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(0.001);
        let eta = if rate > 0.0 { (total.saturating_sub(done)) as f64 / rate } else { f64::INFINITY };
        tracing::info!(
            done,
            total,
            percent = format!("{:.1}", 100.0 * done as f64 / total.max(1) as f64),
            rate = format!("{rate:.1}/s"),
            elapsed = format!("{elapsed:.0} s"),
            eta = format!("{eta:.0} s"),
            "replay progress"
        );
    }
}
