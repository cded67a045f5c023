//! The booking rules as plain functions over the resources' JSON: what an
//! Appointment claims, whether a slot may be claimed, who may set which status.
//! The store applies them inside the write's transaction (`store::claims`).

use serde_json::{json, Value};

use crate::access::Actor;
use crate::auth::Role;
use crate::error::Issue;
use crate::fhir::{meta, names};
use crate::{Error, Result};

/// Appointment statuses that take a place in their slots' capacity. A proposal
/// (`proposed`) or a waiting-list entry does not; a hold (`pending`) does, until it
/// expires.
pub const CLAIMING: &[&str] = &["pending", "booked", "arrived", "checked-in", "fulfilled", "noshow"];

/// Statuses only the provider (or an administrator) sets: what happened at the visit.
pub const PROVIDER_ONLY: &[&str] = &["arrived", "checked-in", "fulfilled", "noshow"];

/// Whether `status` takes capacity.
pub fn claims(status: &str) -> bool {
    CLAIMING.contains(&status)
}

/// What an Appointment says that the rules need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppointmentFacts {
    pub status: String,
    /// Slot ids (`Slot/x` → `x`), in order.
    pub slots: Vec<String>,
    /// `(system, code)` of `serviceType`.
    pub services: Vec<(String, String)>,
    /// ServiceRequest ids of `basedOn`.
    pub requests: Vec<String>,
    /// The priority class written on the Appointment itself (extension).
    pub class: Option<String>,
}

impl AppointmentFacts {
    pub fn of(appointment: &Value, base: &str) -> AppointmentFacts {
        let local = |r: &Value, t: &str| {
            r["reference"].as_str().and_then(|s| s.strip_prefix(t)).filter(|s| !s.contains('/')).map(str::to_string)
        };
        AppointmentFacts {
            status: appointment["status"].as_str().unwrap_or_default().to_string(),
            slots: list(&appointment["slot"]).filter_map(|r| local(r, "Slot/")).collect(),
            services: codings(&appointment["serviceType"]),
            requests: list(&appointment["basedOn"]).filter_map(|r| local(r, "ServiceRequest/")).collect(),
            class: priority_class(appointment, base),
        }
    }

    /// The slots this appointment holds a place in.
    pub fn claimed_slots(&self) -> &[String] {
        if claims(&self.status) {
            &self.slots
        } else {
            &[]
        }
    }
}

/// What a Slot says that the rules need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotFacts {
    pub id: String,
    pub status: String,
    pub start_us: Option<i64>,
    pub services: Vec<(String, String)>,
    pub capacity: i64,
    /// The class the slot is reserved for, and until when (microseconds).
    pub reserve: Option<(String, Option<i64>)>,
    pub comment: Option<String>,
}

impl SlotFacts {
    pub fn of(id: &str, slot: &Value, base: &str) -> SlotFacts {
        let ext = |name: &str| extension(slot, &names::structure(base, name));
        let capacity = ext("slot-capacity").and_then(|e| e["valueInteger"].as_i64()).unwrap_or(1).max(1);
        let reserve = ext("slot-reserved-for").and_then(|e| e["valueCode"].as_str()).map(|class| {
            let until = ext("slot-release").and_then(|e| e["valueDateTime"].as_str()).and_then(meta::parse_instant);
            (class.to_string(), until)
        });
        SlotFacts {
            id: id.to_string(),
            status: slot["status"].as_str().unwrap_or_default().to_string(),
            start_us: slot["start"].as_str().and_then(meta::parse_instant),
            services: codings(&slot["serviceType"]),
            capacity,
            reserve,
            comment: slot["comment"].as_str().map(str::to_string),
        }
    }
}

/// What the prescription behind an appointment asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    pub id: String,
    pub codes: Vec<(String, String)>,
    pub class: Option<String>,
}

impl RequestFacts {
    pub fn of(id: &str, request: &Value, base: &str) -> RequestFacts {
        RequestFacts { id: id.to_string(), codes: codings(&request["code"]), class: priority_class(request, base) }
    }
}

/// `(system, code)` of a slot's `serviceType`.
pub fn slot_services(slot: &Value) -> Vec<(String, String)> {
    codings(&slot["serviceType"])
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn codings(concepts: &Value) -> Vec<(String, String)> {
    let one = |c: &Value| -> Vec<(String, String)> {
        list(&c["coding"])
            .filter_map(|x| {
                Some((x["system"].as_str().unwrap_or_default().to_string(), x["code"].as_str()?.to_string()))
            })
            .collect()
    };
    match concepts {
        Value::Array(a) => a.iter().flat_map(one).collect(),
        c @ Value::Object(_) => one(c),
        _ => Vec::new(),
    }
}

/// The extension of `resource` with this `url`.
pub fn extension<'a>(resource: &'a Value, url: &str) -> Option<&'a Value> {
    list(&resource["extension"]).find(|e| e["url"].as_str() == Some(url))
}

