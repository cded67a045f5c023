//! create, read, vread, update, delete and their conditional forms.

use axum::extract::{Path, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::limit::Body;
use super::{AppState, Ctx, Reply};
use crate::auth::Interaction;
use crate::booking::integrity;
use crate::fhir::check::At;
use crate::fhir::{codec, elements, meta, types};
use crate::store::{Stored, Write, WriteKind};
use crate::{Error, Result};

/// 404 for a type the server does not serve.
pub fn served(res_type: &str) -> Result<()> {
    if types::is_served(res_type) {
        Ok(())
    } else {
        Err(Error::NotFound(format!("resource type {res_type} is not served here; GET /fhir/metadata lists the types")))
    }
}

fn valid_id(id: &str) -> Result<()> {
    if types::is_valid_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(
            "value",
            Some("id".into()),
            format!("{id:?} is not a valid FHIR id: 1-64 of A-Z a-z 0-9 - ."),
        ))
    }
}

/// Parses and checks a request body for `res_type` (and `id` on update).
fn parse_checked(s: &AppState, ctx: &Ctx, body: &[u8], res_type: &str, id: Option<&str>) -> Result<Value> {
    let value = codec::parse_body(body, ctx.header("content-type"))?;
    s.checker.check(&value, res_type, id, At::Body)?;
    Ok(value)
}

/// Headers every answer about one version carries.
pub fn version_headers(s: &AppState, reply: Reply, st: &Stored) -> Reply {
    reply
        .header(header::ETAG, meta::etag(st.version))
        .header(header::LAST_MODIFIED, meta::http_date(st.last_updated))
        .header(header::LOCATION, format!("{}/_history/{}", s.url(&st.res_type, &st.id), st.version))
}

/// The answer to a write, shaped by `Prefer: return=`.
fn write_reply(s: &AppState, ctx: &Ctx, status: StatusCode, st: &Stored) -> Result<Reply> {
    let reply = version_headers(s, Reply::new(status), st);
    match ctx.prefer_return() {
        "minimal" => Ok(reply),
        "OperationOutcome" => {
            let oo = crate::error::outcome(&[crate::error::Issue::information(format!(
                "{}/{} version {} stored",
                st.res_type, st.id, st.version
            ))]);
            Ok(reply.body(codec::render(&oo, ctx.out)?, ctx.out))
        }
        _ => Ok(reply.body(codec::render_stored(st.body.as_deref().unwrap_or("{}"), ctx.out)?, ctx.out)),
    }
}

/// The answer to a read: the body, shaped by `_elements`/`_summary`.
fn read_reply(s: &AppState, ctx: &Ctx, st: &Stored) -> Result<Reply> {
    let Some(body) = st.checked_body()? else {
        return Err(Error::Gone(format!("{}/{} was deleted", st.res_type, st.id)));
    };
    let param = |name: &str| ctx.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let elements: Vec<String> =
        param("_elements").map(|v| v.split(',').map(|e| e.trim().to_string()).collect()).unwrap_or_default();
    let bytes = match elements::shaped(body, &elements, param("_summary"), &s.checker)? {
        Some(v) => codec::render(&v, ctx.out)?,
        None => codec::render_stored(body, ctx.out)?,
    };
    Ok(Reply::new(StatusCode::OK)
        .header(header::ETAG, meta::etag(st.version))
        .header(header::LAST_MODIFIED, meta::http_date(st.last_updated))
        .body(bytes, ctx.out))
}

pub async fn create(State(s): State<AppState>, Path(res_type): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    ctx.respond(create_inner(&s, &ctx, &res_type, &body).await)
}

async fn create_inner(s: &AppState, ctx: &Ctx, res_type: &str, body: &[u8]) -> Result<Reply> {
    served(res_type)?;
    ctx.allow(res_type, Interaction::Create)?;
    let resource = parse_checked(s, ctx, body, res_type, None)?;
    integrity::check(&s.store, None, &ctx.access, res_type, &resource).await?;
    let condition = ctx.header("if-none-exist").map(parse_condition);
    let w = s.store.create(&ctx.access, res_type, resource, condition.as_deref()).await?;
    let st = w.stored.ok_or_else(|| anyhow::anyhow!("create returned no version"))?;
    let status = if w.kind == WriteKind::Matched { StatusCode::OK } else { StatusCode::CREATED };
    write_reply(s, ctx, status, &st)
}

/// `If-None-Exist: identifier=sys|1` or `Patient?identifier=…` → query pairs.
pub fn parse_condition(h: &str) -> Vec<(String, String)> {
    let q = h.split_once('?').map(|(_, q)| q).unwrap_or(h);
    url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub async fn read(State(s): State<AppState>, Path((res_type, id)): Path<(String, String)>, ctx: Ctx) -> Response {
    let result = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Read)?;
        match s.store.read(&ctx.access, &res_type, &id).await? {
            Some(st) if res_type == "Invoice" && ctx.wants("text", "text/plain") => receipt_reply(&s, &st).await,
            Some(st) => read_reply(&s, &ctx, &st),
            None => Err(Error::NotFound(format!("{res_type}/{id} is not known"))),
        }
    };
    ctx.respond(result.await)
}

