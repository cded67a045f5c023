//! The FHIR shapes of a ticket: the `ChargeItem` of a booked service, the
//! `Invoice` of a prescription, the daily remittance (`PaymentReconciliation`) of
//! a payment point, and the plain-text receipt a counter prints.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::views::Invoice;
use super::{money, Ticket};
use crate::fhir::meta::instant;
use crate::fhir::names;

/// One booked service of an invoice, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct LineFacts {
    pub charge_item: String,
    pub appointment: String,
    pub request: Option<String>,
    pub code: String,
    pub provider: String,
    pub tariff: Decimal,
    pub share: Decimal,
    pub exemption: Option<String>,
    pub booking_code: Option<String>,
}

/// An invoice, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceFacts {
    pub id: String,
    pub patient: String,
    pub nre: Option<String>,
    pub notice: String,
    pub iuv: String,
    pub status: String,
    pub booked_us: i64,
    pub paid: Decimal,
    pub stage: Option<String>,
}

/// What a booked service's ChargeItem says besides its line.
#[derive(Debug, Clone, Copy)]
pub struct ChargeFacts<'a> {
    pub patient: &'a str,
    /// The canonical URL of the tariff in force.
    pub tariff_url: &'a str,
    /// When the service is due (the appointment's start).
    pub occurrence: Option<&'a str>,
    pub entered_us: i64,
    /// The system of the exemption codes.
    pub exemption_system: &'a str,
}

/// The ChargeItem of a booked service: its catalog code, the patient, the provider
/// performing it, the tariff in force (`definitionCanonical` and the amount), the
/// appointment and request it comes from, and the exemption that zeroes it.
pub fn charge_item(base: &str, line: &LineFacts, f: &ChargeFacts<'_>) -> Value {
    let mut extension = vec![json!({"url": names::structure(base, "tariff"), "valueMoney": money(line.tariff)})];
    if let Some(e) = &line.exemption {
        extension.push(json!({"url": names::structure(base, "exemption"), "valueCoding": {"system": f.exemption_system, "code": e}}));
    }
    let mut c = json!({
        "resourceType": "ChargeItem",
        "id": line.charge_item,
        "status": "billable",
        "code": {"coding": [{"system": names::catalog_system(base), "code": line.code}]},
        "subject": {"reference": format!("Patient/{}", f.patient)},
        "enteredDate": instant(f.entered_us),
        "definitionCanonical": [f.tariff_url],
        "extension": extension,
    });
    if let Some(o) = f.occurrence {
        c["occurrenceDateTime"] = json!(o);
    }
    if !line.provider.is_empty() {
        c["performingOrganization"] = json!({"reference": format!("Organization/{}", line.provider)});
    }
    let mut support = vec![json!({"reference": format!("Appointment/{}", line.appointment)})];
    if let Some(r) = &line.request {
        support.push(json!({"reference": format!("ServiceRequest/{r}")}));
    }
    c["supportingInformation"] = Value::Array(support);
    c
}

/// The Invoice of a prescription: one line per billable service (its tariff, and
/// what the cap, the exemptions or the quota make of it), the gross value, what the
/// patient owes, and the identifiers a payment point finds it by (pagoPA notice
/// number and IUV, the NRE, the booking codes).
pub fn invoice(base: &str, f: &InvoiceFacts, lines: &[LineFacts], t: &Ticket) -> Value {
    let mut identifier = vec![
        json!({"system": names::sid(base, "pagopa-notice"), "value": f.notice}),
        json!({"system": names::sid(base, "iuv"), "value": f.iuv}),
    ];
    if let Some(nre) = &f.nre {
        identifier.push(json!({"system": crate::booking::NRE_SYSTEM, "value": nre}));
    }
    for code in lines.iter().filter_map(|l| l.booking_code.as_ref()) {
        identifier.push(json!({"system": names::booking_code_system(base), "value": code}));
    }
    let items: Vec<Value> = lines.iter().enumerate().map(|(i, l)| line_item(base, i + 1, l)).collect();
    let mut inv = json!({
        "resourceType": "Invoice",
        "id": f.id,
        "identifier": identifier,
        "status": f.status,
        "subject": {"reference": format!("Patient/{}", f.patient)},
        "recipient": {"reference": format!("Patient/{}", f.patient)},
        "date": instant(f.booked_us),
        "totalGross": money(t.gross),
        "totalNet": money(t.owed),
        "paymentTerms": format!("pagoPA notice {} (IUV {})", f.notice, f.iuv),
    });
    if !items.is_empty() {
        inv["lineItem"] = Value::Array(items);
    }
    let mut ext = vec![json!({"url": names::structure(base, "amount-paid"), "valueMoney": money(f.paid)})];
    if let Some(stage) = &f.stage {
        ext.push(json!({"url": names::structure(base, "recovery-stage"), "valueCode": stage}));
    }
    inv["extension"] = Value::Array(ext);
    inv
}

