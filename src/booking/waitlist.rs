//! Waiting lists: an Appointment `waitlist` without a slot puts a patient in line
//! for a service, in a period, at a place or in a district. When a slot that fits
//! frees — a booking cancelled (`claims`), a closure reversed (`$reopen`), new slots
//! generated — the first in line whose class may take it is offered it: their
//! Appointment gets the slot and turns `pending` (a hold of
//! `--waitlist-hold-seconds`, which only whoever enrolled them and the patient's
//! app may book), and a `Communication` tells the patient, in the same transaction.
//! An offer not booked in time is cancelled by the sweep ("waitlist offer
//! expired": the patient leaves the line) and the slot goes to the next.
//!
//! Who is first is the rules' dated order (`mappings/booking/rules.json`,
//! `waitlist`), then time in line; the candidates are chosen by one query of the
//! store, under the freed slot's row lock, with the chosen Appointment's row locked
//! too (and skipped by a concurrent matcher), and the patient's row locked while
//! their other offers are counted: no slot is offered twice, nobody holds two offers.

use serde_json::{json, Value};

use super::views::{Appointment, AppointmentMut, Slot, Status};
use crate::access::Access;
use crate::error::Issue;
use crate::store::{now_micros, FreedSlot, Store, Tx, WaitRow};
use crate::{Error, Result};

/// Candidates tried for one freed slot before it is left free (each refused one —
/// already offered, changed meanwhile — is skipped).
const TRIES: usize = 8;

/// What a write of Appointment `id` changes in the lines: a `waitlist` entry without
/// a slot is checked and (re-)enrolled, keeping its place; an offer stays in line;
/// anything else (booked, cancelled, deleted) leaves the line.
pub(super) async fn on_write(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    ids: (&str, Option<&Appointment>),
    new: Option<&Appointment>,
    body: Option<&mut Value>,
) -> Result<()> {
    let (id, old) = ids;
    match (new, body) {
        (Some(n), Some(body)) if n.status == Status::Waitlist && n.slots.is_empty() => {
            // An entry edited keeps its place; one joining again (after an offer) goes last.
            let kept = old.filter(|o| o.status == Status::Waitlist).and_then(|o| o.enrolled);
            let enrolled = kept.unwrap_or_else(now_micros);
            let row = entry(store, tx, access, id, n, enrolled).await?;
            AppointmentMut::new(body, &store.settings().base)?.set_enrolled(enrolled);
            store.enrol(tx, &row).await
        }
        // An offer being made (by the gateway) or edited stays in line, offered.
        (Some(n), _) if n.status == Status::Pending && is_offer(access, old) => Ok(()),
        (_, body) => {
            let was_in_line = old.is_some_and(|o| o.enrolled.is_some());
            if was_in_line {
                store.leave_line(tx, id).await?;
            }
            // Only the line stamps when one joined it (the offer's holder rule reads it).
            if let Some(body) = body.filter(|_| !was_in_line && !access.is_privileged()) {
                AppointmentMut::new(body, &store.settings().base)?.drop_extension("waitlist-enrolled");
            }
            Ok(())
        }
    }
}

/// Whether a write to `pending` is a waiting-list offer made or edited.
fn is_offer(access: &Access, old: Option<&Appointment>) -> bool {
    old.is_some_and(|o| o.enrolled.is_some() && (access.is_privileged() || o.status == Status::Pending))
}

fn missing(element: &str, why: &str) -> Error {
    Error::Unprocessable(vec![Issue::error("required", Some(element.to_string()), why.to_string())])
}

/// The line's row of a waiting-list entry, refused (422 naming the element) when it
/// lacks what matching needs.
async fn entry(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    n: &Appointment,
    enrolled: i64,
) -> Result<WaitRow> {
    let patient = n.patient.clone().ok_or_else(|| {
        missing("Appointment.participant", "a waiting-list entry names its patient (a participant Patient/…)")
    })?;
    let (_, service) = n.services.first().cloned().ok_or_else(|| {
        missing("Appointment.serviceType", "a waiting-list entry names the service it waits for (a catalog code)")
    })?;
    let (from_us, to_us) = match n.requested {
        Some((Some(from), Some(to))) if from < to => (from, to),
        _ => {
            return Err(missing(
                "Appointment.requestedPeriod",
                "a waiting-list entry gives the period it accepts (start before end, instants with their offset)",
            ))
        }
    };
    let class = class_of(store, tx, n).await?;
    let (location, district) = match &n.location {
        Some(l) => (Some(l.clone()), None),
        None => (None, Some(district_of(store, tx, &patient).await?)),
    };
    let holder = access.actor().map(super::claims::holder_of);
    let appointment = id.to_string();
    Ok(WaitRow {
        appointment,
        patient,
        service,
        class,
        district,
        location,
        from_us,
        to_us,
        enrolled_us: enrolled,
        holder,
    })
}

