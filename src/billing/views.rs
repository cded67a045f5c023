//! The billing domain's typed views of the FHIR resources it reads (a tariff, a
//! Coverage's exemptions, a PaymentNotice, an Invoice, a remittance), each parsed
//! once by its one constructor: the only place in billing that reads them by key.
//! A rule writes one back through typed setters ([`PaymentNoticeMut`]). Money is
//! an exact `Decimal`, never a float.

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// A `Money` element's amount, exactly as written (`20.00` stays `20.00`).
pub fn amount(money: &Value) -> Option<Decimal> {
    match &money["value"] {
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// A `Money` element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Money {
    pub value: Option<Decimal>,
    pub currency: Option<String>,
}

impl Money {
    pub fn of(money: &Value) -> Money {
        Money { value: amount(money), currency: text(&money["currency"]) }
    }
}

/// An `Identifier` element (written back as it was read: the parts it has).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Identifier {
    pub fn of(identifier: &Value) -> Identifier {
        Identifier { system: text(&identifier["system"]), value: text(&identifier["value"]) }
    }
}

/// A `Reference` element: its literal reference and its logical one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reference {
    pub reference: Option<String>,
    pub identifier: Identifier,
}

impl Reference {
    pub fn of(reference: &Value) -> Reference {
        Reference { reference: text(&reference["reference"]), identifier: Identifier::of(&reference["identifier"]) }
    }
}

/// A `Period` as days; an open end is `None`. A partial date covers its whole
/// month or year, an instant the day written (in its own offset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

impl Period {
    /// `None` when an end is written but is no date (nor a partial one).
    pub fn of(period: &Value) -> Option<Period> {
        let bound = |key: &str, last: bool| match period[key].as_str() {
            None => Some(None),
            Some(s) => day_of(s, last).map(Some),
        };
        Some(Period { start: bound("start", false)?, end: bound("end", true)? })
    }

    /// Whether `day` is within the period (both ends included).
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| e >= day)
    }
}

/// The first day (`last`: the last) of a FHIR date, dateTime or instant.
fn day_of(s: &str, last: bool) -> Option<NaiveDate> {
    if let Some(day) = s.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) {
        return Some(day);
    }
    let digits = |r: std::ops::Range<usize>| s.get(r).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let year: i32 = digits(0..4)?.parse().ok()?;
    let (first, months) = match s.len() {
        4 => (NaiveDate::from_ymd_opt(year, 1, 1)?, 12),
        7 if s.as_bytes()[4] == b'-' => (NaiveDate::from_ymd_opt(year, digits(5..7)?.parse().ok()?, 1)?, 1),
        _ => return None,
    };
    if !last {
        return Some(first);
    }
    first.checked_add_months(Months::new(months))?.pred_opt()
}

/// A tariff: a ChargeItemDefinition's canonical URL, when it is in force and its
/// base price.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tariff {
    pub url: String,
    /// `effectivePeriod` (absent: always); `None` when it is unreadable.
    pub period: Option<Period>,
    /// The amount of the first `base` price component.
    pub base: Option<Decimal>,
}

impl Tariff {
    pub fn of(cid: &Value) -> Tariff {
        let base = list(&cid["propertyGroup"])
            .flat_map(|g| list(&g["priceComponent"]))
            .find(|p| p["type"] == "base")
            .and_then(|p| amount(&p["amount"]));
        Tariff { url: text(&cid["url"]).unwrap_or_default(), period: Period::of(&cid["effectivePeriod"]), base }
    }

    /// Whether it is in force on `day` (an unreadable period never is).
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.period.is_some_and(|p| p.covers(day))
    }
}

/// The exemptions a Coverage grants: its codes of the exemptions' system.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exemptions {
    pub status: String,
    /// `period` (absent: always); `None` when it is unreadable.
    pub period: Option<Period>,
    /// The codes of `type` in the exemptions' system.
    pub codes: Vec<String>,
}

impl Exemptions {
    pub fn of(coverage: &Value, system: &str) -> Exemptions {
        let codes = list(&coverage["type"]["coding"])
            .filter(|c| c["system"].as_str() == Some(system))
            .filter_map(|c| text(&c["code"]))
            .collect();
        let status = text(&coverage["status"]).unwrap_or_default();
        Exemptions { status, period: Period::of(&coverage["period"]), codes }
    }

    /// Whether the Coverage is active and in force on `day`.
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.status == "active" && self.period.is_some_and(|p| p.covers(day))
    }
}

/// A PaymentNotice as a payment point sends it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentNotice {
    /// `identifier[0].value`: the payment point's own reference of the payment.
    pub reference: Option<String>,
    /// What it pays: an Invoice by reference, or by its pagoPA notice's identifier.
    pub request: Reference,
    /// The remittance it goes to (`payment`).
    pub payment: Reference,
    /// `provider`, when the element is there at all.
    pub provider: Option<Reference>,
    pub amount: Money,
}

