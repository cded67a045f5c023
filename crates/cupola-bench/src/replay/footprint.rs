//! What the replay leaves in the database: its size, each table's (indexes and TOAST
//! included) and the resources stored by type, taken after the setup and at the end,
//! so that the report can say where a booking's bytes go.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;

/// The database at one moment.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    /// `pg_database_size`, bytes.
    pub total: i64,
    /// Each of the store's tables, bytes with its indexes and TOAST.
    pub tables: BTreeMap<String, i64>,
    /// Rows of `resources` by type: live, and deleted (a deletion's tombstone).
    pub resources: BTreeMap<String, (i64, i64)>,
    /// By resource type, the bytes of its version rows and of its index rows (the
    /// rows' own size, without the B-tree entries pointing at them).
    pub by_type: BTreeMap<String, (i64, i64)>,
}

impl Footprint {
    pub async fn take(url: &str) -> anyhow::Result<Footprint> {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .context("connecting to the replay's database for its size")?;
        let (total,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())").fetch_one(&mut c).await?;
        let tables = crate::rows::table_sizes(&mut c).await?.into_iter().collect();
        let by_type = "SELECT res_type, count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted) \
                       FROM resources GROUP BY res_type";
        let rows = sqlx::query_as::<_, (String, i64, i64)>(by_type).fetch_all(&mut c).await?;
        let resources = rows.into_iter().map(|(t, live, gone)| (t, (live, gone))).collect();
        let by_type = rows_by_type(&mut c).await?;
        Ok(Footprint { total, tables, resources, by_type })
    }
}

/// The bytes of each type's version rows and index rows.
async fn rows_by_type(c: &mut sqlx::PgConnection) -> anyhow::Result<BTreeMap<String, (i64, i64)>> {
    let versions = "SELECT r.res_type, CAST(sum(pg_column_size(v.*)) AS BIGINT) FROM resource_versions v \
                    JOIN resources r ON r.pk = v.res_pk GROUP BY r.res_type";
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (t, b) in sqlx::query_as::<_, (String, i64)>(versions).fetch_all(&mut *c).await? {
        out.entry(t).or_default().0 += b;
    }
    let tables = ["idx_string", "idx_token", "idx_date", "idx_number", "idx_quantity", "idx_reference", "idx_uri"];
    for table in tables {
        let sql = format!("SELECT res_type, CAST(sum(pg_column_size(i.*)) AS BIGINT) FROM {table} i GROUP BY res_type");
        for (t, b) in sqlx::query_as::<_, (String, i64)>(&sql).fetch_all(&mut *c).await? {
            out.entry(t).or_default().1 += b;
        }
    }
    Ok(out)
}

/// The growth between `before` and `after` per booking: by table (largest first), then
/// the resources each booking left by type.
pub fn markdown(before: &Footprint, after: &Footprint, bookings: u64) -> String {
    let per = |d: i64| d as f64 / bookings.max(1) as f64;
    let mut tables: Vec<(&String, i64)> =
        after.tables.iter().map(|(t, b)| (t, b - before.tables.get(t).copied().unwrap_or(0))).collect();
    tables.sort_by_key(|(_, d)| -d);
    let mut s = String::from(
        "\n### Where the bytes go (growth per booking, by table)\n\n| table | bytes per booking |\n|---|---|\n",
    );
    for (t, d) in tables.iter().filter(|(_, d)| per(*d) >= 10.0) {
        let _ = writeln!(s, "| {t} | {:.0} |", per(*d));
    }
    s.push_str(
        "\n### Resources left per booking, by type\n\n| type | live | deleted | version rows (bytes) | index rows (bytes) |\n|---|---|---|---|---|\n",
    );
    for (t, (live, gone)) in &after.resources {
        let (l0, g0) = before.resources.get(t).copied().unwrap_or((0, 0));
        let (dl, dg) = (per(live - l0), per(gone - g0));
        let (v, i) = after.by_type.get(t).copied().unwrap_or((0, 0));
        let (v0, i0) = before.by_type.get(t).copied().unwrap_or((0, 0));
        if dl.abs() >= 0.005 || dg.abs() >= 0.005 {
            let _ = writeln!(s, "| {t} | {dl:.2} | {dg:.2} | {:.0} | {:.0} |", per(v - v0), per(i - i0));
        }
    }
    s.push_str("\n(Row bytes are the rows' own, `pg_column_size`: without page overhead or the B-tree entries, which the table sizes above include.)\n");
    s
}
