//! The IHE ITI Scheduling operations on Appointment: `$find`, `$hold`, `$book`, and
//! `$cancel`. Parameters in (a `Parameters` body or the query), the decisions in
//! `crate::booking`, FHIR out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::context::{parameters_body, Body};
use super::{AppState, Ctx, Reply, Touched};
use crate::auth::Interaction;
use crate::booking::{self, BookRequest};
use crate::fhir::check::At;
use crate::fhir::codec;
use crate::{Error, Result};

/// An operation's parameters by name: the query's as `valueString`, then those of
/// a POSTed `Parameters` as they are (so a `resource` or a `valueReference` keeps
/// its shape).
pub(super) fn parameters(ctx: &Ctx, body: &[u8]) -> Result<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> =
        ctx.query.iter().map(|(k, v)| (k.clone(), json!({"name": k, "valueString": v}))).collect();
    for p in parameters_body(ctx, body)? {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        out.push((name, p));
    }
    Ok(out)
}

/// A parameter as text: a reference's `reference`, else the primitive value.
pub(super) fn text(params: &[(String, Value)], name: &str) -> Option<String> {
    let p = params.iter().find(|(k, _)| k == name).map(|(_, p)| p)?;
    if let Some(r) = p.get("valueReference") {
        return r["reference"].as_str().map(str::to_string);
    }
    p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| v.as_str()).map(str::to_string)
}

/// `Appointment/x`, `x` or a full URL ending in `Appointment/x` → `x`.
fn appointment_id(reference: &str, parameter: &str) -> Result<String> {
    let id = match reference.rsplit_once("Appointment/") {
        Some((_, id)) => id,
        None if !reference.contains('/') => reference,
        None => "",
    };
    let id = id.split('/').next().unwrap_or_default();
    if crate::fhir::types::is_valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(Error::invalid(
            "value",
            Some(parameter.into()),
            format!("{parameter}={reference:?} is not a reference to an Appointment"),
        ))
    }
}

fn required(params: &[(String, Value)], name: &str, op: &str) -> Result<String> {
    text(params, name).ok_or_else(|| Error::invalid("required", Some(name.into()), format!("{op} needs {name}")))
}

fn appointment_reply(s: &AppState, ctx: &Ctx, status: StatusCode, appointment: &Value) -> Result<Reply> {
    let id = appointment["id"].as_str().unwrap_or_default();
    let touched = Touched { entities: vec![format!("Appointment/{id}")], interaction: None };
    Ok(Reply::new(status)
        .header(axum::http::header::LOCATION, s.url("Appointment", id))
        .body(codec::render(appointment, ctx.out)?, ctx.out)
        .touched(touched))
}

/// `POST Appointment/$hold` with `appointment-reference`.
pub async fn hold(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Update)?;
        let params = parameters(&ctx, &body)?;
        let id = appointment_id(&required(&params, "appointment-reference", "$hold")?, "appointment-reference")?;
        let held = booking::hold(&s.store, &ctx.access, &id).await?;
        appointment_reply(&s, &ctx, StatusCode::OK, &held)
    };
    ctx.respond(r.await)
}

/// `POST Appointment/$book` with `appointment-reference` or `appointment-resource`,
/// and `cancelled-appt-id` for a reschedule. The result is a Bundle with the booked
/// Appointment (and the one it replaced).
pub async fn book(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Create)?;
        let params = parameters(&ctx, &body)?;
        let resource = params.iter().find(|(k, _)| k == "appointment-resource").map(|(_, p)| p["resource"].clone());
        let request = match (resource, text(&params, "appointment-reference")) {
            (Some(r), None) if r.is_object() => {
                s.checker.check(&r, "Appointment", None, At::Body)?;
                BookRequest::Resource(r)
            }
            (None, Some(reference)) => BookRequest::Reference(appointment_id(&reference, "appointment-reference")?),
            _ => {
                return Err(Error::invalid(
                    "required",
                    Some("appointment-reference".into()),
                    "$book needs exactly one of appointment-reference or appointment-resource (with the Appointment in `resource`)",
                ))
            }
        };
        let replaces = match text(&params, "cancelled-appt-id") {
            Some(r) => Some(appointment_id(&r, "cancelled-appt-id")?),
            None => None,
        };
        let booked = booking::book(&s.store, &ctx.access, request, replaces.as_deref()).await?;
        let mut entities = Vec::new();
        let mut entry = Vec::new();
        for a in std::iter::once(&booked.appointment).chain(booked.replaced.iter()) {
            let id = a["id"].as_str().unwrap_or_default();
            entities.push(format!("Appointment/{id}"));
            entry.push(json!({"fullUrl": s.url("Appointment", id), "resource": a}));
        }
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entry});
        let status = if booked.created { StatusCode::CREATED } else { StatusCode::OK };
        Ok(Reply::new(status)
            .body(codec::render(&bundle, ctx.out)?, ctx.out)
            .touched(Touched { entities, interaction: None }))
    };
    ctx.respond(r.await)
}

/// `POST Appointment/{id}/$cancel` with an optional `reason`.
pub async fn cancel(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Update)?;
        let params = parameters(&ctx, &body)?;
        let reason = text(&params, "reason").unwrap_or_else(|| "cancelled".into());
        let cancelled = booking::cancel(&s.store, &ctx.access, &id, &reason).await?;
        appointment_reply(&s, &ctx, StatusCode::OK, &cancelled)
    };
    ctx.respond(r.await)
}
