//! Resending outbox messages (the integration desk's `$resend`). Each is rebuilt
//! with its provider's ConceptMap as it is now — a code fixed through the API since
//! is translated — and queued again: under its own id, unless the provider answered
//! it (`ok` or `fatal-error`: a FHIR messaging receiver answers an id it has
//! processed with its first response, so the same id would not be processed again);
//! then as a new message, which the answer names. Unroutable, parked, failed and
//! sent messages become pending. Never twice by accident: a pending message is left
//! as it is, one resent less than [`GUARD_US`] ago is not resent again (two
//! operators, a double click), and requests resending one message at once queue it
//! once (the store's writes are compare-and-set on the state decided on).

use serde_json::Value;

use crate::access::Access;
use crate::mappings::ProviderMap;
use crate::store::{new_id, now_micros, OutboxQuery, OutboxState, Outgoing, Resend, Store};
use crate::{Error, Result};

/// How long after a resend the same message is not resent again, by the
/// database's clock.
pub const GUARD_US: i64 = 10_000_000;

/// How many times one message is read again when other requests keep changing it,
/// or links of resends followed.
const TRIES: usize = 32;

/// What became of a message asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Queued again under its id.
    Queued,
    /// Queued as a new message: the provider had answered the one asked for.
    QueuedAs,
    /// Rebuilt, but a code still has no mapping: held as `failed`, with the reason.
    Held,
    /// Pending already: it goes by itself.
    AlreadyPending,
    /// Resent moments ago, by another request or this one's double.
    AlreadyResent,
    /// Acknowledged `ok` by its provider long enough ago that its body was removed
    /// (`--outbox-body-retention-hours`): nothing to rebuild it from.
    BodyRemoved,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::QueuedAs => "queued-as-new",
            Outcome::Held => "held",
            Outcome::AlreadyPending => "already-pending",
            Outcome::AlreadyResent => "already-resent",
            Outcome::BodyRemoved => "body-removed",
        }
    }
}

/// One message asked for, and what became of it.
#[derive(Debug, Clone)]
pub struct Resent {
    /// The message asked for.
    pub asked: String,
    /// The message queued or found: the one asked for, or the last it was resent as.
    pub message_id: String,
    pub outcome: Outcome,
    /// Its status now, and why, in plain words.
    pub status: String,
    pub detail: String,
    /// What it is about (`Appointment/x`).
    pub focus: String,
}

/// Resends each of `ids`, in order. An id the outbox does not hold is refused
/// before anything is resent (400 naming `message-id`).
pub async fn resend(store: &Store, ids: &[String]) -> Result<Vec<Resent>> {
    for id in ids {
        if store.outbox_state(id).await?.is_none() {
            return Err(Error::invalid(
                "not-found",
                Some("message-id".into()),
                format!("no message {id} in the outbox"),
            ));
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(resend_one(store, id).await?);
    }
    Ok(out)
}

/// Resends the messages of `status` (of `provider` when given), oldest first, at
/// most `limit` of them.
pub async fn resend_where(store: &Store, provider: Option<String>, status: &str, limit: i64) -> Result<Vec<Resent>> {
    let q = OutboxQuery { status: Some(status.into()), provider, limit, ..Default::default() };
    let mut ids: Vec<String> = store.outbox(&q).await?.into_iter().map(|r| r.message_id).collect();
    ids.reverse();
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        out.push(resend_one(store, id).await?);
    }
    Ok(out)
}

async fn resend_one(store: &Store, asked: &str) -> Result<Resent> {
    let mut id = asked.to_string();
    for _ in 0..TRIES {
        let Some(seen) = store.outbox_state(&id).await? else {
            return Err(Error::invalid(
                "not-found",
                Some("message-id".into()),
                format!("no message {id} in the outbox"),
            ));
        };
        // Resent before as another: that one is the message now.
        if let Some(next) = &seen.row.resent_as {
            id = next.clone();
            continue;
        }
        if let Some(left) = left_alone(asked, &seen) {
            return Ok(left);
        }
        if let Some(done) = attempt(store, asked, &seen).await? {
            return Ok(done);
        }
    }
    Err(Error::Conflict(format!("message {asked} kept changing while being resent; ask again")))
}

