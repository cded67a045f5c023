//! The Subscription resource's `status`, kept as the dispatcher finds it: `error`
//! when its endpoint fails, `active` again when it answers.

use serde_json::Value;

use crate::access::Access;
use crate::store::Store;

/// Writes `status` into Subscription `id` (a new version, by the gateway).
pub(super) async fn set(store: &Store, id: &str, status: &str) {
    if let Err(e) = write(store, id, status).await {
        tracing::warn!(subscription = id, status, error = %e, "the subscription's status could not be written");
    }
}

async fn write(store: &Store, id: &str, status: &str) -> crate::Result<()> {
    let mut tx = store.begin().await?;
    let current = crate::store::current(&mut tx, store.dialect(), "Subscription", id, false).await?;
    let Some(mut body) = current.filter(|c| !c.deleted).map(|c| crate::store::value_of(Some(c))).transpose()? else {
        return Ok(());
    };
    if body.get("status").and_then(Value::as_str) == Some(status) {
        return Ok(());
    }
    body["status"] = Value::String(status.into());
    store.update_in(&mut tx, &Access::gateway(), "Subscription", id, body, None).await?;
    tx.commit().await?;
    Ok(())
}
