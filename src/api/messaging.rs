//! `POST /fhir/$process-message`: a provider system that speaks HTTP sends its
//! messages here (the same handler as the inbound queue; see `crate::messaging::inbound`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::limit::Body;
use super::params::Args;
use super::{AppState, Ctx};
use crate::fhir::operations;
use crate::messaging::inbound::{self, Sender};
use crate::{Error, Result};

pub async fn process_message(State(s): State<AppState>, ctx: Ctx, Body(body): Body) -> Response {
    let r = async {
        let org = match ctx.caller.as_deref() {
            Some(c) if c.role == crate::auth::Role::Provider => c.org.clone(),
            Some(_) => None,
            None => return Err(Error::Unauthorized("invalid_token", "a bearer token is required".into())),
        };
        let Some(org) = org else {
            return Err(Error::Forbidden(
                "$process-message takes messages from provider systems (role provider)".into(),
            ));
        };
        let args = Args::read(&operations::PROCESS_MESSAGE, &ctx, &body)?;
        // Declared 1..1: present once the parameters are read.
        let bundle = args.resource("content").cloned().unwrap_or_default();
        let response = inbound::process(&s.store, &Sender::Organization(org), &bundle).await;
        s.metrics.inbound("http", response.as_ref().err().map(|e| e.status().as_u16()));
        ctx.resource(StatusCode::OK, &response?)
    };
    let r: Result<_> = r.await;
    ctx.respond(r)
}
