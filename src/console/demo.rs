//! The demo's sign-in: with `serve --demo` and no `--issuer`, the console's sign-in
//! page offers the demo's roles, each with organisations of the demo region, and
//! mints a token for the one picked with the development key (as `cupola token`
//! does). Without the demo, or with an external issuer, both routes answer `404`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{json_response, outcome_response};
use crate::api::AppState;
use crate::auth::{default_scope, mint, Role, TokenRequest};
use crate::demo::region;
use crate::fhir::names;
use crate::{Config, Error};

/// How long a console token lasts: a working day at a call centre.
const TTL_SECS: i64 = 10 * 3600;

/// The operators' roles the sign-in offers, in this order (the patient app is no
/// operator).
const ROLES: [Role; 4] = [Role::BookingPoint, Role::PaymentPoint, Role::Provider, Role::Admin];

/// How many organisations of each kind the sign-in lists (any of the region's is
/// accepted).
const LISTED_PER_CHANNEL: usize = 2;

/// Whether the demo sign-in is on: `--demo` and the development key.
pub(super) fn enabled(config: &Config) -> bool {
    config.demo && config.auth.issuer.is_none()
}

/// What an organisation of the demo region is.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Region,
    Provider,
    /// A booking point, with its channel.
    Point(String),
    Other,
}

struct DemoOrg {
    id: String,
    name: String,
    kind: Kind,
}

/// The demo region's organisations, as `crate::demo::region` makes them.
fn organisations(base: &str) -> Vec<DemoOrg> {
    let channels = names::channel_system(base);
    let providers = names::provider_identifier(base);
    region::resources(base, &|_| Vec::new())
        .into_iter()
        .filter(|r| r["resourceType"] == "Organization")
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            let coding = &r["type"][0]["coding"][0];
            let kind = if id == region::REGION_ORG {
                Kind::Region
            } else if r["identifier"][0]["system"] == providers.as_str() {
                Kind::Provider
            } else if coding["system"] == channels.as_str() {
                Kind::Point(coding["code"].as_str().unwrap_or_default().to_string())
            } else {
                Kind::Other
            };
            DemoOrg { id, name: r["name"].as_str().unwrap_or_default().to_string(), kind }
        })
        .collect()
}

/// Whether `role` may speak for an organisation of `kind`.
fn fits(role: Role, kind: &Kind) -> bool {
    match role {
        Role::Admin => *kind == Kind::Region,
        Role::Provider => *kind == Kind::Provider,
        Role::BookingPoint | Role::PaymentPoint => matches!(kind, Kind::Point(_)),
        Role::PatientApp => false,
    }
}

fn listed(o: &DemoOrg) -> Value {
    let mut v = json!({"reference": format!("Organization/{}", o.id), "name": o.name});
    if let Kind::Point(channel) = &o.kind {
        v["channel"] = json!(channel);
    }
    v
}

/// The organisations the sign-in offers for `role`: a few of each channel for the
/// points (pharmacies first for a payment point), every provider, the region.
fn offered(role: Role, orgs: &[DemoOrg]) -> Vec<Value> {
    let mut fitting: Vec<&DemoOrg> = orgs.iter().filter(|o| fits(role, &o.kind)).collect();
    if role == Role::PaymentPoint {
        fitting.sort_by_key(|o| o.kind != Kind::Point("pharmacy".into()));
    }
    let mut per_channel: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for o in fitting {
        let Kind::Point(channel) = &o.kind else {
            out.push(listed(o));
            continue;
        };
        let n = per_channel.entry(channel.as_str()).or_default();
        *n += 1;
        if *n <= LISTED_PER_CHANNEL {
            out.push(listed(o));
        }
    }
    out
}

/// `GET /console/demo-roles`: the operators' roles of the demo and the
/// organisations each may sign in as.
pub(super) async fn roles(State(s): State<AppState>) -> Response {
    if !enabled(&s.config) {
        return outcome_response(&not_here());
    }
    let orgs = organisations(&s.config.canonical_base);
    let roles: Vec<Value> =
        ROLES.iter().map(|r| json!({"role": r.as_str(), "organizations": offered(*r, &orgs)})).collect();
    json_response(StatusCode::OK, &json!({"roles": roles}))
}

fn not_here() -> Error {
    Error::NotFound("the demo sign-in exists only on a gateway started with --demo and without --issuer".into())
}

/// What a sign-in asks for, checked against the demo region.
#[derive(Debug)]
struct Asked {
    role: Role,
    org: String,
    name: String,
    channel: Option<String>,
}

fn bad(element: &str, text: impl Into<String>) -> Error {
    Error::invalid("value", Some(element.to_string()), text)
}

fn text_field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Error> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
        Some(_) => Err(bad(name, format!("`{name}` must be a non-empty string"))),
    }
}

