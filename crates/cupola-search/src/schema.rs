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
enum Col {
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

    fn value_columns(self) -> &'static [(&'static str, Col)] {
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

    /// `name type` of each value column, with the types given for text and integers.
    fn column_decls(self, text: &str, int: &str) -> Vec<String> {
        self.value_columns()
            .iter()
            .map(|(name, col)| match col {
                Col::Text => format!("{name} {text}"),
                Col::Int => format!("{name} {int}"),
            })
            .collect()
    }

    /// Column sorted on ascending / descending (`MIN(asc)` / `MAX(desc)` per resource).
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

    fn of(v: &IndexValue) -> Table {
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

/// DDL of the index tables (one statement per item, no `;`), for `d`. Text value
/// columns use the binary `"C"` collation on PostgreSQL (SQLite's default is binary)
/// so that prefix ranges and ordering agree on both engines.
pub fn index_schema(d: Dialect) -> Vec<String> {
    let collate = match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " COLLATE \"C\"",
    };
    let mut out = Vec::new();
    for t in Table::ALL {
        let cols = t.column_decls(&format!("TEXT{collate}"), "BIGINT");
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
    let per_row = 3 + t.value_columns().len();
    let cols: Vec<&str> = t.value_columns().iter().map(|c| c.0).collect();
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
            vals.extend(value_binds(&row.value));
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

/// One resource of a group create (see [`group_create_sql`]).
pub struct GroupItem<'a> {
    pub res_type: &'a str,
    pub id: &'a str,
    pub last_updated: i64,
    pub body: &'a str,
    pub rows: &'a [IndexRow],
}

/// PostgreSQL: creates many new resources (version 1, their index rows) in one
/// statement whose text does not depend on how many there are, so that each
/// connection prepares and plans it once. Multi-row `VALUES` lists would give a new
/// statement per batch size, each parsed and planned anew (measured slower than one
/// create per statement). `$1` is a JSON array of the resources, `$2`… one JSON
/// array of index rows per table, in `Table::ALL` order ([`group_create_binds`]).
/// The body is read as `json`, which keeps its text exactly as sent (decimals too).
/// Returns `pk, res_id` of each resource created.
pub fn group_create_sql() -> String {
    let mut text = String::from(
        "WITH d AS MATERIALIZED (SELECT * FROM json_to_recordset($1::json) AS x(res_type text, id text, lu bigint, body json)), \
         r AS (INSERT INTO resources (res_type, res_id, version, last_updated, deleted) \
         SELECT res_type, id, 1, lu, false FROM d RETURNING pk, res_type, res_id), \
         v AS (INSERT INTO resource_versions (res_pk, version, last_updated, deleted, method, body) \
         SELECT r.pk, 1, d.lu, false, 'POST', d.body::text FROM d JOIN r ON r.res_id = d.id AND r.res_type = d.res_type)",
    );
    for (i, t) in Table::ALL.iter().enumerate() {
        let cols: Vec<&str> = t.value_columns().iter().map(|c| c.0).collect();
        let typed = t.column_decls("text", "bigint");
        let picked: Vec<String> = cols.iter().map(|c| format!("x.{c}")).collect();
        text.push_str(&format!(
            ", i{i} AS (INSERT INTO {} (res_pk, res_type, param, grp, {}) SELECT r.pk, r.res_type, x.param, x.grp, {} \
             FROM json_to_recordset(${}::json) AS x(id text, param text, grp bigint, {}) JOIN r ON r.res_id = x.id)",
            t.name(),
            cols.join(", "),
            picked.join(", "),
            i + 2,
            typed.join(", ")
        ));
    }
    text.push_str(" SELECT pk, res_id FROM r");
    text
}

/// The binds of [`group_create_sql`] for `items` (ids distinct within the group),
/// written as JSON text directly: building `serde_json::Value`s first cost a tenth
/// of the gateway's time per create.
pub fn group_create_binds(items: &[GroupItem<'_>]) -> Vec<Bind> {
    use std::io::Write;
    let mut resources: Vec<u8> = Vec::with_capacity(items.iter().map(|it| it.body.len() + 96).sum::<usize>() + 2);
    resources.push(b'[');
    for (k, it) in items.iter().enumerate() {
        if k > 0 {
            resources.push(b',');
        }
        resources.extend_from_slice(b"{\"res_type\":");
        json_str(&mut resources, it.res_type);
        resources.extend_from_slice(b",\"id\":");
        json_str(&mut resources, it.id);
        let _ = write!(resources, ",\"lu\":{},\"body\":", it.last_updated);
        // Already JSON: carried as it is, not as an escaped string.
        resources.extend_from_slice(it.body.as_bytes());
        resources.push(b'}');
    }
    resources.push(b']');
    let mut tables: Vec<Vec<u8>> = vec![vec![b'[']; Table::ALL.len()];
    for it in items {
        for row in it.rows {
            let t = Table::of(&row.value);
            let Some(out) = Table::ALL.iter().position(|x| *x == t).and_then(|pos| tables.get_mut(pos)) else {
                continue;
            };
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            json_str(out, it.id);
            out.extend_from_slice(b",\"param\":");
            json_str(out, &row.param);
            let _ = write!(out, ",\"grp\":{}", row.group);
            for ((name, _), b) in t.value_columns().iter().zip(value_binds(&row.value)) {
                let _ = write!(out, ",\"{name}\":");
                match b {
                    Bind::Text(s) => json_str(out, &s),
                    Bind::Int(i) => {
                        let _ = write!(out, "{i}");
                    }
                    Bind::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
                    Bind::NullText | Bind::NullInt => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        }
    }
    std::iter::once(resources)
        .chain(tables.into_iter().map(|mut t| {
            t.push(b']');
            t
        }))
        // Only UTF-8 went in: the bodies are `&str`, the rest serde_json's output.
        .map(|bytes| {
            Bind::Text(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        })
        .collect()
}

/// Appends `s` as a JSON string (serde_json's escaping).
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_binds_are_json_with_bodies_kept_verbatim_and_strings_escaped() {
        let rows = vec![
            IndexRow {
                param: "family".into(),
                group: 0,
                value: IndexValue::String { norm: "o\"brien\\".into(), exact: "O\"Brien\\\n\u{1}".into() },
            },
            IndexRow { param: "birthdate".into(), group: 1, value: IndexValue::Date { lo: -5, hi: 7 } },
            IndexRow {
                param: "identifier".into(),
                group: 2,
                value: IndexValue::Token { system: None, code: Some("è1".into()), text: None },
            },
        ];
        let body = r#"{"resourceType":"Patient","x":20.00}"#;
        let items = [GroupItem { res_type: "Patient", id: "a\"b", last_updated: 42, body, rows: &rows }];
        let binds = group_create_binds(&items);
        assert_eq!(binds.len(), 1 + Table::ALL.len());
        let texts: Vec<&str> = binds
            .iter()
            .map(|b| match b {
                Bind::Text(t) => t.as_str(),
                _ => panic!("every bind is JSON text"),
            })
            .collect();
        // The body is embedded as JSON, byte for byte.
        assert!(texts[0].contains(body));
        let res: serde_json::Value = serde_json::from_str(texts[0]).unwrap();
        assert_eq!(res[0]["id"], "a\"b");
        assert_eq!(res[0]["lu"], 42);
        let strings: serde_json::Value = serde_json::from_str(texts[1]).unwrap();
        assert_eq!(strings[0]["value_exact"], "O\"Brien\\\n\u{1}");
        assert_eq!(strings[0]["param"], "family");
        let tokens: serde_json::Value = serde_json::from_str(texts[2]).unwrap();
        assert_eq!(tokens[0]["code"], "è1");
        assert!(tokens[0]["system"].is_null());
        let dates: serde_json::Value = serde_json::from_str(texts[3]).unwrap();
        assert_eq!(
            (dates[0]["lo"].as_i64(), dates[0]["hi"].as_i64(), dates[0]["grp"].as_i64()),
            (Some(-5), Some(7), Some(1))
        );
        // Tables without rows get an empty array.
        assert_eq!(texts[7], "[]");
    }
}
