//! The CapabilityStatement, generated from what the server really implements: the
//! served types, the interactions the router has, and every search parameter the
//! search registry supports for each type.

use serde_json::{json, Value};

use super::types::SERVED;
use crate::store::Registry;

/// Instance and type interactions every served type supports.
const INTERACTIONS: &[&str] =
    &["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"];

/// The operations the router has, by type (`None`: system level), with where each
/// is defined: IHE ITI Scheduling, FHIR R4, or cupola (README, *Booking*, *Agendas*).
const OPERATIONS: &[(Option<&str>, &str, &str)] = &[
    (Some("Appointment"), "find", "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-find"),
    (Some("Appointment"), "hold", "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-hold"),
    (Some("Appointment"), "book", "https://profiles.ihe.net/ITI/Scheduling/OperationDefinition/appointment-book"),
    (Some("Appointment"), "cancel", "{cupola}/OperationDefinition/Appointment-cancel"),
    (Some("ConceptMap"), "translate", "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"),
    (Some("Schedule"), "generate-slots", "{cupola}/OperationDefinition/Schedule-generate-slots"),
    (Some("Schedule"), "close", "{cupola}/OperationDefinition/Schedule-close"),
    (Some("ChargeItemDefinition"), "apply", "http://hl7.org/fhir/OperationDefinition/ChargeItemDefinition-apply"),
    (Some("Patient"), "outstanding", "{cupola}/OperationDefinition/Patient-outstanding"),
    (None, "waiting-times", "{cupola}/OperationDefinition/waiting-times"),
    (None, "settlement", "{cupola}/OperationDefinition/settlement"),
    (None, "recovery", "{cupola}/OperationDefinition/recovery"),
    (None, "outbox", "{cupola}/OperationDefinition/outbox"),
    (None, "dispatch-lists", "{cupola}/OperationDefinition/dispatch-lists"),
    (None, "process-message", "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"),
];

fn operations(of: Option<&str>, canonical: &str) -> Vec<Value> {
    OPERATIONS
        .iter()
        .filter(|(t, _, _)| *t == of)
        .map(|(_, name, definition)| json!({"name": name, "definition": definition.replace("{cupola}", canonical)}))
        .collect()
}

/// The statement; cupola's own operations are defined under `canonical` (`--canonical-base`).
pub fn statement(registry: &Registry, base: &str, canonical: &str) -> Value {
    let resources: Vec<Value> = SERVED
        .iter()
        .map(|t| {
            let params: Vec<Value> = registry
                .params_of(t)
                .into_iter()
                .map(|p| json!({"name": p.code, "definition": p.definition, "type": p.kind, "documentation": p.documentation}))
                .collect();
            let mut r = json!({
                "type": t,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": INTERACTIONS.iter().map(|i| json!({"code": i})).collect::<Vec<_>>(),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "logical"],
                "searchInclude": [format!("{t}:*")],
                "searchRevInclude": ["*"],
                "searchParam": params,
            });
            let ops = operations(Some(t), canonical);
            if !ops.is_empty() {
                r["operation"] = json!(ops);
            }
            r
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": super::meta::instant(crate::store::now_micros()),
        "publisher": "cupola",
        "kind": "instance",
        "software": {"name": "cupola", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "cupola FHIR R4 gateway", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml", "json", "xml"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": true,
                "service": [{
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
                    "text": "OAuth 2.0 bearer tokens (JWT, RS256 or ES256) with SMART on FHIR v1/v2 scopes"
                }],
                "description": "Every request but /metadata carries `Authorization: Bearer <JWT>`: issuer, audience, expiry and signature are checked (401 otherwise). SMART scopes (system/Appointment.cruds, user/Slot.rs, patient/*.rs) decide the interactions (403 otherwise); the token's role (booking-point, provider, payment-point, admin, patient-app), org and patient decide which resources a caller sees: the rest answers 404. Every access to patient data is recorded as an AuditEvent."
            },
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": operations(None, canonical),
            "searchParam": [
                {"name": "_count", "type": "number", "documentation": "Page size (default 20, at most 1000)"},
                {"name": "_sort", "type": "string", "documentation": "Sort order; - for descending"},
                {"name": "_total", "type": "token", "documentation": "none | estimate | accurate"},
                {"name": "_summary", "type": "token", "documentation": "true | text | data | count | false"},
                {"name": "_elements", "type": "string", "documentation": "Top-level elements to return"}
            ]
        }]
    })
}