/// Line `sequence` of an Invoice: its service's tariff, and the deduction or
/// surcharge that makes it the line's share.
fn line_item(base: &str, sequence: usize, l: &LineFacts) -> Value {
    let mut parts = vec![json!({
        "type": "base",
        "code": {"coding": [{"system": names::catalog_system(base), "code": l.code}]},
        "amount": money(l.tariff),
    })];
    let diff = l.share - l.tariff;
    if diff < Decimal::ZERO {
        parts.push(json!({"type": "deduction", "amount": money(-diff)}));
    } else if diff > Decimal::ZERO {
        parts.push(json!({"type": "surcharge", "amount": money(diff)}));
    }
    json!({
        "sequence": sequence,
        "chargeItemReference": {"reference": format!("ChargeItem/{}", l.charge_item)},
        "priceComponent": parts,
    })
}

/// One payment (or refund) as a line of a payment point's daily remittance.
pub fn payment_line(notice: &str, invoice: &str, reference: &str, amount: Decimal, at_us: i64) -> Value {
    json!({
        "identifier": {"value": reference},
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/payment-type", "code": if amount < Decimal::ZERO { "adjustment" } else { "payment" }}]},
        "request": {"reference": format!("Invoice/{invoice}")},
        "response": {"reference": format!("PaymentNotice/{notice}")},
        "date": instant(at_us).get(..10).unwrap_or_default(),
        "amount": money(amount),
    })
}

/// A payment point's remittance of one day: every payment it took, and their total.
pub fn remittance(
    base: &str,
    id: &str,
    point: &str,
    day: &str,
    lines: Vec<Value>,
    total: Decimal,
    at_us: i64,
) -> Value {
    let mut r = json!({
        "resourceType": "PaymentReconciliation",
        "id": id,
        "identifier": [{"system": names::sid(base, "remittance"), "value": format!("{point}/{day}")}],
        "status": "active",
        "created": instant(at_us),
        "paymentDate": day,
        "paymentAmount": money(total),
        "requestor": {"reference": format!("Organization/{point}")},
        "disposition": format!("Remittance of {point} for {day}"),
    });
    if !lines.is_empty() {
        r["detail"] = json!(lines);
    }
    r
}

/// The plain-text receipt of an invoice, as a counter prints it, with the name
/// `display` gives each service's code.
pub fn receipt(invoice: &Invoice, display: impl Fn(&str) -> String) -> String {
    let amount = |d: Option<Decimal>| d.map(|d| format!("{d:>9.2} EUR")).unwrap_or_default();
    let ident = |system_end: &str| invoice.identifier(system_end).unwrap_or("-").to_string();
    let mut out = String::new();
    out.push_str("RICEVUTA TICKET / TICKET RECEIPT\n");
    out.push_str(&format!("Invoice         {}\n", invoice.id));
    out.push_str(&format!("Date            {}\n", invoice.date));
    out.push_str(&format!("Patient         {}\n", invoice.subject));
    out.push_str(&format!("Prescription    {}\n", ident("4.3.9")));
    out.push_str(&format!("pagoPA notice   {}\n", ident("/pagopa-notice")));
    out.push_str(&format!("IUV             {}\n", ident("/iuv")));
    out.push('\n');
    for line in &invoice.lines {
        let name: String = display(&line.code).chars().take(40).collect();
        out.push_str(&format!("{:<12} {:<40} {}\n", line.code, name, amount(line.tariff)));
    }
    out.push('\n');
    out.push_str(&format!("{:<53} {}\n", "Gross value", amount(invoice.gross)));
    out.push_str(&format!("{:<53} {}\n", "Ticket owed", amount(invoice.net)));
    out.push_str(&format!("{:<53} {}\n", "Paid", amount(invoice.paid)));
    out.push_str(&format!("Status          {}\n", invoice.status));
    out
}
