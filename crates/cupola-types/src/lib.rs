//! What cupola's crates must agree on, kept once: the resource types the gateway
//! serves (searched by `cupola-search`, accepted by `cupola-validate`, listed in the
//! CapabilityStatement) and the one parser of FHIR `date`, `dateTime`, `instant` and
//! `time` text (checked by the validator, turned into ranges by search). A crate of
//! its own so that neither of those crates depends on the other for them.

#![warn(clippy::too_many_lines)]

pub mod dates;

/// The resource types cupola serves: accepted at the top level, searchable, listed in
/// the CapabilityStatement.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "HealthcareService",
    "Endpoint",
    "CodeSystem",
    "ValueSet",
    "ConceptMap",
    "SearchParameter",
    "ActivityDefinition",
    "ChargeItemDefinition",
    "Schedule",
    "Slot",
    "ServiceRequest",
    "Appointment",
    "AppointmentResponse",
    "Coverage",
    "Account",
    "ChargeItem",
    "Invoice",
    "PaymentNotice",
    "PaymentReconciliation",
    "Communication",
    "AuditEvent",
    "MessageHeader",
    "Bundle",
    "Subscription",
    "Basic",
];
