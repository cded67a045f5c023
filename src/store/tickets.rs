//! Tickets in the booking's own transaction: the ChargeItem of each booked service
//! and the Invoice of its prescription; payments, refunds and what a patient owes.
//!
//! The exact state lives in ordinary tables next to the resources (`tickets`,
//! `ticket_lines`, `payments`, `payment_shares`, `remittances`), amounts in cents;
//! the resources are rendered from it on every change. Writers of one prescription
//! serialise on its `tickets` row (a unique key, then a row lock on PostgreSQL;
//! SQLite has one writer); a payment reference is a unique key per payment point.
//! The amounts are decided by `crate::billing`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Row;

use super::{current, current_seen, new_id, now_micros, Bind, Dialect, Sql, Store, Stored, Tx};
use crate::access::Access;
use crate::billing::{self, from_cents, rome_day, to_cents, InvoiceFacts, LineFacts};
use crate::booking::rules::{self, AppointmentFacts};
use crate::error::Issue;
use crate::fhir::meta::{instant, parse_instant};
use crate::fhir::names;
use crate::messaging::Event;
use crate::{Error, Result};

const TICKET: &str = "SELECT invoice, nre, patient, notice, iuv, status, owed_cents, paid_cents, booked_us, stage \
                      FROM tickets WHERE invoice = $1";
const LINES: &str = "SELECT charge_item, appointment, request, code, provider, tariff_cents, share_cents, exemption, \
                     booking_code, missed FROM ticket_lines WHERE invoice = $1 AND billable = 1 ORDER BY booked_us, charge_item";

/// A ticket's row.
#[derive(Debug, Clone)]
pub(crate) struct TicketRow {
    pub invoice: String,
    pub nre: Option<String>,
    pub patient: String,
    pub notice: Option<String>,
    pub iuv: Option<String>,
    pub status: String,
    pub owed_cents: i64,
    pub paid_cents: i64,
    pub booked_us: i64,
    pub stage: Option<String>,
}

fn ticket_row(r: &sqlx::any::AnyRow) -> Result<TicketRow> {
    Ok(TicketRow {
        invoice: r.try_get("invoice")?,
        nre: r.try_get("nre")?,
        patient: r.try_get("patient")?,
        notice: r.try_get("notice")?,
        iuv: r.try_get("iuv")?,
        status: r.try_get("status")?,
        owed_cents: r.try_get("owed_cents")?,
        paid_cents: r.try_get("paid_cents")?,
        booked_us: r.try_get("booked_us")?,
        stage: r.try_get("stage")?,
    })
}

/// A line as the ticket is computed from it (with whether it was missed).
struct Line {
    facts: LineFacts,
    missed: bool,
}

fn unprocessable(expression: &str, diagnostics: impl Into<String>) -> Error {
    Error::Unprocessable(vec![Issue::error("business-rule", Some(expression.to_string()), diagnostics)])
}

fn body_of(s: Option<Stored>) -> Value {
    s.and_then(|s| s.body).and_then(|b| serde_json::from_str(&b).ok()).unwrap_or(Value::Null)
}

