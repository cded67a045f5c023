//! The one parser of FHIR `date`, `dateTime`, `instant` and `time` text, checked
//! against the real calendar (the schema's patterns accept `2023-02-31`). [`parse`]
//! reads what any of them may hold; two readings of its result follow:
//! [`check`], the validator's (what each primitive type must give: seconds and a
//! zone for a dateTime with a time), and [`parse_range`], search's (every instant a
//! value could mean at its precision, lenient on what a search value may leave out).

use chrono::NaiveDate;

/// A date as written: a year, maybe its month and day, maybe a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirDate<'a> {
    pub year: i32,
    pub month: Option<u32>,
    /// Only with a month.
    pub day: Option<u32>,
    /// Only with a full date.
    pub time: Option<Clock<'a>>,
}

/// A time of day as written; the seconds, their fraction and the zone may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock<'a> {
    pub hour: u32,
    pub minute: u32,
    /// 00-60 (60: a leap second).
    pub second: Option<u32>,
    /// The digits after the seconds' `.`, at least one.
    pub fraction: Option<&'a str>,
    /// The offset from UTC in minutes (`Z` is 0), within ±14:59, if given.
    pub offset_minutes: Option<i32>,
}

/// Reads `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh:mm]`;
/// a day that is not in the calendar, an hour, minute or second out of range, or an
/// offset beyond ±14:59 is an error naming what is wrong.
pub fn parse(value: &str) -> Result<FhirDate<'_>, String> {
    let (date, time) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let (year, month, day) = calendar_date(date)?;
    let time = match time {
        None => None,
        Some(_) if day.is_none() => return Err("a time needs a full date YYYY-MM-DD before it".into()),
        Some(t) => Some(clock_with_zone(t)?),
    };
    Ok(FhirDate { year, month, day, time })
}

fn number(s: &str, digits: usize, what: &str) -> Result<u32, String> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} must have {digits} digits"));
    }
    s.parse().map_err(|_| format!("the {what} is not a number"))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, in the calendar.
fn calendar_date(value: &str) -> Result<(i32, Option<u32>, Option<u32>), String> {
    let mut parts = value.split('-');
    let year = number(parts.next().unwrap_or_default(), 4, "year")?;
    if year == 0 {
        return Err("year 0000 does not exist".into());
    }
    // Four digits: always an i32.
    let year = year as i32;
    let (month, day) = (parts.next(), parts.next());
    if parts.next().is_some() {
        return Err("expected YYYY, YYYY-MM or YYYY-MM-DD".into());
    }
    let Some(month) = month else { return Ok((year, None, None)) };
    let month = number(month, 2, "month")?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} does not exist (01-12)"));
    }
    let Some(day) = day else { return Ok((year, Some(month), None)) };
    let day = number(day, 2, "day")?;
    if NaiveDate::from_ymd_opt(year, month, day).is_none() {
        let days = days_in_month(year, month);
        return Err(format!("day {day:02} does not exist: {year:04}-{month:02} has {days} days"));
    }
    Ok((year, Some(month), Some(day)))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    (28..=31).rev().find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some()).unwrap_or(28)
}

/// A time of day followed by `Z`, `±hh:mm` or nothing.
fn clock_with_zone(value: &str) -> Result<Clock<'_>, String> {
    let (time, offset) = if let Some(t) = value.strip_suffix('Z') {
        (t, Some(0))
    } else if let Some(i) = value.rfind(['+', '-']) {
        let sign = if value[i..].starts_with('-') { -1 } else { 1 };
        (&value[..i], Some(sign * zone(&value[i + 1..])?))
    } else {
        (value, None)
    };
    Ok(Clock { offset_minutes: offset, ..clock(time)? })
}

