//! What a cancellation would do to the appointment's ticket, read from the ticket
//! before and after `$cancel` ran in a transaction that was rolled back: the refund
//! rule itself stays in `crate::billing` (one rule, not a copy that could differ).

use rust_decimal::Decimal;

use super::ops::CancelPreview;
use crate::billing::views::Invoice;

/// The refund rule's outcome, for `$cancel?preview=true`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelEffect {
    /// `refund`, `freed` (the line freed, nothing paid to give back), `kept` (the
    /// ticket stays owed: a late cancellation), `nothing-owed` or `no-ticket`.
    pub outcome: &'static str,
    pub refund: Decimal,
    pub owed_before: Option<Decimal>,
    pub owed_after: Option<Decimal>,
    pub paid_before: Option<Decimal>,
    /// Why, in plain words.
    pub detail: String,
}

impl CancelPreview {
    /// The outcome, in the refund rule's terms.
    pub fn effect(&self) -> CancelEffect {
        let (Some(before), Some(after)) = (&self.before, &self.after) else {
            return CancelEffect {
                outcome: "no-ticket",
                refund: Decimal::ZERO,
                owed_before: None,
                owed_after: None,
                paid_before: None,
                detail: "no ticket is on this appointment: nothing is owed or given back".into(),
            };
        };
        let (b, a) = (Invoice::of(before), Invoice::of(after));
        let zero = Decimal::ZERO;
        let refund = (b.paid.unwrap_or(zero) - a.paid.unwrap_or(zero)).max(zero);
        let freed = a.net.unwrap_or(zero) < b.net.unwrap_or(zero);
        let (outcome, detail) = if refund > zero {
            (
                "refund",
                format!("cancelled in time: the ticket line is freed and {refund} EUR already paid is given back"),
            )
        } else if freed {
            ("freed", "cancelled in time: the ticket line is freed; nothing was paid, nothing to give back".to_string())
        } else if a.net.unwrap_or(zero) <= zero && b.net.unwrap_or(zero) <= zero {
            ("nothing-owed", "nothing is owed on this ticket (exempt or free), before or after".to_string())
        } else {
            let when =
                self.notice_hours.map_or(String::new(), |h| format!(" less than {h} hours before the appointment"));
            ("kept", format!("a cancellation{when}: the ticket stays owed, nothing is given back"))
        };
        CancelEffect { outcome, refund, owed_before: b.net, owed_after: a.net, paid_before: b.paid, detail }
    }
}