/// An Invoice as the plain-text receipt a counter prints (`_format=text`).
async fn receipt_reply(s: &AppState, st: &Stored) -> Result<Reply> {
    let Some(invoice) = st.value()? else {
        return Err(Error::Gone(format!("{}/{} was deleted", st.res_type, st.id)));
    };
    let text = crate::billing::receipt_of(&s.store, &invoice).await?;
    Ok(Reply::new(StatusCode::OK)
        .header(header::ETAG, meta::etag(st.version))
        .raw(text.into_bytes(), "text/plain; charset=utf-8"))
}

pub async fn vread(
    State(s): State<AppState>,
    Path((res_type, id, vid)): Path<(String, String, String)>,
    ctx: Ctx,
) -> Response {
    let result = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Read)?;
        let version: i64 =
            vid.parse().map_err(|_| Error::NotFound(format!("{res_type}/{id} has no version {vid:?}")))?;
        match s.store.vread(&ctx.access, &res_type, &id, version).await? {
            Some(st) => read_reply(&s, &ctx, &st),
            None => Err(Error::NotFound(format!("{res_type}/{id} has no version {version}"))),
        }
    };
    ctx.respond(result.await)
}

pub async fn update(
    State(s): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    ctx.respond(update_inner(&s, &ctx, &res_type, &id, &body).await)
}

async fn update_inner(s: &AppState, ctx: &Ctx, res_type: &str, id: &str, body: &[u8]) -> Result<Reply> {
    served(res_type)?;
    ctx.allow(res_type, Interaction::Update)?;
    valid_id(id)?;
    let resource = parse_checked(s, ctx, body, res_type, Some(id))?;
    integrity::check(&s.store, None, &ctx.access, res_type, &resource).await?;
    let if_match = match ctx.header("if-match") {
        Some(h) => Some(meta::parse_etag(h).ok_or_else(|| {
            Error::invalid("value", None, format!("If-Match {h:?} is not a version ETag like W/\"3\""))
        })?),
        None => None,
    };
    let w = s.store.update(&ctx.access, res_type, id, resource, if_match).await?;
    written(s, ctx, w)
}

fn written(s: &AppState, ctx: &Ctx, w: Write) -> Result<Reply> {
    let st = w.stored.ok_or_else(|| anyhow::anyhow!("update returned no version"))?;
    let status = if w.kind == WriteKind::Created { StatusCode::CREATED } else { StatusCode::OK };
    write_reply(s, ctx, status, &st)
}

/// `PUT /fhir/Type?search`: update the one match, create when none, 412 when several.
pub async fn conditional_update(
    State(s): State<AppState>,
    Path(res_type): Path<String>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let result = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Update)?;
        if ctx.query.is_empty() {
            return Err(Error::MethodNotAllowed(
                "PUT needs an id (PUT /fhir/Type/id) or search parameters (conditional update)".into(),
            ));
        }
        let value = codec::parse_body(&body, ctx.header("content-type"))?;
        let body_id = value.get("id").and_then(Value::as_str).map(str::to_string);
        s.checker.check(&value, &res_type, body_id.as_deref(), At::Body)?;
        integrity::check(&s.store, None, &ctx.access, &res_type, &value).await?;
        let w = s.store.conditional_update(&ctx.access, &res_type, value, &ctx.query).await?;
        written(&s, &ctx, w)
    };
    ctx.respond(result.await)
}

pub async fn delete(State(s): State<AppState>, Path((res_type, id)): Path<(String, String)>, ctx: Ctx) -> Response {
    let result = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Delete)?;
        let w = s.store.delete(&ctx.access, &res_type, &id).await?;
        deleted_reply(&ctx, w)
    };
    ctx.respond(result.await)
}

/// `DELETE /fhir/Type?search`: deletes the one match; several → 412.
pub async fn conditional_delete(State(s): State<AppState>, Path(res_type): Path<String>, ctx: Ctx) -> Response {
    let result = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Delete)?;
        if ctx.query.is_empty() {
            return Err(Error::MethodNotAllowed(
                "DELETE needs an id (DELETE /fhir/Type/id) or search parameters (conditional delete)".into(),
            ));
        }
        let w = s.store.conditional_delete(&ctx.access, &res_type, &ctx.query).await?;
        deleted_reply(&ctx, w)
    };
    ctx.respond(result.await)
}

fn deleted_reply(ctx: &Ctx, w: Write) -> Result<Reply> {
    let text = match &w.stored {
        Some(st) => format!("{}/{} deleted (version {})", st.res_type, st.id, st.version),
        None => "nothing to delete".to_string(),
    };
    let oo = crate::error::outcome(&[crate::error::Issue::information(text)]);
    let mut reply = Reply::new(StatusCode::OK);
    if let Some(st) = &w.stored {
        reply = reply.header(header::ETAG, meta::etag(st.version));
    }
    Ok(reply.body(codec::render(&oo, ctx.out)?, ctx.out))
}
