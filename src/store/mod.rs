//! The canonical store: every version of every resource, their search indexes, one
//! database transaction per request. SQLite (embedded default) and PostgreSQL share
//! this code through sqlx's `Any` driver; only the SQL that must differ is written
//! per backend (see `schema` and the `Dialect` checks).

mod body;
mod conditional;
mod create;
mod fold;
mod grid;
mod grid_write;
mod group;
mod history;
mod hooks;
mod lease;
mod lookups;
pub(crate) use lookups::{reference_lookup, token_lookup};
mod binding_tokens;
mod notifications;
mod outbox;
mod outbox_view;
mod places;
pub use places::PlaceClaim;
mod pool;
mod resend;
mod resolve;
mod resources;
mod retention;
mod versions;
pub(crate) use resources::{current, current_seen, current_visible, matches_rule, seen_ahead, value_of, version_of};
mod schema;
mod search;
mod shared;
mod slots;
mod subscriptions;
mod tx;
mod upkeep;
mod upsert;
mod waitlist;
pub use waitlist::{FreedSlot, WaitRow};
mod write;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
pub use cupola_search::{Bind, Dialect, Registry, Sql};
use std::str::FromStr;

use pool::Pool;
use sqlx::any::{AnyArguments, AnyConnectOptions};
use sqlx::Arguments;
pub use tx::Tx;

pub use body::pack as pack_body;
pub use create::{create_statements, single_statement};
pub(crate) use grid::fhir_instant;
pub use grid::{place_slots, render as render_grid_slot, AgendaInfo, Place, Shared, SlotRow};
pub use history::{HistoryEntry, HistoryPage, HistoryRequest};
pub use hooks::{AfterHooked, Changed, Hooked, Hooks, Pending, Verdict, WriteHook};
pub use lease::{Claimed, Lease};
pub use notifications::{EventRow, SubscriptionState};
pub use outbox::{OutboxBacklog, Outgoing};
pub use outbox_view::{OutboxQuery, OutboxRow, ProviderFigures};
pub use resend::{OutboxState, Resend};
pub use resources::{new_id, Stored, Write, WriteKind};
pub use search::SearchPage;
pub(crate) use shared::work;
pub use subscriptions::{Candidate, Filter, FilterValue, Owner, Registration};
pub use upsert::Upsert;
pub use versions::{next_version_sql, version_statements, NewVersion};

use crate::Result;

/// The store: a pool, its dialect and the search-parameter registry used to index
/// every write.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    dialect: Dialect,
    registry: Arc<Registry>,
    /// The domain's settings, which the store carries without knowing their type
    /// (the domain reads them back: `booking::Settings` through `Store::settings`).
    domain: Arc<dyn std::any::Any + Send + Sync>,
    /// Woken when a transaction that wrote the outbox commits (the relay waits on it).
    outbox_wake: Arc<tokio::sync::Notify>,
    /// Woken when a transaction that wrote subscription events commits.
    notify_wake: Arc<tokio::sync::Notify>,
    /// Groups of concurrent units of work committed together (0: each alone).
    book_lanes: usize,
    /// Plain creates written together when they arrive together (PostgreSQL).
    group: group::Group,
    /// Units of work (`$book`) committed together when they arrive together.
    shared: shared::Shared,
    /// The domain's rules, run inside every write of their resource types.
    hooks: Arc<hooks::Hooks>,
    /// Told how long each write transaction waited to begin (the gateway's metrics).
    write_wait: Option<WaitObserver>,
}

/// Called with each wait for a write transaction (see [`Store::observe_write_waits`]).
pub type WaitObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// The pool's connections at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolUsage {
    /// Lent out to a request or a transaction.
    pub in_use: usize,
    /// Open and waiting for the next request.
    pub idle: usize,
    /// The most there may be (`--db-max-connections`).
    pub max: usize,
}

