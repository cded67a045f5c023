//! The transactional outbox: every message a provider is to receive is a row
//! written in the same database transaction as the change it tells of, so that a
//! change is never committed without its message nor a message sent for a change
//! that was rolled back. A relay claims pending rows
//! (see `lease`), publishes them with publisher confirms, and marks them sent only
//! after the broker's ack of a routed message. Several gateways on one PostgreSQL share the rows (`FOR UPDATE SKIP
//! LOCKED` and a lease): a row is published by one relay at a time; a relay that
//! dies mid-publish leaves its lease to run out, and the row goes again (the same
//! message id, so that a provider can drop the duplicate).

use sqlx::Row;

use super::{Bind, Sql, Store, Tx};
use crate::Result;

/// A message about to be written to the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: String,
    pub provider: String,
    pub routing_key: String,
    pub event: String,
    /// The resource the message is about (`Appointment/x`).
    pub focus: String,
    pub body: String,
    /// `Some(reason)`: held as failed (an unmapped code …), shown to operators.
    pub failed: Option<String>,
}

/// What waits in the outbox (see [`Store::outbox_backlog`]).
#[derive(Debug, Clone, Default)]
pub struct OutboxBacklog {
    /// (status, provider, rows) of the rows not sent.
    pub waiting: Vec<(String, String, i64)>,
    /// When the oldest pending row was written (µs since the epoch), if one is.
    pub oldest_pending_us: Option<i64>,
}

impl Store {
    /// Writes `m` in `tx`; the relay is woken when `tx` commits.
    pub(crate) async fn enqueue(&self, tx: &mut Tx, m: Outgoing) -> Result<()> {
        let status = if m.failed.is_some() { "failed" } else { "pending" };
        let text = |t: &str| Bind::Text(t.to_string());
        let row = Sql {
            text:
                "INSERT INTO outbox (message_id, provider, routing_key, event, focus, body, status, reason, attempts, \
                   created_us) VALUES ($1, $2, $3, $4, $5, '', $6, $7, 0, $8) ON CONFLICT (message_id) DO NOTHING"
                    .into(),
            binds: vec![
                text(&m.message_id),
                text(&m.provider),
                text(&m.routing_key),
                text(&m.event),
                text(&m.focus),
                text(status),
                m.failed.as_deref().map_or(Bind::NullText, text),
                Bind::Int(super::now_micros()),
            ],
        };
        // The body in a table of its own: claiming and marking rows rewrites only the
        // small row, not the message. Nothing in the change's transaction reads the
        // outbox: the rows go with its other deferred writes, just before COMMIT.
        let body = Sql {
            text: "INSERT INTO outbox_bodies (message_id, body) VALUES ($1, $2) ON CONFLICT (message_id) DO NOTHING"
                .into(),
            binds: vec![text(&m.message_id), Bind::Bytes(super::body::pack(&m.body))],
        };
        tx.defer(vec![row, body]);
        if m.failed.is_none() {
            tx.on_commit(self.outbox_wake.clone());
        }
        Ok(())
    }

    /// The outbox rows not sent, as (status, provider, rows), and the creation time
    /// of the oldest pending one (µs), for metrics. Sent rows are left out: the
    /// statuses asked for are few and indexed (`outbox_pending`), the sent rows many.
    pub async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        let mut c = self.conn().await?;
        let r = sqlx::query(
            "SELECT status, provider, COUNT(*) AS n, MIN(created_us) AS oldest FROM outbox \
             WHERE status IN ('pending', 'unroutable', 'failed', 'parked') GROUP BY status, provider",
        )
        .fetch_all(&mut *c)
        .await;
        let rows = c.done(r)?;
        let mut backlog = OutboxBacklog::default();
        for r in &rows {
            let (status, oldest): (String, i64) = (r.try_get("status")?, r.try_get("oldest")?);
            if status == "pending" {
                backlog.oldest_pending_us = Some(backlog.oldest_pending_us.map_or(oldest, |o| o.min(oldest)));
            }
            backlog.waiting.push((status, r.try_get("provider")?, r.try_get("n")?));
        }
        Ok(backlog)
    }

    /// A provider's acknowledgement of message `original`: `ok` records the
    /// delivery; `transient-error` sends it again after a pause growing with its
    /// attempts (up to 5 minutes); `fatal-error` parks it for an operator.
    pub(crate) async fn acknowledge(
        &self,
        tx: &mut Tx,
        provider: &str,
        original: &str,
        outcome: &str,
        details: Option<&str>,
    ) -> Result<()> {
        let attempts: Option<i64> =
            sqlx::query_scalar("SELECT attempts FROM outbox WHERE message_id = $1 AND provider = $2")
                .bind(original)
                .bind(provider)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(attempts) = attempts else {
            return Err(crate::Error::Unprocessable(vec![crate::error::Issue::error(
                "not-found",
                Some("MessageHeader.response.identifier".into()),
                format!("no message {original} was sent to provider {provider}"),
            )]));
        };
        // The pause is reckoned by the database's clock, as the relay's claims are.
        // The claim token goes: a relay still holding the row must not mark it sent
        // over the provider's answer.
        let (status, lease) = match outcome {
            "ok" => ("sent", "NULL".to_string()),
            "transient-error" => {
                let pause = (1_000_000i64 << attempts.clamp(0, 8)).min(300_000_000);
                ("pending", format!("{} + {pause}", super::lease::clock(self.dialect)))
            }
            _ => ("parked", "NULL".to_string()),
        };
        // When it came (the desk's figures: the provider's last acknowledgement).
        let sql = format!(
            "UPDATE outbox SET delivery = $1, status = $2, lease_us = {lease}, claim_token = NULL, \
             reason = COALESCE($3, reason), acked_us = $6 WHERE message_id = $4 AND provider = $5"
        );
        sqlx::query(&sql)
            .bind(outcome)
            .bind(status)
            .bind(details)
            .bind(original)
            .bind(provider)
            .bind(super::now_micros())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Records inbound message `id` as being processed in `tx`; when it was
    /// processed before, its response instead (a retry has no second effect).
    pub(crate) async fn inbound_claim(
        &self,
        tx: &mut Tx,
        id: &str,
        provider: &str,
        event: &str,
    ) -> Result<Option<serde_json::Value>> {
        let fresh: Option<String> = sqlx::query_scalar(
            "INSERT INTO inbound_messages (message_id, provider, event, received_us, response) \
             VALUES ($1, $2, $3, $4, '') ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        )
        .bind(id)
        .bind(provider)
        .bind(event)
        .bind(super::now_micros())
        .fetch_optional(&mut **tx)
        .await?;
        if fresh.is_some() {
            return Ok(None);
        }
        let row = sqlx::query("SELECT response FROM inbound_messages WHERE message_id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
        let response = super::body::column(&row, "response")?.unwrap_or_default();
        Ok(Some(serde_json::from_str(&response).map_err(anyhow::Error::from)?))
    }

    pub(crate) async fn inbound_done(
        &self,
        tx: &mut Tx,
        id: &str,
        _provider: &str,
        _event: &str,
        response: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query("UPDATE inbound_messages SET response = $1 WHERE message_id = $2")
            .bind(super::body::pack(&response.to_string()))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
