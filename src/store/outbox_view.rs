//! The outbox as operators read it (the integration desk: `$outbox`,
//! `$outbox-summary`): rows by status and provider, newest first, a page at a time;
//! one message's body; and the figures of each provider.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Bind, Store};
use crate::Result;

/// An outbox row as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxRow {
    /// Its position in the outbox: the listing's pages are cut by it.
    pub seq: i64,
    pub message_id: String,
    pub provider: String,
    pub routing_key: String,
    pub event: String,
    pub focus: String,
    pub status: String,
    pub reason: Option<String>,
    /// What the provider answered: `ok`, `transient-error`, `fatal-error`.
    pub delivery: Option<String>,
    pub attempts: i64,
    pub created_us: i64,
    pub sent_us: Option<i64>,
    /// When an unroutable message goes again (the database's clock).
    pub next_attempt_us: Option<i64>,
    /// When the provider's answer (`delivery`) came.
    pub acked_us: Option<i64>,
    /// How often an operator resent it, and when last.
    pub resends: i64,
    pub resent_us: Option<i64>,
    /// The message it was resent as (a new id: the provider had answered this one).
    pub resent_as: Option<String>,
    /// The message it is a resend of.
    pub resent_from: Option<String>,
}

/// Which rows: of a status, of a provider, before a position (the next page), at
/// most `limit`; or the one message `message_id`.
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    pub status: Option<String>,
    pub provider: Option<String>,
    pub before: Option<i64>,
    pub message_id: Option<String>,
    pub limit: i64,
}

pub(super) const COLUMNS: &str =
    "seq, message_id, provider, routing_key, event, focus, status, reason, delivery, attempts, \
     created_us, sent_us, CASE WHEN status = 'unroutable' THEN lease_us END AS next_attempt_us, acked_us, resends, \
     resent_us, resent_as, resent_from";

/// The statuses of messages not (or no longer) on their way: what the figures count.
const WAITING: &str = "'pending', 'unroutable', 'failed', 'parked'";

/// One provider's figures, as the outbox holds them.
#[derive(Debug, Clone, Default)]
pub struct ProviderFigures {
    pub provider: String,
    /// Its messages by status, among pending, unroutable, failed and parked.
    pub waiting: Vec<(String, i64)>,
    /// The oldest message still to be published (pending or unroutable): id, created.
    pub oldest_waiting: Option<(String, i64)>,
    /// Its last answer: message id, outcome (`ok`, `fatal-error`…), when.
    pub last_ack: Option<(String, String, i64)>,
    /// The first message sent after the last one it answered, and not answered: id, sent.
    pub unanswered: Option<(String, i64)>,
}

impl Store {
    /// The rows `q` asks for, newest first. Each filter is written into the
    /// statement only when given, so that PostgreSQL plans it on its index (a
    /// `$1 = '' OR …` condition would keep a generic plan off the index).
    pub async fn outbox(&self, q: &OutboxQuery) -> Result<Vec<OutboxRow>> {
        let mut filters: Vec<(&str, Bind)> = Vec::new();
        if let Some(s) = &q.status {
            filters.push(("status =", Bind::Text(s.clone())));
        }
        if let Some(p) = &q.provider {
            filters.push(("provider =", Bind::Text(p.clone())));
        }
        if let Some(b) = q.before {
            filters.push(("seq <", Bind::Int(b)));
        }
        if let Some(id) = &q.message_id {
            filters.push(("message_id =", Bind::Text(id.clone())));
        }
        let conditions: Vec<String> = filters.iter().enumerate().map(|(i, (c, _))| format!("{c} ${}", i + 1)).collect();
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        let sql = format!("SELECT {COLUMNS} FROM outbox{filter} ORDER BY seq DESC LIMIT {}", q.limit.max(0));
        let mut c = self.conn().await?;
        let r =
            sqlx::query_with(&sql, super::into_arguments(filters.into_iter().map(|(_, b)| b))).fetch_all(&mut *c).await;
        c.done(r)?.iter().map(row_of).collect()
    }

