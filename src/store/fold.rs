//! Several statements as one round trip on PostgreSQL: a version with its index
//! rows, an update's index deletes, or a whole write keyed on the resource row it
//! inserts or updates. SQLite, in process, gains nothing from it.

use super::{Bind, Dialect, Sql, Store};

impl Store {
    /// On PostgreSQL, several statements as one (data-modifying CTEs, each statement's
    /// placeholders shifted past the ones before): one round trip instead of one per
    /// statement, e.g. a version and its index rows, or an update's index deletes.
    pub(super) fn folded(&self, statements: Vec<Sql>) -> Vec<Sql> {
        folded(self.dialect, statements)
    }
}

/// [`Store::folded`] for `dialect`.
pub(super) fn folded(dialect: Dialect, statements: Vec<Sql>) -> Vec<Sql> {
    if dialect != Dialect::Postgres || statements.len() < 2 {
        return statements;
    }
    let mut parts = Vec::with_capacity(statements.len());
    let mut binds = Vec::new();
    for (i, s) in statements.into_iter().enumerate() {
        parts.push(format!("c{i} AS ({})", shift_placeholders(&s.text, binds.len())));
        binds.extend(s.binds);
    }
    vec![Sql { text: format!("WITH {} SELECT 1", parts.join(", ")), binds }]
}

/// Single-row `INSERT … VALUES (…) …` statements of the same text as one multi-row
/// insert, at the place of the first, its rows in the order given (so that a key
/// drawn from a sequence, an outbox message's `seq`, follows it). Other statements
/// are kept as they are. For independent writes only: it reorders statements of
/// different texts.
pub(super) fn merged_rows(statements: Vec<Sql>) -> Vec<Sql> {
    let mut out: Vec<Sql> = Vec::with_capacity(statements.len());
    // For each merged statement: its original text, and where its rows end in the
    // merged text (the tail after them, e.g. ON CONFLICT, follows).
    let mut merged: Vec<(String, usize, String)> = Vec::new();
    for s in statements {
        let Some((head, row, tail)) = split_row(&s.text) else {
            out.push(s);
            continue;
        };
        match merged.iter().position(|(text, _, _)| *text == s.text) {
            Some(i) => {
                let at = merged[i].1;
                let target = &mut out[at];
                let row = format!(", {}", shift_placeholders(row, target.binds.len()));
                let end = target.text.len() - merged[i].2.len();
                target.text.insert_str(end, &row);
                target.binds.extend(s.binds);
            }
            None => {
                merged.push((s.text.clone(), out.len(), tail.to_string()));
                out.push(Sql { text: format!("{head}{row}{tail}"), binds: s.binds });
            }
        }
    }
    out
}

/// `INSERT INTO … VALUES (row) tail` → (`INSERT INTO … VALUES `, `(row)`, ` tail`),
/// for a row without parentheses inside.
fn split_row(text: &str) -> Option<(&str, &str, &str)> {
    if !text.starts_with("INSERT INTO ") {
        return None;
    }
    let start = text.find(" VALUES (")? + " VALUES ".len();
    let len = text[start..].find(')')? + 1;
    let row = &text[start..start + len];
    if row[1..].contains('(') {
        return None;
    }
    Some((&text[..start], row, &text[start + len..]))
}

/// On PostgreSQL, a write of one resource as one statement: `first` writes its
/// `resources` row `RETURNING pk`; each of `rest` takes that key as its `$1`. The
/// rows of `rest` are written only when `first` returned the key (an `INSERT …
/// VALUES` becomes an `INSERT … SELECT` over a lateral `VALUES` joined to it, a
/// `DELETE` matches the key), so a conflict or a stale version writes nothing and
/// leaves the transaction usable. The statement yields the key, or no row.
pub(super) fn keyed(first: Sql, rest: Vec<Sql>) -> Sql {
    let mut text = format!("WITH r AS ({})", first.text);
    let mut binds = first.binds;
    for (i, s) in rest.into_iter().enumerate() {
        let part = match s.text.split_once(" VALUES ") {
            Some((head, rows)) if head.starts_with("INSERT INTO ") => format!(
                "{head} SELECT v.* FROM r CROSS JOIN LATERAL (VALUES {}) AS v",
                with_key(rows, "r.pk", binds.len())
            ),
            _ => with_key(&s.text, "(SELECT pk FROM r)", binds.len()),
        };
        text.push_str(&format!(", c{i} AS ({part})"));
        binds.extend(s.binds.into_iter().skip(1));
    }
    text.push_str(" SELECT pk FROM r");
    Sql { text, binds }
}

/// A statement of its own (no use of the key) as one of [`keyed`]'s `rest`: its
/// placeholders moved up by one, behind a `$1` it does not use.
pub(super) fn rider(s: Sql) -> Sql {
    let mut binds = Vec::with_capacity(s.binds.len() + 1);
    binds.push(Bind::NullInt);
    binds.extend(s.binds);
    Sql { text: shift_placeholders(&s.text, 1), binds }
}

/// `$1` → `key`; `$n` → `$(n - 1 + offset)` (the statement's own `$1` is dropped).
pub(super) fn with_key(text: &str, key: &str, offset: usize) -> String {
    renumbered(text, |out, n| match n {
        1 => out.push_str(key),
        n => push_placeholder(out, n - 1 + offset),
    })
}

