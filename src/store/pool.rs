//! The store's connection pool and transactions.
//!
//! Why not sqlx's pool: it pings every connection when it is handed back (a round
//! trip to the database after every request, measured at ~18 % of the gateway's CPU
//! on reads). Here a connection goes back as it is when the last operation on it
//! finished; one whose operation was interrupted (a client that went away mid-query)
//! is closed instead, since its protocol state is unknown.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Dialect;
use crate::{Error, Result};

#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<Vec<AnyConnection>>,
    permits: Arc<Semaphore>,
    size: usize,
    options: AnyConnectOptions,
    dialect: Dialect,
    /// How long a request waits for a connection (and SQLite for its write lock).
    wait: Duration,
    /// SQLite: the gateway's writers queue here, in order, for the one write lock
    /// SQLite grants, instead of polling for it in SQLite's busy handler (which
    /// sleeps up to 100 ms between tries). Correctness does not rest on it: each
    /// write transaction still takes SQLite's lock (`BEGIN IMMEDIATE`), which is what
    /// serialises two gateway processes on one file.
    writers: Arc<tokio::sync::Mutex<()>>,
    /// PostgreSQL: native connections for what the `Any` driver cannot send (COPY),
    /// kept for the next bulk write. Few: only bulk generation takes them.
    native_idle: Mutex<Vec<sqlx::PgConnection>>,
}

impl Pool {
    pub(crate) fn new(options: AnyConnectOptions, dialect: Dialect, size: u32, wait: Duration) -> Pool {
        let inner = Inner {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1) as usize)),
            size: size.max(1) as usize,
            options,
            dialect,
            wait,
            writers: Arc::new(tokio::sync::Mutex::new(())),
            native_idle: Mutex::new(Vec::new()),
        };
        Pool { inner: Arc::new(inner) }
    }

    /// A connection: an idle one, or a new one while under the size.
    pub(crate) async fn get(&self) -> Result<Conn> {
        let permit = tokio::time::timeout(self.inner.wait, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy("all database connections are busy; retry in a moment".into()))?
            .map_err(|_| Error::Busy("the store is shutting down".into()))?;
        let idle = self.inner.idle.lock().ok().and_then(|mut v| v.pop());
        let raw = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Conn { raw: Some(raw), pool: self.inner.clone(), _permit: permit, finished: true })
    }

    /// Connections lent out, idle, and the pool's size (the native ones aside).
    pub(crate) fn usage(&self) -> super::PoolUsage {
        let idle = self.inner.idle.lock().map(|v| v.len()).unwrap_or_default();
        let in_use = self.inner.size.saturating_sub(self.inner.permits.available_permits());
        super::PoolUsage { in_use, idle, max: self.inner.size }
    }

    /// PostgreSQL: a native connection (an idle one, or a new one), outside the
    /// pool's count; [`Pool::native_done`] keeps it for the next caller.
    pub(crate) async fn native(&self) -> Result<sqlx::PgConnection> {
        if let Some(c) = self.inner.native_idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let options =
            <sqlx::postgres::PgConnectOptions as sqlx::ConnectOptions>::from_url(&self.inner.options.database_url)?;
        Ok(sqlx::PgConnection::connect_with(&options).await?)
    }

    /// Hands back a native connection whose last operation finished cleanly.
    pub(crate) fn native_done(&self, c: sqlx::PgConnection) {
        if let Ok(mut idle) = self.inner.native_idle.lock() {
            idle.push(c);
        }
    }

    async fn connect(&self) -> Result<AnyConnection> {
        let mut c = AnyConnection::connect_with(&self.inner.options).await.map_err(crate::error::unreachable)?;
        if self.inner.dialect == Dialect::Sqlite {
            // WAL lets readers run beside the one writer; the busy timeout makes a
            // writer wait for the lock instead of failing at once.
            let ms = self.inner.wait.as_millis();
            c.execute(&*format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout={ms}; PRAGMA foreign_keys=ON"
            ))
            .await?;
        }
        Ok(c)
    }
}

/// A connection lent by the pool.
pub(crate) struct Conn {
    raw: Option<AnyConnection>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
    /// Cleared when the connection is lent out for an operation (`DerefMut`), set
    /// again by `done` when the database answered: only then does it go back idle.
    finished: bool,
}

impl Conn {
    /// Marks the operation done (whatever its result, as long as the database
    /// answered) and hands the connection back.
    pub(crate) fn done<T>(mut self, result: sqlx::Result<T>) -> Result<T> {
        self.finished = !matches!(result, Err(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)));
        Ok(result?)
    }
}

impl Deref for Conn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.raw.as_ref().expect("a lent connection is present until dropped")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.finished = false;
        self.raw.as_mut().expect("a lent connection is present until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let (true, Some(raw)) = (self.finished, self.raw.take()) {
            if let Ok(mut idle) = self.pool.idle.lock() {
                idle.push(raw);
            }
        }
    }
}

/// A write transaction on one connection: committed by `commit`, rolled back when
/// dropped without it (an error on the way: nothing it wrote remains).
pub struct Tx {
    conn: Option<Conn>,
    /// SQLite: this process's turn to write (see `Inner::writers`); released with the transaction.
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
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
        let turn = match pool.inner.dialect {
            Dialect::Sqlite => Some(
                tokio::time::timeout(pool.inner.wait, pool.inner.writers.clone().lock_owned())
                    .await
                    .map_err(|_| Error::Busy("the database is busy writing; retry in a moment".into()))?,
            ),
            Dialect::Postgres => None,
        };
        let mut conn = pool.get().await?;
        // SQLite takes the write lock at once, so that a read-then-write inside the
        // transaction never fails to upgrade; waiting writers queue on the busy timeout.
        let begin = if pool.inner.dialect == Dialect::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
        let r = conn.execute(begin).await;
        conn.finished = r.is_ok();
        r?;
        Ok(Tx {
            conn: Some(conn),
            turn,
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

    pub async fn commit(mut self) -> Result<()> {
        let Some(mut conn) = self.conn.take() else { return Ok(()) };
        let dialect = conn.pool.dialect;
        let deferred = match dialect {
            Dialect::Postgres => {
                super::fold::folded(dialect, super::fold::merged_rows(std::mem::take(&mut self.deferred)))
            }
            Dialect::Sqlite => std::mem::take(&mut self.deferred),
        };
        for s in deferred {
            let r = sqlx::query_with(&s.text, super::into_arguments(s.binds)).execute(&mut *conn).await;
            if let Err(e) = r {
                // Rolled back as a dropped transaction is.
                self.conn = Some(conn);
                return Err(e.into());
            }
        }
        let r = conn.execute("COMMIT").await;
        conn.done(r)?;
        if let Some(w) = self.wake.take() {
            w.notify_one();
        }
        Ok(())
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
        self.conn.as_deref().expect("an open transaction has its connection")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("an open transaction has its connection")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        // The turn to write is given up once the rollback is through.
        let turn = self.turn.take();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let r = conn.execute("ROLLBACK").await;
                let _ = conn.done(r);
                drop(turn);
            });
        }
    }
}
