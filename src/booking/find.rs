//! `Appointment/$find`: proposals on real free slots for a prescription (or service
//! codes), earliest first and, at the same time, nearest to the patient; each
//! marked whether it meets the priority class's deadline. Slots kept for U/B are
//! offered only to those classes until their release. When nothing in the
//! patient's district meets the deadline, the search widens to the region and the
//! answer says the guarantee pathway applies.
//!
//! Every filter is a search of the store (index lookups, in SQL), one search: the
//! three kinds of slot a class may take (open to all, released, kept for that class)
//! are cupola's `Slot?open-to=<class>`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::facts::{access_type, catalog_facts, code_part};
use super::views::{position_of, AppointmentMut, Prescription, Residence, Slot};
use crate::access::Access;
use crate::error::Issue;
use crate::fhir::{meta, names};
use crate::store::{current, current_seen, now_micros, value_of, Store, Tx};
use crate::{Error, Result};

/// What `$find` was asked.
#[derive(Debug, Clone, Default)]
pub struct FindRequest {
    /// Instants (µs): slots starting in `[start, end]`.
    pub start: i64,
    pub end: i64,
    /// The prescription number (NRE).
    pub nre: Option<String>,
    /// Service codes as search tokens (`system|code` or `code`).
    pub services: Vec<String>,
    pub patient: Option<String>,
    pub location: Option<String>,
    pub organization: Option<String>,
    pub class: Option<String>,
    pub district: Option<String>,
    /// `latitude|longitude` to rank equal times by distance from.
    pub near: Option<(f64, f64)>,
    pub count: usize,
}

/// The proposals, stored, and what the search found out.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub proposals: Vec<Value>,
    pub notes: Vec<Issue>,
}

/// Searches and stores the proposals, in one transaction.
pub async fn find(store: &Store, access: &Access, req: FindRequest) -> Result<Found> {
    let settings = store.settings().clone();
    let mut tx = store.begin().await?;
    let now = now_micros();
    let mut req = req;
    let requests = match req.nre.clone() {
        Some(nre) => with_prescription(store, &mut tx, access, &mut req, &nre).await?,
        None => Vec::new(),
    };
    if req.services.is_empty() {
        return Err(Error::invalid(
            "required",
            Some("service-type".into()),
            "$find needs referral-identifier (the NRE) or service-type",
        ));
    }
    let (district, origin) = patient_place(store, &mut tx, &req).await?;
    let mut found = Found::default();
    let deadline = guarantee(store, &mut tx, &req, &requests, now, &mut found.notes).await?;
    let reach = Reach { req: &req, from: req.start.max(now), district: district.as_deref(), deadline };
    let mut slots = slots_in_reach(store, &mut tx, access, &reach, &mut found.notes).await?;
    if let Some(origin) = origin {
        rank_by_distance(store, &mut tx, &mut slots, origin).await?;
    }
    slots.truncate(req.count);
    let expires = now + settings.proposal_micros;
    let mut proposals = Vec::with_capacity(slots.len());
    for (view, slot) in &slots {
        let actors = schedule_actors(store, &mut tx, view.schedule.as_deref().unwrap_or_default()).await?;
        let to = Proposal { patient: req.patient.as_deref(), request: request_for(view, &requests), deadline, expires };
        proposals.push(proposal(&settings.base, (view, slot), actors, &to)?);
    }
    let ids = store.insert_proposals(&mut tx, proposals.clone(), expires).await?;
    for (p, id) in proposals.iter_mut().zip(ids) {
        AppointmentMut::new(p, &settings.base)?.set_id(&id);
    }
    tx.commit().await?;
    found.proposals = proposals;
    Ok(found)
}

/// The prescription's requests still to be booked; their services, class and
/// patient complete what `req` did not say.
async fn with_prescription(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    req: &mut FindRequest,
    nre: &str,
) -> Result<Vec<Prescription>> {
    let requests = prescription(store, tx, access, nre).await?;
    for r in &requests {
        req.services.extend(r.codes.iter().map(|(s, c)| if s.is_empty() { c.clone() } else { format!("{s}|{c}") }));
        req.class = req.class.clone().or_else(|| r.class.clone());
        if req.patient.is_none() {
            req.patient = r.patient.clone();
        }
    }
    Ok(requests)
}

/// The district to search in and the point to rank by distance from: those asked
/// for, else the patient's residence.
async fn patient_place(store: &Store, tx: &mut Tx, req: &FindRequest) -> Result<(Option<String>, Option<(f64, f64)>)> {
    let patient = match &req.patient {
        Some(p) => current(tx, store.dialect(), "Patient", p, false).await?.map(|s| s.value()).transpose()?.flatten(),
        None => None,
    };
    let home = patient.as_ref().map(Residence::of).transpose()?.unwrap_or_default();
    Ok((req.district.clone().or(home.district), req.near.or(home.point)))
}

