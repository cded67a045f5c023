//! The IHE ITI Scheduling operations on Appointment: `$find`, `$hold`, `$book`, and
//! `$cancel`. Parameters in (a `Parameters` body or the query), the decisions in
//! `crate::booking`, FHIR out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx, Reply, Touched};
use crate::auth::Interaction;
use crate::booking::{self, BookRequest};
use crate::fhir::check::At;
use crate::fhir::{codec, operations};
use crate::{Error, Result};

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

fn appointment_reply(s: &AppState, ctx: &Ctx, status: StatusCode, appointment: &Value) -> Result<Reply> {
    let id = appointment["id"].as_str().unwrap_or_default();
    let touched = Touched { entities: vec![format!("Appointment/{id}")], ..Default::default() };
    Ok(Reply::new(status)
        .header(axum::http::header::LOCATION, s.url("Appointment", id))
        .body(codec::render(appointment, ctx.out)?, ctx.out)
        .touched(touched))
}

/// `POST Appointment/$hold` with `appointment-reference`.
pub async fn hold(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Update)?;
        let args = Args::read(&operations::HOLD, &ctx, &body)?;
        let reference = args.text("appointment-reference").unwrap_or_default();
        let id = appointment_id(&reference, "appointment-reference")?;
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
        let args = Args::read(&operations::BOOK, &ctx, &body)?;
        let request = match (args.resource("appointment-resource"), args.text("appointment-reference")) {
            (Some(r), None) => {
                s.checker.check(r, "Appointment", None, At::Body)?;
                BookRequest::Resource(r.clone())
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
        let replaces = match args.text("cancelled-appt-id") {
            Some(r) => Some(appointment_id(&r, "cancelled-appt-id")?),
            None => None,
        };
        let booked = booking::book(&s.store, &ctx.access, request, replaces.as_deref()).await?;
        if booked.created {
            // A retry answered with the booking already made is not a new one.
            s.metrics.booked(ctx.caller.as_ref().and_then(|c| c.channel.as_deref()));
        }
        let mut entities = Vec::new();
        let mut entry = Vec::new();
        for a in std::iter::once(&booked.appointment).chain(booked.replaced.iter()) {
            let id = a["id"].as_str().unwrap_or_default();
            entities.push(format!("Appointment/{id}"));
            entry.push(json!({"fullUrl": s.url("Appointment", id), "resource": a}));
        }
        if let Some(inv) = &booked.invoice {
            let id = inv["id"].as_str().unwrap_or_default();
            entities.push(format!("Invoice/{id}"));
            entry.push(json!({"fullUrl": s.url("Invoice", id), "resource": inv}));
        }
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entry});
        let status = if booked.created { StatusCode::CREATED } else { StatusCode::OK };
        Ok(Reply::new(status)
            .body(codec::render(&bundle, ctx.out)?, ctx.out)
            .touched(Touched { entities, ..Default::default() }))
    };
    ctx.respond(r.await)
}

/// `POST Appointment/{id}/$cancel` with an optional `reason`.
pub async fn cancel(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Update)?;
        let args = Args::read(&operations::CANCEL, &ctx, &body)?;
        let reason = args.text("reason").unwrap_or_else(|| "cancelled".into());
        if args.boolean("preview") == Some(true) {
            let preview = booking::cancel_preview(&s.store, &ctx.access, &id, &reason).await?;
            return preview_reply(&ctx, &preview);
        }
        let cancelled = booking::cancel(&s.store, &ctx.access, &id, &reason).await?;
        appointment_reply(&s, &ctx, StatusCode::OK, &cancelled)
    };
    ctx.respond(r.await)
}

/// `$cancel?preview=true`: a Parameters with the Appointment `$cancel` would
/// answer, the refund rule's outcome (`outcome`, `detail`, `refund`, the ticket
/// owed before and after, what was paid) and the Invoice as it would be.
fn preview_reply(ctx: &Ctx, p: &booking::CancelPreview) -> Result<Reply> {
    let e = p.effect();
    let mut parameter = vec![
        json!({"name": "preview", "valueBoolean": true}),
        json!({"name": "appointment", "resource": p.appointment}),
        json!({"name": "outcome", "valueCode": e.outcome}),
        json!({"name": "detail", "valueString": e.detail}),
        json!({"name": "refund", "valueMoney": crate::billing::money(e.refund)}),
    ];
    let amounts = [("owed-before", e.owed_before), ("owed-after", e.owed_after), ("paid", e.paid_before)];
    parameter.extend(
        amounts.iter().filter_map(|(n, v)| v.map(|v| json!({"name": n, "valueMoney": crate::billing::money(v)}))),
    );
    if let Some(invoice) = &p.after {
        parameter.push(json!({"name": "invoice", "resource": invoice}));
    }
    let id = p.appointment["id"].as_str().unwrap_or_default();
    let touched = Touched { entities: vec![format!("Appointment/{id}")], ..Default::default() };
    let out = json!({"resourceType": "Parameters", "parameter": parameter});
    Ok(Reply::new(StatusCode::OK).body(codec::render(&out, ctx.out)?, ctx.out).touched(touched))
}

