//! One resource as stored, with every version kept, and its reads: the current
//! version (locked for a write, or as this transaction last saw it), one version,
//! each as far as a caller may see it. Its writes are `write`.

use std::sync::Arc;

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{into_arguments, Bind, Dialect, Store, Tx};
use crate::access::{Access, Rule};
use crate::{Error, Result};

/// One stored version of a resource, as the store returns it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub pk: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    /// µs since the Unix epoch, UTC.
    pub last_updated: i64,
    pub deleted: bool,
    /// The resource as served (with `meta`); `None` for a deletion.
    pub body: Option<String>,
    /// `body` as a value with its index rows, when this process wrote this version:
    /// the transaction that wrote it reads it back (a slot turning busy, the booking's
    /// ticket and messages) without parsing and extracting the text again.
    pub(crate) written: Option<Arc<Written>>,
}

/// A version as this process wrote it: the body as a value, and the index rows
/// extracted from it (those the database holds for this version).
#[derive(Debug)]
pub(crate) struct Written {
    pub value: Value,
    pub rows: Vec<cupola_search::IndexRow>,
}

impl Stored {
    /// The body as a value (`None` for a deletion). A stored body that does not
    /// parse is an error of the store, never read as absent: the request answers
    /// 500 and the log names the version (the 500 log carries the cause).
    pub fn value(&self) -> Result<Option<Value>> {
        if let Some(w) = &self.written {
            return Ok(Some(w.value.clone()));
        }
        let Some(body) = self.body.as_deref() else { return Ok(None) };
        serde_json::from_str(body).map(Some).map_err(|e| self.unreadable(e))
    }

    /// The body as text to serve as it is (`None` for a deletion), once checked to
    /// be JSON: a version that does not parse is a 500, not garbage with a 200.
    pub fn checked_body(&self) -> Result<Option<&str>> {
        let Some(body) = self.body.as_deref() else { return Ok(None) };
        if self.written.is_none() {
            serde_json::from_str::<serde::de::IgnoredAny>(body).map_err(|e| self.unreadable(e))?;
        }
        Ok(Some(body))
    }

    fn unreadable(&self, e: serde_json::Error) -> Error {
        let (res_type, id, version) = (&self.res_type, &self.id, self.version);
        tracing::error!(%res_type, %id, version, error = %e, "a stored version does not parse as JSON");
        Error::Internal(anyhow::anyhow!("stored {res_type}/{id} version {version} does not parse: {e}"))
    }
}

/// The body of `stored` as a value; `null` when there is none (not found, deleted).
pub(crate) fn value_of(stored: Option<Stored>) -> Result<Value> {
    Ok(match stored {
        Some(s) => s.value()?.unwrap_or(Value::Null),
        None => Value::Null,
    })
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Created,
    Updated,
    /// A conditional create found its match: nothing written.
    Matched,
    Deleted,
    /// A delete of something already deleted or never there.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct Write {
    pub kind: WriteKind,
    /// The resulting version (for `Nothing`, absent).
    pub stored: Option<Stored>,
}

const CURRENT: &str =
    "SELECT r.pk, r.res_type, r.res_id, r.version, r.last_updated, CAST(r.deleted AS INTEGER) AS deleted, v.body \
     FROM resources r JOIN resource_versions v ON v.res_pk = r.pk AND v.version = r.version \
     WHERE r.res_type = $1 AND r.res_id = $2";

/// A new server-assigned logical id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn stored_from_row(row: &sqlx::any::AnyRow) -> Result<Stored> {
    Ok(Stored {
        pk: row.try_get("pk")?,
        res_type: row.try_get("res_type")?,
        id: row.try_get("res_id")?,
        version: row.try_get("version")?,
        last_updated: row.try_get("last_updated")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        body: super::body::column(row, "body")?,
        written: None,
    })
}

