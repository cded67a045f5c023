//! Messages from provider systems — through `POST /fhir/$process-message` or the
//! inbound queue, one handler: acknowledgements of cupola's messages (`ok`,
//! `transient-error`: sent again later, `fatal-error`: parked for an operator) and
//! appointment status changes (check-in, service performed, no-show) and agenda
//! changes (the provider's Schedules and Slots, written as an agenda sync would).
//!
//! A message is processed once: its MessageHeader id is recorded in the same
//! transaction as its effect, and the same id again answers the first response
//! without doing anything. A message that is malformed, unauthorised (its sender is
//! not the provider that sent it) or not understood changes nothing.

use serde_json::{json, Value};

use crate::access::Access;
use crate::error::Issue;
use crate::fhir::check::{At, Checker};
use crate::fhir::meta::instant;
use crate::store::{now_micros, Store, Tx};
use crate::{Error, Result};

/// Who sent a message, as the channel it came by proved it: a provider's token
/// (its Organization id) or its broker user (its provider code).
#[derive(Debug, Clone, PartialEq)]
pub enum Sender {
    Organization(String),
    ProviderCode(String),
}

fn invalid(expression: &str, message: impl Into<String>) -> Error {
    Error::invalid("invalid", Some(expression.into()), message)
}

/// The MessageHeader of a message Bundle, checked for what the handler needs.
fn header(bundle: &Value) -> Result<&Value> {
    if bundle["resourceType"] != "Bundle" || bundle["type"] != "message" {
        return Err(invalid("Bundle.type", "a message is a Bundle of type message"));
    }
    let h = &bundle["entry"][0]["resource"];
    if h["resourceType"] != "MessageHeader" {
        return Err(invalid("Bundle.entry[0]", "a message Bundle starts with its MessageHeader"));
    }
    if !h["id"].as_str().is_some_and(crate::fhir::types::is_valid_id) {
        return Err(invalid("MessageHeader.id", "the MessageHeader needs an id: it makes the message idempotent"));
    }
    Ok(h)
}

/// Processes `bundle` from `sender`; the response message (a retry gets the first).
pub async fn process(store: &Store, sender: &Sender, bundle: &Value) -> Result<Value> {
    let base = store.settings().base.clone();
    let h = header(bundle)?;
    let id = h["id"].as_str().unwrap_or_default().to_string();
    let (org, code) = verified_sender(store, sender, h, &id).await?;
    let event = h["eventCoding"]["code"].as_str().unwrap_or_default().to_string();
    let mut tx = store.begin().await?;
    if let Some(first) = store.inbound_claim(&mut tx, &id, &code, &event).await? {
        return Ok(first);
    }
    let access = Access::provider(&org);
    match event.as_str() {
        "acknowledgement" => acknowledgement(store, &mut tx, &code, h).await?,
        "appointment-status-changed" | "appointment-arrived" | "appointment-fulfilled" | "appointment-noshow" => {
            status_change(store, &mut tx, &access, &code, bundle, h).await?
        }
        "agenda-changed" => agenda_change(store, &mut tx, &access, bundle, h).await?,
        other => {
            return Err(Error::Unprocessable(vec![Issue::error(
                "not-supported",
                Some("MessageHeader.eventCoding".into()),
                format!(
                    "cupola does not process {other:?} messages: acknowledgement, appointment-status-changed \
                     or agenda-changed"
                ),
            )]))
        }
    }
    let response = response(&base, &id, &event, &org, &code);
    store.inbound_done(&mut tx, &id, &code, &event, &response).await?;
    tx.commit().await?;
    Ok(response)
}

/// The provider (Organization id, provider code) that sent message `id`, which must
/// be the one its MessageHeader names.
async fn verified_sender(store: &Store, sender: &Sender, h: &Value, id: &str) -> Result<(String, String)> {
    let base = &store.settings().base;
    let (org, code) = super::provider::provider_of(store, sender)
        .await?
        .ok_or_else(|| Error::Forbidden(format!("{sender:?} is not a provider with a code ({}/sid/provider)", base)))?;
    // The sender the message claims must be the one that sent it.
    let claimed_org = h["sender"]["reference"].as_str().and_then(|r| r.strip_prefix("Organization/"));
    let claimed_code = h["source"]["name"].as_str();
    if claimed_org.is_some_and(|o| o != org) || claimed_code.is_some_and(|c| c != code) {
        return Err(Error::Forbidden(format!(
            "message {id} claims to come from {} but was sent by provider {code}",
            claimed_org.map(|o| format!("Organization/{o}")).or(claimed_code.map(str::to_string)).unwrap_or_default()
        )));
    }
    if claimed_org.is_none() && claimed_code.is_none() {
        return Err(invalid("MessageHeader.sender", "name the sending provider (sender or source.name)"));
    }
    Ok((org, code))
}

