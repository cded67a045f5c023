//! The gateway's metrics, exposed in the Prometheus text format (`GET /metrics`; the
//! list is in docs/operations.md, *Metrics*). Counters and histograms are atomics,
//! moved where things happen; what the database knows (the outbox backlog) and what
//! is cheaper to read than to track (the pool, the audit queue) is read when a
//! scraper asks ([`Snapshot`]).
//!
//! One registry per gateway, not one for the process: the tests run several
//! gateways in one process, and each must count only its own requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The content type of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request latencies: from a cached read (about a millisecond) to a slow transaction
/// near `--request-timeout-ms`.
const REQUEST_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Waits for a write: none at all (an idle connection, no other writer) is tens of
/// microseconds; the busy timeout (`--db-busy-timeout-secs`, default 5 s) ends it.
const WAIT_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How an inbound message ended, by the status its processing answered.
pub const INBOUND_OUTCOMES: [&str; 3] = ["processed", "refused", "failed"];

/// What the broker made of a published message.
pub const CONFIRM_RESULTS: [&str; 4] = ["ack", "returned", "nack", "lost"];

/// The gauges' values, read when a scraper asks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Database connections lent out, open and idle, and the pool's size.
    pub db_in_use: usize,
    pub db_idle: usize,
    pub db_max: usize,
    /// AuditEvents waiting in memory to be written.
    pub audit_queued: usize,
    /// Outbox rows not sent: (status, provider, rows); `None` when the database did
    /// not answer (those series are then left out, the age is NaN).
    pub outbox: Option<Vec<(String, String, i64)>>,
    /// Age of the oldest pending outbox row, seconds (0: none pending).
    pub oldest_pending_secs: f64,
}

/// Every metric of one gateway.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    db_write_wait: Histogram,
    relay_publishes: IntCounterVec,
    relay_confirms: IntCounterVec,
    inbound: IntCounterVec,
    bookings: IntCounterVec,
    upkeep: IntCounterVec,
    gauges: Gauges,
    /// Two scrapes at once would interleave resetting and setting the outbox gauges.
    scraping: Mutex<()>,
}

/// The gauges set from a [`Snapshot`] at each scrape.
struct Gauges {
    db_connections: IntGaugeVec,
    db_connections_max: IntGauge,
    audit_queue: IntGauge,
    outbox: IntGaugeVec,
    oldest_pending: Gauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Gauges {
    fn new(r: &Registry) -> prometheus::Result<Gauges> {
        let oldest_pending = Gauge::new(
            "cupola_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message still pending (0 when none is).",
        )?;
        r.register(Box::new(oldest_pending.clone()))?;
        Ok(Gauges {
            db_connections: gauge_vec(
                r,
                "cupola_db_connections",
                "Database connections of the gateway's pool: lent out (in_use) or open and idle.",
                &["state"],
            )?,
            db_connections_max: int_gauge(r, "cupola_db_connections_max", "Size of the database pool.")?,
            audit_queue: int_gauge(r, "cupola_audit_queue_events", "AuditEvents queued in memory, not yet written.")?,
            outbox: gauge_vec(
                r,
                "cupola_outbox_messages",
                "Outbox messages not sent, by status (pending, unroutable, failed, parked) and provider.",
                &["status", "provider"],
            )?,
            oldest_pending,
        })
    }
}

impl Metrics {
    /// Every metric registered; `channels` (the booking channels) start at zero, so
    /// that a rate over them has a first sample before their first booking.
    pub fn new(channels: &[&str]) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let m = Metrics {
            http_requests: counter(
                &r,
                "cupola_http_requests_total",
                "FHIR requests answered, by interaction (or $operation), resource type and HTTP status.",
                &["interaction", "type", "code"],
            )?,
            http_duration: histogram_vec(
                &r,
                "cupola_http_request_duration_seconds",
                "Time to answer a FHIR request, by interaction (or $operation) and resource type.",
                REQUEST_BUCKETS,
                &["interaction", "type"],
            )?,
            db_write_wait: histogram(
                &r,
                "cupola_db_write_wait_seconds",
                "Time from asking for a write transaction to having it: on SQLite the turn at the one writer \
                 (and its lock when a group begins), on PostgreSQL a connection and BEGIN.",
                WAIT_BUCKETS,
            )?,
            relay_publishes: counter(
                &r,
                "cupola_relay_publishes_total",
                "Outbox messages the relay handed to the broker (ok) or failed to (error).",
                &["result"],
            )?,
            relay_confirms: counter(
                &r,
                "cupola_relay_confirms_total",
                "Broker confirms of published outbox messages: ack (routed), returned (no queue took it), \
                 nack, lost (no confirm came).",
                &["result"],
            )?,
            inbound: counter(
                &r,
                "cupola_inbound_messages_total",
                "Provider messages received, by way (http: $process-message, queue: the inbound queue) and \
                 outcome (processed, refused, failed).",
                &["via", "outcome"],
            )?,
            bookings: counter(
                &r,
                "cupola_bookings_total",
                "Bookings made by $book, by the caller's channel.",
                &["channel"],
            )?,
            upkeep: counter(
                &r,
                "cupola_db_upkeep_total",
                "VACUUM (ANALYZE) runs the gateway made of its PostgreSQL tables where the server's autovacuum \
                 does not run, by table.",
                &["table"],
            )?,
            gauges: Gauges::new(&r)?,
            registry: r,
            scraping: Mutex::new(()),
        };
        m.start_at_zero(channels);
        Ok(m)
    }

