//! `GET /metrics` (the Prometheus text format; `crate::metrics` keeps the registry)
//! and the layer that counts and times every FHIR request.
//!
//! On `--listen`, `/metrics` passes the guard like the API (401 without a token, the
//! rate limit) and answers administrators only (403 otherwise). A scrape touches no
//! patient data and is not refused, so the guard records no AuditEvent for it: a
//! scraper every 15 s would otherwise fill the trail; a refused attempt is recorded,
//! as every refused request is. On `--metrics-listen`, `/metrics` alone is served,
//! without a token: that address is meant for the scraper's network only.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::{AppState, Ctx, Touched};
use crate::auth::Role;
use crate::metrics::{Snapshot, CONTENT_TYPE};
use crate::store::now_micros;
use crate::{Error, Result};

/// Counts and times the request (a layer over the FHIR routes, outside the guard:
/// refused requests count too).
pub async fn count(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    // A Bundle POSTed to the base says itself whether it is a transaction or a batch.
    let told = response.extensions().get::<Touched>().and_then(|t| t.interaction);
    let (interaction, res_type) = labels(&method, route.as_deref(), &path);
    s.metrics.request(told.unwrap_or(interaction), res_type, response.status().as_str(), started.elapsed());
    response
}

/// The interaction and the resource type of a request, as label values from bounded
/// sets: an operation's name comes from the route matched (the router's own text,
/// never the path as sent), a resource type only when it is a served one.
fn labels<'r>(method: &Method, route: Option<&'r str>, path: &str) -> (&'r str, &'static str) {
    let Some(route) = route else { return ("unknown", "") };
    let route = route.strip_prefix("/fhir").unwrap_or(route);
    let path = path.strip_prefix("/fhir").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let first = segments.first().copied().unwrap_or_default();
    let res_type = crate::fhir::types::SERVED.iter().find(|t| **t == first).copied().unwrap_or_default();
    if let Some(op) = route.split('/').find(|s| s.starts_with('$')) {
        return (op, res_type);
    }
    if route == "/metadata" {
        return ("capabilities", "");
    }
    if route == "/.well-known/smart-configuration" {
        return ("smart-configuration", "");
    }
    (super::guard::interaction(method, &segments).0, res_type)
}

/// `GET /metrics` on `--listen`: an administrator's token only.
pub async fn scrape_as_admin(State(s): State<AppState>, ctx: Ctx) -> Response {
    if ctx.caller.as_ref().map(|c| c.role) != Some(Role::Admin) {
        return ctx.error(Error::Forbidden(
            "/metrics is for the CUP's administrators (role admin), or without a token on --metrics-listen".into(),
        ));
    }
    scrape(State(s)).await
}

/// `GET /metrics` without a token (on `--metrics-listen`).
pub async fn scrape(State(s): State<AppState>) -> Response {
    match exposition(&s).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => super::context::error_response(e, Default::default()),
    }
}

/// The exposition, with the gauges read now. A database that does not answer
/// leaves out the outbox's gauges, not the rest: an outage is when they matter.
async fn exposition(s: &AppState) -> Result<String> {
    let pool = s.store.pool_usage();
    let (outbox, oldest) = match s.store.outbox_backlog().await {
        Ok(b) => (Some(b.waiting), b.oldest_pending_us.map_or(0.0, |t| (now_micros() - t).max(0) as f64 / 1e6)),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the outbox could not be read");
            (None, f64::NAN)
        }
    };
    let now = Snapshot {
        db_in_use: pool.in_use,
        db_idle: pool.idle,
        db_max: pool.max,
        audit_queued: s.auditor.queued(),
        outbox,
        oldest_pending_secs: oldest,
    };
    s.metrics.render(&now).map_err(|e| Error::Internal(anyhow::anyhow!("rendering the metrics: {e}")))
}

/// Binds `--metrics-listen` (a bad address stops the start, as `--listen` does).
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}; choose another --metrics-listen address"))
}

/// Serves `/metrics` alone, without a token, on `listener` until the task is stopped.
pub async fn serve(listener: TcpListener, state: AppState) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n") })
        .method_not_allowed_fallback(|| async { (StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n") })
        .with_state(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics without a token");
    }
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}