/// A `$find` bound: an instant, or a local day (Europe/Rome) — its first moment for
/// `start`, its last for `end`.
fn bound(args: &Args, name: &str) -> Result<i64> {
    // Declared 1..1: present once the parameters are read.
    let v = args.text(name).unwrap_or_default();
    let bad = || {
        Error::invalid("value", Some(name.into()), format!("{name}={v} is not a date or an instant with its offset"))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&v) {
        return Ok(t.timestamp_micros());
    }
    let day = chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| bad())?;
    let day = if name == "end" { day.succ_opt().ok_or_else(bad)? } else { day };
    let local = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    let t = local.and_local_timezone(chrono_tz::Europe::Rome).earliest().ok_or_else(bad)?;
    Ok(t.timestamp_micros() - i64::from(name == "end"))
}

fn reference_id(v: &str, prefix: &str) -> String {
    v.rsplit_once(prefix).map(|(_, id)| id).unwrap_or(v).to_string()
}

/// `priority-class`, checked against the classes of `mappings/booking/rules.json`.
fn priority_class(args: &Args) -> Result<Option<String>> {
    let classes = crate::mappings::booking::priority_classes();
    match args.text("priority-class") {
        Some(c) if !classes.iter().any(|k| k.code == c) => {
            let codes: Vec<&str> = classes.iter().map(|k| k.code.as_str()).collect();
            Err(Error::invalid(
                "code-invalid",
                Some("priority-class".into()),
                format!("priority-class={c} is not one of {}", codes.join(", ")),
            ))
        }
        c => Ok(c),
    }
}

/// `near=lat|lon`, within the globe.
fn near(args: &Args) -> Result<Option<(f64, f64)>> {
    let Some(n) = args.text("near") else { return Ok(None) };
    let mut parts = n.split('|').map(|x| x.parse::<f64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(lat)), Some(Ok(lon))) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => Ok(Some((lat, lon))),
        _ => Err(Error::invalid("value", Some("near".into()), format!("near={n} is not latitude|longitude"))),
    }
}

fn find_request(args: &Args) -> Result<booking::FindRequest> {
    let count = match args.integer("_count") {
        Some(c) => usize::try_from(c).ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
            Error::invalid("value", Some("_count".into()), format!("_count={c} is not a number from 1 to 100"))
        })?,
        None => 10,
    };
    let reference = |name: &str, prefix: &str| args.text(name).map(|v| reference_id(&v, prefix));
    Ok(booking::FindRequest {
        start: bound(args, "start")?,
        end: bound(args, "end")?,
        // The NRE alone: its system, when given, is the national one.
        nre: args.token("referral-identifier").map(|t| t.code),
        // Comma-separated codes in one value are alternatives, as in a search.
        services: args
            .tokens("service-type")
            .iter()
            .flat_map(|t| t.text().split(',').map(str::to_string).collect::<Vec<_>>())
            .collect(),
        patient: reference("patient-reference", "Patient/"),
        location: reference("location-reference", "Location/").map(|id| format!("Location/{id}")),
        organization: reference("organization", "Organization/").map(|id| format!("Organization/{id}")),
        class: priority_class(args)?,
        district: args.text("district"),
        near: near(args)?,
        count,
    })
}

/// `GET|POST Appointment/$find`: a searchset of proposed Appointments.
pub async fn find(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Appointment", Interaction::Search)?;
        let req = find_request(&Args::read(&operations::FIND, &ctx, &body)?)?;
        if req.end < req.start {
            return Err(Error::invalid("value", Some("end".into()), "end is before start"));
        }
        let found = booking::find(&s.store, &ctx.access, req).await?;
        let mut entities = Vec::new();
        let mut entry: Vec<Value> = found
            .proposals
            .iter()
            .map(|a| {
                let id = a["id"].as_str().unwrap_or_default();
                entities.push(format!("Appointment/{id}"));
                json!({"fullUrl": s.url("Appointment", id), "resource": a, "search": {"mode": "match"}})
            })
            .collect();
        if !found.notes.is_empty() {
            entry.push(json!({"resource": crate::error::outcome(&found.notes), "search": {"mode": "outcome"}}));
        }
        let bundle =
            json!({"resourceType": "Bundle", "type": "searchset", "total": found.proposals.len(), "entry": entry});
        Ok(Reply::new(StatusCode::OK)
            .body(codec::render(&bundle, ctx.out)?, ctx.out)
            .touched(Touched { entities, ..Default::default() }))
    };
    ctx.respond(r.await)
}

