//! History of one resource, of a type, or of the whole server, newest first, paged
//! against a snapshot time so that later writes never shift the pages.

use sqlx::Row;

use super::{arguments, Bind, Store};
use crate::access::{Access, Rule};
use crate::Result;

/// Which history, from when, which page.
#[derive(Debug, Clone, Default)]
pub struct HistoryRequest {
    pub res_type: Option<String>,
    pub id: Option<String>,
    /// `_since`: only versions at or after this time (µs).
    pub since: Option<i64>,
    /// The time the first page was taken (µs): versions after it are left out.
    pub snapshot: i64,
    pub count: i64,
    pub offset: i64,
}

/// One version in a history page.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub method: String,
    pub body: Option<String>,
}

pub struct HistoryPage {
    pub total: i64,
    pub entries: Vec<HistoryEntry>,
}

impl Store {
    /// A page of history, of what `access` may see (a resource's whole history
    /// follows the visibility of its current version).
    pub async fn history(&self, access: &Access, req: &HistoryRequest) -> Result<HistoryPage> {
        let Some((filter, mut binds)) = history_filter(access, req) else {
            return Ok(HistoryPage { total: 0, entries: Vec::new() });
        };
        let from = "FROM resource_versions v JOIN resources r ON r.pk = v.res_pk";
        let mut c = self.conn().await?;
        let total: i64 = sqlx::query_scalar_with(&format!("SELECT COUNT(*) {from} WHERE {filter}"), arguments(&binds))
            .fetch_one(&mut *c)
            .await?;
        let n = binds.len();
        binds.push(Bind::Int(req.count));
        binds.push(Bind::Int(req.offset));
        let sql = format!(
            "SELECT r.res_type, r.res_id, v.version, v.last_updated, CAST(v.deleted AS INTEGER) AS deleted, v.method, v.body {from} WHERE {filter} \
             ORDER BY v.last_updated DESC, v.res_pk DESC, v.version DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let r = sqlx::query_with(&sql, arguments(&binds)).fetch_all(&mut *c).await;
        let rows = c.done(r)?;
        if rows.is_empty() && total == 0 && req.res_type.as_deref() == Some("Slot") && req.since.is_none() {
            if let Some(id) = &req.id {
                return self.grid_history(access, id, req).await;
            }
        }
        let entries = rows.iter().map(history_entry).collect::<Result<Vec<_>>>()?;
        Ok(HistoryPage { total, entries })
    }

    /// The history of a generated slot still in the grid: its one version.
    async fn grid_history(&self, access: &Access, id: &str, req: &HistoryRequest) -> Result<HistoryPage> {
        let mut c = self.conn().await?;
        let found = super::slots::grid_find(&mut c, id, &access.read("Slot")).await?;
        let Some(slot) = c.done(Ok(found))?.filter(|s| s.created <= req.snapshot) else {
            return Ok(HistoryPage { total: 0, entries: Vec::new() });
        };
        let entry = HistoryEntry {
            res_type: "Slot".into(),
            id: slot.id.clone(),
            version: 1,
            last_updated: slot.created,
            deleted: false,
            method: "POST".into(),
            body: Some(slot.body.to_string()),
        };
        let entries = if req.offset == 0 && req.count > 0 { vec![entry] } else { Vec::new() };
        Ok(HistoryPage { total: 1, entries })
    }
}

/// The WHERE clause of the versions `req` asks for and `access` may see, with its
/// binds (the snapshot first); `None` when it may see none.
fn history_filter(access: &Access, req: &HistoryRequest) -> Option<(String, Vec<Bind>)> {
    let mut filter = String::from("v.last_updated <= $1");
    let mut binds = vec![Bind::Int(req.snapshot)];
    let rule = match &req.res_type {
        Some(t) => access.read(t),
        None => access.read_any().map_or(Rule::All, Rule::Where),
    };
    match rule {
        Rule::All => {}
        Rule::Nothing => return None,
        Rule::Where(c) => {
            filter.push_str(&format!(" AND {}", c.render("r", binds.len())));
            binds.extend(c.binds);
        }
    }
    let mut add = |cond: &str, b: Bind| {
        binds.push(b);
        filter.push_str(&format!(" AND {cond} ${}", binds.len()));
    };
    if let Some(t) = &req.res_type {
        add("r.res_type =", Bind::Text(t.clone()));
    }
    if let Some(id) = &req.id {
        add("r.res_id =", Bind::Text(id.clone()));
    }
    if let Some(s) = req.since {
        add("v.last_updated >=", Bind::Int(s));
    }
    Some((filter, binds))
}

/// A row of the page query as a history entry.
fn history_entry(row: &sqlx::any::AnyRow) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        res_type: row.try_get("res_type")?,
        id: row.try_get("res_id")?,
        version: row.try_get("version")?,
        last_updated: row.try_get("last_updated")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        method: row.try_get("method")?,
        body: super::body::column(row, "body")?,
    })
}
