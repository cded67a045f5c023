//! History: instance, type and system, as `history` Bundles, newest first.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::crud::served;
use super::{AppState, Ctx, Reply};
use crate::auth::Interaction;
use crate::fhir::bundle::{Bundle, Entry, Res};
use crate::fhir::meta;
use crate::store::{now_micros, HistoryEntry, HistoryRequest};
use crate::{Error, Result};

pub async fn instance(State(s): State<AppState>, Path((res_type, id)): Path<(String, String)>, ctx: Ctx) -> Response {
    let r = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Read)?;
        if s.store.read(&ctx.access, &res_type, &id).await?.is_none() {
            return Err(Error::NotFound(format!("{res_type}/{id} is not known")));
        }
        history(&s, &ctx, Some(res_type.clone()), Some(id.clone())).await
    };
    ctx.respond(r.await)
}

pub async fn type_history(State(s): State<AppState>, Path(res_type): Path<String>, ctx: Ctx) -> Response {
    let r = async {
        served(&res_type)?;
        ctx.allow(&res_type, Interaction::Search)?;
        history(&s, &ctx, Some(res_type.clone()), None).await
    };
    ctx.respond(r.await)
}

pub async fn system(State(s): State<AppState>, ctx: Ctx) -> Response {
    let r = async {
        // The history of every type: the scopes must allow searching every type.
        ctx.allow("*", Interaction::Search)?;
        history(&s, &ctx, None, None).await
    };
    ctx.respond(r.await)
}

async fn history(s: &AppState, ctx: &Ctx, res_type: Option<String>, id: Option<String>) -> Result<Reply> {
    let req = history_request(ctx, res_type, id)?;
    let page = s.store.history(&ctx.access, &req).await?;
    let mut b = Bundle::new("history");
    b.total = Some(page.total);
    page_links(s, &req, page.total, &mut b);
    b.entries.extend(page.entries.into_iter().map(|e| history_entry(s, e)));
    let touched = super::search::touched(s, &b);
    Ok(Reply::new(StatusCode::OK).body(b.render(ctx.out)?, ctx.out).touched(touched))
}

/// The page of history the query asks for (`_count`, `_since`, and the paging
/// links' `_offset` and `_snapshot`).
fn history_request(ctx: &Ctx, res_type: Option<String>, id: Option<String>) -> Result<HistoryRequest> {
    let mut req = HistoryRequest { res_type, id, since: None, snapshot: now_micros(), count: 20, offset: 0 };
    for (k, v) in &ctx.query {
        let bad = |what: &str| Error::invalid("value", Some(k.clone()), format!("{k}={v} is not {what}"));
        match k.as_str() {
            "_count" => {
                req.count = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (0..=1000).contains(n))
                    .ok_or_else(|| bad("a count from 0 to 1000"))?
            }
            "_since" => {
                req.since =
                    Some(meta::parse_instant(v).ok_or_else(|| bad("an instant like 2024-01-31T10:00:00+01:00"))?)
            }
            "_offset" => req.offset = v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| bad("a page offset"))?,
            "_snapshot" => req.snapshot = v.parse().map_err(|_| bad("a snapshot from a page link"))?,
            _ if ctx.lenient() => {}
            _ => {
                return Err(Error::invalid(
                    "not-supported",
                    Some(k.clone()),
                    format!("history does not support the parameter {k}; use _count, _since"),
                ))
            }
        }
    }
    Ok(req)
}

/// The `self`, `next` and `previous` links of the page, on the same snapshot.
fn page_links(s: &AppState, req: &HistoryRequest, total: i64, b: &mut Bundle) {
    let path = match (&req.res_type, &req.id) {
        (Some(t), Some(i)) => format!("{}/{t}/{i}/_history", s.base),
        (Some(t), None) => format!("{}/{t}/_history", s.base),
        _ => format!("{}/_history", s.base),
    };
    let link = |offset: i64| {
        let since = req.since.map(|t| format!("&_since={}", urlenc(&meta::instant(t)))).unwrap_or_default();
        format!("{path}?_count={}&_snapshot={}&_offset={offset}{since}", req.count, req.snapshot)
    };
    b.links.push(("self", link(req.offset)));
    if req.offset + req.count < total {
        b.links.push(("next", link(req.offset + req.count)));
    }
    if req.offset > 0 {
        b.links.push(("previous", link((req.offset - req.count).max(0))));
    }
}

/// One version as a history entry: the resource, and the request and response that made it.
fn history_entry(s: &AppState, e: HistoryEntry) -> Entry {
    let url = s.url(&e.res_type, &e.id);
    let (method, status, req_url) = match e.method.as_str() {
        "POST" => ("POST", "201 Created", e.res_type.clone()),
        "DELETE" => ("DELETE", "204 No Content", format!("{}/{}", e.res_type, e.id)),
        _ => ("PUT", if e.version == 1 { "201 Created" } else { "200 OK" }, format!("{}/{}", e.res_type, e.id)),
    };
    Entry {
        full_url: Some(url),
        resource: e.body.map(Res::Raw),
        request: Some(json!({"method": method, "url": req_url})),
        response: Some(
            json!({"status": status, "etag": meta::etag(e.version), "lastModified": meta::instant(e.last_updated)}),
        ),
        ..Default::default()
    }
}

pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
