//! A write transaction: on PostgreSQL a pooled connection's own transaction; on
//! SQLite a unit of work (a savepoint) in the one writer's group (see `writer`).

use std::ops::{Deref, DerefMut};

use sqlx::{AnyConnection, Executor};

use super::pool::{Conn, Pool};
use super::writer::Turn;
use super::Dialect;
use crate::{Error, Result};

/// What a transaction writes on.
enum Link {
    /// PostgreSQL: a connection in its own transaction.
    Own(Conn),
    /// SQLite: the writer's connection, in this transaction's savepoint.
    Writer(Turn),
}

impl Deref for Link {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Link::Own(c) => c,
            Link::Writer(t) => t,
        }
    }
}

impl DerefMut for Link {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Link::Own(c) => c,
            Link::Writer(t) => t,
        }
    }
}

/// A write transaction: committed by `commit`, rolled back when dropped without it
/// (an error on the way: nothing it wrote remains).
pub struct Tx {
    link: Option<Link>,
    /// Woken once the transaction commits (the outbox relay, when it wrote messages).
    wake: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// Resources as this transaction last read (unlocked) or wrote them, by type and
    /// id (`None`: not there); see `resources::current_seen`.
    seen: std::collections::HashMap<(String, String), Option<super::Stored>>,
    /// Resources whose row this transaction has written or locked: `seen` is then
    /// their current state for a write too, no lock left to take.
    held: std::collections::HashSet<(String, String)>,
    /// Writes nothing in the transaction reads back (outbox messages, booking
    /// facts), sent together just before COMMIT: one round trip for them all.
    deferred: Vec<super::Sql>,
    /// Ids this transaction gave to the resources it created (`create_in`): nothing
    /// written before it refers to them.
    fresh: std::collections::HashSet<String>,
    /// Ticket lines this transaction wrote: appointment → (charge item, invoice).
    lines: std::collections::HashMap<String, Vec<(String, String)>>,
    /// `(pk, version)` of resources read ahead without their bodies (`None`: not
    /// there), for `Store::current_version`; `seen` comes first.
    versions: std::collections::HashMap<(String, String), Option<(i64, i64)>>,
    /// The state at the last `savepoint`, restored by `undo`.
    mark: Option<Mark>,
}

/// Resources a transaction keeps as values with their index rows (`Stored::written`):
/// a booking holds about ten; a catalog import thousands, whose values would weigh
/// several times their text.
const KEEP_WRITTEN: usize = 64;

/// What `Tx::undo` puts back besides the database's own state. `seen` is not kept:
/// it is only a cache, emptied by `undo`.
struct Mark {
    deferred: usize,
    held: std::collections::HashSet<(String, String)>,
    fresh: std::collections::HashSet<String>,
    lines: std::collections::HashMap<String, Vec<(String, String)>>,
}

impl Tx {
    pub(crate) async fn begin(pool: &Pool) -> Result<Tx> {
        let link = match pool.dialect() {
            // The writer's group holds SQLite's lock (`BEGIN IMMEDIATE`), so that a
            // read-then-write inside the transaction never fails to upgrade.
            Dialect::Sqlite => Link::Writer(pool.writer_turn().await?),
            Dialect::Postgres => {
                let mut conn = pool.get().await?;
                let r = conn.execute("BEGIN").await;
                conn.finished = r.is_ok();
                r?;
                Link::Own(conn)
            }
        };
        Ok(Tx {
            link: Some(link),
            wake: None,
            seen: Default::default(),
            held: Default::default(),
            deferred: Vec::new(),
            fresh: Default::default(),
            lines: Default::default(),
            versions: Default::default(),
            mark: None,
        })
    }