    /// The body of message `message_id` (the Bundle sent or to be sent).
    pub async fn outbox_body(&self, message_id: &str) -> Result<Option<String>> {
        let mut c = self.conn().await?;
        let r = sqlx::query("SELECT body FROM outbox_bodies WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *c)
            .await;
        let row = c.done(r)?;
        Ok(row.map(|r| super::body::column(&r, "body")).transpose()?.flatten())
    }

    /// The figures of the providers `known` (those the gateway has maps for) and of
    /// every provider with messages waiting; only `only`'s when given.
    pub async fn outbox_figures(&self, known: &[String], only: Option<&str>) -> Result<Vec<ProviderFigures>> {
        let mut c = self.conn().await?;
        let sql = format!(
            "SELECT provider, status, COUNT(*) AS n FROM outbox WHERE status IN ({WAITING}) \
             GROUP BY provider, status ORDER BY provider, status"
        );
        let r = sqlx::query(&sql).fetch_all(&mut *c).await;
        let counts = c.done(r)?;
        let blank = |p: &str| ProviderFigures { provider: p.to_string(), ..Default::default() };
        let mut by: BTreeMap<String, ProviderFigures> = known.iter().map(|p| (p.clone(), blank(p))).collect();
        for row in &counts {
            let provider: String = row.try_get("provider")?;
            let figures = by.entry(provider.clone()).or_insert_with(|| blank(&provider));
            figures.waiting.push((row.try_get("status")?, row.try_get("n")?));
        }
        if let Some(o) = only {
            by.retain(|p, _| p == o);
            by.entry(o.to_string()).or_insert_with(|| blank(o));
        }
        let mut out = Vec::with_capacity(by.len());
        for (_, mut f) in by {
            self.provider_figures(&mut f).await?;
            out.push(f);
        }
        Ok(out)
    }

    /// The oldest message waiting, the last answer and the first message unanswered
    /// since, each read on its index (`outbox_pending`, `outbox_acked`, `outbox_provider`).
    async fn provider_figures(&self, f: &mut ProviderFigures) -> Result<()> {
        let p = || Bind::Text(f.provider.clone());
        let oldest = "SELECT message_id, created_us FROM outbox WHERE status IN ('pending', 'unroutable') \
                      AND provider = $1 ORDER BY seq LIMIT 1";
        if let Some(r) = self.first_row(oldest, vec![p()]).await? {
            f.oldest_waiting = Some((r.try_get("message_id")?, r.try_get("created_us")?));
        }
        let last = "SELECT seq, message_id, delivery, acked_us FROM outbox WHERE provider = $1 \
                    AND acked_us IS NOT NULL ORDER BY acked_us DESC LIMIT 1";
        let mut after = 0;
        if let Some(r) = self.first_row(last, vec![p()]).await? {
            after = r.try_get("seq")?;
            let outcome: Option<String> = r.try_get("delivery")?;
            f.last_ack = Some((r.try_get("message_id")?, outcome.unwrap_or_default(), r.try_get("acked_us")?));
        }
        let unanswered = "SELECT message_id, sent_us FROM outbox WHERE provider = $1 AND seq > $2 \
                          AND status = 'sent' AND delivery IS NULL ORDER BY seq LIMIT 1";
        if let Some(r) = self.first_row(unanswered, vec![p(), Bind::Int(after)]).await? {
            let id: String = r.try_get("message_id")?;
            let sent: Option<i64> = r.try_get("sent_us")?;
            f.unanswered = sent.map(|s| (id, s));
        }
        Ok(())
    }

    async fn first_row(&self, sql: &str, binds: Vec<Bind>) -> Result<Option<AnyRow>> {
        let mut c = self.conn().await?;
        let r = sqlx::query_with(sql, super::into_arguments(binds)).fetch_optional(&mut *c).await;
        c.done(r)
    }
}

pub(super) fn row_of(r: &AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.try_get("seq")?,
        message_id: r.try_get("message_id")?,
        provider: r.try_get("provider")?,
        routing_key: r.try_get("routing_key")?,
        event: r.try_get("event")?,
        focus: r.try_get("focus")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        delivery: r.try_get("delivery")?,
        attempts: r.try_get("attempts")?,
        created_us: r.try_get("created_us")?,
        sent_us: r.try_get("sent_us")?,
        next_attempt_us: r.try_get("next_attempt_us")?,
        acked_us: r.try_get("acked_us")?,
        resends: r.try_get("resends")?,
        resent_us: r.try_get("resent_us")?,
        resent_as: r.try_get("resent_as")?,
        resent_from: r.try_get("resent_from")?,
    })
}