/// The deadline (µs) the proposals are held to: the class's, counted from the first
/// request for the prescription, for a first access whose guarantee the patient has
/// not waived (a waiver is noted).
async fn guarantee(
    store: &Store,
    tx: &mut Tx,
    req: &FindRequest,
    requests: &[Prescription],
    now: i64,
    notes: &mut Vec<Issue>,
) -> Result<Option<i64>> {
    let settings = store.settings();
    let facts = catalog_facts(store, tx).await?;
    let first_access = requests.iter().all(|r| access_type(&facts, r) != "follow-up");
    let exam = req.services.iter().any(|s| facts.get(code_part(s)).is_some_and(|f| f.kind == "exam"));
    let (clock, waiver) = match &req.nre {
        Some(nre) => (store.prescription_clock(tx, nre, now).await?, store.guarantee_waiver(tx, nre).await?),
        None => (now, None),
    };
    if let Some(response) = &waiver {
        notes.push(Issue::information(format!(
            "the patient declined a proposal within the deadline (AppointmentResponse/{response}): the priority guarantee no longer applies to this prescription"
        )));
    }
    Ok(match first_access && waiver.is_none() {
        true => deadline_of(settings, req.class.as_deref(), exam, clock),
        false => None,
    })
}

/// Where and from when `$find` looks, and the deadline its first slot should meet.
struct Reach<'a> {
    req: &'a FindRequest,
    from: i64,
    district: Option<&'a str>,
    deadline: Option<i64>,
}

/// The free slots in the district; in the whole region (noted: the guarantee pathway
/// applies) when the district's first does not meet the deadline.
async fn slots_in_reach(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    reach: &Reach<'_>,
    notes: &mut Vec<Issue>,
) -> Result<Vec<(Slot, Value)>> {
    let (req, deadline) = (reach.req, reach.deadline);
    let slots = free_slots(store, tx, access, req, reach.from, reach.district).await?;
    let meets = match deadline {
        Some(d) => slots.first().and_then(|(s, _)| s.start_us).is_some_and(|t| t <= d),
        None => !slots.is_empty(),
    };
    if reach.district.is_none() || deadline.is_none() || meets {
        return Ok(slots);
    }
    notes.push(Issue::information(format!(
        "no slot in the district {} meets the class {} deadline ({}): the search covers the whole region and the guarantee pathway (percorso di tutela) applies",
        reach.district.unwrap_or_default(),
        req.class.as_deref().unwrap_or_default(),
        deadline.map(meta::instant).unwrap_or_default()
    )));
    free_slots(store, tx, access, req, reach.from, None).await
}

/// The id of the prescription's request whose services the slot offers.
fn request_for<'a>(slot: &Slot, requests: &'a [Prescription]) -> Option<&'a str> {
    let request = requests.iter().find(|r| r.codes.iter().any(|(_, c)| slot.services.iter().any(|(_, sc)| sc == c)));
    request.map(|r| r.id.as_str())
}

/// When a first access of `class` asked for at `clock` must be served (µs), by the
/// rule in force on that day; `None` without a class or a rule.
pub(crate) fn deadline_of(settings: &super::Settings, class: Option<&str>, exam: bool, clock: i64) -> Option<i64> {
    let day = DateTime::<Utc>::from_timestamp_micros(clock)?.with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let d = settings.rules.deadline(class?, exam, day)?;
    Some(clock.saturating_add(d.num_microseconds()?))
}

/// The ServiceRequests of a prescription still to be booked.
async fn prescription(store: &Store, tx: &mut Tx, access: &Access, nre: &str) -> Result<Vec<Prescription>> {
    let base = store.settings().base.clone();
    let system = store.settings().rules.nre.as_ref().map(|n| n.system.clone()).unwrap_or_else(|| NRE_SYSTEM.into());
    let query = [("requisition".to_string(), format!("{system}|{nre}")), ("status".to_string(), "active".to_string())];
    let ids = store.search_ids_in(tx, access, "ServiceRequest", &query, 100).await?;
    if ids.is_empty() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "not-found",
            Some("referral-identifier".into()),
            format!("no active prescription with NRE {nre}"),
        )]));
    }
    let mut out = Vec::new();
    for id in ids {
        let booked = [
            ("based-on".to_string(), format!("ServiceRequest/{id}")),
            ("status".to_string(), "pending,booked,arrived,checked-in,fulfilled".to_string()),
        ];
        if !store.search_ids_in(tx, &Access::gateway(), "Appointment", &booked, 1).await?.is_empty() {
            continue;
        }
        let v = value_of(current(tx, store.dialect(), "ServiceRequest", &id, false).await?)?;
        out.push(Prescription::of(&id, &v, &base)?);
    }
    if out.is_empty() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("referral-identifier".into()),
            format!("every service of prescription {nre} is already booked"),
        )]));
    }
    Ok(out)
}

/// HL7 Italia's system for the NRE (used when the rules do not name one).
pub const NRE_SYSTEM: &str = "urn:oid:2.16.840.1.113883.2.9.4.3.9";

/// Slots fetched beyond `_count`, so that slots starting at the same time as the
/// last one asked for can be ranked by distance before the page is cut.
const TIE_MARGIN: usize = 20;

