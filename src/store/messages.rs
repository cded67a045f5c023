//! The messages a change sends, written to the outbox in the change's own
//! transaction: which event it is, which provider it goes to (the slot's provider,
//! the charge item's performer), and what the provider needs with it (patient,
//! request, slot, place, charge item). The Bundle itself is `messaging::build`.

use serde_json::Value;

use super::{current, new_id, now_micros, outbox::Outgoing, Store, Tx};
use crate::booking::rules;
use crate::fhir::names;
use crate::messaging::{self, Destination, Event};
use crate::Result;

fn body_of(s: Option<super::Stored>) -> Value {
    s.and_then(|s| s.body).and_then(|b| serde_json::from_str(&b).ok()).unwrap_or(Value::Null)
}

/// The id-part of `Type/id` references in `list` (a reference or an array of them).
fn ids<'a>(v: &'a Value, prefix: &str) -> Vec<&'a str> {
    let one = |r: &'a Value| r["reference"].as_str().and_then(|s| s.strip_prefix(prefix)).filter(|s| !s.contains('/'));
    match v {
        Value::Array(list) => list.iter().filter_map(one).collect(),
        v => one(v).into_iter().collect(),
    }
}

/// An Organization's provider code (identifier `{canonical-base}/sid/provider`).
pub(crate) fn provider_code(organization: &Value, base: &str) -> Option<String> {
    let system = names::provider_identifier(base);
    organization["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"].as_str() == Some(system.as_str()))
        .and_then(|i| i["value"].as_str())
        .map(str::to_string)
}

/// The event a change of an appointment's status is, if any.
pub(crate) fn appointment_event(old: Option<&str>, new: &Value) -> Option<Event> {
    let status = new["status"].as_str().unwrap_or_default();
    let was_booked = matches!(old, Some("booked" | "arrived" | "checked-in"));
    match status {
        "booked" if !matches!(old, Some("booked")) => Some(Event::BOOKED),
        "cancelled" if was_booked => {
            if new["cancelationReason"]["text"].as_str() == Some(crate::booking::RESCHEDULED) {
                Some(Event::RESCHEDULED)
            } else {
                Some(Event::CANCELLED)
            }
        }
        "arrived" | "checked-in" | "fulfilled" | "noshow" | "entered-in-error" if old.is_some_and(|o| o != status) => {
            Some(Event::STATUS_CHANGED)
        }
        _ => None,
    }
}

impl Store {
    /// The message of a change of appointment `id` (`old` its status before,
    /// `new` its body as it is being stored), to the provider of its slot.
    pub(crate) async fn appointment_message(
        &self,
        tx: &mut Tx,
        id: &str,
        old: Option<&str>,
        new: &Value,
    ) -> Result<()> {
        let Some(event) = appointment_event(old, new) else { return Ok(()) };
        let base = self.settings.base.clone();
        let slot = match ids(&new["slot"], "Slot/").first() {
            Some(s) => body_of(current(tx, self.dialect, "Slot", s, false).await?),
            None => return Ok(()),
        };
        let ext = |name: &str| rules::extension(&slot, &names::structure(&base, name)).cloned();
        let Some(org) =
            ext("slot-provider").and_then(|e| e["valueReference"]["reference"].as_str().map(str::to_string))
        else {
            return Ok(());
        };
        let mut related = Vec::new();
        let patients: Vec<String> = new["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["actor"]["reference"].as_str()?.strip_prefix("Patient/").map(str::to_string))
            .collect();
        for p in patients {
            related.push(body_of(current(tx, self.dialect, "Patient", &p, false).await?));
        }
        for sr in ids(&new["basedOn"], "ServiceRequest/") {
            related.push(body_of(current(tx, self.dialect, "ServiceRequest", sr, false).await?));
        }
        let location = ext("slot-location").and_then(|e| e["valueReference"]["reference"].as_str().map(str::to_string));
        related.push(slot);
        if let Some(loc) = location.as_deref().and_then(|l| l.strip_prefix("Location/")) {
            related.push(body_of(current(tx, self.dialect, "Location", loc, false).await?));
        }
        let items: Vec<String> = sqlx::query_scalar("SELECT charge_item FROM ticket_lines WHERE appointment = $1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
        for ci in items {
            related.push(body_of(current(tx, self.dialect, "ChargeItem", &ci, false).await?));
        }
        let mut focus = new.clone();
        focus["id"] = Value::String(id.to_string());
        self.send(tx, event, org.trim_start_matches("Organization/"), focus, related).await
    }

    /// The message of `event` about ChargeItem `id`, to its performing provider,
    /// with its patient and the appointment it is for.
    pub(crate) async fn charge_message(&self, tx: &mut Tx, event: Event, id: &str) -> Result<()> {
        let item = body_of(current(tx, self.dialect, "ChargeItem", id, false).await?);
        let Some(org) = ids(&item["performingOrganization"], "Organization/").first().map(|s| s.to_string()) else {
            return Ok(());
        };
        let mut related = Vec::new();
        for p in ids(&item["subject"], "Patient/") {
            related.push(body_of(current(tx, self.dialect, "Patient", p, false).await?));
        }
        for a in ids(&item["supportingInformation"], "Appointment/") {
            related.push(body_of(current(tx, self.dialect, "Appointment", a, false).await?));
        }
        self.send(tx, event, &org, item, related).await
    }

    /// Writes the message to provider Organization `org` to the outbox, if the
    /// organisation is a provider (it has a provider code) that takes this event;
    /// held as failed, with the reason, when a code cannot be mapped.
    async fn send(&self, tx: &mut Tx, event: Event, org: &str, focus: Value, related: Vec<Value>) -> Result<()> {
        let base = self.settings.base.clone();
        let organization = body_of(current(tx, self.dialect, "Organization", org, false).await?);
        let Some(code) = provider_code(&organization, &base) else {
            tracing::debug!(org, "no provider code: no message");
            return Ok(());
        };
        let m = self.settings.messaging.clone();
        if !m.routing.wants(&code, event.resource, event.name) {
            return Ok(());
        }
        let endpoint = match ids(&organization["endpoint"], "Endpoint/").first() {
            Some(e) => {
                body_of(current(tx, self.dialect, "Endpoint", e, false).await?)["address"].as_str().map(str::to_string)
            }
            None => None,
        };
        let to = Destination { code: code.clone(), organization: org.to_string(), endpoint };
        let id = new_id();
        let focus_ref = format!(
            "{}/{}",
            focus["resourceType"].as_str().unwrap_or_default(),
            focus["id"].as_str().unwrap_or_default()
        );
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
        self.enqueue(
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
}
