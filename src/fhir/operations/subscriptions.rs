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
