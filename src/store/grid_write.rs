//! Writing an agenda's generated slots into the compact grid tables: its
//! `slot_agendas` row (with its shared index rows), the services of its slots in
//! `slot_services`, and the `slot_grid` rows, by a JSON insert or (PostgreSQL) COPY.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::Row;

use super::grid::{AgendaInfo, SlotRow};
use super::{execute_all, Dialect, Store, Tx};
use crate::Result;

/// Rows per bulk insert statement (one JSON bind each).
const INSERT_CHUNK: usize = 5_000;

/// Grid rows sent by [`Store::grid_copy`], not yet committed. Dropped without
/// [`GridCopy::commit`], its connection closes and PostgreSQL rolls the rows back.
pub(crate) struct GridCopy {
    conn: sqlx::PgConnection,
    pool: super::pool::Pool,
    added: u64,
}

impl GridCopy {
    /// Commits the rows; returns how many there were. Committed just before the
    /// agenda's own transaction, which holds the agenda's row lock until then: a
    /// generation of the same agenda at the same time waits for that lock and then
    /// finds these slots. Should the agenda's commit fail after this one, the slots
    /// stay (a new agenda's unreachable, its agenda row not kept; generation run
    /// again makes them anew).
    pub(crate) async fn commit(mut self) -> Result<u64> {
        sqlx::Executor::execute(&mut self.conn, "COMMIT").await?;
        self.pool.native_done(self.conn);
        Ok(self.added)
    }
}