/// `hh:mm` of a zone, in minutes; hours up to 14, minutes up to 59.
fn zone(text: &str) -> Result<i32, String> {
    let (h, m) = text.split_once(':').ok_or("the time zone must be ±hh:mm")?;
    let (h, m) = (number(h, 2, "time-zone hour")?, number(m, 2, "time-zone minute")?);
    if h > 14 || m > 59 {
        return Err(format!("time zone offset {text} is out of range (±14:00)"));
    }
    // At most 14 * 60 + 59: always an i32.
    Ok((h * 60 + m) as i32)
}

/// `hh:mm[:ss[.fff]]`: hours 00-23, minutes 00-59, seconds 00-60 (leap second).
fn clock(value: &str) -> Result<Clock<'_>, String> {
    let (main, fraction) = match value.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (value, None),
    };
    let mut parts = main.split(':');
    let (Some(h), Some(m), s) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected a time hh:mm:ss".into());
    };
    if parts.next().is_some() || (fraction.is_some() && s.is_none()) {
        return Err("expected a time hh:mm:ss".into());
    }
    let (hour, minute) = (number(h, 2, "hour")?, number(m, 2, "minute")?);
    let second = s.map(|s| number(s, 2, "second")).transpose()?;
    if hour > 23 {
        return Err(format!("hour {hour:02} does not exist (00-23)"));
    }
    if minute > 59 {
        return Err(format!("minute {minute:02} does not exist (00-59)"));
    }
    if let Some(s) = second.filter(|s| *s > 60) {
        return Err(format!("second {s:02} does not exist (00-59)"));
    }
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the fraction of a second must be digits".into());
    }
    Ok(Clock { hour, minute, second, fraction, offset_minutes: None })
}

/// `Err(reason)` when `value` is not a valid FHIR value of primitive type `ty`
/// (`date`, `dateTime`, `instant`, `time`); other types always pass.
pub fn check(ty: &str, value: &str) -> Result<(), String> {
    match ty {
        "date" => match parse(value)?.time {
            None => Ok(()),
            Some(_) => Err("a date has no time of day: expected YYYY, YYYY-MM or YYYY-MM-DD".into()),
        },
        "dateTime" => parse(value)?.time.map_or(Ok(()), full_clock),
        "instant" => match parse(value)?.time {
            None => {
                Err("an instant needs a full date and time with seconds and a time zone, e.g. 2023-05-17T09:30:00Z"
                    .into())
            }
            Some(c) => full_clock(c),
        },
        "time" => match clock(value)?.second {
            Some(_) => Ok(()),
            None => Err("expected a time hh:mm:ss".into()),
        },
        _ => Ok(()),
    }
}

/// What a stored dateTime or instant's time must give: seconds and a zone up to ±14:00.
fn full_clock(c: Clock) -> Result<(), String> {
    if c.second.is_none() {
        return Err("expected a time hh:mm:ss".into());
    }
    match c.offset_minutes {
        None => Err("a time needs a time zone: Z or ±hh:mm".into()),
        Some(m) if m.abs() > 14 * 60 => {
            Err(format!("time zone offset {:02}:{:02} is out of range (±14:00)", m.abs() / 60, m.abs() % 60))
        }
        Some(_) => Ok(()),
    }
}

/// An inclusive range `[lo, hi]` of µs since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub lo: i64,
    pub hi: i64,
}

const US_PER_SEC: i64 = 1_000_000;

fn day_start(y: i32, m: u32, d: u32) -> Result<i64, String> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_micros())
        .ok_or_else(|| format!("{y:04}-{m:02}-{d:02} is not a valid date"))
}

