//! `$hold`, `$book` and `$cancel`: each one transaction that turns the request into
//! Appointment writes, to which the store applies the booking rules.

use serde_json::Value;

use super::views::{Appointment, AppointmentMut, Slot, Status};
use crate::access::Access;
use crate::error::Issue;
use crate::store::{current_visible, value_of, Store, Tx};
use crate::{Error, Result};

/// What `$book` is asked to book.
#[derive(Debug, Clone)]
pub enum BookRequest {
    /// `appointment-reference`: a stored proposal or hold (its id).
    Reference(String),
    /// `appointment-resource`: a proposed Appointment with its slot.
    Resource(Value),
}

/// The result of `$book`: the booked appointment, and whether this call booked it
/// (`false`: a retry found the booking already made).
#[derive(Debug, Clone)]
pub struct Booked {
    pub appointment: Value,
    pub created: bool,
    /// The appointment `cancelled-appt-id` named, now cancelled.
    pub replaced: Option<Value>,
    /// The Invoice of the booking's ticket (none without a tariff, or for an administrator).
    pub invoice: Option<Value>,
}

/// The appointment `id` as `access` sees it, row-locked for a change, with its view.
async fn appointment_for_change(store: &Store, tx: &mut Tx, access: &Access, id: &str) -> Result<(Value, Appointment)> {
    let seen = current_visible(tx, "Appointment", id, &access.read("Appointment")).await?;
    match seen {
        Some(s) if s.deleted => {
            Err(Error::Gone(format!("Appointment/{id} was deleted (an expired proposal is removed)")))
        }
        Some(_) => {
            let cur = value_of(store.current_for_write(tx, "Appointment", id).await?)?;
            let view = Appointment::of(&cur, &store.settings().base)?;
            Ok((cur, view))
        }
        None => Err(Error::NotFound(format!("Appointment/{id} does not exist"))),
    }
}

fn not_expired(appointment: &Appointment, id: &str) -> Result<()> {
    match appointment.proposal_expires {
        Some(t) if t <= crate::store::now_micros() => Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("appointment-reference".into()),
            format!("the proposal Appointment/{id} has expired: run $find again"),
        )])),
        _ => Ok(()),
    }
}

/// `a` moved to `status`, without what only a proposal carries (its expiry).
fn moved_to(mut a: Value, base: &str, status: Status) -> Result<Value> {
    AppointmentMut::new(&mut a, base)?.drop_extension("proposal-expires").set_status(status);
    Ok(a)
}

/// `Appointment/$hold`: the proposal `id` becomes `pending`, holding its slot for
/// the configured time; only the holder may then book it.
pub async fn hold(store: &Store, access: &Access, id: &str) -> Result<Value> {
    let base = store.settings().base.clone();
    let mut tx = store.begin().await?;
    let (cur, view) = appointment_for_change(store, &mut tx, access, id).await?;
    let out = match view.status {
        Status::Proposed => {
            not_expired(&view, id)?;
            let held = moved_to(cur, &base, Status::Pending)?;
            write(store, &mut tx, access, id, held).await?
        }
        // A retry of the same hold.
        Status::Pending => cur,
        other => {
            let other = other.as_str();
            return Err(Error::Conflict(format!("Appointment/{id} is {other}: only a proposal can be held")));
        }
    };
    tx.commit().await?;
    Ok(out)
}

async fn write(store: &Store, tx: &mut Tx, access: &Access, id: &str, body: Value) -> Result<Value> {
    let w = store.update_in(tx, access, "Appointment", id, body, None).await?;
    value_of(w.stored)
}

/// `Appointment/$book`: books a proposal or hold (by reference) or a proposed
/// Appointment (by resource) atomically, cancelling `replaces` in the same
/// transaction when given (a reschedule). A retry returns the booking already made.
/// Bookings that arrive together share a transaction and its commit, each one
/// still all or nothing (`Store::grouped`).
pub async fn book(store: &Store, access: &Access, request: BookRequest, replaces: Option<&str>) -> Result<Booked> {
    let (access, replaces) = (access.clone(), replaces.map(str::to_string));
    let work = crate::store::work(move |store, tx| {
        let (access, request, replaces) = (access.clone(), request.clone(), replaces.clone());
        Box::pin(async move { book_in(store, tx, &access, request, replaces.as_deref()).await })
    });
    store.grouped(work).await
}

