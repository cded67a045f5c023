//! The messages a change sends, written to the outbox in the change's own
//! transaction: which event it is, which provider it goes to (the slot's provider,
//! the charge item's performer), and what the provider needs with it (patient,
//! request, slot, place, charge item). The Bundle itself is `messaging::build`.

use serde_json::Value;

use super::views::{address_of, reference_to, Charge, Provider};
use crate::booking::views::{Appointment, AppointmentMut, Slot, Status};
use crate::messaging::{self, Destination, Event};
use crate::store::value_of;
use crate::store::{current, current_seen, new_id, now_micros, seen_ahead, Outgoing, Store, Tx};
use crate::Result;

/// An Organization's provider code (identifier `{canonical-base}/sid/provider`).
pub(crate) fn provider_code(organization: &Value, base: &str) -> Result<Option<String>> {
    Ok(Provider::of(organization, base)?.code)
}

/// The event a change of an appointment's status is, if any.
pub(crate) fn appointment_event(old: Option<Status>, new: &Appointment) -> Option<Event> {
    let was_booked = matches!(old, Some(Status::Booked | Status::Arrived | Status::CheckedIn));
    match new.status {
        Status::Booked if old != Some(Status::Booked) => Some(Event::BOOKED),
        Status::Cancelled if was_booked => {
            if new.cancel_reason.as_deref() == Some(crate::booking::RESCHEDULED) {
                Some(Event::RESCHEDULED)
            } else {
                Some(Event::CANCELLED)
            }
        }
        Status::Arrived | Status::CheckedIn | Status::Fulfilled | Status::Noshow | Status::EnteredInError
            if old.is_some_and(|o| o != new.status) =>
        {
            Some(Event::STATUS_CHANGED)
        }
        _ => None,
    }
}

/// The message of a change of appointment `id` (`old` its status before,
/// `new` its view and body as it is being stored), to the provider of its slot.
pub(crate) async fn appointment_message(
    store: &Store,
    tx: &mut Tx,
    id: &str,
    old: Option<Status>,
    (view, body): (&Appointment, &Value),
) -> Result<()> {
    match appointment_event(old, view) {
        Some(event) => message_about(store, tx, event, id, (view, body)).await,
        None => Ok(()),
    }
}

/// The message of a closure to the provider of each appointment it affects
/// (their slots closed): they are to be rebooked.
pub(crate) async fn closure_messages(store: &Store, tx: &mut Tx, appointments: &[String]) -> Result<()> {
    for id in appointments {
        let body = value_of(current_seen(tx, store.dialect(), "Appointment", id).await?)?;
        if body.is_object() {
            let view = Appointment::of(&body, &store.settings().base)?;
            message_about(store, tx, Event::CLOSURE, id, (&view, &body)).await?;
        }
    }
    Ok(())
}

