//! The resource types cupola serves.

/// Every resource type the CUP uses; each supports the full set of REST interactions.
pub const SERVED: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Bundle",
    "ChargeItem",
    "ChargeItemDefinition",
    "CodeSystem",
    "Communication",
    "ConceptMap",
    "Coverage",
    "Endpoint",
    "HealthcareService",
    "Invoice",
    "Location",
    "MessageHeader",
    "Organization",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "ServiceRequest",
    "SearchParameter",
    "Slot",
    "ValueSet",
];

pub fn is_served(res_type: &str) -> bool {
    SERVED.contains(&res_type)
}

/// A FHIR logical id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
