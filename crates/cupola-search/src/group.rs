//! PostgreSQL's group create: many new resources and their index rows in one
//! statement whose text does not depend on how many there are.

use crate::extract::IndexRow;
use crate::schema::{row_binds, Table};
use crate::Bind;

/// One resource of a group create (see [`group_create_sql`]).
pub struct GroupItem<'a> {
    pub res_type: &'a str,
    pub id: &'a str,
    pub last_updated: i64,
    /// The body as stored (the store's compressed bytes).
    pub body: &'a [u8],
    pub rows: &'a [IndexRow],
}

/// PostgreSQL: creates many new resources (version 1, their index rows) in one
/// statement whose text does not depend on how many there are, so that each
/// connection prepares and plans it once. Multi-row `VALUES` lists would give a new
/// statement per batch size, each parsed and planned anew (measured slower than one
/// create per statement). `$1` is a JSON array of the resources, `$2`… one JSON
/// array of index rows per table, in `Table::ALL` order ([`group_create_binds`]).
/// The body travels as base64 (it is the store's bytes, not JSON text) and is
/// decoded into the version row as it was given. Returns `pk, res_id` of each resource created.
pub fn group_create_sql() -> String {
    let mut text = String::from(
        "WITH d AS MATERIALIZED (SELECT * FROM json_to_recordset($1::json) AS x(res_type text, id text, lu bigint, body text)), \
         r AS (INSERT INTO resources (res_type, res_id, version, last_updated, deleted) \
         SELECT res_type, id, 1, lu, false FROM d RETURNING pk, res_type, res_id), \
         v AS (INSERT INTO resource_versions (res_pk, version, last_updated, deleted, method, body) \
         SELECT r.pk, 1, d.lu, false, 'POST', decode(d.body, 'base64') FROM d JOIN r ON r.res_id = d.id AND r.res_type = d.res_type)",
    );
    for (i, t) in Table::ALL.iter().enumerate() {
        let cols: Vec<&str> = t.columns().iter().map(|c| c.0).collect();
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
            index_row_json(out, it.id, row, t);
        }
    }
    std::iter::once(resources_json(items))
        .chain(tables.into_iter().map(|mut t| {
            t.push(b']');
            t
        }))
        // Only UTF-8 went in: base64 and serde_json's output.
        .map(|bytes| {
            Bind::Text(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
        })
        .collect()
}

/// The first bind: the JSON array of the resources (type, id, time, body).
fn resources_json(items: &[GroupItem<'_>]) -> Vec<u8> {
    use base64::Engine;
    use std::io::Write;
    let mut resources: Vec<u8> =
        Vec::with_capacity(items.iter().map(|it| it.body.len() * 4 / 3 + 100).sum::<usize>() + 2);
    resources.push(b'[');
    for (k, it) in items.iter().enumerate() {
        if k > 0 {
            resources.push(b',');
        }
        resources.extend_from_slice(b"{\"res_type\":");
        json_str(&mut resources, it.res_type);
        resources.extend_from_slice(b",\"id\":");
        json_str(&mut resources, it.id);
        let _ = write!(resources, ",\"lu\":{},\"body\":\"", it.last_updated);
        resources.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(it.body).as_bytes());
        resources.extend_from_slice(b"\"}");
    }
    resources.push(b']');
    resources
}

/// Appends the index row `row` (of table `t`) of the resource `id` as a JSON object.
fn index_row_json(out: &mut Vec<u8>, id: &str, row: &IndexRow, t: Table) {
    use std::io::Write;
    out.extend_from_slice(b"{\"id\":");
    json_str(out, id);
    out.extend_from_slice(b",\"param\":");
    json_str(out, &row.param);
    let _ = write!(out, ",\"grp\":{}", row.group);
    for ((name, _), b) in t.columns().iter().zip(row_binds(&row.value)) {
        // A key left out is NULL to `json_to_recordset`: most whole-value
        // columns are, and cost no text.
        if matches!(b, Bind::NullText | Bind::NullInt) {
            continue;
        }
        let _ = write!(out, ",\"{name}\":");
        match b {
            Bind::Text(s) => json_str(out, &s),
            Bind::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Bind::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
            Bind::NullText | Bind::NullInt | Bind::Bytes(_) => {}
        }
    }
    out.push(b'}');
}

/// Appends `s` as a JSON string (serde_json's escaping).
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::IndexValue;

    #[test]
    fn group_binds_are_json_with_bodies_in_base64_and_strings_escaped() {
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
        let body = b"\x28\xb5\x2f\xfd stored bytes";
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
        // The body travels as base64, byte for byte.
        let res: serde_json::Value = serde_json::from_str(texts[0]).unwrap();
        let sent = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, res[0]["body"].as_str().unwrap());
        assert_eq!(sent.unwrap(), body);
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
