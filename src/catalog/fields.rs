//! The values of a catalog row's typed fields: a code, a tariff in EUR, a date;
//! each checked, or the reason it is not one.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

/// A catalog code: 1–20 characters of `0-9 A-Z a-z .`, starting with a digit or
/// letter, no `..`, not ending with `.`.
pub(crate) fn check_code(code: &str) -> Result<(), String> {
    let well_formed = !code.is_empty()
        && code.len() <= 20
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && code.as_bytes()[0].is_ascii_alphanumeric()
        && !code.ends_with('.')
        && !code.contains("..");
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "code {code:?} is malformed: 1 to 20 characters among 0-9 A-Z a-z and \".\", starting with a digit or \
             letter, no \"..\", not ending with \".\" (e.g. 89.7A.3, 89.52, R.CARD.01)"
        ))
    }
}

/// A tariff in EUR: digits, optionally `.` and 1 or 2 decimals; kept with 2 decimals.
pub(crate) fn parse_tariff(text: &str) -> Result<Decimal, String> {
    const FORMAT: &str = "write EUR with \".\" as decimal separator and at most 2 decimals, e.g. 11.62";
    if text.is_empty() {
        return Err("tariff is empty".into());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let numeric = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (frac.is_empty() != digits.contains('.'));
    if !numeric {
        if !negative && digits.contains(',') && !digits.contains('.') {
            return Err(format!("tariff {text:?} uses \",\" as decimal separator: {FORMAT}"));
        }
        return Err(format!("tariff {text:?} is not a number: {FORMAT}"));
    }
    if negative && digits.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        return Err(format!("tariff {text:?} is negative: a tariff is 0 EUR or more"));
    }
    if frac.len() > 2 {
        return Err(format!("tariff {text:?} has {} decimals: {FORMAT}", frac.len()));
    }
    if int.trim_start_matches('0').len() > 9 {
        return Err(format!("tariff {text:?} is too large for a tariff"));
    }
    let mut value = Decimal::from_str(digits).map_err(|e| format!("tariff {text:?}: {e}"))?;
    value.rescale(2);
    Ok(value)
}

/// The longest `preparation` text, in characters: a few sentences a booking sheet prints.
pub(crate) const PREPARATION_MAX: usize = 500;

/// A service's preparation notes for the patient (optional: empty is none): at most
/// [`PREPARATION_MAX`] characters, no control characters (line breaks included).
pub(crate) fn parse_preparation(code: &str, text: &str) -> Result<Option<String>, String> {
    let length = text.chars().count();
    if length > PREPARATION_MAX {
        return Err(format!("preparation of code {code} has {length} characters: at most {PREPARATION_MAX}"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!(
            "preparation of code {code} holds a control character (a line break or tab): write it on one line"
        ));
    }
    Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
}

/// A date `YYYY-MM-DD` that exists in the calendar.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Err(format!("valid_from {text:?} is not a date: write YYYY-MM-DD, e.g. 2024-01-01"));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("valid_from {text:?} is not a day of the calendar"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tariffs_are_exact() {
        assert_eq!(parse_tariff("0").map(|d| d.to_string()), Ok("0.00".into()));
        assert_eq!(parse_tariff("61.97").map(|d| d.to_string()), Ok("61.97".into()));
        assert_eq!(parse_tariff("5.5").map(|d| d.to_string()), Ok("5.50".into()));
        assert_eq!(parse_tariff("-0").map(|d| d.to_string()), Ok("0.00".into()));
        for bad in ["", ".5", "5.", "1e3", "+3", "1.2.3", "1 000", "1234567890"] {
            assert!(parse_tariff(bad).is_err(), "{bad}");
        }
    }
}
