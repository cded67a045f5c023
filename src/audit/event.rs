//! What one audited request was, and the `AuditEvent`s that record a batch of them.
//!
//! Searches, histories and transactions get one AuditEvent each. Single-resource
//! interactions (read, vread, create, update, delete) of one caller, from one
//! address, with one outcome, that fall in one batch (at most `--audit-flush-ms`
//! apart) share one AuditEvent: `period` spans them and each request is its own
//! `entity`, with its exact time and request line in `entity.detail`. Nothing of a
//! single request is lost, and the trail costs a fraction of the rows.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::auth::{Caller, Role};
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

impl Record {
    /// Requests about one resource, which may share an AuditEvent with their like.
    pub(super) fn groupable(&self) -> bool {
        matches!(self.interaction, "read" | "vread" | "create" | "update" | "delete") && self.entities.len() <= 1
    }

    /// What requests sharing an AuditEvent have in common.
    fn group_key(&self) -> (String, &'static str, u16, Option<String>) {
        let who = match &self.caller {
            Some(c) => format!(
                "{}|{}|{}|{:?}|{:?}|{:?}|{:?}",
                c.sub,
                c.role.as_str(),
                c.client_id.as_deref().unwrap_or(""),
                c.org,
                c.patient,
                c.channel,
                self.detail
            ),
            None => String::new(),
        };
        (who, self.interaction, self.status, self.address.clone())
    }
}

/// The AuditEvents recording `records`; `base` is the canonical base of cupola's
/// CodeSystems.
pub fn audit_events(records: &[Record], base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut groups: HashMap<(String, &'static str, u16, Option<String>), Vec<&Record>> = HashMap::new();
    let mut order = Vec::new();
    for r in records {
        if r.groupable() {
            let key = r.group_key();
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(r);
        } else {
            out.push(single(r, base));
        }
    }
    for key in order {
        if let Some(list) = groups.remove(&key) {
            out.push(grouped(&list, base));
        }
    }
    out
}

/// One request's own AuditEvent.
fn single(r: &Record, base: &str) -> Value {
    let mut entity: Vec<Value> = r.entities.iter().map(|e| json!({"what": {"reference": e}})).collect();
    entity.push(json!({
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        "query": base64::engine::general_purpose::STANDARD.encode(r.request.as_bytes()),
        "detail": [{"type": "request", "valueString": r.request}],
    }));
    let mut ev = head(r, base);
    ev["recorded"] = json!(meta::instant(r.recorded));
    ev["entity"] = Value::Array(entity);
    ev
}

/// One AuditEvent for requests that share caller, interaction, outcome and address.
fn grouped(list: &[&Record], base: &str) -> Value {
    let first = list[0];
    let (from, to) = list.iter().fold((i64::MAX, i64::MIN), |(a, b), r| (a.min(r.recorded), b.max(r.recorded)));
    let entity: Vec<Value> = list
        .iter()
        .map(|r| {
            let detail = json!([
                {"type": "time", "valueString": meta::instant(r.recorded)},
                {"type": "request", "valueString": r.request}
            ]);
            match r.entities.first() {
                Some(e) => json!({"what": {"reference": e}, "detail": detail}),
                None => json!({"detail": detail}),
            }
        })
        .collect();
    let mut ev = head(first, base);
    ev["period"] = json!({"start": meta::instant(from), "end": meta::instant(to)});
    ev["recorded"] = json!(meta::instant(to));
    ev["entity"] = Value::Array(entity);
    ev
}

/// What every AuditEvent of `r`'s kind says: type, subtype, action, outcome, agent,
/// source.
fn head(r: &Record, base: &str) -> Value {
    let outcome = match r.status {
        200..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
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
        "outcome": outcome,
        "outcomeDesc": desc,
        "agent": [agent(r, base)],
        "source": {"observer": {"display": "cupola gateway"}},
    })
}

fn agent(r: &Record, base: &str) -> Value {
    let mut agent = json!({"requestor": true});
    match &r.caller {
        Some(c) => {
            let mut role = vec![json!({"system": format!("{base}/CodeSystem/role"), "code": c.role.as_str()})];
            if let Some(ch) = &c.channel {
                role.push(json!({"system": format!("{base}/CodeSystem/channel"), "code": ch}));
            }
            agent["role"] = json!([{"coding": role}]);
            agent["who"] = match (&c.patient, &c.org) {
                (Some(p), _) if c.role == Role::PatientApp => json!({"reference": format!("Patient/{p}")}),
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
    agent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(interaction: &'static str, status: u16, entity: &str, at: i64) -> Record {
        Record {
            recorded: at,
            interaction,
            action: "R",
            status,
            caller: None,
            address: Some("10.0.0.1".into()),
            entities: vec![entity.into()],
            request: format!("GET /fhir/{entity}"),
            detail: None,
        }
    }

    #[test]
    fn like_reads_share_an_event_and_keep_each_request() {
        let records = vec![
            rec("read", 200, "Patient/a", 1_000_000),
            rec("read", 200, "Patient/b", 1_050_000),
            rec("read", 404, "Patient/c", 1_060_000),
            rec("search-type", 200, "Patient/a", 1_070_000),
        ];
        let events = audit_events(&records, "http://x");
        assert_eq!(events.len(), 3);
        let search = &events[0];
        assert_eq!(search["subtype"][0]["code"], "search-type");
        let reads = &events[1];
        assert_eq!(reads["outcome"], "0");
        assert_eq!(reads["entity"].as_array().map(Vec::len), Some(2));
        assert_eq!(reads["entity"][1]["what"]["reference"], "Patient/b");
        assert_eq!(reads["entity"][1]["detail"][1]["valueString"], "GET /fhir/Patient/b");
        assert_eq!(reads["period"]["start"], meta::instant(1_000_000));
        assert_eq!(reads["period"]["end"], meta::instant(1_050_000));
        assert_eq!(events[2]["outcome"], "4");
    }
}