/// A provider's answer to one of cupola's messages.
async fn acknowledgement(store: &Store, tx: &mut Tx, code: &str, h: &Value) -> Result<()> {
    let r = &h["response"];
    let original = r["identifier"].as_str().ok_or_else(|| {
        invalid("MessageHeader.response.identifier", "an acknowledgement names the message it answers")
    })?;
    let outcome = r["code"].as_str().unwrap_or_default();
    if !["ok", "transient-error", "fatal-error"].contains(&outcome) {
        return Err(invalid("MessageHeader.response.code", "ok, transient-error or fatal-error"));
    }
    let details = r["details"]["display"].as_str().or(r["details"]["reference"].as_str()).map(str::to_string);
    store.acknowledge(tx, code, original, outcome, details.as_deref()).await
}

/// An appointment's new status as the provider reports it (the Appointment is the
/// focus, included in the Bundle); written only if it changed.
async fn status_change(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    code: &str,
    bundle: &Value,
    h: &Value,
) -> Result<()> {
    let focus_ref = h["focus"][0]["reference"].as_str().unwrap_or_default();
    let focus = bundle["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).find(|r| {
        format!("{}/{}", r["resourceType"].as_str().unwrap_or_default(), r["id"].as_str().unwrap_or_default())
            == focus_ref
    });
    let Some(a) = focus.filter(|r| r["resourceType"] == "Appointment") else {
        return Err(invalid("MessageHeader.focus", "the focus is the Appointment, included in the Bundle"));
    };
    let status = a["status"].as_str().unwrap_or_default();
    if !["arrived", "checked-in", "fulfilled", "noshow"].contains(&status) {
        return Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("Appointment.status".into()),
            format!("a provider reports arrived, checked-in, fulfilled or noshow, not {status:?}"),
        )]));
    }
    let aid = a["id"].as_str().unwrap_or_default();
    let Some(cur) = crate::store::current_visible(tx, "Appointment", aid, &access.read("Appointment")).await? else {
        return Err(Error::NotFound(format!("Appointment/{aid} is not one of provider {code}'s")));
    };
    let mut body: Value = serde_json::from_str(cur.body.as_deref().unwrap_or("null")).map_err(anyhow::Error::from)?;
    if body["status"] != status {
        body["status"] = json!(status);
        store.update_in(tx, access, "Appointment", aid, body, None).await?;
    }
    Ok(())
}

/// The response message to message `id` of `event` from provider `code` (`org`).
fn response(base: &str, id: &str, event: &str, org: &str, code: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": crate::store::new_id(),
        "type": "message",
        "timestamp": instant(now_micros()),
        "entry": [{"resource": {
            "resourceType": "MessageHeader",
            "id": crate::store::new_id(),
            "eventCoding": {"system": format!("{base}/CodeSystem/message-event"), "code": event},
            "source": {"name": "cupola", "endpoint": format!("{base}/Endpoint/cupola")},
            "destination": [{"name": code, "endpoint": format!("urn:cupola:provider:{code}"),
                             "receiver": {"reference": format!("Organization/{org}")}}],
            "response": {"identifier": id, "code": "ok"},
        }}],
    })
}

/// An agenda change: each Schedule and Slot the MessageHeader's focus names, in that
/// order and included in the Bundle, is written as the provider, with every check a
/// PUT has (created when new, replaced otherwise); a Slot sent as `entered-in-error`
/// is removed, which is refused while it holds an appointment (409 naming it). All
/// of the message or nothing: it shares one transaction.
async fn agenda_change(store: &Store, tx: &mut Tx, access: &Access, bundle: &Value, h: &Value) -> Result<()> {
    let focus = h["focus"].as_array().filter(|f| !f.is_empty()).ok_or_else(|| {
        invalid("MessageHeader.focus", "an agenda change names the Schedules and Slots it changes as its focus")
    })?;
    let checker = Checker::shared();
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (i, f) in focus.iter().enumerate() {
        let at = format!("MessageHeader.focus[{i}]");
        let reference = f["reference"].as_str().unwrap_or_default();
        let Some((rt, id)) = reference.split_once('/').filter(|(rt, _)| ["Schedule", "Slot"].contains(rt)) else {
            return Err(invalid(&at, format!("an agenda change is about Schedules and Slots, not {reference:?}")));
        };
        let Some((k, resource)) =
            entries.iter().map(|e| &e["resource"]).enumerate().find(|(_, r)| r["resourceType"] == rt && r["id"] == id)
        else {
            return Err(invalid(&at, format!("{reference} is not included in the message")));
        };
        checker.check(resource, rt, Some(id), At::Entry(k))?;
        if rt == "Slot" && resource["status"] == "entered-in-error" {
            store.delete_in(tx, access, rt, id).await?;
        } else {
            store.update_in(tx, access, rt, id, resource.clone(), None).await?;
        }
    }
    Ok(())
}
