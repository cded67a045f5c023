//! Slots from a template (pure), and their creation in the store.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde_json::Value;

use super::template::{parse_template, Template};
use crate::access::Access;
use crate::store::{current, Dialect, Store};
use crate::store::{render_grid_slot as render, AgendaInfo, SlotRow};
use crate::{Error, Result};

/// FHIR ids are at most 64 characters; a slot id adds `-YYYYMMDDHHMM-n` (15) to the
/// Schedule's id, so longer Schedule ids are shortened (see [`slot_id_prefix`]).
const MAX_PREFIX: usize = 64 - 15;

/// More slots than one Schedule can hold over any horizon: the limit of the id searches.
pub(crate) const SEARCH_LIMIT: usize = 1_000_000;

/// The instant a local wall-clock time stands for: the earlier one when the time
/// happens twice (autumn), none when it does not happen (spring gap).
fn instant(tz: &Tz, local: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    tz.from_local_datetime(&local).earliest().map(|t| t.fixed_offset())
}

/// The start of slot ids of a Schedule: its id, or for ids too long to leave room
/// for the slot part, their first 40 characters and a hash of the whole id.
pub fn slot_id_prefix(schedule_id: &str) -> String {
    if schedule_id.len() <= MAX_PREFIX {
        return schedule_id.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = schedule_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
    let head: String = schedule_id.chars().take(40).collect();
    format!("{head}-{hash:08x}")
}

/// A local date and time as the number `YYYYMMDDHHMM`.
pub(crate) fn stamp_of(t: NaiveDateTime) -> i64 {
    let d = t.date();
    ((d.year() as i64 * 100 + d.month() as i64) * 100 + d.day() as i64) * 10_000
        + (t.hour() as i64) * 100
        + t.minute() as i64
}

/// The slots of the template over its horizon from the local date `from`, in time
/// order (see the module documentation of [`crate::agenda`] for the
/// daylight-saving rule).
pub fn generate_rows(t: &Template, from: NaiveDate) -> Vec<SlotRow> {
    let mut seen: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    let mut sessions: Vec<_> = t.sessions.iter().collect();
    sessions.sort_by_key(|s| s.start);
    for date in from.iter_days().take(t.horizon_days as usize) {
        for s in sessions.iter().filter(|s| s.day == date.weekday()) {
            let step = Duration::minutes(s.slot_minutes as i64);
            // Which reserve the n-th slot made in this session belongs to.
            let mut quota = t.reserves.iter().flat_map(|r| std::iter::repeat_n(r, r.per_session as usize));
            let mut local = date.and_time(s.start);
            let end_of_session = date.and_time(s.end);
            while local + step <= end_of_session {
                let (local_start, local_end) = (local, local + step);
                local = local_end;
                let (Some(start), Some(end)) = (instant(&t.time_zone, local_start), instant(&t.time_zone, local_end))
                else {
                    continue;
                };
                if end <= start {
                    continue;
                }
                let stamp = stamp_of(local_start);
                let n = (0..).find(|n| !seen.contains(&(stamp * 10 + n))).unwrap_or_default();
                seen.insert(stamp * 10 + n);
                let start_us = start.timestamp_micros();
                let reserve =
                    quota.next().map(|r| (r.priority.clone(), start_us - r.release_hours as i64 * 3_600_000_000));
                out.push(SlotRow {
                    stamp,
                    n,
                    start_us,
                    end_us: end.timestamp_micros(),
                    service: s.service.clone(),
                    capacity: s.capacity,
                    reserve,
                });
            }
        }
    }
    out
}

/// The Slots of the template over its horizon from the local date `from`, in time
/// order, each with its deterministic id, as [`generate_rows`] and
/// [`crate::store::render_grid_slot`] make them.
pub fn generate_slots(schedule_id: &str, t: &Template, from: NaiveDate, base: &str) -> Vec<Value> {
    let agenda = AgendaInfo {
        schedule_id: schedule_id.to_string(),
        prefix: slot_id_prefix(schedule_id),
        time_zone: t.time_zone,
        base: base.to_string(),
        place: Default::default(),
    };
    generate_rows(t, from).iter().map(|r| render(&agenda, r)).collect()
}

/// What generating an agenda's slots did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateReport {
    /// Slots made now.
    pub created: usize,
    /// Slots the template makes that already existed (kept as they are, whatever
    /// their status; a deleted one stays deleted).
    pub kept: usize,
    /// Slots made by an earlier template, within the horizon, that the template no
    /// longer makes: deleted.
    pub removed: usize,
    /// Such slots kept because they hold an appointment, with the appointment (to
    /// rebook first): `Slot/x holds Appointment/y`.
    pub held: Vec<String>,
    /// Waiting-list Appointments offered one of the agenda's free slots after it.
    pub offered: Vec<String>,
}