/// The body's role, organisation and channel, checked: the role an operator's,
/// the organisation one of the demo region's that the role may speak for, the
/// channel (default: the booking point's own) that point's.
fn asked(body: &[u8], base: &str) -> Result<Asked, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid("structure", None, format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(Error::invalid("structure", None, "the body must be a JSON object with `role` and `org`"));
    };
    if let Some(other) = body.keys().find(|k| !["role", "org", "channel"].contains(&k.as_str())) {
        return Err(bad(other, format!("unknown element `{other}`; expected role, org and channel")));
    }
    let role = role_of(&body)?;
    let org = match (text_field(&body, "org")?, role) {
        (Some(o), _) => o.strip_prefix("Organization/").unwrap_or(o).to_string(),
        (None, Role::Admin) => region::REGION_ORG.to_string(),
        (None, _) => {
            return Err(Error::invalid("required", Some("org".into()), format!("`org` is required for {role}")))
        }
    };
    let orgs = organisations(base);
    let Some(found) = orgs.iter().find(|o| o.id == org) else {
        return Err(bad("org", format!("Organization/{org} is not an organisation of the demo region")));
    };
    if !fits(role, &found.kind) {
        return Err(bad("org", format!("a {role} cannot speak for Organization/{org} ({})", found.name)));
    }
    let channel = channel_of(&body, role, found)?;
    Ok(Asked { role, org, name: found.name.clone(), channel })
}

/// `role`: one of the operators' roles.
fn role_of(body: &Map<String, Value>) -> Result<Role, Error> {
    let text = text_field(body, "role")?.ok_or_else(|| {
        Error::invalid(
            "required",
            Some("role".into()),
            "`role` is required (booking-point, payment-point, provider, admin)",
        )
    })?;
    let role: Role = text.parse().map_err(|e: String| bad("role", e))?;
    if !ROLES.contains(&role) {
        return Err(bad(
            "role",
            format!("`{role}` is not an operator's role; the console signs in booking-point, payment-point, provider and admin"),
        ));
    }
    Ok(role)
}

/// `channel`: the booking point's own (the default), none for other organisations.
fn channel_of(body: &Map<String, Value>, role: Role, org: &DemoOrg) -> Result<Option<String>, Error> {
    let own = match &org.kind {
        Kind::Point(c) => Some(c.clone()),
        _ => None,
    };
    match (text_field(body, "channel")?, &own) {
        (Some(c), Some(o)) if c != o => {
            Err(bad("channel", format!("Organization/{} serves the channel {o}, not {c}", org.id)))
        }
        (Some(c), None) => Err(bad("channel", format!("a {role} has no channel (got {c})"))),
        _ => Ok(own),
    }
}

/// `POST /console/demo-token` with `{"role", "org", "channel"}`: a token signed
/// with the development key, valid for a working day.
pub(super) async fn token(State(s): State<AppState>, body: Bytes) -> Response {
    if !enabled(&s.config) {
        return outcome_response(&not_here());
    }
    let asked = match asked(&body, &s.config.canonical_base) {
        Ok(a) => a,
        Err(e) => return outcome_response(&e),
    };
    let req = TokenRequest {
        sub: format!("console-{}", asked.org),
        role: asked.role,
        org: Some(format!("Organization/{}", asked.org)),
        channel: asked.channel.clone(),
        patient: None,
        scope: default_scope(asked.role).into(),
        ttl_secs: TTL_SECS,
        client_id: Some("cupola-console".into()),
    };
    let auth = s.config.auth.clone();
    let minted = tokio::task::spawn_blocking(move || mint(&auth, &req)).await;
    match minted.map_err(anyhow::Error::from).and_then(|m| m) {
        Ok(token) => json_response(
            StatusCode::OK,
            &json!({
                "token": token, "role": asked.role.as_str(), "org": format!("Organization/{}", asked.org),
                "name": asked.name, "channel": asked.channel, "expires_in": TTL_SECS,
            }),
        ),
        Err(e) => outcome_response(&Error::Internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://example.org/cupola";

    #[test]
    fn the_sign_in_offers_organisations_each_role_may_speak_for() {
        let orgs = organisations(BASE);
        for role in ROLES {
            let offered = offered(role, &orgs);
            assert!(!offered.is_empty(), "{role}");
            for o in &offered {
                let id = o["reference"].as_str().unwrap().trim_start_matches("Organization/");
                let body = json!({"role": role.as_str(), "org": id}).to_string();
                assert!(asked(body.as_bytes(), BASE).is_ok(), "{role} {id}");
            }
        }
        assert_eq!(offered(Role::PaymentPoint, &orgs)[0]["channel"], "pharmacy");
        assert_eq!(offered(Role::Provider, &orgs).len(), 8);
    }

    #[test]
    fn a_bad_sign_in_names_the_element() {
        let cases = [
            (json!({"role": "nurse", "org": "bp-counter-001"}), Some("role")),
            (json!({"role": "patient-app"}), Some("role")),
            (json!({"org": "bp-counter-001"}), Some("role")),
            (json!({"role": "booking-point"}), Some("org")),
            (json!({"role": "booking-point", "org": "bp-counter-999"}), Some("org")),
            (json!({"role": "provider", "org": "bp-counter-001"}), Some("org")),
            (json!({"role": "booking-point", "org": "bp-counter-001", "channel": "pharmacy"}), Some("channel")),
            (json!({"role": "provider", "org": "prov-galliera", "channel": "counter"}), Some("channel")),
            (json!({"role": "admin", "colour": "red"}), Some("colour")),
            (json!(["admin"]), None),
        ];
        for (body, element) in cases {
            let e = asked(body.to_string().as_bytes(), BASE).expect_err("refused");
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.issues()[0].expression.as_deref(), element, "{body}");
        }
        let ok = asked(br#"{"role": "booking-point", "org": "Organization/bp-call-centre-002"}"#, BASE).unwrap();
        assert_eq!((ok.org.as_str(), ok.channel.as_deref()), ("bp-call-centre-002", Some("call-centre")));
        assert_eq!(asked(br#"{"role": "admin"}"#, BASE).unwrap().org, region::REGION_ORG);
    }
}