/// The `priority-class` extension's code (U, B, D, P).
pub fn priority_class(resource: &Value, base: &str) -> Option<String> {
    let e = extension(resource, &names::structure(base, "priority-class"))?;
    e["valueCoding"]["code"].as_str().or(e["valueCode"].as_str()).map(str::to_string)
}

fn unprocessable(expression: &str, diagnostics: String) -> Error {
    Error::Unprocessable(vec![Issue::error("business-rule", Some(expression.to_string()), diagnostics)])
}

fn same_service(a: &[(String, String)], b: &[(String, String)]) -> bool {
    // A coding without a system matches on its code alone.
    a.iter().any(|(sa, ca)| b.iter().any(|(sb, cb)| ca == cb && (sa.is_empty() || sb.is_empty() || sa == sb)))
}

fn codes(c: &[(String, String)]) -> String {
    c.iter().map(|(_, code)| code.as_str()).collect::<Vec<_>>().join(", ")
}

/// Whether an appointment may take a new place in `slot` (capacity aside, which
/// the store counts under the slot's lock). `privileged`: the gateway or an
/// administrator, who may book into the past (data migration).
pub fn check_claim(
    appt: &AppointmentFacts,
    slot: &SlotFacts,
    requests: &[RequestFacts],
    now_us: i64,
    privileged: bool,
) -> Result<()> {
    let at = "Appointment.slot";
    match slot.status.as_str() {
        "free" | "busy" => {}
        "busy-unavailable" => {
            let why = slot.comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            return Err(unprocessable(at, format!("Slot/{} is closed{why}: choose another slot", slot.id)));
        }
        other => return Err(unprocessable(at, format!("Slot/{} is {other}, not bookable", slot.id))),
    }
    if !privileged && slot.start_us.is_none_or(|s| s <= now_us) {
        return Err(unprocessable(at, format!("Slot/{} has already started: choose a slot in the future", slot.id)));
    }
    if !appt.services.is_empty() && !slot.services.is_empty() && !same_service(&appt.services, &slot.services) {
        return Err(unprocessable(
            "Appointment.serviceType",
            format!("Slot/{} serves {}, not {}", slot.id, codes(&slot.services), codes(&appt.services)),
        ));
    }
    for r in requests {
        if !r.codes.is_empty() && !slot.services.is_empty() && !same_service(&r.codes, &slot.services) {
            return Err(unprocessable(
                "Appointment.basedOn",
                format!(
                    "Slot/{} serves {}, but ServiceRequest/{} asks for {}",
                    slot.id,
                    codes(&slot.services),
                    r.id,
                    codes(&r.codes)
                ),
            ));
        }
    }
    if let Some((class, until)) = &slot.reserve {
        let still_reserved = until.is_none_or(|u| u > now_us);
        let class_of = appt.class.clone().or_else(|| requests.iter().find_map(|r| r.class.clone()));
        if still_reserved && class_of.as_deref() != Some(class.as_str()) {
            let until = until.map(|u| format!(" until {}", meta::instant(u))).unwrap_or_default();
            return Err(unprocessable(at, format!("Slot/{} is reserved for priority class {class}{until}", slot.id)));
        }
    }
    Ok(())
}

/// Who may move an appointment to `status`.
pub fn check_status(actor: Option<&Actor>, old: Option<&str>, status: &str) -> Result<()> {
    let Some(actor) = actor else { return Ok(()) };
    if old == Some(status) || !PROVIDER_ONLY.contains(&status) {
        return Ok(());
    }
    match actor.role {
        Role::Provider | Role::Admin => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "only the provider sets an appointment {status} (this caller is a {})",
            actor.role.as_str()
        ))),
    }
}

/// Letters and digits that cannot be mistaken for one another over the phone
/// (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V).
const CODE_ALPHABET: &[u8] = b"34679ACDEFGHJKMNPQRTWXY";

/// A new booking code, `XXXX-XXXX` from [`CODE_ALPHABET`] (23^8 ≈ 78 billion).
pub fn new_booking_code() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(9);
    for (i, b) in bytes.iter().take(8).enumerate() {
        if i == 4 {
            out.push('-');
        }
        out.push(CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char);
    }
    out
}

/// The booking code of an appointment, if it has one.
pub fn booking_code(appointment: &Value, base: &str) -> Option<String> {
    let system = names::booking_code_system(base);
    list(&appointment["identifier"])
        .find(|i| i["system"].as_str() == Some(system.as_str()))
        .and_then(|i| i["value"].as_str())
        .map(str::to_string)
}

