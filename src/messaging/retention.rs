//! The sweep of outbox bodies past their retention (`--outbox-body-retention-hours`):
//! what keeps the database from growing by every message's Bundle for ever.

use std::collections::HashMap;
use std::time::Duration;

use crate::store::{now_micros, Store};

/// Bodies removed per statement: a sweep holds its transaction briefly.
const BATCH: i64 = 500;

/// Removes, every `every`, the bodies of the messages acknowledged `ok` more than
/// `hours` ago. Where each provider's sweep got to is kept in memory: after a
/// restart the first sweep walks the acknowledged rows again once.
pub async fn retention_forever(store: Store, hours: u64, every: Duration) {
    let keep_us = i64::try_from(hours).unwrap_or(i64::MAX / 3_600_000_000).saturating_mul(3_600_000_000);
    let mut from: HashMap<String, i64> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&store, now_micros().saturating_sub(keep_us), &mut from).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(bodies = n, hours, "outbox bodies past their retention removed"),
            Err(e) => {
                tracing::warn!(error = %e, "removing outbox bodies past their retention failed; retrying at the next sweep")
            }
        }
    }
}

/// One sweep: every provider's bodies acknowledged before `before_us`; how many went.
async fn sweep(store: &Store, before_us: i64, from: &mut HashMap<String, i64>) -> crate::Result<u64> {
    let mut dropped = 0;
    // The providers the region's maps name: only they are sent messages (and the
    // list costs no query, where the outbox's own would scan it).
    let providers: Vec<String> = store.settings().messaging.providers.iter().map(|p| p.provider.clone()).collect();
    for provider in providers {
        loop {
            let start = from.get(&provider).copied().unwrap_or(0);
            let (n, last) = store.drop_acked_bodies(&provider, start, before_us, BATCH).await?;
            dropped += n;
            match last {
                Some(at) => from.insert(provider.clone(), at),
                None => break,
            };
            if n < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
    }
    Ok(dropped)
}
