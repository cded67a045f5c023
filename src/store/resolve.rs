//! Whether references name current resources (the booking workflow's referential
//! integrity reads through here).

use sqlx::AnyConnection;

use super::resources::current_visible;
use super::{Store, Tx};
use crate::access::Rule;
use crate::Result;

impl Store {
    /// The indexes of those of `wanted` (type, id, the rule the caller sees that type
    /// through) that name no current resource: never created, deleted, or hidden by
    /// the rule. Read in `tx` when given (a booking's own transaction), else outside one.
    pub async fn unresolved(&self, tx: Option<&mut Tx>, wanted: &[(&str, &str, Rule)]) -> Result<Vec<usize>> {
        async fn each(c: &mut AnyConnection, wanted: &[(&str, &str, Rule)]) -> Result<Vec<usize>> {
            let mut out = Vec::new();
            for (i, (t, id, rule)) in wanted.iter().enumerate() {
                if current_visible(c, t, id, rule).await?.is_none_or(|s| s.deleted) {
                    out.push(i);
                }
            }
            Ok(out)
        }
        match tx {
            Some(tx) => each(tx, wanted).await,
            None => {
                let mut c = self.conn().await?;
                let found = each(&mut c, wanted).await?;
                c.done(Ok(found))
            }
        }
    }
}