/// Adds the booking code identifier.
pub fn add_booking_code(appointment: &mut Value, base: &str, code: &str) {
    let id = json!({"system": names::booking_code_system(base), "value": code});
    match appointment.get_mut("identifier").and_then(Value::as_array_mut) {
        Some(a) => a.push(id),
        None => appointment["identifier"] = json!([id]),
    }
}

/// Records who booked: the booking point (its Organization), its channel and the
/// user, as the extension `booked-by`, unless the appointment already carries one.
pub fn add_booked_by(appointment: &mut Value, base: &str, actor: &Actor) {
    let url = names::structure(base, "booked-by");
    if extension(appointment, &url).is_some() {
        return;
    }
    let mut parts = vec![json!({"url": "user", "valueString": actor.sub})];
    if let Some(org) = &actor.org {
        parts.push(json!({"url": "point", "valueReference": {"reference": format!("Organization/{org}")}}));
    }
    let channel = actor.channel.clone().unwrap_or_else(|| actor.role.as_str().to_string());
    parts.push(json!({"url": "channel", "valueCoding": {"system": names::channel_system(base), "code": channel}}));
    let ext = json!({"url": url, "extension": parts});
    match appointment.get_mut("extension").and_then(Value::as_array_mut) {
        Some(a) => a.push(ext),
        None => appointment["extension"] = json!([ext]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://example.org/cupola";

    fn slot(status: &str, start: &str) -> SlotFacts {
        SlotFacts::of(
            "s1",
            &json!({"resourceType": "Slot", "status": status, "start": start,
                "serviceType": [{"coding": [{"system": "c", "code": "89.52"}]}]}),
            BASE,
        )
    }

    fn appt(services: Value) -> AppointmentFacts {
        AppointmentFacts::of(
            &json!({"resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/s1"}],
                "serviceType": services}),
            BASE,
        )
    }

    #[test]
    fn a_slot_of_another_service_in_the_past_or_closed_is_refused_with_the_element() {
        let now = meta::parse_instant("2026-12-01T10:00:00+01:00").unwrap_or_default();
        let good = appt(json!([{"coding": [{"system": "c", "code": "89.52"}]}]));
        assert!(check_claim(&good, &slot("free", "2026-12-02T10:00:00+01:00"), &[], now, false).is_ok());
        let past = check_claim(&good, &slot("free", "2026-11-30T10:00:00+01:00"), &[], now, false);
        assert!(matches!(past, Err(Error::Unprocessable(ref i)) if i[0].diagnostics.contains("already started")));
        assert!(check_claim(&good, &slot("free", "2026-11-30T10:00:00+01:00"), &[], now, true).is_ok());
        let closed = check_claim(&good, &slot("busy-unavailable", "2026-12-02T10:00:00+01:00"), &[], now, false);
        assert!(matches!(closed, Err(Error::Unprocessable(ref i)) if i[0].diagnostics.contains("closed")));
        let other = appt(json!([{"coding": [{"system": "c", "code": "89.7"}]}]));
        let wrong = check_claim(&other, &slot("free", "2026-12-02T10:00:00+01:00"), &[], now, false);
        assert!(
            matches!(wrong, Err(Error::Unprocessable(ref i)) if i[0].expression.as_deref() == Some("Appointment.serviceType"))
        );
    }

    #[test]
    fn a_reserved_slot_takes_only_its_class_until_its_release() {
        let now = meta::parse_instant("2026-12-01T10:00:00+01:00").unwrap_or_default();
        let mut s = slot("free", "2026-12-05T10:00:00+01:00");
        s.reserve = Some(("U".into(), meta::parse_instant("2026-12-04T10:00:00+01:00")));
        let mut a = appt(json!([]));
        assert!(check_claim(&a, &s, &[], now, false).is_err());
        let request = RequestFacts { id: "r".into(), codes: vec![], class: Some("U".into()) };
        assert!(check_claim(&a, &s, &[request], now, false).is_ok());
        a.class = Some("B".into());
        assert!(check_claim(&a, &s, &[], now, false).is_err());
        let later = meta::parse_instant("2026-12-04T10:00:01+01:00").unwrap_or_default();
        assert!(check_claim(&a, &s, &[], later, false).is_ok());
    }

    #[test]
    fn booking_codes_are_readable_and_distinct() {
        let a = new_booking_code();
        assert_eq!(a.len(), 9);
        assert_eq!(&a[4..5], "-");
        assert!(a.chars().filter(|c| *c != '-').all(|c| CODE_ALPHABET.contains(&(c as u8))));
        assert_ne!(a, new_booking_code());
    }
}
