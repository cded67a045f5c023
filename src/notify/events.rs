//! A change's events: which topics it triggers, which subscriptions' filters hold
//! for it (SQL over the index rows its transaction just wrote), and of those, the
//! ones whose owner may see it — each an event row in the change's transaction.

use std::str::FromStr;

use serde_json::Value;

use super::topics::{self, Trigger};
use crate::access::{Access, Actor};
use crate::auth::Role;
use crate::store::{AfterHooked, Changed, Hooked, Owner, Pending, Store, Tx, Verdict, WriteHook};
use crate::Result;

/// The hook on every topic's resource type.
pub(super) struct Events {
    pub base: String,
    /// Whether a topic of this type triggers on the bodies (a slot turning free);
    /// the others need only the change's index rows.
    pub bodies: bool,
}

impl WriteHook for Events {
    fn before<'a>(&'a self, _store: &'a Store, _tx: &'a mut Tx, _w: Pending<'a>) -> Hooked<'a> {
        Box::pin(async { Ok(Verdict::Proceed) })
    }

    fn on_create(&self) -> bool {
        false
    }

    fn watches_changes(&self) -> bool {
        true
    }

    fn reads_bodies(&self) -> bool {
        self.bodies
    }

    fn after<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, change: Changed<'a>) -> AfterHooked<'a> {
        Box::pin(record(store, tx, &self.base, change))
    }
}

/// The topics `c` triggers (their canonical URLs), and `criteria` for the R4
/// criteria subscriptions on its type (any change).
fn triggered(base: &str, c: &Changed) -> Vec<String> {
    let status = |v: Option<&Value>| v.and_then(|v| v.get("status")).and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<String> = topics::TOPICS
        .iter()
        .filter(|t| t.res_type == c.res_type)
        .filter(|t| match t.trigger {
            Trigger::AnyChange => true,
            Trigger::SlotFreed => {
                c.old.is_some() && status(c.new).as_deref() == Some("free") && status(c.old).as_deref() != Some("free")
            }
        })
        .map(|t| topics::canonical(base, t))
        .collect();
    out.push("criteria".into());
    out
}

async fn record(store: &Store, tx: &mut Tx, base: &str, c: Changed<'_>) -> Result<()> {
    let topics = triggered(base, &c);
    let candidates = store.subscription_candidates(tx, c.res_type, c.pk, &topics).await?;
    if candidates.is_empty() {
        return Ok(());
    }
    let focus = format!("{}/{}", c.res_type, c.id);
    let now = crate::store::now_micros();
    for s in candidates {
        // What the owner may not see is not matched, nor counted.
        let access = owner_access(&s.owner);
        if crate::store::matches_rule(tx, c.pk, &access.read(c.res_type)).await? {
            store.add_event(tx, &s.id, &focus, c.version, now).await?;
        }
    }
    Ok(())
}

/// The access a subscription's owner had when it subscribed.
pub(super) fn owner_access(o: &Owner) -> Access {
    if o.sub == "gateway" {
        return Access::gateway();
    }
    let actor = Actor {
        sub: o.sub.clone(),
        role: Role::from_str(&o.role).unwrap_or(Role::PatientApp),
        org: o.org.clone(),
        channel: o.channel.clone(),
    };
    Access::of_recorded(&actor, o.patient.as_deref(), &o.scopes)
}
