//! The statements of a search: snapshot, page, count, includes, conditional match.

use crate::query::{Cond, Filter, SearchQuery, SortExpr};
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

    /// The sort keys of a resource `r` (without the final `r.pk`).
    fn sort_keys(&self, b: &mut Builder, d: Dialect) -> Vec<String> {
        let mut keys = Vec::new();
        for k in &self.sort {
            keys.push(match &k.expr {
                // Binary order on both engines (PostgreSQL's default collation may differ).
                SortExpr::Id => match d {
                    Dialect::Sqlite => "r.res_id".to_string(),
                    Dialect::Postgres => "r.res_id COLLATE \"C\"".to_string(),
                },
                SortExpr::LastUpdated => "r.last_updated".to_string(),
                SortExpr::Param { table, param } => {
                    let (asc_col, desc_col) = table.sort_columns();
                    let agg = if k.desc { format!("MAX(s.{desc_col})") } else { format!("MIN(s.{asc_col})") };
                    format!("(SELECT {agg} FROM {} s WHERE s.res_pk = r.pk AND {})", table.name(), b.rows("s", param))
                }
            });
        }
        keys
    }

    /// `ORDER BY` over the key expressions `keys` (in `self.sort` order), then `pk`.
    fn order_over(&self, keys: &[String], pk: &str) -> String {
        let mut out: Vec<String> = keys
            .iter()
            .zip(&self.sort)
            .map(|(e, k)| format!("{e} {} NULLS LAST", if k.desc { "DESC" } else { "ASC" }))
            .collect();
        out.push(format!("{pk} ASC"));
        format!(" ORDER BY {}", out.join(", "))
    }

    /// Whether the searched type has generated slots too (see [`crate::grid`]).
    fn with_grid(&self) -> bool {
        self.resource_type == "Slot"
    }

    /// The page query: columns `pk`, `body` (current version) of at most `count()`
    /// matches with `pk <= snapshot`, in order (`_sort` keys, missing values last,
    /// then `pk`), from `offset()`. For Slot, generated slots come with a negative
    /// `pk` and a NULL `body`, for the caller to render (see [`crate::grid`]).
    pub fn page_sql(&self, d: Dialect, snapshot: i64) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, Some(snapshot));
        let keys = self.sort_keys(&mut b, d);
        let paging = format!(" LIMIT {} OFFSET {}", self.count, self.offset);
        if !self.with_grid() {
            let text = format!("{SELECT}{w}{}{paging}", self.order_over(&keys, "r.pk"));
            return Sql { text, binds: b.binds };
        }
        let named =
            |exprs: &[String]| -> String { exprs.iter().enumerate().map(|(i, e)| format!(", {e} AS k{i}")).collect() };
        let generic = format!("SELECT r.pk AS pk, v.body AS body{} FROM resources r JOIN resource_versions v ON v.res_pk = r.pk AND v.version = r.version{w}", named(&keys));
        let grid_keys: Vec<String> = self
            .sort
            .iter()
            .map(|k| match (&k.expr, d) {
                // The same (binary) collation as the resources' id key.
                (SortExpr::Id, Dialect::Postgres) => format!("{} COLLATE \"C\"", b.grid_sort(k)),
                _ => b.grid_sort(k),
            })
            .collect();
        let grid = format!(
            "SELECT {} AS pk, {} AS body{} FROM slot_grid g",
            crate::grid::pk_sql(),
            null_body(d),
            named(&grid_keys)
        );
        let names: Vec<String> = (0..self.sort.len()).map(|i| format!("k{i}")).collect();
        // Each side ordered and cut to what the page can use, so that the first free
        // slots come from an index scan in start order, not from sorting them all.
        let order = self.order_over(&names, "pk");
        let cut = format!(" LIMIT {}", self.offset.saturating_add(self.count));
        let grids: Vec<String> = self
            .per_service()
            .iter()
            .enumerate()
            .map(|(i, q)| format!("SELECT * FROM ({grid}{}{order}{cut}) b{i}", b.grid_where(q)))
            .collect();
        let text = format!(
            "SELECT pk, body FROM (SELECT * FROM ({generic}{order}{cut}) a UNION ALL {}) u{order}{paging}",
            grids.join(" UNION ALL ")
        );
        Sql { text, binds: b.binds }
    }

    /// The query once per service code when `service-type` lists several codes (the
    /// slots of any of them), else itself: with one code, the index `(svc_code,
    /// start_us)` gives a branch's slots in start order; with an `IN` list PostgreSQL
    /// sorted every candidate of the year's agendas for the first few (94 of a
    /// `$find`'s 111 ms in the replay at 0.01).
    fn per_service(&self) -> Vec<std::borrow::Cow<'_, SearchQuery>> {
        let split = self.filters.iter().position(|f| {
            matches!(f, Filter::Values { param, ors, not: false, .. } if param.code == "service-type"
                && ors.len() > 1 && ors.iter().all(|c| matches!(c, Cond::Token { code: Some(_), .. })))
        });
        let Some(i) = split else { return vec![std::borrow::Cow::Borrowed(self)] };
        let Filter::Values { ors, .. } = &self.filters[i] else { return vec![std::borrow::Cow::Borrowed(self)] };
        ors.iter()
            .map(|one| {
                let mut q = self.clone();
                if let Filter::Values { ors, .. } = &mut q.filters[i] {
                    *ors = vec![one.clone()];
                }
                std::borrow::Cow::Owned(q)
            })
            .collect()
    }

    /// `SELECT COUNT(*)` of the matches with `pk <= snapshot`.
    pub fn count_sql(&self, _d: Dialect, snapshot: i64) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, Some(snapshot));
        let mut text = format!("SELECT COUNT(*) FROM resources r{w}");
        if self.with_grid() {
            let gw = b.grid_where(self);
            text = format!("SELECT ({text}) + (SELECT COUNT(*) FROM slot_grid g{gw})");
        }
        Sql { text, binds: b.binds }
    }

    /// For conditional create / update / delete, inside the write transaction: the
    /// matches (`pk`, `body`), at most 2 (none / one / several), ignoring paging
    /// (generated slots as in [`SearchQuery::page_sql`]).
    pub fn conditional_sql(&self, d: Dialect) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, None);
        if !self.with_grid() {
            return Sql { text: format!("{SELECT}{w} ORDER BY r.pk ASC LIMIT 2"), binds: b.binds };
        }
        let gw = b.grid_where(self);
        let text = format!(
            "SELECT pk, body FROM (SELECT r.pk AS pk, v.body AS body FROM resources r JOIN resource_versions v \
             ON v.res_pk = r.pk AND v.version = r.version{w} UNION ALL SELECT {} AS pk, {} AS body \
             FROM slot_grid g{gw}) u ORDER BY pk ASC LIMIT 2",
            crate::grid::pk_sql(),
            null_body(d)
        );
        Sql { text, binds: b.binds }
    }

    /// The logical ids (`res_id`, one text column) of the first `limit` matches in
    /// `pk` order, ignoring paging (for conditional operations).
    pub fn ids_sql(&self, _d: Dialect, limit: usize) -> Sql {
        let mut b = Builder::default();
        let w = self.where_clause(&mut b, None);
        if !self.with_grid() {
            let text = format!("SELECT r.res_id FROM resources r{w} ORDER BY r.pk ASC LIMIT {limit}");
            return Sql { text, binds: b.binds };
        }
        let gw = b.grid_where(self);
        let text = format!(
            "SELECT id FROM (SELECT r.res_id AS id, r.pk AS pk FROM resources r{w} UNION ALL \
             SELECT {} AS id, {} AS pk FROM slot_grid g{gw}) u ORDER BY pk ASC LIMIT {limit}",
            crate::grid::id_sql(),
            crate::grid::pk_sql()
        );
        Sql { text, binds: b.binds }
    }

    /// The ids of the Slots the page's resources refer to through its forward
    /// `_include`s (one text column), for the caller to add the generated ones (see
    /// [`crate::grid`]); `None` when no include can reach a Slot.
    pub fn include_slot_ids_sql(&self, _d: Dialect, page_pks: &[i64]) -> Option<Sql> {
        let slot_includes: Vec<_> = self
            .includes
            .iter()
            .filter(|i| !i.rev && matches!(i.target_type.as_deref(), None | Some("Slot")))
            .collect();
        if slot_includes.is_empty() || page_pks.is_empty() {
            return None;
        }
        let mut b = Builder::default();
        let pks: Vec<String> = page_pks.iter().map(|p| b.int(*p)).collect();
        let mut branches = Vec::new();
        for inc in slot_includes {
            let mut conds = vec!["1 = 1".to_string()];
            if inc.source_type != "*" {
                conds.push(format!("x.res_type = {}", b.text(&inc.source_type)));
            }
            if let Some(p) = &inc.param {
                conds.push(b.rows("x", p));
            }
            branches.push(format!("({})", conds.join(" AND ")));
        }
        let text = format!(
            "SELECT DISTINCT x.target_id FROM idx_reference x WHERE x.target_type = 'Slot' AND x.res_pk IN ({}) AND ({})",
            pks.join(", "),
            branches.join(" OR ")
        );
        Some(Sql { text, binds: b.binds })
    }

    /// The statements giving the `_include` and `_revinclude` resources of a page
    /// (`pk`, `body`, current and not deleted, none of `page_pks`): currently one
    /// statement, none without includes or page rows. `:iterate` is applied once.
    /// `grid_ids` are the ids of the page's generated slots (negative pks): what
    /// they refer to is their agenda's, and references to them are by id.
    pub fn include_sql(&self, _d: Dialect, page_pks: &[i64], grid_ids: &[String]) -> Vec<Sql> {
        if self.includes.is_empty() || page_pks.is_empty() {
            return Vec::new();
        }
        let mut b = Builder::default();
        let mut sources: Vec<i64> = page_pks.to_vec();
        for (agenda, _, _) in page_pks.iter().filter_map(|p| crate::grid::grid_key(*p)) {
            let a = crate::grid::agenda_pk(agenda);
            if !sources.contains(&a) {
                sources.push(a);
            }
        }
        let pks: Vec<String> = page_pks.iter().map(|p| b.int(*p)).collect();
        let pks = pks.join(", ");
        let srcs: Vec<String> = sources.iter().map(|p| b.int(*p)).collect();
        let srcs = srcs.join(", ");
        let ids: Vec<String> = grid_ids.iter().map(|i| b.text(i)).collect();
        let ids = ids.join(", ");
        let mut branches = Vec::new();
        for inc in &self.includes {
            let mut conds = Vec::new();
            if inc.source_type != "*" {
                conds.push(format!("x.res_type = {}", b.text(&inc.source_type)));
            }
            if let Some(p) = &inc.param {
                conds.push(b.rows("x", p));
            }
            if let Some(t) = &inc.target_type {
                conds.push(format!("x.target_type = {}", b.text(t)));
            }
            let more: String = conds.iter().map(|c| format!(" AND {c}")).collect();
            branches.push(if inc.rev {
                format!("r.pk IN (SELECT x.res_pk FROM idx_reference x JOIN resources s ON s.res_type = x.target_type AND s.res_id = x.target_id WHERE s.pk IN ({pks}){more})")
            } else {
                format!("r.pk IN (SELECT t.pk FROM idx_reference x JOIN resources t ON t.res_type = x.target_type AND t.res_id = x.target_id WHERE x.res_pk IN ({srcs}){more})")
            });
            if inc.rev && !grid_ids.is_empty() && matches!(inc.target_type.as_deref(), None | Some("Slot")) {
                branches.push(format!(
                    "r.pk IN (SELECT x.res_pk FROM idx_reference x WHERE x.target_type = 'Slot' AND x.target_id IN ({ids}){more})"
                ));
            }
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

/// A generated slot's `body` column beside the stored ones (the store keeps bodies as
/// bytes: compressed JSON): NULL, for the caller to render.
fn null_body(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "CAST(NULL AS BLOB)",
        Dialect::Postgres => "CAST(NULL AS BYTEA)",
    }
}
