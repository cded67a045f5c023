//! The dispatcher: numbers the events committed since it last looked (per
//! subscription, in the order they were written), then delivers each
//! subscription's undelivered events on its own task — a slow or hung endpoint
//! holds no worker of the API, nor the other subscriptions. A failed delivery is
//! tried again after `--notify-retry-base-ms`, doubling; after the fifth the
//! subscription is `error`, probed every minute, and `active` again when its
//! endpoint answers.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::notification::{as_seen, events_bundle};
use super::websocket::Sockets;
use super::{NotifyConfig, ATTEMPTS, PROBE_SECS};
use crate::store::{now_micros, EventRow, Store, SubscriptionState};

/// Events sent in one notification at most.
const BATCH: usize = 50;
/// How long the dispatcher waits, once woken, for the events of other commits.
const GATHER: Duration = Duration::from_millis(20);
/// How long an endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `endpoint` may be called: `https://`, not a loopback, private or
/// link-local address (unless `insecure`).
pub fn check_endpoint(endpoint: Option<&str>, insecure: bool) -> Result<(), String> {
    let Some(endpoint) = endpoint else { return Err("a rest-hook subscription needs its endpoint".into()) };
    let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    match (url.scheme(), insecure) {
        ("https", _) | ("http", true) => {}
        (other, _) => return Err(format!("{other}:// endpoints are refused: use https://")),
    }
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let local = host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| !public(ip));
    if local && !insecure {
        return Err(format!("{host} is a loopback or private address: cupola calls public endpoints only"));
    }
    Ok(())
}

fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => !(v.is_loopback() || v.is_private() || v.is_link_local() || v.is_unspecified()),
        IpAddr::V6(v) => !(v.is_loopback() || v.is_unspecified() || (v.segments()[0] & 0xfe00) == 0xfc00),
    }
}

/// Numbers and delivers events until the task is stopped.
pub async fn run_forever(store: Store, config: NotifyConfig, fhir_base: String, sockets: Sockets) {
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap_or_default();
    let wake = store.notify_wake();
    let d = Dispatcher { store, config, fhir_base, sockets, client, busy: Arc::default(), marks: Arc::default() };
    loop {
        d.round().await;
        // Woken by a commit that wrote events; retries and probes are looked at twice a second.
        if tokio::time::timeout(Duration::from_millis(500), wake.notified()).await.is_ok() {
            // The commits of the next moment are numbered and sent together: one
            // round of queries for many events, at the price of a few milliseconds.
            tokio::time::sleep(GATHER).await;
        }
    }
}

/// The dispatcher's state across rounds.
struct Dispatcher {
    store: Store,
    config: NotifyConfig,
    fhir_base: String,
    sockets: Sockets,
    client: reqwest::Client,
    /// Subscriptions whose delivery is on its way.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Events delivered since the last round, marked together at the next.
    marks: Arc<Mutex<Vec<i64>>>,
}

impl Dispatcher {
    /// One round: the last round's deliveries marked, the new events numbered, and
    /// each subscription with events due given a task.
    async fn round(&self) {
        let marked = self.marks.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default();
        if let Err(e) = self.store.mark_delivered(&marked, now_micros()).await {
            // Unmarked, they go again: at least once.
            tracing::warn!(error = %e, "marking delivered events failed; they will be sent again");
        }
        if let Err(e) = self.store.number_events(500).await {
            tracing::warn!(error = %e, "numbering subscription events failed; trying again shortly");
        }
        let due = match self.store.due_events(now_micros(), &self.sockets.ids(), BATCH).await {
            Ok(due) => due,
            Err(e) => return tracing::warn!(error = %e, "reading the events due failed; trying again shortly"),
        };
        for (s, mut rows) in due {
            // Delivered by a task that ended after this round's marks were taken.
            if let Ok(pending) = self.marks.lock() {
                rows.retain(|r| !pending.contains(&r.seq));
            }
            if rows.is_empty() || !self.busy.lock().map(|mut b| b.insert(s.id.clone())).unwrap_or(false) {
                continue; // nothing left, or already on its way
            }
            let job = Delivery {
                store: self.store.clone(),
                client: self.client.clone(),
                config: self.config.clone(),
                sockets: self.sockets.clone(),
                marks: self.marks.clone(),
            };
            let (busy, base) = (self.busy.clone(), self.fhir_base.clone());
            tokio::spawn(async move {
                let id = s.id.clone();
                job.deliver(s, rows, &base).await;
                // After its marks are noted, so that no round sends it again.
                if let Ok(mut b) = busy.lock() {
                    b.remove(&id);
                }
            });
        }
    }
}

