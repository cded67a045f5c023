//! The booking domain's typed views of the resources its rules read: an
//! Appointment, a Slot, a prescription (ServiceRequest), a patient's answer to a
//! proposal, where a patient lives and where a place is. Each is parsed once from
//! the resource's JSON ("parse, don't validate"); the rules work on the views, and
//! write back through [`AppointmentMut`] and [`SlotMut`].

mod write;

use serde::Deserialize;
use serde_json::Value;

use crate::fhir::names;
pub use crate::fhir::view::Code;
use crate::fhir::view::{codes, find, parse, Concept, Extension, Identifier, Reference};
use crate::Result;
pub use write::{AppointmentMut, SlotMut};

/// An Appointment's status (R4's required value set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Proposed,
    Pending,
    Booked,
    Arrived,
    Fulfilled,
    Cancelled,
    Noshow,
    EnteredInError,
    CheckedIn,
    Waitlist,
    /// No status (a body R4 would refuse, read only by the rules' own tests).
    #[default]
    #[serde(other)]
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Pending => "pending",
            Status::Booked => "booked",
            Status::Arrived => "arrived",
            Status::Fulfilled => "fulfilled",
            Status::Cancelled => "cancelled",
            Status::Noshow => "noshow",
            Status::EnteredInError => "entered-in-error",
            Status::CheckedIn => "checked-in",
            Status::Waitlist => "waitlist",
            Status::Unknown => "",
        }
    }

    /// Whether it takes a place in its slots' capacity. A proposal or a waiting-list
    /// entry does not; a hold (`pending`) does, until it expires.
    pub fn claims(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::Booked | Status::Arrived | Status::CheckedIn | Status::Fulfilled | Status::Noshow
        )
    }

    /// What happened at the visit: only the provider (or an administrator) says so.
    pub fn provider_only(self) -> bool {
        matches!(self, Status::Arrived | Status::CheckedIn | Status::Fulfilled | Status::Noshow)
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawAppointment {
    id: Option<String>,
    status: Status,
    slot: Vec<Reference>,
    service_type: Vec<Concept>,
    based_on: Vec<Reference>,
    participant: Vec<Participant>,
    identifier: Vec<Identifier>,
    start: Option<String>,
    cancelation_reason: Option<Text>,
    requested_period: Vec<Period>,
    extension: Vec<Extension>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Period {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Participant {
    actor: Reference,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Text {
    text: Option<String>,
}

/// What an Appointment says that the rules need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Appointment {
    pub id: Option<String>,
    pub status: Status,
    /// Slot ids (`Slot/x` → `x`), in order.
    pub slots: Vec<String>,
    /// `serviceType`'s codings.
    pub services: Vec<Code>,
    /// ServiceRequest ids of `basedOn`.
    pub requests: Vec<String>,
    /// The first participant that is a Patient (its id).
    pub patient: Option<String>,
    /// The priority class written on the Appointment itself (extension).
    pub class: Option<String>,
    pub booking_code: Option<String>,
    /// `start` as written, and as an instant (µs).
    pub start: Option<String>,
    pub start_us: Option<i64>,
    pub cancel_reason: Option<String>,
    /// When a proposal lapses (`proposal-expires`).
    pub proposal_expires: Option<i64>,
    /// Whether a proposal met the class deadline (`within-guarantee`).
    pub within_guarantee: Option<bool>,
    /// The first `requestedPeriod` (µs), each end when given: a waiting-list entry's
    /// acceptable period.
    pub requested: Option<(Option<i64>, Option<i64>)>,
    /// The first participant that is a Location (its id): a waiting-list entry's place.
    pub location: Option<String>,
    /// When a waiting-list entry joined the line (`waitlist-enrolled`); it stays on
    /// the offer made from it.
    pub enrolled: Option<i64>,
}

fn instant(t: &Option<String>) -> Option<i64> {
    t.as_deref().and_then(crate::fhir::meta::parse_instant)
}

impl Appointment {
    pub fn of(appointment: &Value, base: &str) -> Result<Appointment> {
        let raw: RawAppointment = parse(appointment, "Appointment")?;
        let ext = |name: &str| find(&raw.extension, &names::structure(base, name));
        let code_system = names::booking_code_system(base);
        Ok(Appointment {
            slots: raw.slot.iter().filter_map(|r| r.local("Slot")).collect(),
            services: codes(&raw.service_type),
            requests: raw.based_on.iter().filter_map(|r| r.local("ServiceRequest")).collect(),
            patient: raw.participant.iter().find_map(|p| p.actor.local("Patient")),
            class: ext("priority-class").and_then(Extension::code),
            booking_code: raw
                .identifier
                .iter()
                .find(|i| i.system.as_deref() == Some(&code_system))
                .and_then(|i| i.value.clone()),
            start_us: raw.start.as_deref().and_then(crate::fhir::meta::parse_instant),
            cancel_reason: raw.cancelation_reason.and_then(|t| t.text),
            proposal_expires: ext("proposal-expires").and_then(Extension::instant),
            within_guarantee: ext("within-guarantee").and_then(|e| e.value_boolean),
            requested: raw.requested_period.first().map(|p| (instant(&p.start), instant(&p.end))),
            location: raw.participant.iter().find_map(|p| p.actor.local("Location")),
            enrolled: ext("waitlist-enrolled").and_then(Extension::instant),
            start: raw.start,
            id: raw.id,
            status: raw.status,
        })
    }

    /// The slots this appointment holds a place in.
    pub fn claimed_slots(&self) -> &[String] {
        if self.status.claims() {
            &self.slots
        } else {
            &[]
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawSlot {
    id: Option<String>,
    status: String,
    start: Option<String>,
    service_type: Vec<Concept>,
    comment: Option<String>,
    schedule: Reference,
    extension: Vec<Extension>,
}

/// What a Slot says that the rules need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slot {
    pub id: String,
    pub status: String,
    pub start_us: Option<i64>,
    pub services: Vec<Code>,
    pub capacity: i64,
    /// The class the slot is reserved for, and until when (microseconds).
    pub reserve: Option<(String, Option<i64>)>,
    pub comment: Option<String>,
    /// The agenda's Schedule id.
    pub schedule: Option<String>,
    pub district: Option<String>,
    /// The provider's Organization id.
    pub provider: Option<String>,
    /// The Location id of the place.
    pub location: Option<String>,
}

impl Slot {
    /// A slot found by a search, named by its own `id`.
    pub fn found(slot: &Value, base: &str) -> Result<Slot> {
        let raw: RawSlot = parse(slot, "Slot")?;
        let id = raw.id.clone().unwrap_or_default();
        Slot::from_raw(&id, raw, base)
    }

    pub fn of(id: &str, slot: &Value, base: &str) -> Result<Slot> {
        Slot::from_raw(id, parse(slot, "Slot")?, base)
    }

    fn from_raw(id: &str, raw: RawSlot, base: &str) -> Result<Slot> {
        let ext = |name: &str| find(&raw.extension, &names::structure(base, name));
        let reference = |name: &str, t: &str| ext(name).and_then(|e| e.value_reference.as_ref()?.local(t));
        let reserve = ext("slot-reserved-for").and_then(|e| e.value_code.clone());
        Ok(Slot {
            id: id.to_string(),
            start_us: raw.start.as_deref().and_then(crate::fhir::meta::parse_instant),
            services: codes(&raw.service_type),
            capacity: ext("slot-capacity").and_then(|e| e.value_integer).unwrap_or(1).max(1),
            reserve: reserve.map(|class| (class, ext("slot-release").and_then(Extension::instant))),
            schedule: raw.schedule.local("Schedule"),
            district: ext("slot-district").and_then(|e| e.value_string.clone()),
            provider: reference("slot-provider", "Organization"),
            location: reference("slot-location", "Location"),
            status: raw.status,
            comment: raw.comment,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRequest {
    status: Option<String>,
    requisition: Identifier,
    code: Concept,
    subject: Reference,
    extension: Vec<Extension>,
}

/// What a prescribed service (a ServiceRequest) asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prescription {
    pub id: String,
    /// The prescription number, with its system.
    pub requisition: Option<Code>,
    pub codes: Vec<Code>,
    pub class: Option<String>,
    /// First access or follow-up, when the request says (`access-type`).
    pub access_type: Option<String>,
    /// The Patient id of `subject`.
    pub patient: Option<String>,
    /// Not revoked, entered in error or completed.
    pub active: bool,
}

impl Prescription {
    pub fn of(id: &str, request: &Value, base: &str) -> Result<Prescription> {
        let raw: RawRequest = parse(request, "ServiceRequest")?;
        let ext = |name: &str| find(&raw.extension, &names::structure(base, name));
        let req = raw.requisition;
        Ok(Prescription {
            id: id.to_string(),
            requisition: req.value.map(|v| (req.system.unwrap_or_default(), v)),
            codes: codes([&raw.code]),
            class: ext("priority-class").and_then(Extension::code),
            access_type: ext("access-type").and_then(Extension::code),
            patient: raw.subject.local("Patient"),
            active: !matches!(raw.status.as_deref(), Some("revoked" | "entered-in-error" | "completed")),
        })
    }

    /// The prescription number when it is of `system` (the NRE's).
    pub fn number_of(&self, system: &str) -> Option<&str> {
        self.requisition.as_ref().filter(|(s, _)| s == system).map(|(_, v)| v.as_str())
    }

    /// The prescription number, whatever its system.
    pub fn number(&self) -> Option<&str> {
        self.requisition.as_ref().map(|(_, v)| v.as_str())
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawResponse {
    participant_status: Option<String>,
    appointment: Reference,
}

/// A patient's answer to a proposal (an AppointmentResponse).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub declined: bool,
    /// The Appointment id answered.
    pub appointment: Option<String>,
}

impl Response {
    pub fn of(response: &Value) -> Result<Response> {
        let raw: RawResponse = parse(response, "AppointmentResponse")?;
        Ok(Response {
            declined: raw.participant_status.as_deref() == Some("declined"),
            appointment: raw.appointment.local("Appointment"),
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPatient {
    address: Vec<Address>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    district: Option<String>,
    extension: Vec<Extension>,
}

const GEOLOCATION: &str = "http://hl7.org/fhir/StructureDefinition/geolocation";

/// Where a patient lives: the district and the point (latitude, longitude) of their
/// first address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Residence {
    pub district: Option<String>,
    pub point: Option<(f64, f64)>,
}

impl Residence {
    pub fn of(patient: &Value) -> Result<Residence> {
        let raw: RawPatient = parse(patient, "Patient")?;
        let Some(home) = raw.address.into_iter().next() else { return Ok(Residence::default()) };
        let geo = find(&home.extension, GEOLOCATION);
        let part = |name: &str| geo.and_then(|g| find(&g.extension, name)?.value_decimal);
        let point = part("latitude").zip(part("longitude"));
        Ok(Residence { district: home.district, point })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawLocation {
    position: Option<Position>,
}

#[derive(Deserialize, Default)]
struct Position {
    latitude: f64,
    longitude: f64,
}

/// A Location's point (latitude, longitude), when it has one.
pub fn position_of(location: &Value) -> Result<Option<(f64, f64)>> {
    let raw: RawLocation = parse(location, "Location")?;
    Ok(raw.position.map(|p| (p.latitude, p.longitude)))
}

#[cfg(test)]
mod tests;
