//! FHIR date, dateTime and instant values as ranges of microseconds since the Unix
//! epoch (UTC). A value denotes every instant it could mean at its precision:
//! `2023` is the whole year, `2023-05-01T10:00` a whole minute.

use chrono::NaiveDate;

/// An inclusive range `[lo, hi]` of µs since the epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub lo: i64,
    pub hi: i64,
}

const US_PER_SEC: i64 = 1_000_000;

fn digits(s: &str, n: usize) -> Result<u32, String> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u32>().map_err(|e| e.to_string())
    } else {
        Err(format!("expected {n} digits, found '{s}'"))
    }
}

fn day_start(y: i32, m: u32, d: u32) -> Result<i64, String> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
        .ok_or_else(|| format!("{y:04}-{m:02}-{d:02} is not a valid date"))
}

/// Parses a FHIR date / dateTime / instant (or a search value of one): `YYYY`,
/// `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh:mm]`. A time without
/// an offset is taken as UTC. Invalid calendar dates (`2023-02-31`) are errors.
pub fn parse_range(s: &str) -> Result<DateRange, String> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = digits(parts.next().unwrap_or(""), 4)?;
    let year = i32::try_from(year).map_err(|e| e.to_string())?;
    if year == 0 {
        return Err("year 0000 is not valid".into());
    }
    let month = parts.next().map(|m| digits(m, 2)).transpose()?;
    let day = parts.next().map(|d| digits(d, 2)).transpose()?;
    if parts.next().is_some() {
        return Err(format!("'{s}' is not a date"));
    }
    let next_month = |y: i32, m: u32| if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let (lo, hi) = match (month, day) {
        (None, _) => (day_start(year, 1, 1)?, day_start(year + 1, 1, 1)? - 1),
        (Some(m), None) => {
            if !(1..=12).contains(&m) {
                return Err(format!("month {m} is not valid"));
            }
            let (ny, nm) = next_month(year, m);
            (day_start(year, m, 1)?, day_start(ny, nm, 1)? - 1)
        }
        (Some(m), Some(d)) => {
            let start = day_start(year, m, d)?;
            (start, start + 86_400 * US_PER_SEC - 1)
        }
    };
    let Some(time) = time else {
        return Ok(DateRange { lo, hi });
    };
    if day.is_none() {
        return Err(format!("'{s}': a time needs a full date"));
    }
    parse_time(lo, time).map_err(|e| format!("'{s}': {e}"))
}

/// Parses `hh:mm[:ss[.fff]][offset]` on the day starting at `day` (µs).
fn parse_time(day: i64, t: &str) -> Result<DateRange, String> {
    let (clock, offset) = split_offset(t)?;
    let mut parts = clock.split(':');
    let h = digits(parts.next().unwrap_or(""), 2)?;
    let mi = parts.next().ok_or("missing minutes").and_then(|m| digits(m, 2).map_err(|_| "bad minutes"))?;
    let sec = parts.next();
    if parts.next().is_some() || h > 23 || mi > 59 {
        return Err("invalid time".into());
    }
    let mut start = day + (i64::from(h) * 3600 + i64::from(mi) * 60) * US_PER_SEC;
    let width = match sec {
        None => 60 * US_PER_SEC,
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            let s = digits(whole, 2)?;
            if s > 59 {
                return Err("invalid seconds".into());
            }
            start += i64::from(s) * US_PER_SEC;
            match frac {
                None => US_PER_SEC,
                Some(f) => {
                    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                        return Err("invalid fraction of a second".into());
                    }
                    let used = &f[..f.len().min(6)];
                    let scale = 10_i64.pow(6 - used.len() as u32);
                    start += used.parse::<i64>().map_err(|e| e.to_string())? * scale;
                    scale
                }
            }
        }
    };
    let lo = start - offset;
    Ok(DateRange { lo, hi: lo + width - 1 })
}

/// Splits a trailing `Z` or `±hh:mm` offset; returns the offset in µs.
fn split_offset(t: &str) -> Result<(&str, i64), String> {
    if let Some(c) = t.strip_suffix('Z') {
        return Ok((c, 0));
    }
    if let Some(pos) = t.rfind(['+', '-']) {
        let (c, off) = t.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').ok_or("invalid offset")?;
        let (oh, om) = (digits(oh, 2)?, digits(om, 2)?);
        if oh > 14 || om > 59 {
            return Err("invalid offset".into());
        }
        return Ok((c, sign * (i64::from(oh) * 3600 + i64::from(om) * 60) * US_PER_SEC));
    }
    Ok((t, 0))
}

/// The current time in µs since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> DateRange {
        parse_range(s).expect(s)
    }

    #[test]
    fn precisions() {
        let y = r("2023");
        assert_eq!(y.lo, r("2023-01-01").lo);
        assert_eq!(y.hi + 1, r("2024-01-01").lo);
        let m = r("2023-02");
        assert_eq!(m.hi + 1, r("2023-03-01").lo);
        let d = r("2023-05-01T10:00:00Z");
        assert_eq!(d.hi - d.lo, 999_999);
        assert_eq!(r("2023-05-01T12:00:00+02:00"), d);
        assert_eq!(r("2023-05-01T10:00:00"), d);
        let f = r("2023-05-01T10:00:00.5Z");
        assert_eq!(f.lo - d.lo, 500_000);
        assert_eq!(f.hi - f.lo, 99_999);
        assert_eq!(r("2023-05-01T10:00Z").hi - d.lo, 60_000_000 - 1);
        assert_eq!(r("1970-01-01T00:00:00Z").lo, 0);
    }

    #[test]
    fn invalid() {
        for s in [
            "2023-02-31",
            "2023-13",
            "23",
            "2023-1-01",
            "2023-01-01T25:00:00Z",
            "abc",
            "2023-01-01T10:00:00+0200",
            "2023T10:00",
        ] {
            assert!(parse_range(s).is_err(), "{s}");
        }
    }
}
