//! The index tables: DDL, and the statements that write a resource's index rows.

use std::collections::{HashMap, HashSet};

use crate::extract::{IndexRow, IndexValue};
use crate::registry::ParamKind;
use crate::{Bind, Dialect, Sql};

/// Binds per generated statement at most. SQLite allows 32766, but sqlx looks each
/// bind up by position in a list (quadratic in the count): ~2000 keeps a multi-row
/// insert fast on both engines.
const MAX_BINDS: usize = 2_000;

/// One index table per value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Table {
    String,
    Token,
    Date,
    Number,
    Quantity,
    Reference,
    Uri,
}

#[derive(Clone, Copy)]
pub(crate) enum Col {
    Text,
    Int,
}

impl Table {
    pub const ALL: [Table; 7] =
        [Table::String, Table::Token, Table::Date, Table::Number, Table::Quantity, Table::Reference, Table::Uri];

    pub fn name(self) -> &'static str {
        match self {
            Table::String => "idx_string",
            Table::Token => "idx_token",
            Table::Date => "idx_date",
            Table::Number => "idx_number",
            Table::Quantity => "idx_quantity",
            Table::Reference => "idx_reference",
            Table::Uri => "idx_uri",
        }
    }

    /// The table holding values of a parameter type.
    pub fn for_kind(kind: ParamKind) -> Option<Table> {
        Some(match kind {
            ParamKind::String => Table::String,
            ParamKind::Token => Table::Token,
            ParamKind::Date => Table::Date,
            ParamKind::Number => Table::Number,
            ParamKind::Quantity => Table::Quantity,
            ParamKind::Reference => Table::Reference,
            ParamKind::Uri => Table::Uri,
            ParamKind::Composite | ParamKind::Special => return None,
        })
    }

    pub(crate) fn value_columns(self) -> &'static [(&'static str, Col)] {
        use Col::*;
        match self {
            Table::String => &[("value_norm", Text), ("value_exact", Text)],
            Table::Token => &[("system", Text), ("code", Text), ("text_norm", Text)],
            Table::Date | Table::Number => &[("lo", Int), ("hi", Int)],
            Table::Quantity => &[("lo", Int), ("hi", Int), ("system", Text), ("code", Text), ("unit", Text)],
            Table::Reference => &[
                ("target_type", Text),
                ("target_id", Text),
                ("raw", Text),
                ("ident_system", Text),
                ("ident_value", Text),
            ],
            Table::Uri => &[("uri", Text)],
        }
    }

    /// The indexed text columns a client's value fills, each with the column that
    /// keeps the whole value when the indexed one holds only its head (see
    /// [`crate::long`]). A reference's `target_type` is compared with type names only,
    /// all shorter than a cut value, so its whole value is never read.
    pub(crate) fn long_columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Table::String => &[("value_norm", "value_norm_full"), ("value_exact", "value_exact_full")],
            Table::Token => &[("system", "system_full"), ("code", "code_full")],
            Table::Reference => {
                &[("target_type", "target_type_full"), ("raw", "raw_full"), ("ident_value", "ident_value_full")]
            }
            Table::Uri => &[("uri", "uri_full")],
            Table::Date | Table::Number | Table::Quantity => &[],
        }
    }

    /// Every column a row writes besides the resource, parameter and group: the value
    /// columns, then the whole values of the long ones.
    pub(crate) fn columns(self) -> Vec<(&'static str, Col)> {
        let full = self.long_columns().iter().map(|(_, full)| (*full, Col::Text));
        self.value_columns().iter().copied().chain(full).collect()
    }

    /// `name type` of each of [`Table::columns`], with the types given for text and
    /// integers.
    pub(crate) fn column_decls(self, text: &str, int: &str) -> Vec<String> {
        self.columns()
            .iter()
            .map(|(name, col)| match col {
                Col::Text => format!("{name} {text}"),
                Col::Int => format!("{name} {int}"),
            })
            .collect()
    }

    /// Column sorted on ascending / descending (`MIN(asc)` / `MAX(desc)` per resource).
    /// Text columns hold a long value's first characters only (see [`crate::long`]):
    /// values alike in those sort in the order of their resources.
    pub fn sort_columns(self) -> (&'static str, &'static str) {
        match self {
            Table::String => ("value_norm", "value_norm"),
            Table::Token => ("code", "code"),
            Table::Date | Table::Number | Table::Quantity => ("lo", "hi"),
            Table::Reference => ("raw", "raw"),
            Table::Uri => ("uri", "uri"),
        }
    }

    fn indexes(self) -> &'static [&'static str] {
        match self {
            Table::String => &["res_type, param, value_norm", "res_type, param, value_exact"],
            // Both lead with a full `system|code` match, so the planner cannot pick one
            // that scans a whole system for one code when statistics are missing.
            Table::Token => &["res_type, param, code, system", "res_type, param, system, code"],
            Table::Date => &["res_type, param, lo", "res_type, param, hi"],
            Table::Number | Table::Quantity => &["res_type, param, lo"],
            Table::Reference => &[
                "res_type, param, target_id",
                "target_type, target_id, param",
                // Partial ([`RAW_INDEXED`]) since the store's migration 17.
                "res_type, param, raw",
                // Partial (`WHERE ident_value IS NOT NULL`) since the store's migration 15.
                "res_type, param, ident_value",
            ],
            Table::Uri => &["res_type, param, uri"],
        }
    }

    pub(crate) fn of(v: &IndexValue) -> Table {
        match v {
            IndexValue::String { .. } => Table::String,
            IndexValue::Token { .. } => Table::Token,
            IndexValue::Date { .. } => Table::Date,
            IndexValue::Number { .. } => Table::Number,
            IndexValue::Quantity { .. } => Table::Quantity,
            IndexValue::Reference { .. } => Table::Reference,
            IndexValue::Uri { .. } => Table::Uri,
        }
    }
}