/// A value in COPY's text format: backslash, tab and line ends escaped.
fn copy_text(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

impl Store {
    /// The grid agenda of the Schedule with pk `sched_pk`, created or brought up to
    /// date (its place may have changed), with its shared index rows. Returns its id.
    pub(crate) async fn grid_agenda(&self, tx: &mut Tx, sched_pk: i64, info: &AgendaInfo) -> Result<i64> {
        let shared = serde_json::to_string(&info.shared()).map_err(anyhow::Error::from)?;
        let tz = info.time_zone.name().to_string();
        // A new agenda's row, or (when it exists, or another generation of it is
        // making it at this moment: the insert waits for that one) the existing row,
        // updated and so locked: generations of one agenda take turns from here. No
        // conflict target: with `(sched_pk)` alone, PostgreSQL checks the other unique
        // key (`prefix`) as a plain insert does, and two first generations at once
        // failed there with a unique violation instead of one waiting for the other.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO slot_agendas (sched_pk, sched_id, prefix, time_zone, shared) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(sched_pk)
        .bind(&info.schedule_id)
        .bind(&info.prefix)
        .bind(&tz)
        .bind(&shared)
        .fetch_optional(&mut **tx)
        .await?;
        let id = match inserted {
            Some(id) => id,
            None => sqlx::query_scalar(
                "UPDATE slot_agendas SET time_zone = $1, shared = $2 WHERE sched_pk = $3 RETURNING id",
            )
            .bind(&tz)
            .bind(&shared)
            .bind(sched_pk)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| {
                // Slot ids are made from the Schedule's id: another agenda holds them.
                crate::Error::Conflict(format!(
                    "Schedule/{} would give its slots ids ({}-…) that another agenda's slots have; \
                     give the Schedule another id",
                    info.schedule_id, info.prefix
                ))
            })?,
        };
        let pk = cupola_search::agenda_pk(id);
        execute_all(tx, self.registry.index_deletes(pk, self.dialect)).await?;
        let rows = self.registry.extract("Slot", &info.shared_resource());
        execute_all(tx, self.registry.index_inserts(pk, "Slot", &rows, self.dialect)).await?;
        Ok(id)
    }

    /// The id of a service Coding in `slot_services`, added when new.
    async fn grid_service(&self, tx: &mut Tx, coding: &Value) -> Result<i64> {
        let text = coding.to_string();
        let s = |k: &str| coding.get(k).and_then(Value::as_str).map(str::to_string);
        sqlx::query(
            "INSERT INTO slot_services (coding, system, code, text_norm) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (coding) DO NOTHING",
        )
        .bind(&text)
        .bind(s("system"))
        .bind(s("code"))
        .bind(s("display").map(|d| cupola_search::normalize(&d)))
        .execute(&mut **tx)
        .await?;
        Ok(sqlx::query_scalar("SELECT id FROM slot_services WHERE coding = $1")
            .bind(&text)
            .fetch_one(&mut **tx)
            .await?)
    }

    /// The keys `(stamp, n)` of an agenda's grid rows.
    pub(crate) async fn grid_keys(&self, tx: &mut Tx, agenda: i64) -> Result<Vec<(i64, i64)>> {
        let rows =
            sqlx::query("SELECT stamp, n FROM slot_grid WHERE agenda = $1").bind(agenda).fetch_all(&mut **tx).await?;
        rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?))).collect()
    }

    /// The `slot_services` ids of the services of `rows`, by their Coding's text.
    async fn grid_services(&self, tx: &mut Tx, rows: &[SlotRow]) -> Result<HashMap<String, i64>> {
        let mut services: HashMap<String, i64> = HashMap::new();
        for r in rows {
            if let std::collections::hash_map::Entry::Vacant(e) = services.entry(r.service.to_string()) {
                e.insert(self.grid_service(tx, &r.service).await?);
            }
        }
        Ok(services)
    }

    /// Adds generated slots to an agenda's grid, made at `created` (rows whose key is
    /// taken are skipped). Returns how many were added.
    pub(crate) async fn grid_insert(&self, tx: &mut Tx, agenda: i64, rows: &[SlotRow], created: i64) -> Result<u64> {
        let services = self.grid_services(tx, rows).await?;
        let sql = match self.dialect {
            Dialect::Postgres => {
                "INSERT INTO slot_grid (agenda, stamp, n, start_us, end_us, service, svc_code, capacity, reserve, release_us, created) \
                 SELECT (e->>0)::bigint, (e->>1)::bigint, (e->>2)::smallint, (e->>3)::bigint, (e->>4)::bigint, (e->>5)::bigint, \
                 e->>6, (e->>7)::int, e->>8, (e->>9)::bigint, (e->>10)::bigint FROM jsonb_array_elements(CAST($1 AS jsonb)) e \
                 ON CONFLICT DO NOTHING"
            }
            Dialect::Sqlite => {
                "INSERT INTO slot_grid (agenda, stamp, n, start_us, end_us, service, svc_code, capacity, reserve, release_us, created) \
                 SELECT e.value ->> 0, e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4, e.value ->> 5, e.value ->> 6, \
                 e.value ->> 7, e.value ->> 8, e.value ->> 9, e.value ->> 10 FROM json_each($1) e WHERE true \
                 ON CONFLICT DO NOTHING"
            }
        };
        let mut added = 0;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|r| {
                    let service = services.get(&r.service.to_string()).copied().unwrap_or_default();
                    let code = r.service.get("code").and_then(Value::as_str).unwrap_or_default();
                    let (reserve, release) = r.reserve.clone().unzip();
                    serde_json::json!([
                        agenda, r.stamp, r.n, r.start_us, r.end_us, service, code, r.capacity, reserve, release,
                        created
                    ])
                })
                .collect();
            let json = Value::Array(items).to_string();
            added += sqlx::query(sql).bind(json).execute(&mut **tx).await?.rows_affected();
        }
        Ok(added)
    }

    /// PostgreSQL: sends new grid rows of an agenda with COPY (a third of the time of
    /// the JSON insert, measured on 1 million rows) on a native connection, in a
    /// transaction of its own left open: the caller commits the copy, then `tx` (see
    /// [`GridCopy`]). The rows must be new: the caller read the agenda's keys in
    /// `tx` after locking the agenda row, which keeps other generations of it waiting.
    pub(crate) async fn grid_copy(&self, tx: &mut Tx, agenda: i64, rows: &[SlotRow], created: i64) -> Result<GridCopy> {
        let services = self.grid_services(tx, rows).await?;
        let mut data = String::with_capacity(rows.len() * 96);
        for r in rows {
            use std::fmt::Write;
            let service = services.get(&r.service.to_string()).copied().unwrap_or_default();
            let code = copy_text(r.service.get("code").and_then(Value::as_str).unwrap_or_default());
            let (reserve, release) = match &r.reserve {
                Some((class, at)) => (copy_text(class), at.to_string()),
                None => ("\\N".to_string(), "\\N".to_string()),
            };
            let _ = writeln!(
                data,
                "{agenda}\t{}\t{}\t{}\t{}\t{service}\t{code}\t{}\t{reserve}\t{release}\t{created}",
                r.stamp, r.n, r.start_us, r.end_us, r.capacity
            );
        }
        let mut conn = self.pool.native().await?;
        sqlx::Executor::execute(&mut conn, "BEGIN").await?;
        let mut copy = conn
            .copy_in_raw(
                "COPY slot_grid (agenda, stamp, n, start_us, end_us, service, svc_code, capacity, reserve, release_us, created) FROM STDIN",
            )
            .await?;
        copy.send(data.into_bytes()).await?;
        let added = copy.finish().await?;
        Ok(GridCopy { conn, pool: self.pool.clone(), added })
    }
}
