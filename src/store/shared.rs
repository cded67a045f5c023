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

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{Store, Tx};
use crate::{Error, Result};

type Running<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;
/// A unit of work inside a transaction, answering `T`: callable again, to run alone
/// after a failed group.
pub(crate) type Work<T> = Arc<dyn for<'a> Fn(&'a Store, &'a mut Tx) -> Running<'a, T> + Send + Sync>;

/// Units per group at most: each takes a PostgreSQL subtransaction, and past 64 in
/// one transaction every other snapshot pays for the overflow.
const MAX_GROUP: usize = 32;

/// Wraps a closure as a unit of work.
pub(crate) fn work<T, F>(f: F) -> Work<T>
where
    F: for<'a> Fn(&'a Store, &'a mut Tx) -> Running<'a, T> + Send + Sync + 'static,
{
    Arc::new(f)
}

/// A unit in the queue, whatever it answers: it runs (keeping its answer), and
/// answers its caller once its fate is known (committed, or failed).
trait Unit: Send + Sync {
    fn run<'a>(&'a self, store: &'a Store, tx: &'a mut Tx) -> Running<'a, ()>;
    fn answer(self: Box<Self>, outcome: Result<()>);
}

struct Typed<T> {
    work: Work<T>,
    kept: Mutex<Option<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send + 'static> Unit for Typed<T> {
    fn run<'a>(&'a self, store: &'a Store, tx: &'a mut Tx) -> Running<'a, ()> {
        Box::pin(async move {
            let out = (self.work)(store, tx).await?;
            if let Ok(mut kept) = self.kept.lock() {
                *kept = Some(out);
            }
            Ok(())
        })
    }

    fn answer(self: Box<Self>, outcome: Result<()>) {
        let kept = self.kept.lock().ok().and_then(|mut k| k.take());
        let answer = match (outcome, kept) {
            (Ok(()), Some(out)) => Ok(out),
            (Ok(()), None) => Err(anyhow::anyhow!("a unit of work committed without its answer").into()),
            (Err(e), _) => Err(e),
        };
        let _ = self.reply.send(answer);
    }
}

type Job = Box<dyn Unit>;

/// The store's group writer for units of work, started with the first unit.
#[derive(Clone, Default)]
pub(super) struct Shared(super::group::Writer<Job>);

impl Store {
    /// Runs `work` in a transaction shared with the units that arrive with it
    /// (see the module), or alone when grouping is off (`book_lanes` 0).
    pub(crate) async fn grouped<T: Send + 'static>(&self, work: Work<T>) -> Result<T> {
        let lanes = match self.dialect {
            // SQLite's one writer already commits together the units that arrive
            // together, each in its savepoint (see `writer`).
            super::Dialect::Sqlite => 0,
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
        let job: Job = Box::new(Typed { work: work.clone(), kept: Mutex::new(None), reply });
        if self.shared.0.send(job, start).await.is_err() {
            return alone(self, &work).await;
        }
        answer.await.map_err(|_| Error::Busy("the store's writer stopped during the request; retry".into()))?
    }
}

async fn alone<T>(store: &Store, work: &Work<T>) -> Result<T> {
    let mut tx = store.begin().await?;
    let out = work(store, &mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// A queued unit run alone, and answered.
async fn run_alone(store: &Store, job: Job) {
    let outcome = async {
        let mut tx = store.begin().await?;
        job.run(store, &mut tx).await?;
        tx.commit().await
    }
    .await;
    job.answer(outcome);
}

async fn run(store: Store, queue: mpsc::Receiver<Job>, lanes: usize) {
    super::group::batches(store, queue, lanes, MAX_GROUP, |store, jobs| async move { run_group(&store, jobs).await })
        .await
}

async fn run_group(store: &Store, mut jobs: Vec<Job>) {
    if jobs.len() == 1 {
        if let Some(j) = jobs.pop() {
            run_alone(store, j).await;
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
                    for j in done {
                        j.answer(Ok(()));
                    }
                    (Vec::new(), again)
                }
                Err(e) => {
                    tracing::warn!(error = %e, units, "group commit failed; running each unit alone");
                    (done, again)
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
        run_alone(store, j).await;
    }
}

/// Runs each job in its savepoint: the ones that succeeded (to answer after COMMIT),
/// and the ones to run again alone. A job that failed on its own is answered here.
async fn in_group(store: &Store, tx: &mut Tx, jobs: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut done: Vec<Job> = Vec::with_capacity(jobs.len());
    let mut again = Vec::new();
    let mut jobs = jobs.into_iter();
    while let Some(j) = jobs.next() {
        if tx.savepoint().await.is_err() {
            // The connection is gone: nothing of the group will commit.
            again.append(&mut done);
            again.push(j);
            again.extend(jobs);
            return (Vec::new(), again);
        }
        match j.run(store, tx).await {
            Ok(()) => done.push(j),
            Err(e) => {
                if tx.undo().await.is_err() {
                    again.append(&mut done);
                    again.push(j);
                    again.extend(jobs);
                    return (Vec::new(), again);
                }
                match e {
                    // Caught in another group's locks: alone, it waits for them instead.
                    Error::Busy(_) => again.push(j),
                    e => j.answer(Err(e)),
                }
            }
        }
    }
    (done, again)
}
