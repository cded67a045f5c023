//! The booking and billing rules, registered with the store as write hooks for
//! their resource types (see `crate::store::Hooks`): whatever path writes an
//! Appointment, a ServiceRequest, an AppointmentResponse, a PaymentNotice or a Slot,
//! these run in its transaction.

use std::sync::Arc;

use super::{claims, prescriptions};
use crate::store::{Hooked, Hooks, Pending, Store, Tx, Verdict, WriteHook};

/// A place in a slot taken, moved or given back; the ticket and messages follow.
struct Appointments;
/// A prescription's NRE and catalog codes, and its limits per branch.
struct Prescriptions;
/// A declined proposal: the guarantee waived when within the deadline.
struct Responses;
/// A payment recorded once, never changed.
struct Payments;
/// A slot holding an appointment is not removed.
struct Slots;

impl WriteHook for Appointments {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            claims::appointment_write(store, tx, w.access, w.id, w.old, w.new).await?;
            Ok(Verdict::Proceed)
        })
    }
}

impl WriteHook for Prescriptions {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            if let Some(new) = w.new {
                prescriptions::service_request_write(store, tx, w.id, new).await?;
            }
            Ok(Verdict::Proceed)
        })
    }
}

impl WriteHook for Responses {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            if let Some(new) = w.new {
                prescriptions::appointment_response_write(store, tx, w.id, new).await?;
            }
            Ok(Verdict::Proceed)
        })
    }
}

impl WriteHook for Payments {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            match (w.creating, w.new) {
                // A create: recorded, or found recorded already (a retry).
                (true, Some(new)) => match crate::billing::payment_write(store, tx, w.access, w.id, new).await? {
                    Some(recorded) => Ok(Verdict::Recorded(recorded)),
                    None => Ok(Verdict::Proceed),
                },
                _ => {
                    crate::billing::recorded_payment_unchanged(tx, w.id).await?;
                    Ok(Verdict::Proceed)
                }
            }
        })
    }
}

impl WriteHook for Slots {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async move {
            if w.new.is_none() {
                refuse_if_booked(store, tx, w.id).await?;
            }
            Ok(Verdict::Proceed)
        })
    }

    fn on_create(&self) -> bool {
        false
    }
}

/// A slot holding an appointment is not removed (by a DELETE, a conditional one or
/// an agenda sync transaction): the appointment must be moved first.
async fn refuse_if_booked(store: &Store, tx: &mut Tx, slot_id: &str) -> crate::Result<()> {
    let query = [
        ("slot".to_string(), format!("Slot/{slot_id}")),
        ("status".to_string(), crate::agenda::HOLDING_STATES.to_string()),
    ];
    let held = store.search_ids_in(tx, &crate::access::Access::gateway(), "Appointment", &query, 1).await?;
    match held.first() {
        Some(a) => Err(crate::Error::Conflict(format!(
            "Slot/{slot_id} holds Appointment/{a}: rebook or cancel it before removing the slot"
        ))),
        None => Ok(()),
    }
}

/// Every rule of the booking and billing domain, by resource type.
pub fn all() -> Hooks {
    Hooks::default()
        .with("Appointment", Arc::new(Appointments))
        .with("ServiceRequest", Arc::new(Prescriptions))
        .with("AppointmentResponse", Arc::new(Responses))
        .with("PaymentNotice", Arc::new(Payments))
        .with("Slot", Arc::new(Slots))
}

/// `store` with the booking settings of this gateway and the domain's write hooks:
/// the one way the gateway and its commands get a store that applies the rules.
pub fn configured(store: Store, settings: super::Settings) -> Store {
    let lanes = settings.book_lanes;
    store.with_domain(settings, lanes).with_hooks(all())
}
