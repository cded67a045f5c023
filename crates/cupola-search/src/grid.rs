//! Generated slots, kept compactly. A year of a region's agendas is ~20 million
//! slots: as ordinary resources (a `resources` row, a version, ~10 index rows each)
//! they could neither be generated nor searched fast enough. So a slot an agenda
//! template made, and that nothing has changed since, is one `slot_grid` row:
//!
//! - its own values are columns (start, end, service, capacity, reserve);
//! - what it shares with every slot of its agenda (schedule, district, provider,
//!   facility) is indexed once, as ordinary index rows of type `Slot` whose `res_pk`
//!   is the agenda's negative key [`agenda_pk`]; so every filter on those
//!   parameters, chains through them and `_include` work unchanged;
//! - in results it stands as the negative pk [`grid_pk`], which never collides with
//!   a `resources.pk`, and the caller renders its body.
//!
//! A slot that is written to (booked, closed, updated, deleted) first moves into
//! `resources` with the same id and version 1 (the store does it), so it has a
//! history from then on. Searches on Slot are the union of both kinds of rows.

use crate::query::{Cond, Filter, Prefix, SearchQuery, SortExpr, SortKey};
use crate::sql::{Builder, ExtraCondition};
use crate::Dialect;

/// `grid_pk = -(agenda · GRID_KEY + stamp · 10 + n)`: a stamp has 12 digits and `n`
/// one, so agendas up to ~900,000 fit in an `i64`.
pub const GRID_KEY: i64 = 10_000_000_000_000;

/// The synthetic pk of a slot in a search result (`n` < 10).
pub fn grid_pk(agenda: i64, stamp: i64, n: i64) -> i64 {
    -(agenda * GRID_KEY + stamp * 10 + n)
}

/// `(agenda, stamp, n)` of a synthetic pk; `None` for a `resources.pk`.
pub fn grid_key(pk: i64) -> Option<(i64, i64, i64)> {
    (pk < 0).then(|| {
        let k = -pk;
        (k / GRID_KEY, (k % GRID_KEY) / 10, k % 10)
    })
}

/// The `res_pk` of an agenda's shared index rows.
pub fn agenda_pk(agenda: i64) -> i64 {
    -agenda
}

/// A generated slot id: `{prefix}-{YYYYMMDDHHMM}-{n}` (local wall-clock start).
pub fn slot_id(prefix: &str, stamp: i64, n: i64) -> String {
    format!("{prefix}-{stamp:012}-{n}")
}

/// `(prefix, stamp, n)` of an id shaped like a generated slot's.
pub fn split_slot_id(id: &str) -> Option<(&str, i64, i64)> {
    let (rest, n) = id.rsplit_once('-')?;
    let (prefix, stamp) = rest.rsplit_once('-')?;
    if prefix.is_empty() || stamp.len() != 12 || n.is_empty() || n.len() > 1 {
        return None;
    }
    if !stamp.bytes().chain(n.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, stamp.parse().ok()?, n.parse().ok()?))
}

const PK_SQL: &str = "(-(g.agenda * 10000000000000 + g.stamp * 10 + g.n))";
const AGENDA_PK: &str = "(-g.agenda)";
/// The id of grid row `g`, in SQL.
const ID_SQL: &str = "((SELECT ga.prefix FROM slot_agendas ga WHERE ga.id = g.agenda) || '-' || CAST(g.stamp AS TEXT) || '-' || CAST(g.n AS TEXT))";
/// A generated slot's status, and its index row as a table (system, code, text; no
/// value is long: see [`crate::long`]).
const STATUS_ROW: &str = "(SELECT CAST(NULL AS TEXT) AS system, 'free' AS code, CAST(NULL AS TEXT) AS text_norm, \
     CAST(NULL AS TEXT) AS system_full, CAST(NULL AS TEXT) AS code_full)";
/// The service Codings as token index rows. Their systems and codes are never cut
/// (`cupola`'s agenda templates refuse longer ones), so have no whole values apart.
const SERVICE_ROWS: &str = "(SELECT id, system, code, text_norm, CAST(NULL AS TEXT) AS system_full, \
     CAST(NULL AS TEXT) AS code_full FROM slot_services)";
/// The precision of a slot's `start` (an instant to the second), as the index has it.
const SECOND: i64 = 999_999;

