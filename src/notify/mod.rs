//! FHIR Subscriptions: apps that speak HTTP are told of changes instead of polling.
//!
//! Topic-based subscriptions as the Subscriptions R5 Backport IG defines them for R4
//! (`criteria` a topic's canonical URL, filters in the backport's filter-criteria
//! extension) and R4's own criteria subscriptions (`criteria` a search on a topic's
//! resource type). A change's events are written in its own transaction, matched
//! in SQL against its index rows and with each owner's visibility (`events`);
//! one dispatcher numbers them per subscription after commit and delivers them
//! (`dispatch`); `$status` and `$events` read them again (`crate::api`).
//! Websocket subscriptions are bound by a token (`binding`) and delivered to the
//! sockets bound in this process (`websocket`).

mod binding;
mod dispatch;
mod events;
mod heartbeat;
mod notification;
mod query;
mod registration;
mod status;
pub mod topics;
mod websocket;

use std::sync::Arc;

pub use binding::{bind, binding_token, WS_PATH};
pub use dispatch::run_forever;
pub use heartbeat::run_forever as heartbeats_forever;
pub use query::{events, status};
pub use websocket::{Binding, Frame, Sockets, WRITE_WAIT};

use crate::store::Hooks;

/// Delivery settings.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyConfig {
    /// The first pause, in milliseconds, before a failed notification is sent again;
    /// it doubles at each attempt. After the fifth the subscription is `error`,
    /// probed every minute and `active` again when its endpoint answers.
    #[arg(long, env = "CUPOLA_NOTIFY_RETRY_BASE_MS", default_value_t = 1000)]
    pub notify_retry_base_ms: u64,

    /// Accept `http://` endpoints and loopback or private addresses (tests, a
    /// closed network): by default an endpoint is `https://` on a public address.
    #[arg(long, env = "CUPOLA_SUBSCRIPTION_ALLOW_INSECURE")]
    pub subscription_allow_insecure: bool,

    /// Seconds a websocket binding token (`$get-ws-binding-token`) may wait to be
    /// presented; it binds one socket once.
    #[arg(long, env = "CUPOLA_SUBSCRIPTION_WS_TOKEN_SECS", default_value_t = 300)]
    pub subscription_ws_token_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { notify_retry_base_ms: 1000, subscription_allow_insecure: false, subscription_ws_token_secs: 300 }
    }
}

/// Attempts of one notification before its subscription is `error`.
pub const ATTEMPTS: i64 = 5;

/// Seconds between probes of a subscription in `error`.
pub const PROBE_SECS: i64 = 60;

/// The rules of subscriptions, by resource type: `Subscription` writes checked and
/// recorded, and each topic's resource type watched for events.
pub fn hooks(config: &NotifyConfig, base: &str) -> Hooks {
    let subs = Arc::new(registration::Subscriptions { allow_insecure: config.subscription_allow_insecure });
    let mut hooks = Hooks::default().with("Subscription", subs);
    let mut watched: Vec<&'static str> = topics::TOPICS.iter().map(|t| t.res_type).collect();
    watched.dedup();
    for res_type in watched {
        let bodies = topics::TOPICS.iter().any(|t| t.res_type == res_type && t.trigger != topics::Trigger::AnyChange);
        hooks = hooks.with(res_type, Arc::new(events::Events { base: base.to_string(), bodies }));
    }
    hooks
}