/// `[from, to)` of a `period`: a year, a month or a day, in Europe/Rome.
fn period(v: &str) -> Result<(i64, i64)> {
    let bad = || {
        Error::invalid(
            "value",
            Some("period".into()),
            format!("period={v} is not a year, month or day (2026, 2026-11, 2026-11-26)"),
        )
    };
    let parts: Vec<&str> = v.split('-').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
    // Four-digit years only: no date arithmetic near the calendar's limits.
    let year = || num(0).filter(|y| (1..=9999).contains(y)).map(|y| y as i32).ok_or_else(bad);
    let (first, next) = match parts.len() {
        1 => {
            let y = year()?;
            (chrono::NaiveDate::from_ymd_opt(y, 1, 1), chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1))
        }
        2 => {
            let (y, m) = (year()?, num(1).ok_or_else(bad)?);
            let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (chrono::NaiveDate::from_ymd_opt(y, m, 1), chrono::NaiveDate::from_ymd_opt(next.0, next.1, 1))
        }
        3 => {
            let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?;
            (Some(d), d.succ_opt())
        }
        _ => (None, None),
    };
    let at = |d: Option<chrono::NaiveDate>| -> Result<i64> {
        let t = d
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| t.and_local_timezone(chrono_tz::Europe::Rome).earliest())
            .ok_or_else(bad)?;
        Ok(t.timestamp_micros())
    };
    Ok((at(first)?, at(next)?))
}

/// `GET /fhir/$waiting-times`: the waiting-time figures as a `Parameters`.
pub async fn waiting_times(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let args = Args::read(&operations::WAITING_TIMES, &ctx, &body)?;
        let (from_us, to_us) = match args.text("period") {
            Some(p) => period(&p)?,
            None => {
                let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive();
                period(&today.format("%Y-%m").to_string())?
            }
        };
        let q = booking::WaitingQuery {
            from_us,
            to_us,
            service: args.token("service").map(|t| t.code),
            branch: args.token("branch").map(|t| t.code),
            district: args.text("district"),
            class: args.text("priority-class"),
            group: match args.text("group").as_deref() {
                None => booking::Grouping::None,
                Some("day") => booking::Grouping::Day,
                Some("service") => booking::Grouping::Service,
                Some(other) => {
                    return Err(Error::invalid("value", Some("group".into()), format!("group={other}: day or service")))
                }
            },
        };
        let w = booking::waiting_times(&s.store, &q).await?;
        let out = waiting_parameters(&w, from_us, to_us);
        Ok(Reply::new(StatusCode::OK).body(codec::render(&out, ctx.out)?, ctx.out))
    };
    ctx.respond(r.await)
}

/// `$waiting-times`' answer: the figures, by channel, and by day or service when asked.
fn waiting_parameters(w: &booking::WaitingTimes, from_us: i64, to_us: i64) -> Value {
    let dec = crate::catalog::decimal_value;
    let mut parameter = vec![
        json!({"name": "period", "valuePeriod": {"start": crate::fhir::meta::instant(from_us), "end": crate::fhir::meta::instant(to_us)}}),
        json!({"name": "bookings", "valueInteger": w.bookings}),
        json!({"name": "with-deadline", "valueInteger": w.with_deadline}),
    ];
    for (name, v) in
        [("wait-median-days", w.median_days), ("wait-p90-days", w.p90_days), ("within-deadline-share", w.met_share)]
    {
        if let Some(v) = v {
            parameter.push(json!({"name": name, "valueDecimal": dec(v)}));
        }
    }
    for (channel, n, share) in &w.channels {
        parameter.push(json!({"name": "channel", "part": [
            {"name": "code", "valueCode": channel},
            {"name": "bookings", "valueInteger": n},
            {"name": "share", "valueDecimal": dec(*share)}
        ]}));
    }
    for (day, channel, n) in &w.days {
        parameter.push(json!({"name": "day", "part": [
            {"name": "date", "valueDate": day},
            {"name": "code", "valueCode": channel},
            {"name": "bookings", "valueInteger": n}
        ]}));
    }
    for x in &w.services {
        let mut part = vec![
            json!({"name": "code", "valueCode": x.code}),
            json!({"name": "bookings", "valueInteger": x.bookings}),
            json!({"name": "wait-median-days", "valueDecimal": dec(x.median_days)}),
            json!({"name": "wait-p90-days", "valueDecimal": dec(x.p90_days)}),
        ];
        if let Some(m) = x.met_share {
            part.push(json!({"name": "within-deadline-share", "valueDecimal": dec(m)}));
        }
        parameter.push(json!({"name": "service", "part": part}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}
