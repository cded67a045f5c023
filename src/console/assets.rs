//! The console's files, embedded in the binary, each with its content type and an
//! `ETag` (a hash of its bytes): browsers revalidate (`Cache-Control: no-cache`)
//! and get `304` while the binary is the same.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api::AppState;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// What the page may load and call: this origin only, and, when the console signs in
/// with the region's issuer, the token endpoint's origin (the browser posts the code
/// there). The authorization endpoint is a top-level navigation, which `connect-src`
/// and `form-action` do not govern.
fn policy(token_origin: Option<&str>) -> String {
    let connect = token_origin.map_or_else(|| "'self'".to_string(), |o| format!("'self' {o}"));
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The origin (`https://host:port`) of an absolute URL; `None` for anything else, so
/// that a value the policy cannot name is left out rather than widening it.
pub(super) fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    matches!(u.scheme(), "https" | "http").then(|| u.origin().ascii_serialization())
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $kind:expr) => {
        Asset { name: $name, content_type: $kind, body: include_bytes!(concat!("assets/", $name)) }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("print.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("i18n.js", JS),
    asset!("i18n-en.js", JS),
    asset!("i18n-integration.js", JS),
    asset!("i18n-booking.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("directory.js", JS),
    asset!("signin.js", JS),
    asset!("oauth.js", JS),
    asset!("booking.js", JS),
    asset!("proposals.js", JS),
    asset!("waitlist.js", JS),
    asset!("booked.js", JS),
    asset!("appointments.js", JS),
    asset!("payment.js", JS),
    asset!("receipt.js", JS),
    asset!("integration.js", JS),
    asset!("deadletter.js", JS),
    asset!("agenda.js", JS),
    asset!("agenda-template.js", JS),
    asset!("agenda-close.js", JS),
    asset!("i18n-agenda.js", JS),
    asset!("figures.js", JS),
    asset!("charts.js", JS),
    asset!("i18n-figures.js", JS),
];

/// The quoted hash of each asset, in [`ASSETS`] order, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = Sha256::digest(a.body);
                let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// `GET /console` and `/console/`: the page.
pub(super) async fn index(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let token_origin = s.config.console.token_url.as_deref().and_then(origin);
    serve("index.html", &headers, token_origin.as_deref()).unwrap_or_else(not_found)
}

/// `GET /console/assets/{name}`.
pub(super) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers, None).unwrap_or_else(not_found)
}

/// A plain 404: the console's files are not FHIR resources.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}

/// The asset named `name`, or `304` when the client holds it already; `None` for
/// a name the console does not have.
fn serve(name: &str, headers: &HeaderMap, token_origin: Option<&str>) -> Option<Response> {
    let i = ASSETS.iter().position(|a| a.name == name)?;
    let (a, tag) = (&ASSETS[i], &etags()[i]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == tag.as_str() || t.trim() == "*"));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, a.body).into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    if a.content_type == HTML {
        if let Ok(v) = HeaderValue::from_str(&policy(token_origin)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_small_and_names_no_other_origin() {
        for a in ASSETS {
            let text = std::str::from_utf8(a.body).expect("UTF-8");
            assert!(text.lines().count() < 400, "{} is over 400 lines", a.name);
            assert!(!text.contains("http://") && !text.contains("https://"), "{} names another origin", a.name);
        }
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags.iter().all(|t| t.len() == 26 && t.starts_with('"')));
    }

    #[test]
    fn the_policy_names_the_token_endpoints_origin_only() {
        assert!(policy(None).contains("connect-src 'self';"));
        let o = origin("https://sso.example.it:8443/realms/cup/protocol/openid-connect/token");
        assert_eq!(o.as_deref(), Some("https://sso.example.it:8443"));
        assert!(policy(o.as_deref()).contains("connect-src 'self' https://sso.example.it:8443;"));
        assert_eq!(origin("not a url"), None);
    }
}
