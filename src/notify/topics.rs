//! cupola's subscription topics: what each is about, when a change triggers it, and
//! the filters a subscriber may set (search parameters of the topic's resource
//! type). Served read-only as `Basic` resources (the Subscriptions Backport IG's R4
//! form of a SubscriptionTopic) and listed in the CapabilityStatement.

use serde_json::{json, Value};

/// When a change of the topic's resource type is an event of the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Any create, update or delete.
    AnyChange,
    /// A Slot that was not free before and is now (a cancellation, a closure
    /// reversed, a hold that lapsed).
    SlotFreed,
}

/// One topic.
#[derive(Debug)]
pub struct Topic {
    /// The last part of its canonical URL.
    pub code: &'static str,
    pub title: &'static str,
    pub res_type: &'static str,
    pub trigger: Trigger,
    /// The filters it takes: search parameters of `res_type`.
    pub filters: &'static [(&'static str, &'static str)],
}

pub const TOPICS: &[Topic] = &[
    Topic {
        code: "slot-freed",
        title: "A slot freed",
        res_type: "Slot",
        trigger: Trigger::SlotFreed,
        filters: &[
            ("service-type", "the catalog service it books"),
            ("district", "the district it is in"),
            ("provider", "the provider (Organization) that offers it"),
            ("schedule", "its agenda"),
            ("open-to", "a priority class it is open to"),
        ],
    },
    Topic {
        code: "appointment-changed",
        title: "An appointment created or changed",
        res_type: "Appointment",
        trigger: Trigger::AnyChange,
        filters: &[
            ("patient", "its patient"),
            ("actor", "a participant: the provider's HealthcareService, Location or Practitioner"),
            ("status", "its status"),
            ("service-type", "the catalog service"),
        ],
    },
    Topic {
        code: "ticket-changed",
        title: "A ticket (Invoice) changed",
        res_type: "Invoice",
        trigger: Trigger::AnyChange,
        filters: &[("patient", "its patient"), ("status", "the invoice status")],
    },
    Topic {
        code: "agenda-changed",
        title: "An agenda changed",
        res_type: "Schedule",
        trigger: Trigger::AnyChange,
        filters: &[("actor", "the provider's HealthcareService, Location or Practitioner"), ("_id", "the agenda")],
    },
];

/// The canonical URL of `topic` under `base`.
pub fn canonical(base: &str, topic: &Topic) -> String {
    format!("{base}/SubscriptionTopic/{}", topic.code)
}

/// The topic whose canonical URL is `url`.
pub fn by_url<'t>(base: &str, url: &str) -> Option<&'t Topic> {
    TOPICS.iter().find(|t| canonical(base, t) == url)
}

/// The id of `topic`'s Basic resource.
pub fn resource_id(topic: &Topic) -> String {
    format!("topic-{}", topic.code)
}

const BACKPORT: &str = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic";

/// `topic` as an R4 `Basic`: the backport's cross-version extensions of a
/// SubscriptionTopic (url, title, status, resourceTrigger, canFilterBy).
pub fn basic(base: &str, topic: &Topic) -> Value {
    let url = canonical(base, topic);
    let mut ext = vec![
        json!({"url": format!("{BACKPORT}.url"), "valueUri": url}),
        json!({"url": format!("{BACKPORT}.title"), "valueString": topic.title}),
        json!({"url": format!("{BACKPORT}.status"), "valueCode": "active"}),
        json!({"url": format!("{BACKPORT}.resourceTrigger"), "extension": [
            {"url": "resource", "valueUri": format!("http://hl7.org/fhir/StructureDefinition/{}", topic.res_type)},
            {"url": "supportedInteraction", "valueCode": "create"},
            {"url": "supportedInteraction", "valueCode": "update"},
        ]}),
    ];
    for (name, doc) in topic.filters {
        ext.push(json!({"url": format!("{BACKPORT}.canFilterBy"), "extension": [
            {"url": "description", "valueMarkdown": doc},
            {"url": "resource", "valueUri": topic.res_type},
            {"url": "filterParameter", "valueString": name},
        ]}));
    }
    json!({
        "resourceType": "Basic",
        "id": resource_id(topic),
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
        "extension": ext,
    })
}

const TOPIC_CANONICAL: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical";

/// Lists the topics on the CapabilityStatement's `Subscription` resource, as the
/// backport IG has servers do.
pub fn advertise(cs: &mut Value, base: &str) {
    let Some(resources) = cs.pointer_mut("/rest/0/resource").and_then(Value::as_array_mut) else { return };
    for r in resources.iter_mut().filter(|r| r.get("type").and_then(Value::as_str) == Some("Subscription")) {
        let ext: Vec<Value> =
            TOPICS.iter().map(|t| json!({"url": TOPIC_CANONICAL, "valueCanonical": canonical(base, t)})).collect();
        r["extension"] = Value::Array(ext);
    }
}