/// DDL of the grid tables (one statement per item, no `;`).
pub fn grid_schema(d: Dialect) -> Vec<String> {
    let (pk, collate) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", ""),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", " COLLATE \"C\""),
    };
    vec![
        // One row per agenda (Schedule with a template) that has grid slots.
        format!(
            "CREATE TABLE IF NOT EXISTS slot_agendas (id {pk}, sched_pk BIGINT NOT NULL UNIQUE, \
             sched_id TEXT NOT NULL, prefix TEXT{collate} NOT NULL UNIQUE, time_zone TEXT NOT NULL, \
             shared TEXT NOT NULL)"
        ),
        // The distinct service Codings slots serve (token columns as in idx_token).
        format!(
            "CREATE TABLE IF NOT EXISTS slot_services (id {pk}, coding TEXT NOT NULL UNIQUE, \
             system TEXT{collate}, code TEXT{collate}, text_norm TEXT{collate})"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS slot_grid (agenda BIGINT NOT NULL, stamp BIGINT NOT NULL, \
             n SMALLINT NOT NULL, start_us BIGINT NOT NULL, end_us BIGINT NOT NULL, service BIGINT NOT NULL, \
             svc_code TEXT{collate} NOT NULL, capacity INTEGER NOT NULL, reserve TEXT, release_us BIGINT, \
             created BIGINT NOT NULL, PRIMARY KEY (agenda, stamp, n))"
        ),
        // The first free slot of a service: an ordered range scan.
        "CREATE INDEX IF NOT EXISTS slot_grid_service ON slot_grid (svc_code, start_us)".into(),
    ]
}

impl Builder {
    /// `WHERE …` of the grid rows matching `q` (filters and restrictions).
    pub(crate) fn grid_where(&mut self, q: &SearchQuery) -> String {
        // With a service, the (service, start) index finds slots in start order and an
        // agenda test per row must be a hash lookup; without one, the agenda tests
        // lead (e.g. one schedule's slots, by the table's key).
        let by_service = q
            .filters
            .iter()
            .any(|f| matches!(f, Filter::Values { param, not: false, .. } if param.code == "service-type"));
        let mut conds: Vec<String> =
            q.filters.iter().map(|f| self.grid_filter(f, &q.restrictions, by_service)).collect();
        conds.push(self.grid_restrictions(&q.restrictions));
        if conds.is_empty() {
            return String::new();
        }
        format!(" WHERE {}", conds.join(" AND "))
    }

    /// The caller's restrictions on grid row `g`: on its agenda's index rows, since
    /// who may see a slot depends only on what it shares with its agenda (its
    /// schedule). `1 = 1` when there are none.
    fn grid_restrictions(&mut self, extra: &[ExtraCondition]) -> String {
        let mut conds = vec!["1 = 1".to_string()];
        for e in extra {
            let offset = self.binds.len();
            self.binds.extend(e.binds.iter().cloned());
            conds.push(e.render_on(AGENDA_PK, "'Slot'", offset));
        }
        conds.join(" AND ")
    }

    /// Ids of the grid slots matching `inner` (a chain's condition on its Slot target).
    pub(crate) fn grid_chain_ids(&mut self, inner: &Filter, extra: &[ExtraCondition]) -> String {
        let cond = self.grid_filter(inner, extra, false);
        let rest = self.grid_restrictions(extra);
        format!("SELECT {ID_SQL} FROM slot_grid g WHERE {cond} AND {rest}")
    }

