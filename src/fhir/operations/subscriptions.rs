//! The Subscriptions Backport IG's operations on a subscription (its owner, or an
//! administrator).

use super::{always, maybe, optional, Kind as K, Operation};

pub const SUBSCRIPTION_STATUS: Operation = Operation {
    type_level: false,
    instance: true,
    ..super::declare(
        Some("Subscription"),
        "status",
        "The subscription's status: active or error, and how many events it has had (a searchset Bundle holding \
         the backport's SubscriptionStatus Parameters).",
        &[always("return", K::Resource("Bundle"), "The status.")],
    )
};

pub const SUBSCRIPTION_EVENTS: Operation = Operation {
    type_level: false,
    instance: true,
    ..super::declare(
        Some("Subscription"),
        "events",
        "The subscription's events again, by number: those a subscriber missed (a history Bundle, as the \
         notifications are).",
        &[
            optional("eventsSinceNumber", K::String, "The first event number (default 1)."),
            optional("eventsUntilNumber", K::String, "The last event number (default the latest)."),
            optional("content", K::Code, "empty, id-only or full-resource (default the subscription's)."),
            maybe("return", K::Resource("Bundle"), "The events."),
        ],
    )
};

pub const SUBSCRIPTION_WS_BINDING_TOKEN: Operation = Operation {
    type_level: false,
    instance: true,
    base: Some(
        "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token",
    ),
    ..super::declare(
        Some("Subscription"),
        "get-ws-binding-token",
        "A token that binds one websocket to this websocket subscription, once, within five minutes (the socket \
         sends `bind-with-token <token>` to websocket-url).",
        &[
            always("token", K::String, "The binding token: single use, for this subscription only."),
            always("expiration", K::DateTime, "When the token lapses unused."),
            always("subscription", K::String, "The subscription the token binds."),
            always("websocket-url", K::Url, "Where to open the websocket (ws:// or wss://, as the FHIR base)."),
        ],
    )
};
