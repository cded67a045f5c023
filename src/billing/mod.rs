//! Billing: the patient's ticket for every booking, payments from every payment
//! point, refunds, provider settlement and credit recovery.
//!
//! At booking, each booked service gets a `ChargeItem` priced by the tariff in
//! force that day, and its prescription an `Invoice` (gross value, what the patient
//! owes, a pagoPA notice number). The store writes them in the booking's own
//! transaction (`store::tickets`); the amounts are decided here, by plain
//! functions over the dated rules of `mappings/billing/rules.json`.

pub mod cli;
mod ledger;
mod ops;
pub mod pagopa;
mod payments;
mod refunds;
mod reprice;
mod resources;
pub mod settlement;
mod tariffs;
pub mod ticket;
pub(crate) mod tickets;
pub mod views;

pub use ops::{apply, month, outstanding, receipt_of, recover, settle, RecoveryStep};
pub(crate) use payments::{payment_write, recorded_payment_unchanged};
pub(crate) use refunds::{invoice_of, ticket_on_change};
pub use resources::{charge_item, invoice, payment_line, receipt, remittance, ChargeFacts, InvoiceFacts, LineFacts};
pub use ticket::{cents, compute, share, Line, Ticket};
pub(crate) use tickets::ticket_on_booking;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::mappings::BillingRules;

/// The exemption among a patient's `codes` that zeroes catalog service `service` on
/// `day`: a whole-ticket one (income, age) first, else a condition one covering it.
pub fn exemption(codes: &[String], service: &str, rules: &BillingRules, day: NaiveDate) -> Option<String> {
    codes
        .iter()
        .find(|c| rules.exempts_whole(c, day))
        .or_else(|| codes.iter().find(|c| rules.exempts_service(c, service, day)))
        .cloned()
}

/// Euros as whole cents (amounts are kept as cents in the tables, summed in SQL).
pub fn to_cents(d: Decimal) -> i64 {
    (cents(d) * Decimal::ONE_HUNDRED).to_i64().unwrap_or(i64::MAX)
}

pub fn from_cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// The Europe/Rome day of an instant (microseconds): the day whose rules apply.
pub fn rome_day(micros: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Europe::Rome)
        .date_naive()
}

/// Money as FHIR writes it: an exact JSON number and the currency.
pub fn money(d: Decimal) -> serde_json::Value {
    let mut c = cents(d);
    c.rescale(2);
    serde_json::json!({"value": crate::catalog::decimal_value(c), "currency": "EUR"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_exemption_wins_over_a_condition_one() {
        let rules = BillingRules::load(std::path::Path::new("mappings/billing/rules.json"), "b").expect("rules");
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let codes = vec!["0031".to_string(), "E01".to_string()];
        assert_eq!(exemption(&codes, "89.44.2", &rules, day).as_deref(), Some("E01"));
        assert_eq!(exemption(&codes[..1], "89.52", &rules, day).as_deref(), Some("0031"));
        assert_eq!(exemption(&codes[..1], "89.44.2", &rules, day), None);
    }

    #[test]
    fn cents_round_trip() {
        assert_eq!(to_cents("36.15".parse().unwrap_or_default()), 3615);
        assert_eq!(from_cents(3615).to_string(), "36.15");
        let money: serde_json::Value = serde_json::from_str(r#"{"value": 20.00}"#).unwrap_or_default();
        assert_eq!(views::amount(&money).map(|d| d.to_string()).as_deref(), Some("20.00"));
    }
}