    /// The series whose label values are known in advance, at zero.
    fn start_at_zero(&self, channels: &[&str]) {
        for c in channels {
            self.bookings.with_label_values(&[*c]);
        }
        for via in ["http", "queue"] {
            for outcome in INBOUND_OUTCOMES {
                self.inbound.with_label_values(&[via, outcome]);
            }
        }
        for result in ["ok", "error"] {
            self.relay_publishes.with_label_values(&[result]);
        }
        for result in CONFIRM_RESULTS {
            self.relay_confirms.with_label_values(&[result]);
        }
    }

    /// One FHIR request answered. The label values must come from a bounded set
    /// (the routes' names, the served types, status codes), never from the path as sent.
    pub fn request(&self, interaction: &str, res_type: &str, code: &str, took: Duration) {
        self.http_requests.with_label_values(&[interaction, res_type, code]).inc();
        self.http_duration.with_label_values(&[interaction, res_type]).observe(took.as_secs_f64());
    }

    /// What the store calls with each wait for a write transaction.
    pub fn write_wait_observer(&self) -> Arc<dyn Fn(Duration) + Send + Sync> {
        let h = self.db_write_wait.clone();
        Arc::new(move |d: Duration| h.observe(d.as_secs_f64()))
    }

    /// A message handed to the broker (`ok`) or not (`error`).
    pub fn published(&self, ok: bool) {
        self.relay_publishes.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
    }

    /// A broker confirm: one of [`CONFIRM_RESULTS`].
    pub fn confirmed(&self, result: &'static str) {
        self.relay_confirms.with_label_values(&[result]).inc();
    }

    /// An inbound message by `via` (`http`, `queue`), answered `status` (none: processed).
    pub fn inbound(&self, via: &'static str, status: Option<u16>) {
        let outcome = match status {
            None => INBOUND_OUTCOMES[0],
            Some(s) if s < 500 => INBOUND_OUTCOMES[1],
            Some(_) => INBOUND_OUTCOMES[2],
        };
        self.inbound.with_label_values(&[via, outcome]).inc();
    }

    /// A new booking by a caller of `channel` (none: a caller without one, an administrator).
    pub fn booked(&self, channel: Option<&str>) {
        self.bookings.with_label_values(&[channel.unwrap_or("none")]).inc();
    }

    /// A table vacuumed and analyzed by the gateway's upkeep.
    pub fn upkept(&self, table: &str) {
        self.upkeep.with_label_values(&[table]).inc();
    }

    /// The exposition, with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> prometheus::Result<String> {
        let _one_at_a_time = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        let g = &self.gauges;
        g.db_connections.with_label_values(&["in_use"]).set(as_i64(now.db_in_use));
        g.db_connections.with_label_values(&["idle"]).set(as_i64(now.db_idle));
        g.db_connections_max.set(as_i64(now.db_max));
        g.audit_queue.set(as_i64(now.audit_queued));
        // A status or provider whose rows are all sent drops out instead of staying at its last value.
        g.outbox.reset();
        for (status, provider, rows) in now.outbox.iter().flatten() {
            g.outbox.with_label_values(&[status.as_str(), provider.as_str()]).set(*rows);
        }
        g.oldest_pending.set(if now.outbox.is_some() { now.oldest_pending_secs } else { f64::NAN });
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
