//! FHIR Subscriptions as the store keeps them: each subscription's registration
//! (its owner, what it watches, its channel, the headers kept out of the resource)
//! and filters, and its events — matched in SQL against a change's own index rows
//! in the transaction of the change, numbered per subscription after commit, then
//! delivered. The rules (topics, triggers, who sees what) are the domain's.

use sqlx::Row;

use super::{into_arguments, Bind, Store, Tx};
use crate::Result;

/// Who created a subscription: what its events are matched and delivered with.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub sub: String,
    pub role: String,
    pub org: Option<String>,
    pub patient: Option<String>,
    pub channel: Option<String>,
    pub scopes: String,
}

/// One value a filter takes; the values of one `name` are alternatives, the names
/// all required.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The parameter as the subscriber wrote it (`patient`).
    pub name: String,
    /// The index rows' parameter (`actor`: `patient` narrows it to Patients).
    pub param: String,
    pub value: FilterValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Token {
        system: Option<String>,
        code: String,
    },
    Reference {
        target_type: String,
        target_id: String,
    },
    /// The resource's own id (`_id`).
    Id(String),
    /// A string parameter's whole value (`district`).
    Text(String),
    /// A priority class a Slot is open to: not reserved for another class.
    OpenTo(String),
}

/// What a subscription is, as the domain decided on its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub id: String,
    pub owner: Owner,
    /// The topic's canonical URL, or `criteria` for an R4 criteria subscription.
    pub topic: String,
    pub res_type: String,
    pub status: String,
    pub channel: String,
    pub endpoint: Option<String>,
    /// `full-resource`, `id-only` or `empty`.
    pub payload: String,
    /// `channel.header`, never returned with the resource.
    pub headers: Vec<String>,
    pub heartbeat_secs: Option<i64>,
    pub filters: Vec<Filter>,
}

/// A subscription a change matched (its filters), with its owner.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub owner: Owner,
}

pub(super) fn owner_of(r: &sqlx::any::AnyRow) -> Result<Owner> {
    Ok(Owner {
        sub: r.try_get("owner_sub")?,
        role: r.try_get("owner_role")?,
        org: r.try_get("owner_org")?,
        patient: r.try_get("owner_patient")?,
        channel: r.try_get("owner_channel")?,
        scopes: r.try_get("owner_scopes")?,
    })
}

/// `values` bound after `binds`: their placeholders, `$3, $4…`, for an `IN (…)`.
pub(super) fn bind_list(binds: &mut Vec<Bind>, values: &[String]) -> String {
    let mut list = Vec::with_capacity(values.len());
    for v in values {
        binds.push(Bind::Text(v.clone()));
        list.push(format!("${}", binds.len()));
    }
    list.join(", ")
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// `q` with `r`'s columns bound as `$1`…`$16` (see `register_subscription`).
fn bind_registration<'q>(q: Query<'q>, r: &'q Registration, headers: &'q str) -> Query<'q> {
    q.bind(&r.id)
        .bind(&r.owner.sub)
        .bind(&r.owner.role)
        .bind(&r.owner.org)
        .bind(&r.owner.patient)
        .bind(&r.owner.channel)
        .bind(&r.owner.scopes)
        .bind(&r.topic)
        .bind(&r.res_type)
        .bind(&r.status)
        .bind(&r.channel)
        .bind(&r.endpoint)
        .bind(&r.payload)
        .bind(headers)
        .bind(r.heartbeat_secs)
        .bind(i64::try_from(r.filters.len()).unwrap_or(i64::MAX))
}

/// A filter row's columns: kind, system, code, target type.
fn filter_columns(v: &FilterValue) -> (&'static str, Option<&str>, &str, Option<&str>) {
    match v {
        FilterValue::Token { system, code } => ("token", system.as_deref(), code, None),
        FilterValue::Reference { target_type, target_id } => ("reference", None, target_id, Some(target_type)),
        FilterValue::Id(id) => ("id", None, id, None),
        FilterValue::Text(v) => ("string", None, v, None),
        FilterValue::OpenTo(class) => ("open-to", None, class, None),
    }
}

/// The subscriptions with a filter row the resource bound as `$2` holds, found
/// from its index rows (as `hit(subscription)`).
const HITS: &str = "SELECT f.subscription FROM idx_token x JOIN subscription_filters f ON f.param = x.param \
     AND f.code = x.code AND f.kind = 'token' WHERE x.res_pk = $2 \
     UNION SELECT f.subscription FROM idx_reference x JOIN subscription_filters f ON f.param = x.param \
     AND f.code = x.target_id AND f.kind = 'reference' WHERE x.res_pk = $2 \
     UNION SELECT f.subscription FROM idx_string x JOIN subscription_filters f ON f.param = x.param \
     AND f.code = x.value_exact AND f.kind = 'string' WHERE x.res_pk = $2 \
     UNION SELECT f.subscription FROM resources x JOIN subscription_filters f ON f.param = '_id' \
     AND f.code = x.res_id AND f.kind = 'id' WHERE x.pk = $2 \
     UNION SELECT f.subscription FROM subscription_filters f WHERE f.kind = 'open-to'";

