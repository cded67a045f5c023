//! The CapabilityStatement, generated from what the server really implements: the
//! served types, the interactions the router has, and every search parameter the
//! search registry supports for each type.

use serde_json::{json, Value};

use super::types::SERVED;
use crate::config::OAuthEndpoints;
use cupola_search::Registry;

/// Instance and type interactions every served type supports.
const INTERACTIONS: &[&str] =
    &["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"];

fn operations(of: Option<&str>, canonical: &str) -> Vec<Value> {
    // Each names cupola's own OperationDefinition (served read-only), whose `base`
    // names the IHE or HL7 definition it follows.
    super::operations::ALL
        .iter()
        .filter(|op| op.resource == of)
        .map(|op| json!({"name": op.code, "definition": op.url(canonical)}))
        .collect()
}

/// The statement; cupola's own operations are defined under `canonical` (`--canonical-base`);
/// `oauth`, when the console's sign-in is configured, adds SMART's `oauth-uris`.
pub fn statement(registry: &Registry, base: &str, canonical: &str, oauth: Option<&OAuthEndpoints>) -> Value {
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
    let mut cs = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": super::meta::instant(super::meta::now_micros()),
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
                "description": "Every request but /metadata and /.well-known/smart-configuration carries `Authorization: Bearer <JWT>`: issuer, audience, expiry and signature are checked (401 otherwise). SMART scopes (system/Appointment.cruds, user/Slot.rs, patient/*.rs) decide the interactions (403 otherwise); the token's role (booking-point, provider, payment-point, admin, patient-app), org and patient decide which resources a caller sees: the rest answers 404. Every access to patient data is recorded as an AuditEvent."
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
    });
    if let Some(oauth) = oauth {
        cs["rest"][0]["security"]["extension"] = super::smart::security_extensions(oauth);
    }
    cs
}
