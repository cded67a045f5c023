//! A create with a server-assigned id as PostgreSQL runs it: one statement, its
//! parts chained with data-modifying CTEs (resource row, version row, index rows),
//! atomic on its own, so a plain create costs one round trip instead of eight.
//! SQLite (no DML in CTEs; in-process, so round trips are cheap) runs the same
//! statements one by one in a transaction. The benchmark's pgbench script replays
//! exactly what `single_statement` builds.

use serde_json::Value;

use super::versions::{INSERT_RESOURCE, INSERT_VERSION};
use sqlx::Row;

use super::{into_arguments, new_id, now_micros, Bind, Dialect, Registry, Sql, Store, Stored, Tx};
use crate::fhir::meta;
use crate::Result;

/// The statements a create of `resource` as `res_type/id` runs, in order: the
/// resource row (returning its key), then the version and the index rows, whose
/// first bind is that key (`pk` stands for it).
pub fn create_statements(
    registry: &Registry,
    d: Dialect,
    res_type: &str,
    resource: Value,
    id: &str,
    now: i64,
    pk: i64,
) -> (String, Vec<Sql>) {
    let new = NewResource::stamp(registry, res_type, resource, id, now);
    let out = new.statements(registry, d, pk);
    (new.body, out)
}

/// A resource ready to be created: stamped as version 1, serialised, indexed.
pub(super) struct NewResource {
    pub res_type: String,
    pub id: String,
    pub now: i64,
    pub body: String,
    /// `body` as stored (see `body::pack`).
    pub packed: Vec<u8>,
    pub rows: Vec<cupola_search::IndexRow>,
}

impl NewResource {
    pub(super) fn stamp(registry: &Registry, res_type: &str, resource: Value, id: &str, now: i64) -> NewResource {
        let resource = meta::stamp(resource, id, 1, now);
        let rows = registry.extract(res_type, &resource);
        let body = resource.to_string();
        let packed = super::body::pack(&body);
        NewResource { res_type: res_type.into(), id: id.into(), now, body, packed, rows }
    }

    /// See [`create_statements`].
    pub(super) fn statements(&self, registry: &Registry, d: Dialect, pk: i64) -> Vec<Sql> {
        let mut out = vec![
            Sql {
                text: INSERT_RESOURCE.into(),
                binds: vec![
                    Bind::Text(self.res_type.clone()),
                    Bind::Text(self.id.clone()),
                    Bind::Int(self.now),
                    Bind::Bool(false),
                ],
            },
            Sql {
                text: INSERT_VERSION.into(),
                binds: vec![
                    Bind::Int(pk),
                    Bind::Int(1),
                    Bind::Int(self.now),
                    Bind::Bool(false),
                    Bind::Text("POST".into()),
                    Bind::Bytes(self.packed.clone()),
                ],
            },
        ];
        out.extend(registry.index_inserts(pk, &self.res_type, &self.rows, d));
        out
    }

    pub(super) fn stored(self, pk: i64) -> Stored {
        Stored {
            pk,
            res_type: self.res_type,
            id: self.id,
            version: 1,
            last_updated: self.now,
            deleted: false,
            body: Some(self.body),
            written: None,
        }
    }
}

/// Folds `create_statements` into one statement: `WITH r AS (INSERT … RETURNING pk),
/// c1 AS (INSERT … (SELECT pk FROM r) …), … SELECT pk FROM r`.
pub fn single_statement(statements: &[Sql]) -> Sql {
    let Some((first, rest)) = statements.split_first() else {
        return Sql { text: String::new(), binds: Vec::new() };
    };
    // A fresh server-assigned id cannot conflict; if it ever did, the unique key fails the statement.
    let mut text = format!("WITH r AS ({})", first.text.replace(" ON CONFLICT (res_type, res_id) DO NOTHING", ""));
    let mut binds = first.binds.clone();
    for (i, s) in rest.iter().enumerate() {
        text.push_str(&format!(", c{i} AS ({})", super::fold::with_key(&s.text, "(SELECT pk FROM r)", binds.len())));
        binds.extend(s.binds.iter().skip(1).cloned());
    }
    text.push_str(" SELECT pk FROM r");
    Sql { text, binds }
}

/// Rows per multi-row `INSERT` of resources or versions (well under the bind limits).
const MANY_CHUNK: usize = 500;

impl Store {
    /// Creates many resources of one type in `tx` with a handful of multi-row
    /// statements (the gateway's own records, e.g. AuditEvents): no access check, no
    /// conditional logic. Returns the new ids in order.
    pub(crate) async fn insert_many(&self, tx: &mut Tx, res_type: &str, resources: Vec<Value>) -> Result<Vec<String>> {
        let wanted = resources.len();
        let created =
            self.insert_many_with_ids(tx, res_type, resources.into_iter().map(|r| (new_id(), r)).collect()).await?;
        if created.len() != wanted {
            // Fresh random ids never collide; if one ever did, nothing of this batch is kept.
            return Err(crate::Error::Conflict(format!("a new {res_type} id was already taken; retry")));
        }
        Ok(created)
    }

