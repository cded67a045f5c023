//! The booking rules as plain functions over the typed views of the resources
//! (`super::views`): whether a slot may be claimed, who may set which status. The
//! booking's write hook applies them inside the write's transaction
//! (`super::claims`).

use super::views::{Appointment, Code, Prescription, Slot, Status};
use crate::access::Actor;
use crate::auth::Role;
use crate::error::Issue;
use crate::fhir::meta;
use crate::{Error, Result};

fn unprocessable(expression: &str, diagnostics: String) -> Error {
    Error::Unprocessable(vec![Issue::error("business-rule", Some(expression.to_string()), diagnostics)])
}

fn same_service(a: &[Code], b: &[Code]) -> bool {
    // A coding without a system matches on its code alone.
    a.iter().any(|(sa, ca)| b.iter().any(|(sb, cb)| ca == cb && (sa.is_empty() || sb.is_empty() || sa == sb)))
}

fn codes(c: &[Code]) -> String {
    c.iter().map(|(_, code)| code.as_str()).collect::<Vec<_>>().join(", ")
}

/// Whether an appointment may take a new place in `slot` (capacity aside, which
/// the store counts under the slot's lock). `privileged`: the gateway or an
/// administrator, who may book into the past (data migration).
pub fn check_claim(
    appt: &Appointment,
    slot: &Slot,
    requests: &[Prescription],
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
pub fn check_status(actor: Option<&Actor>, old: Option<Status>, status: Status) -> Result<()> {
    let Some(actor) = actor else { return Ok(()) };
    if old == Some(status) || !status.provider_only() {
        return Ok(());
    }
    match actor.role {
        Role::Provider | Role::Admin => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "only the provider sets an appointment {} (this caller is a {})",
            status.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const BASE: &str = "http://example.org/cupola";

    fn slot(status: &str, start: &str) -> Slot {
        Slot::of(
            "s1",
            &json!({"resourceType": "Slot", "status": status, "start": start,
                "serviceType": [{"coding": [{"system": "c", "code": "89.52"}]}]}),
            BASE,
        )
        .expect("a Slot the rules read")
    }

    fn appt(services: Value) -> Appointment {
        Appointment::of(
            &json!({"resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/s1"}],
                "serviceType": services}),
            BASE,
        )
        .expect("an Appointment the rules read")
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
        let request = Prescription { id: "r".into(), class: Some("U".into()), ..Prescription::default() };
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
