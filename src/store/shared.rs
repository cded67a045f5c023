//! Group commit of whole units of work (`$book`): the units waiting at one moment run
//! one after another in one database transaction, each inside a savepoint so that
//! each stays all-or-nothing, and commit together. What they share: BEGIN and
//! COMMIT (PostgreSQL's commit record and WAL flush, SQLite's sync), and the deferred
//! writes (every unit's outbox rows and booking facts in one statement before
//! COMMIT). A few groups run at once (`Settings::book_lanes`), each on its own
//! connection; no lock is held across groups, and rows are locked as each unit
//! asks for them, as in a transaction of its own, only until the group commits.
//!
//! A unit that fails is rolled back to its savepoint and answered with its error;
//! one that fails because of another transaction (deadlock, serialization) runs
//! again alone once the group is done, as does every unit when the group's COMMIT
//! fails. A caller is answered only after its unit is committed.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Store, Tx};
use crate::{Error, Result};

/// What a unit returns to its caller (downcast by the caller).
pub(crate) type Output = Box<dyn Any + Send>;
type Running<'a> = Pin<Box<dyn Future<Output = Result<Output>> + Send + 'a>>;
/// A unit of work inside a transaction: callable again, to run alone after a failed group.
pub(crate) type Work = Arc<dyn for<'a> Fn(&'a Store, &'a mut Tx) -> Running<'a> + Send + Sync>;

/// Units per group at most: each takes a PostgreSQL subtransaction, and past 64 in
/// one transaction every other snapshot pays for the overflow.
const MAX_GROUP: usize = 32;

/// Wraps a closure as a unit of work.
pub(crate) fn work<F>(f: F) -> Work
where
    F: for<'a> Fn(&'a Store, &'a mut Tx) -> Running<'a> + Send + Sync + 'static,
{
    Arc::new(f)
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Output>>,
}

/// The store's group writer for units of work, started with the first unit.
#[derive(Clone, Default)]
pub(super) struct Shared(super::group::Writer<Job>);

impl Store {
    /// Runs `work` in a transaction shared with the units that arrive with it
    /// (see the module), or alone when grouping is off (`book_lanes` 0).
    pub(crate) async fn grouped(&self, work: Work) -> Result<Output> {
        let lanes = match self.dialect {
            // One writer at a time: more lanes would only queue for the lock.
            super::Dialect::Sqlite => self.book_lanes.min(1),
            super::Dialect::Postgres => self.book_lanes,
        };
        if lanes == 0 {
            return alone(self, &work).await;
        }
        let (reply, answer) = oneshot::channel();
        let start = |rx| {
            // The writer's copy holds no sender of this queue (nor of the create
            // group's), so that it stops when the last store handle is dropped.
            let writer = Store { shared: Shared::default(), group: Default::default(), ..self.clone() };
            tokio::spawn(run(writer, rx, lanes));
        };
        if let Err(job) = self.shared.0.send(Job { work, reply }, start).await {
            return alone(self, &job.work).await;
        }
        answer.await.map_err(|_| Error::Busy("the store's writer stopped during the request; retry".into()))?
    }
}

async fn alone(store: &Store, work: &Work) -> Result<Output> {
    let mut tx = store.begin().await?;
    let out = work(store, &mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

async fn run(store: Store, queue: mpsc::Receiver<Job>, lanes: usize) {
    super::group::batches(store, queue, lanes, MAX_GROUP, |store, jobs| async move { run_group(&store, jobs).await })
        .await
}

async fn run_group(store: &Store, mut jobs: Vec<Job>) {
    if jobs.len() == 1 {
        if let Some(j) = jobs.pop() {
            let _ = j.reply.send(alone(store, &j.work).await);
        }
        return;
    }
    let units = jobs.len();
    let (done, mut again) = match store.begin().await {
        Ok(mut tx) => {
            let (done, again) = in_group(store, &mut tx, jobs).await;
            match tx.commit().await {
                Ok(()) => {
                    tracing::debug!(units, committed = done.len(), "group of units committed");
                    for (j, out) in done {
                        let _ = j.reply.send(Ok(out));
                    }
                    (Vec::new(), again)
                }
                Err(e) => {
                    tracing::warn!(error = %e, units, "group commit failed; running each unit alone");
                    (done.into_iter().map(|(j, _)| j).collect(), again)
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, units, "no transaction for a group; running each unit alone");
            (jobs, Vec::new())
        }
    };
    again.extend(done);
    for j in again {
        let _ = j.reply.send(alone(store, &j.work).await);
    }
}

/// Runs each job in its savepoint: the ones that succeeded (to answer after COMMIT),
/// and the ones to run again alone. A job that failed on its own is answered here.
async fn in_group(store: &Store, tx: &mut Tx, jobs: Vec<Job>) -> (Vec<(Job, Output)>, Vec<Job>) {
    let mut done = Vec::with_capacity(jobs.len());
    let mut again = Vec::new();
    let mut jobs = jobs.into_iter();
    while let Some(j) = jobs.next() {
        if tx.savepoint().await.is_err() {
            // The connection is gone: nothing of the group will commit.
            again.extend(done.into_iter().map(|(j, _)| j));
            again.push(j);
            again.extend(jobs);
            return (Vec::new(), again);
        }
        match (j.work)(store, tx).await {
            Ok(out) => done.push((j, out)),
            Err(e) => {
                if tx.undo().await.is_err() {
                    again.extend(done.into_iter().map(|(j, _)| j));
                    again.push(j);
                    again.extend(jobs);
                    return (Vec::new(), again);
                }
                match e {
                    // Caught in another group's locks: alone, it waits for them instead.
                    Error::Busy(_) => again.push(j),
                    e => {
                        let _ = j.reply.send(Err(e));
                    }
                }
            }
        }
    }
    (done, again)
}
