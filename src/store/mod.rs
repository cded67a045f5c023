//! The canonical store: every version of every resource, their search indexes, one
//! database transaction per request. SQLite (embedded default) and PostgreSQL share
//! this code through sqlx's `Any` driver; only the SQL that must differ is written
//! per backend (see `schema` and the `Dialect` checks).

mod conditional;
mod create;
mod history;
mod resources;
pub(crate) use resources::current;
mod schema;
mod search;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
pub use cupola_search::{Bind, Dialect, Registry, Sql};
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::{Any, AnyPool, Arguments, Executor};

pub use create::{create_statements, single_statement};
pub use history::{HistoryEntry, HistoryPage, HistoryRequest};
pub use resources::{new_id, Stored, Write, WriteKind};
pub use search::SearchPage;

use crate::Result;

/// A transaction on the store.
pub type Tx = sqlx::Transaction<'static, Any>;

/// The store: a pool, its dialect and the search-parameter registry used to index
/// every write.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    registry: Arc<Registry>,
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
        let busy_ms = busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(busy_timeout)
            // A broken connection fails its query and is replaced; pinging on every
            // acquire would double the round trips of every request.
            .test_before_acquire(false)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // a writer wait for the lock instead of failing at once.
                        conn.execute(&*format!(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout={busy_ms}; PRAGMA foreign_keys=ON"
                        ))
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the database {url}; check --database-url and that the server is running"))?;
        let store = Store { pool, dialect, registry };
        schema::migrate(&store).await.context("running the database migrations")?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so that a read-then-write inside it can never fail to
    /// upgrade; waiting writers queue on the busy timeout.
    pub async fn begin(&self) -> Result<Tx> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
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
    let mut args = AnyArguments::default();
    for b in binds {
        // Adding to AnyArguments only fails for types Any cannot carry; these four it can.
        let _ = match b {
            Bind::Int(i) => args.add(*i),
            Bind::Text(s) => args.add(s.clone()),
            Bind::Bool(v) => args.add(*v),
            Bind::NullText => args.add(Option::<String>::None),
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