/// The predicate of the partial index on `idx_reference.raw` (since the store's
/// migration 17): the references with a colon, absolute urls and `urn:`s, which are
/// the only ones searched by their text (`Cond::RefUrl`).
pub const RAW_INDEXED: &str = "raw LIKE '%:%'";

/// The collation clause of the index tables' text columns: the binary `"C"` on
/// PostgreSQL (SQLite's default is binary), so that prefix ranges and ordering agree
/// on both engines.
pub(crate) fn text_collation(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " COLLATE \"C\"",
    }
}

/// DDL of the index tables as the store's migration 2 made them (one statement per
/// item, no `;`), for `d`; [`crate::long_values_schema`] brings them up to date.
pub fn index_schema(d: Dialect) -> Vec<String> {
    let collate = text_collation(d);
    let mut out = Vec::new();
    for t in Table::ALL {
        // The columns as the store's migration 2 made them; `long_values_schema` adds
        // the rest.
        let cols: Vec<String> =
            t.column_decls(&format!("TEXT{collate}"), "BIGINT").into_iter().take(t.value_columns().len()).collect();
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (res_pk BIGINT NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp BIGINT NOT NULL, {})",
            t.name(),
            cols.join(", ")
        ));
        out.push(format!("CREATE INDEX IF NOT EXISTS {0}_pk ON {0} (res_pk, param)", t.name()));
        for (i, cols) in t.indexes().iter().enumerate() {
            out.push(format!("CREATE INDEX IF NOT EXISTS {0}_{1} ON {0} ({cols})", t.name(), i + 1));
        }
    }
    out
}

fn opt(s: &Option<String>) -> Bind {
    Bind::text_or_null(s.clone())
}

/// The binds of a row's [`Table::columns`].
pub(crate) fn row_binds(v: &IndexValue) -> Vec<Bind> {
    crate::long::stored_binds(Table::of(v), value_binds(v))
}

fn value_binds(v: &IndexValue) -> Vec<Bind> {
    match v {
        IndexValue::String { norm, exact } => {
            vec![Bind::Text(norm.clone()), Bind::Text(exact.clone())]
        }
        IndexValue::Token { system, code, text } => vec![opt(system), opt(code), opt(text)],
        IndexValue::Date { lo, hi } | IndexValue::Number { lo, hi } => {
            vec![Bind::Int(*lo), Bind::Int(*hi)]
        }
        IndexValue::Quantity { lo, hi, system, code, unit } => {
            vec![Bind::Int(*lo), Bind::Int(*hi), opt(system), opt(code), opt(unit)]
        }
        IndexValue::Reference { target_type, target_id, raw, ident_system, ident_value } => {
            vec![opt(target_type), opt(target_id), opt(raw), opt(ident_system), opt(ident_value)]
        }
        IndexValue::Uri { uri } => vec![Bind::Text(uri.clone())],
    }
}

/// One multi-row `INSERT` per table that has rows (split to stay under the bind
/// limit). `$1` / `$2` (resource pk and type) are shared by every row.
pub(crate) fn inserts(res_pk: i64, res_type: &str, rows: &[IndexRow]) -> Vec<Sql> {
    let rows: Vec<(i64, &IndexRow)> = rows.iter().map(|r| (res_pk, r)).collect();
    Table::ALL.iter().flat_map(|t| table_inserts(*t, res_type, &rows, true)).collect()
}

