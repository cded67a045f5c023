//! The billing operations over HTTP: `ChargeItemDefinition/$apply`,
//! `Patient/{id}/$outstanding`, `$settlement` and `$recovery`. Parameters in, the
//! decisions in `crate::billing`, FHIR (or CSV) out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx, Reply, Touched};
use crate::auth::Interaction;
use crate::billing;
use crate::fhir::{codec, operations};
use crate::{Error, Result};

/// A date parameter (checked as a date when read), today in Europe/Rome by default.
fn day_param(args: &Args, name: &str) -> Result<chrono::NaiveDate> {
    match args.text(name) {
        Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
            Error::invalid("value", Some(name.into()), format!("{name}={d} is not a date like 2026-11-26"))
        }),
        None => Ok(billing::rome_day(crate::store::now_micros())),
    }
}

/// `ChargeItemDefinition/$apply` (`code`, repeatable; `patient`; `date`) and
/// `ChargeItemDefinition/{id}/$apply` (that tariff's code): the price of services
/// for a patient, as one prescription, without booking anything.
pub async fn apply(s: &AppState, ctx: &Ctx, id: Option<&str>, body: &[u8]) -> Result<Reply> {
    ctx.allow("ChargeItemDefinition", Interaction::Read)?;
    let args = Args::read(&operations::APPLY, ctx, body)?;
    // Comma-separated codes in one value are several services; the system is the catalog's.
    let mut codes: Vec<String> = args
        .tokens("code")
        .iter()
        .flat_map(|t| t.text().split(',').map(|c| c.rsplit('|').next().unwrap_or(c).to_string()).collect::<Vec<_>>())
        .collect();
    if let Some(id) = id {
        let Some(st) = s.store.read(&ctx.access, "ChargeItemDefinition", id).await? else {
            return Err(Error::NotFound(format!("ChargeItemDefinition/{id} is not known")));
        };
        let cid: Value = serde_json::from_str(st.body.as_deref().unwrap_or("null")).map_err(anyhow::Error::from)?;
        if let Some(code) = cid["code"]["coding"][0]["code"].as_str() {
            codes.push(code.to_string());
        }
    }
    if codes.is_empty() {
        return Err(Error::invalid(
            "required",
            Some("code".into()),
            "$apply needs the catalog code of a service (code)",
        ));
    }
    let patient = args.text("patient").map(|p| p.rsplit_once("Patient/").map(|(_, id)| id.to_string()).unwrap_or(p));
    if let Some(p) = &patient {
        if s.store.read(&ctx.access, "Patient", p).await?.is_none() {
            return Err(Error::invalid("not-found", Some("patient".into()), format!("Patient/{p} is not known")));
        }
    }
    let out = billing::apply(&s.store, &codes, patient.as_deref(), day_param(&args, "date")?).await?;
    ctx.resource(StatusCode::OK, &out)
}

pub async fn apply_type(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    ctx.respond(apply(&s, &ctx, None, &body).await)
}

pub async fn apply_instance(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    ctx.respond(apply(&s, &ctx, Some(&id), &body).await)
}

/// `Patient/{id}/$outstanding`: what the patient owes, invoice by invoice.
pub async fn outstanding(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Invoice", Interaction::Read)?;
        Args::read(&operations::OUTSTANDING, &ctx, &body)?;
        let out = billing::outstanding(&s.store, &ctx.access, &id).await?;
        let touched = Touched { entities: vec![format!("Patient/{id}")], ..Default::default() };
        Ok(ctx.resource(StatusCode::OK, &out)?.touched(touched))
    };
    ctx.respond(r.await)
}

/// `$settlement?period=YYYY-MM`: one PaymentReconciliation per provider, stored,
/// returned as a Bundle (or as CSV with `_format=csv`).
pub async fn settlement(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$settlement")?;
        let args = Args::read(&operations::SETTLEMENT, &ctx, &body)?;
        // Declared 1..1: present once the parameters are read.
        let period = args.text("period").unwrap_or_default();
        let (all, total) = billing::settle(&s.store, &period).await?;
        if ctx.wants("csv", "text/csv") {
            let settlements: Vec<billing::settlement::Settlement> = all.into_iter().map(|(s, _)| s).collect();
            let csv = billing::settlement::csv(&period, &settlements);
            return Ok(Reply::new(StatusCode::OK).raw(csv.into_bytes(), "text/csv; charset=utf-8"));
        }
        let mut entry: Vec<Value> = all
            .iter()
            .map(|(_, r)| {
                json!({"fullUrl": s.url("PaymentReconciliation", r["id"].as_str().unwrap_or_default()), "resource": r})
            })
            .collect();
        // What the settlements reconcile to: every payment and refund of the period.
        entry.push(json!({"resource": {"resourceType": "Parameters", "parameter": [
            {"name": "period", "valueString": period},
            {"name": "payments-total", "valueMoney": billing::money(total)},
        ]}}));
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entry});
        Ok(Reply::new(StatusCode::OK).body(codec::render(&bundle, ctx.out)?, ctx.out))
    };
    ctx.respond(r.await)
}

/// `$recovery?date=YYYY-MM-DD`: the credit-recovery run as of that day (today by
/// default); a Parameters listing each invoice moved and its new stage.
pub async fn recovery(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$recovery")?;
        let args = Args::read(&operations::RECOVERY, &ctx, &body)?;
        let steps = billing::recover(&s.store, day_param(&args, "date")?).await?;
        let parameter: Vec<Value> = steps
            .iter()
            .map(|st| {
                json!({"name": "moved", "part": [
                    {"name": "invoice", "valueReference": {"reference": format!("Invoice/{}", st.invoice)}},
                    {"name": "stage", "valueCode": st.stage},
                ]})
            })
            .collect();
        let out = json!({"resourceType": "Parameters", "parameter": parameter});
        ctx.resource(StatusCode::OK, &out)
    };
    ctx.respond(r.await)
}

/// `$dispatch-lists?date=YYYY-MM-DD` (administrators): each provider's daily
/// appointment list of that day (today by default) to the outbox, at once.
pub async fn dispatch_lists(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.administrators_only("$dispatch-lists")?;
        let args = Args::read(&operations::DISPATCH_LISTS, &ctx, &body)?;
        let sent = crate::messaging::dispatch_daily_lists(&s.store, day_param(&args, "date")?, false).await?;
        let parameter: Vec<Value> = sent
            .iter()
            .map(|(org, n)| {
                json!({"name": "list", "part": [
                    {"name": "provider", "valueReference": {"reference": format!("Organization/{org}")}},
                    {"name": "appointments", "valueInteger": n},
                ]})
            })
            .collect();
        ctx.resource(StatusCode::OK, &json!({"resourceType": "Parameters", "parameter": parameter}))
    };
    ctx.respond(r.await)
}
