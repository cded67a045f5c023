//! The audit trail: one `AuditEvent` per request that reads, searches or writes
//! patient data, and per denied request (401, 403). Events are queued in memory and
//! written off the request path by [`writer`], in batches, at most `flush` after
//! they happened and before the gateway stops. They are ordinary resources, so
//! administrators search them like any other; no caller may change them.

mod event;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use event::{audit_event, Record};

use crate::store::Store;

enum Msg {
    Event(Box<Record>),
    /// Write everything queued before this message, then answer.
    Flush(oneshot::Sender<()>),
}

/// The handle requests record through; cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Auditor {
    /// Starts the writer task on `store`.
    pub fn start(store: Store, canonical_base: String, flush: Duration) -> Auditor {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer::run(store, Arc::from(canonical_base), flush, rx));
        Auditor { tx }
    }

    /// Queues one event (never blocks the request).
    pub fn record(&self, record: Record) {
        if self.tx.send(Msg::Event(Box::new(record))).is_err() {
            tracing::error!("the audit writer has stopped; an AuditEvent was not recorded");
        }
    }

    /// Waits until everything recorded so far is written (at shutdown, and in tests).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}