/// A FHIR date / dateTime / instant (or a search value of one) as the range of
/// instants it denotes at its precision: `2023` is the whole year, `2023-05-01T10:00`
/// a whole minute. A time without an offset is taken as UTC; a leap second (which
/// has no instant of its own) is an error.
pub fn parse_range(s: &str) -> Result<DateRange, String> {
    let date = parse(s)?;
    let (lo, hi) = calendar_range(&date)?;
    let Some(c) = date.time else {
        return Ok(DateRange { lo, hi });
    };
    let mut start = lo + (i64::from(c.hour) * 3600 + i64::from(c.minute) * 60) * US_PER_SEC;
    let width = match c.second {
        None => 60 * US_PER_SEC,
        Some(60) => return Err("second 60 (a leap second) is not an instant that can be searched".into()),
        Some(sec) => {
            start += i64::from(sec) * US_PER_SEC;
            match c.fraction {
                None => US_PER_SEC,
                Some(f) => {
                    // Microseconds are the finest the index keeps.
                    let used = &f[..f.len().min(6)];
                    let scale = 10_i64.pow(6 - used.len() as u32);
                    start += used.parse::<i64>().map_err(|e| e.to_string())? * scale;
                    scale
                }
            }
        }
    };
    let lo = start - i64::from(c.offset_minutes.unwrap_or(0)) * 60 * US_PER_SEC;
    Ok(DateRange { lo, hi: lo + width - 1 })
}

/// The year, month or day of `date`, in µs.
fn calendar_range(date: &FhirDate) -> Result<(i64, i64), String> {
    let year = date.year;
    Ok(match (date.month, date.day) {
        (None, _) => (day_start(year, 1, 1)?, day_start(year + 1, 1, 1)? - 1),
        (Some(m), None) => {
            let (ny, nm) = if m == 12 { (year + 1, 1) } else { (year, m + 1) };
            (day_start(year, m, 1)?, day_start(ny, nm, 1)? - 1)
        }
        (Some(m), Some(d)) => {
            let start = day_start(year, m, d)?;
            (start, start + 86_400 * US_PER_SEC - 1)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["2023", "2023-05", "2023-05-17", "2024-02-29", "1905-08-23"] {
            assert_eq!(check("date", ok), Ok(()), "{ok}");
        }
        for bad in ["2023-02-31", "2023-13-01", "2023-00", "2023-5", "0000", "23", "2023-05-17T10:00:00Z", "2023-02-29"]
        {
            assert!(check("date", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_times_and_instants() {
        for ok in [
            "2023",
            "2023-05",
            "2023-05-17",
            "2023-05-17T09:30:00Z",
            "2023-05-17T23:59:60.123+02:00",
            "2015-02-07T13:28:17-05:00",
        ] {
            assert_eq!(check("dateTime", ok), Ok(()), "{ok}");
        }
        for bad in [
            "2023-01-01T25:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-02-31T10:00:00Z",
            "2023-01-01T10:00:00",
            "2023-01-01T10:00Z",
            "2023-01-01T10:00:00+15:00",
        ] {
            assert!(check("dateTime", bad).is_err(), "{bad}");
        }
        assert_eq!(check("instant", "2023-01-01T10:00:00.5Z"), Ok(()));
        for bad in ["2023-01-01", "2023", "2023-01-01T10:00:00", "2023-01-01T25:00:00Z"] {
            assert!(check("instant", bad).is_err(), "{bad}");
        }
        assert_eq!(check("time", "09:30:00"), Ok(()));
        assert!(check("time", "24:00:00").is_err());
        assert!(check("time", "09:30").is_err());
    }

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

    /// What the two readings of one parse differ on: search takes a value without
    /// seconds or zone, or with a ±14:30 offset, that a stored dateTime may not hold;
    /// a stored dateTime may hold a leap second, which no search range can.
    #[test]
    fn the_validator_and_search_read_the_same_parse_their_own_way() {
        for s in ["2023-05-01T10:00", "2023-05-01T10:00:00", "2023-05-01T10:00:00+14:30"] {
            assert!(parse_range(s).is_ok(), "{s}");
            assert!(check("dateTime", s).is_err(), "{s}");
        }
        assert!(check("dateTime", "2023-05-17T23:59:60Z").is_ok());
        assert!(parse_range("2023-05-17T23:59:60Z").is_err());
        assert_eq!(parse_range("2023-05-01T10:00:00.1234567Z"), parse_range("2023-05-01T10:00:00.123456Z"));
    }
}