async fn book_in(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    request: BookRequest,
    replaces: Option<&str>,
) -> Result<Booked> {
    let base = store.settings().base.clone();
    let carried = match replaces {
        Some(old) => appointment_for_change(store, tx, access, old).await?.1.requests,
        None => Vec::new(),
    };
    let to = Booking { base: &base, carried: &carried };
    let booked = match request {
        BookRequest::Reference(id) => book_stored(store, tx, access, &id, &to).await?,
        BookRequest::Resource(a) => match Appointment::of(&a, &base)?.id {
            Some(id) if store.current_version(tx, "Appointment", &id).await?.is_some() => {
                book_stored(store, tx, access, &id, &to).await?
            }
            _ => book_new(store, tx, access, with_requests(a, &to)?, &base).await?,
        },
    };
    // The old appointment goes after the new one is booked, so that a paid ticket
    // moves with the booking instead of being refunded and owed again.
    let replaced = match replaces {
        Some(old) => Some(cancel_in(store, tx, access, old, super::RESCHEDULED).await?),
        None => None,
    };
    let id = Appointment::of(&booked.appointment, &base)?.id.unwrap_or_default();
    let invoice = crate::billing::invoice_of(store, tx, &id).await?;
    Ok(Booked { replaced, invoice, ..booked })
}

/// What a booking is completed with: the server's base, and the prescriptions of
/// the appointment a reschedule replaces.
struct Booking<'a> {
    base: &'a str,
    carried: &'a [String],
}

/// A reschedule keeps the prescription: the new place is usually found by service
/// (`$find` refuses an NRE whose services are all booked, by the very appointment
/// being moved), so an appointment based on nothing takes the replaced one's
/// `basedOn`, and its ticket and the prescription's limits follow it.
fn with_requests(mut a: Value, to: &Booking) -> Result<Value> {
    if !to.carried.is_empty() && Appointment::of(&a, to.base)?.requests.is_empty() {
        AppointmentMut::new(&mut a, to.base)?.set_requests(to.carried);
    }
    Ok(a)
}

async fn book_stored(store: &Store, tx: &mut Tx, access: &Access, id: &str, to: &Booking<'_>) -> Result<Booked> {
    let (cur, view) = appointment_for_change(store, tx, access, id).await?;
    match view.status {
        Status::Proposed | Status::Pending => {
            if view.status == Status::Proposed {
                not_expired(&view, id)?;
            }
            let body = moved_to(with_requests(cur, to)?, to.base, Status::Booked)?;
            let appointment = write(store, tx, access, id, body).await?;
            Ok(Booked { appointment, created: true, replaced: None, invoice: None })
        }
        Status::Booked => Ok(Booked { appointment: cur, created: false, replaced: None, invoice: None }),
        other => Err(Error::Conflict(format!("Appointment/{id} is {}: it cannot be booked", other.as_str()))),
    }
}

/// A booking from a resource: one per patient and slot, so that a retry (or the
/// same request sent twice at once) finds the first instead of taking a second place.
async fn book_new(store: &Store, tx: &mut Tx, access: &Access, a: Value, base: &str) -> Result<Booked> {
    let view = Appointment::of(&a, base)?;
    if view.slots.is_empty() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "required",
            Some("Appointment.slot".into()),
            "appointment-resource needs the slot it books",
        )]));
    }
    let Some(patient_id) = view.patient.as_deref() else {
        return Err(Error::Unprocessable(vec![Issue::error(
            "required",
            Some("Appointment.participant".into()),
            "the appointment needs its patient as a participant (actor Patient/…)",
        )]));
    };
    let (patient, slots) =
        (format!("Patient/{patient_id}"), view.slots.iter().map(|s| format!("Slot/{s}")).collect::<Vec<_>>());
    let mut body = moved_to(a, base, Status::Booked)?;
    // Serialised per patient and slots, as a conditional create on the same search is.
    let condition = vec![
        ("slot".to_string(), slots.join(",")),
        ("patient".to_string(), patient.clone()),
        ("status".to_string(), "booked,arrived,checked-in,fulfilled".to_string()),
    ];
    let slot_ids: Vec<&str> = view.slots.iter().map(String::as_str).collect();
    match store
        .bookings_of(tx, access, ("Appointment", &condition), &slot_ids, patient_id, ("CodeSystem", super::CATALOG_ID))
        .await?
        .as_slice()
    {
        [] => {
            super::integrity::check(store, Some(tx), access, "Appointment", &body).await?;
            complete_from_slot(store, tx, &view, &mut body).await?;
            let stored = store.create_in(tx, access, "Appointment", body, None).await?;
            Ok(Booked { appointment: value_of(Some(stored))?, created: true, replaced: None, invoice: None })
        }
        [id] => {
            let found = crate::store::current(tx, store.dialect(), "Appointment", id, false).await?;
            Ok(Booked { appointment: value_of(found)?, created: false, replaced: None, invoice: None })
        }
        _ => Err(Error::PreconditionFailed(format!(
            "{patient} has more than one booking on {}: cancel the extra one",
            slots.join(", ")
        ))),
    }
}

