//! The FHIR message a provider receives: a Bundle of type `message`, its
//! `MessageHeader` first (event, source, destination, focus), then what the
//! provider needs to act without calling back. Catalog codes are translated to
//! the provider's own with its ConceptMap; a code it does not map holds the message.

use serde_json::{json, Value};

use crate::fhir::meta::instant;
use crate::fhir::names;
use crate::mappings::ProviderMap;

/// A domain event: the resource it is about and what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// `appointment`, `chargeitem` or `agenda`.
    pub resource: &'static str,
    /// `booked`, `rescheduled`, `cancelled`, `status-changed`, `created`, `paid`,
    /// `refunded`, `closure`, `daily-list`.
    pub name: &'static str,
}

impl Event {
    pub const BOOKED: Event = Event { resource: "appointment", name: "booked" };
    pub const RESCHEDULED: Event = Event { resource: "appointment", name: "rescheduled" };
    pub const CANCELLED: Event = Event { resource: "appointment", name: "cancelled" };
    pub const STATUS_CHANGED: Event = Event { resource: "appointment", name: "status-changed" };
    pub const CHARGE_CREATED: Event = Event { resource: "chargeitem", name: "created" };
    pub const CHARGE_PAID: Event = Event { resource: "chargeitem", name: "paid" };
    pub const CHARGE_REFUNDED: Event = Event { resource: "chargeitem", name: "refunded" };
    pub const DAILY_LIST: Event = Event { resource: "agenda", name: "daily-list" };
    pub const CLOSURE: Event = Event { resource: "agenda", name: "closure" };

    /// The code in cupola's `message-event` CodeSystem: `appointment-booked`.
    pub fn code(&self) -> String {
        format!("{}-{}", self.resource, self.name)
    }

    /// `<provider>.<resource>.<event>`.
    pub fn routing_key(&self, provider: &str) -> String {
        format!("{provider}.{}.{}", self.resource, self.name)
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    /// The provider's short code (`{canonical-base}/sid/provider`).
    pub code: String,
    /// Its Organization id.
    pub organization: String,
    /// Its system's Endpoint address, when it has one.
    pub endpoint: Option<String>,
}

/// The message of `event` for `to` about `resources[0]` (the focus), with the
/// others, its catalog codes translated by `map`. `Err`: why it cannot be sent (a
/// code the provider does not map), with the message as it would have been.
pub fn build(
    base: &str,
    id: &str,
    event: Event,
    to: &Destination,
    resources: Vec<Value>,
    map: Option<&ProviderMap>,
    now_us: i64,
) -> Result<Value, (String, Value)> {
    let mut resources: Vec<Value> = resources.into_iter().filter(|r| r.is_object()).collect();
    let mut unmapped = Vec::new();
    for r in &mut resources {
        translate(r, base, map, &mut unmapped);
    }
    let reference = |r: &Value| {
        format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default())
    };
    let mut destination =
        json!({"name": to.code, "receiver": {"reference": format!("Organization/{}", to.organization)}});
    destination["endpoint"] = json!(to.endpoint.clone().unwrap_or_else(|| format!("urn:cupola:provider:{}", to.code)));
    let header = json!({
        "resourceType": "MessageHeader",
        "id": id,
        "eventCoding": {"system": format!("{base}/CodeSystem/message-event"), "code": event.code()},
        "destination": [destination],
        "source": {"name": "cupola", "endpoint": format!("{base}/Endpoint/cupola")},
        "focus": [{"reference": resources.first().map(reference).unwrap_or_default()}],
    });
    // Moved into place: `json!` would copy each resource (it serialises what it is given).
    let mut entry = vec![entry_of(format!("urn:uuid:{id}"), header)];
    for r in resources {
        entry.push(entry_of(format!("{base}/{}", reference(&r)), r));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": id,
        "type": "message",
        "timestamp": instant(now_us),
    });
    bundle["entry"] = Value::Array(entry);
    finish(bundle, unmapped, &to.code)
}

/// `bundle`, or why it cannot be sent: the catalog codes provider `code` does not map.
fn finish(bundle: Value, mut unmapped: Vec<String>, code: &str) -> Result<Value, (String, Value)> {
    if unmapped.is_empty() {
        return Ok(bundle);
    }
    unmapped.sort();
    unmapped.dedup();
    let codes = unmapped.join(", ");
    Err((
        format!("provider {code} has no code for catalog code(s) {codes} in its ConceptMap (mappings/providers/{code}.json)"),
        bundle,
    ))
}

