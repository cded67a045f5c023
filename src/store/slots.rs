//! Generated slots in the compact `slot_grid` table (design: `cupola_search`'s
//! `grid` module): writing an agenda's rows, finding and rendering them, and moving
//! a slot into `resources` before anything changes it.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::resources::Stored;
use super::versions::INSERT_RESOURCE;
use super::{execute_all, into_arguments, Bind, Dialect, Sql, Store, Tx};
use cupola_search::ExtraCondition;

use super::grid::{render as render_grid_slot, AgendaInfo, Shared, SlotRow};
use crate::access::Rule;
use crate::fhir::meta;
use crate::Result;

/// Rows per bulk insert statement (one JSON bind each).
const INSERT_CHUNK: usize = 5_000;
/// Keys per lookup statement (three binds each).
const LOOKUP_CHUNK: usize = 300;

const COLUMNS: &str = "g.agenda, g.stamp, g.n, g.start_us, g.end_us, g.capacity, g.reserve, g.release_us, g.created, \
     a.sched_id, a.prefix, a.time_zone, a.shared, s.coding";
const FROM: &str = "FROM slot_grid g JOIN slot_agendas a ON a.id = g.agenda JOIN slot_services s ON s.id = g.service";

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

/// A generated slot as read back: its key, its rendering (with `meta`), its time.
pub(crate) struct GridSlot {
    pub agenda: i64,
    pub stamp: i64,
    pub n: i64,
    pub id: String,
    pub created: i64,
    pub body: Value,
}

impl GridSlot {
    pub fn pk(&self) -> i64 {
        cupola_search::grid_pk(self.agenda, self.stamp, self.n)
    }

    /// As the store returns a resource: version 1, made at generation.
    pub fn stored(&self) -> Stored {
        Stored {
            pk: self.pk(),
            res_type: "Slot".into(),
            id: self.id.clone(),
            version: 1,
            last_updated: self.created,
            deleted: false,
            body: Some(self.body.to_string()),
            written: None,
        }
    }
}

fn grid_slot(row: &sqlx::any::AnyRow) -> Result<GridSlot> {
    let tz: String = row.try_get("time_zone")?;
    let time_zone: Tz = tz.parse().map_err(|e| anyhow::anyhow!("slot agenda time zone {tz}: {e}"))?;
    let shared: Shared = serde_json::from_str(&row.try_get::<String, _>("shared")?).map_err(anyhow::Error::from)?;
    let agenda = AgendaInfo::from_shared(row.try_get("sched_id")?, row.try_get("prefix")?, time_zone, shared);
    let service: Value = serde_json::from_str(&row.try_get::<String, _>("coding")?).map_err(anyhow::Error::from)?;
    let reserve: Option<String> = row.try_get("reserve")?;
    let release: Option<i64> = row.try_get("release_us")?;
    let slot = SlotRow {
        stamp: row.try_get("stamp")?,
        n: row.try_get::<i64, _>("n")?,
        start_us: row.try_get("start_us")?,
        end_us: row.try_get("end_us")?,
        service,
        capacity: u32::try_from(row.try_get::<i64, _>("capacity")?).unwrap_or(1),
        reserve: reserve.zip(release),
    };
    let created: i64 = row.try_get("created")?;
    let id = cupola_search::slot_id(&agenda.prefix, slot.stamp, slot.n);
    let body = meta::stamp(render_grid_slot(&agenda, &slot), &id, 1, created);
    Ok(GridSlot { agenda: row.try_get("agenda")?, stamp: slot.stamp, n: slot.n, id, created, body })
}

/// The generated slot `id`, if it is one still in the grid and `rule` lets it be seen.
pub(crate) async fn grid_find(conn: &mut AnyConnection, id: &str, rule: &Rule) -> Result<Option<GridSlot>> {
    match rule {
        Rule::All => grid_find_where(conn, id, &[]).await,
        Rule::Nothing => Ok(None),
        Rule::Where(c) => grid_find_where(conn, id, std::slice::from_ref(c)).await,
    }
}

/// The same, for a caller whose visibility is the conditions `extras`.
pub(crate) async fn grid_find_where(
    conn: &mut AnyConnection,
    id: &str,
    extras: &[ExtraCondition],
) -> Result<Option<GridSlot>> {
    grid_row(conn, id, ("", ""), extras).await?.as_ref().map(grid_slot).transpose()
}

