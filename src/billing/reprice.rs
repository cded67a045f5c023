//! A ticket priced again after each change (a line added, freed, missed, paid) and
//! its resources rendered from its rows: every ChargeItem's share and the Invoice.

use serde_json::Value;

use super::refunds;
use super::tickets::{self, Line, TicketRow};
use crate::billing::{self, from_cents, rome_day, to_cents, InvoiceFacts, LineFacts};
use crate::store::{current, Bind, Sql, Store, Tx};
use crate::Result;

/// Recomputes ticket `t` from its billable lines under the rules of its day:
/// each line's share, what is owed, a refund to the payment point when more was
/// paid than is now owed (`cause` names it), the status, and the Invoice.
pub(super) async fn reprice(store: &Store, tx: &mut Tx, t: TicketRow, cause: &str) -> Result<i64> {
    let lines = tickets::lines(tx, &t.invoice).await?;
    reprice_lines(store, tx, t, cause, lines).await
}

/// A ticket booked at `booked_us` with billable `lines`, priced under the rules of
/// its day.
pub(super) fn priced(store: &Store, booked_us: i64, lines: &[Line]) -> billing::Ticket {
    let rules = &store.settings().billing;
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

/// [`reprice`] given the ticket's billable lines.
pub(super) async fn reprice_lines(
    store: &Store,
    tx: &mut Tx,
    t: TicketRow,
    cause: &str,
    mut lines: Vec<Line>,
) -> Result<i64> {
    let ticket = priced(store, t.booked_us, &lines);
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
        refunds::refund(store, tx, &t, &lines, refunded, cause).await?;
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
        text: "UPDATE tickets SET owed_cents = $1, paid_cents = $2, status = $3, stage = $4, notice = $5, iuv = $6 \
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
    let body = billing::invoice(&store.settings().base, &facts, &line_facts, &ticket);
    if t.status == "new" {
        // A ticket made by this transaction: its Invoice (a new id) is not there yet.
        store.insert_new(tx, "Invoice", body, &t.invoice, "POST", riders).await?;
    } else {
        write_owned(store, tx, "Invoice", &t.invoice, body).await?;
    }
    Ok(refunded)
}

/// Writes the gateway's own resource `res_type/id`: a new version, or the first.
pub(crate) async fn write_owned(store: &Store, tx: &mut Tx, res_type: &str, id: &str, body: Value) -> Result<()> {
    match current(tx, store.dialect(), res_type, id, true).await? {
        Some(cur) => {
            store.next_version(tx, &cur, "PUT", Some(body)).await?;
        }
        None => {
            store.insert_new(tx, res_type, body, id, "POST", Vec::new()).await?;
        }
    }
    Ok(())
}