impl PaymentNotice {
    pub fn of(notice: &Value) -> PaymentNotice {
        PaymentNotice {
            reference: text(&notice["identifier"][0]["value"]),
            request: Reference::of(&notice["request"]),
            payment: Reference::of(&notice["payment"]),
            provider: notice.get("provider").map(Reference::of),
            amount: Money::of(&notice["amount"]),
        }
    }
}

/// A PaymentNotice being stored, written back through its elements' setters.
pub struct PaymentNoticeMut<'a>(pub &'a mut Value);

impl PaymentNoticeMut<'_> {
    /// `payment`: the remittance `PaymentReconciliation/{id}` and its identifier.
    pub fn set_remittance(&mut self, id: &str, identifier: &Identifier) {
        self.0["payment"] = json!({"reference": format!("PaymentReconciliation/{id}"), "identifier": identifier});
    }

    /// `request.reference`: `Invoice/{invoice}` (its identifier is kept).
    pub fn set_request_invoice(&mut self, invoice: &str) {
        if !self.0["request"].is_object() {
            self.0["request"] = json!({});
        }
        self.0["request"]["reference"] = json!(format!("Invoice/{invoice}"));
    }

    /// `provider`: the payment point `Organization/{point}`.
    pub fn set_provider(&mut self, point: &str) {
        self.0["provider"] = json!({"reference": format!("Organization/{point}")});
    }

    pub fn set_payment_date(&mut self, day: NaiveDate) {
        self.0["paymentDate"] = json!(day.to_string());
    }
}

/// One line of an Invoice: its catalog code and tariff (its first price component).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvoiceLine {
    pub code: String,
    pub tariff: Option<Decimal>,
}

/// A ticket's Invoice, as its receipt prints it (`subject`: the reference; `paid`:
/// the amount of its `amount-paid` extension).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invoice {
    pub id: String,
    pub date: String,
    pub subject: String,
    pub status: String,
    pub identifiers: Vec<Identifier>,
    pub lines: Vec<InvoiceLine>,
    pub gross: Option<Decimal>,
    pub net: Option<Decimal>,
    pub paid: Option<Decimal>,
}

impl Invoice {
    pub fn of(invoice: &Value) -> Invoice {
        let lines = list(&invoice["lineItem"])
            .map(|item| {
                let first = &item["priceComponent"][0];
                InvoiceLine {
                    code: text(&first["code"]["coding"][0]["code"]).unwrap_or_default(),
                    tariff: amount(&first["amount"]),
                }
            })
            .collect();
        let paid = list(&invoice["extension"])
            .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/amount-paid")))
            .and_then(|e| amount(&e["valueMoney"]));
        Invoice {
            id: text(&invoice["id"]).unwrap_or_default(),
            date: text(&invoice["date"]).unwrap_or_default(),
            subject: text(&invoice["subject"]["reference"]).unwrap_or_default(),
            status: text(&invoice["status"]).unwrap_or_default(),
            identifiers: list(&invoice["identifier"]).map(Identifier::of).collect(),
            lines,
            gross: amount(&invoice["totalGross"]),
            net: amount(&invoice["totalNet"]),
            paid,
        }
    }

    /// The value of the first identifier whose system ends with `system_end`.
    pub fn identifier(&self, system_end: &str) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|i| i.system.as_deref().is_some_and(|s| s.ends_with(system_end)))
            .and_then(|i| i.value.as_deref())
    }
}

/// A payment point's remittance of a day (PaymentReconciliation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remittance {
    /// Its lines (`detail`), kept as written: it is rendered again with them.
    pub lines: Vec<Value>,
    /// What they add up to.
    pub total: Decimal,
}

