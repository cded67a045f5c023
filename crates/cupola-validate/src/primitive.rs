//! What R4 says of a primitive's value beyond its JSON type and pattern: a string
//! holds at most 1,048,576 characters (`string.value` maxLength) and no control
//! characters but tab, CR and LF (FHIR XML cannot carry them, and PostgreSQL's
//! text cannot hold U+0000); an integer is 32 bits, an unsignedInt not negative, a
//! positiveInt above zero.

use serde_json::Value;

/// `string.value`'s maxLength in the R4 definitions.
const MAX_CHARS: usize = 1_048_576;

/// Why `value` is not a valid `ty`, if it is not.
pub(crate) fn fault(ty: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(s) => text_fault(s),
        Value::Number(n) => integer_fault(ty, &n.to_string()),
        _ => None,
    }
}

fn text_fault(s: &str) -> Option<String> {
    if let Some(c) = s.chars().find(|c| c.is_control() && (*c as u32) < 0x20 && !matches!(c, '\t' | '\r' | '\n')) {
        return Some(format!(
            "it holds the control character U+{:04X}; FHIR strings take no control characters but tab, CR and LF",
            c as u32
        ));
    }
    // Bytes bound characters from above: count only when the bytes could be too many.
    if s.len() > MAX_CHARS && s.chars().count() > MAX_CHARS {
        return Some(format!("it has {} characters; FHIR strings have at most {MAX_CHARS} (1 MB)", s.chars().count()));
    }
    None
}

fn integer_fault(ty: &str, text: &str) -> Option<String> {
    let min = match ty {
        "integer" => i64::from(i32::MIN),
        "unsignedInt" => 0,
        "positiveInt" => 1,
        _ => return None,
    };
    match text.parse::<i64>() {
        Ok(n) if n >= min && n <= i64::from(i32::MAX) => None,
        _ => Some(format!("a FHIR {ty} is a whole number from {min} to {}", i32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_integers_at_their_edges() {
        assert!(fault("string", &json!("tab\tand\r\nlines")).is_none());
        assert!(fault("string", &json!("nul\u{0}")).is_some());
        assert!(fault("string", &json!("é".repeat(MAX_CHARS))).is_none());
        assert!(fault("string", &json!("a".repeat(MAX_CHARS + 1))).is_some());
        assert!(fault("integer", &json!(2147483647)).is_none());
        assert!(fault("integer", &json!(2147483648_i64)).is_some());
        assert!(fault("integer", &json!(-2147483648_i64)).is_none());
        assert!(fault("unsignedInt", &json!(-1)).is_some());
        assert!(fault("positiveInt", &json!(0)).is_some());
        assert!(fault("decimal", &json!(1e300)).is_none());
    }
}
