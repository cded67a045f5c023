//! Who a provider's message comes from: the sender named by the broker's user (an
//! Organization) or by the message (a provider code), resolved to the provider's
//! Organization id and code.

use super::inbound::Sender;
use crate::access::Access;
use crate::store::{current, value_of, Store};
use crate::Result;

/// The provider a message came from: its Organization id and provider code.
pub(crate) async fn provider_of(store: &Store, sender: &Sender) -> Result<Option<(String, String)>> {
    let base = store.settings().base.clone();
    let system = crate::fhir::names::provider_identifier(&base);
    let mut tx = store.begin().await?;
    let org = match sender {
        Sender::Organization(o) => Some(o.clone()),
        Sender::ProviderCode(c) => {
            let q = vec![("identifier".to_string(), format!("{system}|{c}"))];
            store.search_ids_in(&mut tx, &Access::gateway(), "Organization", &q, 2).await?.into_iter().next()
        }
    };
    let Some(org) = org else { return Ok(None) };
    let v = value_of(current(&mut tx, store.dialect(), "Organization", &org, false).await?)?;
    Ok(super::changes::provider_code(&v, &base)?.map(|c| (org, c)))
}