/// Free slots for `req` from `from` (`_count` + [`TIE_MARGIN`]), earliest first.
async fn free_slots(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    req: &FindRequest,
    from: i64,
    district: Option<&str>,
) -> Result<Vec<(Slot, Value)>> {
    let mut common = vec![
        ("service-type".to_string(), req.services.join(",")),
        ("status".to_string(), "free".to_string()),
        ("start".to_string(), format!("ge{}", meta::instant(from))),
        ("start".to_string(), format!("le{}", meta::instant(req.end))),
        ("_sort".to_string(), "start".to_string()),
        ("_count".to_string(), (req.count + TIE_MARGIN).to_string()),
        ("_total".to_string(), "none".to_string()),
    ];
    if let Some(d) = district {
        common.push(("district:exact".to_string(), d.to_string()));
    }
    if let Some(l) = &req.location {
        common.push(("location".to_string(), l.clone()));
    }
    if let Some(o) = &req.organization {
        common.push(("provider".to_string(), o.clone()));
    }
    // The slots this class may take now (cupola's `Slot-open-to`): kept for no class,
    // released, or kept for this class; without a class, as for the least urgent.
    let least_urgent = || crate::mappings::booking::priority_classes().last().map(|c| c.code.clone());
    common.push(("open-to".to_string(), req.class.clone().or_else(least_urgent).unwrap_or_default()));
    let parsed = store.parse_search(access, "Slot", &common, false)?;
    // Already in start order, and cut to the page, by the search.
    let matches = store.search_on(tx, &parsed).await?.matches;
    let base = &store.settings().base;
    let read = |body: String| -> Result<(Slot, Value)> {
        let body: Value = serde_json::from_str(&body).map_err(anyhow::Error::from)?;
        Ok((Slot::found(&body, base)?, body))
    };
    matches.into_iter().map(|(_, body)| read(body)).collect()
}

/// Reorders slots of the same start by distance from `origin` (kilometres on a sphere).
async fn rank_by_distance(store: &Store, tx: &mut Tx, slots: &mut [(Slot, Value)], origin: (f64, f64)) -> Result<()> {
    let mut distance: HashMap<String, f64> = HashMap::new();
    for (s, _) in slots.iter() {
        let Some(loc) = &s.location else { continue };
        if distance.contains_key(loc) {
            continue;
        }
        let v = value_of(current(tx, store.dialect(), "Location", loc, false).await?)?;
        if let Some(point) = position_of(&v)? {
            distance.insert(loc.clone(), km(origin, point));
        }
    }
    let key = |s: &Slot| {
        let d = s.location.as_ref().and_then(|l| distance.get(l).copied()).unwrap_or(f64::MAX);
        (s.start_us.unwrap_or_default(), d)
    };
    slots.sort_by(|(a, _), (b, _)| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
    });
    Ok(())
}

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// The actors of a Schedule (its service, place, practitioner), as participants.
pub(crate) async fn schedule_actors(store: &Store, tx: &mut Tx, schedule: &str) -> Result<Vec<Value>> {
    let id = schedule.strip_prefix("Schedule/").unwrap_or(schedule);
    // Read with the slot when a booking moved it out of the grid (`materialize_slot`).
    let body = current_seen(tx, store.dialect(), "Schedule", id).await?.and_then(|s| s.body);
    // Only `actor` is kept: an agenda's body is mostly its template, skipped unbuilt.
    #[derive(serde::Deserialize)]
    struct Actors {
        #[serde(default)]
        actor: Vec<Value>,
    }
    let actors = body.and_then(|b| serde_json::from_str::<Actors>(&b).ok());
    Ok(actors.map(|a| a.actor).unwrap_or_default())
}

/// For whom a proposal is made, and until when.
struct Proposal<'a> {
    patient: Option<&'a str>,
    request: Option<&'a str>,
    deadline: Option<i64>,
    expires: i64,
}

fn proposal(base: &str, (view, slot): (&Slot, &Value), actors: Vec<Value>, to: &Proposal<'_>) -> Result<Value> {
    // No deadline (no class, a follow-up, a declined offer): no guarantee to meet.
    let within = matches!((to.deadline, view.start_us), (Some(d), Some(s)) if s <= d);
    let mut participant: Vec<Value> = Vec::new();
    if let Some(p) = to.patient {
        participant.push(json!({"actor": {"reference": format!("Patient/{p}")}, "status": "needs-action"}));
    }
    let mut a = json!({
        "resourceType": "Appointment",
        "status": "proposed",
        "slot": [{"reference": format!("Slot/{}", view.id)}],
        "participant": participant,
        "extension": [
            {"url": names::structure(base, "within-guarantee"), "valueBoolean": within},
            {"url": names::structure(base, "proposal-expires"), "valueInstant": meta::instant(to.expires)}
        ]
    });
    // The date the class must be served by, from the dated rules (none: no guarantee).
    if let (Some(d), Some(ext)) = (to.deadline, a["extension"].as_array_mut()) {
        ext.push(json!({"url": names::structure(base, "guarantee-deadline"), "valueDateTime": meta::instant(d)}));
    }
    let mut w = AppointmentMut::new(&mut a, base)?;
    w.complete_from_slot(slot, actors);
    if let Some(r) = to.request {
        w.set_based_on(r);
    }
    Ok(a)
}
