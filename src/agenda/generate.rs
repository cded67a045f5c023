//! Slots from a template (pure), and their creation in the store.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::template::{parse_template, Template};
use crate::access::Access;
use crate::fhir::names;
use crate::store::{current, Store};
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

/// An instant as FHIR writes it, with its offset: `2026-03-30T08:00:00+02:00`.
pub(crate) fn fhir_instant(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
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

/// The Slots of the template over its horizon from the local date `from`, in time
/// order, each with its deterministic id (see the module documentation of
/// [`crate::agenda`] for the daylight-saving rule).
pub fn generate_slots(schedule_id: &str, t: &Template, from: NaiveDate, base: &str) -> Vec<Value> {
    let prefix = slot_id_prefix(schedule_id);
    let mut ids: HashSet<String> = HashSet::new();
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
                let stamp = local_start.format("%Y%m%d%H%M").to_string();
                let id =
                    (0..).map(|n| format!("{prefix}-{stamp}-{n}")).find(|id| !ids.contains(id)).unwrap_or_default();
                ids.insert(id.clone());
                let mut extension = vec![json!({
                    "url": names::structure(base, "slot-capacity"),
                    "valueInteger": s.capacity,
                })];
                if let Some(r) = quota.next() {
                    let release = (start - Duration::hours(r.release_hours as i64)).with_timezone(&t.time_zone);
                    extension
                        .push(json!({"url": names::structure(base, "slot-reserved-for"), "valueCode": r.priority}));
                    extension.push(json!({
                        "url": names::structure(base, "slot-release"),
                        "valueDateTime": fhir_instant(&release.fixed_offset()),
                    }));
                }
                out.push(json!({
                    "resourceType": "Slot",
                    "id": id,
                    "extension": extension,
                    "serviceType": [{"coding": [s.service.clone()]}],
                    "schedule": {"reference": format!("Schedule/{schedule_id}")},
                    "status": "free",
                    "start": fhir_instant(&start),
                    "end": fhir_instant(&end),
                }));
            }
        }
    }
    out
}

/// Generates (or regenerates) the slots of one Schedule in the store: creates
/// missing ones, leaves existing ones untouched (a slot that already exists, or
/// existed and was deleted, keeps its status), in one transaction. Returns
/// (created, kept). A Schedule without an agenda template, or not `active`, gets no
/// slots: `(0, 0)`. A missing Schedule → `NotFound`; a bad template → `Unprocessable`
/// naming the element.
pub async fn generate_for_schedule(
    store: &Store,
    schedule_id: &str,
    from: NaiveDate,
    base: &str,
) -> Result<(usize, usize)> {
    let mut tx = store.begin().await?;
    let schedule = read_schedule(store, &mut tx, schedule_id).await?;
    let Some(template) = parse_template(&schedule, base)? else {
        return Ok((0, 0));
    };
    if schedule.get("active") == Some(&Value::Bool(false)) {
        return Ok((0, 0));
    }
    let mut slots = generate_slots(schedule_id, &template, from, base);
    let place = read_place(store, &mut tx, &schedule).await?;
    super::place::place_slots(&mut slots, &place, base);
    let total = slots.len();
    let query = [("schedule".to_string(), format!("Schedule/{schedule_id}"))];
    let existing: HashSet<String> =
        store.search_ids_in(&mut tx, &Access::gateway(), "Slot", &query, SEARCH_LIMIT).await?.into_iter().collect();
    let missing: Vec<(String, Value)> = slots
        .into_iter()
        .filter_map(|s| {
            let id = s.get("id").and_then(Value::as_str)?.to_string();
            (!existing.contains(&id)).then_some((id, s))
        })
        .collect();
    // Ids taken by deleted slots (or by another generation running at once) are skipped here.
    let created = store.insert_many_with_ids(&mut tx, "Slot", missing).await?.len();
    tx.commit().await?;
    tracing::info!(schedule = schedule_id, created, kept = total - created, "agenda slots generated");
    Ok((created, total - created))
}

/// The place of a Schedule, from its actors as stored.
async fn read_place(store: &Store, tx: &mut crate::store::Tx, schedule: &Value) -> Result<super::Place> {
    let mut found = std::collections::HashMap::new();
    // Two rounds: the actors, then the Location a HealthcareService names.
    for _ in 0..2 {
        let place = super::place_of(schedule, &|r: &str| found.get(r).cloned());
        let mut wanted: Vec<String> = schedule
            .get("actor")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("reference").and_then(Value::as_str).map(str::to_string))
            .collect();
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
    let found = current(tx, store.dialect(), "Schedule", id, false).await?;
    let body = found.and_then(|s| s.body).ok_or_else(|| Error::NotFound(format!("Schedule/{id} does not exist")))?;
    Ok(serde_json::from_str(&body).map_err(anyhow::Error::from)?)
}
