//! A slot's capacity, claimed and released by every write of an Appointment,
//! whatever path it takes (POST, PUT, transaction, `$book`, `$cancel`): the rules
//! are in `crate::booking::rules`, the counting is here.
//!
//! Race-free by construction: each slot touched is first row-locked (its
//! `resources` row, `FOR UPDATE` on PostgreSQL; SQLite has one writer), in id order
//! so two reschedules crossing each other cannot deadlock; under that lock the live
//! claims (`slot_claims`, holds not yet expired) are counted and a new one is added
//! only below the slot's capacity. Two gateways on one database serialise per slot,
//! never globally. A full slot turns `busy`, and `free` again when a place frees.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::access::Access;
use crate::booking::views::{Appointment, AppointmentMut, Prescription, Slot, SlotMut, Status};
use crate::booking::{records, rules};
use crate::error::Issue;
use crate::store::{now_micros, PlaceClaim, Store, Stored, Tx};
use crate::{Error, Result};

/// Applies the booking rules to a write of `Appointment/id`: `old` is the current
/// body (`None` on create), `new` the body about to be stored (`None` on delete),
/// into which a first booking gets its booking code and `booked-by`. Each body is
/// read once into its view; the rules work on the views.
pub(crate) async fn appointment_write(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    old: Option<&Value>,
    new: Option<&mut Value>,
) -> Result<()> {
    let base = store.settings().base.clone();
    let old_v = old.map(|o| Appointment::of(o, &base)).transpose()?;
    let new_v = new.as_deref().map(|n| Appointment::of(n, &base)).transpose()?;
    check_new(access, old_v.as_ref(), new_v.as_ref())?;
    let mut new = new;
    super::waitlist::on_write(store, tx, access, (id, old_v.as_ref()), new_v.as_ref(), new.as_deref_mut()).await?;
    let now = now_micros();
    let before: BTreeSet<&String> = old_v.iter().flat_map(|o| o.claimed_slots()).collect();
    let after: BTreeSet<&String> = new_v.iter().flat_map(|n| n.claimed_slots()).collect();
    // A hold turning into a booking claims its place again: the hold may have
    // expired and the place gone to someone else.
    let was_hold = old_v.as_ref().is_some_and(|o| o.status == Status::Pending);
    let now_hold = new_v.as_ref().is_some_and(|n| n.status == Status::Pending);
    // A waiting-list entry turned `pending` by the gateway is an offer: held longer,
    // for whoever enrolled the patient.
    let offer = old_v.as_ref().is_some_and(|o| o.status == Status::Waitlist) && now_hold && access.is_privileged();
    let expires = hold_expiry_of(store, tx, id, (was_hold, now_hold, offer), now).await?;
    let to_claim: BTreeSet<&String> =
        after.iter().filter(|s| !before.contains(*s) || was_hold != now_hold).copied().collect();
    let to_release: BTreeSet<&String> = before.difference(&after).copied().collect();
    if was_hold && !now_hold && !to_claim.is_empty() && !access.is_privileged() {
        let offered = old_v.as_ref().is_some_and(|o| o.enrolled.is_some());
        check_holder(store, tx, access, id, offered).await?;
    }
    let holder = match offer {
        true => store.in_line(tx, id).await?.and_then(|r| r.holder),
        false => access.actor().map(holder_of),
    };
    let requests = match &new_v {
        Some(n) if !to_claim.is_empty() => requests(store, tx, &n.requests).await?,
        _ => Vec::new(),
    };
    let places =
        Places { access, id, base: &base, now, expires, holder, before: &before, new: new_v.as_ref(), requests };
    let first_claimed = move_places(store, tx, &places, &to_claim, &to_release).await?;
    after_places(store, tx, &places, old_v.as_ref(), new, first_claimed.as_ref()).await
}

/// A hold keeps its expiry through later edits: re-sending it does not extend it.
/// `(was, is, offer)`: a hold before, after, and whether it is a waiting-list offer.
async fn hold_expiry_of(
    store: &Store,
    tx: &mut Tx,
    id: &str,
    holds: (bool, bool, bool),
    now: i64,
) -> Result<Option<i64>> {
    let s = store.settings();
    Ok(match holds {
        (true, true, _) => store.hold_expiry(tx, id).await?.or(Some(now + s.hold_micros)),
        (false, true, true) => Some(now + s.waitlist_hold_micros),
        (false, true, false) => Some(now + s.hold_micros),
        _ => None,
    })
}