impl Remittance {
    pub fn of(reconciliation: &Value) -> Remittance {
        let lines: Vec<Value> = list(&reconciliation["detail"]).cloned().collect();
        let total = lines.iter().filter_map(|l| amount(&l["amount"])).sum();
        Remittance { lines, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_default()
    }

    fn tariff(period: &str) -> Tariff {
        Tariff::of(&parsed(&format!(
            r#"{{"resourceType": "ChargeItemDefinition", "url": "http://x/cid/89.52", {period}
                "propertyGroup": [{{"priceComponent": [
                    {{"type": "surcharge", "amount": {{"value": 1.00, "currency": "EUR"}}}},
                    {{"type": "base", "amount": {{"value": 12.50, "currency": "EUR"}}}}]}}]}}"#
        )))
    }

    #[test]
    fn a_tariff_with_a_period_is_in_force_within_it() {
        let t = tariff(r#""effectivePeriod": {"start": "2024-01-01", "end": "2025-12-31T23:59:59+01:00"},"#);
        assert_eq!(t.url, "http://x/cid/89.52");
        assert_eq!(t.period, Some(Period { start: Some(day("2024-01-01")), end: Some(day("2025-12-31")) }));
        assert_eq!(t.base.map(|d| d.to_string()).as_deref(), Some("12.50"), "the base component, exactly");
        assert!(t.in_force(day("2024-01-01")) && t.in_force(day("2025-12-31")));
        assert!(!t.in_force(day("2023-12-31")) && !t.in_force(day("2026-01-01")));
    }

    #[test]
    fn a_tariff_without_a_period_is_always_in_force() {
        let t = tariff("");
        assert_eq!(t.period, Some(Period::default()));
        assert!(t.in_force(day("1999-01-01")) && t.in_force(day("2099-12-31")));
        let open = tariff(r#""effectivePeriod": {"start": "2026-01-01"},"#);
        assert!(!open.in_force(day("2025-12-31")) && open.in_force(day("2099-12-31")));
    }

    #[test]
    fn partial_dates_cover_their_month_or_year_and_others_nothing() {
        let t = tariff(r#""effectivePeriod": {"start": "2024", "end": "2024-02"},"#);
        assert_eq!(t.period, Some(Period { start: Some(day("2024-01-01")), end: Some(day("2024-02-29")) }));
        assert!(!tariff(r#""effectivePeriod": {"start": "someday"},"#).in_force(day("2024-06-01")));
    }

    #[test]
    fn a_coverage_gives_its_exemption_codes_while_active_and_in_force() {
        let c = parsed(
            r#"{"status": "active", "period": {"end": "2026-12-31"}, "type": {"coding": [
                {"system": "http://x/exemption", "code": "E01"}, {"system": "other", "code": "Z"}]}}"#,
        );
        let e = Exemptions::of(&c, "http://x/exemption");
        assert_eq!(e.codes, vec!["E01".to_string()]);
        assert!(e.in_force(day("2026-12-31")) && !e.in_force(day("2027-01-01")));
        assert!(!Exemptions { status: "cancelled".into(), ..e }.in_force(day("2026-01-01")));
    }

    #[test]
    fn a_payment_notice_may_name_its_invoice_by_identifier() {
        let mut body = parsed(
            r#"{"resourceType": "PaymentNotice", "identifier": [{"value": "ref-1"}],
                "request": {"identifier": {"system": "http://x/sid/pagopa-notice", "value": "301000000000004285"}},
                "payment": {"identifier": {"value": "farmacia-1/2026-11-26"}},
                "amount": {"value": 12.50, "currency": "EUR"}}"#,
        );
        let n = PaymentNotice::of(&body);
        assert_eq!(n.reference.as_deref(), Some("ref-1"));
        assert_eq!(n.request.reference, None);
        assert_eq!(n.request.identifier.system.as_deref(), Some("http://x/sid/pagopa-notice"));
        assert_eq!(n.request.identifier.value.as_deref(), Some("301000000000004285"));
        assert_eq!(n.payment.identifier.value.as_deref(), Some("farmacia-1/2026-11-26"));
        assert_eq!(n.amount.value.map(|d| d.to_string()).as_deref(), Some("12.50"), "the decimal written");
        assert_eq!(n.amount.currency.as_deref(), Some("EUR"));
        assert_eq!(Money::of(&parsed(r#"{"value": "12.50"}"#)).value, None, "a string is no amount");
        assert_eq!(n.provider, None);
        let mut out = PaymentNoticeMut(&mut body);
        out.set_request_invoice("inv-1");
        out.set_remittance("remittance-1", &Identifier { system: Some("s".into()), value: Some("v".into()) });
        out.set_provider("farmacia-1");
        let n = PaymentNotice::of(&body);
        assert_eq!(n.request.reference.as_deref(), Some("Invoice/inv-1"));
        assert_eq!(n.request.identifier.value.as_deref(), Some("301000000000004285"), "the identifier is kept");
        assert_eq!(
            body["payment"],
            json!({"reference": "PaymentReconciliation/remittance-1",
            "identifier": {"system": "s", "value": "v"}})
        );
        assert_eq!(n.provider.and_then(|p| p.reference).as_deref(), Some("Organization/farmacia-1"));
    }

    #[test]
    fn an_invoice_gives_its_lines_identifiers_and_amounts() {
        let i = Invoice::of(&parsed(
            r#"{"id": "inv-1", "status": "issued", "subject": {"reference": "Patient/p"},
                "identifier": [{"system": "http://x/sid/iuv", "value": "0100"}],
                "lineItem": [{"priceComponent": [{"type": "base", "code": {"coding": [{"code": "89.52"}]},
                                                  "amount": {"value": 11.62}}]}],
                "totalNet": {"value": 21.62},
                "extension": [{"url": "http://x/StructureDefinition/amount-paid", "valueMoney": {"value": 0.00}}]}"#,
        ));
        assert_eq!(i.lines, vec![InvoiceLine { code: "89.52".into(), tariff: Some(Decimal::new(1162, 2)) }]);
        assert_eq!((i.identifier("/iuv"), i.identifier("/pagopa-notice")), (Some("0100"), None));
        assert_eq!((i.gross, i.net, i.paid), (None, Some(Decimal::new(2162, 2)), Some(Decimal::new(0, 2))));
        let r = Remittance::of(&parsed(r#"{"detail": [{"amount": {"value": 36.15}}, {"amount": {"value": -1.00}}]}"#));
        assert_eq!((r.lines.len(), r.total), (2, Decimal::new(3515, 2)));
    }
}
