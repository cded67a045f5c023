//! The prescription rules, applied on every write of a ServiceRequest: the NRE's
//! format, and at most so many services of one branch per prescription (both
//! dated rules of `mappings/booking/rules.json`). Writers of one prescription are
//! serialised on its number, so two requests at once cannot both take the last place.

use serde_json::Value;

use crate::access::Access;
use crate::booking::views::{Appointment, Prescription, Response};
use crate::booking::{catalog_facts, NRE_SYSTEM};
use crate::error::Issue;
use crate::store::{current, Store, Tx};
use crate::{Error, Result};

fn unprocessable(expression: &str, diagnostics: String) -> Error {
    Error::Unprocessable(vec![Issue::error("business-rule", Some(expression.into()), diagnostics)])
}

/// A prescription names a code of the regional catalog that is still in use
/// (when the catalog is loaded).
async fn check_catalog_code(store: &Store, tx: &mut Tx, request: &Prescription) -> Result<()> {
    let system = crate::fhir::names::catalog_system(&store.settings().base);
    let ours: Vec<&str> = request.codes.iter().filter(|(s, _)| *s == system).map(|(_, c)| c.as_str()).collect();
    if ours.is_empty() {
        return Ok(());
    }
    let facts = catalog_facts(store, tx).await?;
    if facts.is_empty() {
        return Ok(());
    }
    for code in ours {
        match facts.get(code) {
            None => {
                return Err(unprocessable(
                    "ServiceRequest.code",
                    format!("{code} is not a code of the regional catalog ({system})"),
                ))
            }
            Some(f) if f.retired => {
                return Err(unprocessable(
                    "ServiceRequest.code",
                    format!("{code} was retired from the regional catalog: prescribe its replacement"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub(crate) async fn service_request_write(store: &Store, tx: &mut Tx, id: &str, request: &Value) -> Result<()> {
    let base = store.settings().base.clone();
    let request = Prescription::of(id, request, &base)?;
    check_catalog_code(store, tx, &request).await?;
    let rules = store.settings().rules.clone();
    let system = rules.nre.as_ref().map(|n| n.system.clone()).unwrap_or_else(|| NRE_SYSTEM.into());
    let Some(nre) = request.number_of(&system) else {
        return Ok(());
    };
    if let Some(fault) = rules.nre_fault(nre) {
        return Err(unprocessable("ServiceRequest.requisition.value", fault));
    }
    let active = request.active;
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
    let Some(max) = rules.max_per_branch(today).filter(|_| active) else {
        return Ok(());
    };
    let query = [("requisition".to_string(), format!("{system}|{nre}"))];
    store.lock_condition(tx, "ServiceRequest", &query).await?;
    let facts = catalog_facts(store, tx).await?;
    let branch_of = |r: &Prescription| -> Option<String> {
        r.codes.iter().find_map(|(_, c)| facts.get(c).map(|f| f.branch.clone())).filter(|b| !b.is_empty())
    };
    let Some(branch) = branch_of(&request) else {
        return Ok(());
    };
    let mut same = 1;
    let query = [query[0].clone(), ("status".to_string(), "draft,active,on-hold,completed,unknown".to_string())];
    for other in store.search_ids_in(tx, &Access::gateway(), "ServiceRequest", &query, 100).await? {
        if other == id {
            continue;
        }
        let v = crate::store::value_of(current(tx, store.dialect(), "ServiceRequest", &other, false).await?)?;
        if branch_of(&Prescription::of(&other, &v, &base)?).as_deref() == Some(branch.as_str()) {
            same += 1;
        }
    }
    if same > max {
        return Err(unprocessable(
            "ServiceRequest.code",
            format!(
                "prescription {nre} would hold {same} services of the branch {branch}: at most {max} per prescription"
            ),
        ));
    }
    Ok(())
}

/// A patient declining a proposal that met the deadline leaves the guarantee for
/// that prescription: recorded against its NRE, for `$find` to see.
pub(crate) async fn appointment_response_write(store: &Store, tx: &mut Tx, id: &str, response: &Value) -> Result<()> {
    let response = Response::of(response)?;
    let Some(appointment) = response.appointment.filter(|_| response.declined) else {
        return Ok(());
    };
    let base = store.settings().base.clone();
    let a = crate::store::value_of(current(tx, store.dialect(), "Appointment", &appointment, false).await?)?;
    let a = Appointment::of(&a, &base)?;
    let (Some(true), Some(request)) = (a.within_guarantee, a.requests.first()) else {
        return Ok(());
    };
    let sr = crate::store::value_of(current(tx, store.dialect(), "ServiceRequest", request, false).await?)?;
    let sr = Prescription::of(request, &sr, &base)?;
    let Some(nre) = sr.number() else {
        return Ok(());
    };
    store.waive_guarantee(tx, nre, id, crate::store::now_micros()).await
}
