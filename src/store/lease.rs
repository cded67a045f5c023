//! The relay's hold on outbox rows. A claim takes pending rows, and unroutable ones
//! whose backoff has ended, for a lease reckoned by the database's clock, not the
//! gateway's: gateways whose clocks disagree still agree on when a lease ends. It
//! writes a fresh claim token into the rows, and every mark (sent, unroutable,
//! released) must present it: a relay whose lease ran out, and whose rows another
//! relay has claimed since, marks nothing — the rows are the other relay's to send.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Bind, Dialect, Store};
use crate::Result;

/// A message claimed for publishing.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub message_id: String,
    pub routing_key: String,
    pub body: String,
}

/// The rows one claim took, and the token that proves the claim still holds them.
#[derive(Debug, Clone, Default)]
pub struct Lease {
    pub token: i64,
    pub rows: Vec<Claimed>,
}

/// The database's clock, in µs since the Unix epoch (one value per statement).
pub(super) fn clock(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)",
        Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
    }
}

/// An unroutable message's pause before it goes again: 1 s, doubled with each return
/// in a row, at most a minute (an operator's fix is picked up within that).
const BACKOFF: &str =
    "CASE WHEN unrouted >= 6 THEN 60000000 ELSE CAST(1000000 AS BIGINT) << CAST(unrouted AS INTEGER) END";

impl Store {
    /// Claims up to `limit` messages, oldest first, that are due (pending, or
    /// unroutable past their backoff) and that no other relay holds, for `lease_us`.
    pub(crate) async fn claim(&self, limit: i64, lease_us: i64) -> Result<Lease> {
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let now = clock(self.dialect);
        let sql = format!(
            "UPDATE outbox SET lease_us = {now} + $1, claim_token = $2, attempts = attempts + 1 WHERE seq IN \
             (SELECT seq FROM outbox WHERE status IN ('pending', 'unroutable') \
             AND (lease_us IS NULL OR lease_us < {now}) ORDER BY seq LIMIT $3{lock}) \
             RETURNING seq, message_id, routing_key"
        );
        // 60 random bits: two claims drawing the same token is not a concern.
        let token = (uuid::Uuid::new_v4().as_u64_pair().1 >> 4) as i64;
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&sql).bind(lease_us).bind(token).bind(limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    seq: r.try_get("seq")?,
                    message_id: r.try_get("message_id")?,
                    routing_key: r.try_get("routing_key")?,
                    body: String::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Lease { token, rows: self.with_bodies(rows).await? })
    }

    /// `rows` with their message bodies, in claim order.
    async fn with_bodies(&self, mut out: Vec<Claimed>) -> Result<Vec<Claimed>> {
        if out.is_empty() {
            return Ok(out);
        }
        let marks: Vec<String> = (1..=out.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT message_id, body FROM outbox_bodies WHERE message_id IN ({})", marks.join(", "));
        let binds = out.iter().map(|c| Bind::Text(c.message_id.clone()));
        let mut c = self.conn().await?;
        let r = sqlx::query_with(&sql, super::into_arguments(binds)).fetch_all(&mut *c).await;
        let bodies: std::collections::HashMap<String, String> = c
            .done(r)?
            .iter()
            .map(|r| Ok((r.try_get("message_id")?, super::body::column(r, "body")?.unwrap_or_default())))
            .collect::<Result<_>>()?;
        for m in &mut out {
            m.body = bodies.get(&m.message_id).cloned().unwrap_or_default();
        }
        out.sort_by_key(|c| c.seq);
        Ok(out)
    }

    /// Marks `seqs` sent (the broker confirmed and routed them), if claim `token`
    /// still holds them; returns how many it marked. A reason an earlier return left
    /// stays, so that operators see the message went through being unroutable.
    pub(crate) async fn mark_sent(&self, token: i64, seqs: &[i64]) -> Result<u64> {
        let set = "status = 'sent', sent_us = $2, lease_us = NULL, claim_token = NULL, unrouted = 0";
        self.fenced("sent", set, token, seqs, vec![Bind::Int(super::now_micros())]).await
    }

    /// Gives `seqs` back for the next round (the broker refused or went away), if
    /// claim `token` still holds them.
    pub(crate) async fn release(&self, token: i64, seqs: &[i64]) -> Result<u64> {
        self.fenced("released", "lease_us = NULL, claim_token = NULL", token, seqs, vec![]).await
    }

    /// Marks messages the broker returned (no queue took them) `unroutable`, each
    /// with its reason, due again after its backoff, if claim `token` still holds
    /// them. The token stays: the relay may still mark them sent when publishing them
    /// once more (after declaring the topology again) routes them.
    pub(crate) async fn mark_unroutable(&self, token: i64, returned: &[(i64, String)]) -> Result<u64> {
        let mut by_reason: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (seq, reason) in returned {
            by_reason.entry(reason.as_str()).or_default().push(*seq);
        }
        let set = format!(
            "status = 'unroutable', reason = $2, lease_us = {} + {BACKOFF}, unrouted = unrouted + 1",
            clock(self.dialect)
        );
        let mut marked = 0;
        for (reason, seqs) in by_reason {
            marked += self.fenced("unroutable", &set, token, &seqs, vec![Bind::Text(reason.into())]).await?;
        }
        Ok(marked)
    }

    /// `UPDATE outbox SET {set}` on those of `seqs` that claim `token` still holds
    /// (`$1` is the token, `binds` follow as `$2`…); warns when it marked fewer.
    async fn fenced(&self, mark: &str, set: &str, token: i64, seqs: &[i64], binds: Vec<Bind>) -> Result<u64> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let list: Vec<String> = seqs.iter().map(i64::to_string).collect();
        let sql = format!("UPDATE outbox SET {set} WHERE claim_token = $1 AND seq IN ({})", list.join(", "));
        let binds = std::iter::once(Bind::Int(token)).chain(binds);
        let mut c = self.write_conn().await?;
        let r = sqlx::query_with(&sql, super::into_arguments(binds)).execute(&mut *c).await;
        let marked = c.done(r).await?.rows_affected();
        if marked < seqs.len() as u64 {
            self.explain_unmarked(mark, token, &list, seqs.len() - marked as usize).await?;
        }
        Ok(marked)
    }

    /// Says why `missed` of the rows `seqs` were not marked. A provider that answers
    /// before the broker's confirm reaches the relay has acknowledged its message
    /// already (the acknowledgement ends the claim): nothing to warn about. A row
    /// another claim holds is one whose lease ran out: it is sent again.
    async fn explain_unmarked(&self, mark: &str, token: i64, seqs: &[String], missed: usize) -> Result<()> {
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE seq IN ({}) AND claim_token IS NOT NULL AND claim_token <> $1",
            seqs.join(", ")
        );
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar::<_, i64>(&sql).bind(token).fetch_one(&mut *c).await;
        let reclaimed = c.done(r)?;
        if reclaimed > 0 {
            tracing::warn!(
                mark,
                reclaimed,
                "outbox rows not marked: this relay's lease ran out and another claim holds them (it sends them)"
            );
        }
        let answered = missed.saturating_sub(reclaimed as usize);
        if answered > 0 {
            tracing::debug!(mark, answered, "outbox rows not marked: their providers acknowledged them first");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