/// Message `bundle` rebuilt to be sent again as `id` at `now_us`: the codings an
/// earlier translation added (those of the `stale` systems: the provider's local
/// systems, then and now) taken out, and the catalog codes translated again with
/// `map`, the provider's ConceptMap as it is now. The resources stay as they were
/// when the change happened: a resend tells the same event, in today's codes.
pub fn rebuild(
    base: &str,
    bundle: &Value,
    id: &str,
    map: Option<&ProviderMap>,
    stale: &[String],
    now_us: i64,
) -> Result<Value, (String, Value)> {
    let mut out = bundle.clone();
    let mut unmapped = Vec::new();
    let mut provider = String::new();
    if let Some(o) = out.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("timestamp".into(), json!(instant(now_us)));
    }
    let entries = out.get_mut("entry").and_then(Value::as_array_mut).map(|e| e.iter_mut()).into_iter().flatten();
    for (k, e) in entries.enumerate() {
        let Some(entry) = e.as_object_mut() else { continue };
        if k == 0 {
            // The MessageHeader: the new id, and whom it goes to (for the reason).
            entry.insert("fullUrl".into(), json!(format!("urn:uuid:{id}")));
            if let Some(h) = entry.get_mut("resource").and_then(Value::as_object_mut) {
                h.insert("id".into(), json!(id));
                provider = h.get("destination").and_then(|d| d[0]["name"].as_str()).unwrap_or_default().to_string();
            }
        } else if let Some(r) = entry.get_mut("resource") {
            untranslate(r, base, stale);
            translate(r, base, map, &mut unmapped);
        }
    }
    finish(out, unmapped, &provider)
}

