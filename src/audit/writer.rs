//! Writes queued AuditEvents in batches: one database transaction per batch, as soon
//! as `flush` has passed since the batch's first event (or it is full).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use tokio::time::Instant;

use super::{audit_events, Msg, Record};
use crate::store::Store;

/// Events per transaction at most.
const BATCH: usize = 500;

/// Events with an AuditEvent of their own (searches, operations) per transaction at
/// most: each is a resource to build, index and bind, where like reads share one.
/// 500 of them held a batch's worth of resources, index rows and binds in memory at
/// once (measured: the gateway's resident memory jumped by ~35 MB when searches began).
const OWN_EVENTS: usize = 100;

pub(super) async fn run(store: Store, base: Arc<str>, flush: Duration, mut rx: Receiver<Msg>) {
    let mut batch = Batch::default();
    let mut waiting = Vec::new();
    // When the oldest queued event must be written at the latest.
    let mut deadline = Instant::now();
    loop {
        let msg = if batch.records.is_empty() {
            let m = rx.recv().await;
            deadline = Instant::now() + flush;
            m
        } else {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    write(&store, &base, &mut batch, &|| !rx.is_closed()).await;
                    continue;
                }
            }
        };
        match msg {
            Some(Msg::Event(r)) => {
                batch.push(*r);
                // Take what is already queued without waiting, up to a batch.
                while !batch.full() {
                    match rx.try_recv() {
                        Ok(Msg::Event(r)) => batch.push(*r),
                        Ok(Msg::Flush(done)) => {
                            waiting.push(done);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if batch.full() || !waiting.is_empty() {
                    write(&store, &base, &mut batch, &|| !rx.is_closed()).await;
                }
            }
            Some(Msg::Flush(done)) => {
                waiting.push(done);
                write(&store, &base, &mut batch, &|| !rx.is_closed()).await;
            }
            None => {
                write(&store, &base, &mut batch, &|| !rx.is_closed()).await;
                return;
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The events waiting to be written, and how many of them make an AuditEvent of
/// their own.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    own: usize,
}

impl Batch {
    fn push(&mut self, r: Record) {
        self.own += usize::from(!r.groupable());
        self.records.push(r);
    }

    /// To be written now: [`BATCH`] events, or [`OWN_EVENTS`] of their own.
    fn full(&self) -> bool {
        self.records.len() >= BATCH || self.own >= OWN_EVENTS
    }

    fn clear(&mut self) {
        self.records.clear();
        self.own = 0;
    }
}

/// Attempts at a batch the database refused (or while the gateway stops).
const ATTEMPTS: u32 = 5;

/// Writes the batch in one transaction. While the database is busy or out of reach
/// (a restart, a failover) and the gateway runs (`running`), it keeps trying, the
/// queue filling behind it until requests wait for room: no record is dropped for
/// an outage. A batch the database refuses, or one still unwritten when the gateway
/// stops, is tried [`ATTEMPTS`] times, then each event is logged (the log is the
/// trail of last resort).
async fn write(store: &Store, base: &str, batch: &mut Batch, running: &dyn Fn() -> bool) {
    if batch.records.is_empty() {
        return;
    }
    let events = audit_events(&batch.records, base);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = store.create_batch("AuditEvent", events.clone()).await;
        match result {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                let (error, db_code) = crate::error::log_fields(&e);
                tracing::warn!(
                    error,
                    db_code = db_code.as_deref().unwrap_or("-"),
                    attempt,
                    events = events.len(),
                    "writing AuditEvents failed"
                );
                let outage = matches!(e, crate::Error::Busy(_));
                if attempt >= ATTEMPTS && !(outage && running()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(20)))).await;
            }
        }
    }
    for e in &events {
        tracing::error!(audit_event = %e, "AuditEvent could not be stored");
    }
    batch.clear();
}
