//! Decimal values as `i64` scaled by 10^6 (exact to the micro-unit, never `f64`),
//! and the implicit precision range of a search value (`100` → `[99.5, 100.5)`).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The scale of stored numbers: 1 = 1_000_000.
pub const SCALE: i64 = 1_000_000;

/// Parses a JSON / FHIR decimal text (`-1.50`, `2e3`).
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(p) => (&body[..p], Some(&body[p + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if !all_digits(e) {
            return None;
        }
        return Decimal::from_scientific(s).ok();
    }
    Decimal::from_str(s).ok()
}

fn scaled(d: Decimal, up: bool) -> i64 {
    let Some(m) = d.checked_mul(Decimal::from(SCALE)) else {
        return if d.is_sign_negative() { i64::MIN } else { i64::MAX };
    };
    let r = if up { m.ceil() } else { m.floor() };
    r.to_i64().unwrap_or(if r.is_sign_negative() { i64::MIN } else { i64::MAX })
}

/// `d × 10^6`, rounded down (saturating).
pub fn scaled_floor(d: Decimal) -> i64 {
    scaled(d, false)
}

/// `d × 10^6`, rounded up (saturating).
pub fn scaled_ceil(d: Decimal) -> i64 {
    scaled(d, true)
}

/// A search value: its exact value and its implicit precision range, scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchNumber {
    /// Exact value, rounded down / up to the scale.
    pub floor: i64,
    pub ceil: i64,
    /// Implicit range `[lo, hi)`: ± half a unit of the last given digit.
    pub lo: i64,
    pub hi: i64,
    /// 10 % of |value| for `ap`.
    pub tenth: i64,
}

/// Parses a search number (without prefix).
pub fn search_number(s: &str) -> Option<SearchNumber> {
    let d = parse_decimal(s)?;
    // Beyond 28 decimals the half unit is far below the 10^-6 scale: treat as 0.
    let half = Decimal::try_new(5, d.scale() + 1).unwrap_or(Decimal::ZERO);
    let tenth = d.abs().checked_div(Decimal::from(10))?;
    Some(SearchNumber {
        floor: scaled_floor(d),
        ceil: scaled_ceil(d),
        lo: scaled_floor(d.checked_sub(half)?),
        hi: scaled_ceil(d.checked_add(half)?),
        tenth: scaled_ceil(tenth),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_scale() {
        assert_eq!(parse_decimal("1.5").map(scaled_floor), Some(1_500_000));
        assert_eq!(parse_decimal("-0.0000015").map(scaled_floor), Some(-2));
        assert_eq!(parse_decimal("2e3").map(scaled_floor), Some(2_000_000_000));
        assert_eq!(parse_decimal("1e20").map(scaled_floor), Some(i64::MAX));
        assert!(parse_decimal("1.").is_none());
        assert!(parse_decimal("abc").is_none());
        assert!(parse_decimal("1_0").is_none());
        let n = search_number("100").expect("number");
        assert_eq!((n.lo, n.hi), (99_500_000, 100_500_000));
        let n = search_number("100.0").expect("number");
        assert_eq!((n.lo, n.hi), (99_950_000, 100_050_000));
        assert_eq!(n.tenth, 10_000_000);
        for s in ["0.0000000000000000000000000001", "1e-50", "1e50", "9999999999999999999999999999999", "-0", "1e-28"] {
            let _ = search_number(s);
        }
    }
}