/// The current version of `res_type/id`, deleted or not. `lock` takes a row lock on
/// PostgreSQL (SQLite's one writer runs one transaction at a time, under the file's lock).
pub(crate) async fn current(
    conn: &mut AnyConnection,
    d: Dialect,
    res_type: &str,
    id: &str,
    lock: bool,
) -> Result<Option<Stored>> {
    let sql = if lock && d == Dialect::Postgres { format!("{CURRENT} FOR UPDATE OF r") } else { CURRENT.to_string() };
    let mut row = sqlx::query(&sql).bind(res_type).bind(id).fetch_optional(&mut *conn).await?;
    if row.is_none() && lock && d == Dialect::Postgres {
        // Waiting for the lock, PostgreSQL rechecks the join with the row's new
        // version but this statement's older snapshot of `resource_versions`, and
        // drops the row: asked again (the lock now held), the new snapshot has it.
        row = sqlx::query(&sql).bind(res_type).bind(id).fetch_optional(&mut *conn).await?;
    }
    match row {
        Some(row) => Ok(Some(stored_from_row(&row)?)),
        // For a write, the caller moved it out of the grid first (`current_for_write`).
        None if res_type == "Slot" && !lock => {
            Ok(super::slots::grid_find(conn, id, &Rule::All).await?.map(|s| s.stored()))
        }
        None => Ok(None),
    }
}

/// [`current`] without a lock, answered from what this transaction already read or
/// wrote of the resource when it can: a change's messages and ticket re-read what
/// the change has just read or written. Every write of a resource in a transaction
/// records its result there (`insert_new`, `next_version`, slot moves, bulk inserts).
pub(crate) async fn current_seen(tx: &mut Tx, d: Dialect, res_type: &str, id: &str) -> Result<Option<Stored>> {
    if let Some(state) = tx.seen(res_type, id) {
        return Ok(state.clone());
    }
    let found = current(tx, d, res_type, id, false).await?;
    tx.saw(res_type, id, found.clone());
    Ok(found)
}

/// Reads ahead, in one round trip, those of `wanted` (type, id) this transaction has
/// not seen yet, and records each as [`current_seen`] would: a message that needs a
/// patient and an organisation asks for both at once. Slots (which may still be in
/// the grid) are left to [`current_seen`].
pub(crate) async fn seen_ahead(tx: &mut Tx, wanted: &[(&str, &str)]) -> Result<()> {
    let mut unseen: Vec<(&str, &str)> = Vec::with_capacity(wanted.len());
    for &(t, id) in wanted {
        if t != "Slot" && tx.seen(t, id).is_none() && !unseen.contains(&(t, id)) {
            unseen.push((t, id));
        }
    }
    if unseen.len() < 2 {
        // One is read as well by the caller's own `current_seen`.
        return Ok(());
    }
    let (head, _) = CURRENT.split_once(" WHERE ").unwrap_or((CURRENT, ""));
    let arms: Vec<String> =
        (0..unseen.len()).map(|i| format!("(r.res_type = ${} AND r.res_id = ${})", 2 * i + 1, 2 * i + 2)).collect();
    let sql = format!("{head} WHERE {}", arms.join(" OR "));
    let mut q = sqlx::query(&sql);
    for &(t, id) in &unseen {
        q = q.bind(t).bind(id);
    }
    let rows = q.fetch_all(&mut **tx).await?;
    let mut found = rows.iter().map(stored_from_row).collect::<Result<Vec<_>>>()?;
    for (t, id) in unseen {
        let at = found.iter().position(|s| s.res_type == t && s.id == id);
        tx.saw(t, id, at.map(|i| found.swap_remove(i)));
    }
    Ok(())
}

/// The current version of `res_type/id` if `rule` lets it be seen.
pub(crate) async fn current_visible(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
    rule: &Rule,
) -> Result<Option<Stored>> {
    let binds = vec![Bind::Text(res_type.into()), Bind::Text(id.into())];
    let Some((sql, binds)) = restricted(CURRENT, binds, rule) else {
        return Ok(None);
    };
    let row = sqlx::query_with(&sql, into_arguments(binds)).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => Ok(Some(stored_from_row(&row)?)),
        None if res_type == "Slot" => Ok(super::slots::grid_find(conn, id, rule).await?.map(|s| s.stored())),
        None => Ok(None),
    }
}

