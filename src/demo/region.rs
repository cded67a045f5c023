//! A deterministic Liguria: the region, its five ASLs and three hospital
//! enterprises (the providers), their facilities across the socio-sanitary
//! districts, practitioners, what each facility offers, one agenda per offer, each
//! provider's Endpoint, and the booking points of the seed network.
//!
//! Pure: the same resources every time, ids included, so that a demo session can be
//! written down and replayed with `curl`.

use serde_json::{json, Value};

use crate::fhir::names;

/// A provider organisation: short code, name, and its facilities.
struct Provider {
    code: &'static str,
    name: &'static str,
    facilities: &'static [Facility],
}

/// A facility: id suffix, name, town, district, coordinates, branches offered.
struct Facility {
    id: &'static str,
    name: &'static str,
    town: &'static str,
    postal_code: &'static str,
    district: &'static str,
    lat: f64,
    lon: f64,
    branches: &'static [&'static str],
}

const PROVIDERS: &[Provider] = &[
    Provider {
        code: "asl1",
        name: "ASL1 Imperiese",
        facilities: &[
            Facility {
                id: "sanremo",
                name: "Ospedale Borea",
                town: "Sanremo",
                postal_code: "18038",
                district: "Sanremese",
                lat: 43.8203,
                lon: 7.7769,
                branches: &["cardiology", "radiology", "ophthalmology"],
            },
            Facility {
                id: "imperia",
                name: "Ospedale di Imperia",
                town: "Imperia",
                postal_code: "18100",
                district: "Imperiese",
                lat: 43.8810,
                lon: 8.0180,
                branches: &["cardiology", "orthopaedics", "laboratory"],
            },
            Facility {
                id: "bordighera",
                name: "Poliambulatorio di Bordighera",
                town: "Bordighera",
                postal_code: "18012",
                district: "Ventimigliese",
                lat: 43.7806,
                lon: 7.6650,
                branches: &["dermatology", "laboratory"],
            },
        ],
    },
    Provider {
        code: "asl2",
        name: "ASL2 Savonese",
        facilities: &[
            Facility {
                id: "savona",
                name: "Ospedale San Paolo",
                town: "Savona",
                postal_code: "17100",
                district: "Savonese",
                lat: 44.3079,
                lon: 8.4810,
                branches: &["cardiology", "radiology", "neurology"],
            },
            Facility {
                id: "pietra",
                name: "Ospedale Santa Corona",
                town: "Pietra Ligure",
                postal_code: "17027",
                district: "Finalese",
                lat: 44.1490,
                lon: 8.2820,
                branches: &["orthopaedics", "physical-medicine"],
            },
            Facility {
                id: "cairo",
                name: "Poliambulatorio di Cairo Montenotte",
                town: "Cairo Montenotte",
                postal_code: "17014",
                district: "Val Bormida",
                lat: 44.3980,
                lon: 8.2770,
                branches: &["laboratory", "ophthalmology"],
            },
            Facility {
                id: "albenga",
                name: "Ospedale di Albenga",
                town: "Albenga",
                postal_code: "17031",
                district: "Albenganese",
                lat: 44.0490,
                lon: 8.2130,
                branches: &["dermatology", "otolaryngology"],
            },
        ],
    },
    Provider {
        code: "asl3",
        name: "ASL3 Genovese",
        facilities: &[
            Facility {
                id: "villascassi",
                name: "Ospedale Villa Scassi",
                town: "Genova",
                postal_code: "16149",
                district: "Genova Medio Ponente",
                lat: 44.4140,
                lon: 8.8830,
                branches: &["cardiology", "radiology", "gastroenterology"],
            },
            Facility {
                id: "voltri",
                name: "Ospedale Evangelico di Voltri",
                town: "Genova",
                postal_code: "16158",
                district: "Genova Ponente",
                lat: 44.4290,
                lon: 8.7500,
                branches: &["ophthalmology", "laboratory"],
            },
            Facility {
                id: "pontedecimo",
                name: "Poliambulatorio di Pontedecimo",
                town: "Genova",
                postal_code: "16164",
                district: "Valpolcevera e Valle Scrivia",
                lat: 44.4980,
                lon: 8.9040,
                branches: &["dermatology", "endocrinology"],
            },
            Facility {
                id: "nervi",
                name: "Poliambulatorio di Nervi",
                town: "Genova",
                postal_code: "16167",
                district: "Genova Levante",
                lat: 44.3820,
                lon: 9.0390,
                branches: &["pneumology", "laboratory"],
            },
            Facility {
                id: "struppa",
                name: "Poliambulatorio di Struppa",
                town: "Genova",
                postal_code: "16165",
                district: "Valbisagno",
                lat: 44.4480,
                lon: 9.0010,
                branches: &["physical-medicine", "otolaryngology"],
            },
        ],
    },
    Provider {
        code: "asl4",
        name: "ASL4 Chiavarese",
        facilities: &[
            Facility {
                id: "lavagna",
                name: "Ospedale di Lavagna",
                town: "Lavagna",
                postal_code: "16033",
                district: "Chiavarese",
                lat: 44.3090,
                lon: 9.3440,
                branches: &["cardiology", "orthopaedics", "radiology"],
            },
            Facility {
                id: "rapallo",
                name: "Ospedale di Rapallo",
                town: "Rapallo",
                postal_code: "16035",
                district: "Tigullio Occidentale",
                lat: 44.3500,
                lon: 9.2300,
                branches: &["ophthalmology", "laboratory"],
            },
            Facility {
                id: "sestri",
                name: "Ospedale di Sestri Levante",
                town: "Sestri Levante",
                postal_code: "16039",
                district: "Sestri Levante",
                lat: 44.2720,
                lon: 9.3940,
                branches: &["urology", "gynaecology"],
            },
        ],
    },
    Provider {
        code: "asl5",
        name: "ASL5 Spezzino",
        facilities: &[
            Facility {
                id: "laspezia",
                name: "Ospedale Sant'Andrea",
                town: "La Spezia",
                postal_code: "19121",
                district: "Spezzino",
                lat: 44.1080,
                lon: 9.8240,
                branches: &["cardiology", "radiology", "oncology"],
            },
            Facility {
                id: "sarzana",
                name: "Ospedale San Bartolomeo",
                town: "Sarzana",
                postal_code: "19038",
                district: "Val di Magra",
                lat: 44.1110,
                lon: 9.9600,
                branches: &["orthopaedics", "laboratory"],
            },
            Facility {
                id: "levanto",
                name: "Poliambulatorio di Levanto",
                town: "Levanto",
                postal_code: "19015",
                district: "Riviera e Val di Vara",
                lat: 44.1700,
                lon: 9.6110,
                branches: &["dermatology", "physical-medicine"],
            },
        ],
    },
    Provider {
        code: "sanmartino",
        name: "IRCCS Ospedale Policlinico San Martino",
        facilities: &[Facility {
            id: "sanmartino",
            name: "Policlinico San Martino",
            town: "Genova",
            postal_code: "16132",
            district: "Genova Centro Est",
            lat: 44.4050,
            lon: 8.9740,
            branches: &["cardiology", "neurology", "radiology", "oncology", "endocrinology"],
        }],
    },
    Provider {
        code: "galliera",
        name: "E.O. Ospedali Galliera",
        facilities: &[Facility {
            id: "galliera",
            name: "Ospedale Galliera",
            town: "Genova",
            postal_code: "16128",
            district: "Genova Centro Ovest",
            lat: 44.4010,
            lon: 8.9370,
            branches: &["cardiology", "gastroenterology", "urology", "laboratory"],
        }],
    },
    Provider {
        code: "gaslini",
        name: "IRCCS Istituto Giannina Gaslini",
        facilities: &[Facility {
            id: "gaslini",
            name: "Istituto Giannina Gaslini",
            town: "Genova",
            postal_code: "16147",
            district: "Genova Levante",
            lat: 44.3840,
            lon: 8.9830,
            branches: &["cardiology", "neurology", "otolaryngology"],
        }],
    },
];

