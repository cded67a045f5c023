//! Ticket payments: a payment point's PaymentNotice recorded against its ticket (its
//! row, its parts per provider, its line on the point's remittance of the day), a
//! refund's record, and the guard that keeps a recorded payment unchanged.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::access::Access;
use crate::billing::{self, from_cents, rome_day, to_cents};
use crate::fhir::names;
use crate::messaging::Event;
use crate::store::{current, current_seen, now_micros, Store, Stored, Tx};
use crate::Result;

use crate::billing::tickets::{unprocessable, Line, TicketRow};
use crate::store::value_of;

impl Store {
    /// `remittance-<point>-<day>` and its identifier, for a payment at `now`.
    pub(super) fn remittance_of(&self, point: &str, now: i64) -> (String, Value) {
        let day = rome_day(now).to_string();
        (
            format!("remittance-{point}-{day}"),
            json!({"system": names::sid(&self.settings().base, "remittance"), "value": format!("{point}/{day}")}),
        )
    }

    /// Records a payment (negative: a refund) of ticket `t`: its row, its parts per
    /// provider (so that each provider's shares are paid exactly), and its line on
    /// the point's remittance of the day, opened by the day's first payment.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_payment(
        &self,
        tx: &mut Tx,
        point: &str,
        reference: &str,
        notice: &str,
        t: &TicketRow,
        lines: &[Line],
        cents: i64,
        channel: &str,
        now: i64,
    ) -> Result<()> {
        let day = rome_day(now).to_string();
        sqlx::query(
            "INSERT INTO payments (point, reference, notice, invoice, amount_cents, channel, day, paid_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(point)
        .bind(reference)
        .bind(notice)
        .bind(&t.invoice)
        .bind(cents)
        .bind(channel)
        .bind(&day)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        // What each provider should have once this is recorded, less what it has.
        let mut target: BTreeMap<String, i64> = BTreeMap::new();
        for l in lines {
            *target.entry(l.facts.provider.clone()).or_default() += to_cents(l.facts.share);
        }
        let paid: Vec<(String, i64)> = sqlx::query_as(
            "SELECT provider, CAST(SUM(amount_cents) AS BIGINT) FROM payment_shares WHERE invoice = $1 GROUP BY provider",
        )
        .bind(&t.invoice)
        .fetch_all(&mut **tx)
        .await?;
        let mut parts: BTreeMap<String, i64> = target;
        for (provider, cents) in paid {
            *parts.entry(provider).or_default() -= cents;
        }
        // Rounding aside, the parts add up to the payment; any leftover goes to the largest.
        let gap = cents - parts.values().sum::<i64>();
        if gap != 0 {
            if let Some(largest) = parts.iter().max_by_key(|(_, c)| c.abs()).map(|(p, _)| p.clone()) {
                *parts.entry(largest).or_default() += gap;
            }
        }
        for (provider, part) in parts.into_iter().filter(|(_, c)| *c != 0) {
            sqlx::query("INSERT INTO payment_shares (notice, invoice, provider, amount_cents) VALUES ($1, $2, $3, $4)")
                .bind(notice)
                .bind(&t.invoice)
                .bind(&provider)
                .bind(part)
                .execute(&mut **tx)
                .await?;
        }
        let (rid, _) = self.remittance_of(point, now);
        let line = billing::payment_line(notice, &t.invoice, reference, from_cents(cents), now);
        let opened: Option<String> = sqlx::query_scalar(
            "INSERT INTO remittances (point, day, reconciliation) VALUES ($1, $2, $3) \
             ON CONFLICT (point, day) DO NOTHING RETURNING reconciliation",
        )
        .bind(point)
        .bind(&day)
        .bind(&rid)
        .fetch_optional(&mut **tx)
        .await?;
        let base = self.settings().base.clone();
        if opened.is_some() {
            let r = billing::remittance(&base, &rid, point, &day, vec![line], from_cents(cents), now);
            self.insert_new(tx, "PaymentReconciliation", r, &rid, "POST", Vec::new()).await?;
            return Ok(());
        }
        let Some(cur) = current(tx, self.dialect(), "PaymentReconciliation", &rid, true).await? else {
            return Err(anyhow::anyhow!("remittance {rid} is recorded but missing").into());
        };
        let mut r = value_of(Some(cur.clone()))?;
        let mut lines: Vec<Value> = r["detail"].as_array().cloned().unwrap_or_default();
        lines.push(line);
        let total: Decimal = lines.iter().filter_map(|l| billing::amount_of(&l["amount"])).sum();
        r = billing::remittance(&base, &rid, point, &day, lines, total, now);
        self.next_version(tx, &cur, "PUT", Some(r)).await?;
        Ok(())
    }

    /// A PaymentNotice about to be stored: when its `request` is a ticket's Invoice,
    /// the payment is checked and recorded (the point's reference once, the amount
    /// owed exactly, nothing on a cancelled or paid invoice) and the notice gets its
    /// remittance. `Some`: the same reference was recorded before, this is it.
    pub(crate) async fn payment_write(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        resource: &mut Value,
    ) -> Result<Option<Stored>> {
        let Some(invoice) = self.paid_invoice(tx, resource).await? else { return Ok(None) };
        let Some(t) = self.lock_ticket(tx, &invoice).await? else { return Ok(None) };
        let (point, channel, reference) = paid_at(access, resource)?;
        let known: Option<String> =
            sqlx::query_scalar("SELECT notice FROM payments WHERE point = $1 AND reference = $2")
                .bind(&point)
                .bind(&reference)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(n) = known {
            return current_seen(tx, self.dialect(), "PaymentNotice", &n).await;
        }
        let owed = owed_now(&t, &invoice, resource)?;
        let now = now_micros();
        let (rid, remittance_ref) = self.remittance_of(&point, now);
        if let Some(sent) = resource["payment"]["identifier"]["value"].as_str() {
            if Some(sent) != remittance_ref["value"].as_str() {
                return Err(unprocessable(
                    "PaymentNotice.payment",
                    format!("a payment of today at {point} goes to remittance {}, not {sent}", remittance_ref["value"]),
                ));
            }
        }
        resource["payment"] =
            json!({"reference": format!("PaymentReconciliation/{rid}"), "identifier": remittance_ref});
        if resource.get("provider").is_none() {
            resource["provider"] = json!({"reference": format!("Organization/{point}")});
        }
        resource["paymentDate"] = json!(rome_day(now).to_string());
        let lines = self.lines(tx, &invoice).await?;
        self.record_payment(tx, &point, &reference, id, &t, &lines, owed, &channel, now).await?;
        // Paid: the chase (if any) stops.
        let t = TicketRow { paid_cents: t.owed_cents, stage: None, ..t };
        self.reprice(tx, t, &format!("PaymentNotice/{id}")).await?;
        for l in &lines {
            self.charge_message(tx, Event::CHARGE_PAID, &l.facts.charge_item, None).await?;
        }
        Ok(None)
    }

    /// The Invoice a PaymentNotice pays: its `request` reference, or — for a channel
    /// that knows only the pagoPA notice — the ticket whose notice number or IUV is
    /// the `request` identifier (the reference is then filled in). Unknown notice → 422.
    async fn paid_invoice(&self, tx: &mut Tx, resource: &mut Value) -> Result<Option<String>> {
        if let Some(r) = resource["request"]["reference"].as_str() {
            return Ok(r.strip_prefix("Invoice/").map(str::to_string));
        }
        let base = &self.settings().base;
        let (system, value) =
            (&resource["request"]["identifier"]["system"], &resource["request"]["identifier"]["value"]);
        let column = match system.as_str() {
            Some(s) if *s == names::sid(base, "pagopa-notice") => "notice",
            Some(s) if *s == names::sid(base, "iuv") => "iuv",
            _ => return Ok(None),
        };
        let number = value.as_str().unwrap_or_default().to_string();
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
        resource["request"]["reference"] = json!(format!("Invoice/{invoice}"));
        Ok(Some(invoice))
    }

    /// A payment recorded against a ticket stays as it was: a mistake is mended by
    /// a refund, not by editing the notice.
    pub(crate) async fn recorded_payment_unchanged(&self, tx: &mut Tx, id: &str) -> Result<()> {
        let recorded: Option<String> = sqlx::query_scalar("SELECT invoice FROM payments WHERE notice = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        match recorded {
            Some(invoice) => Err(unprocessable(
                "PaymentNotice",
                format!(
                    "PaymentNotice/{id} is a payment recorded on Invoice/{invoice}: it cannot be changed or deleted"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The payment point, its channel and its own reference of the payment, as the
/// caller's token and `identifier[0]` give them.
fn paid_at(access: &Access, resource: &Value) -> Result<(String, String, String)> {
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
    let Some(reference) = resource["identifier"][0]["value"].as_str().map(str::to_string) else {
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
fn owed_now(t: &TicketRow, invoice: &str, resource: &Value) -> Result<i64> {
    let owed = t.owed_cents - t.paid_cents;
    if t.status == "cancelled" {
        return Err(unprocessable("PaymentNotice.request", format!("Invoice/{invoice} is cancelled: nothing is owed")));
    }
    if owed <= 0 {
        return Err(unprocessable("PaymentNotice.request", format!("Invoice/{invoice} is already paid")));
    }
    let amount = billing::amount_of(&resource["amount"]);
    if amount.map(to_cents) != Some(owed) || resource["amount"]["currency"].as_str().is_some_and(|c| c != "EUR") {
        return Err(unprocessable(
            "PaymentNotice.amount",
            format!(
                "Invoice/{invoice} owes {} EUR; the payment is {}: nothing was recorded",
                from_cents(owed),
                amount.map(|a| format!("{a} EUR")).unwrap_or_else(|| "without an amount".into())
            ),
        ));
    }
    Ok(owed)
}
