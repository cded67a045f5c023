//! Invalid resources: each problem is reported with its code and location.

use std::sync::OnceLock;

use cupola_validate::{Issue, Severity, Validator};
use serde_json::{json, Value};

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(Validator::r4)
}

fn errors(resource: Value) -> Vec<Issue> {
    validator().validate(&resource).into_iter().filter(|i| i.severity == Severity::Error).collect()
}

/// Asserts exactly one error, with this code at this expression.
#[track_caller]
fn only(resource: Value, code: &str, expression: &str) -> Issue {
    let errors = errors(resource);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert_eq!((errors[0].code, errors[0].expression.as_str()), (code, expression), "{errors:#?}");
    assert!(!errors[0].diagnostics.is_empty());
    errors.into_iter().next().expect("one error")
}

fn appointment() -> Value {
    json!({
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2023-01-01T10:00:00Z",
        "end": "2023-01-01T10:30:00Z",
        "participant": [{"actor": {"reference": "Patient/1"}, "status": "accepted"}]
    })
}

#[test]
fn valid_minimal_resources() {
    assert_eq!(errors(appointment()), vec![]);
    assert_eq!(errors(json!({"resourceType": "Patient"})), vec![]);
}

#[test]
fn unknown_element() {
    only(json!({"resourceType": "Patient", "foo": 1}), "structure", "Patient.foo");
}

#[test]
fn wrong_json_type() {
    only(json!({"resourceType": "Patient", "active": "yes"}), "structure", "Patient.active");
}

#[test]
fn missing_appointment_status() {
    let mut a = appointment();
    a.as_object_mut().map(|o| o.remove("status"));
    let issue = only(a, "required", "Appointment.status");
    assert!(issue.diagnostics.contains("status"), "{}", issue.diagnostics);
}

#[test]
fn missing_slot_start() {
    only(
        json!({"resourceType": "Slot", "schedule": {"reference": "Schedule/1"}, "status": "free", "end": "2023-01-01T10:30:00Z"}),
        "required",
        "Slot.start",
    );
}

#[test]
fn service_request_status_outside_required_binding() {
    let issue = only(
        json!({"resourceType": "ServiceRequest", "status": "bogus", "intent": "order", "subject": {"reference": "Patient/1"}}),
        "code-invalid",
        "ServiceRequest.status",
    );
    assert!(issue.diagnostics.contains("active"), "{}", issue.diagnostics);
}

#[test]
fn patient_gender_outside_enum() {
    only(json!({"resourceType": "Patient", "gender": "x"}), "code-invalid", "Patient.gender");
}

#[test]
fn impossible_birth_date() {
    let issue = only(json!({"resourceType": "Patient", "birthDate": "2023-02-31"}), "value", "Patient.birthDate");
    assert!(issue.diagnostics.contains("28 days"), "{}", issue.diagnostics);
    only(json!({"resourceType": "Patient", "birthDate": "2023-13-01"}), "value", "Patient.birthDate");
    assert_eq!(errors(json!({"resourceType": "Patient", "birthDate": "2023-05"})), vec![]);
}

#[test]
fn impossible_start_time() {
    let mut a = appointment();
    a["start"] = json!("2023-01-01T25:00:00Z");
    only(a, "value", "Appointment.start");
    let mut a = appointment();
    a["start"] = json!("2023-01-01");
    only(a, "value", "Appointment.start");
}

#[test]
fn nested_invalid_resource_in_bundle() {
    let mut bad = appointment();
    bad.as_object_mut().map(|o| o.remove("status"));
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": bad},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient", "gender": "x"}}
        ]
    });
    let errors = errors(bundle);
    let found: Vec<(&str, &str)> = errors.iter().map(|i| (i.code, i.expression.as_str())).collect();
    assert_eq!(
        found,
        vec![("required", "Bundle.entry[0].resource.status"), ("code-invalid", "Bundle.entry[1].resource.gender"),]
    );
}

#[test]
fn nested_unknown_element_and_contained() {
    let p = json!({
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "o", "bogus": true}],
        "managingOrganization": {"reference": "#o"}
    });
    only(p, "structure", "Patient.contained[0].bogus");
    let p = json!({"resourceType": "Patient", "contained": [{"resourceType": "NotAType"}]});
    only(p, "value", "Patient.contained[0].resourceType");
}