    /// Creates many new resources of one type at once, all or none, in their own
    /// transaction (the audit writer's batches). On PostgreSQL this is the group
    /// create's one statement of fixed text, planned once per connection: a batch's
    /// multi-row inserts had a new text, parsed and planned anew, for each size.
    pub(crate) async fn create_batch(&self, res_type: &str, resources: Vec<Value>) -> Result<()> {
        if self.dialect != Dialect::Postgres {
            let mut tx = self.begin().await?;
            self.insert_many(&mut tx, res_type, resources).await?;
            return tx.commit().await;
        }
        let now = now_micros();
        let news: Vec<NewResource> =
            resources.into_iter().map(|r| NewResource::stamp(&self.registry, res_type, r, &new_id(), now)).collect();
        // One statement whatever the count: its binds are two JSON arrays.
        let refs: Vec<&NewResource> = news.iter().collect();
        super::group::together(self, &refs).await?;
        Ok(())
    }

    /// [`Store::insert_many`] with ids chosen by the caller (e.g. deterministic Slot
    /// ids): an id that already exists (deleted or not), or that comes twice, is
    /// skipped, not overwritten. Returns the ids created, in order.
    pub async fn insert_many_with_ids(
        &self,
        tx: &mut Tx,
        res_type: &str,
        resources: Vec<(String, Value)>,
    ) -> Result<Vec<String>> {
        let now = now_micros();
        let mut items: Vec<(String, String, Value)> = Vec::with_capacity(resources.len());
        let mut seen = std::collections::HashSet::with_capacity(resources.len());
        for (id, r) in resources {
            if !seen.insert(id.clone()) {
                continue;
            }
            let r = meta::stamp(r, &id, 1, now);
            items.push((id, r.to_string(), r));
        }
        let mut pks: std::collections::HashMap<String, i64> = std::collections::HashMap::with_capacity(items.len());
        for chunk in items.chunks(MANY_CHUNK) {
            let tuples: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, 1, $2, $3)", i + 4)).collect();
            let sql = format!(
                "INSERT INTO resources (res_type, res_id, version, last_updated, deleted) VALUES {} \
                 ON CONFLICT (res_type, res_id) DO NOTHING RETURNING pk, res_id",
                tuples.join(", ")
            );
            let binds = [Bind::Text(res_type.into()), Bind::Int(now), Bind::Bool(false)]
                .into_iter()
                .chain(chunk.iter().map(|(id, _, _)| Bind::Text(id.clone())));
            let rows = sqlx::query_with(&sql, into_arguments(binds)).fetch_all(&mut **tx).await?;
            for row in rows {
                pks.insert(row.try_get("res_id")?, row.try_get("pk")?);
            }
        }
        // Only what was inserted gets a version and index rows.
        items.retain(|(id, _, _)| pks.contains_key(id));
        let pk_of =
            |id: &str| pks.get(id).copied().ok_or_else(|| anyhow::anyhow!("no pk returned for {res_type}/{id}"));
        for chunk in items.chunks(MANY_CHUNK) {
            let tuples: Vec<String> =
                (0..chunk.len()).map(|i| format!("(${}, 1, $1, $2, 'POST', ${})", 2 * i + 3, 2 * i + 4)).collect();
            let sql = format!(
                "INSERT INTO resource_versions (res_pk, version, last_updated, deleted, method, body) VALUES {}",
                tuples.join(", ")
            );
            let mut binds = vec![Bind::Int(now), Bind::Bool(false)];
            for (id, body, _) in chunk {
                binds.push(Bind::Int(pk_of(id)?));
                binds.push(Bind::Bytes(super::body::pack(body)));
            }
            sqlx::query_with(&sql, into_arguments(binds)).execute(&mut **tx).await?;
        }
        let mut index = Vec::with_capacity(items.len());
        for (id, _, r) in &items {
            index.push((pk_of(id)?, self.registry.extract(res_type, r)));
        }
        super::execute_all(tx, self.registry.index_inserts_many(res_type, &index)).await?;
        for (id, _, _) in &items {
            tx.forget(res_type, id);
        }
        Ok(items.into_iter().map(|(id, _, _)| id).collect())
    }
}

impl Store {
    /// Creates `resource` with a new id (PostgreSQL): in one statement of its own, or,
    /// when other creates are waiting at the same moment, in one statement with them
    /// (see `group`).
    pub(crate) async fn create_single(&self, res_type: &str, resource: Value) -> Result<Stored> {
        let new = NewResource::stamp(&self.registry, res_type, resource, &new_id(), now_micros());
        self.group.create(self, new).await
    }

    /// One create as one statement: what `bench/pgbench-create.sql` replays.
    pub(super) async fn create_alone(&self, new: NewResource) -> Result<Stored> {
        let one = single_statement(&new.statements(&self.registry, self.dialect, 0));
        let mut c = self.write_conn().await?;
        let r = sqlx::query_scalar_with(&one.text, into_arguments(one.binds)).fetch_one(&mut *c).await;
        let pk: i64 = c.done(r).await?;
        Ok(new.stored(pk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_fold_into_one_with_the_key_from_the_first() {
        let s = vec![
            Sql { text: "INSERT INTO a (x) VALUES ($1) RETURNING pk".into(), binds: vec![Bind::Int(7)] },
            Sql {
                text: "INSERT INTO b (k, y, z) VALUES ($1, $2, $3), ($1, $4, $10)".into(),
                binds: vec![Bind::Int(0); 10],
            },
        ];
        let one = single_statement(&s);
        assert_eq!(
            one.text,
            "WITH r AS (INSERT INTO a (x) VALUES ($1) RETURNING pk), c0 AS (INSERT INTO b (k, y, z) VALUES ((SELECT pk FROM r), $2, $3), ((SELECT pk FROM r), $4, $10)) SELECT pk FROM r"
        );
        assert_eq!(one.binds.len(), 10);
    }
}
