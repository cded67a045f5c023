//! The canonical store: every version of every resource, their search indexes, one
//! database transaction per request. SQLite (embedded default) and PostgreSQL share
//! this code through sqlx's `Any` driver; only the SQL that must differ is written
//! per backend (see `schema` and the `Dialect` checks).

mod bookings;
mod claims;
mod conditional;
mod create;
mod fold;
mod group;
mod history;
mod hooks;
mod lease;
mod lookups;
mod messages;
mod outbox;
mod pool;
mod prescriptions;
mod resolve;
mod resources;
mod versions;
pub(crate) use resources::{current, current_seen, current_visible, seen_ahead, value_of, version_of};
mod payments;
mod schema;
mod search;
mod settlement;
mod shared;
mod slots;
mod tickets;
mod upsert;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
pub use cupola_search::{Bind, Dialect, Registry, Sql};
use std::str::FromStr;

use pool::Pool;
pub use pool::Tx;
use sqlx::any::{AnyArguments, AnyConnectOptions};
use sqlx::Arguments;

pub use create::{create_statements, single_statement};
pub use history::{HistoryEntry, HistoryPage, HistoryRequest};
pub use hooks::{Hooked, Hooks, Pending, Verdict, WriteHook};
pub use lease::{Claimed, Lease};
pub use outbox::OutboxRow;
pub use resources::{new_id, Stored, Write, WriteKind};
pub use search::SearchPage;
pub(crate) use shared::{work, Output};
pub use upsert::Upsert;
pub use versions::{next_version_sql, version_statements};

use crate::Result;

/// The store: a pool, its dialect and the search-parameter registry used to index
/// every write.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    dialect: Dialect,
    registry: Arc<Registry>,
    /// What the booking rules applied on every Appointment write need.
    settings: Arc<crate::booking::Settings>,
    /// Plain creates written together when they arrive together (PostgreSQL).
    group: group::Group,
    /// Units of work (`$book`) committed together when they arrive together.
    shared: shared::Shared,
    /// The domain's rules, run inside every write of their resource types.
    hooks: Arc<hooks::Hooks>,
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
            settings: Arc::new(crate::booking::Settings::default()),
            group: Default::default(),
            shared: Default::default(),
            hooks: Default::default(),
        };
        schema::migrate(&store).await.context("running the database migrations")?;
        Ok(store)
    }

    /// The same store with the booking settings of this gateway (canonical base,
    /// hold time); the domain sets them with its hooks (`booking::hooks::configured`).
    pub(crate) fn with_settings(mut self, settings: crate::booking::Settings) -> Store {
        self.settings = Arc::new(settings);
        self
    }

    pub fn settings(&self) -> &crate::booking::Settings {
        &self.settings
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

    /// Starts a write transaction (see `Tx`).
    pub async fn begin(&self) -> Result<Tx> {
        Tx::begin(&self.pool).await
    }

    /// A connection for reads outside a transaction.
    pub(crate) async fn conn(&self) -> Result<pool::Conn> {
        self.pool.get().await
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

/// Current time in µs since the Unix epoch (UTC): the store's time unit.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
