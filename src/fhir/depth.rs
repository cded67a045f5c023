//! How deeply a request body nests, measured before it is parsed: every later step
//! (the schema, the definition walk, the search index, the XML model, dropping the
//! value) recurses once per level, and a body nested a hundred levels deep
//! overflowed a worker thread's stack and killed the gateway. Real FHIR nests far
//! less (a Questionnaire's items, extensions in extensions: a few dozen levels).

/// The deepest nesting of objects and arrays (JSON) or elements (XML) accepted.
pub const MAX_DEPTH: usize = 64;

/// The deepest nesting of JSON objects and arrays in `bytes`, strings skipped.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The deepest nesting of XML elements in `text` (start tags that are not
/// self-closing open a level, end tags close one; declarations, comments and
/// processing instructions are skipped; `>` inside attribute values is rare enough
/// to count as the tag's end).
pub fn xml_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
        } else if !tag.starts_with(['?', '!']) && !tag.ends_with('/') {
            depth += 1;
            deepest = deepest.max(depth);
        }
        rest = &rest[end.min(rest.len())..];
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers_not_their_text() {
        assert_eq!(json_depth(br#"{"a":[{"b":"[[[{{{\"]]"}]}"#), 3);
        assert_eq!(json_depth(b"[[[[1]]]]"), 4);
        assert_eq!(xml_depth(r#"<?xml version="1.0"?><a><b x="1"/><c><d>t</d></c><!-- <e> --></a>"#), 3);
    }
}
