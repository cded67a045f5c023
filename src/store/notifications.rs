//! The subscription events: written with the change that caused them, numbered per
//! subscription after commit (one numbering at a time per subscription: the
//! subscription's row counts them), delivered at least once, read again by
//! `$events`.

use sqlx::Row;

use super::subscriptions::Owner;
use super::{into_arguments, Bind, Dialect, Store, Tx};
use crate::Result;

/// One event, as delivered or read again.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: i64,
    pub number: i64,
    /// `Type/id` of what changed.
    pub focus: String,
    pub version: i64,
    pub at_us: i64,
    pub attempts: i64,
}

/// A subscription as its sender and `$status` need it.
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub id: String,
    pub owner: Owner,
    pub topic: String,
    pub status: String,
    pub channel: String,
    pub endpoint: Option<String>,
    pub payload: String,
    pub headers: Vec<String>,
    /// Events numbered so far.
    pub events: i64,
    pub failures: i64,
    pub next_try_us: Option<i64>,
    /// Seconds between heartbeats, when it asked for them.
    pub heartbeat_secs: Option<i64>,
}

const STATE_COLUMNS: &str = "id, owner_sub, owner_role, owner_org, owner_patient, owner_channel, owner_scopes, topic, \
     status, channel, endpoint, payload, headers, events, failures, next_try_us, heartbeat_s";

fn state_of(r: &sqlx::any::AnyRow) -> Result<SubscriptionState> {
    let headers: String = r.try_get("headers")?;
    Ok(SubscriptionState {
        id: r.try_get("id")?,
        owner: super::subscriptions::owner_of(r)?,
        topic: r.try_get("topic")?,
        status: r.try_get("status")?,
        channel: r.try_get("channel")?,
        endpoint: r.try_get("endpoint")?,
        payload: r.try_get("payload")?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        events: r.try_get("events")?,
        failures: r.try_get("failures")?,
        next_try_us: r.try_get("next_try_us")?,
        heartbeat_secs: r.try_get("heartbeat_s")?,
    })
}

/// Adds each subscription's new events to its count, in one statement; the new
/// totals (a subscription deleted meanwhile is missing).
async fn count_events(
    tx: &mut Tx,
    by_sub: &std::collections::BTreeMap<String, Vec<i64>>,
) -> Result<std::collections::HashMap<String, i64>> {
    let mut binds = Vec::new();
    let mut cases = Vec::new();
    let mut ids = Vec::new();
    for (sub, seqs) in by_sub {
        binds.push(Bind::Text(sub.clone()));
        binds.push(Bind::Int(i64::try_from(seqs.len()).unwrap_or(i64::MAX)));
        cases.push(format!("WHEN ${} THEN ${}", binds.len() - 1, binds.len()));
        ids.push(format!("${}", binds.len() - 1));
    }
    let sql = format!(
        "UPDATE subscriptions SET events = events + CASE id {} END WHERE id IN ({}) RETURNING id, events",
        cases.join(" "),
        ids.join(", ")
    );
    let rows: Vec<(String, i64)> = sqlx::query_as_with(&sql, into_arguments(binds)).fetch_all(&mut **tx).await?;
    Ok(rows.into_iter().collect())
}

fn event_of(r: &sqlx::any::AnyRow) -> Result<EventRow> {
    Ok(EventRow {
        seq: r.try_get("seq")?,
        number: r.try_get("number")?,
        focus: r.try_get("focus")?,
        version: r.try_get("version")?,
        at_us: r.try_get("at_us")?,
        attempts: r.try_get("attempts")?,
    })
}

impl Store {
    /// An event of subscription `id` about `focus` (version `version`), written in
    /// the change's transaction; the dispatcher is woken when it commits.
    pub async fn add_event(&self, tx: &mut Tx, id: &str, focus: &str, version: i64, at_us: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO subscription_events (subscription, focus, version, at_us, attempts) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(id)
        .bind(focus)
        .bind(version)
        .bind(at_us)
        .execute(&mut **tx)
        .await?;
        tx.on_commit(self.notify_wake.clone());
        Ok(())
    }

