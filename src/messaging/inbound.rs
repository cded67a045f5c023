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

use super::views::Message;
use crate::access::Access;
use crate::booking::views::{Appointment, AppointmentMut, Slot};
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

/// Processes `bundle` from `sender`; the response message (a retry gets the first).
pub async fn process(store: &Store, sender: &Sender, bundle: &Value) -> Result<Value> {
    let base = store.settings().base.clone();
    let m = Message::of(bundle)?;
    let (id, event) = (m.id.clone(), m.event.clone());
    let (org, code) = verified_sender(store, sender, &m).await?;
    let mut tx = store.begin().await?;
    if let Some(first) = store.inbound_claim(&mut tx, &id, &code, &event).await? {
        return Ok(first);
    }
    let access = Access::provider(&org);
    match event.as_str() {
        "acknowledgement" => acknowledgement(store, &mut tx, &code, &m).await?,
        "appointment-status-changed" | "appointment-arrived" | "appointment-fulfilled" | "appointment-noshow" => {
            status_change(store, &mut tx, &access, &code, &m).await?
        }
        "agenda-changed" => agenda_change(store, &mut tx, &access, &m).await?,
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
async fn verified_sender(store: &Store, sender: &Sender, m: &Message) -> Result<(String, String)> {
    let base = &store.settings().base;
    let (org, code) = super::provider::provider_of(store, sender)
        .await?
        .ok_or_else(|| Error::Forbidden(format!("{sender:?} is not a provider with a code ({}/sid/provider)", base)))?;
    // The sender the message claims must be the one that sent it.
    let (id, claimed_org, claimed_code) = (&m.id, m.sender.as_deref(), m.source.as_deref());
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
async fn acknowledgement(store: &Store, tx: &mut Tx, code: &str, m: &Message) -> Result<()> {
    let r = m.response.clone().unwrap_or_default();
    let original = r.identifier.as_deref().ok_or_else(|| {
        invalid("MessageHeader.response.identifier", "an acknowledgement names the message it answers")
    })?;
    let outcome = r.code.as_deref().unwrap_or_default();
    if !["ok", "transient-error", "fatal-error"].contains(&outcome) {
        return Err(invalid("MessageHeader.response.code", "ok, transient-error or fatal-error"));
    }
    store.acknowledge(tx, code, original, outcome, r.details.as_deref()).await
}

/// An appointment's new status as the provider reports it (the Appointment is the
/// focus, included in the Bundle); written only if it changed.
async fn status_change(store: &Store, tx: &mut Tx, access: &Access, code: &str, m: &Message) -> Result<()> {
    let base = &store.settings().base;
    let focus = match m.focus.first().and_then(|f| f.split_once('/')) {
        Some(("Appointment", id)) => m.included("Appointment", id)?,
        _ => None,
    };
    let Some((_, a)) = focus else {
        return Err(invalid("MessageHeader.focus", "the focus is the Appointment, included in the Bundle"));
    };
    let reported = Appointment::of(a, base)?;
    if !reported.status.provider_only() {
        return Err(Error::Unprocessable(vec![Issue::error(
            "business-rule",
            Some("Appointment.status".into()),
            format!("a provider reports arrived, checked-in, fulfilled or noshow, not {:?}", reported.status.as_str()),
        )]));
    }
    let aid = reported.id.as_deref().unwrap_or_default();
    let Some(cur) = crate::store::current_visible(tx, "Appointment", aid, &access.read("Appointment")).await? else {
        return Err(Error::NotFound(format!("Appointment/{aid} is not one of provider {code}'s")));
    };
    let mut body: Value = serde_json::from_str(cur.body.as_deref().unwrap_or("null")).map_err(anyhow::Error::from)?;
    if Appointment::of(&body, base)?.status != reported.status {
        AppointmentMut::new(&mut body, base)?.set_status(reported.status);
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
async fn agenda_change(store: &Store, tx: &mut Tx, access: &Access, m: &Message) -> Result<()> {
    if m.focus.is_empty() {
        return Err(invalid(
            "MessageHeader.focus",
            "an agenda change names the Schedules and Slots it changes as its focus",
        ));
    }
    let checker = Checker::shared();
    for (i, reference) in m.focus.iter().enumerate() {
        let at = format!("MessageHeader.focus[{i}]");
        let Some((rt, id)) = reference.split_once('/').filter(|(rt, _)| ["Schedule", "Slot"].contains(rt)) else {
            return Err(invalid(&at, format!("an agenda change is about Schedules and Slots, not {reference:?}")));
        };
        let Some((k, resource)) = m.included(rt, id)? else {
            return Err(invalid(&at, format!("{reference} is not included in the message")));
        };
        checker.check(resource, rt, Some(id), At::Entry(k))?;
        let removed = rt == "Slot" && Slot::of(id, resource, &store.settings().base)?.status == "entered-in-error";
        if removed {
            store.delete_in(tx, access, rt, id).await?;
        } else {
            store.update_in(tx, access, rt, id, resource.clone(), None).await?;
        }
    }
    Ok(())
}
