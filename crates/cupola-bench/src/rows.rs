//! What one booking writes, table by table (PostgreSQL): the store's row counts
//! before and after the measured bookings, per booking, set beside what pgbench's
//! transaction writes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::booking::{BookingFigures, Rows};

/// The tables a booking writes rows in.
const WRITTEN: [&str; 16] = [
    "resources",
    "resource_versions",
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_reference",
    "idx_number",
    "idx_uri",
    "slot_claims",
    "booking_codes",
    "bookings",
    "tickets",
    "ticket_lines",
    "outbox",
    "outbox_bodies",
    "slot_grid",
];

/// Each table's row count, and by resource type where the table has one (PostgreSQL).
pub(super) async fn row_counts(url: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let mut out = BTreeMap::new();
    for t in WRITTEN {
        out.insert(
            t.to_string(),
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {t}")).fetch_one(&mut c).await?,
        );
        if t == "resources" || t.starts_with("idx_") {
            let by_type = format!("SELECT res_type, count(*) FROM {t} GROUP BY res_type");
            for (rt, n) in sqlx::query_as::<_, (String, i64)>(&by_type).fetch_all(&mut c).await? {
                out.insert(format!("{t}:{rt}"), n);
            }
        }
    }
    for (table, bytes) in table_sizes(&mut c).await? {
        out.insert(format!("{BYTES}{table}"), bytes);
    }
    Ok(out)
}

/// What each table takes on disk (bytes), its indexes and TOAST included.
pub(crate) async fn table_sizes(c: &mut sqlx::PgConnection) -> anyhow::Result<Vec<(String, i64)>> {
    let sizes = "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
                 WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace";
    Ok(sqlx::query_as::<_, (String, i64)>(sizes).fetch_all(c).await?)
}

/// The prefix of a table's size in bytes among the counts.
const BYTES: &str = "bytes/";

/// Rows per booking between two counts (each booking adds one `bookings` row).
pub(super) fn per_booking(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Option<Rows> {
    let delta = |t: &str| after.get(t).copied().unwrap_or(0) - before.get(t).copied().unwrap_or(0);
    let bookings = delta("bookings");
    (bookings > 0).then(|| after.keys().map(|t| (t.clone(), delta(t) as f64 / bookings as f64)).collect())
}

/// The database's growth per booking, in all and by table (largest first).
fn print_bytes(backend: &str, per_booking: &Rows) {
    let mut tables: Vec<(&str, f64)> =
        per_booking.iter().filter_map(|(t, b)| Some((t.strip_prefix(BYTES)?, *b))).filter(|(_, b)| *b > 0.0).collect();
    tables.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = tables.iter().map(|(_, b)| b).sum();
    let listed: Vec<String> = tables.iter().map(|(t, b)| format!("{t} {b:.0}")).collect();
    println!("{backend}: bytes per booking: {total:.0} in all; by table: {}", listed.join(", "));
}

/// Where the gateway's bookings and pgbench's differ by more than a hundredth of a
/// row, as `table gateway/pgbench`.
fn row_differences(gateway: &Rows, pgbench: &Rows) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = gateway.keys().chain(pgbench.keys()).collect();
    keys.into_iter()
        .filter(|t| !t.starts_with(BYTES))
        .filter_map(|t| {
            let (g, p) = (gateway.get(t).copied().unwrap_or(0.0), pgbench.get(t).copied().unwrap_or(0.0));
            ((g - p).abs() > 0.01).then(|| format!("{t} {g:.2}/{p:.2}"))
        })
        .collect()
}

/// The rows per booking the bookings wrote since `before` (PostgreSQL: `None`
/// elsewhere), counted once the audit trail has caught up.
pub(super) async fn rows_written(before: Option<BTreeMap<String, i64>>, url: &str) -> anyhow::Result<Option<Rows>> {
    let Some(b) = before else { return Ok(None) };
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(per_booking(&b, &row_counts(url).await?))
}

/// The rows a booking writes, table by table, and where pgbench's transaction writes others.
pub(super) fn print_rows(f: &BookingFigures) {
    if let (Some(g), Some(p)) = (&f.rows, &f.pgbench_rows) {
        let differ = row_differences(g, p);
        let all: Vec<String> = g
            .iter()
            .filter(|(t, n)| **n > 0.0 && !t.contains([':', '/']))
            .map(|(t, n)| format!("{t} {n:.2}"))
            .collect();
        println!("{}: rows per booking: {}", f.backend, all.join(", "));
        let by_type: Vec<String> =
            g.iter().filter(|(t, n)| **n > 0.0 && t.contains(':')).map(|(t, n)| format!("{t} {n:.2}")).collect();
        println!("{}: by resource type: {}", f.backend, by_type.join(", "));
        print_bytes(&f.backend, g);
        match differ.as_slice() {
            [] => println!("{}: pgbench writes the same rows per transaction", f.backend),
            d => println!("{}: rows per booking / per pgbench transaction differ: {}", f.backend, d.join(", ")),
        }
    }
}