impl Store {
    /// The ticket line of a booking (the appointment's first `booked`, by a booking
    /// point): the ChargeItem of its service at the tariff in force today, and its
    /// prescription's Invoice created or repriced. A service without a tariff has no
    /// ticket (logged).
    pub(crate) async fn ticket_on_booking(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        appointment: &Value,
        slot: Option<&Value>,
    ) -> Result<()> {
        let base = self.settings.base.clone();
        let rules = self.settings.billing.clone();
        let a = AppointmentFacts::of(appointment, &base);
        let slot = match (slot, a.slots.first()) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => body_of(current_seen(tx, self.dialect, "Slot", s).await?),
            (None, None) => Value::Null,
        };
        let catalog = names::catalog_system(&base);
        let request = a.requests.first().cloned();
        let sr = match &request {
            Some(sr) => body_of(current_seen(tx, self.dialect, "ServiceRequest", sr).await?),
            None => Value::Null,
        };
        let nre = sr["requisition"]["value"].as_str().map(str::to_string);
        // The service prescribed, else the one booked, else the slot's.
        let code = rules::RequestFacts::of("", &sr, &base)
            .codes
            .iter()
            .chain(a.services.iter())
            .chain(rules::slot_services(&slot).iter())
            .find(|(s, _)| *s == catalog)
            .map(|(_, c)| c.clone());
        let Some(code) = code else { return Ok(()) };
        let now = now_micros();
        let day = rome_day(now);
        let Some((tariff, tariff_url)) = self.tariff_of(tx, &code, day).await? else {
            tracing::warn!(code, %day, appointment = id, "no tariff in force: the booking has no ticket");
            return Ok(());
        };
        let patient = appointment["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["actor"]["reference"].as_str())
            .find_map(|r| r.strip_prefix("Patient/"))
            .unwrap_or_default()
            .to_string();
        let provider = rules::extension(&slot, &names::structure(&base, "slot-provider"))
            .and_then(|e| e["valueReference"]["reference"].as_str())
            .and_then(|r| r.strip_prefix("Organization/"))
            .unwrap_or_default()
            .to_string();
        let codes = self.exemption_codes(tx, &patient, day).await?;
        let exemption = billing::exemption(&codes, &code, &rules, day);
        let prescription = nre.clone().unwrap_or_else(|| format!("Appointment/{id}"));
        let t = self.ticket_for(tx, &prescription, nre.as_deref(), &patient, now).await?;
        let (channel, point) = match access.actor() {
            Some(a) => (a.channel.clone().unwrap_or_else(|| a.role.as_str().to_string()), a.org.clone()),
            None => ("gateway".to_string(), None),
        };
        let line = LineFacts {
            charge_item: new_id(),
            appointment: id.to_string(),
            request,
            code,
            provider,
            tariff,
            share: Decimal::ZERO,
            exemption,
            booking_code: rules::booking_code(appointment, &base),
        };
        // A new ticket has this one line: priced now, it is stored with its share.
        let first = (t.status == "new").then(|| {
            let mut only =
                Line { facts: LineFacts { tariff: from_cents(to_cents(line.tariff)), ..line.clone() }, missed: false };
            if let Some(share) = self.priced(t.booked_us, std::slice::from_ref(&only)).shares.first() {
                only.facts.share = from_cents(to_cents(*share));
            }
            only
        });
        let text = |v: &Option<String>| v.clone().map_or(Bind::NullText, Bind::Text);
        // Written with its ChargeItem, in one statement.
        let line_row = Sql {
            text:
                "INSERT INTO ticket_lines (charge_item, invoice, appointment, request, code, provider, tariff_cents, \
                   share_cents, exemption, billable, missed, channel, point, booking_code, booked_us) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 0, $10, $11, $12, $13)"
                    .into(),
            binds: vec![
                Bind::Text(line.charge_item.clone()),
                Bind::Text(t.invoice.clone()),
                Bind::Text(id.to_string()),
                text(&line.request),
                Bind::Text(line.code.clone()),
                Bind::Text(line.provider.clone()),
                Bind::Int(to_cents(tariff)),
                Bind::Int(to_cents(first.as_ref().map_or(Decimal::ZERO, |l| l.facts.share))),
                text(&line.exemption),
                Bind::Text(channel.clone()),
                text(&point),
                text(&line.booking_code),
                Bind::Int(now),
            ],
        };
        let item = billing::charge_item(
            &base,
            &line,
            &t.patient,
            &tariff_url,
            appointment["start"].as_str(),
            now,
            &rules.exemptions.system,
        );
        self.insert_new(tx, "ChargeItem", item, &line.charge_item, "POST", vec![line_row]).await?;
        tx.line_written(id, &line.charge_item, &t.invoice);
        match first {
            // A ticket made by this booking has this one line, as just stored.
            Some(only) => self.reprice_lines(tx, t, id, vec![only]).await?,
            None => self.reprice(tx, t, id).await?,
        };
        // The appointment is being written: the message carries it as it will be stored.
        let mut booked = appointment.clone();
        booked["id"] = Value::String(id.to_string());
        self.charge_message(tx, Event::CHARGE_CREATED, &line.charge_item, Some(&booked)).await
    }

