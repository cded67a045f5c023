//! The billing operations: `ChargeItemDefinition/$apply` (a price without a
//! booking), `Patient/{id}/$outstanding`, the printed receipt, the settlement of a
//! month and the credit-recovery run. Each reads and writes through the store;
//! the amounts and stages are decided by the plain functions of this module.

use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::settlement::{self, Settlement};
use super::views::Invoice;
use super::{compute, exemption, ledger, money, receipt, refunds, reprice, tariffs, Line, Ticket};
use crate::access::Access;
use crate::fhir::meta::instant;
use crate::fhir::names;
use crate::store::{now_micros, Store};
use crate::{Error, Result};

/// `$apply`: the tariffs of `codes` on `day` and what `patient` (with their
/// exemptions) would owe for them as one prescription. Nothing is stored.
pub async fn apply(store: &Store, codes: &[String], patient: Option<&str>, day: NaiveDate) -> Result<Value> {
    let rules = store.settings().billing.clone();
    let base = store.settings().base.clone();
    let mut tx = store.begin().await?;
    let exemptions = match patient {
        Some(p) => tariffs::exemption_codes(store, &mut tx, p, day).await?,
        None => Vec::new(),
    };
    let mut lines = Vec::new();
    let mut parts = Vec::new();
    for code in codes {
        let Some((tariff, url)) = tariffs::tariff_of(store, &mut tx, code, day).await? else {
            return Err(Error::Unprocessable(vec![crate::error::Issue::error(
                "not-found",
                Some("code".into()),
                format!("catalog code {code} has no tariff in force on {day}: check the code or import the catalog"),
            )]));
        };
        let exempt = exemption(&exemptions, code, &rules, day);
        let mut part = vec![
            json!({"name": "code", "valueCoding": {"system": names::catalog_system(&base), "code": code}}),
            json!({"name": "definition", "valueCanonical": url}),
            json!({"name": "tariff", "valueMoney": money(tariff)}),
        ];
        if let Some(e) = &exempt {
            part.push(json!({"name": "exemption", "valueCoding": {"system": rules.exemptions.system, "code": e}}));
        }
        lines.push(Line { provider: String::new(), tariff, exempt: exempt.is_some() });
        parts.push(part);
    }
    drop(tx);
    Ok(applied(day, parts, &compute(&lines, rules.terms(day))))
}

/// `$apply`'s answer: the day, each service's `parts` with what is owed for it,
/// and the ticket's totals.
fn applied(day: NaiveDate, parts: Vec<Vec<Value>>, t: &Ticket) -> Value {
    let mut parameter = vec![json!({"name": "date", "valueDate": day.to_string()})];
    for (mut part, share) in parts.into_iter().zip(&t.shares) {
        part.push(json!({"name": "owed", "valueMoney": money(*share)}));
        parameter.push(json!({"name": "service", "part": part}));
    }
    parameter.push(json!({"name": "gross", "valueMoney": money(t.gross)}));
    parameter.push(json!({"name": "quota", "valueMoney": money(t.quota)}));
    parameter.push(json!({"name": "owed", "valueMoney": money(t.owed)}));
    json!({"resourceType": "Parameters", "parameter": parameter})
}

/// `Patient/{id}/$outstanding`: what the patient owes over all invoices.
pub async fn outstanding(store: &Store, access: &Access, patient: &str) -> Result<Value> {
    if store.read(access, "Patient", patient).await?.is_none() {
        return Err(Error::NotFound(format!("Patient/{patient} is not known")));
    }
    let owed = ledger::outstanding(store, patient).await?;
    let total: Decimal = owed.iter().map(|(_, d, _)| *d).sum();
    let mut parameter = vec![
        json!({"name": "patient", "valueReference": {"reference": format!("Patient/{patient}")}}),
        json!({"name": "total", "valueMoney": money(total)}),
    ];
    for (invoice, amount, notice) in owed {
        let mut part = vec![
            json!({"name": "invoice", "valueReference": {"reference": format!("Invoice/{invoice}")}}),
            json!({"name": "amount", "valueMoney": money(amount)}),
        ];
        if let Some(n) = notice {
            part.push(json!({"name": "notice", "valueString": n}));
        }
        parameter.push(json!({"name": "invoice", "part": part}));
    }
    Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
}

/// The printed receipt of `invoice` (a stored Invoice), with the catalog's names.
pub async fn receipt_of(store: &Store, invoice: &Value) -> Result<String> {
    let mut tx = store.begin().await?;
    let facts = crate::booking::catalog_facts(store, &mut tx).await?;
    drop(tx);
    let display = |code: &str| facts.get(code).map(|f| f.display.clone()).unwrap_or_default();
    Ok(receipt(&Invoice::of(invoice), display))
}