/// Generates (or regenerates) the slots of one Schedule, in one transaction (on
/// PostgreSQL the new slots go in a second one, committed just before it): adds
/// the slots its template makes over the horizon from the local date `from` that do
/// not exist yet (new ones go to the compact slot table), keeps the existing ones
/// untouched, and removes the generated slots within the horizon that the template
/// no longer makes, unless they hold an appointment. A Schedule without an agenda
/// template, or not `active`, gets no slots (an empty report). A missing Schedule →
/// `NotFound`; a bad template → `Unprocessable` naming the element.
pub async fn generate_for_schedule(
    store: &Store,
    schedule_id: &str,
    from: NaiveDate,
    base: &str,
) -> Result<GenerateReport> {
    let mut tx = store.begin().await?;
    let (mut report, new) = plan_in(store, &mut tx, schedule_id, from, base).await?;
    match new {
        // New slots on PostgreSQL: COPY, committed just before the agenda's
        // transaction, which keeps the agenda locked until then (see `GridCopy`).
        Some((agenda_id, rows)) if store.dialect() == Dialect::Postgres && !rows.is_empty() => {
            let copy = store.grid_copy(&mut tx, agenda_id, &rows, crate::store::now_micros()).await?;
            report.created = copy.commit().await? as usize;
            tx.commit().await?;
        }
        new => {
            report.created = insert_new(store, &mut tx, new).await?;
            tx.commit().await?;
        }
    }
    if report.created > 0 {
        report.offered = crate::booking::offer_agenda(store, schedule_id).await?;
    }
    tracing::info!(
        schedule = schedule_id,
        created = report.created,
        kept = report.kept,
        removed = report.removed,
        held = report.held.len(),
        "agenda slots generated"
    );
    Ok(report)
}

/// [`generate_for_schedule`] inside the caller's transaction.
pub async fn generate_in(
    store: &Store,
    tx: &mut crate::store::Tx,
    schedule_id: &str,
    from: NaiveDate,
    base: &str,
) -> Result<GenerateReport> {
    let (mut report, new) = plan_in(store, tx, schedule_id, from, base).await?;
    report.created = insert_new(store, tx, new).await?;
    Ok(report)
}

/// The new slots of an agenda, as `plan_in` found them: the grid's agenda id and rows.
type NewRows = Option<(i64, Vec<SlotRow>)>;

async fn insert_new(store: &Store, tx: &mut crate::store::Tx, new: NewRows) -> Result<usize> {
    Ok(match new {
        Some((agenda_id, rows)) => store.grid_insert(tx, agenda_id, &rows, crate::store::now_micros()).await? as usize,
        None => 0,
    })
}

