//! Messaging: the FHIR messages provider systems receive through RabbitMQ.
//!
//! Every domain event (an appointment booked, rescheduled, cancelled or changed; a
//! charge item created, paid or refunded) is written to the outbox in the same
//! database transaction as the change itself (`store::messages`, `store::outbox`),
//! as a FHIR message Bundle (`message`) in the provider's own codes. The relay
//! (`relay`) publishes the outbox with publisher confirms to a topic exchange,
//! routing key `<provider>.<resource>.<event>`, one durable queue per provider and
//! a dead-letter exchange. Without a broker configured, messages wait in the
//! outbox and flow once one is. Administrators watch and mend the flow through the
//! integration desk's operations: the outbox and its figures (`desk`), resends with
//! today's code maps (`resend`), the dead-letter queue read and replayed
//! (`dead_letter`, `replay`).

mod changes;
pub mod cli;
pub mod consumer;
pub mod dead_letter;
pub mod desk;
pub mod inbound;
pub mod message;
mod provider;
pub mod relay;
pub mod replay;
pub mod resend;
mod retention;
mod settle;
pub mod views;

pub use changes::dispatch_daily_lists;
pub(crate) use changes::{appointment_message, charge_message, closure_messages};
pub use message::{build, Destination, Event};
pub use retention::retention_forever;

use crate::mappings::{ProviderMap, Routing};

/// What the store needs to write messages: the routing and the providers' code maps.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub routing: Routing,
    pub providers: Vec<ProviderMap>,
}

impl Settings {
    pub fn map_of(&self, provider: &str) -> Option<&ProviderMap> {
        self.providers.iter().find(|p| p.provider == provider)
    }

    /// The broker objects the gateway declares at start-up.
    pub fn topology(&self) -> Topology {
        Topology {
            exchange: self.routing.exchange.clone(),
            providers: self.providers.iter().map(|p| p.provider.clone()).collect(),
        }
    }
}

/// The exchange and the providers whose queues the gateway declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub exchange: String,
    pub providers: Vec<String>,
}

impl Topology {
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead-letter", self.exchange)
    }

    /// Where provider systems publish their messages (fanout), and its queue.
    pub fn inbound_exchange(&self) -> String {
        format!("{}.inbound", self.exchange)
    }

    pub fn inbound_queue(&self) -> String {
        format!("{}.inbound", self.exchange)
    }

    /// The durable queue of `provider`: `<exchange>.provider.<code>`.
    pub fn provider_queue(&self, provider: &str) -> String {
        format!("{}.provider.{provider}", self.exchange)
    }
}

/// Sends the daily appointment lists every day at `at` (Europe/Rome), for the
/// gateway's life. Each list's message id is fixed by provider and day, so that
/// gateways sharing a database send it once.
pub async fn daily_lists_forever(store: crate::store::Store, at: chrono::NaiveTime) {
    loop {
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome);
        let today = now.date_naive();
        let next = [today, today.succ_opt().unwrap_or(today)]
            .into_iter()
            .filter_map(|d| d.and_time(at).and_local_timezone(chrono_tz::Europe::Rome).earliest())
            .find(|t| *t > now);
        let Some(next) = next else { return };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        match dispatch_daily_lists(&store, next.date_naive(), true).await {
            Ok(sent) => tracing::info!(providers = sent.len(), day = %next.date_naive(), "daily lists dispatched"),
            Err(e) => {
                tracing::warn!(error = %e, "daily lists not dispatched; run cupola dispatch-lists --date to send them")
            }
        }
    }
}