/// The entry's priority class: its own `priority-class`, else its prescription's.
async fn class_of(store: &Store, tx: &mut Tx, n: &Appointment) -> Result<String> {
    let from_requests = match &n.class {
        Some(_) => Vec::new(),
        None => super::claims::requests(store, tx, &n.requests).await?,
    };
    let class = n.class.clone().or_else(|| from_requests.iter().find_map(|r| r.class.clone()));
    match class {
        Some(c) if crate::mappings::booking::priority_classes().iter().any(|p| p.code == c) => Ok(c),
        _ => Err(missing(
            "Appointment.extension:priority-class",
            "a waiting-list entry has a priority class (U, B, D, P): the priority-class extension, or its prescription's",
        )),
    }
}

/// The district `$find` would search for the patient: where they live.
async fn district_of(store: &Store, tx: &mut Tx, patient: &str) -> Result<String> {
    let found = crate::store::current_seen(tx, store.dialect(), "Patient", patient).await?;
    let body = found.map(|s| s.value()).transpose()?.flatten();
    let district = body.map(|b| super::views::Residence::of(&b)).transpose()?.and_then(|r| r.district);
    district.ok_or_else(|| {
        missing(
            "Appointment.participant",
            "a waiting-list entry names its place (a participant Location/…) or its patient has a district (Patient.address.district)",
        )
    })
}

/// The classes in line order today, as the rules in force say.
fn order(store: &Store) -> Vec<String> {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    store.settings().rules.waitlist_order(today)
}

/// Offers `slot` (row-locked by the caller, just freed) to the first in line it
/// fits; answers the Appointment offered it.
pub(super) async fn offer_freed(store: &Store, tx: &mut Tx, slot: &Slot) -> Result<Option<String>> {
    let now = now_micros();
    let Some(start_us) = slot.start_us.filter(|s| *s > now) else { return Ok(None) };
    let services: Vec<String> = slot.services.iter().map(|(_, c)| c.clone()).collect();
    if services.is_empty() {
        return Ok(None);
    }
    let only_class = slot.reserve.as_ref().filter(|(_, until)| until.is_none_or(|u| u > now)).map(|(c, _)| c.as_str());
    let freed = FreedSlot {
        services: &services,
        start_us,
        district: slot.district.as_deref(),
        location: slot.location.as_deref(),
        only_class,
    };
    let classes = order(store);
    let mut skip: Vec<String> = Vec::new();
    for _ in 0..TRIES {
        let Some(row) = store.first_in_line(tx, &freed, &classes, &skip).await? else { return Ok(None) };
        if offer_to(store, tx, &slot.id, &row).await? {
            return Ok(Some(row.appointment));
        }
        skip.push(row.appointment);
    }
    Ok(None)
}

/// `Slot/id` freed by a change of the slot itself (a closure reversed): offered
/// as [`offer_freed`] does, under the slot's row lock.
pub async fn offer_slot(store: &Store, tx: &mut Tx, id: &str) -> Result<Option<String>> {
    let Some(stored) = store.current_for_write(tx, "Slot", id).await?.filter(|s| !s.deleted) else { return Ok(None) };
    let body = stored.value()?.unwrap_or(Value::Null);
    let slot = Slot::of(id, &body, &store.settings().base)?;
    if slot.status != "free" {
        return Ok(None);
    }
    offer_freed(store, tx, &slot).await
}

/// Gives `slot` to the entry `row` if it is still waiting and its patient has no
/// other offer out; `false` otherwise (the next one is tried).
async fn offer_to(store: &Store, tx: &mut Tx, slot_id: &str, row: &WaitRow) -> Result<bool> {
    let base = store.settings().base.clone();
    let id = &row.appointment;
    let found = store.current_for_write(tx, "Appointment", id).await?.filter(|s| !s.deleted);
    let Some(mut body) = found.map(|s| s.value()).transpose()?.flatten() else { return Ok(false) };
    let view = Appointment::of(&body, &base)?;
    if view.status != Status::Waitlist || !view.slots.is_empty() {
        return Ok(false);
    }
    // One offer per patient at a time: their row serialises two slots freed at once.
    store.current_for_write(tx, "Patient", &row.patient).await?;
    if store.has_offer(tx, &row.patient, id).await? {
        return Ok(false);
    }
    let slot = crate::store::value_of(store.current_for_write(tx, "Slot", slot_id).await?)?;
    let schedule = Slot::of(slot_id, &slot, &base)?.schedule.unwrap_or_default();
    let actors = super::find::schedule_actors(store, tx, &schedule).await?;
    AppointmentMut::new(&mut body, &base)?
        .set_slot(slot_id)
        .set_status(Status::Pending)
        .complete_from_slot(&slot, actors);
    store.update_in(tx, &Access::gateway(), "Appointment", id, body, None).await?;
    store.mark_offered(tx, id, slot_id).await?;
    let expires = store.hold_expiry(tx, id).await?.unwrap_or_default();
    let start = Slot::of(slot_id, &slot, &base)?.start_us.unwrap_or_default();
    let note = notice(row, (id, slot_id), start, expires);
    store.create_in(tx, &Access::gateway(), "Communication", note, None).await?;
    tracing::info!(appointment = %id, slot = slot_id, "waiting-list offer");
    Ok(true)
}

