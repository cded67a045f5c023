//! The lookups the booking and billing rules make on every booking: a tariff by its
//! catalog code, a patient's Coverages, a patient's booking on a slot.
//!
//! Run as searches they cost more to plan than to run (a quarter of PostgreSQL's
//! time per booking). Each is instead one lookup on one index table, planned with
//! its values (cheap: one table), then the current versions by key, kept prepared:
//! every step of that join goes through a unique key, so its plan cannot turn bad
//! as tables grow, as a cached plan joining on index rows did when first planned on
//! nearly empty tables.
//!
//! The one-table lookups are sent with their values written into the text, as
//! literals: a statement with binds that is not kept prepared costs two round trips
//! (sqlx asks the database to describe it first), one in text. A booking's ticket
//! needs both the tariff and the patient's Coverages: their lookups go as one
//! statement (`UNION ALL`), the resources found as one more.

use sqlx::{Executor, Row};

use super::resources::{restricted, stored_from_row};
use super::{into_arguments, Bind, Dialect, Store, Stored, Tx};
use crate::access::Access;
use crate::Result;

/// `$1, $2, …` from `from` on, `n` of them.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `s` as a string literal of `dialect`; none for a text holding NUL, which no
/// stored text can (so nothing matches it).
pub(super) fn literal(dialect: Dialect, s: &str) -> Option<String> {
    if s.contains('\0') {
        return None;
    }
    Some(match dialect {
        // An escape string: its meaning does not hang on `standard_conforming_strings`.
        Dialect::Postgres => format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
        Dialect::Sqlite => format!("'{}'", s.replace('\'', "''")),
    })
}

/// The rows of each statement of `sql` (several statements, no binds: one simple
/// query, one round trip), in order.
async fn results_of(tx: &mut Tx, sql: &str) -> Result<Vec<Vec<sqlx::any::AnyRow>>> {
    use futures_util::TryStreamExt;
    let mut out = vec![Vec::new()];
    let mut stream = (&mut **tx).fetch_many(sql);
    while let Some(item) = stream.try_next().await? {
        match item {
            sqlx::Either::Left(_) => out.push(Vec::new()),
            sqlx::Either::Right(row) => out.last_mut().map_or((), |rows| rows.push(row)),
        }
    }
    Ok(out)
}

/// The first column (a key) of each row `sql` (no binds) returns.
async fn keys(tx: &mut Tx, sql: &str) -> Result<Vec<i64>> {
    let rows = (&mut **tx).fetch_all(sql).await?;
    Ok(rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<std::result::Result<_, _>>()?)
}

/// Of the appointments `taken`, the live bookings (booked, arrived, checked-in,
/// fulfilled) of `Patient/patient` that `access` may see, in pk order.
async fn live_bookings(tx: &mut Tx, access: &Access, patient: &str, taken: &[String]) -> Result<Vec<String>> {
    let mut binds = vec![Bind::Text("Appointment".into()), Bind::Bool(false), Bind::Text(patient.into())];
    binds.extend(taken.iter().map(|a| Bind::Text(a.clone())));
    let sql = format!(
        "SELECT r.res_id FROM resources r WHERE r.res_type = $1 AND r.deleted = $2 AND r.res_id IN ({}) \
         AND EXISTS (SELECT 1 FROM idx_reference p WHERE p.res_pk = r.pk AND p.param = 'actor' \
         AND p.target_type = 'Patient' AND p.target_id = $3) \
         AND EXISTS (SELECT 1 FROM idx_token t WHERE t.res_pk = r.pk AND t.param = 'status' \
         AND t.code IN ('booked', 'arrived', 'checked-in', 'fulfilled'))",
        placeholders(4, taken.len())
    );
    let Some((sql, binds)) = restricted(&sql, binds, &access.read("Appointment")) else {
        return Ok(Vec::new());
    };
    let ids: Vec<String> = sqlx::query_scalar_with(&format!("{sql} ORDER BY r.pk"), into_arguments(binds))
        .persistent(false)
        .fetch_all(&mut **tx)
        .await?;
    Ok(ids)
}

