//! A booking's tariff and exemptions, found through the store's one-table lookups
//! (see `store::lookups`): the ChargeItemDefinition of a catalog code in force on
//! the booking's day, and the exemption codes on the patient's Coverages.

use rust_decimal::Decimal;

use super::views::{Exemptions, Tariff};
use crate::fhir::names;
use crate::store::{value_of, Store, Stored, Tx};
use crate::Result;

/// The tariff of catalog `code` in force on `day`: its amount and canonical URL.
pub(crate) async fn tariff_of(
    store: &Store,
    tx: &mut Tx,
    code: &str,
    day: chrono::NaiveDate,
) -> Result<Option<(Decimal, String)>> {
    let system = names::catalog_system(&store.settings().base);
    let found = store.with_token(tx, "ChargeItemDefinition", "identifier", &system, code).await?;
    tariff_in(found, day)
}

/// The exemption codes on `patient`'s active Coverages in force on `day`.
pub(crate) async fn exemption_codes(
    store: &Store,
    tx: &mut Tx,
    patient: &str,
    day: chrono::NaiveDate,
) -> Result<Vec<String>> {
    if patient.is_empty() {
        return Ok(Vec::new());
    }
    let found = store.with_reference(tx, "Coverage", "beneficiary", ("Patient", patient)).await?;
    exemptions_in(found, &store.settings().billing.exemptions.system, day)
}

/// [`tariff_of`] and [`exemption_codes`] together, as a booking's
/// ticket needs them: both lookups in one round trip, the resources found in one more.
pub(crate) async fn tariff_and_exemptions(
    store: &Store,
    tx: &mut Tx,
    code: &str,
    patient: &str,
    day: chrono::NaiveDate,
) -> Result<(Option<(Decimal, String)>, Vec<String>)> {
    let system = names::catalog_system(&store.settings().base);
    let mut lookups =
        vec![crate::store::token_lookup(store.dialect(), "ChargeItemDefinition", "identifier", &system, code)];
    if !patient.is_empty() {
        lookups.push(crate::store::reference_lookup(store.dialect(), "Coverage", "beneficiary", ("Patient", patient)));
    }
    let (tariffs, coverages): (Vec<Stored>, Vec<Stored>) =
        store.looked_up(tx, &lookups).await?.into_iter().partition(|s| s.res_type == "ChargeItemDefinition");
    let exemptions = exemptions_in(coverages, &store.settings().billing.exemptions.system, day)?;
    Ok((tariff_in(tariffs, day)?, exemptions))
}

/// The first of `found` (ChargeItemDefinitions, oldest first) in force on `day` with
/// a base price: its amount and canonical URL.
fn tariff_in(found: Vec<Stored>, day: chrono::NaiveDate) -> Result<Option<(Decimal, String)>> {
    for stored in found {
        let tariff = Tariff::of(&value_of(Some(stored))?);
        if let Some(amount) = tariff.base.filter(|_| tariff.in_force(day)) {
            return Ok(Some((amount, tariff.url)));
        }
    }
    Ok(None)
}

/// The codes of `system` on those of `found` (Coverages) active and in force on `day`.
fn exemptions_in(found: Vec<Stored>, system: &str, day: chrono::NaiveDate) -> Result<Vec<String>> {
    let mut codes = Vec::new();
    for stored in found {
        let coverage = Exemptions::of(&value_of(Some(stored))?, system);
        if coverage.in_force(day) {
            codes.extend(coverage.codes);
        }
    }
    Ok(codes)
}
