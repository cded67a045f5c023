//! Write hooks: the rules the domain registers for a resource type, which the store
//! runs inside every write's transaction — REST interactions, transaction entries,
//! operations, inbound messages — so that no write path can skip them. The store
//! knows only this interface; the rules live in the domain (`crate::booking::hooks`),
//! and later rules (subscription events) attach here too.

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

/// A resource type's rules, run before its version is written (check and complete
/// the resource; claim, price, queue messages in the same transaction).
pub trait WriteHook: Send + Sync {
    fn before<'a>(&'a self, store: &'a Store, tx: &'a mut Tx, write: Pending<'a>) -> Hooked<'a>;

    /// Whether creates need the hook (a rule only on change or delete lets plain
    /// creates take the one-statement path).
    fn on_create(&self) -> bool {
        true
    }
}

/// The hooks by resource type (none: the store writes as asked).
#[derive(Clone, Default)]
pub struct Hooks(HashMap<&'static str, Arc<dyn WriteHook>>);

impl Hooks {
    /// These hooks and `hook` for `res_type`.
    pub fn with(mut self, res_type: &'static str, hook: Arc<dyn WriteHook>) -> Hooks {
        self.0.insert(res_type, hook);
        self
    }

    /// Whether creates of `res_type` run a hook (and so cannot take the plain paths).
    pub fn watches(&self, res_type: &str) -> bool {
        self.0.get(res_type).is_some_and(|h| h.on_create())
    }

    pub(super) fn of(&self, res_type: &str) -> Option<Arc<dyn WriteHook>> {
        self.0.get(res_type).cloned()
    }
}

impl Store {
    /// The same store running `hooks` on every write.
    pub fn with_hooks(mut self, hooks: Hooks) -> Store {
        self.hooks = Arc::new(hooks);
        self
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Runs the hook of `res_type`, if any, for `write`.
    pub(super) async fn run_hook(&self, tx: &mut Tx, res_type: &str, write: Pending<'_>) -> Result<Verdict> {
        match self.hooks.of(res_type) {
            Some(hook) => hook.before(self, tx, write).await,
            None => Ok(Verdict::Proceed),
        }
    }
}