/// The message of `event` about appointment `id` (`new` its body), to the
/// provider of its slot, with what the provider needs.
async fn message_about(
    store: &Store,
    tx: &mut Tx,
    event: Event,
    id: &str,
    (a, new): (&Appointment, &Value),
) -> Result<()> {
    let base = store.settings().base.clone();
    let (slot, view) = match a.slots.first() {
        Some(s) => {
            let slot = value_of(current_seen(tx, store.dialect(), "Slot", s).await?)?;
            let view = Slot::of(s, &slot, &base)?;
            (slot, view)
        }
        None => return Ok(()),
    };
    let Some(org) = view.provider else {
        return Ok(());
    };
    let mut related = Vec::new();
    let patients: Vec<String> = a.patient.iter().cloned().collect();
    let location_id = view.location.as_deref();
    // What the message carries, and the organisation `send` reads, in one round trip.
    let ahead: Vec<(&str, &str)> = patients
        .iter()
        .map(|p| ("Patient", p.as_str()))
        .chain(a.requests.iter().map(|sr| ("ServiceRequest", sr.as_str())))
        .chain(location_id.map(|l| ("Location", l)))
        .chain([("Organization", org.as_str())])
        .collect();
    seen_ahead(tx, &ahead).await?;
    for p in patients {
        related.push(value_of(current_seen(tx, store.dialect(), "Patient", &p).await?)?);
    }
    for sr in &a.requests {
        related.push(value_of(current_seen(tx, store.dialect(), "ServiceRequest", sr).await?)?);
    }
    related.push(slot);
    if let Some(loc) = location_id {
        related.push(value_of(current_seen(tx, store.dialect(), "Location", loc).await?)?);
    }
    let items: Vec<String> = match tx.lines_of_fresh(id) {
        Some(lines) => lines.into_iter().map(|(item, _)| item).collect(),
        None => {
            sqlx::query_scalar("SELECT charge_item FROM ticket_lines WHERE appointment = $1")
                .bind(id)
                .fetch_all(&mut **tx)
                .await?
        }
    };
    for ci in items {
        related.push(value_of(current_seen(tx, store.dialect(), "ChargeItem", &ci).await?)?);
    }
    let mut focus = new.clone();
    AppointmentMut::new(&mut focus, &base)?.set_id(id);
    send(store, tx, event, &org, focus, related).await
}

/// The message of `event` about ChargeItem `id`, to its performing provider,
/// with its patient and the appointment it is for (`appointment`: its body as the
/// transaction is writing it, when not stored yet).
pub(crate) async fn charge_message(
    store: &Store,
    tx: &mut Tx,
    event: Event,
    id: &str,
    appointment: Option<&Value>,
) -> Result<()> {
    let item = value_of(current_seen(tx, store.dialect(), "ChargeItem", id).await?)?;
    let charge = Charge::of(&item)?;
    let Some(org) = charge.provider else {
        return Ok(());
    };
    let ahead: Vec<(&str, &str)> =
        charge.patient.iter().map(|p| ("Patient", p.as_str())).chain([("Organization", org.as_str())]).collect();
    seen_ahead(tx, &ahead).await?;
    let mut related = Vec::new();
    if let Some(p) = &charge.patient {
        related.push(value_of(current_seen(tx, store.dialect(), "Patient", p).await?)?);
    }
    let base = store.settings().base.clone();
    let writing = appointment.map(|b| Appointment::of(b, &base).map(|v| (v.id, b))).transpose()?;
    for a in &charge.appointments {
        match writing.as_ref().filter(|(id, _)| id.as_ref() == Some(a)) {
            Some((_, b)) => related.push((*b).clone()),
            None => related.push(value_of(current_seen(tx, store.dialect(), "Appointment", a).await?)?),
        }
    }
    send(store, tx, event, &org, item, related).await
}

/// Writes the message to provider Organization `org` to the outbox, if the
/// organisation is a provider (it has a provider code) that takes this event;
/// held as failed, with the reason, when a code cannot be mapped.
async fn send(store: &Store, tx: &mut Tx, event: Event, org: &str, focus: Value, related: Vec<Value>) -> Result<()> {
    send_as(store, tx, &new_id(), event, org, focus, related).await
}