    fn grid_filter(&mut self, f: &Filter, extra: &[ExtraCondition], by_service: bool) -> String {
        match f {
            Filter::Id(ids) => {
                let alts: Vec<String> = ids
                    .iter()
                    .filter_map(|id| split_slot_id(id))
                    .map(|(prefix, stamp, n)| {
                        let (p, s, n) = (self.text(prefix), self.int(stamp), self.int(n));
                        format!(
                            "(g.agenda IN (SELECT ga.id FROM slot_agendas ga WHERE ga.prefix = {p}) AND g.stamp = {s} AND g.n = {n})"
                        )
                    })
                    .collect();
                if alts.is_empty() {
                    "1 = 0".into()
                } else {
                    format!("({})", alts.join(" OR "))
                }
            }
            Filter::LastUpdated(conds) => {
                let parts: Vec<String> = conds.iter().map(|c| self.cond(c, "g.created", "g.created", "g")).collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Missing { param, missing, .. } if own_param(&param.code) => {
                let column = match param.code.as_str() {
                    "reserved-for" => Some("g.reserve"),
                    "release" => Some("g.release_us"),
                    _ => None,
                };
                match (column, missing) {
                    (Some(c), true) => format!("{c} IS NULL"),
                    (Some(c), false) => format!("{c} IS NOT NULL"),
                    (None, true) => "1 = 0".into(),
                    (None, false) => "1 = 1".into(),
                }
            }
            Filter::Values { param, ors, not, .. } if own_param(&param.code) => {
                let inner = self.own_values(&param.code, ors);
                if *not {
                    format!("NOT {inner}")
                } else {
                    inner
                }
            }
            Filter::AnyOf(alternatives) => {
                let parts: Vec<String> = alternatives.iter().map(|f| self.grid_filter(f, extra, by_service)).collect();
                format!("({})", parts.join(" OR "))
            }
            // Everything else is about the agenda's shared index rows.
            // (`IS TRUE` keeps PostgreSQL from turning the test into a join: it stays a
            // hashed subplan.)
            _ if by_service => format!("({}) IS TRUE", self.filter_on(f, "Slot", AGENDA_PK, "g", "i", extra)),
            _ => sargable(&self.filter_on(f, "Slot", AGENDA_PK, "g", "i", extra)),
        }
    }

    /// A slot's own parameters: values held in its row.
    fn own_values(&mut self, param: &str, ors: &[Cond]) -> String {
        match param {
            "start" => {
                let parts: Vec<String> = ors.iter().map(|c| self.start_cond(c)).collect();
                format!("({})", parts.join(" OR "))
            }
            "status" => {
                let parts: Vec<String> = ors.iter().map(|c| self.cond(c, "", "", "st")).collect();
                format!("EXISTS (SELECT 1 FROM {STATUS_ROW} st WHERE {})", parts.join(" OR "))
            }
            // The class a slot is kept for (a code without a system). `IS NOT NULL` first:
            // it lets the partial index of reserved slots serve the search (few slots
            // are reserved: a start-ordered scan of all of them would find none), and
            // under `:not` it keeps the slots kept for no class.
            "reserved-for" => {
                let parts: Vec<String> = ors
                    .iter()
                    .map(|c| match c {
                        Cond::Token { code: Some(code), .. } => format!("g.reserve = {}", self.text(code)),
                        Cond::Token { code: None, .. } => "g.reserve IS NOT NULL".into(),
                        _ => "1 = 0".into(),
                    })
                    .collect();
                format!("(g.reserve IS NOT NULL AND ({}))", parts.join(" OR "))
            }
            // Only reserved slots have a release time.
            "release" => {
                let parts: Vec<String> =
                    ors.iter().map(|c| self.cond(c, "g.release_us", "g.release_us", "g")).collect();
                format!("(g.reserve IS NOT NULL AND g.release_us IS NOT NULL AND ({}))", parts.join(" OR "))
            }
            _ => {
                // service-type: the code alone lets the index give slots in start order.
                let codes: Vec<String> = ors
                    .iter()
                    .map(|c| match c {
                        Cond::Token { code: Some(code), .. } => Some(code.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default();
                let parts: Vec<String> = ors.iter().map(|c| self.cond(c, "", "", "sv")).collect();
                let full = format!("g.service IN (SELECT sv.id FROM {SERVICE_ROWS} sv WHERE {})", parts.join(" OR "));
                if codes.is_empty() {
                    return full;
                }
                let ph: Vec<String> = codes.iter().map(|c| self.text(c)).collect();
                // `IS TRUE` keeps the service test a filter of the index scan: as a
                // join it lost the start order, and the planner sorted a year of one
                // code's slots for the first few (replay at 0.01: 146 ms → 0.2 ms).
                format!("(g.svc_code IN ({}) AND ({full}) IS TRUE)", ph.join(", "))
            }
        }
    }

    /// A date condition on a slot's start, the instant's range `[start, start + SECOND]`,
    /// written as one range of `g.start_us` so that the index serves it in order.
    fn start_cond(&mut self, c: &Cond) -> String {
        let Cond::Date { prefix, lo, hi } = c else {
            return "1 = 0".into();
        };
        let (l, top) = (*lo, hi.saturating_sub(SECOND));
        let (a, b) = match prefix {
            Prefix::Eq => (Some(l), Some(top)),
            Prefix::Ne => {
                let (x, y) = (self.int(l), self.int(top));
                return format!("(g.start_us < {x} OR g.start_us > {y})");
            }
            Prefix::Gt => (Some(top.saturating_add(1)), None),
            Prefix::Ge => (Some(l.min(top.saturating_add(1))), None),
            Prefix::Le => (None, Some(l.saturating_sub(1).max(top))),
            Prefix::Sa => (Some(hi.saturating_add(1)), None),
            Prefix::Eb => (None, Some(l.saturating_sub(SECOND).saturating_sub(1))),
            Prefix::Lt => (None, Some(l.saturating_sub(1))),
            Prefix::Ap => (Some(l.saturating_sub(SECOND)), Some(*hi)),
        };
        let mut parts = Vec::new();
        if let Some(a) = a {
            parts.push(format!("g.start_us >= {}", self.int(a)));
        }
        if let Some(b) = b {
            parts.push(format!("g.start_us <= {}", self.int(b)));
        }
        format!("({})", parts.join(" AND "))
    }

    /// A sort key of grid row `g` (same type as the key of a resource).
    pub(crate) fn grid_sort(&mut self, k: &SortKey) -> String {
        match &k.expr {
            SortExpr::Id => ID_SQL.into(),
            SortExpr::LastUpdated => "g.created".into(),
            SortExpr::Param { param, .. } if param.code == "start" => {
                if k.desc {
                    format!("(g.start_us + {SECOND})")
                } else {
                    "g.start_us".into()
                }
            }
            SortExpr::Param { param, .. } if param.code == "status" => "'free'".into(),
            SortExpr::Param { param, .. } if param.code == "service-type" => "g.svc_code".into(),
            SortExpr::Param { table, param } => {
                let (asc_col, desc_col) = table.sort_columns();
                let agg = if k.desc { format!("MAX(s.{desc_col})") } else { format!("MIN(s.{asc_col})") };
                format!(
                    "(SELECT {agg} FROM {} s WHERE s.res_pk = {AGENDA_PK} AND {})",
                    table.name(),
                    self.rows("s", param)
                )
            }
        }
    }
}

/// `(-g.agenda) [NOT ]IN (SELECT x.res_pk …` as `g.agenda [NOT ]IN (SELECT -x.res_pk …`:
/// the same test, but on the column itself, so that the planner can use the key
/// (agenda, …) of `slot_grid` (e.g. for the slots of one schedule).
fn sargable(sql: &str) -> String {
    for not in ["", "NOT "] {
        let head = format!("{AGENDA_PK} {not}IN (SELECT ");
        if let Some(rest) = sql.strip_prefix(&head) {
            if let Some((alias, tail)) = rest.split_once(".res_pk") {
                if alias.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return format!("g.agenda {not}IN (SELECT -{alias}.res_pk{tail}");
                }
            }
        }
    }
    sql.to_string()
}

/// Parameters whose values are a grid row's own (not its agenda's).
fn own_param(param: &str) -> bool {
    matches!(param, "start" | "status" | "service-type" | "reserved-for" | "release")
}

/// The synthetic pk and the id of grid row `g`, and the pk whose index rows are its
/// agenda's (what visibility conditions are rendered on), as SQL.
pub fn pk_sql() -> &'static str {
    PK_SQL
}

pub fn agenda_pk_sql() -> &'static str {
    AGENDA_PK
}

pub(crate) fn id_sql() -> &'static str {
    ID_SQL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agenda_conditions_are_on_the_column() {
        let a = "(-g.agenda) IN (SELECT i.res_pk FROM idx_string i WHERE i.x = $1)";
        assert_eq!(sargable(a), "g.agenda IN (SELECT -i.res_pk FROM idx_string i WHERE i.x = $1)");
        let n = "(-g.agenda) NOT IN (SELECT i0.res_pk FROM t)";
        assert_eq!(sargable(n), "g.agenda NOT IN (SELECT -i0.res_pk FROM t)");
        let chain = "((-g.agenda) IN (SELECT x.res_pk FROM a) OR (-g.agenda) IN (SELECT y.res_pk FROM b))";
        assert_eq!(sargable(chain), chain);
    }

    #[test]
    fn keys_round_trip() {
        let pk = grid_pk(3_200, 202_611_300_830, 1);
        assert!(pk < 0);
        assert_eq!(grid_key(pk), Some((3_200, 202_611_300_830, 1)));
        assert_eq!(grid_key(17), None);
    }

    #[test]
    fn slot_ids() {
        assert_eq!(slot_id("ag-x", 202_611_300_830, 0), "ag-x-202611300830-0");
        assert_eq!(
            split_slot_id("ag-galliera-cardiology-202611300830-0"),
            Some(("ag-galliera-cardiology", 202611300830, 0))
        );
        assert_eq!(split_slot_id("ag-x-20261130083-0"), None);
        assert_eq!(split_slot_id("ag-x-202611300830-"), None);
        assert_eq!(split_slot_id("ag-x-202611300830-12"), None);
        assert_eq!(split_slot_id("-202611300830-0"), None);
        assert_eq!(split_slot_id("plain-id"), None);
    }
}
