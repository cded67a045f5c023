//! A deterministic Liguria: the region, its five ASLs and three hospital
//! enterprises (the providers), their facilities across the socio-sanitary
//! districts, practitioners, what each facility offers, one agenda per offer, each
//! provider's Endpoint, and the booking points of the seed network.
//!
//! Pure: the same resources every time, ids included, so that a demo session can be
//! written down and replayed with `curl`.

use serde_json::{json, Value};

use super::network::{Facility, Provider, BOOKING_POINTS, FAMILY, GIVEN, PROVIDERS, TOWNS};
use crate::fhir::names;

/// The health region the providers belong to.
pub const REGION_ORG: &str = "regione-liguria";

/// The regional health service that is paid the tickets.
pub const PAYER_ORG: &str = "ssr-liguria";

/// The id of the Organization of a provider (its short code).
pub fn provider_org(code: &str) -> String {
    format!("prov-{code}")
}

/// The id of a booking point's Organization: channel and number (`counter-001`).
pub fn booking_point_org(channel: &str, n: usize) -> String {
    format!("bp-{channel}-{n:03}")
}

/// Everything but the catalog, the agendas' slots and the showcase patient: the
/// organisations, facilities, practitioners, offers, agendas (Schedules with their
/// templates, one per facility and branch, serving `services[branch]`), Endpoints
/// and booking points.
pub fn resources(base: &str, services: &dyn Fn(&str) -> Vec<(String, String)>) -> Vec<Value> {
    let mut out = region_organizations();
    // Practitioners are numbered across the whole region, in this order.
    let mut doctor = 0usize;
    for p in PROVIDERS {
        out.extend(provider_resources(base, p));
        for f in p.facilities {
            out.push(location(p, f));
            for branch in f.branches {
                doctor += 1;
                out.extend(offer(base, Offer { provider: p, facility: f, branch, doctor }, services));
            }
        }
    }
    out.extend(booking_points(base));
    out
}

/// The region's Organization and the regional health service's.
fn region_organizations() -> Vec<Value> {
    vec![
        json!({
            "resourceType": "Organization", "id": REGION_ORG, "active": true,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "govt"}]}],
            "name": "Regione Liguria - Centro Unico di Prenotazione"
        }),
        json!({
            // The regional health service: the payor of exemptions and the recipient of
            // ticket payments (README's PaymentNotice example names it).
            "resourceType": "Organization", "id": PAYER_ORG, "active": true,
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay"}]}],
            "name": "Servizio Sanitario Regionale della Liguria",
            "partOf": {"reference": format!("Organization/{REGION_ORG}")}
        }),
    ]
}

/// A provider's Organization and the Endpoint its messages go to.
fn provider_resources(base: &str, p: &Provider) -> [Value; 2] {
    [
        json!({
            "resourceType": "Organization", "id": provider_org(p.code), "active": true,
            "identifier": [{"system": names::provider_identifier(base), "value": p.code}],
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
            "name": p.name, "partOf": {"reference": format!("Organization/{REGION_ORG}")}
        }),
        json!({
            "resourceType": "Endpoint", "id": format!("ep-{}", p.code), "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-msg"},
            "name": format!("{} - sistema ospedaliero", p.name),
            "managingOrganization": {"reference": format!("Organization/{}", provider_org(p.code))},
            "payloadType": [{"coding": [{"system": "http://hl7.org/fhir/resource-types", "code": "Bundle"}]}],
            "payloadMimeType": ["application/fhir+json"],
            "address": format!("amqp://cupola/{}", p.code)
        }),
    ]
}

/// A facility's Location.
fn location(p: &Provider, f: &Facility) -> Value {
    json!({
        "resourceType": "Location", "id": format!("loc-{}", f.id), "status": "active", "name": f.name, "mode": "instance",
        "address": {"use": "work", "line": [f.name], "city": f.town, "district": f.district, "postalCode": f.postal_code, "country": "IT"},
        "position": {"latitude": f.lat, "longitude": f.lon},
        "managingOrganization": {"reference": format!("Organization/{}", provider_org(p.code))}
    })
}

/// One branch offered at one facility, by the region's `doctor`-th practitioner.
struct Offer<'a> {
    provider: &'a Provider,
    facility: &'a Facility,
    branch: &'a str,
    doctor: usize,
}

