//! SQLite's one writer. Every write transaction of the process runs on one
//! connection, in turn, as a savepoint inside a transaction the writer keeps open
//! (a group); the group commits as soon as no one waits for the writer, so that the
//! requests of a burst share one `BEGIN IMMEDIATE` and one COMMIT, and no request
//! polls SQLite's lock in its busy handler (which sleeps up to 100 ms between
//! tries). Each request stays all-or-nothing on its own: one that fails is rolled
//! back to its savepoint, and the others of its group keep their work.
//!
//! A caller is answered only once its group committed (`Turn::release` gives the
//! group's fate to wait for): if the group fails to commit, every caller in it gets
//! an error, never a success for work that is not durable. Its `on_commit` wake-ups
//! run after the COMMIT too.
//!
//! The group's transaction still takes SQLite's lock (`BEGIN IMMEDIATE`, waiting up
//! to the busy timeout), so several processes on one file serialise on it, group by
//! group.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Executor};
use tokio::sync::{oneshot, Mutex, Notify, OwnedMutexGuard};

use crate::{Error, Result};

/// A group's fate as told to each of its callers (one error's text for them all).
pub(super) type Fate = oneshot::Receiver<std::result::Result<(), String>>;
/// Where a caller released into a group is told its fate.
type Reply = oneshot::Sender<std::result::Result<(), String>>;

#[derive(Clone, Default)]
pub(super) struct Writer {
    /// Turns are granted in the order asked (tokio's mutex is fair).
    state: Arc<Mutex<State>>,
    /// Turns asked for and not granted yet (requests and the committer): while one
    /// waits, the group stays open for it.
    queued: Arc<AtomicUsize>,
}

#[derive(Default)]
struct State {
    conn: Option<AnyConnection>,
    /// A group's transaction is open on `conn`.
    open: bool,
    /// A unit's savepoint is open: its turn has not ended cleanly yet.
    unit: bool,
    /// Callers whose units were released into the open group, with what to wake once
    /// it commits.
    released: Vec<(Reply, Option<Arc<Notify>>)>,
    /// A committer is queued for a turn.
    committer: bool,
}

/// Counts a turn as asked for while it waits.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    /// Waits (at most `wait`) for the writer, then opens a unit (a savepoint; first
    /// the group's transaction if none is open), connecting with `connect` if needed.
    pub(super) async fn turn<F>(&self, wait: Duration, connect: F) -> Result<Turn>
    where
        F: std::future::Future<Output = Result<AnyConnection>>,
    {
        let state = {
            let _queued = Queued::new(&self.queued);
            tokio::time::timeout(wait, self.state.clone().lock_owned())
                .await
                .map_err(|_| Error::Busy("the database is busy writing; retry in a moment".into()))?
        };
        let mut turn = Turn { state: Some(state), writer: self.clone() };
        let s = turn.state_mut();
        if s.unit {
            // A turn dropped where no runtime could roll it back: its group cannot commit.
            abort(s, "a write was abandoned midway").await;
        }
        if s.conn.is_none() {
            s.conn = Some(connect.await?);
        }
        // The flags are set before each statement is sent: a turn cancelled while it
        // runs leaves them saying what may have happened, for the next turn to undo.
        let opening = !s.open;
        s.open = true;
        s.unit = true;
        // A group's first unit opens it in the same round trip to SQLite's thread.
        let sql = if opening { "BEGIN IMMEDIATE; SAVEPOINT w" } else { "SAVEPOINT w" };
        if let Err(e) = conn_of(s)?.execute(sql).await {
            if opening {
                // Busy past the timeout (another process writing), or a broken
                // connection; nothing was released into this group yet.
                not_opened(s, &e).await;
            } else {
                abort(s, &e.to_string()).await;
            }
            return Err(e.into());
        }
        Ok(turn)
    }

    /// Queues a turn that commits the open group (after the units queued before it).
    fn commit_later(&self) {
        let writer = self.clone();
        tokio::spawn(async move {
            let mut s = {
                let _queued = Queued::new(&writer.queued);
                writer.state.clone().lock_owned().await
            };
            s.committer = false;
            if s.unit {
                abort(&mut s, "a write was abandoned midway").await;
            } else if s.open {
                commit(&mut s).await;
            }
        });
    }

    /// Ends a turn: the group commits now if no one waits for the writer; otherwise
    /// a committer queues behind those waiting (once per group).
    async fn end(&self, s: &mut State) {
        if !s.open {
            return;
        }
        if self.queued.load(Ordering::SeqCst) == 0 {
            commit(s).await;
        } else if !s.committer {
            s.committer = true;
            self.commit_later();
        }
    }
}