    /// Numbers the events written since the last call, per subscription in the
    /// order they were written; how many were numbered.
    pub async fn number_events(&self, limit: i64) -> Result<usize> {
        let mut tx = self.begin().await?;
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT seq, subscription FROM subscription_events WHERE number IS NULL ORDER BY seq LIMIT {}{lock}",
            limit.max(1)
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(&sql).fetch_all(&mut *tx).await?;
        let mut by_sub: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for (seq, sub) in &rows {
            by_sub.entry(sub.clone()).or_default().push(*seq);
        }
        if by_sub.is_empty() {
            return Ok(0);
        }
        let totals = count_events(&mut tx, &by_sub).await?;
        // Each subscription's events numbered after those it had, in the order written.
        let mut binds = Vec::new();
        let mut cases = Vec::new();
        let mut seqs_listed = Vec::new();
        for (sub, seqs) in &by_sub {
            let Some(total) = totals.get(sub) else { continue };
            let n = i64::try_from(seqs.len()).unwrap_or(i64::MAX);
            for (i, seq) in seqs.iter().enumerate() {
                binds.push(Bind::Int(*seq));
                binds.push(Bind::Int(total - n + 1 + i64::try_from(i).unwrap_or(0)));
                cases.push(format!("WHEN ${} THEN ${}", binds.len() - 1, binds.len()));
                seqs_listed.push(format!("${}", binds.len() - 1));
            }
        }
        if !cases.is_empty() {
            let sql = format!(
                "UPDATE subscription_events SET number = CASE seq {} END WHERE seq IN ({})",
                cases.join(" "),
                seqs_listed.join(", ")
            );
            sqlx::query_with(&sql, into_arguments(binds)).execute(&mut *tx).await?;
        }
        // A subscription deleted meanwhile: its events go with it.
        for sub in by_sub.keys().filter(|s| !totals.contains_key(*s)) {
            sqlx::query("DELETE FROM subscription_events WHERE subscription = $1 AND number IS NULL")
                .bind(sub)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Events `seqs` reached their endpoints at `now_us` (a round's deliveries, marked
    /// together).
    pub async fn mark_delivered(&self, seqs: &[i64], now_us: i64) -> Result<()> {
        for chunk in seqs.chunks(500) {
            let mut binds = vec![Bind::Int(now_us)];
            let list: Vec<String> = chunk
                .iter()
                .map(|s| {
                    binds.push(Bind::Int(*s));
                    format!("${}", binds.len())
                })
                .collect();
            let sql = format!("UPDATE subscription_events SET delivered_us = $1 WHERE seq IN ({})", list.join(", "));
            let mut c = self.write_conn().await?;
            let r = sqlx::query_with(&sql, into_arguments(binds)).execute(&mut *c).await;
            c.done(r).await?;
        }
        Ok(())
    }

    /// Subscription `id`, or `None`.
    pub async fn subscription_state(&self, id: &str) -> Result<Option<SubscriptionState>> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM subscriptions WHERE id = $1");
        let mut c = self.conn().await?;
        let r = sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await;
        c.done(r)?.as_ref().map(state_of).transpose()
    }

    /// The numbered events not yet delivered of the subscriptions whose next try is
    /// due at `now_us` (an `error` one once its pause is over; a websocket one only
    /// while a socket of `bound` is here), each subscription with at most `per`
    /// events, oldest first: one query per dispatcher round.
    pub async fn due_events(
        &self,
        now_us: i64,
        bound: &[String],
        per: usize,
    ) -> Result<Vec<(SubscriptionState, Vec<EventRow>)>> {
        let mut binds = vec![Bind::Int(now_us)];
        let listed = super::subscriptions::bind_list(&mut binds, bound);
        let here = if bound.is_empty() { String::new() } else { format!(" OR s.id IN ({listed})") };
        let columns: Vec<String> = STATE_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect();
        let sql = format!(
            "SELECT {}, e.seq, e.number, e.focus, e.version, e.at_us, e.attempts FROM subscription_events e \
             JOIN subscriptions s ON s.id = e.subscription WHERE e.number IS NOT NULL AND e.delivered_us IS NULL \
             AND s.status IN ('active', 'error') AND (s.channel <> 'websocket'{here}) \
             AND (s.next_try_us IS NULL OR s.next_try_us <= $1) ORDER BY s.id, e.number LIMIT 5000",
            columns.join(", ")
        );
        let mut c = self.conn().await?;
        let r = sqlx::query_with(&sql, into_arguments(binds)).fetch_all(&mut *c).await;
        let mut out: Vec<(SubscriptionState, Vec<EventRow>)> = Vec::new();
        for row in &c.done(r)? {
            let id: String = row.try_get("id")?;
            match out.last_mut() {
                Some((s, events)) if s.id == id => {
                    if events.len() < per {
                        events.push(event_of(row)?);
                    }
                }
                _ => out.push((state_of(row)?, vec![event_of(row)?])),
            }
        }
        Ok(out)
    }

    /// Subscription `id`'s events numbered `from..=to`, in order.
    pub async fn events_between(&self, id: &str, from: i64, to: i64) -> Result<Vec<EventRow>> {
        let mut c = self.conn().await?;
        let r = sqlx::query(
            "SELECT seq, number, focus, version, at_us, attempts FROM subscription_events WHERE subscription = $1 \
             AND number >= $2 AND number <= $3 ORDER BY number",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *c)
        .await;
        c.done(r)?.iter().map(event_of).collect()
    }

    /// The undelivered events of subscription `id` numbered `first..=last` (a batch
    /// read by [`Store::due_events`]) reached their endpoint after failures: the
    /// subscription is `active` again, its failures forgotten. (Deliveries with no
    /// failure behind them are marked a round at a time: [`Store::mark_delivered`].)
    pub async fn events_delivered(&self, id: &str, (first, last): (i64, i64), now_us: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE subscription_events SET delivered_us = $1 WHERE subscription = $2 AND number >= $3 \
             AND number <= $4 AND delivered_us IS NULL",
        )
        .bind(now_us)
        .bind(id)
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE subscriptions SET status = 'active', failures = 0, next_try_us = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A delivery to subscription `id` failed: its failures counted, its next try
    /// at `next_try_us`, its status `status`.
    pub async fn delivery_failed(&self, id: &str, status: &str, failures: i64, next_try_us: i64) -> Result<()> {
        let mut c = self.write_conn().await?;
        let r = sqlx::query("UPDATE subscriptions SET status = $1, failures = $2, next_try_us = $3 WHERE id = $4")
            .bind(status)
            .bind(failures)
            .bind(next_try_us)
            .bind(id)
            .execute(&mut *c)
            .await;
        c.done(r).await.map(|_| ())
    }

    /// The active subscriptions that asked for heartbeats, each with when an event
    /// last reached it (µs; `None`: never).
    pub async fn heartbeat_subscriptions(&self) -> Result<Vec<(SubscriptionState, Option<i64>)>> {
        let sql = format!(
            "SELECT {STATE_COLUMNS}, (SELECT MAX(e.delivered_us) FROM subscription_events e \
             WHERE e.subscription = s.id) AS last_us FROM subscriptions s \
             WHERE s.heartbeat_s IS NOT NULL AND s.status = 'active'"
        );
        let mut c = self.conn().await?;
        let r = sqlx::query(&sql).fetch_all(&mut *c).await;
        c.done(r)?.iter().map(|r| Ok((state_of(r)?, r.try_get("last_us")?))).collect()
    }

    /// The store's notice that events were written (the dispatcher waits on it).
    pub fn notify_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.notify_wake.clone()
    }
}
