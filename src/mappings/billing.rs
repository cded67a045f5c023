//! `mappings/billing/rules.json`: the dated ticket rules — the cap and the fixed
//! quota per prescription, the exemptions, the cancellation notice, the fees paid
//! to booking points, the credit-recovery stages and the pagoPA creditor codes.
//! Every number has its effective date; a rule applies from its date until the
//! next one's, so that old invoices keep the amounts of their day.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::booking::Dated;
use super::{line_of, MappingError};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TicketTerms {
    #[serde(default)]
    pub source: Option<String>,
    /// What a prescription costs the patient at most (before the quota); none: no cap.
    pub cap_per_prescription: Option<Decimal>,
    /// A fixed amount added to every prescription that owes something.
    #[serde(default)]
    pub quota_per_prescription: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codes {
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionExemption {
    pub code: String,
    #[serde(default)]
    pub display: Option<String>,
    /// The catalog codes it zeroes; `*` is every service.
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exemptions {
    /// The code system of the exemption codes on a patient's `Coverage.type`.
    pub system: String,
    #[serde(default)]
    pub whole_ticket: Vec<Dated<Codes>>,
    #[serde(default)]
    pub by_condition: Vec<Dated<ConditionExemption>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cancellation {
    /// A cancellation at least this long before the appointment frees the ticket.
    pub notice_hours: i64,
    /// A missed appointment (no-show, late cancellation) is owed also by an exempt patient.
    #[serde(default)]
    pub missed_charges_exempt: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fee {
    pub channel: String,
    #[serde(default)]
    pub per_booking: Decimal,
    #[serde(default)]
    pub per_ticket: Decimal,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Recovery {
    /// Days after the service (performed or missed) an unpaid ticket becomes overdue
    /// and gets its first notice.
    pub overdue_days: i64,
    /// Days after the first notice for the second.
    pub second_notice_days: i64,
    /// Days after the second notice before collection.
    pub collection_days: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PagoPa {
    /// `3`: a creditor with several stations (the notice carries a segregation code).
    pub aux_digit: String,
    pub segregation_code: String,
}

impl Default for PagoPa {
    fn default() -> Self {
        PagoPa { aux_digit: "3".into(), segregation_code: "01".into() }
    }
}

/// The ticket rules of the region.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BillingRules {
    #[serde(default)]
    pub ticket: Vec<Dated<TicketTerms>>,
    #[serde(default)]
    pub exemptions: Exemptions,
    #[serde(default)]
    pub cancellation: Vec<Dated<Cancellation>>,
    #[serde(default)]
    pub booking_point_fees: Vec<Dated<Fee>>,
    #[serde(default)]
    pub recovery: Vec<Dated<Recovery>>,
    #[serde(default)]
    pub pagopa: PagoPa,
}

fn in_force<T>(list: &[Dated<T>], day: NaiveDate) -> Option<&T> {
    super::booking::in_force(list, day)
}

fn is_money(d: &Decimal) -> bool {
    !d.is_sign_negative() && d.scale() <= 2
}

impl BillingRules {
    /// Reads and checks `file` (`{canonical-base}` stands for `base`); a missing file
    /// is no rules: every service is owed at its tariff, with no cap.
    pub fn load(file: &Path, base: &str) -> Result<BillingRules, MappingError> {
        if !file.exists() {
            tracing::warn!(file = %file.display(), "no billing rules: tickets have no cap and no exemption");
            return Ok(BillingRules::default());
        }
        let text =
            std::fs::read_to_string(file).map_err(|e| MappingError::new(file, None, format!("cannot read: {e}")))?;
        let text = text.replace("{canonical-base}", base);
        let rules: BillingRules = serde_json::from_str(&text)
            .map_err(|e| MappingError::new(file, Some(e.line()), format!("not valid billing rules: {e}")))?;
        let fault = |needle: &str, message: String| Err(MappingError::new(file, line_of(&text, needle, 1), message));
        for (i, t) in rules.ticket.iter().enumerate() {
            let amounts = t.value.cap_per_prescription.iter().chain([&t.value.quota_per_prescription]);
            if !amounts.into_iter().all(is_money) {
                return fault(
                    "PerPrescription",
                    format!("ticket[{i}]: amounts are euros with at most 2 decimals, not negative"),
                );
            }
        }
        for (i, f) in rules.booking_point_fees.iter().enumerate() {
            if !is_money(&f.value.per_booking) || !is_money(&f.value.per_ticket) {
                return fault(
                    "\"per",
                    format!("bookingPointFees[{i}]: fees are euros with at most 2 decimals, not negative"),
                );
            }
        }
        for (i, c) in rules.cancellation.iter().enumerate() {
            if c.value.notice_hours < 0 {
                return fault("noticeHours", format!("cancellation[{i}].noticeHours: not negative"));
            }
        }
        for (i, r) in rules.recovery.iter().enumerate() {
            let r = &r.value;
            if [r.overdue_days, r.second_notice_days, r.collection_days].iter().any(|d| *d < 0) {
                return fault("Days", format!("recovery[{i}]: days are not negative"));
            }
        }
        let p = &rules.pagopa;
        if p.aux_digit != "3"
            || p.segregation_code.len() != 2
            || !p.segregation_code.chars().all(|c| c.is_ascii_digit())
        {
            return fault(
                "\"pagopa\"",
                "pagopa: auxDigit \"3\" and a 2-digit segregationCode (the creditor's station)".into(),
            );
        }
        Ok(rules)
    }

    /// The cap and quota in force on `day` (none: the tariffs are owed in full).
    pub fn terms(&self, day: NaiveDate) -> Option<&TicketTerms> {
        in_force(&self.ticket, day)
    }

    /// Whether an exemption code zeroes a whole prescription on `day`.
    pub fn exempts_whole(&self, code: &str, day: NaiveDate) -> bool {
        in_force(&self.exemptions.whole_ticket, day).is_some_and(|c| c.codes.iter().any(|x| x == code))
    }

    /// Whether the condition exemption `code` zeroes catalog service `service` on `day`.
    pub fn exempts_service(&self, code: &str, service: &str, day: NaiveDate) -> bool {
        let mut of_code: BTreeMap<NaiveDate, &ConditionExemption> = BTreeMap::new();
        for d in self.exemptions.by_condition.iter().filter(|d| d.value.code == code && d.effective <= day) {
            of_code.insert(d.effective, &d.value);
        }
        of_code.values().next_back().is_some_and(|c| c.services.iter().any(|s| s == "*" || s == service))
    }

    pub fn cancellation(&self, day: NaiveDate) -> Option<&Cancellation> {
        in_force(&self.cancellation, day)
    }

    /// The fee of `channel` in force on `day`.
    pub fn fee(&self, channel: &str, day: NaiveDate) -> Option<&Fee> {
        let mut best: Option<&Dated<Fee>> = None;
        for f in self.booking_point_fees.iter().filter(|f| f.value.channel == channel && f.effective <= day) {
            if best.is_none_or(|b| b.effective <= f.effective) {
                best = Some(f);
            }
        }
        best.map(|f| &f.value)
    }

    pub fn recovery(&self, day: NaiveDate) -> Option<&Recovery> {
        in_force(&self.recovery, day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn the_shipped_rules_load_with_their_dates() {
        let rules = BillingRules::load(Path::new("mappings/billing/rules.json"), "http://x.org").expect("rules");
        assert_eq!(rules.exemptions.system, "http://x.org/CodeSystem/exemption");
        let now = rules.terms(day("2026-11-26")).expect("terms");
        assert_eq!((now.cap_per_prescription, now.quota_per_prescription), (Some(d("36.15")), d("0.00")));
        let then = rules.terms(day("2015-01-01")).expect("terms");
        assert_eq!(then.quota_per_prescription, d("10.00"));
        assert!(rules.terms(day("2010-01-01")).is_none());
        assert!(rules.exempts_whole("E01", day("2026-11-26")));
        assert!(!rules.exempts_whole("0031", day("2026-11-26")));
        assert!(rules.exempts_service("0031", "89.52", day("2026-11-26")));
        assert!(!rules.exempts_service("0031", "89.52", day("2016-01-01")), "not before its date");
        assert!(rules.exempts_service("C01", "anything", day("2026-11-26")));
        let fee = rules.fee("pharmacy", day("2026-11-26")).expect("fee");
        assert_eq!((fee.per_booking, fee.per_ticket), (d("1.50"), d("1.00")));
        assert!(rules.fee("counter", day("2026-11-26")).is_none());
    }

    #[test]
    fn a_bad_amount_is_reported_with_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("rules.json");
        std::fs::write(&file, "{\n\"ticket\": [{\"effective\": \"2020-01-01\",\n\"capPerPrescription\": \"36.155\"}]}")
            .expect("write");
        let e = BillingRules::load(&file, "b").expect_err("three decimals");
        assert_eq!(e.line, Some(3), "{e}");
        std::fs::write(&file, "{\"ticket\": [{\"effective\": \"2020-01-01\", \"capPerPrescription\": 36.15}]}")
            .expect("write");
        assert!(BillingRules::load(&file, "b").is_err(), "a JSON number could be a float: amounts are strings");
    }
}
