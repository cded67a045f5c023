use serde_json::json;

use super::*;

const BASE: &str = "http://example.org/cupola";

fn ext(name: &str) -> String {
    names::structure(BASE, name)
}

#[test]
fn an_appointment_is_read_once_into_what_the_rules_need() {
    let a = json!({"resourceType": "Appointment", "id": "a1", "status": "pending",
        "slot": [{"reference": "Slot/s1"}, {"reference": "http://elsewhere/Slot/s2"}],
        "serviceType": [{"coding": [{"system": "c", "code": "89.52"}, {"code": "x"}]}],
        "basedOn": [{"reference": "ServiceRequest/r1"}],
        "participant": [{"actor": {"reference": "Location/l"}}, {"actor": {"reference": "Patient/p1"}}],
        "identifier": [{"system": names::booking_code_system(BASE), "value": "ABCD-EFGH"}],
        "start": "2026-12-02T10:00:00+01:00", "cancelationReason": {"text": "why"},
        "extension": [{"url": ext("priority-class"), "valueCoding": {"code": "B"}},
            {"url": ext("within-guarantee"), "valueBoolean": true}]});
    let v = Appointment::of(&a, BASE).expect("an Appointment");
    assert_eq!(v.id.as_deref(), Some("a1"));
    assert_eq!(v.status, Status::Pending);
    assert_eq!(v.slots, vec!["s1".to_string()], "an absolute reference is not a local slot");
    assert_eq!(v.services, vec![("c".into(), "89.52".into()), (String::new(), "x".into())]);
    assert_eq!(v.requests, vec!["r1".to_string()]);
    assert_eq!(v.patient.as_deref(), Some("p1"));
    assert_eq!(v.class.as_deref(), Some("B"));
    assert_eq!(v.booking_code.as_deref(), Some("ABCD-EFGH"));
    assert_eq!(v.start_us, crate::fhir::meta::parse_instant("2026-12-02T10:00:00+01:00"));
    assert_eq!(v.cancel_reason.as_deref(), Some("why"));
    assert_eq!(v.within_guarantee, Some(true));
    assert_eq!(v.claimed_slots(), ["s1".to_string()]);
    let proposal = Appointment::of(&json!({"status": "proposed", "slot": [{"reference": "Slot/s1"}]}), BASE);
    assert!(proposal.expect("an Appointment").claimed_slots().is_empty(), "a proposal takes no place");
}

#[test]
fn a_shape_the_rules_cannot_read_is_refused_naming_the_type() {
    let bad = Appointment::of(&json!({"status": "booked", "slot": {"reference": "Slot/s1"}}), BASE);
    assert!(
        matches!(bad, Err(crate::Error::Unprocessable(ref i)) if i[0].expression.as_deref() == Some("Appointment"))
    );
}

#[test]
fn a_slot_says_its_capacity_reserve_and_place() {
    let s = json!({"resourceType": "Slot", "status": "free", "start": "2026-12-05T10:00:00+01:00",
        "schedule": {"reference": "Schedule/ag1"},
        "serviceType": [{"coding": [{"system": "c", "code": "89.52"}]}],
        "extension": [{"url": ext("slot-capacity"), "valueInteger": 3},
            {"url": ext("slot-reserved-for"), "valueCode": "U"},
            {"url": ext("slot-release"), "valueDateTime": "2026-12-04T10:00:00+01:00"},
            {"url": ext("slot-district"), "valueString": "Genova"},
            {"url": ext("slot-provider"), "valueReference": {"reference": "Organization/asl3"}},
            {"url": ext("slot-location"), "valueReference": {"reference": "Location/l9"}}]});
    let v = Slot::of("s1", &s, BASE).expect("a Slot");
    assert_eq!((v.capacity, v.status.as_str(), v.schedule.as_deref()), (3, "free", Some("ag1")));
    let release = crate::fhir::meta::parse_instant("2026-12-04T10:00:00+01:00");
    assert_eq!(v.reserve, Some(("U".to_string(), release)));
    assert_eq!(
        (v.district.as_deref(), v.provider.as_deref(), v.location.as_deref()),
        (Some("Genova"), Some("asl3"), Some("l9"))
    );
    let bare = Slot::of("s2", &json!({"status": "busy"}), BASE).expect("a Slot");
    assert_eq!((bare.capacity, bare.reserve, bare.start_us), (1, None, None));
}

