//! The operators' console, served at `/console`: hand-written HTML, CSS and
//! JavaScript modules embedded in the binary (no build step, nothing fetched from
//! elsewhere). The console is a FHIR client of the gateway's own `/fhir` API with
//! the operator's bearer token: every rule, visibility and audit record stays the
//! API's. Its pages and assets need no token.
//!
//! | route | what |
//! |---|---|
//! | `GET /console`, `/console/` | the console's page |
//! | `GET /console/assets/{name}` | an embedded asset (`ETag`, `Cache-Control: no-cache`); unknown → plain `404` |
//! | `GET /console/settings.json` | what the pages need to know of this gateway: the FHIR path, the canonical base, the NRE's system and format, whether the demo sign-in is on, and the issuer's sign-in (`oauth`) when configured |
//! | `GET /console/whoami` | the role, organisation and channel the bearer token maps to (the claims map is the gateway's, so an issuer's token says them in its own words) |
//! | `GET /console/demo-roles`, `POST /console/demo-token` | the demo's sign-in ([`demo`]): only with `--demo` and no `--issuer`, else `404` |

mod assets;
mod demo;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::api::AppState;
use crate::Error;

/// The console's routes, to be merged into the gateway's router outside the guard.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(assets::index))
        .route("/console/", get(assets::index))
        .route("/console/assets/{name}", get(assets::asset))
        .route("/console/settings.json", get(settings))
        .route("/console/whoami", get(whoami))
        .route("/console/demo-roles", get(demo::roles))
        .route("/console/demo-token", post(demo::token))
}

/// `GET /console/settings.json`: this gateway's names the pages use (no secret).
async fn settings(State(s): State<AppState>) -> Response {
    let nre = s.mappings.booking.nre.as_ref();
    let body = json!({
        "fhirBase": "/fhir",
        "canonicalBase": s.config.canonical_base,
        "nre": {
            "system": nre.map(|n| n.system.as_str()).unwrap_or(crate::booking::NRE_SYSTEM),
            "format": nre.map(|n| n.format.as_str()),
        },
        "demo": demo::enabled(&s.config),
        "priorityClasses": class_deadlines(&s),
        "cancellationNoticeHours": s.mappings.billing.cancellation(rome_today()).map(|c| c.notice_hours),
        "oauth": oauth_settings(&s),
    });
    json_response(StatusCode::OK, &body)
}

/// The classes, most urgent first, with the deadlines in force today (the dated
/// rules of `mappings/booking/rules.json`), for the figures' marks.
fn class_deadlines(s: &AppState) -> Vec<serde_json::Value> {
    let in_force = s.mappings.booking.deadlines_on(rome_today());
    crate::mappings::booking::priority_classes()
        .iter()
        .map(|c| {
            let mut v = json!(in_force.and_then(|d| d.deadlines.get(&c.code)));
            if let Some(o) = v.as_object_mut() {
                o.insert("code".into(), json!(c.code));
            } else {
                v = json!({"code": c.code});
            }
            v
        })
        .collect()
}

fn rome_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive()
}

/// The issuer's sign-in, as the discovery document has it, plus what the console
/// sends as `aud` (the FHIR base) and the scope it asks for; `null` without the flags.
fn oauth_settings(s: &AppState) -> serde_json::Value {
    let Some(oauth) = s.config.console.endpoints() else { return serde_json::Value::Null };
    json!({
        "clientId": oauth.client_id,
        "authorizeUrl": oauth.authorize_url,
        "tokenUrl": oauth.token_url,
        "redirectUri": crate::fhir::smart::console_redirect_uri(&s.base),
        "aud": s.base.as_ref(),
        "scope": "openid fhirUser user/*.cruds",
    })
}

/// `GET /console/whoami`: whom the bearer token speaks for, once checked like any
/// API call's. The console shows it and picks the desks by it; the API still
/// decides every request.
async fn whoami(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return outcome_response(&Error::Unauthorized("", "send Authorization: Bearer <token>".into()));
    };
    match s.auth.verify(token).await {
        Ok(c) => json_response(
            StatusCode::OK,
            &json!({"sub": c.sub, "role": c.role.as_str(), "org": c.org.as_ref().map(|o| format!("Organization/{o}")),
                "channel": c.channel, "exp": c.expires_at}),
        ),
        Err(e) => outcome_response(&Error::Unauthorized(e.code(), e.to_string())),
    }
}

/// A JSON answer that is not FHIR (the console's own routes).
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
        .into_response()
}

/// The project's error as its OperationOutcome.
fn outcome_response(e: &Error) -> Response {
    (e.status(), [(header::CONTENT_TYPE, "application/fhir+json")], e.outcome().to_string()).into_response()
}
