//! The ticket of one prescription: what the patient owes for its booked services,
//! and how that is shared between the providers. Plain functions over decimals.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::mappings::billing::TicketTerms;

/// One booked service of a prescription.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The provider organisation performing it (settlement is per provider).
    pub provider: String,
    /// The tariff in force on its booking date.
    pub tariff: Decimal,
    /// Zeroed by an exemption.
    pub exempt: bool,
}

/// What a prescription costs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ticket {
    /// The sum of the tariffs.
    pub gross: Decimal,
    /// The sum of the tariffs not exempted.
    pub chargeable: Decimal,
    /// The fixed quota added (zero when nothing is chargeable).
    pub quota: Decimal,
    /// What the patient owes: the chargeable sum up to the cap, plus the quota.
    pub owed: Decimal,
    /// Each line's part of `owed`, in the order of the lines; they add up to `owed`.
    pub shares: Vec<Decimal>,
}

/// Euros to the cent, half up.
pub fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The ticket of `lines` under `terms` (none: every chargeable tariff in full).
pub fn compute(lines: &[Line], terms: Option<&TicketTerms>) -> Ticket {
    let gross: Decimal = lines.iter().map(|l| l.tariff).sum();
    let chargeable: Decimal = lines.iter().filter(|l| !l.exempt).map(|l| l.tariff).sum();
    let capped = match terms.and_then(|t| t.cap_per_prescription) {
        Some(cap) => chargeable.min(cap),
        None => chargeable,
    };
    let quota = match terms {
        Some(t) if chargeable > Decimal::ZERO => t.quota_per_prescription,
        _ => Decimal::ZERO,
    };
    let owed = cents(capped + quota);
    let shares = shares_by_provider(owed, lines);
    Ticket { gross: cents(gross), chargeable: cents(chargeable), quota, owed, shares }
}

/// `owed` shared between the providers in proportion to their chargeable tariffs,
/// then within each provider between its lines the same way.
fn shares_by_provider(owed: Decimal, lines: &[Line]) -> Vec<Decimal> {
    let weight = |l: &Line| if l.exempt { Decimal::ZERO } else { l.tariff };
    let mut providers: Vec<&str> = Vec::new();
    for l in lines {
        if !providers.contains(&l.provider.as_str()) {
            providers.push(&l.provider);
        }
    }
    let totals: Vec<Decimal> =
        providers.iter().map(|p| lines.iter().filter(|l| l.provider == *p).map(weight).sum()).collect();
    let per_provider = share(owed, &totals);
    let mut out = vec![Decimal::ZERO; lines.len()];
    for (p, amount) in providers.iter().zip(per_provider) {
        let idx: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].provider == *p).collect();
        let weights: Vec<Decimal> = idx.iter().map(|i| weight(&lines[*i])).collect();
        for (i, s) in idx.into_iter().zip(share(amount, &weights)) {
            out[i] = s;
        }
    }
    out
}

/// `total` shared in proportion to `weights`, each part rounded to the cent half
/// up, and what rounding left over (a cent or so, either way) given to the largest
/// part (the first of equal ones), so that the parts add up to `total` exactly.
pub fn share(total: Decimal, weights: &[Decimal]) -> Vec<Decimal> {
    let sum: Decimal = weights.iter().sum();
    let mut out: Vec<Decimal> = if sum.is_zero() {
        vec![Decimal::ZERO; weights.len()]
    } else {
        weights.iter().map(|w| cents(total * *w / sum)).collect()
    };
    let rest = total - out.iter().sum::<Decimal>();
    if !rest.is_zero() {
        let largest = (0..out.len()).fold(None, |best: Option<usize>, i| match best {
            Some(b) if out[b] >= out[i] => Some(b),
            _ => Some(i),
        });
        if let Some(i) = largest {
            out[i] += rest;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn line(provider: &str, tariff: &str, exempt: bool) -> Line {
        Line { provider: provider.into(), tariff: d(tariff), exempt }
    }

    fn terms(cap: &str, quota: &str) -> TicketTerms {
        TicketTerms { source: None, cap_per_prescription: Some(d(cap)), quota_per_prescription: d(quota) }
    }

    #[test]
    fn three_services_are_capped_at_36_15() {
        let lines = [line("a", "20.66", false), line("a", "43.90", false), line("a", "11.62", false)];
        let t = compute(&lines, Some(&terms("36.15", "0")));
        assert_eq!((t.gross, t.owed), (d("76.18"), d("36.15")));
        assert_eq!(t.shares.iter().sum::<Decimal>(), d("36.15"));
        // 36.15 × 20.66 / 76.18 = 9.804…, × 43.90 / 76.18 = 20.831…, × 11.62 / 76.18 = 5.514…
        assert_eq!(t.shares, vec![d("9.80"), d("20.84"), d("5.51")], "the leftover cent goes to the largest");
    }

    #[test]
    fn the_quota_is_added_only_to_what_is_owed() {
        let t = compute(&[line("a", "11.62", false)], Some(&terms("36.15", "10.00")));
        assert_eq!(t.owed, d("21.62"));
        let exempt = compute(&[line("a", "11.62", true)], Some(&terms("36.15", "10.00")));
        assert_eq!((exempt.owed, exempt.gross, exempt.shares.clone()), (d("0"), d("11.62"), vec![d("0")]));
    }

    #[test]
    fn a_condition_exemption_zeroes_only_its_services() {
        let lines = [line("a", "20.66", true), line("a", "11.62", false)];
        let t = compute(&lines, Some(&terms("36.15", "0")));
        assert_eq!(t.owed, d("11.62"));
        assert_eq!(t.shares, vec![d("0"), d("11.62")]);
    }

    #[test]
    fn providers_share_the_capped_ticket_by_their_tariffs() {
        // Provider a: 61.97; provider b: 20.66 + 11.62 = 32.28. 36.15 × 61.97 / 94.25
        // = 23.769… → 23.77; × 32.28 / 94.25 = 12.380… → 12.38: 36.15 exactly.
        let lines = [line("a", "61.97", false), line("b", "20.66", false), line("b", "11.62", false)];
        let t = compute(&lines, Some(&terms("36.15", "0")));
        assert_eq!(t.shares[0], d("23.77"));
        assert_eq!(t.shares[1] + t.shares[2], d("12.38"));
        assert_eq!(t.shares.iter().sum::<Decimal>(), t.owed);
    }

    #[test]
    fn shares_always_add_up() {
        assert_eq!(share(d("10.00"), &[d("1"), d("1"), d("1")]), vec![d("3.34"), d("3.33"), d("3.33")]);
        assert_eq!(
            share(d("0.01"), &[d("1"), d("1")]),
            vec![d("0.00"), d("0.01")],
            "both round up: the largest gives back"
        );
        assert_eq!(share(d("5"), &[d("0"), d("0")]), vec![d("5"), d("0")], "no weight: the first takes it");
        assert!(share(d("5"), &[]).is_empty());
        for total in ["36.15", "0.07", "99.99"] {
            let parts = share(d(total), &[d("3"), d("7"), d("11"), d("13")]);
            assert_eq!(parts.iter().sum::<Decimal>(), d(total));
        }
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(cents(d("0.125")), d("0.13"));
        assert_eq!(cents(d("0.135")), d("0.14"));
        assert_eq!(cents(d("2.004")), d("2.00"));
    }
}
