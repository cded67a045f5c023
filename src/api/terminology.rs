//! `ConceptMap/$translate` (type and instance level, GET and POST): a code through
//! the ConceptMaps the caller may read, answered as `Parameters`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx, Reply};
use crate::auth::Interaction;
use crate::fhir::{codec, operations};
use crate::mappings::conceptmap::{translate, translate_parameters};
use crate::{Error, Result};

pub async fn translate_get(State(s): State<AppState>, ctx: Ctx) -> Response {
    ctx.respond(run(&s, &ctx, None, &[]).await)
}

pub async fn translate_post(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    ctx.respond(run(&s, &ctx, None, &body).await)
}

pub async fn translate_instance_get(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx) -> Response {
    ctx.respond(run(&s, &ctx, Some(&id), &[]).await)
}

pub async fn translate_instance_post(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ctx: Ctx,
    Body(body): Body,
) -> Response {
    ctx.respond(run(&s, &ctx, Some(&id), &body).await)
}

async fn run(s: &AppState, ctx: &Ctx, id: Option<&str>, body: &[u8]) -> Result<Reply> {
    ctx.allow("ConceptMap", Interaction::Read)?;
    let args = Args::read(&operations::TRANSLATE, ctx, body)?;
    if args.boolean("reverse") == Some(true) {
        return Err(Error::invalid(
            "not-supported",
            Some("reverse".into()),
            "$translate does not translate in reverse",
        ));
    }
    // `coding` carries the code and its system together.
    let coding = args.token("coding");
    let code = args.text("code").or_else(|| coding.as_ref().map(|c| c.code.clone()));
    let system = args.text("system").or_else(|| coding.and_then(|c| c.system));
    let code = code.ok_or_else(|| Error::invalid("required", Some("code".into()), "$translate needs a code"))?;
    let maps: Vec<Value> = match id {
        Some(id) => match s.store.read(&ctx.access, "ConceptMap", id).await?.and_then(|st| st.body) {
            Some(b) => vec![serde_json::from_str(&b).map_err(anyhow::Error::from)?],
            None => return Err(Error::NotFound(format!("ConceptMap/{id} is not known"))),
        },
        None => {
            let mut q = vec![("_count".to_string(), "1000".to_string())];
            if let Some(url) = args.text("url").or(args.text("conceptMap")) {
                q.push(("url".into(), url));
            }
            let q = s.store.parse_search(&ctx.access, "ConceptMap", &q, false)?;
            let page = s.store.search(&q).await?;
            page.matches.iter().filter_map(|(_, b)| serde_json::from_str(b).ok()).collect()
        }
    };
    let target = args.text("targetsystem").or(args.text("target"));
    let matches: Vec<_> = maps.iter().flat_map(|m| translate(m, system.as_deref(), &code, target.as_deref())).collect();
    Ok(Reply::new(StatusCode::OK).body(codec::render(&translate_parameters(&code, &matches), ctx.out)?, ctx.out))
}