/// Everything of a generation but writing the new slots: the report (without
/// `created`) and the slots to add.
async fn plan_in(
    store: &Store,
    tx: &mut crate::store::Tx,
    schedule_id: &str,
    from: NaiveDate,
    base: &str,
) -> Result<(GenerateReport, NewRows)> {
    let (sched_pk, schedule) = read_schedule_row(store, tx, schedule_id).await?;
    let Some(template) = parse_template(&schedule, base)? else {
        return Ok((GenerateReport::default(), None));
    };
    if !super::place::Agenda::of(&schedule)?.active {
        return Ok((GenerateReport::default(), None));
    }
    let place = read_place(store, tx, &schedule).await?;
    let agenda = AgendaInfo {
        schedule_id: schedule_id.to_string(),
        prefix: slot_id_prefix(schedule_id),
        time_zone: template.time_zone,
        base: base.to_string(),
        place,
    };
    let rows = generate_rows(&template, from);
    let agenda_id = store.grid_agenda(tx, sched_pk, &agenda).await?;
    let wanted: HashSet<(i64, i64)> = rows.iter().map(|r| (r.stamp, r.n)).collect();
    let mut existing: HashSet<(i64, i64)> = store.grid_keys(tx, agenda_id).await?.into_iter().collect();
    // Slots that left the grid (changed, deleted) or were made by agenda sync.
    let moved = store.slot_ids_with_prefix(tx, &agenda.prefix).await?;
    for (id, _) in &moved {
        if let Some((_, stamp, n)) = cupola_search::split_slot_id(id) {
            existing.insert((stamp, n));
        }
    }
    let window = (
        stamp_of(from.and_time(NaiveTime::MIN)),
        stamp_of((from + Duration::days(template.horizon_days as i64)).and_time(NaiveTime::MIN)),
    );
    let mut report = GenerateReport { kept: wanted.intersection(&existing).count(), ..Default::default() };
    let gone: Vec<String> = existing
        .iter()
        .filter(|(stamp, n)| *stamp >= window.0 && *stamp < window.1 && !wanted.contains(&(*stamp, *n)))
        .map(|(stamp, n)| cupola_search::slot_id(&agenda.prefix, *stamp, *n))
        .filter(|id| !moved.iter().any(|(m, deleted)| m == id && *deleted))
        .collect();
    let gateway = Access::gateway();
    for id in gone {
        match store.delete_in(tx, &gateway, "Slot", &id).await {
            Ok(_) => report.removed += 1,
            Err(Error::Conflict(why)) => report.held.push(why),
            Err(e) => return Err(e),
        }
    }
    let new: Vec<SlotRow> = rows.into_iter().filter(|r| !existing.contains(&(r.stamp, r.n))).collect();
    Ok((report, Some((agenda_id, new))))
}

/// The place of a Schedule, from its actors as stored.
async fn read_place(store: &Store, tx: &mut crate::store::Tx, schedule: &Value) -> Result<super::Place> {
    let mut found = std::collections::HashMap::new();
    // Two rounds: the actors, then the Location a HealthcareService names.
    for _ in 0..2 {
        let place = super::place_of(schedule, &|r: &str| found.get(r).cloned());
        let mut wanted = super::place::Agenda::of(schedule)?.actors;
        wanted.extend(place.location.map(|l| format!("Location/{l}")));
        for r in wanted {
            if found.contains_key(&r) {
                continue;
            }
            if let Some((t, id)) = r.split_once('/') {
                let body = current(tx, store.dialect(), t, id, false).await?.and_then(|s| s.body);
                if let Some(v) = body.and_then(|b| serde_json::from_str::<Value>(&b).ok()) {
                    found.insert(r, v);
                }
            }
        }
    }
    Ok(super::place_of(schedule, &|r: &str| found.get(r).cloned()))
}

/// The current Schedule, read in the transaction.
pub(crate) async fn read_schedule(store: &Store, tx: &mut crate::store::Tx, id: &str) -> Result<Value> {
    Ok(read_schedule_row(store, tx, id).await?.1)
}

/// The current Schedule and its pk.
async fn read_schedule_row(store: &Store, tx: &mut crate::store::Tx, id: &str) -> Result<(i64, Value)> {
    let found = current(tx, store.dialect(), "Schedule", id, false).await?.filter(|s| !s.deleted);
    let (pk, body) = found
        .and_then(|s| Some((s.pk, s.body?)))
        .ok_or_else(|| Error::NotFound(format!("Schedule/{id} does not exist")))?;
    Ok((pk, serde_json::from_str(&body).map_err(anyhow::Error::from)?))
}