/// A month `YYYY-MM` as its first day, the first day of the next, and the
/// instants (Europe/Rome) between which it runs.
pub fn month(period: &str) -> Option<(NaiveDate, NaiveDate, i64, i64)> {
    let shaped = period.len() == 7
        && period.bytes().enumerate().all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return None;
    }
    let first = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)?.and_local_timezone(chrono_tz::Europe::Rome).earliest().map(|t| t.timestamp_micros())
    };
    Some((first, next, at(first)?, at(next)?))
}

/// The settlement of month `period` with every provider, stored as one
/// `PaymentReconciliation` each (a rerun makes a new version), with the total of
/// the period's payments they reconcile to.
pub async fn settle(store: &Store, period: &str) -> Result<(Vec<(Settlement, Value)>, Decimal)> {
    let (first, next, from_us, to_us) = month(period).ok_or_else(|| {
        Error::invalid("value", Some("period".into()), format!("period={period} is not a month like 2026-10"))
    })?;
    let rules = store.settings().billing.clone();
    let base = store.settings().base.clone();
    let (counted, total_cents) = ledger::settlement_counts(store, from_us, to_us).await?;
    let now = now_micros();
    let last = next.pred_opt().unwrap_or(first);
    let mut out = Vec::new();
    let mut tx = store.begin().await?;
    for (provider, c) in counted {
        let s = settlement::settle(&provider, &c, &rules, first);
        let r = settlement::reconciliation(&base, period, first, last, &s, now);
        let id = settlement::reconciliation_id(&s.provider, period);
        reprice::write_owned(store, &mut tx, "PaymentReconciliation", &id, r.clone()).await?;
        out.push((s, r));
    }
    tx.commit().await?;
    Ok((out, super::from_cents(total_cents)))
}

/// The Communication of recovery notice `number` (stage `stage`) about `invoice`,
/// sent at `now`.
fn recovery_notice(base: &str, invoice: &str, stage: &str, number: i32, now: i64) -> Value {
    json!({
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": format!("{base}/CodeSystem/recovery-stage"), "code": stage}]}],
        "about": [{"reference": format!("Invoice/{invoice}")}],
        "sent": instant(now),
        "payload": [{"contentString": format!(
            "Notice {number}: the ticket of Invoice/{invoice} is unpaid. Pay it at any payment point with its pagoPA notice number."
        )}],
    })
}

/// One step a credit-recovery run took.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryStep {
    pub invoice: String,
    pub stage: String,
}

/// The credit-recovery run as of `day`: each unpaid ticket whose service was
/// performed or missed more than the rule's days before moves one stage —
/// first notice, second notice (each a Communication about the Invoice), then
/// collection — when its time has come.
pub async fn recover(store: &Store, day: NaiveDate) -> Result<Vec<RecoveryStep>> {
    let rules = store.settings().billing.clone();
    let Some(r) = rules.recovery(day).cloned() else {
        tracing::warn!(%day, "no credit-recovery rule in force: nothing to do");
        return Ok(Vec::new());
    };
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(chrono_tz::Europe::Rome).earliest())
            .map(|t| t.timestamp_micros())
            .unwrap_or_default()
    };
    // Runs for a day act at that day's noon: a run for today acts now.
    let today = crate::billing::rome_day(now_micros());
    let now = if day == today { now_micros() } else { at(day) + 12 * 3_600_000_000 };
    let cutoff = at(day - Duration::days(r.overdue_days)) + 24 * 3_600_000_000;
    let due = ledger::overdue(store, cutoff).await?;
    let total = due.len();
    let mut steps = Vec::new();
    for (i, (invoice, stage, stage_us)) in due.into_iter().enumerate() {
        let since = |days: i64| stage_us.is_some_and(|s| now - s >= days * 86_400_000_000);
        let next = match stage.as_deref() {
            None => Some(("first-notice", 1)),
            Some("first-notice") if since(r.second_notice_days) => Some(("second-notice", 2)),
            Some("second-notice") if since(r.collection_days) => Some(("collection", 0)),
            _ => None,
        };
        let Some((next, notice_no)) = next else { continue };
        let notice = (notice_no > 0).then(|| recovery_notice(&store.settings().base, &invoice, next, notice_no, now));
        if refunds::advance_recovery(store, &invoice, stage.as_deref(), next, now, notice).await? {
            steps.push(RecoveryStep { invoice, stage: next.to_string() });
        }
        if (i + 1) % 1000 == 0 {
            tracing::info!(done = i + 1, total, "credit recovery");
        }
    }
    tracing::info!(overdue = total, moved = steps.len(), %day, "credit recovery done");
    Ok(steps)
}
