//! The gate every protected request passes: the bearer token (401 otherwise), the
//! caller's rate limit (429), and on the way out the audit record of what it
//! touched. Scopes and visibility are decided further in, by the handlers and the
//! store, from the caller this puts in the request.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::context::{error_response, Touched};
use super::AppState;
use crate::access::is_patient_data;
use crate::audit::Record;
use crate::auth::Caller;
use crate::config::LimitsConfig;
use crate::fhir::codec::Output;
use crate::store::now_micros;
use crate::Error;

/// Requests per caller (token subject and client).
pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
}

impl Limiter {
    /// `None` when the limit is off (`--rate-limit 0`).
    pub fn new(cfg: &LimitsConfig) -> Option<Limiter> {
        let rate = NonZeroU32::new(cfg.rate_limit)?;
        let burst = NonZeroU32::new(cfg.rate_burst.max(cfg.rate_limit)).unwrap_or(rate);
        Some(Limiter { inner: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)) })
    }

    fn check(&self, caller: &Caller) -> Result<(), Error> {
        let key = format!("{}|{}", caller.sub, caller.client_id.as_deref().unwrap_or(""));
        match self.inner.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(Error::TooManyRequests(
                    secs.max(1),
                    format!("too many requests from {}; slow down and retry after the Retry-After delay", caller.sub),
                ))
            }
        }
    }

    /// Forgets callers that have been quiet (keeps the table small).
    pub fn tidy(&self) {
        self.inner.retain_recent();
    }
}

/// The token of `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Error::Unauthorized(
            "",
            "this endpoint needs a bearer token: send Authorization: Bearer <token> (`cupola token` mints one in development)"
                .into(),
        ));
    };
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Error::Unauthorized("invalid_request", "the Authorization header must be `Bearer <token>`".into())),
    }
}

pub async fn guard(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = now_micros();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let method = req.method().clone();
    let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let address = forwarded_for(req.headers()).or_else(|| peer.map(|a| a.ip().to_string()));
    let checked = match bearer(req.headers()) {
        Ok(t) => s.auth.verify(t).await.map_err(|e| Error::Unauthorized(e.code(), format!("{e}"))),
        Err(e) => Err(e),
    };
    let (caller, response) = match checked {
        Err(e) => (None, error_response(e, Output::default())),
        Ok(caller) => match s.limiter.as_ref().map_or(Ok(()), |l| l.check(&caller)) {
            Err(e) => (Some(caller), error_response(e, Output::default())),
            Ok(()) => {
                req.extensions_mut().insert(caller.clone());
                (Some(caller), within_time_limit(&s, req, next).await)
            }
        },
    };
    if let Some(record) = audit_record(started, &method, &target, address, caller, &response) {
        s.auditor.record(record).await;
    }
    response
}

/// The client address a trusted proxy reports (first of `X-Forwarded-For`).
fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-forwarded-for")?.to_str().ok()?;
    let first = v.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_string())
}

/// What the request was, from its method and path (relative to the FHIR base).
pub(super) fn interaction(method: &Method, segments: &[&str]) -> (&'static str, &'static str) {
    // `$outbox`, `Appointment/$find`: operations, not a search, a create or a read.
    if segments.last().is_some_and(|s| s.starts_with('$')) {
        return ("operation", "E");
    }
    match (method.as_str(), segments) {
        ("POST", []) => ("transaction", "E"),
        ("GET", ["_history"]) => ("history-system", "R"),
        ("GET", [_]) | ("POST", [_, "_search"]) => ("search-type", "E"),
        ("POST", [_]) => ("create", "C"),
        ("PUT", _) => ("update", "U"),
        ("DELETE", _) => ("delete", "D"),
        ("GET", [_, "_history"]) => ("history-type", "R"),
        ("GET", [_, _]) => ("read", "R"),
        ("GET", [_, _, "_history"]) => ("history-instance", "R"),
        ("GET", [_, _, "_history", _]) => ("vread", "R"),
        _ => ("operation", "E"),
    }
}

/// The record of a request, when it must be audited: it touched patient data, its
/// handler asks for it (`Touched::always`), or it was refused (401, 403, a failed
/// transaction or batch).
fn audit_record(
    started: i64,
    method: &Method,
    target: &str,
    address: Option<String>,
    caller: Option<Arc<Caller>>,
    response: &Response,
) -> Option<Record> {
    let path = target.split('?').next().unwrap_or("");
    let rest = path.strip_prefix("/fhir").unwrap_or(path);
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (mut name, action) = interaction(method, &segments);
    if path == "/metrics" {
        // The scrape (a nested route's path comes without `/fhir`, so `/fhir/metrics`,
        // a search of no type, is named so too): no FHIR interaction.
        name = "operation";
    }
    let status = response.status().as_u16();
    let mut entities = Vec::new();
    let always = response.extensions().get::<Touched>().is_some_and(|t| t.always);
    if let Some(t) = response.extensions().get::<Touched>() {
        entities.extend(t.entities.iter().cloned());
        if let Some(i) = t.interaction {
            name = i;
        }
    } else if let [t, id, ..] = segments.as_slice() {
        if !id.starts_with(['_', '$']) {
            entities.push(format!("{t}/{id}"));
        }
    } else if let Some(loc) = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        // A create: `…/Type/id/_history/1`.
        let parts: Vec<&str> = loc.rsplitn(4, '/').collect();
        if let [_, "_history", id, before] = parts.as_slice() {
            if let Some(t) = before.rsplit('/').next() {
                entities.push(format!("{t}/{id}"));
            }
        }
    }
    let path_type = segments.first().filter(|t| !t.starts_with('_')).copied();
    let touches_patient_data = path_type.is_some_and(is_patient_data)
        || entities.iter().any(|e| e.split('/').next().is_some_and(is_patient_data));
    // A refused transaction or batch says nothing of what its entries named: it is
    // recorded whatever they were.
    let refused_bundle = segments.is_empty() && *method == Method::POST && status >= 400;
    if !(always || touches_patient_data || refused_bundle || status == 401 || status == 403) {
        return None;
    }
    let detail = match status {
        401 => Some("no valid bearer token".to_string()),
        403 => Some("refused by the token's scopes or role".to_string()),
        404 => Some("not found, or not visible to this caller".to_string()),
        _ => None,
    };
    Some(Record {
        recorded: started,
        interaction: name,
        action,
        status,
        caller,
        address,
        entities,
        request: format!("{method} {target}"),
        detail,
    })
}

/// Ends requests that take longer than `--request-timeout-ms` (503, OperationOutcome);
/// inside the guard, so that a stopped request is still audited.
async fn within_time_limit(s: &AppState, req: Request, next: Next) -> Response {
    let limit = Duration::from_millis(s.config.limits.request_timeout_ms.max(1));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error_response(
            Error::Timeout(format!(
                "the request took longer than {} ms (--request-timeout-ms) and was stopped; a write in it may have been kept: read before retrying",
                limit.as_millis()
            )),
            Output::default(),
        ),
    }
}
