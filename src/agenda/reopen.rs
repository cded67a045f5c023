//! `$reopen`, the opposite of a closure: the agenda's `busy-unavailable` slots in a
//! period are open again (`free`, or `busy` when the appointments kept on them fill
//! them), the closure's reason taken out of their `comment`, and each slot that is
//! free again is offered to the first in its waiting line (`crate::booking`), in the
//! same transaction and under the slot's row lock.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::closure::{check_span, overlap, slots_in, Closure};
use super::generate::read_schedule;
use crate::access::Access;
use crate::booking::views::{Slot, SlotMut};
use crate::store::{now_micros, Store, Tx};
use crate::Result;

/// What a reopening did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReopenReport {
    /// The slots open again, in start order.
    pub slots_reopened: Vec<String>,
    /// The waiting-list Appointments offered one of them.
    pub offered: Vec<String>,
}

/// Reopens the closed slots of the schedule overlapping `closure` (its `reason`:
/// the closure's reason to take out of their comment), in one transaction. An empty
/// or reversed period → `Invalid`; a missing Schedule → `NotFound`.
pub async fn reopen(store: &Store, schedule_id: &str, closure: &Closure) -> Result<ReopenReport> {
    check_span(closure)?;
    let mut tx = store.begin().await?;
    read_schedule(store, &mut tx, schedule_id).await?;
    let mut reopened: Vec<(DateTime<FixedOffset>, String)> = Vec::new();
    for id in slots_in(store, &mut tx, (schedule_id, "busy-unavailable"), closure).await? {
        if let Some(start) = reopen_slot(store, &mut tx, &id, closure).await? {
            reopened.push((start, id));
        }
    }
    reopened.sort();
    let mut report = ReopenReport::default();
    for (_, id) in reopened {
        if let Some(a) = crate::booking::offer_slot(store, &mut tx, &id).await? {
            report.offered.push(a);
        }
        report.slots_reopened.push(id);
    }
    tx.commit().await?;
    tracing::info!(
        schedule = schedule_id,
        slots = report.slots_reopened.len(),
        offered = report.offered.len(),
        "agenda reopened"
    );
    Ok(report)
}

/// Opens `Slot/id` (row-locked here) when it overlaps the period; its start.
async fn reopen_slot(store: &Store, tx: &mut Tx, id: &str, closure: &Closure) -> Result<Option<DateTime<FixedOffset>>> {
    let Some(stored) = store.current_for_write(tx, "Slot", id).await?.filter(|s| !s.deleted) else { return Ok(None) };
    let mut body = stored.value()?.unwrap_or(Value::Null);
    let Some(start) = overlap(&body, closure) else { return Ok(None) };
    let view = Slot::of(id, &body, &store.settings().base)?;
    // The appointments a closure kept on the slot still take their places.
    let live = store.live_claims(tx, id, None, now_micros()).await?;
    SlotMut(&mut body).set_status(if live >= view.capacity { "busy" } else { "free" });
    without_reason(&mut body, &closure.reason);
    store.update_in(tx, &Access::gateway(), "Slot", id, body, None).await?;
    Ok(Some(start))
}

/// The slot's `comment` without the closure's `reason` (a closure adds it after
/// `; `); none left when it said nothing else.
fn without_reason(slot: &mut Value, reason: &str) {
    let Some(fields) = slot.as_object_mut() else { return };
    let kept: Vec<String> = match fields.get("comment").and_then(Value::as_str) {
        Some(c) => c.split("; ").filter(|p| *p != reason).map(str::to_string).collect(),
        None => return,
    };
    if kept.is_empty() {
        fields.remove("comment");
    } else {
        fields.insert("comment".into(), Value::String(kept.join("; ")));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_closures_reason_leaves_the_comment() {
        let mut slot = json!({"comment": "sciopero"});
        super::without_reason(&mut slot, "sciopero");
        assert!(slot.get("comment").is_none());
        let mut slot = json!({"comment": "note; sciopero"});
        super::without_reason(&mut slot, "sciopero");
        assert_eq!(slot["comment"], "note");
    }
}