/// Gives back the places of `to_release` and takes those of `to_claim`, each slot
/// read under its lock; answers the first slot claimed (for the booking's facts).
async fn move_places(
    store: &Store,
    tx: &mut Tx,
    p: &Places<'_>,
    to_claim: &BTreeSet<&String>,
    to_release: &BTreeSet<&String>,
) -> Result<Option<Slot>> {
    let mut first_claimed: Option<Slot> = None;
    for slot_id in to_claim.union(to_release) {
        let slot = store.current_for_write(tx, "Slot", slot_id).await?.filter(|s| !s.deleted);
        if to_release.contains(slot_id) {
            release_place(store, tx, p, slot_id, slot).await?;
            continue;
        }
        let Some(slot) = slot else {
            return Err(Error::Unprocessable(vec![Issue::error(
                "not-found",
                Some("Appointment.slot".into()),
                format!("Slot/{slot_id} does not exist"),
            )]));
        };
        let claimed = claim_place(store, tx, p, slot_id, &slot).await?;
        if first_claimed.is_none() && p.new.and_then(|n| n.slots.first()) == Some(*slot_id) {
            first_claimed = Some(claimed);
        }
    }
    Ok(first_claimed)
}

async fn release_place(store: &Store, tx: &mut Tx, p: &Places<'_>, slot_id: &str, slot: Option<Stored>) -> Result<()> {
    store.give_back_place(tx, p.id, slot_id).await?;
    if let Some(slot) = slot {
        let live = store.live_claims(tx, slot_id, None, p.now).await?;
        let body = slot_body(&slot)?;
        let view = Slot::of(slot_id, &body, p.base)?;
        sync_slot_status(store, tx, &slot, body, &view, live).await?;
        if matches!(view.status.as_str(), "free" | "busy") && live < view.capacity {
            super::waitlist::offer_freed(store, tx, &view).await?;
        }
    }
    Ok(())
}

/// Takes a place in `slot` (locked by the caller); answers the slot's view.
async fn claim_place(store: &Store, tx: &mut Tx, p: &Places<'_>, slot_id: &str, slot: &Stored) -> Result<Slot> {
    let body = slot_body(slot)?;
    let view = Slot::of(slot_id, &body, p.base)?;
    // A place already held by this appointment is not checked again.
    if let Some(n) = p.new.filter(|_| !p.before.contains(&slot_id.to_string())) {
        rules::check_claim(n, &view, &p.requests, p.now, p.access.is_privileged())?;
    }
    let place =
        PlaceClaim { slot: slot_id, appointment: p.id, now: p.now, expires: p.expires, holder: p.holder.clone() };
    let live = store.take_place(tx, place, view.capacity).await?;
    if live >= view.capacity {
        return Err(Error::Conflict(format!(
            "Slot/{slot_id} is fully booked ({live} of {}): choose another slot",
            view.capacity
        )));
    }
    sync_slot_status(store, tx, slot, body, &view, live + 1).await?;
    Ok(view)
}

/// What follows the places: the booking's stamp, its ticket and its message.
async fn after_places(
    store: &Store,
    tx: &mut Tx,
    p: &Places<'_>,
    old: Option<&Appointment>,
    new: Option<&mut Value>,
    first_claimed: Option<&Slot>,
) -> Result<()> {
    let old_status = old.map(|o| o.status);
    match (new, p.new) {
        (Some(body), Some(view)) => {
            let status_changed = old_status != Some(view.status);
            stamp_booking(store, tx, p, old, body, first_claimed).await?;
            if old.is_some() && status_changed {
                crate::billing::ticket_on_change(store, tx, p.access, p.id, Some(view)).await?;
            }
            if status_changed {
                crate::messaging::appointment_message(store, tx, p.id, old_status, (view, body)).await?;
            }
        }
        _ if old.is_some() => crate::billing::ticket_on_change(store, tx, p.access, p.id, None).await?,
        _ => {}
    }
    Ok(())
}

/// Only the operator who holds an appointment may book it; a waiting-list offer
/// (`offered`) also the patient's own app (which sees no one else's appointments).
async fn check_holder(store: &Store, tx: &mut Tx, access: &Access, id: &str, offered: bool) -> Result<()> {
    if offered && access.actor().is_some_and(|a| a.role == crate::auth::Role::PatientApp) {
        return Ok(());
    }
    let holders = store.holders(tx, id).await?;
    let me = access.actor().map(holder_of);
    match holders.iter().flatten().find(|h| Some(*h) != me.as_ref()) {
        Some(h) => Err(Error::Forbidden(format!(
            "Appointment/{id} is held by {}: only the holder may book it",
            h.replace('|', " user ")
        ))),
        None => Ok(()),
    }
}

