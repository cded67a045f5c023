//! How a resource's versions are written: version 1 of a new resource, the next
//! version of one that exists (an update or a deletion), each with its index rows.
//! On PostgreSQL each write is one statement keyed on the resource row it writes
//! (`fold::keyed`); SQLite, in process, runs the statements one by one.

use std::borrow::Cow;

use cupola_search::{IndexRow, Registry};
use serde_json::Value;

use super::resources::Written;
use super::{execute_all, into_arguments, now_micros, Bind, Dialect, Sql, Store, Stored, Tx};
use crate::fhir::meta;
use crate::{Error, Result};

/// Version 1 of a new resource: binds type, id, time, deleted (false).
pub(crate) const INSERT_RESOURCE: &str = "INSERT INTO resources (res_type, res_id, version, last_updated, deleted) \
     VALUES ($1, $2, 1, $3, $4) ON CONFLICT (res_type, res_id) DO NOTHING RETURNING pk";

/// One version's body: binds pk, version, time, deleted, method, body.
pub(crate) const INSERT_VERSION: &str =
    "INSERT INTO resource_versions (res_pk, version, last_updated, deleted, method, body) VALUES ($1, $2, $3, $4, $5, $6)";

/// A resource row moved to its next version, guarded on the version read: binds
/// version, time, deleted, pk, version read.
const NEXT_VERSION: &str =
    "UPDATE resources SET version = $1, last_updated = $2, deleted = $3 WHERE pk = $4 AND version = $5";

impl Store {
    /// Inserts version 1 of `res_type/id`, recording `method` in its history, with
    /// `riders`: writes of other tables that go with it, in the same statement on
    /// PostgreSQL (written only with the resource: a taken id writes none of them),
    /// before it on SQLite.
    pub async fn insert_new(
        &self,
        tx: &mut Tx,
        res_type: &str,
        resource: Value,
        id: &str,
        method: &str,
        riders: Vec<Sql>,
    ) -> Result<Stored> {
        let now = now_micros();
        let taken = || Error::Conflict(format!("{res_type}/{id} already exists"));
        if self.dialect == Dialect::Postgres {
            // One round trip: the row, its version and index rows (none if the id is taken).
            let first = Sql {
                text: INSERT_RESOURCE.into(),
                binds: vec![Bind::Text(res_type.into()), Bind::Text(id.into()), Bind::Int(now), Bind::Bool(false)],
            };
            let first_version = NewVersion { pk: 0, res_type, id, version: 1, now, method };
            let (stored, mut rest) = version_statements(&self.registry, first_version, resource, None)?;
            rest.extend(riders.into_iter().map(super::fold::rider));
            let pk = self.run_keyed(tx, first, rest).await?.ok_or_else(taken)?;
            let stored = Stored { pk, ..stored };
            tx.hold(res_type, id, stored.clone());
            self.run_after(tx, &stored, None).await?;
            return Ok(stored);
        }
        super::execute_all(tx, riders).await?;
        let pk: Option<i64> = sqlx::query_scalar(INSERT_RESOURCE)
            .bind(res_type)
            .bind(id)
            .bind(now)
            .bind(false)
            .fetch_optional(&mut **tx)
            .await?;
        let pk = pk.ok_or_else(taken)?;
        let first_version = NewVersion { pk, res_type, id, version: 1, now, method };
        let stored = self.write_version(tx, version_statements(&self.registry, first_version, resource, None)?).await?;
        tx.hold(res_type, id, stored.clone());
        self.run_after(tx, &stored, None).await?;
        Ok(stored)
    }

    /// Runs [`fold::keyed`]`(first, rest)`: the key, or `None` when `first` wrote no row.
    pub(super) async fn run_keyed(&self, tx: &mut Tx, first: Sql, rest: Vec<Sql>) -> Result<Option<i64>> {
        key_of(tx, super::fold::keyed(first, rest)).await
    }

    /// Moves `cur` to its next version, guarded on the version read (a lost update is
    /// impossible even without the row lock).
    pub(crate) async fn next_version(
        &self,
        tx: &mut Tx,
        cur: &Stored,
        method: &str,
        resource: Option<Value>,
    ) -> Result<Stored> {
        let now = now_micros().max(cur.last_updated + 1);
        let next =
            NewVersion { pk: cur.pk, res_type: &cur.res_type, id: &cur.id, version: cur.version + 1, now, method };
        // The index rows the version replaced, from its body: only the parameters whose
        // rows change are rewritten (a slot turning busy rewrites its `status` alone).
        let replaced = if resource.is_some() { self.replaced_rows(cur) } else { None };
        let old_rows = replaced.as_deref();
        // The new version's statements (none for a deletion).
        let written = resource.map(|r| version_statements(&self.registry, next, r, old_rows)).transpose()?;
        let stored = match (self.dialect, written) {
            (Dialect::Postgres, Some((stored, writes))) => {
                // One round trip (see `next_version_sql`).
                let one = next_version_sql(&self.registry, cur.pk, cur.version, now, writes, old_rows.is_some());
                key_of(tx, one).await?.ok_or_else(|| stale(cur))?;
                stored
            }
            (_, written) => self.next_version_in_steps(tx, cur, next, written, old_rows.is_some()).await?,
        };
        tx.hold(&cur.res_type, &cur.id, stored.clone());
        self.run_after(tx, &stored, (!cur.deleted).then_some(cur)).await?;
        Ok(stored)
    }