/// `sql` (on `resources r`) with `rule` added to its WHERE; `None` when the rule
/// hides everything.
pub(super) fn restricted(sql: &str, mut binds: Vec<Bind>, rule: &Rule) -> Option<(String, Vec<Bind>)> {
    match rule {
        Rule::All => Some((sql.to_string(), binds)),
        Rule::Nothing => None,
        Rule::Where(c) => {
            let text = format!("{sql} AND {}", c.render("r", binds.len()));
            binds.extend(c.binds.iter().cloned());
            Some((text, binds))
        }
    }
}

/// One version of `res_type/id`, on the given connection (a transaction's, when
/// read inside one), if `rule` lets the resource be seen.
pub(crate) async fn version_of(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
    version: i64,
    rule: &Rule,
) -> Result<Option<Stored>> {
    const SQL: &str =
        "SELECT r.pk, r.res_type, r.res_id, v.version, v.last_updated, CAST(v.deleted AS INTEGER) AS deleted, v.body \
         FROM resources r JOIN resource_versions v ON v.res_pk = r.pk \
         WHERE r.res_type = $1 AND r.res_id = $2 AND v.version = $3";
    let binds = vec![Bind::Text(res_type.into()), Bind::Text(id.into()), Bind::Int(version)];
    let Some((sql, binds)) = restricted(SQL, binds, rule) else {
        return Ok(None);
    };
    let row = sqlx::query_with(&sql, into_arguments(binds)).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) => Ok(Some(stored_from_row(&row)?)),
        // A generated slot still in the grid has only its first version.
        None if res_type == "Slot" && version == 1 => {
            Ok(super::slots::grid_find(conn, id, rule).await?.map(|s| s.stored()))
        }
        None => Ok(None),
    }
}

/// Whether the resource with primary key `pk` matches `rule`.
pub(crate) async fn matches_rule(conn: &mut AnyConnection, pk: i64, rule: &Rule) -> Result<bool> {
    let Some((sql, binds)) = restricted("SELECT r.pk FROM resources r WHERE r.pk = $1", vec![Bind::Int(pk)], rule)
    else {
        return Ok(false);
    };
    if matches!(rule, Rule::All) {
        return Ok(true);
    }
    let found: Option<i64> = sqlx::query_scalar_with(&sql, into_arguments(binds)).fetch_optional(conn).await?;
    Ok(found.is_some())
}

impl Store {
    /// The current version of a resource (possibly a deletion), outside a
    /// transaction; `None` when it does not exist or `access` may not see it.
    pub async fn read(&self, access: &Access, res_type: &str, id: &str) -> Result<Option<Stored>> {
        let rule = access.read(res_type);
        if rule == Rule::Nothing {
            return Ok(None);
        }
        let mut c = self.conn().await?;
        let found = current_visible(&mut c, res_type, id, &rule).await?;
        c.done(Ok(found))
    }

    /// Whether the resource with primary key `pk` matches `rule` (e.g. whether a
    /// caller may change it), outside a transaction.
    pub async fn matches(&self, pk: i64, rule: &Rule) -> Result<bool> {
        let mut c = self.conn().await?;
        let yes = matches_rule(&mut c, pk, rule).await?;
        c.done(Ok(yes))
    }

    /// Whether the store holds any resource at all.
    pub async fn has_any_resource(&self) -> Result<bool> {
        let mut c = self.conn().await?;
        let r = sqlx::query_scalar::<_, i64>("SELECT pk FROM resources LIMIT 1").fetch_optional(&mut *c).await;
        Ok(c.done(r)?.is_some())
    }

    /// One version of a resource, if `access` may see the resource.
    pub async fn vread(&self, access: &Access, res_type: &str, id: &str, version: i64) -> Result<Option<Stored>> {
        let rule = access.read(res_type);
        if rule == Rule::Nothing {
            return Ok(None);
        }
        let mut c = self.conn().await?;
        let found = version_of(&mut c, res_type, id, version, &rule).await?;
        c.done(Ok(found))
    }
}
