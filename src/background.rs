//! What runs beside the HTTP API, started by `main` (and by the tests' gateways)
//! once the state is built, not by the API: the sweep of expired holds and
//! proposals, the outbox relay when a broker is configured, the providers' daily
//! lists when a time is set.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::api::AppState;

/// The tasks started; stopped with [`Background::stop`] once the API has stopped.
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the background work `state`'s configuration asks for.
pub fn start(state: &AppState) -> Background {
    let config = &state.config;
    let store = state.store.clone();
    let mut tasks = vec![tokio::spawn(crate::booking::sweep_forever(
        store.clone(),
        Duration::from_millis(config.booking.sweep_ms.max(10)),
    ))];
    if let Some(url) = config.amqp_url.clone() {
        let topology = std::sync::Arc::new(store.settings().messaging.topology());
        let wake = store.outbox_wake();
        let metrics = state.metrics.clone();
        tasks.push(tokio::spawn(crate::messaging::relay::run_forever(store.clone(), url, topology, wake, metrics)));
    }
    let (notify, sockets) = (config.notify.clone(), state.sockets.clone());
    tasks.push(tokio::spawn(crate::notify::run_forever(
        store.clone(),
        notify.clone(),
        state.base.to_string(),
        sockets,
    )));
    tasks.push(tokio::spawn(crate::notify::heartbeats_forever(store.clone(), notify, state.base.to_string())));
    tasks.push(tokio::spawn(crate::messaging::retention_forever(
        store.clone(),
        config.outbox_body_retention_hours,
        Duration::from_secs(config.outbox_retention_sweep_secs.max(1)),
    )));
    // SQLite has no autovacuum to stand in for: nothing to tick for.
    if config.db_upkeep_secs > 0 && store.dialect() == cupola_search::Dialect::Postgres {
        let every = Duration::from_secs(config.db_upkeep_secs);
        tasks.push(tokio::spawn(upkeep_forever(store.clone(), every, state.metrics.clone())));
    }
    if let Some(at) = config.daily_lists_at {
        tasks.push(tokio::spawn(crate::messaging::daily_lists_forever(store, at)));
    }
    Background { tasks }
}

/// Every `every`, vacuums and analyzes the PostgreSQL tables the server's
/// autovacuum leaves alone and that changed enough (`Store::tables_due_upkeep`).
async fn upkeep_forever(store: crate::store::Store, every: Duration, metrics: std::sync::Arc<crate::metrics::Metrics>) {
    match store.autovacuum_on().await {
        Ok(false) => tracing::warn!(
            every_secs = every.as_secs(),
            "PostgreSQL's autovacuum is off: the gateway vacuums and analyzes its own tables; \
             turn it on (autovacuum = on in postgresql.conf) for a production server"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read PostgreSQL's autovacuum setting"),
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = match store.tables_due_upkeep().await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "listing the tables due a VACUUM (ANALYZE) failed; retrying at the next round");
                continue;
            }
        };
        for table in due {
            let started = std::time::Instant::now();
            match store.vacuum_analyze(&table).await {
                Ok(()) => {
                    metrics.upkept(&table);
                    tracing::info!(table, ms = started.elapsed().as_millis() as u64, "table vacuumed and analyzed");
                }
                Err(e) => tracing::warn!(table, error = %e, "VACUUM (ANALYZE) failed; retrying at the next round"),
            }
        }
    }
}

impl Background {
    /// Stops every task (the relay's unconfirmed claims run out their lease).
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}
