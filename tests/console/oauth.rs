//! Signing in with the region's identity provider (SMART standalone launch,
//! authorization code with PKCE): a stub authorization server in this process, and a
//! gateway of the scenario's own that trusts it (not the shared demo gateway, which
//! signs its own tokens). The stub checks what a real issuer checks — client,
//! redirect URI, audience, the PKCE verifier — and answers as Keycloak does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine as _;
use fantoccini::key::Key;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::browser::{eval, find, screenshot, shown, text_of};
use crate::Env;

const CLIENT: &str = "cupola-console";

/// The stub authorization server's state.
struct Stub {
    /// `http://127.0.0.1:port` of the gateway: the console's origin and redirect.
    gateway: String,
    issuer: String,
    key: crate::issuer::TestIssuer,
    /// code → the PKCE challenge it was issued for.
    codes: Mutex<HashMap<String, String>>,
    /// Whether the operator "declines" at the issuer (`error=access_denied`).
    deny: AtomicBool,
}

type Params = HashMap<String, String>;

/// `GET /authorize`: checks the request as an issuer would, then sends the browser
/// straight back (no login page: the operator is already known).
async fn authorize(State(s): State<Arc<Stub>>, Query(q): Query<Params>) -> Response {
    let back = format!("{}/console/", s.gateway);
    let want = [
        ("response_type", "code".to_string()),
        ("client_id", CLIENT.to_string()),
        ("redirect_uri", back.clone()),
        ("code_challenge_method", "S256".to_string()),
        ("aud", format!("{}/fhir", s.gateway)),
    ];
    let mut to = url::Url::parse(&back).expect("redirect URI");
    let state = q.get("state").cloned().unwrap_or_default();
    if let Some((k, v)) = want.iter().find(|(k, v)| q.get(*k) != Some(v)) {
        let text = format!("{k} is {:?}, expected {v}", q.get(*k));
        to.query_pairs_mut().append_pair("error", "invalid_request").append_pair("error_description", &text);
    } else if s.deny.load(Ordering::SeqCst) {
        to.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "the operator declined")
            .append_pair("state", &state);
    } else {
        let code = uuid::Uuid::new_v4().to_string();
        let challenge = q.get("code_challenge").cloned().unwrap_or_default();
        s.codes.lock().expect("codes").insert(code.clone(), challenge);
        to.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
    }
    Redirect::to(to.as_str()).into_response()
}

/// `POST /token`: the code for a token, once the verifier matches the challenge.
/// Answers CORS for the gateway's origin (the console posts from its page).
async fn token(State(s): State<Arc<Stub>>, Form(f): Form<Params>) -> Response {
    let cors = [(header::ACCESS_CONTROL_ALLOW_ORIGIN, s.gateway.clone())];
    let challenge = f.get("code").and_then(|c| s.codes.lock().expect("codes").remove(c));
    let verifier = f.get("code_verifier").map(String::as_str).unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let ok = f.get("grant_type").map(String::as_str) == Some("authorization_code")
        && f.get("client_id").map(String::as_str) == Some(CLIENT)
        && f.get("redirect_uri") == Some(&format!("{}/console/", s.gateway))
        && challenge.as_deref() == Some(computed.as_str());
    if !ok {
        let e = json!({"error": "invalid_grant", "error_description": "code, redirect URI or PKCE verifier wrong"});
        return (StatusCode::BAD_REQUEST, cors, axum::Json(e)).into_response();
    }
    let answer =
        json!({"access_token": s.sign(), "token_type": "Bearer", "expires_in": 600, "scope": "openid user/*.cruds"});
    (StatusCode::OK, cors, axum::Json(answer)).into_response()
}

impl Stub {
    /// A Keycloak-like access token of a CUP counter operator.
    fn sign(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": self.issuer, "aud": [format!("{}/fhir", self.gateway), "account"],
            "sub": "f3c1-operator", "iat": now, "exp": now + 600, "azp": CLIENT, "typ": "Bearer",
            "scope": "openid fhirUser user/*.cruds", "preferred_username": "m.rossi",
            "realm_access": {"roles": ["offline_access", "cup-sportello"]}, "org_code": "bp-counter-001"});
        self.key.sign(&claims)
    }
}

