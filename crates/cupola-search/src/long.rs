//! Long text values in the index. A B-tree entry must fit in a fraction of a page
//! (PostgreSQL refuses a larger one, SQLSTATE 54000), and a resource may carry a
//! value of megabytes. So, as HAPI FHIR does, each indexed text column that a client's
//! value fills holds at most the value's first [`INDEXED_CHARS`] characters, and the
//! whole value is kept beside it, unindexed, in `<column>_full` when it was cut (NULL
//! otherwise, so that ordinary values cost nothing more). Searches narrow the rows
//! through the index with the cut value and decide on the whole one.

use crate::schema::Table;
use crate::sql::Builder;
use crate::text::like_escape;
use crate::{Bind, Dialect};

/// How many characters (Unicode scalar values, as SQL's `substr` and `length` count
/// them on both engines) of a value an indexed column holds.
pub const INDEXED_CHARS: usize = 200;

/// The first [`INDEXED_CHARS`] characters of `s`, or `None` when `s` is no longer.
pub fn cut(s: &str) -> Option<&str> {
    // A character is at least one byte: a value of that many bytes at most fits.
    if s.len() <= INDEXED_CHARS {
        return None;
    }
    s.char_indices().nth(INDEXED_CHARS).map(|(at, _)| &s[..at])
}

/// A condition that `col` (an indexed column with `<col>_full` beside it) holds
/// exactly `value`, each text written by `lit` (a placeholder or a literal; `None`
/// when it cannot be written, and then so is the condition).
pub fn exact_match(col: &str, value: &str, mut lit: impl FnMut(&str) -> Option<String>) -> Option<String> {
    Some(match cut(value) {
        None => format!("({col} = {} AND {col}_full IS NULL)", lit(value)?),
        Some(head) => format!("({col} = {} AND {col}_full = {})", lit(head)?, lit(value)?),
    })
}

/// The binds of a row's value columns (`Table::value_columns` order) as stored: long
/// texts cut, followed by the `_full` columns (`Table::long_columns` order).
pub(crate) fn stored_binds(t: Table, mut binds: Vec<Bind>) -> Vec<Bind> {
    let mut full = Vec::with_capacity(t.long_columns().len());
    for (col, _) in t.long_columns() {
        let at = t.value_columns().iter().position(|(c, _)| c == col);
        let whole = match at.and_then(|i| binds.get_mut(i)) {
            Some(Bind::Text(s)) => match cut(s) {
                Some(head) => {
                    let head = head.to_string();
                    Bind::Text(std::mem::replace(s, head))
                }
                None => Bind::NullText,
            },
            _ => Bind::NullText,
        };
        full.push(whole);
    }
    binds.extend(full);
    binds
}

/// The store's migration to cut index values: adds the `_full` columns and moves the
/// values of rows already stored that are longer than [`INDEXED_CHARS`] into them,
/// leaving their first characters in the indexed column (one statement per item).
pub fn long_values_schema(d: Dialect) -> Vec<String> {
    let collate = crate::schema::text_collation(d);
    let mut out = Vec::new();
    for t in Table::ALL {
        for (col, full) in t.long_columns() {
            let name = t.name();
            out.push(format!("ALTER TABLE {name} ADD COLUMN {full} TEXT{collate}"));
            out.push(format!(
                "UPDATE {name} SET {full} = {col}, {col} = substr({col}, 1, {INDEXED_CHARS}) \
                 WHERE length({col}) > {INDEXED_CHARS}"
            ));
        }
    }
    out
}

impl Builder {
    /// `ix.col` holds exactly `value`.
    pub(crate) fn long_eq(&mut self, col: &str, value: &str) -> String {
        exact_match(col, value, |s| Some(self.text(s))).unwrap_or_else(|| "1 = 0".into())
    }

    /// `col` holds exactly one of `values`.
    pub(crate) fn long_in(&mut self, col: &str, values: &[String]) -> String {
        let (short, long): (Vec<&String>, Vec<&String>) = values.iter().partition(|v| cut(v).is_none());
        let mut alts = Vec::new();
        if !short.is_empty() {
            let ph: Vec<String> = short.iter().map(|v| self.text(v)).collect();
            alts.push(format!("({col} IN ({}) AND {col}_full IS NULL)", ph.join(", ")));
        }
        alts.extend(long.iter().map(|v| self.long_eq(col, v)));
        format!("({})", alts.join(" OR "))
    }

    /// `col`'s whole value starts with `prefix`: a longer prefix than the column
    /// holds is its cut head there, the rest compared in the whole value.
    pub(crate) fn long_prefix(&mut self, col: &str, prefix: &str) -> String {
        match cut(prefix) {
            None => self.prefix(col, prefix),
            Some(head) => {
                let head = self.text(head);
                format!("({col} = {head} AND {})", self.prefix(&format!("{col}_full"), prefix))
            }
        }
    }

    /// `col`'s whole value contains `part` (both normalised).
    pub(crate) fn long_contains(&mut self, col: &str, part: &str) -> String {
        let pattern = self.text(&format!("%{}%", like_escape(part)));
        format!("COALESCE({col}_full, {col}) LIKE {pattern} ESCAPE '\\'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_after_the_last_whole_character() {
        assert_eq!(cut(&"a".repeat(200)), None);
        assert_eq!(cut(&"a".repeat(201)), Some("a".repeat(200).as_str()));
        // 200 two-byte characters are 400 bytes, and fit.
        assert_eq!(cut(&"é".repeat(200)), None);
        // The 200th character is four bytes long and kept whole.
        let s = format!("{}😀x", "a".repeat(199));
        assert_eq!(cut(&s), Some(format!("{}😀", "a".repeat(199)).as_str()));
        let s = format!("{}é€😀", "a".repeat(198));
        assert_eq!(cut(&s), Some(format!("{}é€", "a".repeat(198)).as_str()));
    }

    #[test]
    fn a_cut_value_is_matched_on_its_head_and_its_whole() {
        let long = format!("{}z", "y".repeat(200));
        let mut n = 0;
        let mut lit = |s: &str| {
            n += 1;
            Some(format!("${n}:{}", s.len()))
        };
        assert_eq!(exact_match("i.code", "abc", &mut lit).as_deref(), Some("(i.code = $1:3 AND i.code_full IS NULL)"));
        assert_eq!(
            exact_match("i.code", &long, &mut lit).as_deref(),
            Some("(i.code = $2:200 AND i.code_full = $3:201)")
        );
        assert_eq!(exact_match("i.code", "x", |_| None), None);
    }

    #[test]
    fn stored_binds_cut_long_texts_and_keep_them_whole_beside() {
        let long = "é".repeat(250);
        let binds = vec![Bind::Text("n".into()), Bind::Text(long.clone())];
        let out = stored_binds(Table::String, binds);
        let head = "é".repeat(200);
        assert_eq!(out, vec![Bind::Text("n".into()), Bind::Text(head), Bind::NullText, Bind::Text(long)]);
    }
}