/// The grid row of the generated slot `id`, with `more` columns and joins, for a
/// caller whose visibility is the conditions `extras`.
async fn grid_row(
    conn: &mut AnyConnection,
    id: &str,
    more: (&str, &str),
    extras: &[ExtraCondition],
) -> Result<Option<sqlx::any::AnyRow>> {
    let Some((prefix, stamp, n)) = cupola_search::split_slot_id(id) else {
        return Ok(None);
    };
    let (columns, joins) = more;
    let mut sql = format!("SELECT {COLUMNS}{columns} {FROM}{joins} WHERE a.prefix = $1 AND g.stamp = $2 AND g.n = $3");
    let mut binds = vec![Bind::Text(prefix.into()), Bind::Int(stamp), Bind::Int(n)];
    for c in extras {
        // Visibility of a slot is its agenda's (see `cupola_search`'s grid module).
        sql.push_str(&format!(" AND {}", c.render_on(cupola_search::grid::agenda_pk_sql(), "'Slot'", binds.len())));
        binds.extend(c.binds.iter().cloned());
    }
    Ok(sqlx::query_with(&sql, into_arguments(binds)).fetch_optional(conn).await?)
}

/// The generated slot `id` (any caller's) with its Schedule's id and current version
/// (`None`: not there), read in the same statement: a booking of the slot reads the
/// Schedule next, for its actors.
async fn grid_find_with_schedule(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<(GridSlot, (String, Option<Stored>))>> {
    // The Schedule's current version beside the row (none if it is not there).
    let columns = ", sr.pk AS sched_pk, sr.version AS sched_version, sr.last_updated AS sched_updated, \
         CAST(sr.deleted AS INTEGER) AS sched_deleted, sv.body AS sched_body";
    let joins = " LEFT JOIN resources sr ON sr.res_type = 'Schedule' AND sr.res_id = a.sched_id \
         LEFT JOIN resource_versions sv ON sv.res_pk = sr.pk AND sv.version = sr.version";
    let Some(row) = grid_row(conn, id, (columns, joins), &[]).await? else {
        return Ok(None);
    };
    let slot = grid_slot(&row)?;
    let sched_id: String = row.try_get("sched_id")?;
    let schedule = match row.try_get::<Option<i64>, _>("sched_pk")? {
        Some(pk) => Some(Stored {
            pk,
            res_type: "Schedule".into(),
            id: sched_id.clone(),
            version: row.try_get("sched_version")?,
            last_updated: row.try_get("sched_updated")?,
            deleted: row.try_get::<i64, _>("sched_deleted")? != 0,
            body: row.try_get("sched_body")?,
            written: None,
        }),
        None => None,
    };
    Ok(Some((slot, (sched_id, schedule))))
}

/// The renderings of the generated slots among `pks` (synthetic, negative), by pk.
pub(crate) async fn grid_bodies(conn: &mut AnyConnection, pks: &[i64]) -> Result<HashMap<i64, GridSlot>> {
    let keys: Vec<(i64, i64, i64)> = pks.iter().filter_map(|p| cupola_search::grid_key(*p)).collect();
    let mut out = HashMap::new();
    for chunk in keys.chunks(LOOKUP_CHUNK) {
        let mut binds = Vec::with_capacity(chunk.len() * 3);
        let alts: Vec<String> = chunk
            .iter()
            .map(|(a, s, n)| {
                binds.extend([Bind::Int(*a), Bind::Int(*s), Bind::Int(*n)]);
                let k = binds.len();
                format!("(g.agenda = ${} AND g.stamp = ${} AND g.n = ${k})", k - 2, k - 1)
            })
            .collect();
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE {}", alts.join(" OR "));
        for row in sqlx::query_with(&sql, into_arguments(binds)).fetch_all(&mut *conn).await? {
            let slot = grid_slot(&row)?;
            out.insert(slot.pk(), slot);
        }
    }
    Ok(out)
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

    /// Ids (and whether deleted) of the Slot resources whose ids are generated ones
    /// of the agenda with slot id prefix `prefix`: slots moved out of the grid.
    pub(crate) async fn slot_ids_with_prefix(&self, tx: &mut Tx, prefix: &str) -> Result<Vec<(String, bool)>> {
        let pattern = format!("{}-%", cupola_search::like_escape(prefix));
        let rows = sqlx::query(
            "SELECT res_id, CAST(deleted AS INTEGER) FROM resources WHERE res_type = 'Slot' AND res_id LIKE $1 ESCAPE '\\'",
        )
        .bind(pattern)
        .fetch_all(&mut **tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            if cupola_search::split_slot_id(&id).is_some_and(|(p, _, _)| p == prefix) {
                out.push((id, r.try_get::<i64, _>(1)? != 0));
            }
        }
        Ok(out)
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

    /// Moves the generated slot `id` (if it is one still in the grid) into
    /// `resources` as version 1, as it was made; then it changes like any resource.
    /// Returns it when this transaction moved it: the row is new and unseen by others
    /// until commit, so it needs no lock.
    pub(crate) async fn materialize_slot(&self, tx: &mut Tx, id: &str) -> Result<Option<Stored>> {
        let Some((slot, schedule)) = grid_find_with_schedule(tx, id).await? else {
            return Ok(None);
        };
        tx.saw("Schedule", &schedule.0, schedule.1);
        let row = vec![Bind::Text("Slot".into()), Bind::Text(id.into()), Bind::Int(slot.created), Bind::Bool(false)];
        let first_version = |pk| {
            super::version_statements(&self.registry, pk, "Slot", id, 1, slot.created, "POST", slot.body.clone(), None)
        };
        if self.dialect == Dialect::Postgres {
            // One round trip: row, version, index rows (none if another request moved
            // it first), and the grid row out (the statement's `$1`, the key, unused).
            let (stored, mut rest) = first_version(0)?;
            rest.push(Sql {
                text: "DELETE FROM slot_grid WHERE agenda = $2 AND stamp = $3 AND n = $4".into(),
                binds: vec![Bind::Int(0), Bind::Int(slot.agenda), Bind::Int(slot.stamp), Bind::Int(slot.n)],
            });
            let first = Sql { text: INSERT_RESOURCE.into(), binds: row };
            let moved = self.run_keyed(tx, first, rest).await?.map(|pk| Stored { pk, ..stored });
            match &moved {
                Some(m) => tx.hold("Slot", id, m.clone()),
                None => tx.forget("Slot", id),
            }
            return Ok(moved);
        }
        let pk: Option<i64> =
            sqlx::query_scalar_with(INSERT_RESOURCE, into_arguments(row)).fetch_optional(&mut **tx).await?;
        // None: another request moved it first.
        let moved = match pk {
            Some(pk) => Some(self.write_version(tx, first_version(pk)?).await?),
            None => None,
        };
        sqlx::query("DELETE FROM slot_grid WHERE agenda = $1 AND stamp = $2 AND n = $3")
            .bind(slot.agenda)
            .bind(slot.stamp)
            .bind(slot.n)
            .execute(&mut **tx)
            .await?;
        match &moved {
            Some(m) => tx.hold("Slot", id, m.clone()),
            None => tx.forget("Slot", id),
        }
        Ok(moved)
    }

    /// Refreshes the planner statistics of a table (PostgreSQL), e.g. after a bulk load.
    pub async fn analyze(&self, table: &str) -> Result<()> {
        if self.dialect == Dialect::Postgres && table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            let mut c = self.conn().await?;
            let r = sqlx::query(&format!("ANALYZE {table}")).execute(&mut *c).await.map(|_| ());
            c.done(r)?;
        }
        Ok(())
    }

    /// The current version of `res_type/id` for a write, row-locked (a generated slot
    /// is first moved into `resources`).
    pub(crate) async fn current_for_write(&self, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<Stored>> {
        if let Some(s) = tx.held(res_type, id) {
            return Ok(Some(s.clone()));
        }
        if res_type == "Slot" {
            if let Some(moved) = self.materialize_slot(tx, id).await? {
                return Ok(Some(moved));
            }
        }
        let found = super::current(tx, self.dialect, res_type, id, true).await?;
        if let Some(s) = &found {
            tx.hold(res_type, id, s.clone());
        }
        Ok(found)
    }
}
