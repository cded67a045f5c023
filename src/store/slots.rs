//! Generated slots in the compact `slot_grid` table (design: `cupola_search`'s
//! `grid` module): finding and rendering them, and moving a slot into `resources`
//! before anything changes it. Writing an agenda's rows is `grid_write`.

use std::collections::HashMap;

use chrono_tz::Tz;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::resources::Stored;
use super::versions::{NewVersion, INSERT_RESOURCE};
use super::{into_arguments, Bind, Dialect, Sql, Store, Tx};
use cupola_search::ExtraCondition;

use super::grid::{render as render_grid_slot, AgendaInfo, Shared, SlotRow};
use crate::access::Rule;
use crate::fhir::meta;
use crate::Result;

/// Keys per lookup statement (three binds each).
const LOOKUP_CHUNK: usize = 300;

const COLUMNS: &str = "g.agenda, g.stamp, g.n, g.start_us, g.end_us, g.capacity, g.reserve, g.release_us, g.created, \
     a.sched_id, a.prefix, a.time_zone, a.shared, s.coding";
const FROM: &str = "FROM slot_grid g JOIN slot_agendas a ON a.id = g.agenda JOIN slot_services s ON s.id = g.service";

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
            body: super::body::column(&row, "sched_body")?,
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
            let v = NewVersion { pk, res_type: "Slot", id, version: 1, now: slot.created, method: "POST" };
            super::version_statements(&self.registry, v, slot.body.clone(), None)
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