impl Store {
    /// Connects (creating an SQLite file if missing) and runs the migrations.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        busy_timeout: Duration,
        registry: Arc<Registry>,
    ) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            anyhow::bail!("unsupported --database-url {url:?}: use sqlite://FILE or postgres://USER@HOST/DB");
        };
        let url = sqlite_create_mode(url, dialect);
        let options =
            AnyConnectOptions::from_str(&url).with_context(|| format!("--database-url {url} is not a valid URL"))?;
        // One connection opened directly, so that a failure says why (the pool answers
        // clients only that the database cannot be reached).
        let probe = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options).await.with_context(|| {
            format!("cannot open the database {url}; check --database-url and that the server is running")
        })?;
        drop(probe);
        let pool = Pool::new(options, dialect, max_connections, busy_timeout);
        let store = Store {
            pool,
            dialect,
            registry,
            domain: Arc::new(()),
            outbox_wake: Default::default(),
            notify_wake: Default::default(),
            book_lanes: 0,
            group: Default::default(),
            shared: Default::default(),
            hooks: Default::default(),
            write_wait: None,
        };
        schema::migrate(&store).await.context("running the database migrations")?;
        Ok(store)
    }

    /// The same store carrying `domain` (the domain's settings, read back with
    /// [`Store::domain`]) and committing `book_lanes` groups of work at once.
    pub fn with_domain<T: std::any::Any + Send + Sync>(mut self, domain: T, book_lanes: usize) -> Store {
        self.domain = Arc::new(domain);
        self.book_lanes = book_lanes;
        self
    }

    /// The domain's settings, if they are of type `T`.
    pub fn domain<T: std::any::Any>(&self) -> Option<&T> {
        self.domain.downcast_ref::<T>()
    }

    /// Woken when a transaction that wrote the outbox commits.
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox_wake.clone()
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> bool {
        match self.pool.get().await {
            Ok(mut c) => {
                let r = sqlx::query("SELECT 1").execute(&mut *c).await;
                c.done(r).is_ok()
            }
            Err(_) => false,
        }
    }

    /// The same store telling `observer` how long each write transaction waited to
    /// begin; the stores cloned from it after this call tell it too.
    pub fn observe_write_waits(mut self, observer: WaitObserver) -> Store {
        self.write_wait = Some(observer);
        self
    }

    /// Starts a write transaction (see `Tx`). The wait is timed here, around all
    /// that `Tx::begin` waits for (on SQLite the writer's turn, and the lock when its
    /// group begins; on PostgreSQL a connection and BEGIN); only a transaction that
    /// began is counted (one that gave up answers 503, which the request metrics show).
    pub async fn begin(&self) -> Result<Tx> {
        let asked = std::time::Instant::now();
        let tx = Tx::begin(&self.pool).await?;
        if let Some(observe) = &self.write_wait {
            observe(asked.elapsed());
        }
        Ok(tx)
    }

    /// The pool's connections now (for metrics).
    pub fn pool_usage(&self) -> PoolUsage {
        self.pool.usage()
    }

    /// A connection for reads outside a transaction.
    pub(crate) async fn conn(&self) -> Result<pool::Conn> {
        self.pool.get().await
    }

    /// A connection for one write outside a transaction: on SQLite a unit of the
    /// writer's (every write goes to it), on PostgreSQL a pooled connection.
    pub(crate) async fn write_conn(&self) -> Result<tx::WriteConn> {
        match self.dialect {
            Dialect::Sqlite => Ok(tx::WriteConn::Writer(Box::new(self.begin().await?))),
            Dialect::Postgres => Ok(tx::WriteConn::Pool(self.pool.get().await?)),
        }
    }
}

/// sqlx opens SQLite files read-write but does not create them unless asked.
fn sqlite_create_mode(url: &str, dialect: Dialect) -> String {
    if dialect == Dialect::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}mode=rwc")
    } else {
        url.to_string()
    }
}

/// Binds generated parameters into sqlx arguments.
pub(crate) fn arguments(binds: &[Bind]) -> AnyArguments<'static> {
    into_arguments(binds.iter().cloned())
}

/// The same, taking the binds (no copy of their text).
pub(crate) fn into_arguments(binds: impl IntoIterator<Item = Bind>) -> AnyArguments<'static> {
    let mut args = AnyArguments::default();
    for b in binds {
        // Adding to AnyArguments only fails for types Any cannot carry; these it can.
        let _ = match b {
            Bind::Int(i) => args.add(i),
            Bind::Text(s) => args.add(s),
            Bind::Bytes(b) => args.add(b),
            Bind::Bool(v) => args.add(v),
            Bind::NullText => args.add(Option::<String>::None),
            Bind::NullInt => args.add(Option::<i64>::None),
        };
    }
    args
}

/// Runs generated statements (index inserts/deletes) in a transaction.
pub(crate) async fn execute_all(tx: &mut Tx, stmts: Vec<cupola_search::Sql>) -> Result<()> {
    for s in stmts {
        sqlx::query_with(&s.text, arguments(&s.binds)).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Current time in µs since the Unix epoch (UTC): the store's time unit, FHIR's
/// `meta.lastUpdated` clock.
pub use crate::fhir::meta::now_micros;
