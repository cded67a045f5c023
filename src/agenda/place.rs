//! Where a slot is: the district, provider organisation and facility of its agenda,
//! copied onto each Slot as extensions so that slot searches by district, provider
//! or place are index lookups (cupola's SearchParameters `Slot-district`,
//! `Slot-provider`, `Slot-location`).

use serde_json::{json, Value};

use crate::fhir::names;

/// The place of an agenda, as far as its actors tell.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    /// `Location.address.district` of its facility.
    pub district: Option<String>,
    /// Organization id of the provider (`HealthcareService.providedBy`, else the
    /// Location's `managingOrganization`, else a PractitionerRole's `organization`).
    pub provider: Option<String>,
    /// Location id of its facility.
    pub location: Option<String>,
}

fn target<'a>(v: &'a Value, t: &str) -> Option<&'a str> {
    v.get("reference").and_then(Value::as_str).and_then(|r| r.strip_prefix(&format!("{t}/")))
}

/// The place of `schedule`; `get("Type/id")` reads the resources its actors name.
pub fn place_of(schedule: &Value, get: &dyn Fn(&str) -> Option<Value>) -> Place {
    let mut place = Place::default();
    let actors: Vec<&Value> = schedule.get("actor").and_then(Value::as_array).into_iter().flatten().collect();
    for a in &actors {
        if let Some(hs) = target(a, "HealthcareService").and_then(|id| get(&format!("HealthcareService/{id}"))) {
            place.provider =
                place.provider.or(hs.get("providedBy").and_then(|r| target(r, "Organization")).map(str::to_string));
            let loc = hs.get("location").and_then(|l| l.get(0)).and_then(|r| target(r, "Location")).map(str::to_string);
            place.location = place.location.or(loc);
        }
    }
    for a in &actors {
        if let Some(id) = target(a, "Location") {
            place.location = Some(id.to_string());
        }
        if let Some(pr) = target(a, "PractitionerRole").and_then(|id| get(&format!("PractitionerRole/{id}"))) {
            let org = pr.get("organization").and_then(|r| target(r, "Organization")).map(str::to_string);
            place.provider = place.provider.clone().or(org);
        }
    }
    if let Some(loc) = place.location.as_ref().and_then(|id| get(&format!("Location/{id}"))) {
        place.district = loc.pointer("/address/district").and_then(Value::as_str).map(str::to_string);
        let org = loc.get("managingOrganization").and_then(|r| target(r, "Organization")).map(str::to_string);
        place.provider = place.provider.clone().or(org);
    }
    place
}

/// Marks each slot with its place.
pub fn place_slots(slots: &mut [Value], place: &Place, base: &str) {
    let mut ext = Vec::new();
    if let Some(d) = &place.district {
        ext.push(json!({"url": names::structure(base, "slot-district"), "valueString": d}));
    }
    if let Some(p) = &place.provider {
        ext.push(json!({"url": names::structure(base, "slot-provider"), "valueReference": {"reference": format!("Organization/{p}")}}));
    }
    if let Some(l) = &place.location {
        ext.push(json!({"url": names::structure(base, "slot-location"), "valueReference": {"reference": format!("Location/{l}")}}));
    }
    for s in slots {
        if let Some(list) = s.get_mut("extension").and_then(Value::as_array_mut) {
            list.extend(ext.iter().cloned());
        }
    }
}
