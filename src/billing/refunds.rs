//! What a change of a booked appointment does to its ticket: a cancellation in
//! time frees its line and refunds what was paid for it, a late one or a no-show
//! keeps it owed, a service performed or missed starts the credit-recovery clock;
//! and the recovery's stages. The ticket's rows are `tickets`' (see `tickets.rs`).

use serde_json::{json, Value};

use super::tickets::{self, Line, TicketRow};
use super::{payments, reprice};
use crate::access::Access;
use crate::billing::{self, from_cents, rome_day};
use crate::booking::views::Appointment;
use crate::fhir::meta::instant;
use crate::fhir::names;
use crate::messaging::{self, Event};
use crate::store::value_of;
use crate::store::{current, current_seen, new_id, now_micros, Store, Tx};
use crate::Result;

/// A booked appointment changed status (`new` is its body; `None`: deleted):
/// a cancellation in time, or by its provider, frees its ticket line; a late
/// one, or a no-show, keeps it owed (also by an exempt patient where the rule
/// says so); a service performed or missed starts the credit-recovery clock.
pub(crate) async fn ticket_on_change(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    new: Option<&Appointment>,
) -> Result<()> {
    let status = new.map_or("deleted", |n| n.status.as_str()).to_string();
    if !["cancelled", "entered-in-error", "deleted", "noshow", "fulfilled", "arrived", "checked-in"]
        .contains(&status.as_str())
    {
        return Ok(());
    }
    let found: Vec<(String, String)> =
        sqlx::query_as("SELECT charge_item, invoice FROM ticket_lines WHERE appointment = $1 AND billable = 1")
            .bind(id)
            .fetch_all(&mut **tx)
            .await?;
    if found.is_empty() {
        return Ok(());
    }
    let now = now_micros();
    let start = new.and_then(|n| n.start_us);
    for (charge_item, invoice) in found {
        let Some(t) = tickets::lock_ticket(store, tx, &invoice).await? else { continue };
        let day = rome_day(t.booked_us);
        let late = match (status.as_str(), start) {
            ("cancelled", Some(start)) => {
                let by_booking_side =
                    !access.is_privileged() && access.actor().is_some_and(|a| a.role != crate::auth::Role::Provider);
                let rescheduled = new.and_then(|n| n.cancel_reason.as_deref()) == Some(crate::booking::RESCHEDULED);
                let notice = store.settings().billing.cancellation(day).map(|c| c.notice_hours);
                by_booking_side && !rescheduled && notice.is_some_and(|h| start - now < h * 3_600_000_000)
            }
            _ => false,
        };
        let performed_or_missed = late || matches!(status.as_str(), "noshow" | "fulfilled" | "arrived" | "checked-in");
        if performed_or_missed {
            sqlx::query("UPDATE tickets SET service_us = $1 WHERE invoice = $2")
                .bind(start.unwrap_or(now))
                .bind(&invoice)
                .execute(&mut **tx)
                .await?;
        }
        match status.as_str() {
            "cancelled" | "entered-in-error" | "deleted" if !late => {
                sqlx::query("UPDATE ticket_lines SET billable = 0 WHERE charge_item = $1")
                    .bind(&charge_item)
                    .execute(&mut **tx)
                    .await?;
                if let Some(cur) = current(tx, store.dialect(), "ChargeItem", &charge_item, true).await? {
                    let mut body = value_of(Some(cur.clone()))?;
                    body["status"] = json!("not-billable");
                    store.next_version(tx, &cur, "PUT", Some(body)).await?;
                }
            }
            "cancelled" | "noshow" => {
                sqlx::query("UPDATE ticket_lines SET missed = 1 WHERE charge_item = $1")
                    .bind(&charge_item)
                    .execute(&mut **tx)
                    .await?;
            }
            _ => continue,
        }
        if reprice::reprice(store, tx, t, &format!("Appointment/{id}")).await? > 0 {
            messaging::charge_message(store, tx, Event::CHARGE_REFUNDED, &charge_item, None).await?;
        }
    }
    Ok(())
}