    /// The index rows of `cur`, the version an update replaces: at hand when this
    /// process wrote it, else extracted from its body (`None` without one, or when
    /// it does not parse: every row is then written again).
    fn replaced_rows<'c>(&self, cur: &'c Stored) -> Option<Cow<'c, [IndexRow]>> {
        match (&cur.written, &cur.body) {
            // Written by this process: its rows are at hand.
            (Some(w), _) => Some(Cow::Borrowed(&w.rows)),
            (None, Some(b)) => {
                serde_json::from_str::<Value>(b).ok().map(|v| Cow::Owned(self.registry.extract(&cur.res_type, &v)))
            }
            (None, None) => None,
        }
    }

    /// [`Store::next_version`] one statement after the other (SQLite): the row moved
    /// on, guarded on the version read; its index rows deleted unless `written`
    /// holds only the changed ones (`compared`); then the version written.
    async fn next_version_in_steps(
        &self,
        tx: &mut Tx,
        cur: &Stored,
        next: NewVersion<'_>,
        written: Option<(Stored, Vec<Sql>)>,
        compared: bool,
    ) -> Result<Stored> {
        let changed = sqlx::query(NEXT_VERSION)
            .bind(next.version)
            .bind(next.now)
            .bind(written.is_none())
            .bind(cur.pk)
            .bind(cur.version)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if changed != 1 {
            return Err(stale(cur));
        }
        if !compared {
            let deletes = self.registry.index_deletes(cur.pk, self.dialect);
            // A deletion keeps its reference rows: visibility is decided by them.
            let keep_refs = written.is_none();
            let deletes: Vec<Sql> =
                deletes.into_iter().filter(|s| !(keep_refs && s.text.contains("idx_reference"))).collect();
            execute_all(tx, self.folded(deletes)).await?;
        }
        match written {
            Some(v) => self.write_version(tx, v).await,
            None => deletion_version(tx, cur, next).await,
        }
    }

    /// Runs a version's statements (from [`Store::version_statements`]); the version as stored.
    pub(super) async fn write_version(&self, tx: &mut Tx, (stored, statements): (Stored, Vec<Sql>)) -> Result<Stored> {
        execute_all(tx, self.folded(statements)).await?;
        Ok(stored)
    }
}

/// `cur` was changed by another request since it was read.
fn stale(cur: &Stored) -> Error {
    Error::Conflict(format!("{}/{} was changed by another request; retry", cur.res_type, cur.id))
}

/// Writes the version `next` of `cur` as a deletion (no body); the version as stored.
async fn deletion_version(tx: &mut Tx, cur: &Stored, next: NewVersion<'_>) -> Result<Stored> {
    sqlx::query(INSERT_VERSION)
        .bind(cur.pk)
        .bind(next.version)
        .bind(next.now)
        .bind(true)
        .bind(next.method)
        .bind(Option::<Vec<u8>>::None)
        .execute(&mut **tx)
        .await?;
    Ok(Stored {
        version: next.version,
        last_updated: next.now,
        deleted: true,
        body: None,
        written: None,
        ..cur.clone()
    })
}

/// Runs a statement of [`fold::keyed`]'s shape: the key, or `None` when it wrote no row.
async fn key_of(tx: &mut Tx, one: Sql) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar_with(&one.text, into_arguments(one.binds)).fetch_optional(&mut **tx).await?)
}

/// On PostgreSQL, the one statement that moves resource `pk` on from version `read`
/// with `writes` (the next version's statements, from [`version_statements`]): the
/// row moved on, its version and index rows — all the old rows deleted first unless
/// `writes` holds only the changed ones (`compared`). Writes nothing and yields no
/// row when the version read is stale.
pub fn next_version_sql(registry: &Registry, pk: i64, read: i64, now: i64, writes: Vec<Sql>, compared: bool) -> Sql {
    let binds = vec![Bind::Int(read + 1), Bind::Int(now), Bind::Bool(false), Bind::Int(pk), Bind::Int(read)];
    let first = Sql { text: format!("{NEXT_VERSION} RETURNING pk"), binds };
    let mut rest = if compared { Vec::new() } else { registry.index_deletes(pk, Dialect::Postgres) };
    rest.extend(writes);
    super::fold::keyed(first, rest)
}

/// Which version of which resource a write makes, when and how.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    /// The resource row's key (bound as each statement's `$1`).
    pub pk: i64,
    pub res_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    /// µs since the Unix epoch, UTC.
    pub now: i64,
    /// The HTTP method recorded in the history (`POST`, `PUT`).
    pub method: &'a str,
}

/// The version row and index rows of `v` (its `meta` stamped), each statement
/// binding `v.pk` as its `$1`; and the version as stored. With `old` (the rows of
/// the version replaced), only the changed rows.
pub fn version_statements(
    registry: &Registry,
    v: NewVersion<'_>,
    resource: Value,
    old: Option<&[IndexRow]>,
) -> Result<(Stored, Vec<Sql>)> {
    let NewVersion { pk, res_type, id, version, now, method } = v;
    let resource = meta::stamp(resource, id, version, now);
    let body = serde_json::to_string(&resource).map_err(anyhow::Error::from)?;
    let version_row = Sql {
        text: INSERT_VERSION.into(),
        binds: vec![
            Bind::Int(pk),
            Bind::Int(version),
            Bind::Int(now),
            Bind::Bool(false),
            Bind::Text(method.into()),
            Bind::Bytes(super::body::pack(&body)),
        ],
    };
    let rows = registry.extract(res_type, &resource);
    let mut statements = vec![version_row];
    statements.extend(match old {
        Some(old) => registry.index_changes(pk, res_type, old, &rows),
        None => registry.index_inserts(pk, res_type, &rows, Dialect::Postgres),
    });
    let written = Some(std::sync::Arc::new(Written { value: resource, rows }));
    let stored = Stored {
        pk,
        res_type: res_type.to_string(),
        id: id.to_string(),
        version,
        last_updated: now,
        deleted: false,
        body: Some(body),
        written,
    };
    Ok((stored, statements))
}