#[test]
fn missing_extension_url() {
    only(
        json!({"resourceType": "Patient", "extension": [{"valueString": "x"}]}),
        "required",
        "Patient.extension[0].url",
    );
    only(
        json!({"resourceType": "Patient", "birthDate": "1970-01-01", "_birthDate": {"extension": [{"valueDateTime": "1970-01-01T10:00:00Z"}]}}),
        "required",
        "Patient.birthDate.extension[0].url",
    );
}

#[test]
fn required_inside_data_types_and_backbones() {
    only(json!({"resourceType": "Patient", "text": {"status": "generated"}}), "required", "Patient.text.div");
    only(
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"url": "Patient"}}]}),
        "required",
        "Bundle.entry[0].request.method",
    );
}

#[test]
fn resource_type_checks() {
    only(json!({"id": "x"}), "required", "Resource.resourceType");
    only(json!({"resourceType": "Observation"}), "value", "Resource.resourceType");
    only(json!([1, 2]), "structure", "Resource");
}

#[test]
fn choice_types_and_dates_inside_extensions() {
    only(
        json!({"resourceType": "Patient", "extension": [{"url": "http://x", "valueDate": "2023-02-30"}]}),
        "value",
        "Patient.extension[0].valueDate",
    );
    only(
        json!({"resourceType": "Patient", "deceasedBoolean": false, "deceasedDateTime": "2020"}),
        "structure",
        "Patient.deceased",
    );
}

#[test]
fn never_panics_on_odd_json() {
    let odd = [
        json!(null),
        json!("Patient"),
        json!({"resourceType": 3}),
        json!({"resourceType": "Bundle", "entry": "x"}),
        json!({"resourceType": "Bundle", "entry": [{"resource": [1]}, {"resource": null}, 3]}),
        json!({"resourceType": "Patient", "name": {"family": ["x"]}, "_birthDate": [null, 3], "birthDate": 19700101}),
        json!({"resourceType": "Patient", "extension": [null, {"url": 1, "extension": "x"}]}),
        json!({"resourceType": "Appointment", "status": ["booked"], "participant": [[]]}),
    ];
    for value in odd {
        let _ = validator().validate(&value);
    }
    let mut deep = json!({"url": "http://x"});
    for _ in 0..300 {
        deep = json!({"url": "http://x", "extension": [deep]});
    }
    let issues = validator().validate(&json!({"resourceType": "Patient", "extension": [deep]}));
    assert!(!issues.is_empty());
}

#[test]
fn validator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Validator>();
    check::<cupola_validate::Profiles>();
}

/// Narrative: R4's XHTML subset only (txt-1); active content is refused at the div.
#[test]
fn narrative_with_active_content_is_refused_at_the_div() {
    let v = cupola_validate::Validator::r4();
    let with = |div: &str| serde_json::json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
    let ns = "xmlns=\"http://www.w3.org/1999/xhtml\"";
    let refused = [
        format!("<div {ns}><script>alert(1)</script></div>"),
        format!("<div {ns}><p onclick=\"alert(1)\">x</p></div>"),
        format!("<div {ns}><a href=\"javascript:alert(1)\">x</a></div>"),
        format!("<div {ns}><a href=\" JaVa&#x09;script:alert(1)\">x</a></div>"),
        format!("<div {ns}><iframe src=\"http://example.org\"></iframe></div>"),
        format!("<div {ns}><form><input/></form></div>"),
        format!("<div {ns}><p style=\"background:url(http://x/y)\">x</p></div>"),
        format!("<div {ns}><img src=\"data:text/html,x\"/></div>"),
        format!("<div {ns}>x</div><div {ns}>y</div>"),
        "<div>no namespace</div>".to_string(),
        format!("<div {ns}><p>unclosed</div>"),
    ];
    for div in &refused {
        let issues = v.validate(&with(div));
        assert!(
            issues.iter().any(|i| i.severity == cupola_validate::Severity::Error && i.expression == "Patient.text.div"),
            "accepted: {div}: {issues:?}"
        );
    }
    let accepted = [
        format!("<div {ns}><p>Mario <b>Rossi</b> &amp; <a href=\"http://example.org\">link</a></p></div>"),
        format!("<div {ns} lang=\"it\"><table border=\"1\"><tr><td style=\"color:red\">x</td></tr></table></div>"),
        format!("<div {ns}><img src=\"data:image/png;base64,AAAA\" alt=\"x\"/></div>"),
    ];
    for div in &accepted {
        let issues = v.validate(&with(div));
        assert!(issues.iter().all(|i| i.severity != cupola_validate::Severity::Error), "refused: {div}: {issues:?}");
    }
}
