//! The audit trail: every request that reads, searches or writes patient data, and
//! every denied request (401, 403), is recorded in an `AuditEvent` (see [`event`] for
//! how like requests share one). Records are queued in memory and written off the
//! request path by [`writer`], in batches, at most `flush` after they happened and
//! before the gateway stops. They are ordinary resources, so administrators search
//! them like any other; no caller may change them.

mod event;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use event::{audit_events, Record};

use crate::store::{Registry, Store};

enum Msg {
    Event(Box<Record>),
    /// Write everything queued before this message, then answer.
    Flush(oneshot::Sender<()>),
}

/// Events waiting to be written at most; a request finding the queue full waits for
/// room (so a writer that cannot keep up slows requests down instead of losing
/// events or filling memory).
const QUEUE: usize = 20_000;

/// The handle requests record through; cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::Sender<Msg>,
}

impl Auditor {
    /// Starts the writer on a thread of its own, with its own connections to the
    /// database at `database_url`: building and writing a batch never holds up the
    /// threads that answer requests.
    pub async fn start(
        database_url: &str,
        registry: Arc<Registry>,
        canonical_base: String,
        flush: Duration,
    ) -> anyhow::Result<Auditor> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (ready, started) = oneshot::channel::<anyhow::Result<()>>();
        let url = database_url.to_string();
        std::thread::Builder::new().name("cupola-audit".into()).spawn(move || {
            lower_priority();
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                // Two connections: one writes while the other may be reconnecting.
                match Store::connect(&url, 2, Duration::from_secs(30), registry).await {
                    Ok(store) => {
                        let _ = ready.send(Ok(()));
                        writer::run(store, Arc::from(canonical_base), flush, rx).await;
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                    }
                }
            });
        })?;
        started.await.map_err(|_| anyhow::anyhow!("the audit writer thread stopped at start"))??;
        Ok(Auditor { tx })
    }

    /// Queues one event; waits only while the queue is full.
    pub async fn record(&self, record: Record) {
        if self.tx.send(Msg::Event(Box::new(record))).await.is_err() {
            tracing::error!("the audit writer has stopped; an AuditEvent was not recorded");
        }
    }

    /// Events queued and not yet taken by the writer (for metrics).
    pub fn queued(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    /// Waits until everything recorded so far is written (at shutdown, and in tests).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The writer yields the CPU to the threads answering requests: it only has to keep
/// up on average, and the queue absorbs its delays.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; on Linux, PRIO_PROCESS with a
    // thread id changes that thread only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::debug!("could not lower the audit writer's priority");
        }
    }
}