/// The writer's connection for one unit of work: released into the group by
/// `release`, rolled back to its savepoint when dropped without it.
pub(super) struct Turn {
    state: Option<OwnedMutexGuard<State>>,
    writer: Writer,
}

impl Turn {
    fn state_mut(&mut self) -> &mut State {
        self.state.as_deref_mut().expect("a turn holds the writer until it ends")
    }

    /// Keeps the unit's work in the group and ends the turn; the group's fate, to
    /// wait for before answering the caller. Run on a task of its own (`Tx::commit`):
    /// it may commit the group, which a caller that goes away must not interrupt.
    pub(super) async fn release(mut self, wake: Option<Arc<Notify>>) -> Result<Fate> {
        let writer = self.writer.clone();
        let s = self.state_mut();
        if writer.queued.load(Ordering::SeqCst) == 0 {
            // No one waits: the unit and its group end in one round trip.
            let (reply, fate) = oneshot::channel();
            s.released.push((reply, wake));
            commit_with(s, "RELEASE w; COMMIT").await;
            s.unit = false;
            return Ok(fate);
        }
        if let Err(e) = conn_of(s)?.execute("RELEASE w").await {
            abort(s, &e.to_string()).await;
            s.unit = false;
            return Err(e.into());
        }
        s.unit = false;
        let (reply, fate) = oneshot::channel();
        s.released.push((reply, wake));
        writer.end(s).await;
        Ok(fate)
    }
}

/// Takes back the unit of a turn that ended without `release`, and ends the turn.
async fn undo(writer: Writer, mut s: OwnedMutexGuard<State>) {
    let r = match s.conn.as_mut() {
        Some(c) => c.execute("ROLLBACK TO w; RELEASE w").await.map(|_| ()),
        None => Ok(()),
    };
    match r {
        Ok(()) => {
            s.unit = false;
            writer.end(&mut s).await;
        }
        // The transaction is gone with the savepoint (SQLite rolls the whole of it
        // back on some errors): the group's released units are lost too.
        Err(e) => abort(&mut s, &e.to_string()).await,
    }
}

/// The group commits; its callers are told (and what they wake, woken).
async fn commit(s: &mut State) {
    commit_with(s, "COMMIT").await
}

/// [`commit`] with `sql` ending in the COMMIT. A failure anywhere in it rolls the
/// group back: none of its callers is told a success.
async fn commit_with(s: &mut State, sql: &str) {
    let r = match s.conn.as_mut() {
        Some(c) => c.execute(sql).await.map(|_| ()),
        None => Err(sqlx::Error::PoolClosed),
    };
    match r {
        Ok(()) => {
            s.open = false;
            for (reply, wake) in s.released.drain(..) {
                if let Some(w) = wake {
                    w.notify_one();
                }
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => abort(s, &format!("the group's COMMIT failed: {e}")).await,
    }
}

/// A group's `BEGIN IMMEDIATE; SAVEPOINT w` failed: whatever of it ran is undone
/// (a failed BEGIN leaves nothing, and the ROLLBACK's own error then says so); a
/// connection that failed otherwise than with a database error is closed.
async fn not_opened(s: &mut State, e: &sqlx::Error) {
    s.open = false;
    s.unit = false;
    if !matches!(e, sqlx::Error::Database(_)) {
        s.conn = None;
    } else if let Some(c) = s.conn.as_mut() {
        let _ = c.execute("ROLLBACK").await;
    }
}

/// The group is rolled back: every caller released into it gets an error. A
/// connection that cannot even roll back is closed (a new one is opened next turn).
async fn abort(s: &mut State, why: &str) {
    tracing::warn!(error = why, units = s.released.len(), "SQLite write group rolled back");
    if s.open {
        if let Some(c) = s.conn.as_mut() {
            if c.execute("ROLLBACK").await.is_err() {
                s.conn = None;
            }
        }
    }
    s.open = false;
    s.unit = false;
    for (reply, _) in s.released.drain(..) {
        let _ = reply.send(Err(format!("the write was not committed ({why}); retry")));
    }
}

fn conn_of(s: &mut State) -> Result<&mut AnyConnection> {
    s.conn.as_mut().ok_or_else(|| Error::Busy("the database writer has no connection; retry".into()))
}

impl Deref for Turn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.state.as_ref().and_then(|s| s.conn.as_ref()).expect("a turn has the writer's connection")
    }
}

impl DerefMut for Turn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.state_mut().conn.as_mut().expect("a turn has the writer's connection")
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(s) = self.state.take() else { return };
        if !s.unit {
            return;
        }
        // The writer stays taken until the unit is rolled back.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(undo(self.writer.clone(), s));
        }
    }
}

#[cfg(test)]
mod tests;
