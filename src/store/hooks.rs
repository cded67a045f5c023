//! Write hooks: the rules the domain registers for a resource type, which the store
//! runs inside every write's transaction — REST interactions, transaction entries,
//! operations, inbound messages — so that no write path can skip them. The store
//! knows only this interface; the rules live in the domain modules that register
//! them (the booking and billing rules, the subscriptions' events).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use super::{Store, Stored, Tx};
use crate::access::Access;
use crate::Result;

/// The future a hook returns.
pub type Hooked<'a> = Pin<Box<dyn Future<Output = Result<Verdict>> + Send + 'a>>;

/// A write about to be made, as a hook sees it.
pub struct Pending<'a> {
    /// Who writes.
    pub access: &'a Access,
    pub id: &'a str,
    /// A new resource (not an update, even of a deleted one, nor a delete).
    pub creating: bool,
    /// The current version's body (`None` for a create, or over a deletion).
    pub old: Option<&'a Value>,
    /// The body to be written, which the hook may complete (`None` for a delete).
    pub new: Option<&'a mut Value>,
}

/// What a hook decided.
pub enum Verdict {
    /// Write as asked (with the body as the hook left it).
    Proceed,
    /// The write was already made (a retried payment): answer with that version.
    Recorded(Stored),
}

/// A version just written, as an after-write hook sees it: its index rows are in
/// the database, in the same transaction.
pub struct Changed<'a> {
    pub res_type: &'a str,
    pub id: &'a str,
    pub pk: i64,
    pub version: i64,
    /// The version it replaced (`None` for a create or over a deletion).
    pub old: Option<&'a Value>,
    /// The version written (`None` for a deletion).
    pub new: Option<&'a Value>,
}

/// The future an after-write hook returns.
pub type AfterHooked<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// A resource type's rules, run before its version is written (check and complete
/// the resource; claim, price, queue messages in the same transaction).
pub trait WriteHook: Send + Sync {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, write: Pending<'a>) -> Hooked<'a>;

    /// Run once the version and its index rows are written, by every path that
    /// writes a version (the domain's own writes included), in its transaction.
    fn after<'a>(&'a self, _store: &'a Store, _tx: &'a mut Tx, _change: Changed<'a>) -> AfterHooked<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Whether this hook has an [`WriteHook::after`].
    fn watches_changes(&self) -> bool {
        false
    }

    /// Whether its [`WriteHook::after`] reads the versions' bodies ([`Changed::old`]
    /// and [`Changed::new`]): the replaced one is parsed for it when this process did
    /// not write it, so a hook that needs only the change's index rows says no.
    fn reads_bodies(&self) -> bool {
        true
    }

    /// Whether creates need the hook (a rule only on change or delete lets plain
    /// creates take the one-statement path).
    fn on_create(&self) -> bool {
        true
    }
}

/// The hooks by resource type (none: the store writes as asked).
#[derive(Clone, Default)]
pub struct Hooks(HashMap<&'static str, Vec<Arc<dyn WriteHook>>>);

impl Hooks {
    /// These hooks and `hook` for `res_type` (run after those already there).
    pub fn with(mut self, res_type: &'static str, hook: Arc<dyn WriteHook>) -> Hooks {
        self.0.entry(res_type).or_default().push(hook);
        self
    }

    /// These hooks and `other`'s.
    pub fn and(mut self, other: Hooks) -> Hooks {
        for (res_type, hooks) in other.0 {
            self.0.entry(res_type).or_default().extend(hooks);
        }
        self
    }

    /// Whether creates of `res_type` run a hook (and so cannot take the plain paths).
    pub fn watches(&self, res_type: &str) -> bool {
        self.0.get(res_type).is_some_and(|hs| hs.iter().any(|h| h.on_create() || h.watches_changes()))
    }

    /// Whether a hook of `res_type` runs after its versions are written.
    pub fn watches_changes(&self, res_type: &str) -> bool {
        self.0.get(res_type).is_some_and(|hs| hs.iter().any(|h| h.watches_changes()))
    }

    fn of(&self, res_type: &str) -> Vec<Arc<dyn WriteHook>> {
        self.0.get(res_type).cloned().unwrap_or_default()
    }
}

impl Store {
    /// The same store running `hooks` on every write.
    pub fn with_hooks(mut self, hooks: Hooks) -> Store {
        self.hooks = Arc::new(hooks);
        self
    }

    /// The same store running `extra` too, after the hooks it has.
    pub fn with_more_hooks(mut self, extra: Hooks) -> Store {
        self.hooks = Arc::new((*self.hooks).clone().and(extra));
        self
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Runs the hooks of `res_type`, in order, for `write`; the first that finds
    /// the write already made answers for all.
    pub(super) async fn run_hook(&self, tx: &mut Tx, res_type: &str, write: Pending<'_>) -> Result<Verdict> {
        let Pending { access, id, creating, old, mut new } = write;
        for hook in self.hooks.of(res_type) {
            let again = Pending { access, id, creating, old, new: new.as_deref_mut() };
            if let Verdict::Recorded(done) = hook.before(self, tx, again).await? {
                return Ok(Verdict::Recorded(done));
            }
        }
        Ok(Verdict::Proceed)
    }

    /// Runs the after-write hooks of `stored`'s type, once `stored` replaced `old`.
    pub(super) async fn run_after(&self, tx: &mut Tx, stored: &Stored, old: Option<&Stored>) -> Result<()> {
        if !self.hooks.watches_changes(&stored.res_type) {
            return Ok(());
        }
        let hooks = self.hooks.of(&stored.res_type);
        let bodies = hooks.iter().any(|h| h.watches_changes() && h.reads_bodies());
        let old_value = old.filter(|_| bodies).and_then(value_of_stored);
        let new_value = Some(stored).filter(|_| bodies).and_then(value_of_stored);
        for hook in hooks {
            let change = Changed {
                res_type: &stored.res_type,
                id: &stored.id,
                pk: stored.pk,
                version: stored.version,
                old: old_value.as_deref(),
                new: new_value.as_deref(),
            };
            hook.after(self, tx, change).await?;
        }
        Ok(())
    }
}

/// A version's body as a value: at hand when this process wrote it, else parsed
/// (`None` for a deletion, or a body that does not parse).
fn value_of_stored(s: &Stored) -> Option<std::borrow::Cow<'_, Value>> {
    match (&s.written, &s.body) {
        (Some(w), _) => Some(std::borrow::Cow::Borrowed(&w.value)),
        (None, Some(b)) => serde_json::from_str(b).ok().map(std::borrow::Cow::Owned),
        (None, None) => None,
    }
}
