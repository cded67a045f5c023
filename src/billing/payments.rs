//! Ticket payments: a payment point's PaymentNotice recorded against its ticket (its
//! row, its parts per provider, its line on the point's remittance of the day), a
//! refund's record, and the guard that keeps a recorded payment unchanged.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::reprice;
use super::views::{Identifier, Money, PaymentNotice, PaymentNoticeMut, Remittance};
use crate::access::Access;
use crate::billing::{self, from_cents, rome_day, to_cents};
use crate::fhir::names;
use crate::messaging::{self, Event};
use crate::store::{current, current_seen, now_micros, Store, Stored, Tx};
use crate::Result;

use crate::billing::tickets::{self, unprocessable, Line, TicketRow};
use crate::store::value_of;

/// A payment (negative: a refund) of a ticket, as it is recorded.
pub(super) struct Payment<'a> {
    /// The payment point that took it, its own reference of it, and its channel.
    pub point: &'a str,
    pub reference: &'a str,
    pub channel: &'a str,
    /// The PaymentNotice recording it.
    pub notice: &'a str,
    pub cents: i64,
    /// When it was taken (microseconds): its day is its remittance's.
    pub now: i64,
}

/// `remittance-<point>-<day>` and its identifier, for a payment at `now`.
pub(super) fn remittance_of(store: &Store, point: &str, now: i64) -> (String, Identifier) {
    let day = rome_day(now).to_string();
    let identifier = Identifier {
        system: Some(names::sid(&store.settings().base, "remittance")),
        value: Some(format!("{point}/{day}")),
    };
    (format!("remittance-{point}-{day}"), identifier)
}

