//! The messages a change sends, written to the outbox in the change's own
//! transaction: which event it is, which provider it goes to (the slot's provider,
//! the charge item's performer), and what the provider needs with it (patient,
//! request, slot, place, charge item). The Bundle itself is `messaging::build`.

use serde_json::Value;

use crate::booking::rules;
use crate::fhir::names;
use crate::messaging::{self, Destination, Event};
use crate::store::value_of;
use crate::store::{current, current_seen, new_id, now_micros, seen_ahead, Outgoing, Store, Tx};
use crate::Result;

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
        match appointment_event(old, new) {
            Some(event) => self.message_about(tx, event, id, new).await,
            None => Ok(()),
        }
    }

    /// The message of a closure to the provider of each appointment it affects
    /// (their slots closed): they are to be rebooked.
    pub(crate) async fn closure_messages(&self, tx: &mut Tx, appointments: &[String]) -> Result<()> {
        for id in appointments {
            let body = value_of(current_seen(tx, self.dialect(), "Appointment", id).await?)?;
            if body.is_object() {
                self.message_about(tx, Event::CLOSURE, id, &body).await?;
            }
        }
        Ok(())
    }

    /// The message of `event` about appointment `id` (`new` its body), to the
    /// provider of its slot, with what the provider needs.
    async fn message_about(&self, tx: &mut Tx, event: Event, id: &str, new: &Value) -> Result<()> {
        let base = self.settings().base.clone();
        let slot = match ids(&new["slot"], "Slot/").first() {
            Some(s) => value_of(current_seen(tx, self.dialect(), "Slot", s).await?)?,
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
        let location = ext("slot-location").and_then(|e| e["valueReference"]["reference"].as_str().map(str::to_string));
        let location_id = location.as_deref().and_then(|l| l.strip_prefix("Location/"));
        // What the message carries, and the organisation `send` reads, in one round trip.
        let ahead: Vec<(&str, &str)> = patients
            .iter()
            .map(|p| ("Patient", p.as_str()))
            .chain(ids(&new["basedOn"], "ServiceRequest/").into_iter().map(|sr| ("ServiceRequest", sr)))
            .chain(location_id.map(|l| ("Location", l)))
            .chain([("Organization", org.trim_start_matches("Organization/"))])
            .collect();
        seen_ahead(tx, &ahead).await?;
        for p in patients {
            related.push(value_of(current_seen(tx, self.dialect(), "Patient", &p).await?)?);
        }
        for sr in ids(&new["basedOn"], "ServiceRequest/") {
            related.push(value_of(current_seen(tx, self.dialect(), "ServiceRequest", sr).await?)?);
        }
        related.push(slot);
        if let Some(loc) = location_id {
            related.push(value_of(current_seen(tx, self.dialect(), "Location", loc).await?)?);
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
            related.push(value_of(current_seen(tx, self.dialect(), "ChargeItem", &ci).await?)?);
        }
        let mut focus = new.clone();
        focus["id"] = Value::String(id.to_string());
        self.send(tx, event, org.trim_start_matches("Organization/"), focus, related).await
    }

    /// The message of `event` about ChargeItem `id`, to its performing provider,
    /// with its patient and the appointment it is for (`appointment`: its body as the
    /// transaction is writing it, when not stored yet).
    pub(crate) async fn charge_message(
        &self,
        tx: &mut Tx,
        event: Event,
        id: &str,
        appointment: Option<&Value>,
    ) -> Result<()> {
        let item = value_of(current_seen(tx, self.dialect(), "ChargeItem", id).await?)?;
        let Some(org) = ids(&item["performingOrganization"], "Organization/").first().map(|s| s.to_string()) else {
            return Ok(());
        };
        let ahead: Vec<(&str, &str)> = ids(&item["subject"], "Patient/")
            .into_iter()
            .map(|p| ("Patient", p))
            .chain([("Organization", org.as_str())])
            .collect();
        seen_ahead(tx, &ahead).await?;
        let mut related = Vec::new();
        for p in ids(&item["subject"], "Patient/") {
            related.push(value_of(current_seen(tx, self.dialect(), "Patient", p).await?)?);
        }
        for a in ids(&item["supportingInformation"], "Appointment/") {
            match appointment.filter(|b| b["id"].as_str() == Some(a)) {
                Some(b) => related.push(b.clone()),
                None => related.push(value_of(current_seen(tx, self.dialect(), "Appointment", a).await?)?),
            }
        }
        self.send(tx, event, &org, item, related).await
    }

    /// Writes the message to provider Organization `org` to the outbox, if the
    /// organisation is a provider (it has a provider code) that takes this event;
    /// held as failed, with the reason, when a code cannot be mapped.
    async fn send(&self, tx: &mut Tx, event: Event, org: &str, focus: Value, related: Vec<Value>) -> Result<()> {
        self.send_as(tx, &new_id(), event, org, focus, related).await
    }

    /// [`Store::send`] with the message id given (an id already in the outbox is
    /// not written again).
    async fn send_as(
        &self,
        tx: &mut Tx,
        id: &str,
        event: Event,
        org: &str,
        focus: Value,
        related: Vec<Value>,
    ) -> Result<()> {
        let base = self.settings().base.clone();
        let organization = value_of(current_seen(tx, self.dialect(), "Organization", org).await?)?;
        let Some(code) = provider_code(&organization, &base) else {
            tracing::debug!(org, "no provider code: no message");
            return Ok(());
        };
        let m = self.settings().messaging.clone();
        if !m.routing.wants(&code, event.resource, event.name) {
            return Ok(());
        }
        let endpoint = match ids(&organization["endpoint"], "Endpoint/").first() {
            Some(e) => value_of(current_seen(tx, self.dialect(), "Endpoint", e).await?)?["address"]
                .as_str()
                .map(str::to_string),
            None => None,
        };
        let to = Destination { code: code.clone(), organization: org.to_string(), endpoint };
        let id = id.to_string();
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

    /// The daily appointment lists of `day` (Europe/Rome): one message per provider
    /// with its appointments of the day (a `List`, then the Appointments and their
    /// patients). `scheduled`: the message id is `daily-<provider org>-<day>`, so
    /// that gateways sharing the database send each list once. Returns the
    /// providers and their number of appointments.
    pub async fn dispatch_daily_lists(&self, day: chrono::NaiveDate, scheduled: bool) -> Result<Vec<(String, usize)>> {
        let at = |d: chrono::NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(chrono_tz::Europe::Rome).earliest())
                .map(|t| t.timestamp_micros())
                .unwrap_or_default()
        };
        let (from, to) = (at(day), at(day.succ_opt().unwrap_or(day)));
        let mut c = self.conn().await?;
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
        let base = self.settings().base.clone();
        let mut out = Vec::new();
        for (org, appointments) in by_provider {
            let mut tx = self.begin().await?;
            let mut related = Vec::new();
            let mut items = Vec::new();
            for a in appointments {
                let body = value_of(current(&mut tx, self.dialect(), "Appointment", &a, false).await?)?;
                if !matches!(body["status"].as_str(), Some("booked" | "arrived" | "checked-in")) {
                    continue;
                }
                items.push(serde_json::json!({"item": {"reference": format!("Appointment/{a}")}}));
                let patient = body["participant"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|p| p["actor"]["reference"].as_str()?.strip_prefix("Patient/").map(str::to_string));
                related.push(body);
                if let Some(p) = patient {
                    let pb = value_of(current(&mut tx, self.dialect(), "Patient", &p, false).await?)?;
                    if pb.is_object() && !related.iter().any(|r| r["resourceType"] == "Patient" && r["id"] == pb["id"])
                    {
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
            self.send_as(&mut tx, &id, Event::DAILY_LIST, &org, list, related).await?;
            tx.commit().await?;
            out.push((org, count));
        }
        Ok(out)
    }
}
