//! `$hold`, `$book` and `$cancel`: each one transaction that turns the request into
//! Appointment writes, to which the store applies the booking rules.

use serde_json::{json, Value};

use crate::access::Access;
use crate::error::Issue;
use crate::fhir::names;
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

/// The appointment `id` as `access` sees it, row-locked for a change.
async fn appointment_for_change(store: &Store, tx: &mut Tx, access: &Access, id: &str) -> Result<Value> {
    let seen = current_visible(tx, "Appointment", id, &access.read("Appointment")).await?;
    match seen {
        Some(s) if s.deleted => {
            Err(Error::Gone(format!("Appointment/{id} was deleted (an expired proposal is removed)")))
        }
        Some(_) => {
            let cur = store.current_for_write(tx, "Appointment", id).await?;
            value_of(cur)
        }
        None => Err(Error::NotFound(format!("Appointment/{id} does not exist"))),
    }
}

fn not_expired(appointment: &Value, base: &str, id: &str) -> Result<()> {
    let expiry = super::rules::extension(appointment, &names::structure(base, "proposal-expires"))
        .and_then(|e| e["valueInstant"].as_str())
        .and_then(crate::fhir::meta::parse_instant);
    match expiry {
        Some(t) if t <= crate::store::now_micros() => Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("appointment-reference".into()),
            format!("the proposal Appointment/{id} has expired: run $find again"),
        )])),
        _ => Ok(()),
    }
}

/// Drops what only a proposal carries (its expiry).
fn without_proposal_marks(mut a: Value, base: &str) -> Value {
    let url = names::structure(base, "proposal-expires");
    if let Some(list) = a.get_mut("extension").and_then(Value::as_array_mut) {
        list.retain(|e| e["url"].as_str() != Some(url.as_str()));
        if list.is_empty() {
            a.as_object_mut().map(|o| o.remove("extension"));
        }
    }
    a
}

fn moved_to(mut a: Value, status: &str) -> Value {
    a["status"] = json!(status);
    a
}

