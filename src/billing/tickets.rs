//! Tickets in the booking's own transaction: the ChargeItem of each booked service
//! and the Invoice of its prescription; payments, refunds and what a patient owes.
//!
//! The exact state lives in ordinary tables next to the resources (`tickets`,
//! `ticket_lines`, `payments`, `payment_shares`, `remittances`), amounts in cents;
//! the resources are rendered from it on every change. Writers of one prescription
//! serialise on its `tickets` row (a unique key, then a row lock on PostgreSQL;
//! SQLite has one writer); a payment reference is a unique key per payment point.
//! The amounts are decided by `crate::billing`.

use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::Row;

use crate::access::Access;
use crate::billing::{self, from_cents, rome_day, to_cents, InvoiceFacts, LineFacts};
use crate::booking::rules::{self, AppointmentFacts};
use crate::error::Issue;
use crate::fhir::meta::{instant, parse_instant};
use crate::fhir::names;
use crate::messaging::Event;
use crate::store::value_of;
use crate::store::{current, current_seen, new_id, now_micros, Bind, Dialect, Sql, Store, Tx};
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
pub(super) struct Line {
    pub(super) facts: LineFacts,
    pub(super) missed: bool,
}

pub(super) fn unprocessable(expression: &str, diagnostics: impl Into<String>) -> Error {
    Error::Unprocessable(vec![Issue::error("business-rule", Some(expression.to_string()), diagnostics)])
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
        let base = self.settings().base.clone();
        let rules = self.settings().billing.clone();
        let Some(service) = self.booked_service(tx, appointment, slot).await? else { return Ok(()) };
        let BookedService { slot, request, nre, code } = service;
        let now = now_micros();
        let day = rome_day(now);
        let patient = appointment["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["actor"]["reference"].as_str())
            .find_map(|r| r.strip_prefix("Patient/"))
            .unwrap_or_default()
            .to_string();
        let (tariff, codes) = self.tariff_and_exemptions(tx, &code, &patient, day).await?;
        let Some((tariff, tariff_url)) = tariff else {
            tracing::warn!(code, %day, appointment = id, "no tariff in force: the booking has no ticket");
            return Ok(());
        };
        let provider = rules::extension(&slot, &names::structure(&base, "slot-provider"))
            .and_then(|e| e["valueReference"]["reference"].as_str())
            .and_then(|r| r.strip_prefix("Organization/"))
            .unwrap_or_default()
            .to_string();
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
        // Written with its ChargeItem, in one statement.
        let share = first.as_ref().map_or(Decimal::ZERO, |l| l.facts.share);
        let line_row = line_row(&t.invoice, id, &line, share, (&channel, point.as_deref()), now);
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

    /// What a booking bills: its slot, prescription (id and NRE) and catalog code —
    /// the service prescribed, else the one booked, else the slot's; `None` without one.
    async fn booked_service(
        &self,
        tx: &mut Tx,
        appointment: &Value,
        slot: Option<&Value>,
    ) -> Result<Option<BookedService>> {
        let base = self.settings().base.clone();
        let a = AppointmentFacts::of(appointment, &base);
        let slot = match (slot, a.slots.first()) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => value_of(current_seen(tx, self.dialect(), "Slot", s).await?)?,
            (None, None) => Value::Null,
        };
        let catalog = names::catalog_system(&base);
        let request = a.requests.first().cloned();
        let sr = match &request {
            Some(sr) => value_of(current_seen(tx, self.dialect(), "ServiceRequest", sr).await?)?,
            None => Value::Null,
        };
        let nre = sr["requisition"]["value"].as_str().map(str::to_string);
        let code = rules::RequestFacts::of("", &sr, &base)
            .codes
            .iter()
            .chain(a.services.iter())
            .chain(rules::slot_services(&slot).iter())
            .find(|(s, _)| *s == catalog)
            .map(|(_, c)| c.clone());
        Ok(code.map(|code| BookedService { slot, request, nre, code }))
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
            let n = billing::pagopa::notice(&self.settings().billing.pagopa, seq as u64);
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
        let sql = match self.dialect() {
            Dialect::Postgres => format!("{TICKET} FOR UPDATE"),
            Dialect::Sqlite => TICKET.to_string(),
        };
        let row = sqlx::query(&sql).bind(invoice).fetch_optional(&mut **tx).await?;
        row.as_ref().map(ticket_row).transpose()
    }

    pub(super) async fn lines(&self, tx: &mut Tx, invoice: &str) -> Result<Vec<Line>> {
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
    pub(super) async fn reprice(&self, tx: &mut Tx, t: TicketRow, cause: &str) -> Result<i64> {
        let lines = self.lines(tx, &t.invoice).await?;
        self.reprice_lines(tx, t, cause, lines).await
    }

    /// A ticket booked at `booked_us` with billable `lines`, priced under the rules of
    /// its day.
    fn priced(&self, booked_us: i64, lines: &[Line]) -> billing::Ticket {
        let rules = &self.settings().billing;
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
        let row = Sql {
            text:
                "UPDATE tickets SET owed_cents = $1, paid_cents = $2, status = $3, stage = $4, notice = $5, iuv = $6 \
                   WHERE invoice = $7"
                    .into(),
            binds: vec![
                Bind::Int(owed),
                Bind::Int(paid),
                Bind::Text(status.into()),
                Bind::text_or_null(t.stage.clone()),
                Bind::text_or_null(t.notice.clone()),
                Bind::text_or_null(t.iuv.clone()),
                Bind::Text(t.invoice.clone()),
            ],
        };
        // A new ticket's row goes with its Invoice, in one statement.
        let riders = if t.status == "new" {
            vec![row]
        } else {
            crate::store::execute_all(tx, vec![row]).await?;
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
        let body = billing::invoice(&self.settings().base, &facts, &line_facts, &ticket);
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
        match current(tx, self.dialect(), res_type, id, true).await? {
            Some(cur) => {
                self.next_version(tx, &cur, "PUT", Some(body)).await?;
            }
            None => {
                self.insert_new(tx, res_type, body, id, "POST", Vec::new()).await?;
            }
        }
        Ok(())
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
                    let notice = self.settings().billing.cancellation(day).map(|c| c.notice_hours);
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
                    if let Some(cur) = current(tx, self.dialect(), "ChargeItem", &charge_item, true).await? {
                        let mut body = value_of(Some(cur.clone()))?;
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
        let original = value_of(current_seen(tx, self.dialect(), "PaymentNotice", &paid_by).await?)?;
        let now = now_micros();
        let id = new_id();
        let reference = format!("refund/{id}");
        let amount = -from_cents(cents);
        let (rid, remittance_ref) = self.remittance_of(&point, now);
        let notice = json!({
            "resourceType": "PaymentNotice",
            "id": id,
            "identifier": [{"system": names::sid(&self.settings().base, "refund"), "value": reference}],
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
            Some(i) => Ok(Some(value_of(current_seen(tx, self.dialect(), "Invoice", &i).await?)?)),
            None => Ok(None),
        }
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

/// What a booking bills (see `Store::booked_service`).
struct BookedService {
    slot: Value,
    request: Option<String>,
    nre: Option<String>,
    code: String,
}

/// The `ticket_lines` row of `line` on `invoice`, for appointment `id`; `by` is the
/// channel and point that booked.
fn line_row(invoice: &str, id: &str, line: &LineFacts, share: Decimal, by: (&str, Option<&str>), now: i64) -> Sql {
    Sql {
        text: "INSERT INTO ticket_lines (charge_item, invoice, appointment, request, code, provider, tariff_cents, \
               share_cents, exemption, billable, missed, channel, point, booking_code, booked_us) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 0, $10, $11, $12, $13)"
            .into(),
        binds: vec![
            Bind::Text(line.charge_item.clone()),
            Bind::Text(invoice.to_string()),
            Bind::Text(id.to_string()),
            Bind::text_or_null(line.request.clone()),
            Bind::Text(line.code.clone()),
            Bind::Text(line.provider.clone()),
            Bind::Int(to_cents(line.tariff)),
            Bind::Int(to_cents(share)),
            Bind::text_or_null(line.exemption.clone()),
            Bind::Text(by.0.to_string()),
            Bind::text_or_null(by.1.map(str::to_string)),
            Bind::text_or_null(line.booking_code.clone()),
            Bind::Int(now),
        ],
    }
}
