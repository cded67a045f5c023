//! `Subscription/{id}/$status`, `$events` and `$get-ws-binding-token` (the
//! Subscriptions Backport IG's): the subscription's owner, or an administrator.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx, Reply, Touched};
use crate::auth::Interaction;
use crate::fhir::{codec, operations};
use crate::{Error, Result};

fn touched(id: &str) -> Touched {
    Touched { entities: vec![format!("Subscription/{id}")], ..Default::default() }
}

pub async fn status(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Subscription", Interaction::Read)?;
        Args::read(&operations::SUBSCRIPTION_STATUS, &ctx, &body)?;
        let out = crate::notify::status(&s.store, &ctx.access, &s.base, &id).await?;
        Ok(Reply::new(StatusCode::OK).body(codec::render(&out, ctx.out)?, ctx.out).touched(touched(&id)))
    };
    ctx.respond(r.await)
}

/// An event number: a whole number from 1.
fn number(args: &Args, name: &str) -> Result<Option<i64>> {
    match args.text(name) {
        None => Ok(None),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(Error::invalid("value", Some(name.into()), format!("{name}={t}: an event number, 1 or more"))),
        },
    }
}

pub async fn events(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Subscription", Interaction::Read)?;
        let args = Args::read(&operations::SUBSCRIPTION_EVENTS, &ctx, &body)?;
        let range = (number(&args, "eventsSinceNumber")?, number(&args, "eventsUntilNumber")?);
        let content = args.text("content");
        let out = crate::notify::events(&s.store, &ctx.access, &s.base, &id, range, content.as_deref()).await?;
        Ok(Reply::new(StatusCode::OK).body(codec::render(&out, ctx.out)?, ctx.out).touched(touched(&id)))
    };
    ctx.respond(r.await)
}

pub async fn binding_token(State(s): State<AppState>, Path(id): Path<String>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        ctx.allow("Subscription", Interaction::Read)?;
        Args::read(&operations::SUBSCRIPTION_WS_BINDING_TOKEN, &ctx, &body)?;
        let secs = s.config.notify.subscription_ws_token_secs;
        let out = crate::notify::binding_token(&s.store, &ctx.access, &s.base, &id, secs).await?;
        Ok(ctx.resource(StatusCode::OK, &out)?.touched(touched(&id)))
    };
    ctx.respond(r.await)
}
