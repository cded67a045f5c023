//! Agenda operations: `Schedule/{id}/$generate-slots`, `Schedule/{id}/$close` and
//! `$reopen`, all for whoever may change the Schedule (an administrator, or the provider
//! organisation that owns it: its agenda technicians keep their own agendas), with
//! `Parameters` in and out. The decisions are in `crate::agenda`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx};
use crate::access::Rule;
use crate::auth::Interaction;
use crate::fhir::{meta, operations};
use crate::{Error, Result};

pub async fn generate(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Slot", Interaction::Create)?;
        // The request's own faults first, as every operation answers them.
        let args = Args::read(&operations::GENERATE_SLOTS, &ctx, &body)?;
        let from = match args.text("from") {
            Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
                Error::invalid("value", Some("from".into()), format!("from={d} is not a date like 2026-12-01"))
            })?,
            None => chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive(),
        };
        writable_schedule(&s, &ctx, &id, "generate slots for").await?;
        let report = crate::agenda::generate_for_schedule(&s.store, &id, from, &s.config.canonical_base).await?;
        let mut parameter = vec![
            json!({"name": "created", "valueInteger": report.created}),
            json!({"name": "kept", "valueInteger": report.kept}),
            json!({"name": "removed", "valueInteger": report.removed}),
        ];
        parameter.extend(report.held.iter().map(|h| json!({"name": "held", "valueString": h})));
        parameter.extend(references("offered", "Appointment", &report.offered));
        ctx.resource(StatusCode::OK, &json!({"resourceType": "Parameters", "parameter": parameter}))
    };
    ctx.respond(r.await)
}

pub async fn close(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let closure = period(&s, &ctx, &id, (&operations::CLOSE, "close"), &body).await?;
        let report = crate::agenda::close(&s.store, &id, &closure).await?;
        let mut parameter = references("closed", "Slot", &report.slots_closed);
        parameter.extend(references("rebook", "Appointment", &report.appointments_to_rebook));
        ctx.resource(StatusCode::OK, &json!({"resourceType": "Parameters", "parameter": parameter}))
    };
    ctx.respond(r.await)
}

/// `$reopen`: the opposite of `$close`, with its parameters and permissions.
pub async fn reopen(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let closure = period(&s, &ctx, &id, (&operations::REOPEN, "reopen"), &body).await?;
        let report = crate::agenda::reopen(&s.store, &id, &closure).await?;
        let mut parameter = references("reopened", "Slot", &report.slots_reopened);
        parameter.extend(references("offered", "Appointment", &report.offered));
        ctx.resource(StatusCode::OK, &json!({"resourceType": "Parameters", "parameter": parameter}))
    };
    ctx.respond(r.await)
}

/// One `name` part per id, a reference to `res_type`.
fn references(name: &str, res_type: &str, ids: &[String]) -> Vec<Value> {
    ids.iter().map(|x| json!({"name": name, "valueReference": {"reference": format!("{res_type}/{x}")}})).collect()
}

/// The period of `$close` or `$reopen` (`op` and what it does), once the caller may
/// change the Schedule.
async fn period(
    s: &AppState,
    ctx: &Ctx,
    id: &str,
    (op, what): (&'static operations::Operation, &str),
    body: &[u8],
) -> Result<crate::agenda::Closure> {
    ctx.allow("Slot", Interaction::Update)?;
    writable_schedule(s, ctx, id, what).await?;
    let args = Args::read(op, ctx, body)?;
    {
        let instant = |name: &str| -> Result<chrono::DateTime<chrono::FixedOffset>> {
            // Declared 1..1: present once the parameters are read.
            let v = args.text(name).unwrap_or_default();
            meta::parse_instant(&v)
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.fixed_offset())
                .ok_or_else(|| {
                    Error::invalid("value", Some(name.into()), format!("{name}={v} is not an instant with its offset"))
                })
        };
        Ok(crate::agenda::Closure {
            start: instant("start")?,
            end: instant("end")?,
            reason: args.text("reason").unwrap_or_else(|| "closed".into()),
        })
    }
}

/// Refuses unless the caller may change `Schedule/{id}`: an agenda another provider
/// owns is not found (it is not theirs to see), one seen but not writable (a
/// booking point) is forbidden.
async fn writable_schedule(s: &AppState, ctx: &Ctx, id: &str, what: &str) -> Result<()> {
    let schedule = s.store.read(&ctx.access, "Schedule", id).await?.filter(|st| !st.deleted);
    let Some(schedule) = schedule else {
        return Err(Error::NotFound(format!("Schedule/{id} is not known")));
    };
    let writable = match ctx.access.write("Schedule") {
        Rule::Nothing => false,
        rule => s.store.matches(schedule.pk, &rule).await?,
    };
    if !writable {
        return Err(Error::Forbidden(format!("this caller may not {what} Schedule/{id}")));
    }
    Ok(())
}
