//! What one audited request was, and the `AuditEvent` that records it.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::fhir::meta;

/// One audited request.
#[derive(Debug, Clone)]
pub struct Record {
    /// µs since the Unix epoch, UTC.
    pub recorded: i64,
    /// The FHIR restful interaction (`read`, `search-type`, `create`, `transaction`…).
    pub interaction: &'static str,
    /// `C`, `R`, `U`, `D` or `E` (execute: transactions, operations).
    pub action: &'static str,
    /// The HTTP status answered.
    pub status: u16,
    /// `None` when the request carried no valid token.
    pub caller: Option<Arc<Caller>>,
    /// Where the request came from (peer address, or the proxy's `X-Forwarded-For`).
    pub address: Option<String>,
    /// The resources touched, as `Type/id`.
    pub entities: Vec<String>,
    /// The request, as `METHOD path?query`.
    pub request: String,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

/// The `AuditEvent` for `r`; `base` is the canonical base of cupola's CodeSystems.
pub fn audit_event(r: &Record, base: &str) -> Value {
    let outcome = match r.status {
        200..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut agent = json!({"requestor": true});
    match &r.caller {
        Some(c) => {
            let mut role = vec![json!({"system": format!("{base}/CodeSystem/role"), "code": c.role.as_str()})];
            if let Some(ch) = &c.channel {
                role.push(json!({"system": format!("{base}/CodeSystem/channel"), "code": ch}));
            }
            agent["role"] = json!([{"coding": role}]);
            agent["who"] = match (&c.patient, &c.org) {
                (Some(p), _) if c.role == crate::auth::Role::PatientApp => json!({"reference": format!("Patient/{p}")}),
                (_, Some(o)) => json!({"reference": format!("Organization/{o}")}),
                _ => json!({"identifier": {"system": format!("{base}/sid/subject"), "value": c.sub}}),
            };
            agent["altId"] = json!(c.sub);
            if let Some(client) = &c.client_id {
                agent["name"] = json!(client);
            }
        }
        None => agent["who"] = json!({"display": "caller without a valid token"}),
    }
    if let Some(a) = &r.address {
        agent["network"] = json!({"address": a, "type": "2"});
    }
    let mut entity: Vec<Value> = r.entities.iter().map(|e| json!({"what": {"reference": e}})).collect();
    entity.push(json!({
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        "name": r.request,
        "query": base64::engine::general_purpose::STANDARD.encode(r.request.as_bytes()),
    }));
    let mut desc = format!("HTTP {}", r.status);
    if let Some(d) = &r.detail {
        desc.push_str(": ");
        desc.push_str(d);
    }
    json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": r.interaction}],
        "action": r.action,
        "recorded": meta::instant(r.recorded),
        "outcome": outcome,
        "outcomeDesc": desc,
        "agent": [agent],
        "source": {
            "site": "cupola",
            "observer": {"display": "cupola gateway"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
        "entity": entity,
    })
}
