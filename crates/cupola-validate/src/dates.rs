//! Real-calendar checks for `date`, `dateTime`, `instant` and `time` values
//! (the schema's patterns accept `2023-02-31`).

use chrono::NaiveDate;

/// `Err(reason)` when `value` is not a valid FHIR value of primitive type `ty`
/// (`date`, `dateTime`, `instant`, `time`); other types always pass.
pub(crate) fn check(ty: &str, value: &str) -> Result<(), String> {
    match ty {
        "date" => date_part(value, true),
        "dateTime" => match value.split_once('T') {
            None => date_part(value, true),
            Some((date, time)) => {
                full_date(date)?;
                time_with_zone(time)
            }
        },
        "instant" => match value.split_once('T') {
            None => {
                Err("an instant needs a full date and time with seconds and a time zone, e.g. 2023-05-17T09:30:00Z"
                    .into())
            }
            Some((date, time)) => {
                full_date(date)?;
                time_with_zone(time)
            }
        },
        "time" => time_of_day(value),
        _ => Ok(()),
    }
}

fn number(s: &str, digits: usize, what: &str) -> Result<u32, String> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} must have {digits} digits"));
    }
    s.parse().map_err(|_| format!("the {what} is not a number"))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (partial forms only when `partial`).
fn date_part(value: &str, partial: bool) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() > 3 || (!partial && parts.len() != 3) {
        return Err("expected YYYY, YYYY-MM or YYYY-MM-DD".into());
    }
    let year = number(parts[0], 4, "year")?;
    if year == 0 {
        return Err("year 0000 does not exist".into());
    }
    let Some(month) = parts.get(1) else {
        return Ok(());
    };
    let month = number(month, 2, "month")?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} does not exist (01-12)"));
    }
    let Some(day) = parts.get(2) else {
        return Ok(());
    };
    let day = number(day, 2, "day")?;
    if NaiveDate::from_ymd_opt(year as i32, month, day).is_none() {
        let days = days_in_month(year as i32, month);
        return Err(format!("day {day:02} does not exist: {year:04}-{month:02} has {days} days"));
    }
    Ok(())
}

fn full_date(value: &str) -> Result<(), String> {
    date_part(value, false)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    (28..=31).rev().find(|d| NaiveDate::from_ymd_opt(year, month, *d).is_some()).unwrap_or(28)
}

/// `hh:mm:ss(.fff)` followed by `Z` or `±hh:mm`.
fn time_with_zone(value: &str) -> Result<(), String> {
    let (time, zone) = if let Some(t) = value.strip_suffix('Z') {
        (t, None)
    } else if let Some(i) = value.rfind(['+', '-']) {
        (&value[..i], Some(&value[i + 1..]))
    } else {
        return Err("a time needs a time zone: Z or ±hh:mm".into());
    };
    time_of_day(time)?;
    if let Some(zone) = zone {
        let (h, m) = zone.split_once(':').ok_or("the time zone must be ±hh:mm")?;
        let h = number(h, 2, "time-zone hour")?;
        let m = number(m, 2, "time-zone minute")?;
        if h > 14 || m > 59 || (h == 14 && m > 0) {
            return Err(format!("time zone offset {zone} is out of range (±14:00)"));
        }
    }
    Ok(())
}

/// `hh:mm:ss(.fff)`, hours 00-23, minutes 00-59, seconds 00-60 (leap second).
fn time_of_day(value: &str) -> Result<(), String> {
    let (main, fraction) = match value.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (value, None),
    };
    let parts: Vec<&str> = main.split(':').collect();
    if parts.len() != 3 {
        return Err("expected a time hh:mm:ss".into());
    }
    let h = number(parts[0], 2, "hour")?;
    let m = number(parts[1], 2, "minute")?;
    let s = number(parts[2], 2, "second")?;
    if h > 23 {
        return Err(format!("hour {h:02} does not exist (00-23)"));
    }
    if m > 59 {
        return Err(format!("minute {m:02} does not exist (00-59)"));
    }
    if s > 60 {
        return Err(format!("second {s:02} does not exist (00-59)"));
    }
    if let Some(f) = fraction {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the fraction of a second must be digits".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

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
}