/// Gives back `cents` of ticket `t` to the payment point that took its last
/// payment: a negative PaymentNotice on that point's remittance of today.
pub(super) async fn refund(
    store: &Store,
    tx: &mut Tx,
    t: &TicketRow,
    lines: &[Line],
    cents: i64,
    cause: &str,
) -> Result<()> {
    let last: Option<(String, String, String)> = sqlx::query_as(
        "SELECT point, channel, notice FROM payments WHERE invoice = $1 AND amount_cents > 0 \
         ORDER BY paid_us DESC LIMIT 1",
    )
    .bind(&t.invoice)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((point, channel, paid_by)) = last else { return Ok(()) };
    let original = value_of(current_seen(tx, store.dialect(), "PaymentNotice", &paid_by).await?)?;
    let now = now_micros();
    let id = new_id();
    let reference = format!("refund/{id}");
    let amount = -from_cents(cents);
    let (rid, remittance_ref) = payments::remittance_of(store, &point, now);
    let notice = json!({
        "resourceType": "PaymentNotice",
        "id": id,
        "identifier": [{"system": names::sid(&store.settings().base, "refund"), "value": reference}],
        "status": "active",
        "request": {"reference": format!("Invoice/{}", t.invoice)},
        "response": {"reference": format!("PaymentNotice/{paid_by}")},
        "created": instant(now),
        "provider": {"reference": format!("Organization/{point}")},
        "payment": {"reference": format!("PaymentReconciliation/{rid}"), "identifier": remittance_ref},
        "paymentDate": rome_day(now).to_string(),
        "recipient": original["recipient"].clone(),
        "amount": billing::money(amount),
        "paymentStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/paymentstatus", "code": "paid"}],
                          "text": format!("refund: {cause}")},
    });
    store.insert_new(tx, "PaymentNotice", notice, &id, "POST", Vec::new()).await?;
    let payment = super::payments::Payment {
        point: &point,
        reference: &reference,
        channel: &channel,
        notice: &id,
        cents: -cents,
        now,
    };
    payments::record_payment(store, tx, &payment, t, lines).await
}

/// The Invoice of the ticket appointment `id` is on, if it has one.
pub(crate) async fn invoice_of(store: &Store, tx: &mut Tx, id: &str) -> Result<Option<Value>> {
    let invoice: Option<String> = match tx.lines_of_fresh(id) {
        Some(lines) => lines.last().map(|(_, invoice)| invoice.clone()),
        None => {
            sqlx::query_scalar(
                "SELECT invoice FROM ticket_lines WHERE appointment = $1 ORDER BY booked_us DESC LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    match invoice {
        Some(i) => Ok(Some(value_of(current_seen(tx, store.dialect(), "Invoice", &i).await?)?)),
        None => Ok(None),
    }
}

/// Moves ticket `invoice` to recovery `stage` at `at_us` (if it is still unpaid
/// and at `from` stage), writing `notice` (a Communication) when given, and
/// re-renders its Invoice. Whether it moved.
pub(crate) async fn advance_recovery(
    store: &Store,
    invoice: &str,
    from: Option<&str>,
    stage: &str,
    at_us: i64,
    notice: Option<Value>,
) -> Result<bool> {
    let mut tx = store.begin().await?;
    let Some(t) = tickets::lock_ticket(store, &mut tx, invoice).await? else { return Ok(false) };
    if t.status != "issued" || t.owed_cents <= t.paid_cents || t.stage.as_deref() != from {
        return Ok(false);
    }
    sqlx::query("UPDATE tickets SET stage_us = $1 WHERE invoice = $2")
        .bind(at_us)
        .bind(invoice)
        .execute(&mut *tx)
        .await?;
    if let Some(mut n) = notice {
        let id = new_id();
        n["id"] = json!(id);
        n["subject"] = json!({"reference": format!("Patient/{}", t.patient)});
        n["recipient"] = json!([{"reference": format!("Patient/{}", t.patient)}]);
        store.insert_new(&mut tx, "Communication", n, &id, "POST", Vec::new()).await?;
    }
    let t = TicketRow { stage: Some(stage.to_string()), ..t };
    reprice::reprice(store, &mut tx, t, "recovery").await?;
    tx.commit().await?;
    Ok(true)
}
