//! Where a slot is: the district, provider organisation and facility of its agenda,
//! copied onto each Slot as extensions so that slot searches by district, provider
//! or place are index lookups (cupola's SearchParameters `Slot-district`,
//! `Slot-provider`, `Slot-location`). The resources an agenda's actors name are
//! read through their views here, once each.

use serde::Deserialize;
use serde_json::Value;

use crate::fhir::view::{parse, Reference};
pub use crate::store::Place;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Actors {
    active: Option<bool>,
    actor: Vec<Reference>,
}

/// What an agenda (a Schedule) says of where it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agenda {
    /// `false` when the Schedule says it is not active.
    pub active: bool,
    /// Its actors' references, as written.
    pub actors: Vec<String>,
}

impl Agenda {
    pub fn of(schedule: &Value) -> crate::Result<Agenda> {
        let raw: Actors = parse(schedule, "Schedule")?;
        Ok(Agenda {
            active: raw.active != Some(false),
            actors: raw.actor.into_iter().filter_map(|a| a.reference).collect(),
        })
    }
}

/// The references of a HealthcareService, a PractitionerRole or a Location that
/// say where and by whom a service is given.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Placing {
    provided_by: Reference,
    location: Vec<Reference>,
    organization: Reference,
    managing_organization: Reference,
    address: Option<Address>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    district: Option<String>,
}

fn placing(v: Option<Value>, res_type: &str) -> Option<Placing> {
    parse::<Placing>(&v?, res_type).ok()
}

/// The place of `schedule`; `get("Type/id")` reads the resources its actors name.
pub fn place_of(schedule: &Value, get: &dyn Fn(&str) -> Option<Value>) -> Place {
    let actors: Vec<Reference> = parse::<Actors>(schedule, "Schedule").map(|a| a.actor).unwrap_or_default();
    let mut place = Place::default();
    for a in &actors {
        if let Some(hs) = a
            .local("HealthcareService")
            .and_then(|id| placing(get(&format!("HealthcareService/{id}")), "HealthcareService"))
        {
            place.provider = place.provider.or(hs.provided_by.local("Organization"));
            place.location = place.location.or(hs.location.first().and_then(|l| l.local("Location")));
        }
    }
    for a in &actors {
        if let Some(id) = a.local("Location") {
            place.location = Some(id);
        }
        if let Some(pr) = a
            .local("PractitionerRole")
            .and_then(|id| placing(get(&format!("PractitionerRole/{id}")), "PractitionerRole"))
        {
            place.provider = place.provider.clone().or(pr.organization.local("Organization"));
        }
    }
    if let Some(loc) = place.location.as_ref().and_then(|id| placing(get(&format!("Location/{id}")), "Location")) {
        place.district = loc.address.and_then(|a| a.district);
        place.provider = place.provider.clone().or(loc.managing_organization.local("Organization"));
    }
    place
}

pub use crate::store::place_slots;
