//! Where a slot is: the district, provider organisation and facility of its agenda,
//! copied onto each Slot as extensions so that slot searches by district, provider
//! or place are index lookups (cupola's SearchParameters `Slot-district`,
//! `Slot-provider`, `Slot-location`).

use serde_json::Value;

pub use crate::store::Place;

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

pub use crate::store::place_slots;