impl Store {
    /// Ids of the live bookings (booked, arrived, checked-in, fulfilled) of
    /// `Patient/patient` on any of `slots` (ids) that `access` may see: what a retried
    /// `$book` of the same slot for the same patient finds. The slots' places taken
    /// (`slot_claims`, none on a free slot) are looked at first, after the lock of
    /// `condition` (see `Store::lock_condition`) is held. On PostgreSQL the lock, that
    /// look and the catalog's version (read ahead for the booking rules'
    /// `catalog_facts`: `ahead`, a type and id) go in one round trip: statements of
    /// one simple query each take their own snapshot, so the look sees what the lock's
    /// last holder committed.
    pub(crate) async fn bookings_of(
        &self,
        tx: &mut Tx,
        access: &Access,
        condition: (&str, &[(String, String)]),
        slots: &[&str],
        patient: &str,
        ahead: (&str, &str),
    ) -> Result<Vec<String>> {
        let list: Vec<String> = slots.iter().filter_map(|s| literal(self.dialect, s)).collect();
        if list.is_empty() {
            self.lock_condition(tx, condition.0, condition.1).await?;
            return Ok(Vec::new());
        }
        let claimed = format!(
            "SELECT DISTINCT appointment FROM slot_claims WHERE expires_us IS NULL AND slot IN ({})",
            list.join(", ")
        );
        let taken: Vec<String> = match self.dialect {
            Dialect::Postgres => self.claims_after_lock(tx, condition, &claimed, ahead).await?,
            Dialect::Sqlite => {
                let rows = (&mut **tx).fetch_all(claimed.as_str()).await?;
                rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<std::result::Result<_, _>>()?
            }
        };
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        live_bookings(tx, access, patient, &taken).await
    }

    /// PostgreSQL, in one round trip: the lock of `condition`, then the
    /// appointments of the places taken (`claimed`, a query), and the current version
    /// of `ahead` recorded in `tx`.
    async fn claims_after_lock(
        &self,
        tx: &mut Tx,
        condition: (&str, &[(String, String)]),
        claimed: &str,
        ahead: (&str, &str),
    ) -> Result<Vec<String>> {
        let key = super::conditional::condition_key(condition.0, condition.1);
        let (t, id) = (literal(self.dialect, ahead.0), literal(self.dialect, ahead.1));
        let (t, id) = (t.unwrap_or_else(|| "''".into()), id.unwrap_or_else(|| "''".into()));
        let sql = format!(
            "SELECT count(*) FROM pg_advisory_xact_lock({key}); {claimed}; \
             SELECT pk, version FROM resources WHERE res_type = {t} AND res_id = {id} AND deleted = false"
        );
        let mut results = results_of(tx, &sql).await?.into_iter().skip(1);
        let taken = results.next().unwrap_or_default();
        let catalog = match results.next().unwrap_or_default().first() {
            Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)),
            None => None,
        };
        tx.saw_version(ahead.0, ahead.1, catalog);
        Ok(taken.iter().map(|r| r.try_get::<String, _>(0)).collect::<std::result::Result<_, _>>()?)
    }

    /// The current `res_type` resources whose token parameter `param` is
    /// `system|code`, oldest first (the tariffs of a catalog code).
    pub(crate) async fn with_token(
        &self,
        tx: &mut Tx,
        res_type: &str,
        param: &str,
        system: &str,
        code: &str,
    ) -> Result<Vec<Stored>> {
        self.looked_up(tx, &[token_lookup(self.dialect, res_type, param, system, code)]).await
    }

    /// The current `res_type` resources whose reference parameter `param` names
    /// `target` (`Type/id`), oldest first (a patient's Coverages).
    pub(crate) async fn with_reference(
        &self,
        tx: &mut Tx,
        res_type: &str,
        param: &str,
        target: (&str, &str),
    ) -> Result<Vec<Stored>> {
        self.looked_up(tx, &[reference_lookup(self.dialect, res_type, param, target)]).await
    }

    /// The current resources the one-table `lookups` find (their keys in one round
    /// trip, their versions in a second), oldest first. A lookup that is `None` (a
    /// value no stored text can hold) finds nothing.
    pub(crate) async fn looked_up(&self, tx: &mut Tx, lookups: &[Option<Lookup>]) -> Result<Vec<Stored>> {
        let lookups: Vec<&Lookup> = lookups.iter().flatten().collect();
        if lookups.is_empty() {
            return Ok(Vec::new());
        }
        let sql = lookups.iter().map(|l| l.sql.as_str()).collect::<Vec<_>>().join(" UNION ALL ");
        let mut pks = keys(tx, &sql).await?;
        pks.sort_unstable();
        pks.dedup();
        if pks.is_empty() {
            return Ok(Vec::new());
        }
        let mut types: Vec<&str> = lookups.iter().map(|l| l.res_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        let sql = format!(
            "SELECT r.pk, r.res_type, r.res_id, r.version, r.last_updated, CAST(r.deleted AS INTEGER) AS deleted, \
             v.body FROM resources r JOIN resource_versions v ON v.res_pk = r.pk AND v.version = r.version \
             WHERE r.pk IN ({}) AND r.res_type IN ({}) AND r.deleted = $1 ORDER BY r.pk",
            placeholders(2 + types.len(), pks.len()),
            placeholders(2, types.len())
        );
        let mut binds = vec![Bind::Bool(false)];
        binds.extend(types.into_iter().map(|t| Bind::Text(t.into())));
        binds.extend(pks.into_iter().map(Bind::Int));
        let rows = sqlx::query_with(&sql, into_arguments(binds)).fetch_all(&mut **tx).await?;
        rows.iter().map(stored_from_row).collect()
    }
}

