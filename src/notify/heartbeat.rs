//! Heartbeats: a subscription that asked for them (the backport's
//! `backport-heartbeat-period`, in seconds) hears from cupola at least that often —
//! a notification of type `heartbeat`, with no event — so that its endpoint can
//! tell a quiet topic from a broken link.

use std::collections::HashMap;
use std::time::Duration;

use super::notification::events_bundle;
use super::NotifyConfig;
use crate::store::{now_micros, Store};

/// Sends the heartbeats due, once a second, until the task is stopped.
pub async fn run_forever(store: Store, config: NotifyConfig, fhir_base: String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    // When each was last told something by this process: a heartbeat, or (first
    // seen) now, so that a new subscription's first heartbeat comes a period later.
    let mut last: HashMap<String, i64> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let due = match store.heartbeat_subscriptions().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "reading the subscriptions' heartbeats failed; trying again shortly");
                continue;
            }
        };
        let now = now_micros();
        for (s, delivered) in due {
            let Some(period) = s.heartbeat_secs.filter(|p| *p > 0) else { continue };
            let seen = *last.entry(s.id.clone()).or_insert(now);
            if now - seen.max(delivered.unwrap_or(0)) < period * 1_000_000 || s.channel != "rest-hook" {
                continue;
            }
            last.insert(s.id.clone(), now);
            let bundle = events_bundle(&fhir_base, &s, "heartbeat", &[]);
            if let Err(why) = super::dispatch::post(&client, &config, &s, &bundle).await {
                tracing::warn!(subscription = %s.id, reason = why, "a heartbeat was not delivered");
            }
        }
    }
}