/// Links a booking made from a bare resource as a proposal is linked: its slot's
/// times and service, and the agenda's actors (service, place, practitioner) as
/// participants. A slot that does not exist is left to the booking rules to refuse.
/// The slot is read for the write (locked, a generated one moved into `resources`),
/// so that the booking rules find it held by this transaction instead of reading it
/// again.
async fn complete_from_slot(store: &Store, tx: &mut Tx, view: &Appointment, a: &mut Value) -> Result<()> {
    let base = store.settings().base.clone();
    let Some(slot_id) = view.slots.first() else {
        return Ok(());
    };
    let Some(slot) = store.current_for_write(tx, "Slot", slot_id).await?.map(|s| s.value()).transpose()?.flatten()
    else {
        return Ok(());
    };
    let schedule = Slot::of(slot_id, &slot, &base)?.schedule.unwrap_or_default();
    let actors = super::find::schedule_actors(store, tx, &schedule).await?;
    AppointmentMut::new(a, &base)?.complete_from_slot(&slot, actors);
    Ok(())
}

/// `Appointment/{id}/$cancel` (or a reschedule): the appointment `cancelled` with
/// its reason; its slot frees in the same transaction.
pub async fn cancel(store: &Store, access: &Access, id: &str, reason: &str) -> Result<Value> {
    let mut tx = store.begin().await?;
    let out = cancel_in(store, &mut tx, access, id, reason).await?;
    tx.commit().await?;
    Ok(out)
}

/// What `$cancel` would do, done in a transaction that is then rolled back: the
/// Appointment as it would be, and its ticket's Invoice before and after, so that
/// the refund rule's outcome is the real one (the same code, the same clock).
pub struct CancelPreview {
    pub appointment: Value,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The dated rule's notice for a cancellation that frees the ticket (the words only).
    pub notice_hours: Option<i64>,
}

/// `$cancel?preview=true`: nothing is written (the transaction is never committed,
/// so the outbox rows deferred to the commit are never written either).
pub async fn cancel_preview(store: &Store, access: &Access, id: &str, reason: &str) -> Result<CancelPreview> {
    let mut tx = store.begin().await?;
    let before = crate::billing::invoice_of(store, &mut tx, id).await?;
    let appointment = cancel_in(store, &mut tx, access, id, reason).await?;
    let after = crate::billing::invoice_of(store, &mut tx, id).await?;
    drop(tx); // rolled back
    let today = crate::billing::rome_day(crate::store::now_micros());
    let notice_hours = store.settings().billing.cancellation(today).map(|c| c.notice_hours);
    Ok(CancelPreview { appointment, before, after, notice_hours })
}

async fn cancel_in(store: &Store, tx: &mut Tx, access: &Access, id: &str, reason: &str) -> Result<Value> {
    let (mut cur, view) = appointment_for_change(store, tx, access, id).await?;
    match view.status {
        Status::Cancelled => Ok(cur),
        s @ (Status::Fulfilled | Status::Noshow | Status::EnteredInError | Status::Arrived | Status::CheckedIn) => {
            Err(Error::Conflict(format!("Appointment/{id} is {}: it can no longer be cancelled", s.as_str())))
        }
        _ => {
            AppointmentMut::new(&mut cur, &store.settings().base)?.cancel(reason);
            write(store, tx, access, id, cur).await
        }
    }
}
