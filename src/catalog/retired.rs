//! The catalog's resources as retired, once a whole catalog file no longer lists
//! their code: the concept (kept, marked retired), the ActivityDefinition and the
//! tariff still in force, so that bookings made under the code still resolve.

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::build::{property, with_end};
use super::report::Tariff;
use super::{PROP_INACTIVE, PROP_STATUS};

/// Whether a catalog concept is retired (`status` = `retired`).
pub(crate) fn is_retired(concept: &Value) -> bool {
    property(concept, PROP_STATUS) == Some("retired")
}

/// A stored concept as retired: its properties kept, `status` = `retired` and
/// `inactive` = `true` added (replacing any earlier ones, so retiring twice is a no-op).
pub(crate) fn retired_concept(concept: &Value) -> Value {
    let mut c = concept.clone();
    let mut props: Vec<Value> = c["property"].as_array().cloned().unwrap_or_default();
    props.retain(|p| p["code"] != PROP_STATUS && p["code"] != PROP_INACTIVE);
    props.push(json!({"code": PROP_STATUS, "valueCode": "retired"}));
    props.push(json!({"code": PROP_INACTIVE, "valueBoolean": true}));
    c["property"] = Value::Array(props);
    c
}

/// A stored ActivityDefinition as retired; `None` when it already is.
pub(crate) fn retired_activity(stored: &Value) -> Option<Value> {
    if stored["status"] == "retired" {
        return None;
    }
    let mut ad = stored.clone();
    ad["status"] = json!("retired");
    Some(ad)
}

/// A stored tariff of a code retired from `effective` on: an active tariff still in
/// force on or after that day is retired and ends the day before (as a newer tariff
/// would close it). `None` for older periods (kept intact) and tariffs already retired.
/// A tariff starting on or after `effective` never applied: retired, period as it was.
pub(crate) fn retired_tariff(stored: &Value, effective: NaiveDate) -> Option<Value> {
    let t = Tariff::of(stored);
    if stored["status"] != "active" || t.end.is_some_and(|end| end < effective) {
        return None;
    }
    let end = effective.pred_opt().filter(|end| t.start.is_none_or(|start| start <= *end));
    let mut cid = match end {
        Some(end) => with_end(stored.clone(), Some(end)),
        None => stored.clone(),
    };
    cid["status"] = json!("retired");
    Some(cid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::build::tests::{entries, BASE};
    use crate::catalog::build::{activity_definition, catalog_code_system, charge_item_definition, value_sets};
    use crate::catalog::{build_resources, CatalogEntry};
    use crate::fhir::check::{At, Checker};
    use crate::fhir::names::PROP_BRANCH;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn tariff(from: NaiveDate, end: Option<NaiveDate>) -> Value {
        let e = CatalogEntry { valid_from: from, ..entries()[0].clone() };
        charge_item_definition(BASE, &e, end)
    }

    #[test]
    fn a_retired_code_keeps_its_properties_and_leaves_its_value_set() {
        let all = build_resources(BASE, &entries());
        let concepts: Vec<Value> = all[1]["concept"].as_array().cloned().expect("concepts");
        let retired = retired_concept(&concepts[0]);
        assert!(is_retired(&retired) && !is_retired(&concepts[0]));
        assert_eq!(retired_concept(&retired), retired, "retiring twice changes nothing");
        assert_eq!(property(&retired, PROP_BRANCH), Some("cardiology"));
        assert!(retired["property"]
            .as_array()
            .is_some_and(|p| p.contains(&json!({"code": "inactive", "valueBoolean": true}))));
        let sets = value_sets(BASE, &[retired.clone(), concepts[1].clone(), concepts[2].clone()]);
        assert_eq!(
            sets[0]["compose"]["include"][0]["concept"],
            json!([{"code": "89.7A.3", "display": "Prima visita cardiologica"}])
        );
        let cs = catalog_code_system(BASE, vec![retired, concepts[1].clone()]);
        Checker::shared().check(&cs, "CodeSystem", Some("catalog"), At::Body).expect("valid R4");
        assert!(cs["property"].as_array().is_some_and(|p| p.iter().any(|p| p["code"] == "status"
            && p["uri"] == "http://hl7.org/fhir/concept-properties#status"
            && p["type"] == "code")));
    }

    #[test]
    fn retiring_closes_the_current_tariff_the_day_before_and_keeps_older_ones() {
        let effective = day(2025, 6, 1);
        let open = retired_tariff(&tariff(day(2024, 1, 1), None), effective).expect("the open tariff");
        assert_eq!(open["status"], "retired");
        assert_eq!(open["effectivePeriod"], json!({"start": "2024-01-01", "end": "2025-05-31"}));
        let closed_later =
            retired_tariff(&tariff(day(2024, 1, 1), Some(day(2025, 12, 31))), effective).expect("current");
        assert_eq!(closed_later["effectivePeriod"]["end"], "2025-05-31");
        assert_eq!(retired_tariff(&tariff(day(2023, 1, 1), Some(day(2023, 12, 31))), effective), None, "an old period");
        assert_eq!(retired_tariff(&open, day(2025, 7, 1)), None, "already retired");
        let future = retired_tariff(&tariff(day(2026, 1, 1), None), effective).expect("a future tariff");
        assert_eq!(
            (&future["status"], &future["effectivePeriod"]),
            (&json!("retired"), &json!({"start": "2026-01-01"}))
        );
        let same_day = retired_tariff(&tariff(effective, None), effective).expect("starting that day");
        assert_eq!(same_day["effectivePeriod"], json!({"start": "2025-06-01"}), "no end before its start");
        Checker::shared().check(&open, "ChargeItemDefinition", open["id"].as_str(), At::Body).expect("valid R4");
    }

    #[test]
    fn retiring_an_activity_definition_changes_its_status_only() {
        let ad = activity_definition(BASE, &entries()[0]);
        let retired = retired_activity(&ad).expect("active");
        assert_eq!(retired["status"], "retired");
        assert_eq!(retired["code"], ad["code"]);
        assert_eq!(retired_activity(&retired), None);
    }
}
