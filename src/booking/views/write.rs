//! The booking rules' writes into a resource about to be stored: the one place that
//! knows where in an Appointment's or a Slot's JSON each thing they set goes.

use serde_json::{json, Map, Value};

use super::Status;
use crate::access::Actor;
use crate::fhir::names;

/// An Appointment body the rules complete before it is stored.
pub struct AppointmentMut<'a> {
    body: &'a mut Map<String, Value>,
    base: &'a str,
}

impl<'a> AppointmentMut<'a> {
    /// `body` as an Appointment to complete; a body that is not a JSON object was
    /// refused before the rules run, and is refused again here.
    pub fn new(body: &'a mut Value, base: &'a str) -> crate::Result<AppointmentMut<'a>> {
        match body {
            Value::Object(body) => Ok(AppointmentMut { body, base }),
            _ => Err(crate::Error::Invalid(vec![crate::error::Issue::error(
                "structure",
                Some("Appointment".into()),
                "an Appointment is a JSON object",
            )])),
        }
    }

    fn object(&mut self) -> &mut Map<String, Value> {
        self.body
    }

    pub fn set_status(&mut self, status: Status) -> &mut Self {
        self.object().insert("status".into(), json!(status.as_str()));
        self
    }

    pub fn set_id(&mut self, id: &str) -> &mut Self {
        self.object().insert("id".into(), json!(id));
        self
    }

    /// Based on the ServiceRequest `id`.
    pub fn set_based_on(&mut self, id: &str) -> &mut Self {
        self.set_requests(&[id.to_string()])
    }

    /// Based on the ServiceRequests `ids`.
    pub fn set_requests(&mut self, ids: &[String]) -> &mut Self {
        let refs: Vec<Value> = ids.iter().map(|id| json!({ "reference": format!("ServiceRequest/{id}") })).collect();
        self.object().insert("basedOn".into(), Value::Array(refs));
        self
    }

    /// Cancelled, saying why.
    pub fn cancel(&mut self, reason: &str) -> &mut Self {
        self.set_status(Status::Cancelled);
        self.object().insert("cancelationReason".into(), json!({ "text": reason }));
        self
    }

    /// Removes cupola's extension `name` (the element goes when it empties).
    pub fn drop_extension(&mut self, name: &str) -> &mut Self {
        let url = names::structure(self.base, name);
        let o = self.object();
        if let Some(list) = o.get_mut("extension").and_then(Value::as_array_mut) {
            list.retain(|e| e.get("url").and_then(Value::as_str) != Some(url.as_str()));
            if list.is_empty() {
                o.remove("extension");
            }
        }
        self
    }

    fn push(&mut self, element: &str, item: Value) {
        match self.object().entry(element).or_insert_with(|| json!([])) {
            Value::Array(a) => a.push(item),
            other => *other = json!([item]),
        }
    }

    /// When a hold lapses (`hold-expires`), or none for what is not a hold.
    pub fn set_hold_expires(&mut self, until: Option<i64>) -> &mut Self {
        self.drop_extension("hold-expires");
        if let Some(until) = until {
            let url = names::structure(self.base, "hold-expires");
            self.push("extension", json!({"url": url, "valueInstant": crate::fhir::meta::instant(until)}));
        }
        self
    }

    /// When a waiting-list entry joined the line (`waitlist-enrolled`).
    pub fn set_enrolled(&mut self, at: i64) -> &mut Self {
        self.drop_extension("waitlist-enrolled");
        let url = names::structure(self.base, "waitlist-enrolled");
        self.push("extension", json!({"url": url, "valueInstant": crate::fhir::meta::instant(at)}));
        self
    }

    /// On the one slot `id` (a waiting-list entry given the slot it is offered).
    pub fn set_slot(&mut self, id: &str) -> &mut Self {
        self.object().insert("slot".into(), json!([{ "reference": format!("Slot/{id}") }]));
        self
    }

    pub fn add_booking_code(&mut self, code: &str) -> &mut Self {
        let id = json!({"system": names::booking_code_system(self.base), "value": code});
        self.push("identifier", id);
        self
    }

    /// Records who booked: the booking point (its Organization), its channel and the
    /// user, as the extension `booked-by`, unless the appointment already carries one.
    pub fn add_booked_by(&mut self, actor: &Actor) -> &mut Self {
        let url = names::structure(self.base, "booked-by");
        let has = self
            .body
            .get("extension")
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|e| e.get("url").and_then(Value::as_str) == Some(url.as_str())));
        if has {
            return self;
        }
        let mut parts = vec![json!({"url": "user", "valueString": actor.sub})];
        if let Some(org) = &actor.org {
            parts.push(json!({"url": "point", "valueReference": {"reference": format!("Organization/{org}")}}));
        }
        let channel = actor.channel.clone().unwrap_or_else(|| actor.role.as_str().to_string());
        let coding = json!({"system": names::channel_system(self.base), "code": channel});
        parts.push(json!({"url": "channel", "valueCoding": coding}));
        self.push("extension", json!({"url": url, "extension": parts}));
        self
    }

    /// What a booking made from a bare resource takes from its slot: the times and
    /// the service it does not say, and the agenda's actors as participants.
    pub fn complete_from_slot(&mut self, slot: &Value, actors: Vec<Value>) -> &mut Self {
        for key in ["start", "end", "serviceType"] {
            if let Some(v) = slot.get(key) {
                self.object().entry(key).or_insert_with(|| v.clone());
            }
        }
        if let Some(list) = self.object().get_mut("participant").and_then(Value::as_array_mut) {
            for actor in actors {
                if !list.iter().any(|p| p.get("actor").and_then(|a| a.get("reference")) == actor.get("reference")) {
                    list.push(json!({"actor": actor, "status": "accepted"}));
                }
            }
        }
        self
    }
}

/// A Slot body the rules change: `free` ↔ `busy` as it fills and empties.
pub struct SlotMut<'a>(pub &'a mut Value);

impl SlotMut<'_> {
    pub fn set_status(&mut self, status: &str) {
        if let Some(o) = self.0.as_object_mut() {
            o.insert("status".into(), json!(status));
        }
    }
}
