//! The statements of a search: snapshot, page, count, includes, conditional match.

use crate::query::{SearchQuery, SortExpr};
use crate::sql::Builder;
use crate::{Bind, Dialect, Sql};

const SELECT: &str =
    "SELECT r.pk, v.body FROM resources r JOIN resource_versions v ON v.res_pk = r.pk AND v.version = r.version";

/// `SELECT COALESCE(MAX(pk), 0) FROM resources`: the snapshot bound of a first page
/// (one `i64` column).
pub fn snapshot_sql() -> Sql {
    Sql { text: "SELECT COALESCE(MAX(pk), 0) FROM resources".into(), binds: Vec::new() }
}

impl SearchQuery {
    /// The snapshot bound of a first page: see [`snapshot_sql`].
    pub fn snapshot_sql(&self, _d: Dialect) -> Sql {
        snapshot_sql()
    }

    /// `WHERE …` of the searched resources: type, not deleted, snapshot, filters,
    /// restrictions.
    fn where_clause(&self, b: &mut Builder, snapshot: Option<i64>) -> String {
        let mut conds = vec![
            format!("r.res_type = {}", b.text(&self.resource_type)),
            format!("r.deleted = {}", b.bind(Bind::Bool(false))),
        ];
        if let Some(s) = snapshot {
            conds.push(format!("r.pk <= {}", b.int(s)));
        }
        for f in &self.filters {
            conds.push(b.filter(f, &self.resource_type, "r", "i", &self.restrictions));
        }
        format!(" WHERE {}{}", conds.join(" AND "), b.extras(&self.restrictions, "r.pk"))
    }

    fn order_by(&self, b: &mut Builder, d: Dialect) -> String {
        let mut keys = Vec::new();
        for k in &self.sort {
            let dir = if k.desc { "DESC" } else { "ASC" };
            let expr = match &k.expr {
                // Binary order on both engines (PostgreSQL's default collation may differ).
                SortExpr::Id => match d {
                    Dialect::Sqlite => "r.res_id".to_string(),
                    Dialect::Postgres => "r.res_id COLLATE \"C\"".to_string(),
                },
                SortExpr::LastUpdated => "r.last_updated".to_string(),
                SortExpr::Param { table, param } => {
                    let (asc_col, desc_col) = table.sort_columns();
                    let agg = if k.desc { format!("MAX(s.{desc_col})") } else { format!("MIN(s.{asc_col})") };
                    format!(
                        "(SELECT {agg} FROM {} s WHERE s.res_pk = r.pk AND s.param = {})",
                        table.name(),
                        b.text(param)
                    )
                }
            };
            keys.push(format!("{expr} {dir} NULLS LAST"));
        }
        keys.push("r.pk ASC".into());
        format!(" ORDER BY {}", keys.join(", "))
    }

    /// The page query: columns `pk`, `body` (current version) of at most `count()`
    /// matches with `pk <= snapshot`, in order (`_sort` keys, missing values last,
    /// then `pk`), from `offset()`.
    pub fn page_sql(&self, d: Dialect, snapshot: i64) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, Some(snapshot));
        let order = self.order_by(&mut b, d);
        let text = format!("{SELECT}{w}{order} LIMIT {} OFFSET {}", self.count, self.offset);
        Sql { text, binds: b.binds }
    }

    /// `SELECT COUNT(*)` of the matches with `pk <= snapshot`.
    pub fn count_sql(&self, _d: Dialect, snapshot: i64) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, Some(snapshot));
        Sql { text: format!("SELECT COUNT(*) FROM resources r{w}"), binds: b.binds }
    }

    /// For conditional create / update / delete, inside the write transaction: the
    /// matches (`pk`, `body`), at most 2 (none / one / several), ignoring paging.
    pub fn conditional_sql(&self, _d: Dialect) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, None);
        Sql { text: format!("{SELECT}{w} ORDER BY r.pk ASC LIMIT 2"), binds: b.binds }
    }

    /// The logical ids (`res_id`, one text column) of the first `limit` matches in
    /// `pk` order, ignoring paging (for conditional operations).
    pub fn ids_sql(&self, _d: Dialect, limit: usize) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, None);
        Sql { text: format!("SELECT r.res_id FROM resources r{w} ORDER BY r.pk ASC LIMIT {limit}"), binds: b.binds }
    }

    /// The statements giving the `_include` and `_revinclude` resources of a page
    /// (`pk`, `body`, current and not deleted, none of `page_pks`): currently one
    /// statement, none without includes or page rows. `:iterate` is applied once.
    pub fn include_sql(&self, _d: Dialect, page_pks: &[i64]) -> Vec<Sql> {
        if self.includes.is_empty() || page_pks.is_empty() {
            return Vec::new();
        }
        let mut b = Builder::default();
        let pks: Vec<String> = page_pks.iter().map(|p| b.int(*p)).collect();
        let pks = pks.join(", ");
        let mut branches = Vec::new();
        for inc in &self.includes {
            let mut conds = Vec::new();
            if inc.source_type != "*" {
                conds.push(format!("x.res_type = {}", b.text(&inc.source_type)));
            }
            if let Some(p) = &inc.param {
                conds.push(format!("x.param = {}", b.text(p)));
            }
            if let Some(t) = &inc.target_type {
                conds.push(format!("x.target_type = {}", b.text(t)));
            }
            let more: String = conds.iter().map(|c| format!(" AND {c}")).collect();
            branches.push(if inc.rev {
                format!("r.pk IN (SELECT x.res_pk FROM idx_reference x JOIN resources s ON s.res_type = x.target_type AND s.res_id = x.target_id WHERE s.pk IN ({pks}){more})")
            } else {
                format!("r.pk IN (SELECT t.pk FROM idx_reference x JOIN resources t ON t.res_type = x.target_type AND t.res_id = x.target_id WHERE x.res_pk IN ({pks}){more})")
            });
        }
        let deleted = b.bind(Bind::Bool(false));
        let extra = b.extras(&self.restrictions, "r.pk");
        let text = format!(
            "{SELECT} WHERE r.deleted = {deleted} AND r.pk NOT IN ({pks}) AND ({}){extra} ORDER BY r.pk ASC",
            branches.join(" OR ")
        );
        vec![Sql { text, binds: b.binds }]
    }
}
