//! One row per booking made (`bookings`), written in the booking's transaction:
//! the facts the waiting-time figures are counted from, in SQL.

use crate::access::Access;
use crate::booking::views::{Appointment, Prescription, Slot};
use crate::booking::{access_type, catalog_facts, deadline_of, WaitingQuery};
use crate::store::{current, into_arguments, now_micros, value_of, Bind, Sql, Store, Tx};
use crate::Result;

/// The figures' filters, as SQL over `bookings` (the binds numbered from 1).
fn filters(q: &WaitingQuery) -> (String, Vec<Bind>) {
    let mut binds = vec![Bind::Int(q.from_us), Bind::Int(q.to_us)];
    let mut sql = "booked_us >= $1 AND booked_us < $2".to_string();
    for (column, value) in
        [("service", &q.service), ("branch", &q.branch), ("district", &q.district), ("class", &q.class)]
    {
        if let Some(v) = value {
            binds.push(Bind::Text(v.clone()));
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    (sql, binds)
}

/// Records the booking of `a` (its first time `booked`); `slot` is its first
/// slot when the caller has just read it.
pub(crate) async fn record_booking(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    a: &Appointment,
    slot: Option<&Slot>,
) -> Result<()> {
    let base = store.settings().base.clone();
    let Some(slot_id) = a.slots.first() else {
        return Ok(());
    };
    let slot = match slot {
        Some(s) => s.clone(),
        None => Slot::of(slot_id, &value_of(current(tx, store.dialect(), "Slot", slot_id, false).await?)?, &base)?,
    };
    let Some(start) = slot.start_us else {
        return Ok(());
    };
    let service = slot.services.first().map(|(_, c)| c.clone());
    let facts = catalog_facts(store, tx).await?;
    let (branch, exam) = match service.as_deref().and_then(|c| facts.get(c)) {
        Some(f) => (Some(f.branch.clone()).filter(|b| !b.is_empty()), f.kind == "exam"),
        None => (None, false),
    };
    let now = now_micros();
    let (mut class, mut requested, mut first_access) = (a.class.clone(), now, true);
    if let Some(sr) = a.requests.first() {
        let body = value_of(current(tx, store.dialect(), "ServiceRequest", sr, false).await?)?;
        let r = Prescription::of(sr, &body, &base)?;
        class = class.or(r.class.clone());
        first_access = access_type(&facts, &r) != "follow-up";
        if let Some(nre) = r.number() {
            requested = store.prescription_clock(tx, nre, now).await?;
        }
    }
    let (district, provider) = (slot.district, slot.provider.map(|o| format!("Organization/{o}")));
    let deadline = if first_access { deadline_of(store.settings(), class.as_deref(), exam, requested) } else { None };
    let channel = access.actor().map(|x| x.channel.clone().unwrap_or_else(|| x.role.as_str().to_string()));
    // Only the figures read these rows, never the booking's own transaction.
    tx.defer(vec![Sql {
        text: "INSERT INTO bookings (appointment, booked_us, start_us, requested_us, wait_us, service, branch, \
               district, class, channel, provider, deadline_us, met) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (appointment) DO NOTHING"
            .into(),
        binds: vec![
            Bind::Text(id.to_string()),
            Bind::Int(now),
            Bind::Int(start),
            Bind::Int(requested),
            Bind::Int((start - requested).max(0)),
            Bind::text_or_null(service),
            Bind::text_or_null(branch),
            Bind::text_or_null(district),
            Bind::text_or_null(class),
            Bind::text_or_null(channel),
            Bind::text_or_null(provider),
            Bind::int_or_null(deadline),
            Bind::int_or_null(deadline.map(|d| i64::from(start <= d))),
        ],
    }]);
    Ok(())
}

/// Bookings matching `q`: how many, how many had a deadline and met it.
pub(crate) async fn booking_counts(store: &Store, q: &WaitingQuery) -> Result<(i64, i64, i64)> {
    let (cond, binds) = filters(q);
    let sql = format!("SELECT count(*), count(met), CAST(COALESCE(SUM(met), 0) AS BIGINT) FROM bookings WHERE {cond}");
    let mut c = store.conn().await?;
    let r = sqlx::query_as_with::<_, (i64, i64, i64), _>(&sql, into_arguments(binds)).fetch_one(&mut *c).await;
    c.done(r)
}

/// The wait (µs) at 0-based rank `k` among the matching bookings, shortest first.
pub(crate) async fn wait_at_rank(store: &Store, q: &WaitingQuery, k: i64) -> Result<Option<i64>> {
    let (cond, mut binds) = filters(q);
    binds.push(Bind::Int(k));
    let sql = format!("SELECT wait_us FROM bookings WHERE {cond} ORDER BY wait_us LIMIT 1 OFFSET ${}", binds.len());
    let mut c = store.conn().await?;
    let r = sqlx::query_scalar_with::<_, i64, _>(&sql, into_arguments(binds)).fetch_optional(&mut *c).await;
    c.done(r)
}

/// Matching bookings per channel, most first.
pub(crate) async fn bookings_by_channel(store: &Store, q: &WaitingQuery) -> Result<Vec<(String, i64)>> {
    let (cond, binds) = filters(q);
    let sql = format!(
        "SELECT COALESCE(channel, 'unknown'), count(*) FROM bookings WHERE {cond} \
         GROUP BY COALESCE(channel, 'unknown') ORDER BY 2 DESC, 1"
    );
    let mut c = store.conn().await?;
    let r = sqlx::query_as_with::<_, (String, i64), _>(&sql, into_arguments(binds)).fetch_all(&mut *c).await;
    c.done(r)
}

/// Matching bookings per day and channel: `days` are the days' names and their
/// `[from, to)` instants (µs), joined as a table of values so the grouping is the
/// database's on either backend, with each day cut where Rome's day begins.
pub(crate) async fn bookings_by_day(
    store: &Store,
    q: &WaitingQuery,
    days: &[(String, i64, i64)],
) -> Result<Vec<(String, String, i64)>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let (cond, mut binds) = filters(q);
    let mut rows = Vec::with_capacity(days.len());
    for (name, from, to) in days {
        binds.push(Bind::Text(name.clone()));
        let n = binds.len();
        // The bounds are numbers this function was given, never text from a caller.
        rows.push(format!(
            "SELECT CAST(${n} AS TEXT) AS day, CAST({from} AS BIGINT) AS lo, CAST({to} AS BIGINT) AS hi"
        ));
    }
    let sql = format!(
        "WITH days AS ({}) SELECT days.day, COALESCE(b.channel, 'unknown'), count(*) FROM bookings b \
         JOIN days ON b.booked_us >= days.lo AND b.booked_us < days.hi WHERE {} \
         GROUP BY days.day, COALESCE(b.channel, 'unknown') ORDER BY 1, 3 DESC, 2",
        rows.join(" UNION ALL "),
        cond.replace("booked_us", "b.booked_us"),
    );
    let mut c = store.conn().await?;
    let r = sqlx::query_as_with::<_, (String, String, i64), _>(&sql, into_arguments(binds)).fetch_all(&mut *c).await;
    c.done(r)
}

/// One service's row of [`waits_by_service`].
pub(crate) struct ServiceRow {
    pub code: String,
    pub bookings: i64,
    pub median_us: i64,
    pub p90_us: i64,
    pub with_deadline: i64,
    pub met: i64,
}

/// The `limit` most booked services among the matching bookings, each with its
/// median and 90th-percentile wait (nearest rank, as `wait_at_rank` counts them)
/// and its deadlines met: one query, ranked per service by the database.
pub(crate) async fn waits_by_service(store: &Store, q: &WaitingQuery, limit: i64) -> Result<Vec<ServiceRow>> {
    let (cond, mut binds) = filters(q);
    binds.push(Bind::Int(limit));
    let sql = format!(
        "WITH r AS (SELECT service, wait_us, met, \
           ROW_NUMBER() OVER (PARTITION BY service ORDER BY wait_us) - 1 AS k, \
           COUNT(*) OVER (PARTITION BY service) AS n FROM bookings WHERE {cond} AND service IS NOT NULL) \
         SELECT service AS code, CAST(n AS BIGINT) AS bookings, \
           CAST(MAX(CASE WHEN k = (50 * n + 99) / 100 - 1 THEN wait_us END) AS BIGINT) AS median_us, \
           CAST(MAX(CASE WHEN k = (90 * n + 99) / 100 - 1 THEN wait_us END) AS BIGINT) AS p90_us, \
           CAST(count(met) AS BIGINT) AS with_deadline, CAST(COALESCE(SUM(met), 0) AS BIGINT) AS met \
         FROM r GROUP BY service, n ORDER BY n DESC, service LIMIT ${}",
        binds.len()
    );
    let mut c = store.conn().await?;
    let r = sqlx::query_as_with::<_, (String, i64, i64, i64, i64, i64), _>(&sql, into_arguments(binds))
        .fetch_all(&mut *c)
        .await;
    let rows = c.done(r)?;
    Ok(rows
        .into_iter()
        .map(|(code, bookings, median_us, p90_us, with_deadline, met)| ServiceRow {
            code,
            bookings,
            median_us,
            p90_us,
            with_deadline,
            met,
        })
        .collect())
}
