//! The booking workflow's references resolve: a booking, a prescription, a payment
//! for something that does not exist is refused (422 naming the element), and
//! nothing of it is stored; a reference to what the caller may not see answers
//! exactly as one to nothing. Other resources keep FHIR's open world unless
//! `--referential-integrity strict`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{book_params, counter, proposal, region, send};
use crate::helpers::{client_as, expression, As, Backend, TestApp};

const NRE: &str = "urn:oid:2.16.840.1.113883.2.9.4.3.9";

async fn total(app: &TestApp, query: &str) -> i64 {
    app.get_json(&format!("{query}&_summary=count"), 200).await["total"].as_i64().unwrap_or(-1)
}

/// `$book` for a patient who does not exist: 422 at the participant, no booking,
/// no ticket, the slot still free; a ServiceRequest with an NRE for nobody and a
/// PaymentNotice for no invoice or to no recipient are refused likewise.
async fn bookings_prescriptions_and_payments_need_what_they_name(b: Backend) {
    let app = TestApp::spawn(b).await;
    let slots = region(&app.base, &client_as(&app.auth, &As::admin()), 2, 1).await;
    let invoices = total(&app, "Invoice?_count=0").await;
    let (status, oo) = send(
        &app,
        &counter(),
        Method::POST,
        "Appointment/$book",
        &book_params(proposal(&slots[1], "anna-bianchi", None), None),
    )
    .await;
    assert_eq!(status, 422, "{oo}");
    assert_eq!(expression(&oo), "Appointment.participant[0].actor");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap_or_default().contains("Patient/anna-bianchi"), "{oo}");
    assert_eq!(total(&app, &format!("Appointment?slot=Slot/{}", slots[1])).await, 0);
    assert_eq!(total(&app, "Invoice?_count=0").await, invoices, "no ticket for a booking refused");
    let (status, _) =
        send(&app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(&slots[1], "p1", None), None))
            .await;
    assert_eq!(status, 201, "the slot is still free for a patient who exists");

    let sr = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "requisition": {"system": NRE, "value": "070A12345678901"}, "subject": {"reference": "Patient/nobody"}});
    let (status, oo) = send(&app, &counter(), Method::POST, "ServiceRequest", &sr).await;
    assert_eq!((status, expression(&oo)), (422, "ServiceRequest.subject".to_string()), "{oo}");
    let note = json!({"resourceType": "PaymentNotice", "status": "active", "created": "2026-11-26T10:00:00+01:00",
        "request": {"reference": "Invoice/nope"}, "payment": {"reference": "PaymentReconciliation/none"},
        "recipient": {"reference": "Organization/nobody"}, "amount": {"value": 1, "currency": "EUR"}});
    let (status, oo) = send(&app, &As::payment_point("farmacia-1"), Method::POST, "PaymentNotice", &note).await;
    assert_eq!(status, 422, "{oo}");
    let named: Vec<&str> =
        oo["issue"].as_array().into_iter().flatten().filter_map(|i| i["expression"][0].as_str()).collect();
    for element in ["PaymentNotice.request", "PaymentNotice.recipient", "PaymentNotice.payment"] {
        assert!(named.contains(&element), "{element} not named: {oo}");
    }
    // A deleted patient is as absent as one never created.
    assert!(app.delete("Patient/p2").await.status().is_success());
    let (status, oo) =
        send(&app, &counter(), Method::POST, "Appointment/$book", &book_params(proposal(&slots[2], "p2", None), None))
            .await;
    assert_eq!((status, expression(&oo)), (422, "Appointment.participant[0].actor".to_string()), "{oo}");
}

/// A booking point whose token does not let it see patients: a patient who exists
/// answers exactly as one who does not. A provider, which sees a patient only
/// through its own appointments, is checked for existence only.
async fn what_the_caller_may_not_see_answers_as_what_does_not_exist(b: Backend) {
    let app = TestApp::spawn(b).await;
    let slots = region(&app.base, &client_as(&app.auth, &As::admin()), 2, 1).await;
    let blind = counter().scope("system/Appointment.cruds system/Slot.rs system/Schedule.rs");
    let mut outcomes = Vec::new();
    for patient in ["p1", "ghost"] {
        let (status, oo) = send(
            &app,
            &blind,
            Method::POST,
            "Appointment/$book",
            &book_params(proposal(&slots[1], patient, None), None),
        )
        .await;
        let diagnostics = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default().replace(patient, "X");
        outcomes.push((status, expression(&oo), oo["issue"][0]["code"].clone(), diagnostics));
    }
    assert_eq!(outcomes[0], outcomes[1], "an unseen patient and a missing one must look alike");
    assert_eq!(outcomes[0].0, 422);

    let provider = As::provider("prov-x");
    let for_patient = |p: &str| {
        json!({"resourceType": "Appointment", "status": "booked", "slot": [{"reference": format!("Slot/{}", slots[3])}],
            "participant": [{"actor": {"reference": format!("Patient/{p}")}, "status": "accepted"}]})
    };
    let (status, oo) = send(&app, &provider, Method::POST, "Appointment", &for_patient("ghost")).await;
    assert_eq!((status, expression(&oo)), (422, "Appointment.participant[0].actor".to_string()), "{oo}");
    let (status, oo) = send(&app, &provider, Method::POST, "Appointment", &for_patient("p1")).await;
    assert_ne!(status, 422, "a provider books a patient it cannot see yet: {oo}");
}

/// Outside the workflow, a reference may name what this server does not hold
/// (FHIR's open world); `--referential-integrity strict` refuses it.
async fn strict_integrity_checks_every_local_reference(b: Backend) {
    let open = TestApp::spawn(b).await;
    let patient = json!({"resourceType": "Patient", "managingOrganization": {"reference": "Organization/elsewhere"},
        "generalPractitioner": [{"reference": "https://other.example.org/fhir/Practitioner/1"}]});
    assert_eq!(open.post("Patient", &patient).await.status(), 201);
    let strict = TestApp::spawn_with(b, |c| c.booking.referential_integrity = cupola::config::Integrity::Strict).await;
    let r = strict.post("Patient", &patient).await;
    assert_eq!(r.status(), 422);
    let oo: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(expression(&oo), "Patient.managingOrganization", "only the local reference: {oo}");
    let org = strict.create(&json!({"resourceType": "Organization", "name": "ASL 3"})).await;
    let mut fixed = patient.clone();
    fixed["managingOrganization"]["reference"] =
        json!(format!("Organization/{}", org["id"].as_str().unwrap_or_default()));
    assert_eq!(strict.post("Patient", &fixed).await.status(), 201);
}

crate::on_both!(
    bookings_prescriptions_and_payments_need_what_they_name,
    what_the_caller_may_not_see_answers_as_what_does_not_exist,
    strict_integrity_checks_every_local_reference,
);