/// The ServiceRequests an appointment is based on, as the rules see them.
pub(super) async fn requests(store: &Store, tx: &mut Tx, ids: &[String]) -> Result<Vec<Prescription>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let found = crate::store::current_seen(tx, store.dialect(), "ServiceRequest", id).await?;
        let Some(v) = found.map(|s| s.value()).transpose()?.flatten() else {
            return Err(Error::Unprocessable(vec![Issue::error(
                "not-found",
                Some("Appointment.basedOn".into()),
                format!("ServiceRequest/{id} does not exist"),
            )]));
        };
        out.push(Prescription::of(id, &v, &store.settings().base)?);
    }
    Ok(out)
}

/// `free` ↔ `busy` as the slot fills and empties, given the places now taken (a
/// closed or tentative slot is left as it is).
async fn sync_slot_status(
    store: &Store,
    tx: &mut Tx,
    slot: &Stored,
    mut body: Value,
    view: &Slot,
    live: i64,
) -> Result<()> {
    let wanted = match view.status.as_str() {
        "free" if live >= view.capacity => "busy",
        "busy" if live < view.capacity => "free",
        _ => return Ok(()),
    };
    SlotMut(&mut body).set_status(wanted);
    store.next_version(tx, slot, "PUT", Some(body)).await?;
    Ok(())
}

/// A hold's expiry on the appointment; on its first booking (not an
/// administrator's: migrating data keeps the identifiers sent) who booked it, the
/// booking's record, its code (unique, kept in `booking_codes`) and its ticket.
async fn stamp_booking(
    store: &Store,
    tx: &mut Tx,
    p: &Places<'_>,
    old: Option<&Appointment>,
    body: &mut Value,
    slot: Option<&Slot>,
) -> Result<()> {
    let Some(new) = p.new else { return Ok(()) };
    AppointmentMut::new(body, p.base)?.set_hold_expires(p.expires);
    let first_booking = new.status == Status::Booked && !old.is_some_and(|o| o.status == Status::Booked);
    if !first_booking || p.access.is_privileged() {
        return Ok(());
    }
    if let Some(actor) = p.access.actor() {
        AppointmentMut::new(body, p.base)?.add_booked_by(actor);
    }
    records::record_booking(store, tx, p.access, p.id, new, slot).await?;
    let mut booked = new.clone();
    if booked.booking_code.is_none() {
        booked.booking_code = Some(assign_booking_code(store, tx, p, body).await?);
    }
    crate::billing::ticket_on_booking(store, tx, p.access, p.id, (&booked, body), slot).await
}

/// A new booking code (unique, kept in `booking_codes`) on the appointment.
async fn assign_booking_code(store: &Store, tx: &mut Tx, p: &Places<'_>, body: &mut Value) -> Result<String> {
    for _ in 0..8 {
        let code = rules::new_booking_code();
        if store.claim_booking_code(tx, &code, p.id).await? {
            AppointmentMut::new(body, p.base)?.add_booking_code(&code);
            return Ok(code);
        }
    }
    Err(Error::Busy("no free booking code was found; retry".into()))
}

/// Who holds a place: the booking point and its user.
pub(super) fn holder_of(actor: &crate::access::Actor) -> String {
    format!("{}|{}", actor.org.as_deref().unwrap_or("-"), actor.sub)
}

fn slot_body(slot: &Stored) -> Result<Value> {
    Ok(slot.value()?.unwrap_or(Value::Null))
}

/// What every place a write takes or gives back needs to know.
struct Places<'a> {
    access: &'a Access,
    id: &'a str,
    base: &'a str,
    now: i64,
    /// A hold's expiry (`None` for a booking).
    expires: Option<i64>,
    /// Who holds the places taken (a waiting-list offer: who enrolled the patient).
    holder: Option<String>,
    /// The places the appointment held before this write.
    before: &'a BTreeSet<&'a String>,
    new: Option<&'a Appointment>,
    requests: Vec<Prescription>,
}

/// Who may set the new status, and that a new appointment names its slot.
fn check_new(access: &Access, old: Option<&Appointment>, new: Option<&Appointment>) -> Result<()> {
    let Some(n) = new else { return Ok(()) };
    rules::check_status(access.actor(), old.map(|o| o.status), n.status)?;
    // A waiting-list entry has no slot yet (`waitlist::on_write` checks the rest).
    if n.slots.is_empty() && n.status != Status::Waitlist && !access.is_privileged() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "required",
            Some("Appointment.slot".into()),
            "an appointment is booked on a slot (only an administrator may store one without, for data migration)",
        )]));
    }
    Ok(())
}
