//! The store's connection pool and transactions.
//!
//! Why not sqlx's pool: it pings every connection when it is handed back (a round
//! trip to the database after every request, measured at ~18 % of the gateway's CPU
//! on reads). Here a connection goes back as it is when the last operation on it
//! finished; one whose operation was interrupted (a client that went away mid-query)
//! is closed instead, since its protocol state is unknown.
//!
//! On SQLite the pool's connections only read: writes go to the one writer (see
//! `writer`), which has a connection of its own, outside the pool's count.

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
    /// How long a request waits for a connection (and on SQLite for the writer).
    wait: Duration,
    /// SQLite: the one writer every write transaction of the process goes to.
    writer: super::writer::Writer,
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
            writer: Default::default(),
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

    pub(super) fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// SQLite: a turn of the writer (see `writer`), waited for at most the busy timeout.
    pub(super) async fn writer_turn(&self) -> Result<super::writer::Turn> {
        self.inner.writer.turn(self.inner.wait, self.connect()).await
    }

    async fn connect(&self) -> Result<AnyConnection> {
        let mut c = AnyConnection::connect_with(&self.inner.options).await.map_err(crate::error::unreachable)?;
        if self.inner.dialect == Dialect::Sqlite {
            // WAL lets readers run beside the one writer; the busy timeout makes the
            // writer wait for another process's lock instead of failing at once.
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
    pub(super) finished: bool,
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
