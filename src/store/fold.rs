//! Several statements as one round trip on PostgreSQL: a version with its index
//! rows, an update's index deletes. SQLite, in process, gains nothing from it.

use super::{Dialect, Sql, Store};

impl Store {
    /// On PostgreSQL, several statements as one (data-modifying CTEs, each statement's
    /// placeholders shifted past the ones before): one round trip instead of one per
    /// statement, e.g. a version and its index rows, or an update's index deletes.
    pub(super) fn folded(&self, statements: Vec<Sql>) -> Vec<Sql> {
        if self.dialect != Dialect::Postgres || statements.len() < 2 {
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
}

/// `$n` → `$(n + offset)` in a statement's text (binds only: the store's statements
/// hold no `$` in literals).
fn shift_placeholders(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&format!("${}", n + offset)),
            Err(_) => out.push('$'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shift_placeholders;

    #[test]
    fn placeholders_shift_past_the_statements_before() {
        assert_eq!(shift_placeholders("VALUES ($1, $2, $10)", 3), "VALUES ($4, $5, $13)");
        assert_eq!(shift_placeholders("x = $1", 0), "x = $1");
        assert_eq!(shift_placeholders("a $ b", 2), "a $ b");
    }
}