/// `Appointment/$hold`: the proposal `id` becomes `pending`, holding its slot for
/// the configured time; only the holder may then book it.
pub async fn hold(store: &Store, access: &Access, id: &str) -> Result<Value> {
    let base = store.settings().base.clone();
    let mut tx = store.begin().await?;
    let cur = appointment_for_change(store, &mut tx, access, id).await?;
    let out = match cur["status"].as_str().unwrap_or_default() {
        "proposed" => {
            not_expired(&cur, &base, id)?;
            let held = moved_to(without_proposal_marks(cur, &base), "pending");
            write(store, &mut tx, access, id, held).await?
        }
        // A retry of the same hold.
        "pending" => cur,
        other => {
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
    let booked = match request {
        BookRequest::Reference(id) => book_stored(store, tx, access, &id, &base).await?,
        BookRequest::Resource(a) => match a["id"].as_str().map(str::to_string) {
            Some(id) if store.current_version(tx, "Appointment", &id).await?.is_some() => {
                book_stored(store, tx, access, &id, &base).await?
            }
            _ => book_new(store, tx, access, a, &base).await?,
        },
    };
    // The old appointment goes after the new one is booked, so that a paid ticket
    // moves with the booking instead of being refunded and owed again.
    let replaced = match replaces {
        Some(old) => Some(cancel_in(store, tx, access, old, super::RESCHEDULED).await?),
        None => None,
    };
    let id = booked.appointment["id"].as_str().unwrap_or_default().to_string();
    let invoice = store.invoice_of(tx, &id).await?;
    Ok(Booked { replaced, invoice, ..booked })
}

async fn book_stored(store: &Store, tx: &mut Tx, access: &Access, id: &str, base: &str) -> Result<Booked> {
    let cur = appointment_for_change(store, tx, access, id).await?;
    match cur["status"].as_str().unwrap_or_default() {
        "proposed" | "pending" => {
            if cur["status"] == "proposed" {
                not_expired(&cur, base, id)?;
            }
            let body = moved_to(without_proposal_marks(cur, base), "booked");
            let appointment = write(store, tx, access, id, body).await?;
            Ok(Booked { appointment, created: true, replaced: None, invoice: None })
        }
        "booked" => Ok(Booked { appointment: cur, created: false, replaced: None, invoice: None }),
        other => Err(Error::Conflict(format!("Appointment/{id} is {other}: it cannot be booked"))),
    }
}

/// A booking from a resource: one per patient and slot, so that a retry (or the
/// same request sent twice at once) finds the first instead of taking a second place.
async fn book_new(store: &Store, tx: &mut Tx, access: &Access, a: Value, base: &str) -> Result<Booked> {
    let slots: Vec<String> = a["slot"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str().map(str::to_string))
        .collect();
    if slots.is_empty() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "required",
            Some("Appointment.slot".into()),
            "appointment-resource needs the slot it books",
        )]));
    }
    let patient = a["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["actor"]["reference"].as_str())
        .find(|r| r.starts_with("Patient/"))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Unprocessable(vec![Issue::error(
                "required",
                Some("Appointment.participant".into()),
                "the appointment needs its patient as a participant (actor Patient/…)",
            )])
        })?;
    let mut body = moved_to(without_proposal_marks(a, base), "booked");
    // Serialised per patient and slots, as a conditional create on the same search is.
    let condition = vec![
        ("slot".to_string(), slots.join(",")),
        ("patient".to_string(), patient.clone()),
        ("status".to_string(), "booked,arrived,checked-in,fulfilled".to_string()),
    ];
    let slot_ids: Vec<&str> = slots.iter().filter_map(|s| s.strip_prefix("Slot/")).collect();
    let patient_id = patient.strip_prefix("Patient/").unwrap_or_default();
    match store
        .bookings_of(tx, access, ("Appointment", &condition), &slot_ids, patient_id, ("CodeSystem", super::CATALOG_ID))
        .await?
        .as_slice()
    {
        [] => {
            super::integrity::check(store, Some(tx), access, "Appointment", &body).await?;
            complete_from_slot(store, tx, &mut body).await?;
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
async fn complete_from_slot(store: &Store, tx: &mut Tx, a: &mut Value) -> Result<()> {
    let Some(slot_id) = a["slot"][0]["reference"].as_str().and_then(|r| r.strip_prefix("Slot/")).map(str::to_string)
    else {
        return Ok(());
    };
    let Some(slot) = store.current_for_write(tx, "Slot", &slot_id).await?.map(|s| s.value()).transpose()?.flatten()
    else {
        return Ok(());
    };
    for key in ["start", "end", "serviceType"] {
        if a.get(key).is_none() && slot.get(key).is_some() {
            a[key] = slot[key].clone();
        }
    }
    let schedule = slot["schedule"]["reference"].as_str().unwrap_or_default().to_string();
    let actors = super::find::schedule_actors(store, tx, &schedule).await?;
    if let Some(list) = a.get_mut("participant").and_then(Value::as_array_mut) {
        for actor in actors {
            if !list.iter().any(|p| p["actor"]["reference"] == actor["reference"]) {
                list.push(json!({"actor": actor, "status": "accepted"}));
            }
        }
    }
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

async fn cancel_in(store: &Store, tx: &mut Tx, access: &Access, id: &str, reason: &str) -> Result<Value> {
    let cur = appointment_for_change(store, tx, access, id).await?;
    match cur["status"].as_str().unwrap_or_default() {
        "cancelled" => Ok(cur),
        "fulfilled" | "noshow" | "entered-in-error" | "arrived" | "checked-in" => Err(Error::Conflict(format!(
            "Appointment/{id} is {}: it can no longer be cancelled",
            cur["status"].as_str().unwrap_or_default()
        ))),
        _ => {
            let mut body = moved_to(cur, "cancelled");
            body["cancelationReason"] = json!({"text": reason});
            write(store, tx, access, id, body).await
        }
    }
}