/// Rome's wall clock, as the patient reads it.
fn local(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.with_timezone(&chrono_tz::Europe::Rome).format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

/// The Communication telling the patient which slot is offered and until when.
fn notice(row: &WaitRow, (appointment, slot): (&str, &str), start: i64, expires: i64) -> Value {
    let text = format!(
        "Si è liberato un posto per la prestazione {} il {}: è tenuto per lei fino al {}. \
         Per confermarlo si rivolga a chi l'ha iscritta in lista d'attesa o usi l'app; \
         altrimenti passerà al prossimo in lista.",
        row.service,
        local(start),
        local(expires)
    );
    json!({"resourceType": "Communication", "status": "completed",
        "subject": {"reference": format!("Patient/{}", row.patient)},
        "recipient": [{"reference": format!("Patient/{}", row.patient)}],
        "about": [{"reference": format!("Appointment/{appointment}")}, {"reference": format!("Slot/{slot}")}],
        "sent": crate::fhir::meta::instant(now_micros()),
        "payload": [{"contentString": text}]})
}

/// Offers the free slots of `Schedule/schedule` (new ones, after a generation) to
/// those in line for its services: the line read by one query, then for each entry
/// in order the earliest slot of the agenda that fits it, found by one search.
/// Each offer is its own transaction; one that cannot be made (the slot taken
/// meanwhile) is left for the next freed slot. Answers the Appointments offered.
pub async fn offer_agenda(store: &Store, schedule: &str) -> Result<Vec<String>> {
    let mut tx = store.begin().await?;
    let services = agenda_services(store, &mut tx, schedule).await?;
    let line = store.line_for(&mut tx, &services, &order(store)).await?;
    drop(tx);
    let mut offered = Vec::new();
    for row in line {
        let mut tx = store.begin().await?;
        let Some(slot) = first_fitting(store, &mut tx, schedule, &row).await? else { continue };
        match offer_to(store, &mut tx, &slot, &row).await {
            Ok(true) => {
                tx.commit().await?;
                offered.push(row.appointment);
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(appointment = %row.appointment, slot, error = %e, "waiting-list offer not made"),
        }
    }
    Ok(offered)
}

/// The catalog codes an agenda serves.
async fn agenda_services(store: &Store, tx: &mut Tx, schedule: &str) -> Result<Vec<String>> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Services {
        service_type: Vec<crate::fhir::view::Concept>,
    }
    let body = crate::store::current_seen(tx, store.dialect(), "Schedule", schedule).await?.and_then(|s| s.body);
    let parsed: Services = body.and_then(|b| serde_json::from_str(&b).ok()).unwrap_or_default();
    Ok(crate::fhir::view::codes(&parsed.service_type).into_iter().map(|(_, c)| c).collect())
}

/// The earliest free slot of the agenda that `row` may take now.
async fn first_fitting(store: &Store, tx: &mut Tx, schedule: &str, row: &WaitRow) -> Result<Option<String>> {
    let from = row.from_us.max(now_micros() + 1);
    let mut query = vec![
        ("schedule".to_string(), format!("Schedule/{schedule}")),
        ("service-type".to_string(), row.service.clone()),
        ("status".to_string(), "free".to_string()),
        ("start".to_string(), format!("ge{}", crate::fhir::meta::instant(from))),
        ("start".to_string(), format!("lt{}", crate::fhir::meta::instant(row.to_us))),
        ("open-to".to_string(), row.class.clone()),
        ("_sort".to_string(), "start".to_string()),
        ("_count".to_string(), "1".to_string()),
        ("_total".to_string(), "none".to_string()),
    ];
    match (&row.location, &row.district) {
        (Some(l), _) => query.push(("location".to_string(), format!("Location/{l}"))),
        (None, Some(d)) => query.push(("district:exact".to_string(), d.clone())),
        (None, None) => return Ok(None),
    }
    let parsed = store.parse_search(&Access::gateway(), "Slot", &query, false)?;
    let found = store.search_on(tx, &parsed).await?.matches;
    let base = &store.settings().base;
    let first = found.into_iter().next().map(|(_, body)| serde_json::from_str::<Value>(&body));
    let first = first.transpose().map_err(anyhow::Error::from)?;
    Ok(first.map(|b| Slot::found(&b, base)).transpose()?.map(|s| s.id))
}
