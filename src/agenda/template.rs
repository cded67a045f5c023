//! Parsing and checking the `agenda-template` extension of a Schedule.

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde_json::Value;

use crate::fhir::names;

/// The time zone of a template that names none.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Rome";
/// The planning horizon of a template that names none, in days.
pub const DEFAULT_HORIZON_DAYS: u32 = 56;
/// The longest planning horizon a template may ask for, in days.
pub const MAX_HORIZON_DAYS: u32 = 400;
/// The longest service Coding (as JSON) a template may give: generated slots' services
/// are told apart by that text, in a unique index (PostgreSQL's entries stop at ~2.7 kB).
const MAX_SERVICE_BYTES: usize = 2000;

/// A Schedule's agenda template, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The zone the sessions' wall-clock times are in.
    pub time_zone: Tz,
    /// How many days, from the first day generated, slots are made for.
    pub horizon_days: u32,
    /// The weekly sessions, in the order written.
    pub sessions: Vec<Session>,
    /// The quotas reserved for urgent classes, in the order written.
    pub reserves: Vec<Reserve>,
}

/// One weekly session: a weekday's opening hours cut into slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub day: Weekday,
    /// Local wall-clock start of the first slot.
    pub start: NaiveTime,
    /// Local wall-clock time no slot runs past.
    pub end: NaiveTime,
    pub slot_minutes: u32,
    /// How many appointments each slot holds (more than one: overbooking allowed).
    pub capacity: u32,
    /// The catalog Coding the session's slots serve.
    pub service: Value,
    /// Where the session is written (`Schedule.extension[i].extension[j]`).
    pub element: String,
}

impl Session {
    /// How many slots fit between start and end on an ordinary day.
    pub fn slot_count(&self) -> u32 {
        let minutes = (self.end - self.start).num_minutes().max(0) as u32;
        minutes / self.slot_minutes.max(1)
    }
}

/// A quota of each session's earliest slots kept for one priority class until a
/// while before the slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserve {
    /// `U` or `B`.
    pub priority: String,
    /// How many slots of each session.
    pub per_session: u32,
    /// Hours before the slot's start at which it opens to every class.
    pub release_hours: u32,
}

/// A template that cannot be used: where (`element`, a FHIRPath-style path into the
/// Schedule) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{element}: {message}")]
pub struct TemplateError {
    pub element: String,
    pub message: String,
}

impl From<TemplateError> for crate::Error {
    fn from(e: TemplateError) -> crate::Error {
        crate::Error::Unprocessable(vec![crate::error::Issue::error("value", Some(e.element), e.message)])
    }
}

fn err(element: &str, message: impl Into<String>) -> TemplateError {
    TemplateError { element: element.to_string(), message: message.into() }
}

/// The Schedule's agenda template; `None` when it has none.
pub fn parse_template(schedule: &Value, base: &str) -> Result<Option<Template>, TemplateError> {
    let Some((index, ext)) = template_extension(schedule, base)? else {
        return Ok(None);
    };
    let at = format!("Schedule.extension[{index}]");
    let time_zone: Tz = DEFAULT_TIME_ZONE.parse().map_err(|_| err(&at, "the default time zone is unknown"))?;
    let mut template =
        Template { time_zone, horizon_days: DEFAULT_HORIZON_DAYS, sessions: Vec::new(), reserves: Vec::new() };
    let default_service = schedule.pointer("/serviceType/0/coding/0").cloned();
    for (j, sub) in parts(ext, &at)? {
        let here = format!("{at}.extension[{j}]");
        template_part(&mut template, sub, &here, default_service.as_ref())?;
    }
    check_overlaps(&template.sessions)?;
    let reserved: u32 = template.reserves.iter().map(|r| r.per_session).sum();
    for s in &template.sessions {
        if reserved > s.slot_count() {
            return Err(err(
                &s.element,
                format!(
                    "the reserves keep {reserved} slots of each session, but this session has only {}",
                    s.slot_count()
                ),
            ));
        }
    }
    Ok(Some(template))
}

/// The Schedule's agenda-template extension with its index; `None` without one,
/// an error when there are two.
fn template_extension<'s>(schedule: &'s Value, base: &str) -> Result<Option<(usize, &'s Value)>, TemplateError> {
    let url = names::structure(base, "agenda-template");
    let Some(exts) = schedule.get("extension").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut found = exts.iter().enumerate().filter(|(_, e)| e.get("url").and_then(Value::as_str) == Some(&url));
    let Some((index, ext)) = found.next() else {
        return Ok(None);
    };
    if let Some((other, _)) = found.next() {
        return Err(err(
            &format!("Schedule.extension[{other}]"),
            format!("a Schedule has one agenda-template; another one is Schedule.extension[{index}]"),
        ));
    }
    Ok(Some((index, ext)))
}