    /// Commits: answers once the work is durable (on SQLite, once the writer's group
    /// committed; an error if it did not).
    pub async fn commit(mut self) -> Result<()> {
        let Some(mut link) = self.link.take() else { return Ok(()) };
        let deferred = match link {
            Link::Own(_) => {
                let dialect = Dialect::Postgres;
                super::fold::folded(dialect, super::fold::merged_rows(std::mem::take(&mut self.deferred)))
            }
            Link::Writer(_) => std::mem::take(&mut self.deferred),
        };
        for s in deferred {
            let r = sqlx::query_with(&s.text, super::into_arguments(s.binds)).execute(&mut *link).await;
            if let Err(e) = r {
                // Rolled back as a dropped transaction is.
                self.link = Some(link);
                return Err(e.into());
            }
        }
        match link {
            Link::Own(mut conn) => {
                let r = conn.execute("COMMIT").await;
                conn.done(r)?;
                if let Some(w) = self.wake.take() {
                    w.notify_one();
                }
                Ok(())
            }
            Link::Writer(turn) => released(turn, self.wake.take()).await,
        }
    }

    /// Starts a unit of work that `undo` can take back alone, keeping the one before
    /// (one savepoint at a time: the one before is released in the same round trip).
    pub(crate) async fn savepoint(&mut self) -> Result<()> {
        let sql = if self.mark.is_some() { "RELEASE SAVEPOINT unit; SAVEPOINT unit" } else { "SAVEPOINT unit" };
        (&mut **self).execute(sql).await?;
        self.mark = Some(Mark {
            deferred: self.deferred.len(),
            held: self.held.clone(),
            fresh: self.fresh.clone(),
            lines: self.lines.clone(),
        });
        Ok(())
    }

    /// Takes back everything since the last `savepoint` (which stays, for the next unit).
    pub(crate) async fn undo(&mut self) -> Result<()> {
        if self.mark.is_none() {
            return Err(anyhow::anyhow!("undo without a savepoint").into());
        }
        (&mut **self).execute("ROLLBACK TO SAVEPOINT unit").await?;
        if let Some(m) = &self.mark {
            self.deferred.truncate(m.deferred);
            self.held = m.held.clone();
            self.fresh = m.fresh.clone();
            self.lines = m.lines.clone();
        }
        self.seen.clear();
        self.versions.clear();
        Ok(())
    }

    /// `res_type/id` as this transaction last saw it, if it did.
    pub(crate) fn seen(&self, res_type: &str, id: &str) -> Option<&Option<super::Stored>> {
        self.seen.get(&(res_type.to_string(), id.to_string()))
    }

    /// Records `res_type/id` as read or just written (`None`: not there). Past
    /// [`KEEP_WRITTEN`] resources (a bulk import in one transaction) only their text is
    /// kept, not also their values and index rows.
    pub(crate) fn saw(&mut self, res_type: &str, id: &str, mut state: Option<super::Stored>) {
        if self.seen.len() >= KEEP_WRITTEN {
            if let Some(s) = state.as_mut() {
                s.written = None;
            }
        }
        let key = (res_type.to_string(), id.to_string());
        self.versions.remove(&key);
        self.seen.insert(key, state);
    }

    /// Forgets `res_type/id`: written in a way whose result is not at hand.
    pub(crate) fn forget(&mut self, res_type: &str, id: &str) {
        let key = (res_type.to_string(), id.to_string());
        self.versions.remove(&key);
        self.seen.remove(&key);
    }

    /// Records the current `(pk, version)` of `res_type/id` as read ahead (`None`: not there).
    pub(crate) fn saw_version(&mut self, res_type: &str, id: &str, version: Option<(i64, i64)>) {
        self.versions.insert((res_type.to_string(), id.to_string()), version);
    }

    /// The current `(pk, version)` of `res_type/id` as this transaction last read or
    /// wrote it, if it did.
    pub(crate) fn version_seen(&self, res_type: &str, id: &str) -> Option<Option<(i64, i64)>> {
        let key = (res_type.to_string(), id.to_string());
        match self.seen.get(&key) {
            Some(state) => Some(state.as_ref().filter(|s| !s.deleted).map(|s| (s.pk, s.version))),
            None => self.versions.get(&key).copied(),
        }
    }