/// `$n` → `$(n + offset)` in a statement's text (binds only: the store's statements
/// hold no `$` in literals).
fn shift_placeholders(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_string();
    }
    renumbered(text, |out, n| push_placeholder(out, n + offset))
}

/// `text` with each placeholder `$n` replaced by what `put` writes for `n`; a `$`
/// without digits is kept. Scans bytes and writes numbers in place: every write on
/// PostgreSQL passes through here, several times per booking.
fn renumbered(text: &str, mut put: impl FnMut(&mut String, usize)) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 32);
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        let digits = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            i += 1;
            continue;
        }
        // `$` and ASCII digits are single bytes: the slices below cut at char boundaries.
        out.push_str(&text[copied..i]);
        let n = text[i + 1..i + 1 + digits].bytes().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        put(&mut out, n);
        i += 1 + digits;
        copied = i;
    }
    out.push_str(&text[copied..]);
    out
}

fn push_placeholder(out: &mut String, n: usize) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "${n}");
}

#[cfg(test)]
mod tests {
    use super::{keyed, merged_rows, rider, shift_placeholders, with_key};
    use crate::store::{Bind, Sql};

    #[test]
    fn a_rider_keeps_its_own_binds_and_ignores_the_key() {
        let first =
            Sql { text: "INSERT INTO resources (id) VALUES ($1) RETURNING pk".into(), binds: vec![Bind::Int(5)] };
        let index =
            Sql { text: "INSERT INTO idx (res_pk, v) VALUES ($1, $2)".into(), binds: vec![Bind::Int(0), Bind::Int(6)] };
        let update = Sql { text: "UPDATE t SET a = $1 WHERE b = $2".into(), binds: vec![Bind::Int(7), Bind::Int(8)] };
        let one = keyed(first, vec![index, rider(update)]);
        assert_eq!(
            one.text,
            "WITH r AS (INSERT INTO resources (id) VALUES ($1) RETURNING pk), \
             c0 AS (INSERT INTO idx (res_pk, v) SELECT v.* FROM r CROSS JOIN LATERAL (VALUES (r.pk, $2)) AS v), \
             c1 AS (UPDATE t SET a = $3 WHERE b = $4) SELECT pk FROM r"
        );
        assert_eq!(one.binds, [5, 6, 7, 8].map(Bind::Int));
    }

    #[test]
    fn inserts_of_one_text_become_one_multi_row_insert_in_order() {
        let ins = |v: i64| Sql {
            text: "INSERT INTO t (a, b, c) VALUES ($1, '', $2) ON CONFLICT (a) DO NOTHING".into(),
            binds: vec![Bind::Int(v), Bind::Int(v * 10)],
        };
        let other = Sql { text: "INSERT INTO u (a) VALUES ($1)".into(), binds: vec![Bind::Int(9)] };
        let update = Sql { text: "UPDATE t SET b = $1".into(), binds: vec![Bind::Int(7)] };
        let out = merged_rows(vec![ins(1), other.clone(), ins(2), update.clone(), ins(3)]);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].text,
            "INSERT INTO t (a, b, c) VALUES ($1, '', $2), ($3, '', $4), ($5, '', $6) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(out[0].binds, [1, 10, 2, 20, 3, 30].map(Bind::Int));
        assert_eq!(out[1], other);
        assert_eq!(out[2], update);
    }

    #[test]
    fn a_keyed_write_takes_the_key_from_its_first_statement() {
        let first = Sql {
            text: "UPDATE t SET v = $1 WHERE pk = $2 RETURNING pk".into(),
            binds: vec![Bind::Int(2), Bind::Int(7)],
        };
        let rest = vec![
            Sql { text: "DELETE FROM i WHERE res_pk = $1".into(), binds: vec![Bind::Int(7)] },
            Sql {
                text: "INSERT INTO i (res_pk, a) VALUES ($1, $2), ($1, $3)".into(),
                binds: vec![Bind::Int(7), Bind::Int(8), Bind::Int(9)],
            },
        ];
        let one = keyed(first, rest);
        assert_eq!(
            one.text,
            "WITH r AS (UPDATE t SET v = $1 WHERE pk = $2 RETURNING pk), c0 AS (DELETE FROM i WHERE res_pk = (SELECT pk FROM r)), \
             c1 AS (INSERT INTO i (res_pk, a) SELECT v.* FROM r CROSS JOIN LATERAL (VALUES (r.pk, $3), (r.pk, $4)) AS v) SELECT pk FROM r"
        );
        assert_eq!(one.binds, vec![Bind::Int(2), Bind::Int(7), Bind::Int(8), Bind::Int(9)]);
        assert_eq!(with_key("a $ b $12", "k", 0), "a $ b $11");
    }

    #[test]
    fn placeholders_shift_past_the_statements_before() {
        assert_eq!(shift_placeholders("VALUES ($1, $2, $10)", 3), "VALUES ($4, $5, $13)");
        assert_eq!(shift_placeholders("x = $1", 0), "x = $1");
        assert_eq!(shift_placeholders("a $ b", 2), "a $ b");
        assert_eq!(shift_placeholders("città = $1 · $2$", 1), "città = $2 · $3$");
        assert_eq!(with_key("'€' $1, $2", "r.pk", 4), "'€' r.pk, $5");
    }
}
