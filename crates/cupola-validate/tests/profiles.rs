//! cupola's Patient profile: codice fiscale identifiers.

use cupola_validate::Profiles;
use serde_json::{json, Value};

const CF: &str = "http://hl7.it/sid/codiceFiscale";
const CF_OID: &str = "urn:oid:2.16.840.1.113883.2.9.4.3.2";

fn patient(system: &str, value: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": "http://example.org/mrn", "value": "123"},
            {"system": system, "value": value}
        ]
    })
}

fn issues(resource: &Value) -> Vec<(String, String)> {
    Profiles::load().check(resource).into_iter().map(|i| (i.code.to_string(), i.expression)).collect()
}

fn bad_value() -> Vec<(String, String)> {
    vec![("value".into(), "Patient.identifier[1].value".into())]
}

#[test]
fn valid_codici_fiscali_pass_in_both_systems() {
    // Published examples (Mario Rossi born in Rome) and one computed with an
    // independent implementation of the tables: Laura Bianchi, 5 May 1990,
    // Milan (F205) → BNCLRA90E45F205, check character D.
    for code in ["RSSMRA85T10A562S", "RSSMRA80A01H501U", "BNCLRA90E45F205D"] {
        assert_eq!(issues(&patient(CF, code)), vec![], "{code}");
        assert_eq!(issues(&patient(CF_OID, code)), vec![], "{code}");
    }
}

#[test]
fn wrong_check_character_is_rejected() {
    assert_eq!(issues(&patient(CF, "RSSMRA85T10A562T")), bad_value());
    let all = Profiles::load().check(&patient(CF_OID, "RSSMRA80A01H501A"));
    assert!(all[0].diagnostics.contains("'U'"), "{}", all[0].diagnostics);
}

#[test]
fn omocodia_variant_with_its_check_character() {
    // RSSMRA85T10A562S with position 15 (2 → N) and 14 (6 → S) replaced.
    // Check char of RSSMRA85T10A5SN computed on the string as written: T.
    assert_eq!(issues(&patient(CF, "RSSMRA85T10A5SNT")), vec![]);
    assert_eq!(issues(&patient(CF, "RSSMRA85T10A5SNS")), bad_value());
}

#[test]
fn bad_shapes_are_rejected() {
    for code in ["RSSMRA85T10A562", "rssmra85t10a562s", "RSSMRA85Z10A562S", "RSSMRA8XT10A562S", "RSSMRA85T99A562S"] {
        assert_eq!(issues(&patient(CF, code)), bad_value(), "{code}");
    }
    let no_value = json!({"resourceType": "Patient", "identifier": [{"system": CF}]});
    assert_eq!(issues(&no_value), vec![("required".into(), "Patient.identifier[0].value".into())]);
}

#[test]
fn other_identifiers_are_accepted_unchanged() {
    // STP (foreigners without a permit), ENI, TEAM card number, anything else.
    let others = json!({
        "resourceType": "Patient",
        "identifier": [
            {"system": "http://hl7.it/sid/stp", "value": "STP1901080000001"},
            {"system": "http://hl7.it/sid/eni", "value": "ENI1901080000001"},
            {"system": "http://hl7.it/sid/team", "value": "80380000500000000001"},
            {"value": "whatever"}
        ]
    });
    assert_eq!(issues(&others), vec![]);
    assert_eq!(issues(&json!({"resourceType": "Appointment", "identifier": [{"system": CF, "value": "x"}]})), vec![]);
    assert_eq!(issues(&json!("not a resource")), vec![]);
    assert_eq!(issues(&json!({"resourceType": "Patient", "identifier": {"system": CF}})).len(), 1);
}
