//! `ConceptMap/$translate` (type and instance level, GET and POST): a code through
//! the ConceptMaps the caller may read, answered as `Parameters`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::context::Body;
use super::{AppState, Ctx, Reply};
use crate::auth::Interaction;
use crate::fhir::codec;
use crate::mappings::conceptmap::{translate, translate_parameters};
use crate::{Error, Result};

pub async fn translate_get(State(s): State<AppState>, ctx: Ctx) -> Response {
    let params = ctx.query.clone();
    ctx.respond(run(&s, &ctx, None, &params).await)
}

pub async fn translate_post(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let params = parameters_of(&ctx, &body)?;
        run(&s, &ctx, None, &params).await
    };
    ctx.respond(r.await)
}

pub async fn translate_instance_get(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx) -> Response {
    let params = ctx.query.clone();
    ctx.respond(run(&s, &ctx, Some(&id), &params).await)
}

pub async fn translate_instance_post(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    let r = async {
        let params = parameters_of(&ctx, &body)?;
        run(&s, &ctx, Some(&id), &params).await
    };
    ctx.respond(r.await)
}

/// The query pairs plus the primitive parameters of a POSTed `Parameters`
/// (`coding` is split into `system` and `code`).
fn parameters_of(ctx: &Ctx, body: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = ctx.query.clone();
    if body.is_empty() {
        return Ok(out);
    }
    let v = codec::parse_body(body, ctx.header("content-type"))?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::invalid("invalid", Some("resourceType".into()), "$translate takes a Parameters resource"));
    }
    for p in v.get("parameter").and_then(Value::as_array).into_iter().flatten() {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if let Some(c) = p.get("valueCoding") {
            for k in ["system", "code"] {
                if let Some(x) = c.get(k).and_then(Value::as_str) {
                    out.push((k.to_string(), x.to_string()));
                }
            }
            continue;
        }
        let value = ["valueUri", "valueCode", "valueString", "valueCanonical", "valueBoolean"]
            .iter()
            .find_map(|k| p.get(*k))
            .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()));
        if let Some(value) = value {
            out.push((name, value));
        }
    }
    Ok(out)
}

async fn run(s: &AppState, ctx: &Ctx, id: Option<&str>, params: &[(String, String)]) -> Result<Reply> {
    ctx.allow("ConceptMap", Interaction::Read)?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    for (k, v) in params {
        match k.as_str() {
            "code" | "system" | "url" | "conceptMap" | "source" | "target" | "targetsystem" | "version" => {}
            "reverse" if v == "false" => {}
            _ if ctx.lenient() => {}
            _ => {
                return Err(Error::invalid(
                    "not-supported",
                    Some(k.clone()),
                    format!("$translate does not support the parameter {k}; use code, system, url, targetsystem"),
                ))
            }
        }
    }
    let code = get("code").ok_or_else(|| Error::invalid("required", Some("code".into()), "$translate needs a code"))?;
    let maps: Vec<Value> = match id {
        Some(id) => match s.store.read(&ctx.access, "ConceptMap", id).await?.and_then(|st| st.body) {
            Some(b) => vec![serde_json::from_str(&b).map_err(anyhow::Error::from)?],
            None => return Err(Error::NotFound(format!("ConceptMap/{id} is not known"))),
        },
        None => {
            let mut q = vec![("_count".to_string(), "1000".to_string())];
            if let Some(url) = get("url").or(get("conceptMap")) {
                q.push(("url".into(), url.into()));
            }
            let q = s.store.parse_search(&ctx.access, "ConceptMap", &q, false)?;
            let page = s.store.search(&q).await?;
            page.matches.iter().filter_map(|(_, b)| serde_json::from_str(b).ok()).collect()
        }
    };
    let target = get("targetsystem").or(get("target"));
    let matches: Vec<_> = maps.iter().flat_map(|m| translate(m, get("system"), code, target)).collect();
    Ok(Reply::new(StatusCode::OK).body(codec::render(&translate_parameters(code, &matches), ctx.out)?, ctx.out))
}