/// The stub on its own port, and a gateway with `--issuer`, `--jwks`, the three
/// OAuth flags, the Keycloak claims map, the FHIR base as audience, and the demo data.
async fn start(dir: &std::path::Path) -> (Arc<Stub>, SocketAddr) {
    let stub_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let stub_addr = stub_listener.local_addr().expect("address");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let key = crate::issuer::TestIssuer::new(dir);
    let jwks = key.jwks.clone();
    let issuer = format!("http://{stub_addr}/realms/cup");
    let stub = Arc::new(Stub {
        gateway: format!("http://{addr}"),
        issuer: issuer.clone(),
        key,
        codes: Mutex::default(),
        deny: AtomicBool::new(false),
    });
    let app = axum::Router::new()
        .route("/realms/cup/auth", get(authorize))
        .route("/realms/cup/token", axum::routing::post(token))
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(stub_listener, app).await.expect("the stub serves") });

    let mut config = cupola::Config::for_database(&format!("sqlite://{}", dir.join("cupola.db").display()));
    config.auth = cupola::config::AuthConfig::dev(dir.join("dev-key.json"));
    config.auth.issuer = Some(issuer.clone());
    config.auth.jwks = Some(jwks.display().to_string());
    config.auth.audience = format!("http://{addr}/fhir");
    config.auth.claims_map =
        Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/auth/claims-keycloak.json"));
    config.console.oauth_client_id = Some(CLIENT.into());
    config.console.authorize_url = Some(format!("{issuer}/auth"));
    config.console.token_url = Some(format!("{issuer}/token"));
    config.demo = true;
    config.check().expect("the sign-in flags are right");
    let state = cupola::api::build_state(config, addr).await.expect("the gateway starts");
    tokio::spawn(async move {
        let _ = cupola::api::run(listener, state, std::future::pending::<()>()).await;
    });
    (stub, addr)
}

/// Focuses the regional sign-in button and presses Enter on it, as an operator would.
async fn press_regional_sign_in(c: &fantoccini::Client) {
    let button = find(c, "[data-test=oauth-signin]").await;
    eval(c, "document.querySelector('[data-test=oauth-signin]').focus()").await;
    button.send_keys(&Key::Enter.to_string()).await.expect("Enter on the button");
}

/// Signs in at the stub, lands back signed in as the mapped booking point, a desk
/// reads through the API; then a refusal at the issuer and an answer with another
/// flow's `state` are shown readably.
pub fn sign_in(env: Arc<Env>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (stub, addr) = start(dir.path()).await;
        let c = env.driver.session().await;
        c.goto(&format!("http://{addr}/console/")).await.expect("the console opens");
        find(&c, "[data-test=oauth-signin]").await;
        text_of(&c, "[data-test=oauth-signin]", "Accedi con l'identità regionale").await;
        assert!(!shown(&c, "[data-test=demo-role]").await, "no demo picker beside the issuer's sign-in");
        press_regional_sign_in(&c).await;

        text_of(&c, "[data-test=operator-role]", "Punto di prenotazione").await;
        // The organisation's name, read through the API with the issuer's token.
        text_of(&c, "[data-test=operator-org]", "Sportello CUP").await;
        find(&c, "body[data-ready=booking] [data-test=booking-desk]").await;
        let search = eval(&c, "return location.search").await;
        assert_eq!(search, json!(""), "the code is not left in the URL");
        screenshot(&c, "oauth-signed-in").await;

        // Signed out, the issuer now refuses: the console says so.
        find(&c, "#signout").await.click().await.expect("sign out");
        stub.deny.store(true, Ordering::SeqCst);
        press_regional_sign_in(&c).await;
        let said = text_of(&c, "#oauth-error", "access_denied").await;
        assert!(said.contains("the operator declined"), "{said}");
        assert!(!shown(&c, "[data-test=operator-role]").await, "not signed in after a refusal");
        screenshot(&c, "oauth-refused").await;

        // An answer this tab did not ask for (no flow of its own, another state).
        c.goto(&format!("http://{addr}/console/?code=stolen&state=other")).await.expect("the console opens");
        text_of(&c, "#oauth-error", "non corrisponde").await;
        assert!(!shown(&c, "[data-test=operator-role]").await, "not signed in with another flow's code");
        c.close().await.expect("the window closes");
    })
}