/// [`send`] with the message id given (an id already in the outbox is
/// not written again).
async fn send_as(
    store: &Store,
    tx: &mut Tx,
    id: &str,
    event: Event,
    org: &str,
    focus: Value,
    related: Vec<Value>,
) -> Result<()> {
    let base = store.settings().base.clone();
    let organization = value_of(current_seen(tx, store.dialect(), "Organization", org).await?)?;
    let provider = Provider::of(&organization, &base)?;
    let Some(code) = provider.code else {
        tracing::debug!(org, "no provider code: no message");
        return Ok(());
    };
    let m = store.settings().messaging.clone();
    if !m.routing.wants(&code, event.resource, event.name) {
        return Ok(());
    }
    let endpoint = match &provider.endpoint {
        Some(e) => address_of(&value_of(current_seen(tx, store.dialect(), "Endpoint", e).await?)?)?,
        None => None,
    };
    let to = Destination { code: code.clone(), organization: org.to_string(), endpoint };
    let id = id.to_string();
    let focus_ref = reference_to(&focus)?;
    let (body, failed) = match messaging::build(
        &base,
        &id,
        event,
        &to,
        [focus].into_iter().chain(related).collect(),
        m.map_of(&code),
        now_micros(),
    ) {
        Ok(b) => (b, None),
        Err((reason, b)) => (b, Some(reason)),
    };
    store
        .enqueue(
            tx,
            Outgoing {
                message_id: id,
                provider: code.clone(),
                routing_key: event.routing_key(&code),
                event: event.code(),
                focus: focus_ref,
                body: body.to_string(),
                failed,
            },
        )
        .await
}

/// The daily appointment lists of `day` (Europe/Rome): one message per provider
/// with its appointments of the day (a `List`, then the Appointments and their
/// patients). `scheduled`: the message id is `daily-<provider org>-<day>`, so
/// that gateways sharing the database send each list once. Returns the
/// providers and their number of appointments.
pub async fn dispatch_daily_lists(
    store: &Store,
    day: chrono::NaiveDate,
    scheduled: bool,
) -> Result<Vec<(String, usize)>> {
    let at = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(chrono_tz::Europe::Rome).earliest())
            .map(|t| t.timestamp_micros())
            .unwrap_or_default()
    };
    let (from, to) = (at(day), at(day.succ_opt().unwrap_or(day)));
    let mut c = store.conn().await?;
    let r: std::result::Result<Vec<(String, Option<String>)>, sqlx::Error> = sqlx::query_as(
        "SELECT appointment, provider FROM bookings WHERE start_us >= $1 AND start_us < $2 ORDER BY start_us, appointment",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *c)
    .await;
    let rows = c.done(r)?;
    let mut by_provider: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (a, p) in rows {
        if let Some(p) = p.and_then(|p| p.strip_prefix("Organization/").map(str::to_string)) {
            by_provider.entry(p).or_default().push(a);
        }
    }
    let base = store.settings().base.clone();
    let mut out = Vec::new();
    for (org, appointments) in by_provider {
        let mut tx = store.begin().await?;
        let mut related = Vec::new();
        let mut items = Vec::new();
        let mut patients = std::collections::HashSet::new();
        for a in appointments {
            let body = value_of(current(&mut tx, store.dialect(), "Appointment", &a, false).await?)?;
            let view = Appointment::of(&body, &base)?;
            if !matches!(view.status, Status::Booked | Status::Arrived | Status::CheckedIn) {
                continue;
            }
            items.push(serde_json::json!({"item": {"reference": format!("Appointment/{a}")}}));
            related.push(body);
            if let Some(p) = view.patient.filter(|p| patients.insert(p.clone())) {
                let pb = value_of(current(&mut tx, store.dialect(), "Patient", &p, false).await?)?;
                if pb.is_object() {
                    related.push(pb);
                }
            }
        }
        let count = items.len();
        let list_id = format!("daily-{org}-{day}");
        let mut list = serde_json::json!({
            "resourceType": "List", "id": list_id, "status": "current", "mode": "snapshot",
            "title": format!("Appointments of {day}"), "date": crate::fhir::meta::instant(now_micros()),
            "source": {"reference": format!("{base}/Endpoint/cupola")},
            "subject": {"reference": format!("Organization/{org}")},
        });
        if !items.is_empty() {
            list["entry"] = Value::Array(items);
        } else {
            list["emptyReason"] = serde_json::json!({"text": "no appointments"});
        }
        let id = if scheduled { list_id.clone() } else { new_id() };
        send_as(store, &mut tx, &id, Event::DAILY_LIST, &org, list, related).await?;
        tx.commit().await?;
        out.push((org, count));
    }
    Ok(out)
}
