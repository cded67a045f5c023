//! Signing in to the console in production: the SMART discovery document and the
//! flags that publish it, the FHIR base as the tokens' audience, and an issuer's
//! (Keycloak-like) claims mapped to cupola's role, organisation and channel.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{json, Value};

use crate::booking::{catalog_codes, region, window};
use crate::helpers::{match_ids, Backend, TestApp};

const ISSUER: &str = "https://idp.test/realms/cup";
/// The FHIR base the gateway is published at, configured with a trailing `/`.
const FHIR_BASE: &str = "https://cup.test/fhir";
const AUTHORIZE: &str = "https://idp.test/realms/cup/protocol/openid-connect/auth";
const TOKEN: &str = "https://idp.test/realms/cup/protocol/openid-connect/token";
const CAPABILITIES_URL: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities";
/// What cupola supports of SMART App Launch, in the document and in the CapabilityStatement.
const CAPABILITIES: &[&str] = cupola::fhir::smart::CAPABILITIES;

/// An issuer of the tests: its own ES256 key, its JWKS in a file.
struct Issuer {
    _dir: tempfile::TempDir,
    key: crate::issuer::TestIssuer,
}

impl Issuer {
    fn new() -> Issuer {
        let dir = tempfile::tempdir().expect("dir");
        Issuer { key: crate::issuer::TestIssuer::new(dir.path()), _dir: dir }
    }

    fn jwks(&self) -> String {
        self.key.jwks.display().to_string()
    }

    fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }

    /// A Keycloak-like access token of the console: realm roles, an `org_code`
    /// attribute, `azp` the console, `aud` as given.
    fn keycloak(&self, roles: &[&str], org_code: Option<&str>, aud: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"iss": ISSUER, "aud": aud, "sub": "f3c1-operator", "iat": now, "exp": now + 600,
            "azp": "cupola-console", "typ": "Bearer", "scope": "openid profile offline_access user/*.cruds",
            "realm_access": {"roles": roles}, "preferred_username": "m.rossi"});
        if let Some(org) = org_code {
            claims["org_code"] = json!(org);
        }
        self.sign(&claims)
    }
}

fn claims_map_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/auth/claims-keycloak.json")
}

/// A gateway trusting `issuer`, its audience the FHIR base (with a trailing `/`), the
/// Keycloak claims map, and the console's sign-in configured.
async fn gateway(b: Backend, issuer: &Issuer) -> TestApp {
    gateway_for(b, issuer, &format!("{FHIR_BASE}/")).await
}

async fn gateway_for(b: Backend, issuer: &Issuer, audience: &str) -> TestApp {
    let admin = issuer.keycloak(&["cup-admin"], None, json!(FHIR_BASE));
    TestApp::spawn_trusting(
        b,
        |c| {
            c.public_url = Some(FHIR_BASE.into());
            c.auth.issuer = Some(ISSUER.into());
            c.auth.jwks = Some(issuer.jwks());
            c.auth.audience = audience.to_string();
            c.auth.claims_map = Some(claims_map_example());
            c.console.oauth_client_id = Some("cupola-console".into());
            c.console.authorize_url = Some(AUTHORIZE.into());
            c.console.token_url = Some(TOKEN.into());
        },
        admin,
    )
    .await
}