/// POSTs `bundle` to `s`'s endpoint with its headers; why not, when it failed.
pub(super) async fn post(
    client: &reqwest::Client,
    config: &NotifyConfig,
    s: &SubscriptionState,
    bundle: &Value,
) -> Result<(), String> {
    let endpoint = s.endpoint.as_deref().ok_or("no endpoint")?;
    check_endpoint(Some(endpoint), config.subscription_allow_insecure)?;
    if !config.subscription_allow_insecure {
        resolves_publicly(endpoint).await?;
    }
    let mut req = client.post(endpoint).header("content-type", "application/fhir+json").body(bundle.to_string());
    for h in &s.headers {
        if let Some((name, value)) = h.split_once(':') {
            req = req.header(name.trim(), value.trim());
        }
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("the endpoint answered {}", r.status())),
        Err(e) => Err(format!("the endpoint could not be reached: {e}")),
    }
}

/// A name that resolves to a private address is refused as that address is.
async fn resolves_publicly(endpoint: &str) -> Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|e| e.to_string())?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| format!("{host}: {e}"))?;
    let private = addrs.map(|a| a.ip()).find(|ip| !public(*ip));
    match private {
        Some(ip) => Err(format!("{host} resolves to {ip}, a loopback or private address")),
        None => Ok(()),
    }
}

struct Delivery {
    store: Store,
    client: reqwest::Client,
    config: NotifyConfig,
    sockets: Sockets,
    marks: Arc<Mutex<Vec<i64>>>,
}

impl Delivery {
    /// Sends `rows`, `s`'s oldest undelivered events, in one notification; the rest
    /// go in the next rounds.
    async fn deliver(&self, s: SubscriptionState, rows: Vec<EventRow>, base: &str) {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return };
        let numbers = (first.number, last.number);
        let outgoing = match as_seen(&self.store, &s, &rows).await {
            Ok(o) => o,
            // Not sent half-read: the next round tries again.
            Err(e) => return tracing::warn!(subscription = %s.id, error = %e, "reading the events' foci failed"),
        };
        let bundle = events_bundle(base, &s, "event-notification", &outgoing);
        let sent = match s.channel.as_str() {
            "websocket" => self.sockets.deliver(&s.id, &bundle).await,
            _ => self.post(&s, &bundle).await,
        };
        match sent {
            Ok(()) if s.status == "active" && s.failures == 0 => {
                if let Ok(mut m) = self.marks.lock() {
                    m.extend(rows.iter().map(|r| r.seq));
                }
            }
            Ok(()) => {
                if let Err(e) = self.store.events_delivered(&s.id, numbers, now_micros()).await {
                    return tracing::warn!(subscription = %s.id, error = %e, "recording a delivery failed");
                }
                if s.status == "error" {
                    super::status::set(&self.store, &s.id, "active").await;
                }
            }
            // No socket here (any more): the events wait for one, no failure counted.
            Err(why) if s.channel == "websocket" => {
                tracing::debug!(subscription = %s.id, reason = why, "websocket events wait")
            }
            Err(why) => self.failed(&s, &why).await,
        }
    }

    async fn post(&self, s: &SubscriptionState, bundle: &Value) -> Result<(), String> {
        post(&self.client, &self.config, s, bundle).await
    }

    /// A failed delivery: tried again after a pause that doubles; after the last
    /// attempt the subscription is `error`, probed every minute.
    async fn failed(&self, s: &SubscriptionState, why: &str) {
        let failures = s.failures + 1;
        let now = now_micros();
        let (status, next) = if failures >= ATTEMPTS {
            ("error", now + PROBE_SECS * 1_000_000)
        } else {
            let base_us = i64::try_from(self.config.notify_retry_base_ms).unwrap_or(1000) * 1000;
            let pause = base_us << (failures - 1).min(20);
            (s.status.as_str(), now + pause)
        };
        tracing::warn!(subscription = %s.id, failures, status, reason = why, "notification not delivered; it will be sent again");
        if let Err(e) = self.store.delivery_failed(&s.id, status, failures, next).await {
            tracing::warn!(subscription = %s.id, error = %e, "recording a failed delivery failed");
        }
        if status == "error" && s.status != "error" {
            super::status::set(&self.store, &s.id, "error").await;
        }
    }
}
