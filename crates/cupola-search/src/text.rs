//! Text helpers shared by extraction and SQL: the normalisation used for string
//! search (lower case, accents stripped), `LIKE` escaping and prefix upper bounds.

use unicode_normalization::UnicodeNormalization;

/// Lower-cases `s` and strips combining accents (`"Çhâlmers"` → `"chalmers"`), so that
/// SQLite and PostgreSQL compare the same bytes.
pub fn normalize(s: &str) -> String {
    let lower: String = s.chars().flat_map(char::to_lowercase).collect();
    lower.nfd().filter(|c| !is_combining(*c)).collect()
}

fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Escapes `\`, `%` and `_` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The smallest string greater (in code point / UTF-8 byte order) than every string
/// starting with `prefix`, or `None` when there is none. With a binary collation,
/// `col >= prefix AND col < upper` is a prefix match that both engines serve from a
/// B-tree index.
pub fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        if let Some(n) = next_char(c) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn next_char(c: char) -> Option<char> {
    let mut u = c as u32 + 1;
    if (0xD800..=0xDFFF).contains(&u) {
        u = 0xE000;
    }
    char::from_u32(u)
}

/// Splits `s` on unescaped occurrences of `sep` (FHIR search escaping: `\,` `\|` `\$`
/// `\\`). Escapes are kept; remove them with [`unescape`] once all splitting is done.
pub fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
}

/// Removes FHIR search escapes (`\x` → `x`).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("Çhâlmers ÉLODIE"), "chalmers elodie");
        assert_eq!(normalize("Müller"), "muller");
    }

    #[test]
    fn bounds_and_escapes() {
        assert_eq!(prefix_upper("abc").as_deref(), Some("abd"));
        assert_eq!(prefix_upper("").as_deref(), None);
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
        assert_eq!(split_unescaped("a\\,b,c", ','), vec!["a\\,b", "c"]);
        assert_eq!(unescape("a\\,b\\|c\\\\"), "a,b|c\\");
    }
}