async fn get_with(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app.req(Method::GET, path).bearer_auth(token).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_publishes_the_issuers_endpoints() {
    let issuer = Issuer::new();
    let app = gateway(Backend::Sqlite, &issuer).await;
    let r = app.anonymous().get(app.url(".well-known/smart-configuration")).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: Value = r.json().await.expect("json");
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["authorization_endpoint"], AUTHORIZE);
    assert_eq!(doc["token_endpoint"], TOKEN);
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["capabilities"], json!(CAPABILITIES), "{doc}");
    for c in ["launch-standalone", "client-public", "context-standalone-patient", "permission-offline", "permission-v2"]
    {
        assert!(CAPABILITIES.contains(&c), "{c}: {doc}");
    }
    assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["none"]));
    let scopes = doc["scopes_supported"].as_array().cloned().unwrap_or_default();
    for s in ["openid", "fhirUser", "launch/patient", "offline_access", "user/*.cruds", "patient/*.rs"] {
        assert!(scopes.iter().any(|x| x == s), "{s}: {doc}");
    }
    assert!(!scopes.iter().any(|x| x.as_str().is_some_and(|x| x.starts_with("system/"))), "{doc}");
    assert_eq!(
        doc["cupola_console"],
        json!({"client_id": "cupola-console", "redirect_uri": "https://cup.test/console/"})
    );
    assert!(doc.get("jwks_uri").is_none(), "a JWKS file is no URL for clients: {doc}");
    // The CapabilityStatement names the same endpoints.
    let cs: Value =
        app.anonymous().get(app.url("metadata")).send().await.expect("metadata").json().await.expect("json");
    let ext = &cs["rest"][0]["security"]["extension"][0];
    assert_eq!(ext["url"], "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
    assert_eq!(
        ext["extension"],
        json!([{"url": "authorize", "valueUri": AUTHORIZE}, {"url": "token", "valueUri": TOKEN}])
    );
    let listed: Vec<&Value> = cs["rest"][0]["security"]["extension"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["url"] == CAPABILITIES_URL).map(|e| &e["valueCode"]).collect())
        .unwrap_or_default();
    assert_eq!(json!(listed), json!(CAPABILITIES), "{cs}");

    // Without an issuer: nothing to discover, an OperationOutcome says what to set.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    let text = not_found_discovery(&plain).await;
    assert!(text.contains("no issuer configured") && text.contains("--issuer") && text.contains("--jwks"), "{text}");
    let cs = plain.get_json("metadata", 200).await;
    assert!(cs["rest"][0]["security"].get("extension").is_none(), "{cs}");
    // An issuer without the console's endpoints: the flags that publish them.
    let quiet = TestApp::spawn_trusting(
        Backend::Sqlite,
        |c| {
            c.auth.issuer = Some(ISSUER.into());
            c.auth.jwks = Some(issuer.jwks());
        },
        issuer.keycloak(&["cup-admin"], None, json!("cupola")),
    )
    .await;
    let text = not_found_discovery(&quiet).await;
    assert!(text.contains(ISSUER) && text.contains("--authorize-url") && text.contains("--token-url"), "{text}");
}