    /// The ticket row of `prescription`, created (with its pagoPA notice) by the
    /// first booking, else row-locked.
    async fn ticket_for(
        &self,
        tx: &mut Tx,
        prescription: &str,
        nre: Option<&str>,
        patient: &str,
        now: i64,
    ) -> Result<TicketRow> {
        let invoice = new_id();
        let seq: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tickets (invoice, prescription, nre, patient, status, owed_cents, paid_cents, booked_us) \
             VALUES ($1, $2, $3, $4, 'issued', 0, 0, $5) ON CONFLICT (prescription) DO NOTHING RETURNING seq",
        )
        .bind(&invoice)
        .bind(prescription)
        .bind(nre)
        .bind(patient)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(seq) = seq {
            // Its notice is written with its first pricing (`reprice_lines`), which a
            // new ticket always gets in this transaction.
            let n = billing::pagopa::notice(&self.settings.billing.pagopa, seq as u64);
            return Ok(TicketRow {
                invoice,
                nre: nre.map(str::to_string),
                patient: patient.to_string(),
                notice: Some(n.number),
                iuv: Some(n.iuv),
                status: "new".into(),
                owed_cents: 0,
                paid_cents: 0,
                booked_us: now,
                stage: None,
            });
        }
        let invoice: String = sqlx::query_scalar("SELECT invoice FROM tickets WHERE prescription = $1")
            .bind(prescription)
            .fetch_one(&mut **tx)
            .await?;
        self.lock_ticket(tx, &invoice).await?.ok_or_else(|| anyhow::anyhow!("ticket {invoice} vanished").into())
    }

    /// The ticket of Invoice `invoice`, row-locked; none when the Invoice is not a ticket.
    pub(crate) async fn lock_ticket(&self, tx: &mut Tx, invoice: &str) -> Result<Option<TicketRow>> {
        let sql = match self.dialect {
            Dialect::Postgres => format!("{TICKET} FOR UPDATE"),
            Dialect::Sqlite => TICKET.to_string(),
        };
        let row = sqlx::query(&sql).bind(invoice).fetch_optional(&mut **tx).await?;
        row.as_ref().map(ticket_row).transpose()
    }

    async fn lines(&self, tx: &mut Tx, invoice: &str) -> Result<Vec<Line>> {
        let rows = sqlx::query(LINES).bind(invoice).fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|r| {
                Ok(Line {
                    facts: LineFacts {
                        charge_item: r.try_get("charge_item")?,
                        appointment: r.try_get("appointment")?,
                        request: r.try_get("request")?,
                        code: r.try_get("code")?,
                        provider: r.try_get("provider")?,
                        tariff: from_cents(r.try_get("tariff_cents")?),
                        share: from_cents(r.try_get("share_cents")?),
                        exemption: r.try_get("exemption")?,
                        booking_code: r.try_get("booking_code")?,
                    },
                    missed: r.try_get::<i64, _>("missed")? != 0,
                })
            })
            .collect()
    }

    /// Recomputes ticket `t` from its billable lines under the rules of its day:
    /// each line's share, what is owed, a refund to the payment point when more was
    /// paid than is now owed (`cause` names it), the status, and the Invoice.
    async fn reprice(&self, tx: &mut Tx, t: TicketRow, cause: &str) -> Result<i64> {
        let lines = self.lines(tx, &t.invoice).await?;
        self.reprice_lines(tx, t, cause, lines).await
    }

    /// A ticket booked at `booked_us` with billable `lines`, priced under the rules of
    /// its day.
    fn priced(&self, booked_us: i64, lines: &[Line]) -> billing::Ticket {
        let rules = &self.settings.billing;
        let day = rome_day(booked_us);
        let missed_owed = rules.cancellation(day).is_some_and(|c| c.missed_charges_exempt);
        let computed: Vec<billing::Line> = lines
            .iter()
            .map(|l| billing::Line {
                provider: l.facts.provider.clone(),
                tariff: l.facts.tariff,
                exempt: l.facts.exemption.is_some() && !(l.missed && missed_owed),
            })
            .collect();
        billing::compute(&computed, rules.terms(day))
    }

    /// [`Store::reprice`] given the ticket's billable lines.
    async fn reprice_lines(&self, tx: &mut Tx, t: TicketRow, cause: &str, mut lines: Vec<Line>) -> Result<i64> {
        let ticket = self.priced(t.booked_us, &lines);
        for (l, share) in lines.iter_mut().zip(&ticket.shares) {
            if l.facts.share != *share {
                l.facts.share = *share;
                sqlx::query("UPDATE ticket_lines SET share_cents = $1 WHERE charge_item = $2")
                    .bind(to_cents(*share))
                    .bind(&l.facts.charge_item)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        let owed = to_cents(ticket.owed);
        let mut paid = t.paid_cents;
        let refunded = (paid - owed).max(0);
        if refunded > 0 {
            self.refund(tx, &t, &lines, refunded, cause).await?;
            paid = owed;
        }
        let status = if lines.is_empty() && paid == 0 {
            "cancelled"
        } else if owed <= paid {
            "balanced"
        } else {
            "issued"
        };
        let text = |v: &Option<String>| v.clone().map_or(Bind::NullText, Bind::Text);
        let row = Sql {
            text:
                "UPDATE tickets SET owed_cents = $1, paid_cents = $2, status = $3, stage = $4, notice = $5, iuv = $6 \
                   WHERE invoice = $7"
                    .into(),
            binds: vec![
                Bind::Int(owed),
                Bind::Int(paid),
                Bind::Text(status.into()),
                text(&t.stage),
                text(&t.notice),
                text(&t.iuv),
                Bind::Text(t.invoice.clone()),
            ],
        };
        // A new ticket's row goes with its Invoice, in one statement.
        let riders = if t.status == "new" {
            vec![row]
        } else {
            super::execute_all(tx, vec![row]).await?;
            Vec::new()
        };
        let facts = InvoiceFacts {
            id: t.invoice.clone(),
            patient: t.patient.clone(),
            nre: t.nre.clone(),
            notice: t.notice.clone().unwrap_or_default(),
            iuv: t.iuv.clone().unwrap_or_default(),
            status: status.to_string(),
            booked_us: t.booked_us,
            paid: from_cents(paid),
            stage: t.stage.clone(),
        };
        let line_facts: Vec<LineFacts> = lines.into_iter().map(|l| l.facts).collect();
        let body = billing::invoice(&self.settings.base, &facts, &line_facts, &ticket);
        if t.status == "new" {
            // A ticket made by this transaction: its Invoice (a new id) is not there yet.
            self.insert_new(tx, "Invoice", body, &t.invoice, "POST", riders).await?;
        } else {
            self.write_owned(tx, "Invoice", &t.invoice, body).await?;
        }
        Ok(refunded)
    }

    /// Writes the gateway's own resource `res_type/id`: a new version, or the first.
    pub(crate) async fn write_owned(&self, tx: &mut Tx, res_type: &str, id: &str, body: Value) -> Result<()> {
        match current(tx, self.dialect, res_type, id, true).await? {
            Some(cur) => {
                self.next_version(tx, &cur, "PUT", Some(body)).await?;
            }
            None => {
                self.insert_new(tx, res_type, body, id, "POST", Vec::new()).await?;
            }
        }
        Ok(())
    }

    /// The tariff of catalog `code` in force on `day`: its amount and canonical URL.
    pub(crate) async fn tariff_of(
        &self,
        tx: &mut Tx,
        code: &str,
        day: chrono::NaiveDate,
    ) -> Result<Option<(Decimal, String)>> {
        let system = names::catalog_system(&self.settings.base);
        let found = self.with_token(tx, "ChargeItemDefinition", "identifier", &system, code).await?;
        let day = day.to_string();
        for stored in found {
            let cid = body_of(Some(stored));
            let period = &cid["effectivePeriod"];
            let starts = period["start"].as_str().is_none_or(|s| s.get(..10).unwrap_or(s) <= day.as_str());
            let ends = period["end"].as_str().is_none_or(|e| e.get(..10).unwrap_or(e) >= day.as_str());
            if !(starts && ends) {
                continue;
            }
            let base = cid["propertyGroup"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["priceComponent"].as_array().into_iter().flatten())
                .find(|p| p["type"] == "base")
                .and_then(|p| billing::amount_of(&p["amount"]));
            if let Some(amount) = base {
                return Ok(Some((amount, cid["url"].as_str().unwrap_or_default().to_string())));
            }
        }
        Ok(None)
    }

    /// The exemption codes on `patient`'s active Coverages in force on `day`.
    pub(crate) async fn exemption_codes(
        &self,
        tx: &mut Tx,
        patient: &str,
        day: chrono::NaiveDate,
    ) -> Result<Vec<String>> {
        if patient.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.with_reference(tx, "Coverage", "beneficiary", ("Patient", patient)).await?;
        let system = self.settings.billing.exemptions.system.clone();
        let day = day.to_string();
        let mut codes = Vec::new();
        for stored in found {
            let c = body_of(Some(stored));
            if c["status"] != "active" {
                continue;
            }
            let p = &c["period"];
            let starts = p["start"].as_str().is_none_or(|s| s.get(..10).unwrap_or(s) <= day.as_str());
            let ends = p["end"].as_str().is_none_or(|e| e.get(..10).unwrap_or(e) >= day.as_str());
            if !(starts && ends) {
                continue;
            }
            for coding in c["type"]["coding"].as_array().into_iter().flatten() {
                if coding["system"].as_str() == Some(system.as_str()) {
                    if let Some(code) = coding["code"].as_str() {
                        codes.push(code.to_string());
                    }
                }
            }
        }
        Ok(codes)
    }

    /// A booked appointment changed status (`new` is its body; `None`: deleted):
    /// a cancellation in time, or by its provider, frees its ticket line; a late
    /// one, or a no-show, keeps it owed (also by an exempt patient where the rule
    /// says so); a service performed or missed starts the credit-recovery clock.
    pub(crate) async fn ticket_on_change(
        &self,
        tx: &mut Tx,
        access: &Access,
        id: &str,
        new: Option<&Value>,
    ) -> Result<()> {
        let status = new.and_then(|n| n["status"].as_str()).unwrap_or("deleted").to_string();
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
        let start = new.and_then(|n| n["start"].as_str()).and_then(parse_instant);
        for (charge_item, invoice) in found {
            let Some(t) = self.lock_ticket(tx, &invoice).await? else { continue };
            let day = rome_day(t.booked_us);
            let late = match (status.as_str(), start) {
                ("cancelled", Some(start)) => {
                    let by_booking_side = !access.is_privileged()
                        && access.actor().is_some_and(|a| a.role != crate::auth::Role::Provider);
                    let rescheduled =
                        new.and_then(|n| n["cancelationReason"]["text"].as_str()) == Some(crate::booking::RESCHEDULED);
                    let notice = self.settings.billing.cancellation(day).map(|c| c.notice_hours);
                    by_booking_side && !rescheduled && notice.is_some_and(|h| start - now < h * 3_600_000_000)
                }
                _ => false,
            };
            let performed_or_missed =
                late || matches!(status.as_str(), "noshow" | "fulfilled" | "arrived" | "checked-in");
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
                    if let Some(cur) = current(tx, self.dialect, "ChargeItem", &charge_item, true).await? {
                        let mut body = body_of(Some(cur.clone()));
                        body["status"] = json!("not-billable");
                        self.next_version(tx, &cur, "PUT", Some(body)).await?;
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
            if self.reprice(tx, t, &format!("Appointment/{id}")).await? > 0 {
                self.charge_message(tx, Event::CHARGE_REFUNDED, &charge_item, None).await?;
            }
        }
        Ok(())
    }

    /// Gives back `cents` of ticket `t` to the payment point that took its last
    /// payment: a negative PaymentNotice on that point's remittance of today.
    async fn refund(&self, tx: &mut Tx, t: &TicketRow, lines: &[Line], cents: i64, cause: &str) -> Result<()> {
        let last: Option<(String, String, String)> = sqlx::query_as(
            "SELECT point, channel, notice FROM payments WHERE invoice = $1 AND amount_cents > 0 \
             ORDER BY paid_us DESC LIMIT 1",
        )
        .bind(&t.invoice)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((point, channel, paid_by)) = last else { return Ok(()) };
        let original = body_of(current_seen(tx, self.dialect, "PaymentNotice", &paid_by).await?);
        let now = now_micros();
        let id = new_id();
        let reference = format!("refund/{id}");
        let amount = -from_cents(cents);
        let (rid, remittance_ref) = self.remittance_of(&point, now);
        let notice = json!({
            "resourceType": "PaymentNotice",
            "id": id,
            "identifier": [{"system": names::sid(&self.settings.base, "refund"), "value": reference}],
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
        self.insert_new(tx, "PaymentNotice", notice, &id, "POST", Vec::new()).await?;
        self.record_payment(tx, &point, &reference, &id, t, lines, -cents, &channel, now).await
    }

    /// `remittance-<point>-<day>` and its identifier, for a payment at `now`.
    fn remittance_of(&self, point: &str, now: i64) -> (String, Value) {
        let day = rome_day(now).to_string();
        (
            format!("remittance-{point}-{day}"),
            json!({"system": names::sid(&self.settings.base, "remittance"), "value": format!("{point}/{day}")}),
        )
    }

    /// Records a payment (negative: a refund) of ticket `t`: its row, its parts per
    /// provider (so that each provider's shares are paid exactly), and its line on
    /// the point's remittance of the day, opened by the day's first payment.
    #[allow(clippy::too_many_arguments)]
    async fn record_payment(
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
        let base = self.settings.base.clone();
        if opened.is_some() {
            let r = billing::remittance(&base, &rid, point, &day, vec![line], from_cents(cents), now);
            self.insert_new(tx, "PaymentReconciliation", r, &rid, "POST", Vec::new()).await?;
            return Ok(());
        }
        let Some(cur) = current(tx, self.dialect, "PaymentReconciliation", &rid, true).await? else {
            return Err(anyhow::anyhow!("remittance {rid} is recorded but missing").into());
        };
        let mut r = body_of(Some(cur.clone()));
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
        let Some(actor) = access.actor() else {
            return Err(unprocessable(
                "PaymentNotice",
                "a ticket is paid at a payment point: its token names the point",
            ));
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
        let known: Option<String> =
            sqlx::query_scalar("SELECT notice FROM payments WHERE point = $1 AND reference = $2")
                .bind(&point)
                .bind(&reference)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(n) = known {
            return current_seen(tx, self.dialect, "PaymentNotice", &n).await;
        }
        let owed = t.owed_cents - t.paid_cents;
        if t.status == "cancelled" {
            return Err(unprocessable(
                "PaymentNotice.request",
                format!("Invoice/{invoice} is cancelled: nothing is owed"),
            ));
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
        let base = &self.settings.base;
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

    /// What `patient` owes: each unpaid invoice and its amount, in booking order.
    pub async fn outstanding(&self, patient: &str) -> Result<Vec<(String, Decimal, Option<String>)>> {
        let mut c = self.conn().await?;
        let r: std::result::Result<Vec<(String, i64, Option<String>)>, sqlx::Error> = sqlx::query_as(
            "SELECT invoice, owed_cents - paid_cents, notice FROM tickets WHERE patient = $1 AND status = 'issued' \
             AND owed_cents > paid_cents ORDER BY booked_us",
        )
        .bind(patient)
        .fetch_all(&mut *c)
        .await;
        let rows = c.done(r)?;
        Ok(rows.into_iter().map(|(i, c, n)| (i, from_cents(c), n)).collect())
    }

    /// The Invoice of the ticket appointment `id` is on, if it has one.
    pub(crate) async fn invoice_of(&self, tx: &mut Tx, id: &str) -> Result<Option<Value>> {
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
            Some(i) => Ok(Some(body_of(current_seen(tx, self.dialect, "Invoice", &i).await?))),
            None => Ok(None),
        }
    }

    /// What a settlement of `[from_us, to_us)` counts, per provider: tickets
    /// collected (refunds subtracted) and payments by channel of payment, bookings
    /// by channel of booking.
    pub(crate) async fn settlement_counts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<(BTreeMap<String, billing::settlement::Counted>, i64)> {
        let mut c = self.conn().await?;
        let r = async {
            let collected: Vec<(String, String, i64, i64)> = sqlx::query_as(
                "SELECT s.provider, p.channel, CAST(SUM(s.amount_cents) AS BIGINT), \
                 CAST(SUM(CASE WHEN p.amount_cents > 0 THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM payments p JOIN payment_shares s ON s.notice = p.notice \
                 WHERE p.paid_us >= $1 AND p.paid_us < $2 GROUP BY s.provider, p.channel",
            )
            .bind(from_us)
            .bind(to_us)
            .fetch_all(&mut *c)
            .await?;
            let bookings: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT provider, channel, CAST(COUNT(*) AS BIGINT) FROM ticket_lines \
                 WHERE booked_us >= $1 AND booked_us < $2 GROUP BY provider, channel",
            )
            .bind(from_us)
            .bind(to_us)
            .fetch_all(&mut *c)
            .await?;
            let total: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(SUM(amount_cents) AS BIGINT) FROM payments WHERE paid_us >= $1 AND paid_us < $2",
            )
            .bind(from_us)
            .bind(to_us)
            .fetch_one(&mut *c)
            .await?;
            Ok::<_, sqlx::Error>((collected, bookings, total.unwrap_or_default()))
        }
        .await;
        let (collected, bookings, total) = c.done(r)?;
        let mut out: BTreeMap<String, billing::settlement::Counted> = BTreeMap::new();
        for (provider, channel, cents, payments) in collected {
            let e = out.entry(provider).or_default();
            e.collected_cents.insert(channel.clone(), cents);
            if payments > 0 {
                e.tickets.insert(channel, payments);
            }
        }
        for (provider, channel, n) in bookings {
            out.entry(provider).or_default().bookings.insert(channel, n);
        }
        Ok((out, total))
    }

    /// Unpaid tickets whose service was performed or missed before `cutoff_us`,
    /// with their recovery stage and when it was reached.
    pub(crate) async fn overdue(&self, cutoff_us: i64) -> Result<Vec<(String, Option<String>, Option<i64>)>> {
        let mut c = self.conn().await?;
        let r = sqlx::query_as(
            "SELECT invoice, stage, stage_us FROM tickets WHERE status = 'issued' AND owed_cents > paid_cents \
             AND service_us IS NOT NULL AND service_us < $1 ORDER BY service_us, invoice",
        )
        .bind(cutoff_us)
        .fetch_all(&mut *c)
        .await;
        c.done(r)
    }

    /// Moves ticket `invoice` to recovery `stage` at `at_us` (if it is still unpaid
    /// and at `from` stage), writing `notice` (a Communication) when given, and
    /// re-renders its Invoice. Whether it moved.
    pub(crate) async fn advance_recovery(
        &self,
        invoice: &str,
        from: Option<&str>,
        stage: &str,
        at_us: i64,
        notice: Option<Value>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some(t) = self.lock_ticket(&mut tx, invoice).await? else { return Ok(false) };
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
            self.insert_new(&mut tx, "Communication", n, &id, "POST", Vec::new()).await?;
        }
        let t = TicketRow { stage: Some(stage.to_string()), ..t };
        self.reprice(&mut tx, t, "recovery").await?;
        tx.commit().await?;
        Ok(true)
    }
}
