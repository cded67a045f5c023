//! `GET /fhir/OperationDefinition/{id}` and `GET /fhir/OperationDefinition`: the
//! declarations of cupola's operations (`crate::fhir::operations`), read-only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{AppState, Ctx};
use crate::access::Rule;
use crate::fhir::operations::{self, definition, Operation};
use crate::{Error, Result};

const TYPE: &str = "OperationDefinition";

/// 403 unless the access rules let this caller read definitions.
fn readable(ctx: &Ctx) -> Result<()> {
    match ctx.access.read(TYPE) {
        Rule::Nothing => Err(Error::Forbidden("this caller may not read OperationDefinitions".into())),
        _ => Ok(()),
    }
}

pub async fn read(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx) -> Response {
    let r = readable(&ctx).and_then(|()| {
        let op = operations::by_id(&id).ok_or_else(|| Error::NotFound(format!("{TYPE}/{id} is not known")))?;
        ctx.resource(StatusCode::OK, &definition(op, &s.config.canonical_base))
    });
    ctx.respond(r)
}

/// Whether `op` matches a search parameter of the listing.
fn matches(op: &Operation, name: &str, value: &str, canonical: &str) -> Result<bool> {
    let any = |v: &str| value.split(',').any(|x| x == v);
    Ok(match name {
        "_id" => any(&op.id()),
        "url" => any(&op.url(canonical)),
        "code" => any(op.code),
        "base" => op.base.is_some_and(any),
        _ => {
            return Err(Error::invalid(
                "not-supported",
                Some(name.to_string()),
                format!("{TYPE} is searched by _id, url, code or base, not {name}"),
            ))
        }
    })
}

/// The listing: every OperationDefinition, or those matching `_id`, `url`, `code`, `base`.
pub async fn search(State(s): State<AppState>, ctx: Ctx) -> Response {
    let canonical = &s.config.canonical_base;
    let r = readable(&ctx).and_then(|()| {
        let mut found = Vec::new();
        for op in operations::ALL {
            let mut keep = true;
            for (name, value) in ctx.query.iter().filter(|(n, _)| !ctx.lenient() || known(n)) {
                keep &= matches(op, name, value, canonical)?;
            }
            if keep {
                found.push(json!({"fullUrl": s.url(TYPE, &op.id()), "resource": definition(op, canonical), "search": {"mode": "match"}}));
            }
        }
        let bundle: Value = json!({"resourceType": "Bundle", "type": "searchset", "total": found.len(), "entry": found});
        ctx.resource(StatusCode::OK, &bundle)
    });
    ctx.respond(r)
}

fn known(name: &str) -> bool {
    ["_id", "url", "code", "base"].contains(&name)
}
