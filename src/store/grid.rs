//! A generated slot as the store keeps it (one `slot_grid` row, see
//! `cupola_search`'s `grid` module) and its FHIR rendering. Rendering a row gives
//! exactly the Slot that generation would have stored as a resource, so reading a
//! Slot needs no domain code (agendas generate the rows: `crate::agenda`).

use chrono::{DateTime, FixedOffset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::fhir::names;

/// The place of an agenda, as far as its actors tell (worked out by the agenda
/// rules, `agenda::place_of`; kept with its generated slots).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// `Location.address.district` of its facility.
    pub district: Option<String>,
    /// Organization id of the provider (`HealthcareService.providedBy`, else the
    /// Location's `managingOrganization`, else a PractitionerRole's `organization`).
    pub provider: Option<String>,
    /// Location id of its facility.
    pub location: Option<String>,
}

/// What every slot of one agenda shares.
#[derive(Debug, Clone, PartialEq)]
pub struct AgendaInfo {
    pub schedule_id: String,
    /// The start of its slots' ids (see `agenda::slot_id_prefix`).
    pub prefix: String,
    pub time_zone: Tz,
    /// The canonical base of cupola's extensions.
    pub base: String,
    pub place: Place,
}

/// The part of [`AgendaInfo`] kept as JSON in `slot_agendas.shared`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shared {
    pub base: String,
    #[serde(flatten)]
    pub place: Place,
}

impl AgendaInfo {
    pub fn shared(&self) -> Shared {
        Shared { base: self.base.clone(), place: self.place.clone() }
    }

    pub fn from_shared(schedule_id: String, prefix: String, time_zone: Tz, s: Shared) -> AgendaInfo {
        AgendaInfo { schedule_id, prefix, time_zone, base: s.base, place: s.place }
    }

    /// The Slot elements every slot of the agenda has alike: what its shared index
    /// rows are extracted from.
    pub fn shared_resource(&self) -> Value {
        let mut slot = json!({
            "resourceType": "Slot",
            "extension": [],
            "schedule": {"reference": format!("Schedule/{}", self.schedule_id)},
        });
        place_slots(std::slice::from_mut(&mut slot), &self.place, &self.base);
        slot
    }
}

/// One generated slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    /// Local wall-clock start as the number `YYYYMMDDHHMM`.
    pub stamp: i64,
    /// Tells apart slots of one agenda starting at the same local time (0).
    pub n: i64,
    /// µs since the epoch, UTC.
    pub start_us: i64,
    pub end_us: i64,
    /// The catalog Coding the slot serves.
    pub service: Value,
    pub capacity: u32,
    /// The class the slot is reserved for and when it opens to every class (µs).
    pub reserve: Option<(String, i64)>,
}

/// An instant as FHIR writes it, with its offset: `2026-03-30T08:00:00+02:00`.
pub(crate) fn fhir_instant(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn local(tz: &Tz, us: i64) -> String {
    match tz.timestamp_micros(us) {
        chrono::LocalResult::Single(t) => fhir_instant(&t.fixed_offset()),
        _ => String::new(),
    }
}

/// The Slot of `row` (without `meta`).
pub fn render(agenda: &AgendaInfo, row: &SlotRow) -> Value {
    let base = &agenda.base;
    let mut extension = vec![json!({"url": names::structure(base, "slot-capacity"), "valueInteger": row.capacity})];
    if let Some((priority, release)) = &row.reserve {
        extension.push(json!({"url": names::structure(base, "slot-reserved-for"), "valueCode": priority}));
        extension.push(
            json!({"url": names::structure(base, "slot-release"), "valueDateTime": local(&agenda.time_zone, *release)}),
        );
    }
    let mut slot = json!({
        "resourceType": "Slot",
        "id": cupola_search::slot_id(&agenda.prefix, row.stamp, row.n),
        "extension": extension,
        "serviceType": [{"coding": [row.service.clone()]}],
        "schedule": {"reference": format!("Schedule/{}", agenda.schedule_id)},
        "status": "free",
        "start": local(&agenda.time_zone, row.start_us),
        "end": local(&agenda.time_zone, row.end_us),
    });
    place_slots(std::slice::from_mut(&mut slot), &agenda.place, base);
    slot
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
