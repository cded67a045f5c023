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
use serde_json::Value;
use sqlx::Row;

use super::{reprice, tariffs};
use crate::access::Access;
use crate::billing::{self, from_cents, rome_day, to_cents, LineFacts};
use crate::booking::views::{Appointment, AppointmentMut, Prescription, Slot};
use crate::error::Issue;
use crate::fhir::names;
use crate::messaging::{self, Event};
use crate::store::value_of;
use crate::store::{current_seen, new_id, now_micros, Bind, Dialect, Sql, Store, Tx};
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

/// The ticket line of a booking (the appointment's first `booked`, by a booking
/// point): the ChargeItem of its service at the tariff in force today, and its
/// prescription's Invoice created or repriced. A service without a tariff has no
/// ticket (logged).
pub(crate) async fn ticket_on_booking(
    store: &Store,
    tx: &mut Tx,
    access: &Access,
    id: &str,
    (appointment, body): (&Appointment, &Value),
    slot: Option<&Slot>,
) -> Result<()> {
    let base = store.settings().base.clone();
    let rules = store.settings().billing.clone();
    let Some(service) = booked_service(store, tx, appointment, slot).await? else { return Ok(()) };
    let BookedService { slot, request, nre, code } = service;
    let now = now_micros();
    let day = rome_day(now);
    let patient = appointment.patient.clone().unwrap_or_default();
    let (tariff, codes) = tariffs::tariff_and_exemptions(store, tx, &code, &patient, day).await?;
    let Some((tariff, tariff_url)) = tariff else {
        tracing::warn!(code, %day, appointment = id, "no tariff in force: the booking has no ticket");
        return Ok(());
    };
    let provider = slot.provider.unwrap_or_default();
    let exemption = billing::exemption(&codes, &code, &rules, day);
    let prescription = nre.clone().unwrap_or_else(|| format!("Appointment/{id}"));
    let t = ticket_for(store, tx, &prescription, nre.as_deref(), &patient, now).await?;
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
        booking_code: appointment.booking_code.clone(),
    };
    // A new ticket has this one line: priced now, it is stored with its share.
    let first = (t.status == "new").then(|| {
        let mut only =
            Line { facts: LineFacts { tariff: from_cents(to_cents(line.tariff)), ..line.clone() }, missed: false };
        if let Some(share) = reprice::priced(store, t.booked_us, std::slice::from_ref(&only)).shares.first() {
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
        &billing::ChargeFacts {
            patient: &t.patient,
            tariff_url: &tariff_url,
            occurrence: appointment.start.as_deref(),
            entered_us: now,
            exemption_system: &rules.exemptions.system,
        },
    );
    store.insert_new(tx, "ChargeItem", item, &line.charge_item, "POST", vec![line_row]).await?;
    tx.line_written(id, &line.charge_item, &t.invoice);
    match first {
        // A ticket made by this booking has this one line, as just stored.
        Some(only) => reprice::reprice_lines(store, tx, t, id, vec![only]).await?,
        None => reprice::reprice(store, tx, t, id).await?,
    };
    // The appointment is being written: the message carries it as it will be stored.
    let mut booked = body.clone();
    AppointmentMut::new(&mut booked, &base)?.set_id(id);
    messaging::charge_message(store, tx, Event::CHARGE_CREATED, &line.charge_item, Some(&booked)).await
}

/// What a booking bills: its slot, prescription (id and NRE) and catalog code —
/// the service prescribed, else the one booked, else the slot's; `None` without one.
async fn booked_service(
    store: &Store,
    tx: &mut Tx,
    a: &Appointment,
    slot: Option<&Slot>,
) -> Result<Option<BookedService>> {
    let base = store.settings().base.clone();
    let slot = match (slot, a.slots.first()) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => Slot::of(s, &value_of(current_seen(tx, store.dialect(), "Slot", s).await?)?, &base)?,
        (None, None) => Slot::default(),
    };
    let catalog = names::catalog_system(&base);
    let request = a.requests.first().cloned();
    let sr = match &request {
        Some(sr) => {
            Prescription::of(sr, &value_of(current_seen(tx, store.dialect(), "ServiceRequest", sr).await?)?, &base)?
        }
        None => Prescription::default(),
    };
    let nre = sr.number().map(str::to_string);
    let code = sr
        .codes
        .iter()
        .chain(a.services.iter())
        .chain(slot.services.iter())
        .find(|(s, _)| *s == catalog)
        .map(|(_, c)| c.clone());
    Ok(code.map(|code| BookedService { slot, request, nre, code }))
}

/// The ticket row of `prescription`, created (with its pagoPA notice) by the
/// first booking, else row-locked.
async fn ticket_for(
    store: &Store,
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
        let n = billing::pagopa::notice(&store.settings().billing.pagopa, seq as u64);
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
    lock_ticket(store, tx, &invoice).await?.ok_or_else(|| anyhow::anyhow!("ticket {invoice} vanished").into())
}

/// The ticket of Invoice `invoice`, row-locked; none when the Invoice is not a ticket.
pub(crate) async fn lock_ticket(store: &Store, tx: &mut Tx, invoice: &str) -> Result<Option<TicketRow>> {
    let sql = match store.dialect() {
        Dialect::Postgres => format!("{TICKET} FOR UPDATE"),
        Dialect::Sqlite => TICKET.to_string(),
    };
    let row = sqlx::query(&sql).bind(invoice).fetch_optional(&mut **tx).await?;
    row.as_ref().map(ticket_row).transpose()
}

pub(super) async fn lines(tx: &mut Tx, invoice: &str) -> Result<Vec<Line>> {
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

/// What a booking bills (see `booked_service`).
struct BookedService {
    slot: Slot,
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