    /// Records `res_type/id` as written or row-locked by this transaction, in the
    /// state `state`.
    pub(crate) fn hold(&mut self, res_type: &str, id: &str, state: super::Stored) {
        self.held.insert((res_type.to_string(), id.to_string()));
        self.saw(res_type, id, Some(state));
    }

    /// `res_type/id` as this transaction holds it (written or row-locked), if it does.
    pub(crate) fn held(&self, res_type: &str, id: &str) -> Option<&super::Stored> {
        let key = (res_type.to_string(), id.to_string());
        if !self.held.contains(&key) {
            return None;
        }
        self.seen.get(&key).and_then(Option::as_ref)
    }

    /// Runs `statements` just before COMMIT, with the other deferred writes (in one
    /// statement on PostgreSQL): for rows nothing in this transaction reads back.
    pub(crate) fn defer(&mut self, statements: Vec<super::Sql>) {
        self.deferred.extend(statements);
    }

    /// Records `id` as given by this transaction to a resource it creates.
    pub(crate) fn fresh(&mut self, id: &str) {
        self.fresh.insert(id.to_string());
    }

    /// Records a ticket line written for `appointment`.
    pub(crate) fn line_written(&mut self, appointment: &str, charge_item: &str, invoice: &str) {
        self.lines.entry(appointment.to_string()).or_default().push((charge_item.to_string(), invoice.to_string()));
    }

    /// The ticket lines of `appointment` (charge item, invoice; oldest first) when
    /// this transaction knows them all: the appointment is one it created.
    pub(crate) fn lines_of_fresh(&self, appointment: &str) -> Option<Vec<(String, String)>> {
        self.fresh.contains(appointment).then(|| self.lines.get(appointment).cloned().unwrap_or_default())
    }

    /// Wakes `w` when this transaction commits (never when it rolls back).
    pub(crate) fn on_commit(&mut self, w: std::sync::Arc<tokio::sync::Notify>) {
        self.wake = Some(w);
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.link.as_deref().expect("an open transaction has its connection")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.link.as_deref_mut().expect("an open transaction has its connection")
    }
}

/// Releases a SQLite unit into the writer's group and waits for the group's COMMIT.
/// The release runs on a task of its own: it may commit the group for others too,
/// which a caller that goes away must not interrupt.
async fn released(turn: Turn, wake: Option<std::sync::Arc<tokio::sync::Notify>>) -> Result<()> {
    let stopped = || Error::Busy("the store's writer stopped before the write was committed; retry".into());
    let fate = tokio::spawn(turn.release(wake)).await.map_err(|_| stopped())??;
    fate.await.map_err(|_| stopped())?.map_err(Error::Busy)
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(link) = self.link.take() else { return };
        let mut conn = match link {
            Link::Own(conn) => conn,
            // The turn rolls its unit back as it goes.
            Link::Writer(turn) => return drop(turn),
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let r = conn.execute("ROLLBACK").await;
                let _ = conn.done(r);
            });
        }
    }
}

/// A connection for one write outside a transaction (`Store::write_conn`): on SQLite
/// a unit of the writer's group, on PostgreSQL a pooled connection.
pub(crate) enum WriteConn {
    Pool(Conn),
    Writer(Box<Tx>),
}

impl WriteConn {
    /// Hands the connection back once the write is durable, with its result.
    pub(crate) async fn done<T>(self, result: sqlx::Result<T>) -> Result<T> {
        match self {
            WriteConn::Pool(c) => c.done(result),
            WriteConn::Writer(tx) => {
                let out = result?;
                (*tx).commit().await?;
                Ok(out)
            }
        }
    }
}

impl Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            WriteConn::Pool(c) => c,
            WriteConn::Writer(tx) => tx,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            WriteConn::Pool(c) => c,
            WriteConn::Writer(tx) => tx,
        }
    }
}