#[test]
fn a_prescription_gives_its_number_codes_class_and_patient() {
    let r = json!({"resourceType": "ServiceRequest", "status": "revoked",
        "requisition": {"system": "nre", "value": "010A00000001"},
        "code": {"coding": [{"system": "c", "code": "89.7"}]}, "subject": {"reference": "Patient/p1"},
        "extension": [{"url": ext("priority-class"), "valueCode": "D"},
            {"url": ext("access-type"), "valueCoding": {"code": "follow-up"}}]});
    let v = Prescription::of("r1", &r, BASE).expect("a ServiceRequest");
    assert_eq!(
        (v.number_of("nre"), v.number_of("other"), v.number()),
        (Some("010A00000001"), None, Some("010A00000001"))
    );
    assert_eq!(v.codes, vec![("c".into(), "89.7".into())]);
    assert_eq!(
        (v.class.as_deref(), v.access_type.as_deref(), v.patient.as_deref()),
        (Some("D"), Some("follow-up"), Some("p1"))
    );
    assert!(!v.active, "a revoked prescription is not active");
}

#[test]
fn a_residence_and_a_position_are_points() {
    let geo = json!({"url": GEOLOCATION, "extension": [{"url": "latitude", "valueDecimal": 44.4},
        {"url": "longitude", "valueDecimal": 8.9}]});
    let p = json!({"resourceType": "Patient", "address": [{"district": "Genova", "extension": [geo]}, {"district": "Savona"}]});
    let home = Residence::of(&p).expect("a Patient");
    assert_eq!((home.district.as_deref(), home.point), (Some("Genova"), Some((44.4, 8.9))));
    assert_eq!(Residence::of(&json!({"resourceType": "Patient"})).expect("a Patient"), Residence::default());
    let l = json!({"resourceType": "Location", "position": {"latitude": 44.1, "longitude": 9.8}});
    assert_eq!(position_of(&l).expect("a Location"), Some((44.1, 9.8)));
}

#[test]
fn the_writes_go_where_r4_puts_them() {
    let mut a = json!({"resourceType": "Appointment", "status": "proposed",
        "extension": [{"url": ext("proposal-expires"), "valueInstant": "2026-12-01T10:00:00Z"}],
        "participant": [{"actor": {"reference": "Patient/p1"}}]});
    let slot = json!({"start": "2026-12-02T10:00:00Z", "end": "2026-12-02T10:20:00Z"});
    let mut w = AppointmentMut::new(&mut a, BASE).expect("an object");
    w.drop_extension("proposal-expires").set_status(Status::Booked).add_booking_code("ABCD-EFGH");
    w.set_hold_expires(Some(0)).set_hold_expires(None);
    w.complete_from_slot(&slot, vec![json!({"reference": "Location/l"}), json!({"reference": "Patient/p1"})]);
    let v = Appointment::of(&a, BASE).expect("an Appointment");
    assert_eq!((v.status, v.booking_code.as_deref()), (Status::Booked, Some("ABCD-EFGH")));
    assert!(a.get("extension").is_none(), "the emptied extension element goes");
    assert_eq!(a["start"], "2026-12-02T10:00:00Z");
    assert_eq!(a["participant"].as_array().map(Vec::len), Some(2), "an actor already there is not added twice");
    AppointmentMut::new(&mut a, BASE).expect("an object").cancel("hold expired");
    assert_eq!(Appointment::of(&a, BASE).expect("read").cancel_reason.as_deref(), Some("hold expired"));
    assert!(AppointmentMut::new(&mut json!([]), BASE).is_err());
}