/// The discovery document's 404: an OperationOutcome; its diagnostics.
async fn not_found_discovery(app: &TestApp) -> String {
    let r = app.anonymous().get(app.url(".well-known/smart-configuration")).send().await.expect("GET");
    assert_eq!(r.status(), 404);
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    let oo: Value = r.json().await.expect("json");
    assert_eq!((&oo["resourceType"], &oo["issue"][0]["code"]), (&json!("OperationOutcome"), &json!("not-found")));
    oo["issue"][0]["diagnostics"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_flags_go_together_and_need_an_issuer() {
    let with = |client: Option<&str>, authorize: Option<&str>, token: Option<&str>, issuer: Option<&str>| {
        let mut c = cupola::Config::for_database("sqlite://unused.db");
        c.console.oauth_client_id = client.map(str::to_string);
        c.console.authorize_url = authorize.map(str::to_string);
        c.console.token_url = token.map(str::to_string);
        c.auth.issuer = issuer.map(str::to_string);
        c.check().map_err(|e| e.to_string())
    };
    let id = Some("cupola-console");
    assert!(with(None, None, None, None).is_ok());
    assert!(with(id, Some(AUTHORIZE), Some(TOKEN), Some(ISSUER)).is_ok());
    let e = with(None, Some(AUTHORIZE), None, Some(ISSUER)).unwrap_err();
    assert!(e.contains("--token-url") && e.contains("--oauth-client-id") && e.contains("together"), "{e}");
    let e = with(id, Some(AUTHORIZE), Some(TOKEN), None).unwrap_err();
    assert!(e.contains("--issuer"), "{e}");
    let e = with(id, Some("/auth"), Some(TOKEN), Some(ISSUER)).unwrap_err();
    assert!(e.contains("--authorize-url") && e.contains("https://"), "{e}");
    let e = with(Some(" "), Some(AUTHORIZE), Some(TOKEN), Some(ISSUER)).unwrap_err();
    assert!(e.contains("--oauth-client-id"), "{e}");

    // The gateway does not start, and says why; nor with a claims map it cannot use.
    let dir = tempfile::tempdir().expect("dir");
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut c = cupola::Config::for_database(&url);
    c.auth = cupola::config::AuthConfig::dev(dir.path().join("k.json"));
    c.console.authorize_url = Some(AUTHORIZE.into());
    let e = cupola::api::build_state(c.clone(), addr).await.err().expect("refused").to_string();
    assert!(e.contains("--token-url"), "{e}");
    c.console.authorize_url = None;
    c.auth.claims_map = Some(claims_map_example());
    let e = cupola::api::build_state(c.clone(), addr).await.err().expect("refused").to_string();
    assert!(e.contains("--claims-map") && e.contains("--issuer"), "{e}");
    let issuer = Issuer::new();
    let bad = dir.path().join("claims.json");
    std::fs::write(&bad, r#"{"role": {"claim": "realm_access.roles", "values": [{"value": "x", "role": "nurse"}]}}"#)
        .expect("write");
    c.auth.issuer = Some(ISSUER.into());
    c.auth.jwks = Some(issuer.jwks());
    c.auth.claims_map = Some(bad);
    let e = format!("{:#}", cupola::api::build_state(c, addr).await.err().expect("refused"));
    assert!(e.contains("claims.json") && e.contains("role.values[0].role") && e.contains("nurse"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fhir_base_is_the_audience_with_or_without_its_slash() {
    let issuer = Issuer::new();
    let app = gateway(Backend::Sqlite, &issuer).await;
    let admin = |aud: Value| issuer.keycloak(&["cup-admin"], None, aud);
    for aud in [json!(FHIR_BASE), json!(format!("{FHIR_BASE}/")), json!(["account", FHIR_BASE])] {
        let (status, body) = get_with(&app, &admin(aud.clone()), "Patient?_count=1").await;
        assert_eq!(status, 200, "aud {aud}: {body}");
    }
    for aud in [json!("https://other.test/fhir"), json!("https://cup.test/fhir/x"), json!("cupola"), json!(["account"])]
    {
        let r = app.req(Method::GET, "Patient?_count=1").bearer_auth(admin(aud.clone())).send().await.expect("GET");
        assert_eq!(r.status(), 401, "aud {aud}");
        let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(challenge.contains("invalid_token"), "{challenge}");
        let oo: Value = r.json().await.expect("json");
        assert!(oo["issue"][0]["diagnostics"].as_str().unwrap_or("").contains(FHIR_BASE), "{oo}");
    }
    // Configured without the slash, a token with it is accepted too.
    let app = gateway_for(Backend::Sqlite, &issuer, FHIR_BASE).await;
    for aud in [json!(FHIR_BASE), json!(format!("{FHIR_BASE}/"))] {
        assert_eq!(get_with(&app, &admin(aud.clone()), "Patient?_count=1").await.0, 200, "aud {aud}");
    }
    assert_eq!(get_with(&app, &admin(json!("https://other.test/fhir/")), "Patient?_count=1").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_role_is_refused_naming_the_claim() {
    let issuer = Issuer::new();
    let app = gateway(Backend::Sqlite, &issuer).await;
    let cases = [
        (
            issuer.keycloak(&["offline_access", "uma_authorization"], Some("bp-genova"), json!(FHIR_BASE)),
            "realm_access.roles",
            "cup-sportello",
        ),
        (issuer.keycloak(&[], Some("bp-genova"), json!(FHIR_BASE)), "realm_access.roles", "missing"),
        (issuer.keycloak(&["cup-sportello"], None, json!(FHIR_BASE)), "org_code", "booking-point"),
        (issuer.keycloak(&["cup-sportello"], Some("bp genova"), json!(FHIR_BASE)), "org_code", "Organization/{id}"),
    ];
    for (token, claim, says) in cases {
        let r = app.req(Method::GET, "Patient?_count=1").bearer_auth(token).send().await.expect("GET");
        assert_eq!(r.status(), 401, "{claim}");
        let oo: Value = r.json().await.expect("json");
        assert_eq!(oo["issue"][0]["code"], "login");
        let text = oo["issue"][0]["diagnostics"].as_str().unwrap_or("").to_string();
        assert!(text.contains(&format!("`{claim}`")) && text.contains(says), "{claim}: {text}");
    }
}

/// A counter operator signed in at Keycloak: mapped to a booking point of its
/// organisation at the counter, it reads, finds slots, and is audited as such; a
/// provider's operator sees its own organisation's agenda only.
async fn keycloak_claims_map_to_cupolas_roles(b: Backend) {
    let issuer = Issuer::new();
    let app = gateway(b, &issuer).await;
    region(&app.base, &app.client, 3, 1).await;
    catalog_codes(&app).await;
    let counter = issuer.keycloak(&["offline_access", "cup-sportello"], Some("bp-genova"), json!(FHIR_BASE));
    let (status, patient) = get_with(&app, &counter, "Patient/p1").await;
    assert_eq!(status, 200, "{patient}");
    let (status, found) =
        get_with(&app, &counter, &format!("Appointment/$find?{}&service-type=89.52&_count=2", window())).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["entry"].as_array().map(Vec::len), Some(2), "{found}");
    // What only an administrator may do stays refused: the token is no admin's.
    let r = app.req(Method::DELETE, "Organization/prov-x").bearer_auth(&counter).send().await.expect("DELETE");
    assert_eq!(r.status(), 403);

    // The audit trail names the mapped organisation, role and channel.
    let mut event = Value::Null;
    for _ in 0..50 {
        let found = app.get_json("AuditEvent?agent=Organization/bp-genova&entity=Patient/p1", 200).await;
        if !match_ids(&found).is_empty() {
            event = found["entry"][0]["resource"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let codes: Vec<&str> = event["agent"][0]["role"][0]["coding"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(codes, ["booking-point", "counter"], "{event}");
    assert_eq!(event["agent"][0]["altId"], "f3c1-operator");

    // A provider's operator: its organisation's agenda, not another's.
    let own = issuer.keycloak(&["cup-erogatore"], Some("prov-x"), json!(FHIR_BASE));
    assert_eq!(get_with(&app, &own, "Schedule/cardio-1").await.0, 200);
    let other = issuer.keycloak(&["cup-erogatore"], Some("prov-y"), json!(FHIR_BASE));
    assert_eq!(get_with(&app, &other, "Schedule/cardio-1").await.0, 404);
}

crate::on_both!(keycloak_claims_map_to_cupolas_roles);

/// The console's side of the sign-in: its settings carry the issuer's endpoints, its
/// policy lets the page post the code to the token endpoint's origin (and no other),
/// and `GET /console/whoami` says what the claims map makes of an issuer's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_told_the_sign_in_and_may_reach_the_token_endpoint() {
    let issuer = Issuer::new();
    let app = gateway(Backend::Sqlite, &issuer).await;
    let root = app.base.trim_end_matches("/fhir").to_string();
    let get = |path: &str| app.anonymous().get(format!("{root}{path}")).send();
    let settings: Value = get("/console/settings.json").await.expect("settings").json().await.expect("json");
    assert_eq!(settings["oauth"]["clientId"], "cupola-console");
    assert_eq!(settings["oauth"]["authorizeUrl"], AUTHORIZE);
    assert_eq!(settings["oauth"]["tokenUrl"], TOKEN);
    assert_eq!(settings["oauth"]["redirectUri"], "https://cup.test/console/");
    assert_eq!(settings["oauth"]["aud"], FHIR_BASE);
    let page = get("/console/").await.expect("page");
    let policy = page.headers()["content-security-policy"].to_str().expect("ascii").to_string();
    assert!(policy.contains("connect-src 'self' https://idp.test;"), "{policy}");

    let booking = issuer.keycloak(&["offline_access", "cup-sportello"], Some("counter-001"), json!(FHIR_BASE));
    let r = app.anonymous().get(format!("{root}/console/whoami")).bearer_auth(&booking).send().await.expect("whoami");
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.expect("json");
    assert_eq!(
        (&me["role"], &me["org"], &me["channel"]),
        (&json!("booking-point"), &json!("Organization/counter-001"), &json!("counter"))
    );
    let r = app.anonymous().get(format!("{root}/console/whoami")).send().await.expect("whoami");
    assert_eq!(r.status(), 401);

    // Without the flags: no sign-in in the settings, and the policy names this origin only.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    let root = plain.base.trim_end_matches("/fhir").to_string();
    let settings: Value = plain
        .anonymous()
        .get(format!("{root}/console/settings.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert!(settings["oauth"].is_null(), "{settings}");
    let page = plain.anonymous().get(format!("{root}/console/")).send().await.expect("page");
    assert!(page.headers()["content-security-policy"].to_str().expect("ascii").contains("connect-src 'self';"));
}
