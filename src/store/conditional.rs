//! Writes in their own transaction, and the conditional forms (create with
//! `If-None-Exist`, update and delete by search). A conditional write serialises on
//! its query, never on a global lock: on PostgreSQL an advisory transaction lock keyed
//! by a hash of type + query, so two gateways on one database agree; on SQLite the
//! one writer runs one transaction at a time, inside its group's immediate
//! transaction (the file's single write lock).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{current, Dialect, Store, Tx, Write, WriteKind};
use crate::access::{Access, Rule};
use crate::{Error, Result};

impl Store {
    /// Creates, or with `condition` (If-None-Exist) returns the one existing match.
    pub async fn create(
        &self,
        access: &Access,
        res_type: &str,
        resource: Value,
        condition: Option<&[(String, String)]>,
    ) -> Result<Write> {
        // What the booking and billing rules watch never takes the one-statement path.
        if condition.is_none()
            && self.dialect == Dialect::Postgres
            && access.write(res_type) == Rule::All
            && !self.hooks.watches(res_type)
        {
            return Ok(Write { kind: WriteKind::Created, stored: Some(self.create_single(res_type, resource).await?) });
        }
        let mut tx = self.begin().await?;
        let w = match condition {
            Some(q) => self.create_conditional_in(&mut tx, access, res_type, resource, q).await?,
            None => {
                let id = super::new_id();
                let stored = self.insert_checked(&mut tx, access, res_type, resource, &id, "POST").await?;
                // A payment whose reference was recorded before answers with that one.
                let kind = if stored.id == id { WriteKind::Created } else { WriteKind::Matched };
                Write { kind, stored: Some(stored) }
            }
        };
        tx.commit().await?;
        Ok(w)
    }

    pub async fn update(
        &self,
        access: &Access,
        res_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Write> {
        let mut tx = self.begin().await?;
        let w = self.update_in(&mut tx, access, res_type, id, resource, if_match).await?;
        tx.commit().await?;
        Ok(w)
    }

    pub async fn delete(&self, access: &Access, res_type: &str, id: &str) -> Result<Write> {
        let mut tx = self.begin().await?;
        let w = self.delete_in(&mut tx, access, res_type, id).await?;
        tx.commit().await?;
        Ok(w)
    }

    pub async fn conditional_update(
        &self,
        access: &Access,
        res_type: &str,
        resource: Value,
        query: &[(String, String)],
    ) -> Result<Write> {
        let mut tx = self.begin().await?;
        let w = self.conditional_update_in(&mut tx, access, res_type, resource, query).await?;
        tx.commit().await?;
        Ok(w)
    }

    pub async fn conditional_delete(
        &self,
        access: &Access,
        res_type: &str,
        query: &[(String, String)],
    ) -> Result<Write> {
        let mut tx = self.begin().await?;
        let w = self.conditional_delete_in(&mut tx, access, res_type, query).await?;
        tx.commit().await?;
        Ok(w)
    }

    /// Conditional create inside `tx`: 0 matches → create, 1 → that one (`Matched`),
    /// more → 412.
    pub async fn create_conditional_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        resource: Value,
        query: &[(String, String)],
    ) -> Result<Write> {
        match self.condition_ids_in(tx, access, res_type, query).await?.as_slice() {
            [] => Ok(Write {
                kind: WriteKind::Created,
                stored: Some(self.create_in(tx, access, res_type, resource, None).await?),
            }),
            [id] => {
                Ok(Write { kind: WriteKind::Matched, stored: current(tx, self.dialect, res_type, id, false).await? })
            }
            _ => Err(several(res_type, query)),
        }
    }

    /// Conditional update inside `tx`: the one match is updated; none → created (with
    /// the body's id when it has one); several → 412.
    pub async fn conditional_update_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        resource: Value,
        query: &[(String, String)],
    ) -> Result<Write> {
        let body_id = resource.get("id").and_then(Value::as_str).map(str::to_string);
        match self.condition_ids_in(tx, access, res_type, query).await?.as_slice() {
            [] => match body_id {
                Some(id) => self.update_in(tx, access, res_type, &id, resource, None).await,
                None => Ok(Write {
                    kind: WriteKind::Created,
                    stored: Some(self.create_in(tx, access, res_type, resource, None).await?),
                }),
            },
            [id] => {
                if body_id.as_ref().is_some_and(|b| b != id) {
                    return Err(Error::invalid(
                        "invalid",
                        Some(format!("{res_type}.id")),
                        format!("the body's id differs from the matching resource {res_type}/{id}"),
                    ));
                }
                let mut resource = resource;
                resource["id"] = Value::String(id.clone());
                self.update_in(tx, access, res_type, id, resource, None).await
            }
            _ => Err(several(res_type, query)),
        }
    }

    pub async fn conditional_delete_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        query: &[(String, String)],
    ) -> Result<Write> {
        match self.condition_ids_in(tx, access, res_type, query).await?.as_slice() {
            [] => Ok(Write { kind: WriteKind::Nothing, stored: None }),
            [id] => self.delete_in(tx, access, res_type, id).await,
            _ => Err(several(res_type, query)),
        }
    }

    /// Ids matching a condition (at most 2: enough to tell none, one, several), after
    /// taking the lock that serialises writers of the same condition.
    pub async fn condition_ids_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        query: &[(String, String)],
    ) -> Result<Vec<String>> {
        if query.is_empty() {
            return Err(Error::invalid("required", None, "a conditional request needs at least one search parameter"));
        }
        self.lock_condition(tx, res_type, query).await?;
        self.search_ids_in(tx, access, res_type, query, 2).await
    }

    /// Serialises the writers of one condition until the transaction ends: an advisory
    /// lock on PostgreSQL; SQLite's write transaction already admits one writer.
    pub(crate) async fn lock_condition(&self, tx: &mut Tx, res_type: &str, query: &[(String, String)]) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(condition_key(res_type, query))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

fn several(res_type: &str, query: &[(String, String)]) -> Error {
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Error::PreconditionFailed(format!(
        "more than one {res_type} matches {}; make the condition more selective",
        q.join("&")
    ))
}

/// A 64-bit key for the advisory lock of one condition: same type and same
/// parameters (in any order) → same key.
pub(super) fn condition_key(res_type: &str, query: &[(String, String)]) -> i64 {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();
    let mut h = Sha256::new();
    h.update(res_type.as_bytes());
    for (k, v) in pairs {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([1]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}