/// One part of the template (`sub`, written at `here`) read into `template`.
fn template_part(
    template: &mut Template,
    sub: &Value,
    here: &str,
    default_service: Option<&Value>,
) -> Result<(), TemplateError> {
    match sub.get("url").and_then(Value::as_str).unwrap_or("") {
        "timeZone" => {
            let name = code(sub, "valueCode", here, "timeZone")?;
            template.time_zone = name.parse().map_err(|_| {
                err(here, format!("timeZone {name:?} is not an IANA time zone (such as \"Europe/Rome\")"))
            })?;
        }
        "horizonDays" => {
            let n = integer(sub, here, "horizonDays")?;
            if !(1..=MAX_HORIZON_DAYS as i64).contains(&n) {
                return Err(err(here, format!("horizonDays is {n}; it must be between 1 and {MAX_HORIZON_DAYS}")));
            }
            template.horizon_days = n as u32;
        }
        "session" => template.sessions.push(session(sub, here, default_service)?),
        "reserve" => {
            let r = reserve(sub, here)?;
            if template.reserves.iter().any(|o| o.priority == r.priority) {
                return Err(err(here, format!("a second reserve for class {}: give one per class", r.priority)));
            }
            template.reserves.push(r);
        }
        other => {
            return Err(err(
                here,
                format!("unknown agenda-template part {other:?}: expected timeZone, horizonDays, session or reserve"),
            ))
        }
    }
    Ok(())
}

/// The sub-extensions of a complex extension, with their indexes.
fn parts<'a>(ext: &'a Value, at: &str) -> Result<impl Iterator<Item = (usize, &'a Value)>, TemplateError> {
    match ext.get("extension").and_then(Value::as_array) {
        Some(subs) => Ok(subs.iter().enumerate()),
        None => Err(err(at, "the extension has no sub-extensions (extension[])")),
    }
}

fn code<'a>(sub: &'a Value, key: &str, at: &str, what: &str) -> Result<&'a str, TemplateError> {
    sub.get(key).and_then(Value::as_str).ok_or_else(|| err(at, format!("{what} needs a {key}")))
}

fn integer(sub: &Value, at: &str, what: &str) -> Result<i64, TemplateError> {
    sub.get("valueInteger").and_then(Value::as_i64).ok_or_else(|| err(at, format!("{what} needs a valueInteger")))
}