/// The coded elements of `r` that carry catalog codes: Appointment, Slot and
/// Schedule `serviceType`, ServiceRequest, ChargeItem and ActivityDefinition `code`.
fn concepts(r: &mut Value) -> Vec<&mut Value> {
    let field = match r["resourceType"].as_str() {
        Some("Appointment" | "Slot" | "Schedule") => "serviceType",
        Some("ServiceRequest" | "ChargeItem" | "ActivityDefinition") => "code",
        _ => return Vec::new(),
    };
    match r.get_mut(field) {
        Some(Value::Array(list)) => list.iter_mut().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// Takes out of `r`'s coded elements the codings of the `stale` systems beside a
/// catalog coding: those a translation added.
fn untranslate(r: &mut Value, base: &str, stale: &[String]) {
    let catalog = names::catalog_system(base);
    for concept in concepts(r) {
        let Some(codings) = concept.get_mut("coding").and_then(Value::as_array_mut) else { continue };
        if !codings.iter().any(|c| c["system"].as_str() == Some(catalog.as_str())) {
            continue;
        }
        codings.retain(|c| c["system"].as_str().is_none_or(|s| s == catalog || !stale.iter().any(|t| t == s)));
    }
}

/// A Bundle entry holding `resource` (moved, not copied).
fn entry_of(full_url: String, resource: Value) -> Value {
    let mut e = serde_json::Map::new();
    e.insert("fullUrl".into(), Value::String(full_url));
    e.insert("resource".into(), resource);
    Value::Object(e)
}

/// Adds the provider's coding beside each catalog coding of `r`'s coded elements
/// (Appointment and Slot `serviceType`, ServiceRequest and ChargeItem `code`),
/// collecting the catalog codes it does not map.
fn translate(r: &mut Value, base: &str, map: Option<&ProviderMap>, unmapped: &mut Vec<String>) {
    let catalog = names::catalog_system(base);
    for concept in concepts(r) {
        let Some(codings) = concept.get_mut("coding").and_then(Value::as_array_mut) else { continue };
        let mut added = Vec::new();
        for c in codings.iter() {
            if c["system"].as_str() != Some(catalog.as_str()) {
                continue;
            }
            let code = c["code"].as_str().unwrap_or_default();
            let found = map.map(|m| m.translate(code, base)).unwrap_or_default();
            match found.into_iter().find(|m| m.code.is_some()) {
                Some(m) => added.push(json!({"system": m.system, "code": m.code, "display": m.display})),
                None => unmapped.push(code.to_string()),
            }
        }
        for a in added {
            let a: serde_json::Map<String, Value> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            codings.insert(0, Value::Object(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> ProviderMap {
        ProviderMap {
            provider: "galliera".into(),
            concept_map: json!({"resourceType": "ConceptMap", "url": "b/ConceptMap/provider-galliera",
                "group": [{"source": "b/CodeSystem/catalog", "target": "urn:galliera:codes",
                    "element": [{"code": "89.52", "target": [{"code": "ECG01", "display": "ECG", "equivalence": "equivalent"}]}]}]}),
        }
    }

    fn to() -> Destination {
        Destination { code: "galliera".into(), organization: "org-galliera".into(), endpoint: None }
    }

    fn appointment(code: &str) -> Value {
        json!({"resourceType": "Appointment", "id": "a1", "status": "booked",
            "serviceType": [{"coding": [{"system": "b/CodeSystem/catalog", "code": code}]}]})
    }

    #[test]
    fn a_booking_message_has_its_header_first_and_the_providers_codes() {
        let m = build(
            "b",
            "m1",
            Event::BOOKED,
            &to(),
            vec![appointment("89.52"), json!({"resourceType": "Patient", "id": "p1"})],
            Some(&map()),
            0,
        )
        .expect("mapped");
        assert_eq!(m["type"], "message");
        let header = &m["entry"][0]["resource"];
        assert_eq!(header["resourceType"], "MessageHeader");
        assert_eq!(header["id"], "m1");
        assert_eq!(header["eventCoding"]["code"], "appointment-booked");
        assert_eq!(header["focus"][0]["reference"], "Appointment/a1");
        assert_eq!(header["destination"][0]["receiver"]["reference"], "Organization/org-galliera");
        let codings = &m["entry"][1]["resource"]["serviceType"][0]["coding"];
        assert_eq!(codings[0]["system"], "urn:galliera:codes");
        assert_eq!(codings[0]["code"], "ECG01");
        assert_eq!(codings[1]["code"], "89.52", "the catalog code stays beside it");
        assert_eq!(m["entry"][2]["resource"]["resourceType"], "Patient");
        assert_eq!(Event::BOOKED.routing_key("galliera"), "galliera.appointment.booked");
    }

    /// A resend's rebuild: a fixed map's codes replace those added before (none
    /// twice), the catalog's stay, the new id is the header's and the Bundle's.
    #[test]
    fn a_rebuilt_message_has_todays_codes_and_its_new_id() {
        let request = json!({"resourceType": "ServiceRequest", "id": "sr1",
            "code": {"coding": [{"system": "b/CodeSystem/catalog", "code": "89.7"}]}});
        let (_, held) = build("b", "m1", Event::BOOKED, &to(), vec![appointment("89.52"), request], Some(&map()), 0)
            .expect_err("89.7 is unmapped");
        let mut fixed = map();
        fixed.concept_map["group"][0]["element"] = json!([
            {"code": "89.52", "target": [{"code": "ECG02", "equivalence": "equivalent"}]},
            {"code": "89.7", "target": [{"code": "VIS07", "equivalence": "equivalent"}]}]);
        let stale = fixed.targets();
        let m = rebuild("b", &held, "m2", Some(&fixed), &stale, 0).expect("mapped now");
        assert_eq!((&m["id"], &m["entry"][0]["fullUrl"]), (&json!("m2"), &json!("urn:uuid:m2")));
        assert_eq!(m["entry"][0]["resource"]["id"], "m2");
        let codes = |k: usize, field: &str| -> Vec<String> {
            let concept = &m["entry"][k]["resource"][field];
            let codings = concept.get(0).unwrap_or(concept)["coding"].as_array().cloned().unwrap_or_default();
            codings.iter().map(|c| c["code"].as_str().unwrap_or_default().to_string()).collect()
        };
        assert_eq!(codes(1, "serviceType"), ["ECG02", "89.52"], "the old ECG01 is gone");
        assert_eq!(codes(2, "code"), ["VIS07", "89.7"]);
        let (reason, _) = rebuild("b", &held, "m3", Some(&map()), &stale, 0).expect_err("still unmapped");
        assert!(reason.contains("89.7") && reason.contains("galliera"), "{reason}");
    }

    #[test]
    fn an_unmapped_code_holds_the_message_with_the_reason() {
        let (reason, _) =
            build("b", "m1", Event::BOOKED, &to(), vec![appointment("89.7")], Some(&map()), 0).expect_err("unmapped");
        assert!(reason.contains("89.7") && reason.contains("galliera"), "{reason}");
        let (reason, _) =
            build("b", "m1", Event::BOOKED, &to(), vec![appointment("89.52")], None, 0).expect_err("no map");
        assert!(reason.contains("89.52"), "{reason}");
    }
}
