//! Referential integrity of the booking workflow: what a booking, a prescription,
//! a ticket or a payment points to must exist, or the region would book for
//! patients who do not exist and bill invoices nobody issued. Other resources keep
//! FHIR's open world (a reference may name what this server does not hold) unless
//! `--referential-integrity strict`. A reference to a resource the caller may not
//! see is answered exactly as one to a resource that does not exist.

use serde_json::Value;

use super::views::{Appointment, Prescription};
use super::Settings;
use crate::access::Access;
use crate::config::Integrity;
use crate::error::Issue;
use crate::fhir::references::{literal_references, local_target};
use crate::fhir::view::{parse, Concept};
use crate::store::{Store, Tx};
use crate::{Error, Result};

/// Whether the local references of `r` (of `res_type`) must resolve.
pub fn must_resolve(settings: &Settings, res_type: &str, r: &Value) -> bool {
    if settings.integrity == Integrity::Strict {
        return true;
    }
    match res_type {
        // One that takes a place in a slot (a booking, a hold, a proposal).
        "Appointment" => Appointment::of(r, &settings.base).is_ok_and(|a| !a.slots.is_empty()),
        "ServiceRequest" => Prescription::of("", r, &settings.base).is_ok_and(|p| {
            let nre = settings.rules.nre.as_ref().map_or(super::NRE_SYSTEM, |n| n.system.as_str());
            let catalog = crate::fhir::names::catalog_system(&settings.base);
            p.number_of(nre).is_some() || p.codes.iter().any(|(s, _)| *s == catalog)
        }),
        "ChargeItem" | "Invoice" | "PaymentNotice" => true,
        "Coverage" => {
            parse::<Typed>(r, "Coverage").is_ok_and(|c| c.r#type.has_system(&settings.billing.exemptions.system))
        }
        _ => false,
    }
}

/// A resource's `type`, as a Coverage says what it is.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Typed {
    r#type: Concept,
}

/// Refuses (422, naming each element) `r` when a local reference it must resolve
/// names nothing `access` may refer to. Reads in `tx` when given.
pub async fn check(store: &Store, tx: Option<&mut Tx>, access: &Access, res_type: &str, r: &Value) -> Result<()> {
    let settings = store.settings();
    if !must_resolve(settings, res_type, r) {
        return Ok(());
    }
    let strict = settings.integrity == Integrity::Strict;
    let refs = literal_references(r, res_type);
    let targets: Vec<(&str, &str, &str, &str)> = refs
        .iter()
        // Extensions carry what the gateway noted (the booking point that booked):
        // the workflow's own elements are what must resolve.
        .filter(|(path, _)| strict || !path.contains("xtension["))
        // An Appointment's slots are the booking rules' to find, under the slot's lock:
        // read here, a generated slot moving into the resource table as another
        // booking takes it could be missed between two statements.
        .filter(|(path, _)| !path.starts_with("Appointment.slot["))
        .filter_map(|(path, reference)| {
            let (t, id) = local_target(reference, &settings.public_base)?;
            Some((path.as_str(), reference.as_str(), t, id))
        })
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let wanted: Vec<(&str, &str, _)> = targets.iter().map(|(_, _, t, id)| (*t, *id, access.referable(t))).collect();
    let missing = store.unresolved(tx, &wanted).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let issues = missing
        .into_iter()
        .filter_map(|i| targets.get(i))
        .map(|(path, reference, ..)| {
            let element = path.strip_suffix(".reference").unwrap_or(path);
            Issue::error(
                "not-found",
                Some(element.to_string()),
                format!("{element} names {reference}, which does not exist: create it first, or correct the reference"),
            )
        })
        .collect();
    Err(Error::Unprocessable(issues))
}
