//! Resending outbox messages (`$resend`) as the store keeps them: a message's state
//! as the resend decides on it, and the two writes a resend makes — the message
//! queued again under its id, or a new message in its place — each a
//! compare-and-set on the state decided on. Requests resending one message at once
//! thus queue it once: the others find the state changed, and read it again.

use sqlx::Row;

use super::{lease::clock, Bind, Outgoing, Store};
use crate::Result;

/// A message as a resend decides on it: its row, its body, and the database's
/// clock when it was read (`resent_us` is by that clock).
#[derive(Debug, Clone)]
pub struct OutboxState {
    /// The row as operators see it.
    pub row: super::OutboxRow,
    /// The database's clock when it was read (resends are timed by it).
    pub now_us: i64,
    pub body: String,
}

/// What a resend writes over the state it decided on: the rebuilt body, and the
/// status (`pending`, or `failed` when a code still has no mapping) with the
/// reason operators read.
#[derive(Debug, Clone)]
pub struct Resend {
    pub body: String,
    pub status: &'static str,
    pub reason: String,
}

/// The row is still as it was read: nobody resent it, the relay did not mark it
/// and the provider did not answer since.
const UNCHANGED: &str = "message_id = $1 AND status = $2 AND COALESCE(delivery, '') = $3 AND resends = $4";

fn unchanged(seen: &OutboxState) -> Vec<Bind> {
    vec![
        Bind::Text(seen.row.message_id.clone()),
        Bind::Text(seen.row.status.clone()),
        Bind::Text(seen.row.delivery.clone().unwrap_or_default()),
        Bind::Int(seen.row.resends),
    ]
}

impl Store {
    /// Message `message_id` as a resend decides on it.
    pub async fn outbox_state(&self, message_id: &str) -> Result<Option<OutboxState>> {
        let sql = format!(
            "SELECT {}, {} AS now_us, (SELECT b.body FROM outbox_bodies b WHERE b.message_id = outbox.message_id) \
             AS body FROM outbox WHERE message_id = $1",
            super::outbox_view::COLUMNS,
            clock(self.dialect)
        );
        let mut c = self.conn().await?;
        let r = sqlx::query(&sql).bind(message_id).fetch_optional(&mut *c).await;
        let Some(r) = c.done(r)? else { return Ok(None) };
        let body = super::body::column(&r, "body")?;
        Ok(Some(OutboxState {
            row: super::outbox_view::row_of(&r)?,
            now_us: r.try_get("now_us")?,
            body: body.unwrap_or_default(),
        }))
    }

    /// Queues `seen` again under its id with `r`'s body, status and reason, if it is
    /// still as seen; false when it changed. A relay still holding it (an unroutable
    /// message being published again) loses its claim: it marks nothing, and the row
    /// goes with the new body.
    pub async fn requeue(&self, seen: &OutboxState, r: Resend) -> Result<bool> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE outbox SET status = $5, reason = $6, delivery = NULL, acked_us = NULL, lease_us = NULL, \
             claim_token = NULL, unrouted = 0, resends = resends + 1, resent_us = {} WHERE {UNCHANGED}",
            clock(self.dialect)
        );
        let mut binds = unchanged(seen);
        binds.extend([Bind::Text(r.status.into()), Bind::Text(r.reason)]);
        let changed = sqlx::query_with(&sql, super::into_arguments(binds)).execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE outbox_bodies SET body = $1 WHERE message_id = $2")
            .bind(super::body::pack(&r.body))
            .bind(&seen.row.message_id)
            .execute(&mut *tx)
            .await?;
        if r.status == "pending" {
            tx.on_commit(self.outbox_wake.clone());
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Writes `new` in place of `seen` (which the provider answered: its id is
    /// spent), if `seen` is still as seen and was never resent as another; false
    /// otherwise. `seen` keeps its status and answer, and names `new` (`resent_as`).
    pub async fn requeue_as(&self, seen: &OutboxState, new: Outgoing) -> Result<bool> {
        let mut tx = self.begin().await?;
        let now = clock(self.dialect);
        let sql = format!(
            "UPDATE outbox SET resent_as = $5, resends = resends + 1, resent_us = {now} \
             WHERE {UNCHANGED} AND resent_as IS NULL"
        );
        let mut binds = unchanged(seen);
        binds.push(Bind::Text(new.message_id.clone()));
        let changed = sqlx::query_with(&sql, super::into_arguments(binds)).execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        let status = if new.failed.is_some() { "failed" } else { "pending" };
        let insert = format!(
            "INSERT INTO outbox (message_id, provider, routing_key, event, focus, body, status, reason, attempts, \
             created_us, resent_from, resent_us) VALUES ($1, $2, $3, $4, $5, '', $6, $7, 0, $8, $9, {now})"
        );
        sqlx::query(&insert)
            .bind(&new.message_id)
            .bind(&new.provider)
            .bind(&new.routing_key)
            .bind(&new.event)
            .bind(&new.focus)
            .bind(status)
            .bind(new.failed.as_deref())
            .bind(super::now_micros())
            .bind(&seen.row.message_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO outbox_bodies (message_id, body) VALUES ($1, $2)")
            .bind(&new.message_id)
            .bind(super::body::pack(&new.body))
            .execute(&mut *tx)
            .await?;
        if status == "pending" {
            tx.on_commit(self.outbox_wake.clone());
        }
        tx.commit().await?;
        Ok(true)
    }
}