/// One index table's rows for one parameter's value, as text with the values written
/// in (see the module's comment), and the type of the resources it finds.
pub(crate) struct Lookup {
    res_type: String,
    sql: String,
}

/// `res_type` resources whose token parameter `param` is `system|code`.
pub(crate) fn token_lookup(d: Dialect, res_type: &str, param: &str, system: &str, code: &str) -> Option<Lookup> {
    let l = |s: &str| literal(d, s);
    let (t, p) = (l(res_type)?, l(param)?);
    let (c, s) = (cupola_search::exact_match("code", code, l)?, cupola_search::exact_match("system", system, l)?);
    let sql = format!("SELECT res_pk FROM idx_token WHERE res_type = {t} AND param = {p} AND {c} AND {s}");
    Some(Lookup { res_type: res_type.to_string(), sql })
}

/// `res_type` resources whose reference parameter `param` names `target` (`Type/id`).
pub(crate) fn reference_lookup(d: Dialect, res_type: &str, param: &str, target: (&str, &str)) -> Option<Lookup> {
    let l = |s: &str| literal(d, s);
    let (t, p, tt, ti) = (l(res_type)?, l(param)?, l(target.0)?, l(target.1)?);
    let sql = format!(
        "SELECT res_pk FROM idx_reference WHERE res_type = {t} AND param = {p} AND target_type = {tt} AND target_id = {ti}"
    );
    Some(Lookup { res_type: res_type.to_string(), sql })
}

impl Store {
    /// `(pk, version)` of the current version of `res_type/id`.
    /// Answered from what the transaction already read or wrote of it when it can.
    pub(crate) async fn current_version(&self, tx: &mut Tx, res_type: &str, id: &str) -> Result<Option<(i64, i64)>> {
        if let Some(v) = tx.version_seen(res_type, id) {
            return Ok(v);
        }
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT pk, version FROM resources WHERE res_type = $1 AND res_id = $2 AND deleted = $3")
                .bind(res_type)
                .bind(id)
                .bind(false)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_what_would_end_them() {
        assert_eq!(literal(Dialect::Postgres, "O'Brien\\x").as_deref(), Some("E'O''Brien\\\\x'"));
        assert_eq!(literal(Dialect::Sqlite, "O'Brien\\x").as_deref(), Some("'O''Brien\\x'"));
        assert_eq!(literal(Dialect::Postgres, "a\0b"), None);
    }
}
