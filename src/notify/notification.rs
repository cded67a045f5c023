//! The Bundles subscribers receive: a notification (`history`, led by the
//! backport's SubscriptionStatus-shaped Parameters), `$status` and `$events`.

use serde_json::{json, Value};

use super::events::owner_access;
use crate::access::Rule;
use crate::fhir::meta::instant;
use crate::store::{EventRow, Store, SubscriptionState};

const STATUS_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";

/// One event as it goes out: its row, and the resource when the subscriber gets
/// it (`None`: id-only or empty payload, or no longer visible to the owner).
pub struct Outgoing<'a> {
    pub row: &'a EventRow,
    /// Whether its focus is named (not when the owner may no longer see it).
    pub named: bool,
    pub resource: Option<Value>,
}

/// `rows` as `s`'s owner may see their foci now (a notification's or `$events`'):
/// one that has become invisible keeps its number and goes without its focus.
pub async fn as_seen<'r>(
    store: &Store,
    s: &SubscriptionState,
    rows: &'r [EventRow],
) -> crate::Result<Vec<Outgoing<'r>>> {
    let access = owner_access(&s.owner);
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (res_type, id) = row.focus.split_once('/').unwrap_or((&row.focus, ""));
        // What an owner sees whole needs no reading when only ids go out.
        if s.payload != "full-resource" && access.read(res_type) == Rule::All {
            out.push(Outgoing { row, named: true, resource: None });
            continue;
        }
        let seen = store.read(&access, res_type, id).await?;
        let resource = seen.as_ref().and_then(|v| v.body.as_deref()).and_then(|b| serde_json::from_str(b).ok());
        out.push(Outgoing { row, named: seen.is_some(), resource });
    }
    Ok(out)
}

/// The SubscriptionStatus (R4 Parameters) of `s`, of notification type `kind`,
/// listing `events`.
fn status(fhir_base: &str, s: &SubscriptionState, kind: &str, events: &[Outgoing]) -> Value {
    let mut parameter = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("{fhir_base}/Subscription/{}", s.id)}}),
        json!({"name": "topic", "valueCanonical": s.topic}),
        json!({"name": "status", "valueCode": s.status}),
        json!({"name": "type", "valueCode": kind}),
        json!({"name": "events-since-subscription-start", "valueString": s.events.to_string()}),
    ];
    for e in events {
        let mut part = vec![
            json!({"name": "event-number", "valueString": e.row.number.to_string()}),
            json!({"name": "timestamp", "valueInstant": instant(e.row.at_us)}),
        ];
        if e.named {
            part.push(
                json!({"name": "focus", "valueReference": {"reference": format!("{fhir_base}/{}", e.row.focus)}}),
            );
        }
        parameter.push(json!({"name": "notification-event", "part": part}));
    }
    json!({"resourceType": "Parameters", "meta": {"profile": [STATUS_PROFILE]}, "parameter": parameter})
}

fn status_entry(fhir_base: &str, s: &SubscriptionState, kind: &str, events: &[Outgoing]) -> Value {
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": status(fhir_base, s, kind, events),
        "request": {"method": "GET", "url": format!("{fhir_base}/Subscription/{}/$status", s.id)},
        "response": {"status": "200"},
    })
}

/// A notification (or `$events`' answer: `kind` `query-event`): a `history`
/// Bundle, the status first, then each event's focus as the payload allows.
pub fn events_bundle(fhir_base: &str, s: &SubscriptionState, kind: &str, events: &[Outgoing]) -> Value {
    let mut entry = vec![status_entry(fhir_base, s, kind, events)];
    if s.payload != "empty" {
        for e in events.iter().filter(|e| e.named) {
            let mut item = json!({
                "fullUrl": format!("{fhir_base}/{}", e.row.focus),
                "request": {"method": "PUT", "url": e.row.focus},
                "response": {"status": "200"},
            });
            if let (Some(r), "full-resource") = (&e.resource, s.payload.as_str()) {
                item["resource"] = r.clone();
            }
            entry.push(item);
        }
    }
    json!({"resourceType": "Bundle", "type": "history", "timestamp": instant(crate::store::now_micros()), "entry": entry})
}

/// `$status`' answer: a `searchset` Bundle with the subscription's status.
pub fn status_bundle(fhir_base: &str, s: &SubscriptionState) -> Value {
    let mut e = status_entry(fhir_base, s, "query-status", &[]);
    if let Some(o) = e.as_object_mut() {
        o.remove("request");
        o.remove("response");
        o.insert("search".into(), json!({"mode": "match"}));
    }
    json!({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [e]})
}
