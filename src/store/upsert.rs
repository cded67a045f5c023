//! Writing a resource only when it changed: loaders (catalog import, mappings, demo
//! data) re-run without piling up versions.

use serde_json::Value;

use super::{Store, Tx, WriteKind};
use crate::access::Access;
use crate::Result;

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

/// The resource without `meta` (which the store stamps), for comparison.
fn content(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    v
}

impl Store {
    /// Creates or updates `res_type/id` with `resource` unless the current version
    /// already says the same (`meta` aside).
    pub async fn upsert_in(
        &self,
        tx: &mut Tx,
        access: &Access,
        res_type: &str,
        id: &str,
        mut resource: Value,
    ) -> Result<Upsert> {
        resource["id"] = Value::String(id.to_string());
        if let Some(cur) = self.current_for_write(tx, res_type, id).await? {
            let same = cur.value()?.is_some_and(|old| content(old) == content(resource.clone()));
            if same {
                return Ok(Upsert::Unchanged);
            }
        }
        let w = self.update_in(tx, access, res_type, id, resource, None).await?;
        Ok(if w.kind == WriteKind::Created { Upsert::Created } else { Upsert::Updated })
    }
}
