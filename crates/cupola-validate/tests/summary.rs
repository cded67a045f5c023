//! `Validator::summary_elements`: the `isSummary` top-level elements of a type.

use cupola_validate::Validator;

#[test]
fn patient_summary_elements() {
    let v = Validator::r4();
    let s = v.summary_elements("Patient");
    assert_eq!(&s[..2], ["id", "meta"]);
    for name in [
        "identifier",
        "active",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "deceased[x]",
        "address",
        "managingOrganization",
        "link",
        "implicitRules",
    ] {
        assert!(s.iter().any(|e| e == name), "{name} missing from {s:?}");
    }
    for name in [
        "photo",
        "contact",
        "communication",
        "generalPractitioner",
        "maritalStatus",
        "multipleBirth[x]",
        "text",
        "contained",
        "extension",
        "deceased",
        "resourceType",
    ] {
        assert!(!s.iter().any(|e| e == name), "{name} in {s:?}");
    }
    let mut unique = s.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), s.len(), "duplicates in {s:?}");
}

#[test]
fn appointment_and_unknown_types() {
    let v = Validator::r4();
    let s = v.summary_elements("Appointment");
    for name in ["id", "meta", "identifier", "status", "serviceType", "start", "end"] {
        assert!(s.iter().any(|e| e == name), "{name} missing from {s:?}");
    }
    for name in ["participant", "comment", "description", "slot", "minutesDuration"] {
        assert!(!s.iter().any(|e| e == name), "{name} in {s:?}");
    }
    assert_eq!(v.summary_elements("Nope"), ["id", "meta"]);
    assert_eq!(v.summary_elements(""), ["id", "meta"]);
    let loc = v.summary_elements("Location");
    assert!(loc.iter().any(|e| e == "name"), "{loc:?}");
    assert!(!loc.iter().any(|e| e == "position"), "{loc:?}");
}
