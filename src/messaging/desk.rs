//! What the integration desk reads of the outbox (`$outbox`, `$outbox-summary`):
//! the provider a filter names, one message with the Bundle it carries, and each
//! provider's figures — its oldest message waiting, its last answer, and how far
//! its answers lag behind what it was sent.

use serde_json::Value;

use super::views::Provider;
use crate::access::Access;
use crate::store::{now_micros, OutboxQuery, OutboxRow, Store};
use crate::{Error, Result};

/// The provider code `given` names: an Organization (`Organization/x`, or its id)
/// with a provider code, or else a provider code itself (the outbox's rows carry
/// codes). 400 naming `provider` for an Organization that is unknown or no provider.
pub async fn provider_code(store: &Store, given: &str) -> Result<String> {
    let bad = |why: String| Error::invalid("value", Some("provider".into()), why);
    let (id, explicit) = match given.strip_prefix("Organization/") {
        Some(id) => (id, true),
        None => (given, false),
    };
    let found = store.read(&Access::gateway(), "Organization", id).await?.and_then(|s| s.body);
    let Some(body) = found else {
        return if explicit { Err(bad(format!("provider={given}: no such Organization"))) } else { Ok(given.into()) };
    };
    let org: Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
    let base = store.settings().base.clone();
    Provider::of(&org, &base)?.code.ok_or_else(|| {
        bad(format!("provider={given}: Organization/{id} has no provider code ({base}/sid/provider), so no messages"))
    })
}

/// Message `id`'s row and the Bundle it carries (sent, or to be sent; `None` once
/// removed after its retention). 400 naming `message-id` when the outbox does not
/// hold it.
pub async fn message(store: &Store, id: &str) -> Result<(OutboxRow, Option<Value>)> {
    let q = OutboxQuery { message_id: Some(id.into()), limit: 1, ..Default::default() };
    let row = store.outbox(&q).await?.into_iter().next();
    let Some(row) = row else {
        return Err(Error::invalid("not-found", Some("message-id".into()), format!("no message {id} in the outbox")));
    };
    let Some(body) = store.outbox_body(id).await? else { return Ok((row, None)) };
    let bundle = serde_json::from_str(&body).map_err(|e| anyhow::anyhow!("outbox message {id}'s body: {e}"))?;
    Ok((row, Some(bundle)))
}

/// A provider's figures, in seconds where they are ages.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub provider: String,
    /// Its messages by status, among pending, unroutable, failed and parked.
    pub waiting: Vec<(String, i64)>,
    /// The oldest message still to be published (pending or unroutable): id, created, age.
    pub oldest_pending: Option<(String, i64, i64)>,
    /// Its last answer: message id, outcome, when.
    pub last_ack: Option<(String, String, i64)>,
    /// How long the first message sent to it after the one it last answered has
    /// waited for an answer (0: it answered everything sent since), and that message.
    pub lag: i64,
    pub unanswered: Option<String>,
}

/// The figures of every provider the gateway has a map for or has messages waiting
/// for; `only`'s alone when given.
pub async fn summary(store: &Store, only: Option<&str>) -> Result<Vec<Summary>> {
    let known: Vec<String> = store.settings().messaging.providers.iter().map(|p| p.provider.clone()).collect();
    let now = now_micros();
    let seconds = |since: i64| (now - since).max(0) / 1_000_000;
    let figures = store.outbox_figures(&known, only).await?;
    Ok(figures
        .into_iter()
        .map(|f| Summary {
            provider: f.provider,
            waiting: f.waiting,
            oldest_pending: f.oldest_waiting.map(|(id, created)| (id, created, seconds(created))),
            last_ack: f.last_ack,
            lag: f.unanswered.as_ref().map_or(0, |(_, sent)| seconds(*sent)),
            unanswered: f.unanswered.map(|(id, _)| id),
        })
        .collect())
}
