//! `$status` and `$events`: a subscription read again by its owner (or an
//! administrator), its events' foci as the owner may see them now.

use serde_json::Value;

use super::notification::{as_seen, events_bundle, status_bundle};
use crate::access::Access;
use crate::store::{Store, SubscriptionState};
use crate::{Error, Result};

/// Subscription `id` if `access` may read it.
pub(super) async fn visible(store: &Store, access: &Access, id: &str) -> Result<SubscriptionState> {
    let not_found = || Error::NotFound(format!("Subscription/{id} does not exist"));
    match store.read(access, "Subscription", id).await? {
        Some(s) if !s.deleted => store.subscription_state(id).await?.ok_or_else(not_found),
        _ => Err(not_found()),
    }
}

/// `$status`: a searchset Bundle with the subscription's status.
pub async fn status(store: &Store, access: &Access, fhir_base: &str, id: &str) -> Result<Value> {
    Ok(status_bundle(fhir_base, &visible(store, access, id).await?))
}

/// `$events` from `since` to `until` (numbers), with `content` as payload (default
/// the subscription's).
pub async fn events(
    store: &Store,
    access: &Access,
    fhir_base: &str,
    id: &str,
    range: (Option<i64>, Option<i64>),
    content: Option<&str>,
) -> Result<Value> {
    let mut s = visible(store, access, id).await?;
    let (since, until) = (range.0.unwrap_or(1).max(1), range.1.unwrap_or(s.events).min(s.events));
    if let Some(c) = content {
        if !["empty", "id-only", "full-resource"].contains(&c) {
            return Err(Error::invalid(
                "code-invalid",
                Some("content".into()),
                "content is empty, id-only or full-resource",
            ));
        }
        s.payload = c.to_string();
    }
    let rows = store.events_between(id, since, until).await?;
    let out = as_seen(store, &s, &rows).await?;
    Ok(events_bundle(fhir_base, &s, "query-event", &out))
}
