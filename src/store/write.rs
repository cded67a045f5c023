//! Create, update and delete of one resource by a caller: what its access lets it
//! write checked before and after, the domain's hooks run, then a new version
//! written (see `versions`). Each write runs inside the caller's transaction, so a
//! transaction Bundle is all or nothing.

use serde_json::Value;

use super::hooks::{Pending, Verdict};
use super::resources::{matches_rule, new_id, Stored, Write, WriteKind};
use super::{Store, Tx};
use crate::access::{Access, Rule};
use crate::{Error, Result};

fn not_writable(res_type: &str, id: &str) -> Error {
    Error::Forbidden(format!(
        "this caller may not write {res_type}/{id}; the token's role and organisation decide what it may change"
    ))
}

/// Refuses early when the caller may write no resource of the type at all.
pub(crate) fn may_write_some(access: &Access, res_type: &str) -> Result<Rule> {
    match access.write(res_type) {
        Rule::Nothing => {
            Err(Error::Forbidden(format!("this caller may not create, change or delete {res_type} resources")))
        }
        rule => Ok(rule),
    }
}

impl Store {
    /// Creates a new resource with a server-assigned id (or `id` when given, for
    /// update-as-create). Fails with `Conflict` if the id is taken, `Forbidden` if
    /// `access` may not write what it would create.
    pub async fn create_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        resource: Value,
        id: Option<String>,
    ) -> Result<Stored> {
        match id {
            Some(id) => self.insert_checked(tx, access, res_type, resource, &id, "PUT").await,
            None => {
                let id = new_id();
                tx.fresh(&id);
                self.insert_checked(tx, access, res_type, resource, &id, "POST").await
            }
        }
    }

    /// [`Store::insert_new`], refused (`Forbidden`) when `access` may not write what
    /// it creates.
    pub async fn insert_checked(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        resource: Value,
        id: &str,
        method: &str,
    ) -> Result<Stored> {
        let rule = may_write_some(access, res_type)?;
        let mut resource = resource;
        let write = Pending { access, id, creating: true, old: None, new: Some(&mut resource) };
        if let Verdict::Recorded(recorded) = self.run_hook(tx, res_type, write).await? {
            return Ok(recorded);
        }
        let stored = self.insert_new(tx, res_type, resource, id, method, Vec::new()).await?;
        if !matches_rule(tx, stored.pk, &rule).await? {
            return Err(not_writable(res_type, id));
        }
        Ok(stored)
    }

    /// Updates `res_type/id` (creating it when new). `if_match` is the version the
    /// client last saw: a different current version → 412.
    pub async fn update_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<Write> {
        let rule = may_write_some(access, res_type)?;
        let Some(cur) = self.current_for_write(tx, res_type, id).await? else {
            if if_match.is_some() {
                return Err(Error::PreconditionFailed(format!(
                    "{res_type}/{id} does not exist, but If-Match was given"
                )));
            }
            let stored = match self.create_in(tx, access, res_type, resource.clone(), Some(id.to_string())).await {
                Ok(s) => s,
                // Another client created it between our read and our insert: update
                // theirs. Any other conflict (a full slot) is the answer: retrying it
                // would recurse without end.
                Err(Error::Conflict(why)) => {
                    if self.current_for_write(tx, res_type, id).await?.is_none() {
                        return Err(Error::Conflict(why));
                    }
                    return Box::pin(self.update_in(tx, access, res_type, id, resource, None)).await;
                }
                Err(e) => return Err(e),
            };
            return Ok(Write { kind: WriteKind::Created, stored: Some(stored) });
        };
        // What the caller may not see, or may see but not change, it may not overwrite.
        if !matches_rule(tx, cur.pk, &access.read(res_type)).await? || !matches_rule(tx, cur.pk, &rule).await? {
            return Err(not_writable(res_type, id));
        }
        if let Some(expected) = if_match {
            if expected != cur.version {
                return Err(Error::PreconditionFailed(format!(
                    "{res_type}/{id} is at version {}, not {expected} (If-Match); read it again and reapply the change",
                    cur.version
                )));
            }
        }
        let mut resource = resource;
        let old = if cur.deleted { None } else { cur.value()? };
        let write = Pending { access, id, creating: false, old: old.as_ref(), new: Some(&mut resource) };
        if let Verdict::Recorded(recorded) = self.run_hook(tx, res_type, write).await? {
            return Ok(Write { kind: WriteKind::Updated, stored: Some(recorded) });
        }
        let stored = self.next_version(tx, &cur, "PUT", Some(resource)).await?;
        if !matches_rule(tx, cur.pk, &rule).await? {
            return Err(not_writable(res_type, id));
        }
        Ok(Write { kind: WriteKind::Updated, stored: Some(stored) })
    }

    /// Logically deletes `res_type/id`: a new version marked deleted, no index rows
    /// but its references (which keep deciding who may see it). What `access` may
    /// not see is, as far as it can tell, not there.
    pub async fn delete_in(&self, tx: &mut Tx, access: &Access, res_type: &str, id: &str) -> Result<Write> {
        let rule = may_write_some(access, res_type)?;
        match self.current_for_write(tx, res_type, id).await? {
            Some(cur) if !cur.deleted && !matches_rule(tx, cur.pk, &access.read(res_type)).await? => {
                Ok(Write { kind: WriteKind::Nothing, stored: None })
            }
            Some(cur) if !cur.deleted => {
                if !matches_rule(tx, cur.pk, &rule).await? {
                    return Err(not_writable(res_type, id));
                }
                let old = cur.value()?;
                let write = Pending { access, id, creating: false, old: old.as_ref(), new: None };
                if let Verdict::Recorded(recorded) = self.run_hook(tx, res_type, write).await? {
                    return Ok(Write { kind: WriteKind::Nothing, stored: Some(recorded) });
                }
                let stored = self.next_version(tx, &cur, "DELETE", None).await?;
                Ok(Write { kind: WriteKind::Deleted, stored: Some(stored) })
            }
            _ => Ok(Write { kind: WriteKind::Nothing, stored: None }),
        }
    }

    /// Of the deleted `res_type/id`, keeps only the deletion: its earlier versions and
    /// every index row (its references too) go. For what nobody keeps a record of,
    /// as `$find`'s proposals that lapsed untouched: each left some 2 KB (a version,
    /// six reference rows) for nothing. Afterwards it reads as deleted (410) to
    /// callers who may read every resource of its type, and as not there (404) to
    /// those whose visibility follows references (a patient, a provider). Does
    /// nothing to a resource not deleted.
    pub async fn expunge_deleted(&self, tx: &mut Tx, res_type: &str, id: &str) -> Result<()> {
        let Some(cur) = self.current_for_write(tx, res_type, id).await? else { return Ok(()) };
        if !cur.deleted {
            return Ok(());
        }
        super::execute_all(tx, self.registry.index_deletes(cur.pk, self.dialect)).await?;
        sqlx::query("DELETE FROM resource_versions WHERE res_pk = $1 AND version < $2")
            .bind(cur.pk)
            .bind(cur.version)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Whether a resource other than an AuditEvent (which records what was touched,
    /// not a link to keep) refers to `res_type/id`.
    pub async fn is_referenced(&self, tx: &mut Tx, res_type: &str, id: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT res_pk FROM idx_reference WHERE target_type = $1 AND target_id = $2 \
             AND res_type <> 'AuditEvent' AND NOT (res_type = $1 AND res_pk IN \
             (SELECT pk FROM resources WHERE res_type = $1 AND res_id = $2)) LIMIT 1",
        )
        .bind(res_type)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(found.is_some())
    }
}
