//! What the messaging rules read of the resources a message is about: where a
//! charge goes and whom it concerns, a provider's code and endpoint. Each is parsed
//! once from the resource's JSON through `crate::fhir::view`.

use serde::Deserialize;
use serde_json::Value;

use crate::fhir::names;
use crate::fhir::view::{locals, parse, Coding, Identifier, Reference};
use crate::Result;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawCharge {
    performing_organization: Reference,
    subject: Reference,
    supporting_information: Vec<Reference>,
}

/// A ChargeItem as its message needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Charge {
    /// The Organization id of the provider that performs the service.
    pub provider: Option<String>,
    /// The Patient id of `subject`.
    pub patient: Option<String>,
    /// The Appointment ids it is for (`supportingInformation`).
    pub appointments: Vec<String>,
}

impl Charge {
    pub fn of(item: &Value) -> Result<Charge> {
        let raw: RawCharge = parse(item, "ChargeItem")?;
        Ok(Charge {
            provider: raw.performing_organization.local("Organization"),
            patient: raw.subject.local("Patient"),
            appointments: locals(&raw.supporting_information, "Appointment"),
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOrganization {
    identifier: Vec<Identifier>,
    endpoint: Vec<Reference>,
}

/// An Organization as a provider of the region: its code (identifier
/// `{canonical-base}/sid/provider`) and the Endpoint it is reached at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provider {
    pub code: Option<String>,
    pub endpoint: Option<String>,
}

impl Provider {
    pub fn of(organization: &Value, base: &str) -> Result<Provider> {
        let raw: RawOrganization = parse(organization, "Organization")?;
        let system = names::provider_identifier(base);
        let code = raw.identifier.iter().find(|i| i.system.as_deref() == Some(&system)).and_then(|i| i.value.clone());
        Ok(Provider { code, endpoint: locals(&raw.endpoint, "Endpoint").into_iter().next() })
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawResource {
    resource_type: String,
    id: Option<String>,
    address: Option<String>,
}

/// `Type/id` of a resource.
pub fn reference_to(resource: &Value) -> Result<String> {
    let raw: RawResource = parse(resource, "resource")?;
    Ok(format!("{}/{}", raw.resource_type, raw.id.unwrap_or_default()))
}

/// An Endpoint's address.
pub fn address_of(endpoint: &Value) -> Result<Option<String>> {
    Ok(parse::<RawResource>(endpoint, "Endpoint")?.address)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawBundle {
    resource_type: String,
    r#type: String,
    entry: Vec<RawEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawEntry {
    resource: Value,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawHeader {
    resource_type: String,
    id: Option<String>,
    event_coding: Coding,
    sender: Reference,
    source: Named,
    response: Option<RawAck>,
    focus: Vec<Reference>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAck {
    identifier: Option<String>,
    code: Option<String>,
    details: RawDetails,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDetails {
    display: Option<String>,
    reference: Option<String>,
}

/// A provider's answer to one of cupola's messages (`MessageHeader.response`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ack {
    /// The id of the message answered.
    pub identifier: Option<String>,
    pub code: Option<String>,
    pub details: Option<String>,
}

/// A message Bundle from a provider: its MessageHeader, read once, and what it
/// includes.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub id: String,
    pub event: String,
    /// The Organization id the header says sent it (`sender`).
    pub sender: Option<String>,
    /// The provider code the header says sent it (`source.name`).
    pub source: Option<String>,
    pub response: Option<Ack>,
    /// `focus`'s references, as written.
    pub focus: Vec<String>,
    /// The resources of the Bundle's entries, the header first.
    pub entries: Vec<Value>,
}

fn invalid(expression: &str, message: &str) -> crate::Error {
    crate::Error::invalid("invalid", Some(expression.into()), message)
}

impl Message {
    /// `bundle` as a message, refused (400 naming the element) when it is not one a
    /// provider could send: a message Bundle led by a MessageHeader with an id.
    pub fn of(bundle: &Value) -> Result<Message> {
        let raw: RawBundle = parse(bundle, "Bundle")?;
        if raw.resource_type != "Bundle" || raw.r#type != "message" {
            return Err(invalid("Bundle.type", "a message is a Bundle of type message"));
        }
        let entries: Vec<Value> = raw.entry.into_iter().map(|e| e.resource).collect();
        let h: RawHeader = parse(entries.first().unwrap_or(&Value::Null), "MessageHeader")?;
        if h.resource_type != "MessageHeader" {
            return Err(invalid("Bundle.entry[0]", "a message Bundle starts with its MessageHeader"));
        }
        let Some(id) = h.id.filter(|i| crate::fhir::types::is_valid_id(i)) else {
            return Err(invalid("MessageHeader.id", "the MessageHeader needs an id: it makes the message idempotent"));
        };
        let response = h.response.map(|r| Ack {
            identifier: r.identifier,
            code: r.code,
            details: r.details.display.or(r.details.reference),
        });
        Ok(Message {
            id,
            event: h.event_coding.code.unwrap_or_default(),
            sender: h.sender.local("Organization"),
            source: h.source.name,
            response,
            focus: h.focus.into_iter().filter_map(|f| f.reference).collect(),
            entries,
        })
    }

    /// The entry holding `Type/id` (its index among the entries, and the resource).
    pub fn included(&self, res_type: &str, id: &str) -> Result<Option<(usize, &Value)>> {
        for (k, e) in self.entries.iter().enumerate() {
            let raw: RawResource = parse(e, "Bundle.entry.resource")?;
            if raw.resource_type == res_type && raw.id.as_deref() == Some(id) {
                return Ok(Some((k, e)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BASE: &str = "http://example.org/cupola";

    #[test]
    fn a_charge_and_a_provider_say_where_a_message_goes() {
        let item = json!({"resourceType": "ChargeItem", "id": "c1",
            "performingOrganization": {"reference": "Organization/asl3"}, "subject": {"reference": "Patient/p1"},
            "supportingInformation": [{"reference": "Appointment/a1"}, {"reference": "Encounter/e1"}]});
        let c = Charge::of(&item).expect("a ChargeItem");
        assert_eq!((c.provider.as_deref(), c.patient.as_deref()), (Some("asl3"), Some("p1")));
        assert_eq!(c.appointments, vec!["a1".to_string()]);
        assert_eq!(reference_to(&item).expect("a resource"), "ChargeItem/c1");
        let org = json!({"resourceType": "Organization", "endpoint": [{"reference": "Endpoint/e9"}],
            "identifier": [{"system": "other", "value": "x"}, {"system": names::provider_identifier(BASE), "value": "070001"}]});
        let p = Provider::of(&org, BASE).expect("an Organization");
        assert_eq!((p.code.as_deref(), p.endpoint.as_deref()), (Some("070001"), Some("e9")));
        assert_eq!(address_of(&json!({"address": "amqp://h"})).expect("an Endpoint").as_deref(), Some("amqp://h"));
    }

    #[test]
    fn a_message_is_read_once_from_its_header() {
        let bundle = json!({"resourceType": "Bundle", "type": "message", "entry": [
            {"resource": {"resourceType": "MessageHeader", "id": "m1", "eventCoding": {"code": "acknowledgement"},
                "sender": {"reference": "Organization/asl3"}, "source": {"name": "070001"},
                "response": {"identifier": "o1", "code": "fatal-error", "details": {"display": "no such code"}},
                "focus": [{"reference": "Slot/s1"}]}},
            {"resource": {"resourceType": "Slot", "id": "s1", "status": "free"}}]});
        let m = Message::of(&bundle).expect("a message");
        assert_eq!((m.id.as_str(), m.event.as_str()), ("m1", "acknowledgement"));
        assert_eq!((m.sender.as_deref(), m.source.as_deref()), (Some("asl3"), Some("070001")));
        let ack = m.response.clone().expect("a response");
        assert_eq!(
            (ack.identifier.as_deref(), ack.code.as_deref(), ack.details.as_deref()),
            (Some("o1"), Some("fatal-error"), Some("no such code"))
        );
        assert_eq!(m.focus, vec!["Slot/s1".to_string()]);
        assert_eq!(m.included("Slot", "s1").expect("entries").map(|(k, _)| k), Some(1));
        assert!(m.included("Slot", "s2").expect("entries").is_none());
        let no_id = json!({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {"resourceType": "MessageHeader"}}]});
        let e = Message::of(&no_id).expect_err("no id");
        assert!(matches!(e, crate::Error::Invalid(ref i) if i[0].expression.as_deref() == Some("MessageHeader.id")));
        let batch = json!({"resourceType": "Bundle", "type": "batch"});
        assert!(
            matches!(Message::of(&batch), Err(crate::Error::Invalid(ref i)) if i[0].expression.as_deref() == Some("Bundle.type"))
        );
    }
}