fn time(sub: &Value, at: &str, what: &str) -> Result<NaiveTime, TemplateError> {
    let text = code(sub, "valueTime", at, what)?;
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S%.f"))
        .map_err(|_| err(at, format!("{what} {text:?} is not a time (hh:mm:ss)")))
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// A session's parts as read so far.
struct SessionParts {
    day: Option<Weekday>,
    start: Option<NaiveTime>,
    end: Option<NaiveTime>,
    slot_minutes: Option<u32>,
    capacity: u32,
    service: Option<Value>,
}

fn session(ext: &Value, at: &str, default_service: Option<&Value>) -> Result<Session, TemplateError> {
    let mut p = SessionParts { day: None, start: None, end: None, slot_minutes: None, capacity: 1, service: None };
    for (k, sub) in parts(ext, at)? {
        session_part(&mut p, sub, &format!("{at}.extension[{k}]"))?;
    }
    let SessionParts { day, start, end, slot_minutes, capacity, service } = p;
    let missing = |what: &str| err(at, format!("the session has no {what}"));
    let day = day.ok_or_else(|| missing("day"))?;
    let start = start.ok_or_else(|| missing("start"))?;
    let end = end.ok_or_else(|| missing("end"))?;
    let slot_minutes = slot_minutes.ok_or_else(|| missing("slotMinutes"))?;
    if end <= start {
        return Err(err(at, format!("the session ends ({end}) at or before it starts ({start})")));
    }
    let length = (end - start).num_minutes();
    if (slot_minutes as i64) > length {
        return Err(err(
            at,
            format!("slotMinutes {slot_minutes} does not fit once in the session's {length} minutes ({start}–{end})"),
        ));
    }
    let service = match service.or_else(|| default_service.cloned()) {
        Some(s) => s,
        None => {
            return Err(err(at, "the session has no service, and the Schedule no serviceType.coding to default to"))
        }
    };
    fits_the_grid(&service, at)?;
    Ok(Session { day, start, end, slot_minutes, capacity, service, element: at.to_string() })
}

/// One part of a session (`sub`, written at `here`) read into `p`.
fn session_part(p: &mut SessionParts, sub: &Value, here: &str) -> Result<(), TemplateError> {
    match sub.get("url").and_then(Value::as_str).unwrap_or("") {
        "day" => {
            let text = code(sub, "valueCode", here, "day")?;
            p.day = Some(weekday(text).ok_or_else(|| {
                err(here, format!("unknown day {text:?}: expected mon, tue, wed, thu, fri, sat or sun"))
            })?);
        }
        "start" => p.start = Some(time(sub, here, "start")?),
        "end" => p.end = Some(time(sub, here, "end")?),
        "slotMinutes" => {
            let n = integer(sub, here, "slotMinutes")?;
            if n < 1 {
                return Err(err(here, format!("slotMinutes is {n}; a slot lasts at least 1 minute")));
            }
            p.slot_minutes = Some(n.min(u32::MAX as i64) as u32);
        }
        "capacity" => {
            let n = integer(sub, here, "capacity")?;
            if n < 1 {
                return Err(err(here, format!("capacity is {n}; a slot holds at least 1 appointment")));
            }
            p.capacity = n.min(u32::MAX as i64) as u32;
        }
        "service" => {
            let c = sub.get("valueCoding").filter(|c| c.get("code").and_then(Value::as_str).is_some());
            p.service = Some(c.cloned().ok_or_else(|| err(here, "service needs a valueCoding with a code"))?);
        }
        other => {
            return Err(err(
                here,
                format!("unknown session part {other:?}: expected day, start, end, slotMinutes, capacity or service"),
            ))
        }
    }
    Ok(())
}

/// Generated slots keep their service's Coding, system and code in indexed columns
/// whole: longer ones than those columns hold could be no catalog code.
fn fits_the_grid(service: &Value, at: &str) -> Result<(), TemplateError> {
    for key in ["system", "code"] {
        let n = service.get(key).and_then(Value::as_str).map_or(0, |s| s.chars().count());
        if n > cupola_search::INDEXED_CHARS {
            let most = cupola_search::INDEXED_CHARS;
            return Err(err(at, format!("the service's {key} is {n} characters long; a catalog's has at most {most}")));
        }
    }
    let n = service.to_string().len();
    if n > MAX_SERVICE_BYTES {
        return Err(err(
            at,
            format!("the service Coding is {n} bytes long; a catalog's has at most {MAX_SERVICE_BYTES}"),
        ));
    }
    Ok(())
}

fn reserve(ext: &Value, at: &str) -> Result<Reserve, TemplateError> {
    let (mut priority, mut per_session, mut release_hours) = (None, None, None);
    for (k, sub) in parts(ext, at)? {
        let here = format!("{at}.extension[{k}]");
        match sub.get("url").and_then(Value::as_str).unwrap_or("") {
            "priority" => {
                let text = code(sub, "valueCode", &here, "priority")?;
                if text != "U" && text != "B" {
                    return Err(err(&here, format!("priority {text:?}: only classes U and B have reserves")));
                }
                priority = Some(text.to_string());
            }
            "perSession" => {
                let n = integer(sub, &here, "perSession")?;
                if n < 1 {
                    return Err(err(&here, format!("perSession is {n}; a reserve keeps at least 1 slot")));
                }
                per_session = Some(n.min(u32::MAX as i64) as u32);
            }
            "releaseHours" => {
                let n = integer(sub, &here, "releaseHours")?;
                if n < 0 {
                    return Err(err(&here, format!("releaseHours is {n}; it cannot be negative")));
                }
                release_hours = Some(n.min(u32::MAX as i64) as u32);
            }
            other => {
                return Err(err(
                    &here,
                    format!("unknown reserve part {other:?}: expected priority, perSession or releaseHours"),
                ))
            }
        }
    }
    let missing = |what: &str| err(at, format!("the reserve has no {what}"));
    Ok(Reserve {
        priority: priority.ok_or_else(|| missing("priority"))?,
        per_session: per_session.ok_or_else(|| missing("perSession"))?,
        release_hours: release_hours.ok_or_else(|| missing("releaseHours"))?,
    })
}

/// Two sessions of the same weekday sharing any time → an error naming both.
fn check_overlaps(sessions: &[Session]) -> Result<(), TemplateError> {
    for (i, a) in sessions.iter().enumerate() {
        for b in &sessions[i + 1..] {
            if a.day == b.day && a.start < b.end && b.start < a.end {
                return Err(err(
                    &b.element,
                    format!(
                        "the session {}–{} overlaps {} ({}–{}) on the same day",
                        b.start, b.end, a.element, a.start, a.end
                    ),
                ));
            }
        }
    }
    Ok(())
}
