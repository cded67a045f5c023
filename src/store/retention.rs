//! Outbox bodies past their retention: the Bundle of a message its provider
//! acknowledged `ok` is needed by no one once the acknowledgement is old enough
//! (a resend rebuilds from the body, and an acknowledged message is only resent
//! by an operator correcting a provider's records, within days). The row stays —
//! who was told what, when, and what they answered — only the body goes.

use super::Store;
use crate::Result;

impl Store {
    /// Removes the bodies of at most `limit` of `provider`'s messages acknowledged
    /// `ok` at or after `from_us` and before `before_us`, oldest first (through the
    /// provider's index of acknowledgements); how many went, and the acknowledgement
    /// time of the last row looked at (where the next call may start).
    pub async fn drop_acked_bodies(
        &self,
        provider: &str,
        from_us: i64,
        before_us: i64,
        limit: i64,
    ) -> Result<(u64, Option<i64>)> {
        let mut tx = self.begin().await?;
        let picked: Vec<(String, i64)> = sqlx::query_as(
            "SELECT o.message_id, o.acked_us FROM outbox o WHERE o.provider = $1 AND o.acked_us >= $2 \
             AND o.acked_us < $3 AND o.delivery = 'ok' AND o.status = 'sent' \
             AND EXISTS (SELECT 1 FROM outbox_bodies b WHERE b.message_id = o.message_id) \
             ORDER BY o.acked_us LIMIT $4",
        )
        .bind(provider)
        .bind(from_us)
        .bind(before_us)
        .bind(limit.max(1))
        .fetch_all(&mut *tx)
        .await?;
        let Some((_, last)) = picked.last() else { return Ok((0, None)) };
        let last = *last;
        let ids: Vec<String> = picked.into_iter().map(|(id, _)| id).collect();
        let mut binds = Vec::new();
        let sql = format!(
            "DELETE FROM outbox_bodies WHERE message_id IN ({})",
            super::subscriptions::bind_list(&mut binds, &ids)
        );
        let dropped = sqlx::query_with(&sql, super::into_arguments(binds)).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok((dropped, Some(last)))
    }
}
