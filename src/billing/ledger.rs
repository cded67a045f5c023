//! What the tickets add up to, read outside any write: a patient's unpaid tickets,
//! a settlement period's counts, the tickets due for credit recovery.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::billing::{self, from_cents};
use crate::store::Store;
use crate::Result;

/// What `patient` owes: each unpaid invoice and its amount, in booking order.
pub async fn outstanding(store: &Store, patient: &str) -> Result<Vec<(String, Decimal, Option<String>)>> {
    let mut c = store.conn().await?;
    let r: std::result::Result<Vec<(String, i64, Option<String>)>, sqlx::Error> = sqlx::query_as(
        "SELECT invoice, owed_cents - paid_cents, notice FROM tickets WHERE patient = $1 AND status = 'issued' \
         AND owed_cents > paid_cents ORDER BY booked_us",
    )
    .bind(patient)
    .fetch_all(&mut *c)
    .await;
    let rows = c.done(r)?;
    Ok(rows.into_iter().map(|(i, c, n)| (i, from_cents(c), n)).collect())
}

/// What a settlement of `[from_us, to_us)` counts, per provider: tickets
/// collected (refunds subtracted) and payments by channel of payment, bookings
/// by channel of booking.
pub(crate) async fn settlement_counts(
    store: &Store,
    from_us: i64,
    to_us: i64,
) -> Result<(BTreeMap<String, billing::settlement::Counted>, i64)> {
    let mut c = store.conn().await?;
    let r = async {
        let collected: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT s.provider, p.channel, CAST(SUM(s.amount_cents) AS BIGINT), \
             CAST(SUM(CASE WHEN p.amount_cents > 0 THEN 1 ELSE 0 END) AS BIGINT) \
             FROM payments p JOIN payment_shares s ON s.notice = p.notice \
             WHERE p.paid_us >= $1 AND p.paid_us < $2 GROUP BY s.provider, p.channel",
        )
        .bind(from_us)
        .bind(to_us)
        .fetch_all(&mut *c)
        .await?;
        let bookings: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT provider, channel, CAST(COUNT(*) AS BIGINT) FROM ticket_lines \
             WHERE booked_us >= $1 AND booked_us < $2 GROUP BY provider, channel",
        )
        .bind(from_us)
        .bind(to_us)
        .fetch_all(&mut *c)
        .await?;
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(amount_cents) AS BIGINT) FROM payments WHERE paid_us >= $1 AND paid_us < $2",
        )
        .bind(from_us)
        .bind(to_us)
        .fetch_one(&mut *c)
        .await?;
        Ok::<_, sqlx::Error>((collected, bookings, total.unwrap_or_default()))
    }
    .await;
    let (collected, bookings, total) = c.done(r)?;
    Ok((by_provider(collected, bookings), total))
}

/// Unpaid tickets whose service was performed or missed before `cutoff_us`,
/// with their recovery stage and when it was reached.
pub(crate) async fn overdue(store: &Store, cutoff_us: i64) -> Result<Vec<(String, Option<String>, Option<i64>)>> {
    let mut c = store.conn().await?;
    let r = sqlx::query_as(
        "SELECT invoice, stage, stage_us FROM tickets WHERE status = 'issued' AND owed_cents > paid_cents \
         AND service_us IS NOT NULL AND service_us < $1 ORDER BY service_us, invoice",
    )
    .bind(cutoff_us)
    .fetch_all(&mut *c)
    .await;
    c.done(r)
}

/// What was counted, per provider: `collected` (provider, channel, cents, payments)
/// and `bookings` (provider, channel, count).
fn by_provider(
    collected: Vec<(String, String, i64, i64)>,
    bookings: Vec<(String, String, i64)>,
) -> BTreeMap<String, billing::settlement::Counted> {
    let mut out: BTreeMap<String, billing::settlement::Counted> = BTreeMap::new();
    for (provider, channel, cents, payments) in collected {
        let e = out.entry(provider).or_default();
        e.collected_cents.insert(channel.clone(), cents);
        if payments > 0 {
            e.tickets.insert(channel, payments);
        }
    }
    for (provider, channel, n) in bookings {
        out.entry(provider).or_default().bookings.insert(channel, n);
    }
    out
}
