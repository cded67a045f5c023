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
    if let Some(at) = config.daily_lists_at {
        tasks.push(tokio::spawn(crate::messaging::daily_lists_forever(store, at)));
    }
    Background { tasks }
}

impl Background {
    /// Stops every task (the relay's unconfirmed claims run out their lease).
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}
