//! Closures: a holiday, an absence or a broken device takes a stretch of an agenda
//! out of use. Its slots become `busy-unavailable`; the appointments already on them
//! are reported for rebooking, never changed or dropped here.

use chrono::{DateTime, Duration, FixedOffset};
use serde_json::Value;

use super::generate::{read_schedule, SEARCH_LIMIT};
use crate::access::Access;
use crate::store::fhir_instant;
use crate::store::{current, Store, Tx};
use crate::{Error, Result};

/// A stretch of time an agenda is closed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    pub start: DateTime<FixedOffset>,
    pub end: DateTime<FixedOffset>,
    /// Written into each closed slot's `comment`.
    pub reason: String,
}

/// What a closure did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClosureReport {
    /// The slots turned `busy-unavailable`, in start order.
    pub slots_closed: Vec<String>,
    /// The appointments booked on them, to be rebooked.
    pub appointments_to_rebook: Vec<String>,
}

/// Slots that start this long before a closure are still looked at (a template's
/// slots last at most a day).
const LOOKBACK_DAYS: i64 = 7;

/// Slot states a closure takes out of use (anything but `busy-unavailable`).
const OPEN_STATES: &str = "free,busy,busy-tentative";

/// Appointment states that still hold their slot.
/// Appointment statuses that hold their slot: such an appointment is listed for
/// rebooking by a closure, and its slot cannot be removed.
pub const HOLDING_STATES: &str = "proposed,pending,booked,arrived,fulfilled,checked-in,waitlist";

/// How many slots one appointment search names.
const SLOTS_PER_SEARCH: usize = 100;

/// Turns the free/busy slots of the schedule overlapping the closure (start before
/// the closure's end, end after its start) busy-unavailable, adding a `comment` with
/// the reason, in one transaction, and returns the ids of the Appointments booked on
/// them (`Appointment?slot=Slot/x` with a status other than cancelled, noshow or
/// entered-in-error) so that they can be rebooked; the appointments themselves are
/// not changed. Slots already busy-unavailable are left as they are. An empty or
/// reversed closure → `Invalid`; a missing Schedule → `NotFound`.
pub async fn close(store: &Store, schedule_id: &str, closure: &Closure) -> Result<ClosureReport> {
    check_span(closure)?;
    let gateway = Access::gateway();
    let mut tx = store.begin().await?;
    read_schedule(store, &mut tx, schedule_id).await?;
    let slots_closed = close_slots(store, &mut tx, &gateway, schedule_id, closure).await?;
    let appointments_to_rebook = appointments_on(store, &mut tx, &gateway, &slots_closed).await?;
    crate::messaging::closure_messages(store, &mut tx, &appointments_to_rebook).await?;
    tx.commit().await?;
    tracing::info!(
        schedule = schedule_id,
        slots = slots_closed.len(),
        appointments = appointments_to_rebook.len(),
        reason = %closure.reason,
        "agenda closed"
    );
    Ok(ClosureReport { slots_closed, appointments_to_rebook })
}

/// An empty or reversed closure is refused (`Invalid`).
pub(super) fn check_span(closure: &Closure) -> Result<()> {
    if closure.end <= closure.start {
        return Err(Error::invalid(
            "value",
            None,
            format!(
                "the closure ends ({}) at or before it starts ({})",
                fhir_instant(&closure.end),
                fhir_instant(&closure.start)
            ),
        ));
    }
    Ok(())
}

/// Turns the open slots of the schedule overlapping the closure busy-unavailable;
/// their ids, in start order.
async fn close_slots(
    store: &Store,
    tx: &mut Tx,
    gateway: &Access,
    schedule_id: &str,
    closure: &Closure,
) -> Result<Vec<String>> {
    let candidates = slots_in(store, tx, (schedule_id, OPEN_STATES), closure).await?;
    let mut closed: Vec<(DateTime<FixedOffset>, String)> = Vec::new();
    for id in candidates {
        let Some(body) = current(tx, store.dialect(), "Slot", &id, false).await?.and_then(|s| s.body) else {
            continue;
        };
        let slot: Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
        let Some((start, slot)) = closed_slot(slot, closure) else { continue };
        store.update_in(tx, gateway, "Slot", &id, slot, None).await?;
        closed.push((start, id));
    }
    closed.sort();
    Ok(closed.into_iter().map(|(_, id)| id).collect())
}

/// The ids of the schedule's slots in `states` that may overlap the closure (those
/// starting up to [`LOOKBACK_DAYS`] before it).
pub(super) async fn slots_in(
    store: &Store,
    tx: &mut Tx,
    (schedule_id, states): (&str, &str),
    closure: &Closure,
) -> Result<Vec<String>> {
    let query = [
        ("schedule".to_string(), format!("Schedule/{schedule_id}")),
        ("start".to_string(), format!("lt{}", fhir_instant(&closure.end))),
        ("start".to_string(), format!("ge{}", fhir_instant(&(closure.start - Duration::days(LOOKBACK_DAYS))))),
        ("status".to_string(), states.to_string()),
    ];
    store.search_ids_in(tx, &Access::gateway(), "Slot", &query, SEARCH_LIMIT).await
}

/// The slot's start when it overlaps the closure.
pub(super) fn overlap(slot: &Value, closure: &Closure) -> Option<DateTime<FixedOffset>> {
    let when = |key: &str| slot.get(key).and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let (start, end) = (when("start")?, when("end")?);
    (start < closure.end && end > closure.start).then_some(start)
}

/// The slot as the closure leaves it (busy-unavailable, the reason added to its
/// `comment`) with its start; `None` when it does not overlap the closure.
fn closed_slot(mut slot: Value, closure: &Closure) -> Option<(DateTime<FixedOffset>, Value)> {
    let start = overlap(&slot, closure)?;
    let comment = match slot.get("comment").and_then(Value::as_str).filter(|c| !c.is_empty()) {
        Some(c) => format!("{c}; {}", closure.reason),
        None => closure.reason.clone(),
    };
    if let Some(fields) = slot.as_object_mut() {
        fields.insert("status".into(), Value::String("busy-unavailable".into()));
        fields.insert("comment".into(), Value::String(comment));
    }
    Some((start, slot))
}

/// The appointments that still hold one of `slots` (to be rebooked), each once.
async fn appointments_on(store: &Store, tx: &mut Tx, gateway: &Access, slots: &[String]) -> Result<Vec<String>> {
    let mut appointments: Vec<String> = Vec::new();
    for chunk in slots.chunks(SLOTS_PER_SEARCH) {
        let refs: Vec<String> = chunk.iter().map(|id| format!("Slot/{id}")).collect();
        let query = [("slot".to_string(), refs.join(",")), ("status".to_string(), HOLDING_STATES.to_string())];
        for id in store.search_ids_in(tx, gateway, "Appointment", &query, SEARCH_LIMIT).await? {
            if !appointments.contains(&id) {
                appointments.push(id);
            }
        }
    }
    Ok(appointments)
}