/// An offer's Practitioner, PractitionerRole, HealthcareService and agenda.
fn offer(base: &str, o: Offer, services: &dyn Fn(&str) -> Vec<(String, String)>) -> [Value; 4] {
    let (f, branch, doctor) = (o.facility, o.branch, o.doctor);
    let org = format!("Organization/{}", provider_org(o.provider.code));
    let loc = format!("loc-{}", f.id);
    let (pr, role, hs) = (format!("pr-{doctor:03}"), format!("prr-{doctor:03}"), format!("hs-{}-{branch}", f.id));
    let service_type: Vec<Value> = services(branch)
        .iter()
        .map(|(c, d)| json!({"coding": [{"system": names::catalog_system(base), "code": c, "display": d}]}))
        .collect();
    [
        json!({
            "resourceType": "Practitioner", "id": pr, "active": true,
            "name": [{"family": FAMILY[doctor % FAMILY.len()], "given": [GIVEN[doctor % GIVEN.len()]], "prefix": ["Dott."]}]
        }),
        json!({
            "resourceType": "PractitionerRole", "id": role, "active": true,
            "practitioner": {"reference": format!("Practitioner/{pr}")},
            "organization": {"reference": org},
            "location": [{"reference": format!("Location/{loc}")}],
            "specialty": [{"coding": [{"system": names::branch_system(base), "code": branch}]}]
        }),
        json!({
            "resourceType": "HealthcareService", "id": hs, "active": true,
            "providedBy": {"reference": org},
            "location": [{"reference": format!("Location/{loc}")}],
            "name": format!("{} - {branch}", f.name),
            "specialty": [{"coding": [{"system": names::branch_system(base), "code": branch}]}],
            "type": service_type.clone()
        }),
        schedule(base, &format!("ag-{}-{branch}", f.id), &hs, &loc, &role, &service_type, doctor),
    ]
}

/// The booking points' Organizations, by channel, spread over the towns.
fn booking_points(base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (channel, count, label) in BOOKING_POINTS {
        for n in 1..=*count {
            let town = TOWNS[(n * 7 + channel.len()) % TOWNS.len()];
            out.push(json!({
                "resourceType": "Organization", "id": booking_point_org(channel, n), "active": true,
                "identifier": [{"system": names::booking_point_identifier(base), "value": format!("{channel}-{n:03}")}],
                "type": [{"coding": [{"system": names::channel_system(base), "code": channel}]}],
                "name": format!("{label} {town} {n}"),
                "address": [{"city": town, "country": "IT"}],
                "partOf": {"reference": format!("Organization/{REGION_ORG}")}
            }));
        }
    }
    out
}

/// An agenda: the offer, its place and practitioner, the services it books, and its
/// template (weekday mornings, 20-minute slots; one slot per session kept for U and
/// one for B, opening to everyone 48 h / 72 h before).
fn schedule(base: &str, id: &str, hs: &str, loc: &str, role: &str, service_type: &[Value], n: usize) -> Value {
    let ext = |url: &str, v: Value| {
        let mut e = json!({"url": url});
        if let (Some(o), Some(vo)) = (e.as_object_mut(), v.as_object()) {
            o.extend(vo.clone());
        }
        e
    };
    // Afternoon sessions on two days for every other agenda, so that days differ.
    let mut sessions: Vec<(&str, &str, &str)> =
        ["mon", "tue", "wed", "thu", "fri"].iter().map(|d| (*d, "08:30:00", "12:30:00")).collect();
    if n.is_multiple_of(2) {
        sessions.push(("tue", "14:00:00", "17:00:00"));
        sessions.push(("thu", "14:00:00", "17:00:00"));
    }
    let mut template =
        vec![ext("timeZone", json!({"valueCode": "Europe/Rome"})), ext("horizonDays", json!({"valueInteger": 56}))];
    for (day, start, end) in sessions {
        template.push(json!({"url": "session", "extension": [
            ext("day", json!({"valueCode": day})), ext("start", json!({"valueTime": start})), ext("end", json!({"valueTime": end})),
            ext("slotMinutes", json!({"valueInteger": 20})), ext("capacity", json!({"valueInteger": 1}))
        ]}));
    }
    for (class, hours) in [("U", 48), ("B", 72)] {
        template.push(json!({"url": "reserve", "extension": [
            ext("priority", json!({"valueCode": class})), ext("perSession", json!({"valueInteger": 1})), ext("releaseHours", json!({"valueInteger": hours}))
        ]}));
    }
    json!({
        "resourceType": "Schedule", "id": id, "active": true,
        "extension": [{"url": names::structure(base, "agenda-template"), "extension": template}],
        "serviceType": service_type,
        "actor": [{"reference": format!("HealthcareService/{hs}")}, {"reference": format!("Location/{loc}")}, {"reference": format!("PractitionerRole/{role}")}],
        "comment": "Agenda generata dal modello settimanale"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_is_the_same_every_time_and_has_the_seed_network() {
        let services = |b: &str| vec![(format!("{b}-1"), "x".to_string())];
        let a = resources("http://x", &services);
        assert_eq!(a, resources("http://x", &services));
        let count = |channel: &str| {
            a.iter()
                .filter(|r| r["type"][0]["coding"][0]["code"] == channel && r["resourceType"] == "Organization")
                .count()
        };
        assert_eq!(
            (count("counter"), count("call-centre"), count("pharmacy"), count("gp-office"), count("clinic")),
            (314, 64, 311, 233, 328)
        );
        let providers = a.iter().filter(|r| r["identifier"][0]["system"] == "http://x/sid/provider").count();
        assert_eq!(providers, 8);
        let mut ids: Vec<String> = a.iter().map(|r| format!("{}/{}", r["resourceType"], r["id"])).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");
    }
}