/// The booking points of the seed network: channel, how many, what they are called.
const BOOKING_POINTS: &[(&str, usize, &str)] = &[
    ("counter", 314, "Sportello CUP"),
    ("call-centre", 64, "Postazione call center"),
    ("pharmacy", 311, "Farmacia"),
    ("gp-office", 233, "Studio MMG/PLS"),
    ("clinic", 328, "Ambulatorio specialistico"),
];

/// Towns the booking points are spread over, in turn.
const TOWNS: &[&str] = &[
    "Genova",
    "La Spezia",
    "Savona",
    "Sanremo",
    "Imperia",
    "Chiavari",
    "Rapallo",
    "Sarzana",
    "Albenga",
    "Ventimiglia",
    "Lavagna",
    "Sestri Levante",
    "Varazze",
    "Finale Ligure",
    "Alassio",
    "Arenzano",
    "Recco",
    "Camogli",
    "Lerici",
    "Bordighera",
];

const FAMILY: &[&str] = &[
    "Bianchi", "Ferrari", "Russo", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti", "Costa",
];
const GIVEN: &[&str] =
    &["Lucia", "Marco", "Giulia", "Andrea", "Chiara", "Paolo", "Elena", "Stefano", "Francesca", "Luca"];

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
    let mut out = vec![
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
    ];
    let mut doctor = 0usize;
    for p in PROVIDERS {
        out.push(json!({
            "resourceType": "Organization", "id": provider_org(p.code), "active": true,
            "identifier": [{"system": names::provider_identifier(base), "value": p.code}],
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov"}]}],
            "name": p.name, "partOf": {"reference": format!("Organization/{REGION_ORG}")}
        }));
        out.push(json!({
            "resourceType": "Endpoint", "id": format!("ep-{}", p.code), "status": "active",
            "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-msg"},
            "name": format!("{} - sistema ospedaliero", p.name),
            "managingOrganization": {"reference": format!("Organization/{}", provider_org(p.code))},
            "payloadType": [{"coding": [{"system": "http://hl7.org/fhir/resource-types", "code": "Bundle"}]}],
            "payloadMimeType": ["application/fhir+json"],
            "address": format!("amqp://cupola/{}", p.code)
        }));
        for f in p.facilities {
            let loc = format!("loc-{}", f.id);
            out.push(json!({
                "resourceType": "Location", "id": loc, "status": "active", "name": f.name, "mode": "instance",
                "address": {"use": "work", "line": [f.name], "city": f.town, "district": f.district, "postalCode": f.postal_code, "country": "IT"},
                "position": {"latitude": f.lat, "longitude": f.lon},
                "managingOrganization": {"reference": format!("Organization/{}", provider_org(p.code))}
            }));
            for branch in f.branches {
                doctor += 1;
                let (pr, role, hs) =
                    (format!("pr-{doctor:03}"), format!("prr-{doctor:03}"), format!("hs-{}-{branch}", f.id));
                out.push(json!({
                    "resourceType": "Practitioner", "id": pr, "active": true,
                    "name": [{"family": FAMILY[doctor % FAMILY.len()], "given": [GIVEN[doctor % GIVEN.len()]], "prefix": ["Dott."]}]
                }));
                out.push(json!({
                    "resourceType": "PractitionerRole", "id": role, "active": true,
                    "practitioner": {"reference": format!("Practitioner/{pr}")},
                    "organization": {"reference": format!("Organization/{}", provider_org(p.code))},
                    "location": [{"reference": format!("Location/{loc}")}],
                    "specialty": [{"coding": [{"system": names::branch_system(base), "code": branch}]}]
                }));
                let codes = services(branch);
                let service_type: Vec<Value> = codes
                    .iter()
                    .map(|(c, d)| json!({"coding": [{"system": names::catalog_system(base), "code": c, "display": d}]}))
                    .collect();
                out.push(json!({
                    "resourceType": "HealthcareService", "id": hs, "active": true,
                    "providedBy": {"reference": format!("Organization/{}", provider_org(p.code))},
                    "location": [{"reference": format!("Location/{loc}")}],
                    "name": format!("{} - {branch}", f.name),
                    "specialty": [{"coding": [{"system": names::branch_system(base), "code": branch}]}],
                    "type": service_type.clone()
                }));
                out.push(schedule(base, &format!("ag-{}-{branch}", f.id), &hs, &loc, &role, &service_type, doctor));
            }
        }
    }
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
