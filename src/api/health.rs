//! Health endpoints, the CapabilityStatement and the SMART discovery (all public).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{AppState, Ctx};
use crate::fhir::{capability, smart};

pub async fn live() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// Ready when the store answers.
pub async fn ready(State(s): State<AppState>) -> Response {
    if s.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer").into_response()
    }
}

pub async fn metadata(State(s): State<AppState>, ctx: Ctx) -> Response {
    let oauth = s.config.console.endpoints();
    let mut cs = capability::statement(s.store.registry(), &s.base, &s.config.canonical_base, oauth.as_ref());
    crate::notify::topics::advertise(&mut cs, &s.config.canonical_base);
    ctx.respond(ctx.resource(StatusCode::OK, &cs))
}

/// SMART App Launch discovery (public, as SMART requires): the issuer's endpoints the
/// console signs in with. Plain JSON, as SMART defines it; without an issuer or its
/// endpoints, a 404 OperationOutcome naming the flags to set.
pub async fn smart_configuration(State(s): State<AppState>) -> Response {
    let oauth = match smart::published(s.config.auth.issuer.as_deref(), s.config.console.endpoints()) {
        Ok(oauth) => oauth,
        Err(e) => return super::context::error_response(e, Default::default()),
    };
    let jwks = s.config.auth.jwks.as_deref().filter(|j| j.starts_with("https://") || j.starts_with("http://"));
    let discovery = smart::Discovery { issuer: s.auth.issuer(), jwks_uri: jwks, fhir_base: &s.base };
    (StatusCode::OK, [(header::CACHE_CONTROL, "max-age=300")], Json(smart::configuration(&discovery, &oauth)))
        .into_response()
}

/// A panic is a defect: logged, answered 500 with an OperationOutcome.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    super::context::error_response(crate::Error::Internal(anyhow::anyhow!("handler panicked")), Default::default())
}

/// Any path the API does not have: 404 with an OperationOutcome.
pub async fn unknown_path(uri: axum::http::Uri) -> Response {
    let e = crate::Error::NotFound(format!(
        "{} is not a path of this server; the FHIR API is under /fhir (GET /fhir/metadata)",
        uri.path()
    ));
    super::context::error_response(e, Default::default())
}

/// A method the path does not take: 405 with an OperationOutcome.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let e = crate::Error::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()));
    super::context::error_response(e, Default::default())
}