/// Whether one filter row `g` holds for the resource bound as `$2`.
const FILTER_HOLDS: &str = "((g.kind = 'token' AND EXISTS (SELECT 1 FROM idx_token x WHERE x.res_pk = $2 \
     AND x.param = g.param AND x.code = g.code AND (g.system IS NULL OR x.system = g.system))) \
     OR (g.kind = 'reference' AND EXISTS (SELECT 1 FROM idx_reference x WHERE x.res_pk = $2 \
     AND x.param = g.param AND x.target_type = g.target_type AND x.target_id = g.code)) \
     OR (g.kind = 'id' AND EXISTS (SELECT 1 FROM resources x WHERE x.pk = $2 AND x.res_id = g.code)) \
     OR (g.kind = 'string' AND EXISTS (SELECT 1 FROM idx_string x WHERE x.res_pk = $2 AND x.param = g.param \
     AND x.value_exact = g.code)) \
     OR (g.kind = 'open-to' AND NOT EXISTS (SELECT 1 FROM idx_token x WHERE x.res_pk = $2 \
     AND x.param = 'reserved-for' AND x.code <> g.code)))";

impl Store {
    /// Records `r` (replacing what was recorded of the same subscription, whose
    /// events keep their numbers).
    pub async fn register_subscription(&self, tx: &mut Tx, r: &Registration) -> Result<()> {
        sqlx::query("DELETE FROM subscription_filters WHERE subscription = $1").bind(&r.id).execute(&mut **tx).await?;
        let headers = serde_json::to_string(&r.headers).map_err(anyhow::Error::from)?;
        let changed = sqlx::query(
            "UPDATE subscriptions SET owner_sub = $2, owner_role = $3, owner_org = $4, owner_patient = $5, \
             owner_channel = $6, owner_scopes = $7, topic = $8, res_type = $9, status = $10, channel = $11, \
             endpoint = $12, payload = $13, headers = $14, heartbeat_s = $15, filters = $16, \
             failures = CASE WHEN $10 = 'error' THEN failures ELSE 0 END, \
             next_try_us = CASE WHEN $10 = 'error' THEN next_try_us ELSE NULL END WHERE id = $1",
        );
        let insert = sqlx::query(
            "INSERT INTO subscriptions (id, owner_sub, owner_role, owner_org, owner_patient, owner_channel, \
             owner_scopes, topic, res_type, status, channel, endpoint, payload, headers, heartbeat_s, filters, events, \
             failures) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, 0)",
        );
        let n = bind_registration(changed, r, &headers).execute(&mut **tx).await?.rows_affected();
        if n == 0 {
            bind_registration(insert, r, &headers).execute(&mut **tx).await?;
        }
        for f in &r.filters {
            let (kind, system, code, target_type) = filter_columns(&f.value);
            sqlx::query(
                "INSERT INTO subscription_filters (subscription, name, param, kind, system, code, target_type) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&r.id)
            .bind(&f.name)
            .bind(&f.param)
            .bind(kind)
            .bind(system)
            .bind(code)
            .bind(target_type)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Subscription `id` was deleted: it matches nothing any more (its owner still
    /// sees the deleted resource; its events keep their numbers).
    pub async fn end_subscription(&self, tx: &mut Tx, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM subscription_filters WHERE subscription = $1").bind(id).execute(&mut **tx).await?;
        sqlx::query("UPDATE subscriptions SET status = 'off' WHERE id = $1").bind(id).execute(&mut **tx).await?;
        Ok(())
    }

    /// The live subscriptions on `res_type` for one of `topics` whose every filter
    /// holds for resource `pk` (its index rows as this transaction wrote them).
    pub async fn subscription_candidates(
        &self,
        tx: &mut Tx,
        res_type: &str,
        pk: i64,
        topics: &[String],
    ) -> Result<Vec<Candidate>> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut binds = vec![Bind::Text(res_type.into()), Bind::Int(pk)];
        let list = bind_list(&mut binds, topics);
        // The subscriptions one of whose filter rows the change's own index rows
        // hold (found from those few rows, whatever the number of subscriptions),
        // and those without filters; then every filter of each checked.
        let sql = format!(
            "WITH hit AS ({HITS} UNION SELECT u.id FROM subscriptions u WHERE u.res_type = $1 AND u.filters = 0) \
             SELECT s.id, s.owner_sub, s.owner_role, s.owner_org, s.owner_patient, s.owner_channel, s.owner_scopes \
             FROM subscriptions s JOIN hit ON hit.subscription = s.id WHERE s.res_type = $1 \
             AND s.status IN ('active', 'error') AND s.topic IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM subscription_filters f WHERE f.subscription = s.id AND NOT EXISTS \
             (SELECT 1 FROM subscription_filters g WHERE g.subscription = s.id AND g.name = f.name AND {FILTER_HOLDS}))",
            list
        );
        let rows = sqlx::query_with(&sql, into_arguments(binds)).fetch_all(&mut **tx).await?;
        rows.iter().map(|r| Ok(Candidate { id: r.try_get("id")?, owner: owner_of(r)? })).collect()
    }
}