/// Records payment `p` of ticket `t`: its row, its parts per provider (so that
/// each provider's shares are paid exactly), and its line on the point's
/// remittance of the day, opened by the day's first payment.
pub(super) async fn record_payment(
    store: &Store,
    tx: &mut Tx,
    p: &Payment<'_>,
    t: &TicketRow,
    lines: &[Line],
) -> Result<()> {
    let day = rome_day(p.now).to_string();
    sqlx::query(
        "INSERT INTO payments (point, reference, notice, invoice, amount_cents, channel, day, paid_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(p.point)
    .bind(p.reference)
    .bind(p.notice)
    .bind(&t.invoice)
    .bind(p.cents)
    .bind(p.channel)
    .bind(&day)
    .bind(p.now)
    .execute(&mut **tx)
    .await?;
    let paid: Vec<(String, i64)> = sqlx::query_as(
        "SELECT provider, CAST(SUM(amount_cents) AS BIGINT) FROM payment_shares WHERE invoice = $1 GROUP BY provider",
    )
    .bind(&t.invoice)
    .fetch_all(&mut **tx)
    .await?;
    for (provider, part) in parts(lines, paid, p.cents) {
        sqlx::query("INSERT INTO payment_shares (notice, invoice, provider, amount_cents) VALUES ($1, $2, $3, $4)")
            .bind(p.notice)
            .bind(&t.invoice)
            .bind(&provider)
            .bind(part)
            .execute(&mut **tx)
            .await?;
    }
    add_to_remittance(store, tx, p, &t.invoice, &day).await
}

/// Payment `p` of `invoice` as a line of its point's remittance of `day`, which
/// the day's first payment opens.
async fn add_to_remittance(store: &Store, tx: &mut Tx, p: &Payment<'_>, invoice: &str, day: &str) -> Result<()> {
    let (rid, _) = remittance_of(store, p.point, p.now);
    let line = billing::payment_line(p.notice, invoice, p.reference, from_cents(p.cents), p.now);
    let opened: Option<String> = sqlx::query_scalar(
        "INSERT INTO remittances (point, day, reconciliation) VALUES ($1, $2, $3) \
         ON CONFLICT (point, day) DO NOTHING RETURNING reconciliation",
    )
    .bind(p.point)
    .bind(day)
    .bind(&rid)
    .fetch_optional(&mut **tx)
    .await?;
    let base = store.settings().base.clone();
    if opened.is_some() {
        let r = billing::remittance(&base, &rid, p.point, day, vec![line], from_cents(p.cents), p.now);
        store.insert_new(tx, "PaymentReconciliation", r, &rid, "POST", Vec::new()).await?;
        return Ok(());
    }
    let Some(cur) = current(tx, store.dialect(), "PaymentReconciliation", &rid, true).await? else {
        return Err(anyhow::anyhow!("remittance {rid} is recorded but missing").into());
    };
    let Remittance { mut lines, total } = Remittance::of(&value_of(Some(cur.clone()))?);
    lines.push(line);
    let r = billing::remittance(&base, &rid, p.point, day, lines, total + from_cents(p.cents), p.now);
    store.next_version(tx, &cur, "PUT", Some(r)).await?;
    Ok(())
}

/// A PaymentNotice about to be stored: when its `request` is a ticket's Invoice,
/// the payment is checked and recorded (the point's reference once, the amount
/// owed exactly, nothing on a cancelled or paid invoice) and the notice gets its
/// remittance. `Some`: the same reference was recorded before, this is it.
pub(crate) async fn payment_write(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    resource: &mut Value,
) -> Result<Option<Stored>> {
    let notice = PaymentNotice::of(resource);
    let Some(invoice) = paid_invoice(store, tx, &notice).await? else { return Ok(None) };
    if notice.request.reference.is_none() {
        // Found by its pagoPA notice: the reference is filled in.
        PaymentNoticeMut(resource).set_request_invoice(&invoice);
    }
    let Some(t) = tickets::lock_ticket(store, tx, &invoice).await? else { return Ok(None) };
    let (point, channel, reference) = paid_at(access, &notice)?;
    let known: Option<String> = sqlx::query_scalar("SELECT notice FROM payments WHERE point = $1 AND reference = $2")
        .bind(&point)
        .bind(&reference)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(n) = known {
        return current_seen(tx, store.dialect(), "PaymentNotice", &n).await;
    }
    let owed = owed_now(&t, &invoice, &notice.amount)?;
    let now = now_micros();
    to_remittance(store, &notice, PaymentNoticeMut(resource), &point, now)?;
    let lines = tickets::lines(tx, &invoice).await?;
    let payment = Payment { point: &point, reference: &reference, channel: &channel, notice: id, cents: owed, now };
    record_payment(store, tx, &payment, &t, &lines).await?;
    // Paid: the chase (if any) stops.
    let t = TicketRow { paid_cents: t.owed_cents, stage: None, ..t };
    reprice::reprice(store, tx, t, &format!("PaymentNotice/{id}")).await?;
    for l in &lines {
        messaging::charge_message(store, tx, Event::CHARGE_PAID, &l.facts.charge_item, None).await?;
    }
    Ok(None)
}

/// The notice of a payment taken at `point` at `now` goes to the point's
/// remittance of the day (naming another is refused), has the point as its
/// provider unless it names one, and is dated.
fn to_remittance(
    store: &Store,
    notice: &PaymentNotice,
    mut out: PaymentNoticeMut<'_>,
    point: &str,
    now: i64,
) -> Result<()> {
    let (rid, remittance) = remittance_of(store, point, now);
    if let Some(sent) = notice.payment.identifier.value.as_deref() {
        if Some(sent) != remittance.value.as_deref() {
            return Err(unprocessable(
                "PaymentNotice.payment",
                format!("a payment of today at {point} goes to remittance {}, not {sent}", json!(remittance.value)),
            ));
        }
    }
    out.set_remittance(&rid, &remittance);
    if notice.provider.is_none() {
        out.set_provider(point);
    }
    out.set_payment_date(rome_day(now));
    Ok(())
}

/// The Invoice a PaymentNotice pays: its `request` reference, or — for a channel
/// that knows only the pagoPA notice — the ticket whose notice number or IUV is
/// the `request` identifier. Unknown notice → 422.
async fn paid_invoice(store: &Store, tx: &mut Tx, notice: &PaymentNotice) -> Result<Option<String>> {
    if let Some(r) = &notice.request.reference {
        return Ok(r.strip_prefix("Invoice/").map(str::to_string));
    }
    let base = &store.settings().base;
    let identifier = &notice.request.identifier;
    let column = match identifier.system.as_deref() {
        Some(s) if s == names::sid(base, "pagopa-notice") => "notice",
        Some(s) if s == names::sid(base, "iuv") => "iuv",
        _ => return Ok(None),
    };
    let number = identifier.value.clone().unwrap_or_default();
    let found: Option<String> = sqlx::query_scalar(&format!("SELECT invoice FROM tickets WHERE {column} = $1"))
        .bind(&number)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(invoice) = found else {
        return Err(unprocessable(
            "PaymentNotice.request.identifier",
            format!("no ticket has the pagoPA {column} {number:?}: check the number on the notice"),
        ));
    };
    Ok(Some(invoice))
}

/// A payment recorded against a ticket stays as it was: a mistake is mended by
/// a refund, not by editing the notice.
pub(crate) async fn recorded_payment_unchanged(tx: &mut Tx, id: &str) -> Result<()> {
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT invoice FROM payments WHERE notice = $1").bind(id).fetch_optional(&mut **tx).await?;
    match recorded {
        Some(invoice) => Err(unprocessable(
            "PaymentNotice",
            format!("PaymentNotice/{id} is a payment recorded on Invoice/{invoice}: it cannot be changed or deleted"),
        )),
        None => Ok(()),
    }
}

/// The payment point, its channel and its own reference of the payment, as the
/// caller's token and `identifier[0]` give them.
fn paid_at(access: &Access, notice: &PaymentNotice) -> Result<(String, String, String)> {
    let Some(actor) = access.actor() else {
        return Err(unprocessable("PaymentNotice", "a ticket is paid at a payment point: its token names the point"));
    };
    let Some(point) = actor.org.clone() else {
        return Err(unprocessable(
            "PaymentNotice",
            "a ticket is paid at a payment point: the caller's token names no organisation (claim org)",
        ));
    };
    let channel = actor.channel.clone().unwrap_or_else(|| actor.role.as_str().to_string());
    let Some(reference) = notice.reference.clone() else {
        return Err(unprocessable(
            "PaymentNotice.identifier",
            "the payment point's own reference of this payment is required (identifier[0].value): it makes a retry safe",
        ));
    };
    // The reference is a key of an index, which holds a bounded text.
    let length = reference.chars().count();
    if length > cupola_search::INDEXED_CHARS {
        return Err(unprocessable(
            "PaymentNotice.identifier[0].value",
            format!(
                "the payment point's reference is {length} characters long; it may be {} at most",
                cupola_search::INDEXED_CHARS
            ),
        ));
    }
    Ok((point, channel, reference))
}

/// What ticket `t` (of `invoice`) still owes, which the payment must be exactly.
fn owed_now(t: &TicketRow, invoice: &str, amount: &Money) -> Result<i64> {
    let owed = t.owed_cents - t.paid_cents;
    if t.status == "cancelled" {
        return Err(unprocessable("PaymentNotice.request", format!("Invoice/{invoice} is cancelled: nothing is owed")));
    }
    if owed <= 0 {
        return Err(unprocessable("PaymentNotice.request", format!("Invoice/{invoice} is already paid")));
    }
    if amount.value.map(to_cents) != Some(owed) || amount.currency.as_deref().is_some_and(|c| c != "EUR") {
        return Err(unprocessable(
            "PaymentNotice.amount",
            format!(
                "Invoice/{invoice} owes {} EUR; the payment is {}: nothing was recorded",
                from_cents(owed),
                amount.value.map(|a| format!("{a} EUR")).unwrap_or_else(|| "without an amount".into())
            ),
        ));
    }
    Ok(owed)
}

/// A payment of `cents` split between the providers of `lines`: what each should
/// have once it is recorded (its shares) less what it was `paid` already, any
/// rounding leftover to the largest part; the parts that are not zero.
fn parts(lines: &[Line], paid: Vec<(String, i64)>, cents: i64) -> Vec<(String, i64)> {
    let mut parts: BTreeMap<String, i64> = BTreeMap::new();
    for l in lines {
        *parts.entry(l.facts.provider.clone()).or_default() += to_cents(l.facts.share);
    }
    for (provider, c) in paid {
        *parts.entry(provider).or_default() -= c;
    }
    let gap = cents - parts.values().sum::<i64>();
    if gap != 0 {
        if let Some(largest) = parts.iter().max_by_key(|(_, c)| c.abs()).map(|(p, _)| p.clone()) {
            *parts.entry(largest).or_default() += gap;
        }
    }
    parts.into_iter().filter(|(_, c)| *c != 0).collect()
}
