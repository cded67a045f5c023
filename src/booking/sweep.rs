//! Expired holds and proposals go away by themselves: the gateway sweeps them
//! every `--sweep-ms`, so nobody runs a job by hand. Correctness does not wait for
//! the sweep: an expired hold no longer counts against its slot's capacity
//! (`booking::claims`), and an expired proposal can no longer be held or booked.

use std::time::Duration;

use super::views::{Appointment, AppointmentMut, Status};

use crate::access::Access;
use crate::store::{now_micros, Store};
use crate::Result;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub holds: usize,
    pub proposals: usize,
}

/// Per sweep, at most this many of each.
const BATCH: i64 = 200;

/// Cancels the expired holds (their slots free) and deletes the expired proposals.
pub async fn sweep(store: &Store) -> Result<Swept> {
    let now = now_micros();
    let gateway = Access::gateway();
    let mut out = Swept::default();
    for id in store.expired_holds(now, BATCH).await? {
        let mut tx = store.begin().await?;
        let cur = store.current_for_write(&mut tx, "Appointment", &id).await?;
        let body = cur.map(|c| c.value()).transpose()?.flatten();
        if let Some(mut body) = body.filter(|b| status_of(store, b) == Status::Pending) {
            // A lapsed waiting-list offer leaves the line (its slot goes to the next).
            let offer = Appointment::of(&body, &store.settings().base).is_ok_and(|a| a.enrolled.is_some());
            let why = if offer { "waitlist offer expired" } else { "hold expired" };
            AppointmentMut::new(&mut body, &store.settings().base)?.cancel(why);
            store.update_in(&mut tx, &gateway, "Appointment", &id, body, None).await?;
            out.holds += 1;
        }
        tx.commit().await?;
    }
    for id in store.expired_proposals(now, BATCH).await? {
        let mut tx = store.begin().await?;
        store.forget_proposal(&mut tx, &id).await?;
        let cur = store.current_for_write(&mut tx, "Appointment", &id).await?;
        let body = cur.map(|c| c.value()).transpose()?.flatten();
        // A proposal since held or booked is no longer one. One that lapsed untouched
        // leaves only its deletion; one a patient declined keeps its versions (the
        // AppointmentResponse that waives the guarantee points at it).
        if body.is_some_and(|b| status_of(store, &b) == Status::Proposed) {
            store.delete_in(&mut tx, &gateway, "Appointment", &id).await?;
            if !store.is_referenced(&mut tx, "Appointment", &id).await? {
                store.expunge_deleted(&mut tx, "Appointment", &id).await?;
            }
            out.proposals += 1;
        }
        tx.commit().await?;
    }
    Ok(out)
}

/// The status of a stored appointment (none when it cannot be read).
fn status_of(store: &Store, body: &serde_json::Value) -> Status {
    Appointment::of(body, &store.settings().base).map(|a| a.status).unwrap_or_default()
}

/// Sweeps every `every` until the process ends; a failed sweep is logged and tried
/// again at the next tick.
pub async fn sweep_forever(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&store).await {
            Ok(s) if s != Swept::default() => {
                tracing::info!(holds = s.holds, proposals = s.proposals, "expired holds and proposals swept")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweeping expired holds failed; retrying at the next tick"),
        }
    }
}