/// A message the resend leaves as it is: pending, without its body, or resent
/// moments ago.
fn left_alone(asked: &str, seen: &OutboxState) -> Option<Resent> {
    let found = |outcome, detail: String| Resent {
        asked: asked.to_string(),
        message_id: seen.row.message_id.clone(),
        outcome,
        status: seen.row.status.clone(),
        detail,
        focus: seen.row.focus.clone(),
    };
    if seen.row.status == "pending" {
        return Some(found(Outcome::AlreadyPending, "pending already: the relay sends it".into()));
    }
    if seen.body.is_empty() {
        let detail = "its provider acknowledged it and its body was removed after the retention period \
             (--outbox-body-retention-hours): make a new change to the resource to tell the provider again";
        return Some(found(Outcome::BodyRemoved, detail.into()));
    }
    let ago = seen.row.resent_us.map(|t| seen.now_us - t).filter(|ago| *ago < GUARD_US)?;
    let detail = format!("resent {} ms ago: not resent again within {} s", ago / 1000, GUARD_US / 1_000_000);
    Some(found(Outcome::AlreadyResent, detail))
}

/// Rebuilds `seen` and writes it back queued, under its id or a new one; `None`
/// when it changed meanwhile (it is read again).
async fn attempt(store: &Store, asked: &str, seen: &OutboxState) -> Result<Option<Resent>> {
    let answered = matches!(seen.row.delivery.as_deref(), Some("ok" | "fatal-error"));
    let id = if answered { new_id() } else { seen.row.message_id.clone() };
    let (body, held) = rebuilt(store, seen, &id).await?;
    let status = if held.is_some() { "failed" } else { "pending" };
    let written = if answered {
        let m = Outgoing {
            message_id: id.clone(),
            provider: seen.row.provider.clone(),
            routing_key: seen.row.routing_key.clone(),
            event: seen.row.event.clone(),
            focus: seen.row.focus.clone(),
            body,
            failed: held.clone(),
        };
        store.requeue_as(seen, m).await?
    } else {
        let reason = held.clone().unwrap_or_else(|| resent_reason(seen));
        store.requeue(seen, Resend { body, status, reason }).await?
    };
    if !written {
        return Ok(None);
    }
    let (outcome, detail) = match (held, answered) {
        (Some(why), _) => (Outcome::Held, why),
        (None, true) => {
            let answer = seen.row.delivery.as_deref().unwrap_or_default();
            (Outcome::QueuedAs, format!("the provider had answered {} ({answer}): queued as {id}", seen.row.message_id))
        }
        (None, false) => (Outcome::Queued, format!("queued again as {id}")),
    };
    let focus = seen.row.focus.clone();
    Ok(Some(Resent { asked: asked.into(), message_id: id, outcome, status: status.into(), detail, focus }))
}

/// What a message queued again under its id says of its past, in plain words.
fn resent_reason(seen: &OutboxState) -> String {
    let was: String = seen.row.reason.as_deref().unwrap_or_default().chars().take(400).collect();
    if was.is_empty() {
        format!("resent by an administrator (it was {})", seen.row.status)
    } else {
        format!("resent by an administrator (it was {}: {was})", seen.row.status)
    }
}

/// `seen`'s body rebuilt as message `id` in the provider's codes as its ConceptMap
/// has them now; with the reason when a code still has no mapping.
async fn rebuilt(store: &Store, seen: &OutboxState, id: &str) -> Result<(String, Option<String>)> {
    let base = store.settings().base.clone();
    let bundle: Value = serde_json::from_str(&seen.body)
        .map_err(|e| anyhow::anyhow!("the body of outbox message {} is not JSON: {e}", seen.row.message_id))?;
    let (map, stale) = current_map(store, &seen.row.provider).await?;
    Ok(match super::message::rebuild(&base, &bundle, id, map.as_ref(), &stale, now_micros()) {
        Ok(b) => (b.to_string(), None),
        Err((why, b)) => (b.to_string(), Some(why)),
    })
}

/// The provider's ConceptMap as stored now (`ConceptMap/provider-<code>`, which an
/// administrator may have corrected through the API since start-up), else the one
/// loaded at start-up; and every local system either translates into.
async fn current_map(store: &Store, provider: &str) -> Result<(Option<ProviderMap>, Vec<String>)> {
    let loaded = store.settings().messaging.map_of(provider).cloned();
    let stored = store.read(&Access::gateway(), "ConceptMap", &format!("provider-{provider}")).await?;
    let stored: Option<Value> = match stored.and_then(|s| s.body) {
        Some(b) => Some(serde_json::from_str(&b).map_err(anyhow::Error::from)?),
        None => None,
    };
    let current = stored.map(|m| ProviderMap { provider: provider.to_string(), concept_map: m }).or(loaded.clone());
    let mut stale: Vec<String> = loaded.iter().chain(current.iter()).flat_map(ProviderMap::targets).collect();
    stale.sort();
    stale.dedup();
    Ok((current, stale))
}
