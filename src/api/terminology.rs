//! `ConceptMap/$translate` (type and instance level, GET and POST): a code through
//! the ConceptMaps the caller may read, answered as `Parameters`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::context::operation_parameters;
use super::limit::Body;
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
        let params = operation_parameters(&ctx, &body)?;
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
        let params = operation_parameters(&ctx, &body)?;
        run(&s, &ctx, Some(&id), &params).await
    };
    ctx.respond(r.await)
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
