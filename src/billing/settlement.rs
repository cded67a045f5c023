//! Settlement of one period with each provider organisation: the tickets collected
//! for its services, by payment channel, and the fees owed to the booking points
//! that booked them and collected them (per booking and per ticket, by channel, as
//! `mappings/billing/rules.json` dates them). The counts and sums come from SQL;
//! this turns them into amounts, a `PaymentReconciliation` and CSV.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{from_cents, money};
use crate::fhir::meta::instant;
use crate::fhir::names;
use crate::mappings::BillingRules;

/// What SQL counted for one provider in the period, per channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counted {
    /// Tickets collected (refunds subtracted), in cents.
    pub collected_cents: BTreeMap<String, i64>,
    /// Bookings of its services made through each channel.
    pub bookings: BTreeMap<String, i64>,
    /// Payments (not refunds) of its services taken at each channel.
    pub tickets: BTreeMap<String, i64>,
}

/// One line of a settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `ticket`, `booking-fee` or `collection-fee`.
    pub kind: &'static str,
    pub channel: String,
    pub count: i64,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    pub provider: String,
    pub parts: Vec<Part>,
    /// Tickets collected for the provider's services.
    pub collected: Decimal,
    /// Fees owed to booking points.
    pub fees: Decimal,
    /// What the provider is settled: collected less fees.
    pub net: Decimal,
}

/// The settlement of `provider` from what was counted, with the fees in force on `day`.
pub fn settle(provider: &str, c: &Counted, rules: &BillingRules, day: NaiveDate) -> Settlement {
    let mut parts = Vec::new();
    for (channel, cents) in &c.collected_cents {
        let count = c.tickets.get(channel).copied().unwrap_or_default();
        parts.push(Part { kind: "ticket", channel: channel.clone(), count, amount: from_cents(*cents) });
    }
    for (channel, n) in &c.bookings {
        if let Some(fee) = rules.fee(channel, day).filter(|f| !f.per_booking.is_zero()) {
            parts.push(Part {
                kind: "booking-fee",
                channel: channel.clone(),
                count: *n,
                amount: fee.per_booking * Decimal::from(*n),
            });
        }
    }
    for (channel, n) in &c.tickets {
        if let Some(fee) = rules.fee(channel, day).filter(|f| !f.per_ticket.is_zero()) {
            parts.push(Part {
                kind: "collection-fee",
                channel: channel.clone(),
                count: *n,
                amount: fee.per_ticket * Decimal::from(*n),
            });
        }
    }
    let collected: Decimal = parts.iter().filter(|p| p.kind == "ticket").map(|p| p.amount).sum();
    let fees: Decimal = parts.iter().filter(|p| p.kind != "ticket").map(|p| p.amount).sum();
    Settlement { provider: provider.to_string(), parts, collected, fees, net: collected - fees }
}

/// The id of `provider`'s settlement of `period`.
pub fn reconciliation_id(provider: &str, period: &str) -> String {
    format!("settlement-{provider}-{period}")
}

/// The settlement as a `PaymentReconciliation` (identifier `<provider>/<period>`).
pub fn reconciliation(base: &str, period: &str, from: NaiveDate, to: NaiveDate, s: &Settlement, at_us: i64) -> Value {
    let detail: Vec<Value> = s
        .parts
        .iter()
        .map(|p| {
            json!({
                "extension": [
                    {"url": names::structure(base, "channel"), "valueCoding": {"system": names::channel_system(base), "code": p.channel}},
                    {"url": names::structure(base, "count"), "valueInteger": p.count},
                ],
                "type": {"coding": [{"system": format!("{base}/CodeSystem/settlement-line"), "code": p.kind}]},
                "payee": {"reference": format!("Organization/{}", s.provider)},
                "amount": money(if p.kind == "ticket" { p.amount } else { -p.amount }),
            })
        })
        .collect();
    let mut r = json!({
        "resourceType": "PaymentReconciliation",
        "id": reconciliation_id(&s.provider, period),
        "identifier": [{"system": names::sid(base, "settlement"), "value": format!("{}/{period}", s.provider)}],
        "status": "active",
        "period": {"start": from.to_string(), "end": to.to_string()},
        "created": instant(at_us),
        "paymentDate": to.to_string(),
        "paymentAmount": money(s.net),
        "requestor": {"reference": format!("Organization/{}", s.provider)},
        "disposition": format!(
            "Settlement {period} of {}: tickets collected {:.2} EUR, booking-point fees {:.2} EUR, net {:.2} EUR",
            s.provider, s.collected, s.fees, s.net
        ),
    });
    if !detail.is_empty() {
        r["detail"] = json!(detail);
    }
    r
}

/// All settlements of a period as CSV: one row per line, then one total per provider.
pub fn csv(period: &str, all: &[Settlement]) -> String {
    let mut out = String::from("period,provider,line,channel,count,amount_eur\n");
    for s in all {
        for p in &s.parts {
            let signed = if p.kind == "ticket" { p.amount } else { -p.amount };
            out.push_str(&format!("{period},{},{},{},{},{:.2}\n", s.provider, p.kind, p.channel, p.count, signed));
        }
        out.push_str(&format!("{period},{},net,,,{:.2}\n", s.provider, s.net));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pharmacies_are_paid_per_booking_and_per_ticket() {
        let rules = BillingRules::load(std::path::Path::new("mappings/billing/rules.json"), "b").expect("rules");
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        let c = Counted {
            collected_cents: [("pharmacy".to_string(), 7230), ("counter".to_string(), 3615)].into(),
            bookings: [("pharmacy".to_string(), 3), ("call-centre".to_string(), 5)].into(),
            tickets: [("pharmacy".to_string(), 2), ("counter".to_string(), 1)].into(),
        };
        let s = settle("asl3", &c, &rules, day);
        assert_eq!(s.collected.to_string(), "108.45");
        assert_eq!(s.fees.to_string(), "6.50", "3 × 1.50 + 2 × 1.00");
        assert_eq!(s.net.to_string(), "101.95");
        let text = csv("2026-10", &[s]);
        assert!(text.contains("2026-10,asl3,booking-fee,pharmacy,3,-4.50\n"), "{text}");
        assert!(text.contains("2026-10,asl3,net,,,101.95\n"), "{text}");
    }
}