/// The index rows of many resources of one type, as few multi-row `INSERT`s as the
/// bind limit allows. `$1` (the type) is shared; each row binds its resource's pk.
pub(crate) fn inserts_many(res_type: &str, items: &[(i64, Vec<IndexRow>)]) -> Vec<Sql> {
    let rows: Vec<(i64, &IndexRow)> = items.iter().flat_map(|(pk, rows)| rows.iter().map(|r| (*pk, r))).collect();
    Table::ALL.iter().flat_map(|t| table_inserts(*t, res_type, &rows, false)).collect()
}

/// The `INSERT`s of table `t` for the rows that belong in it. With `shared_pk` every
/// row is of one resource, whose pk is bound once as `$1` (and the type as `$2`).
fn table_inserts(t: Table, res_type: &str, rows: &[(i64, &IndexRow)], shared_pk: bool) -> Vec<Sql> {
    let mine: Vec<&(i64, &IndexRow)> = rows.iter().filter(|(_, r)| Table::of(&r.value) == t).collect();
    let per_row = 3 + t.columns().len();
    let cols: Vec<&str> = t.columns().iter().map(|c| c.0).collect();
    let mut out = Vec::new();
    for chunk in mine.chunks((MAX_BINDS / per_row).max(1)) {
        let mut binds = Vec::with_capacity(2 + chunk.len() * per_row);
        if shared_pk {
            binds.push(Bind::Int(chunk[0].0));
        }
        binds.push(Bind::Text(res_type.to_string()));
        let type_ph = format!("${}", binds.len());
        let mut tuples = Vec::with_capacity(chunk.len());
        for (pk, row) in chunk {
            let pk_ph = if shared_pk {
                "$1".to_string()
            } else {
                binds.push(Bind::Int(*pk));
                format!("${}", binds.len())
            };
            let mut ph = vec![pk_ph, type_ph.clone()];
            let mut vals = vec![Bind::Text(row.param.clone()), Bind::Int(row.group)];
            vals.extend(row_binds(&row.value));
            for b in vals {
                binds.push(b);
                ph.push(format!("${}", binds.len()));
            }
            tuples.push(format!("({})", ph.join(", ")));
        }
        let text = format!(
            "INSERT INTO {} (res_pk, res_type, param, grp, {}) VALUES {}",
            t.name(),
            cols.join(", "),
            tuples.join(", ")
        );
        out.push(Sql { text, binds });
    }
    out
}

/// One `DELETE` per index table for the resource.
pub(crate) fn deletes(res_pk: i64) -> Vec<Sql> {
    Table::ALL
        .iter()
        .map(|t| Sql { text: format!("DELETE FROM {} WHERE res_pk = $1", t.name()), binds: vec![Bind::Int(res_pk)] })
        .collect()
}

/// What an update changes in one resource's index rows: for each parameter whose
/// rows differ between `old` (the rows of the version replaced) and `new`, a
/// `DELETE` of its rows and the `INSERT` of its new ones; nothing for a parameter
/// whose rows are the same. Each statement binds `pk` as its `$1`.
pub(crate) fn changes(res_pk: i64, res_type: &str, old: &[IndexRow], new: &[IndexRow]) -> Vec<Sql> {
    fn by_param(rows: &[IndexRow]) -> HashMap<(Table, &str), HashSet<&IndexRow>> {
        let mut m: HashMap<(Table, &str), HashSet<&IndexRow>> = HashMap::new();
        for r in rows {
            m.entry((Table::of(&r.value), r.param.as_str())).or_default().insert(r);
        }
        m
    }
    let (before, after) = (by_param(old), by_param(new));
    let mut changed: Vec<(Table, &str)> =
        before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).copied().collect();
    changed.sort();
    changed.dedup();
    let mut out = Vec::new();
    for t in Table::ALL {
        let params: Vec<&str> = changed.iter().filter(|(tt, _)| *tt == t).map(|(_, p)| *p).collect();
        if params.is_empty() {
            continue;
        }
        let mut binds = vec![Bind::Int(res_pk)];
        let mut ph = Vec::with_capacity(params.len());
        for p in params {
            binds.push(Bind::Text(p.to_string()));
            ph.push(format!("${}", binds.len()));
        }
        let text = format!("DELETE FROM {} WHERE res_pk = $1 AND param IN ({})", t.name(), ph.join(", "));
        out.push(Sql { text, binds });
    }
    let rows: Vec<IndexRow> = new
        .iter()
        .filter(|r| changed.binary_search(&(Table::of(&r.value), r.param.as_str())).is_ok())
        .cloned()
        .collect();
    out.extend(inserts(res_pk, res_type, &rows));
    out
}
