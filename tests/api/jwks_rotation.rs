//! The issuer rotates its keys without the gateway restarting: its JWKS, served over
//! real HTTP by a small server of the test, is fetched again when a token names a key
//! the gateway does not have (at most once per `--jwks-min-refetch-secs`) and every
//! `--jwks-refresh-secs`; a failed fetch keeps the keys the gateway has.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::issuer::TestIssuer;

const ISSUER: &str = "https://idp.test/realms/rotation";

/// One signing key of the issuer, and its public JWK.
struct Key {
    _dir: tempfile::TempDir,
    signer: TestIssuer,
    jwk: Value,
}

impl Key {
    fn new() -> Key {
        let dir = tempfile::tempdir().expect("dir");
        let signer = TestIssuer::new(dir.path());
        let jwks: Value = serde_json::from_slice(&std::fs::read(&signer.jwks).expect("jwks")).expect("json");
        Key { jwk: jwks["keys"][0].clone(), signer, _dir: dir }
    }

    /// A new administrator's token signed with this key (each one a different text,
    /// so that none comes from the gateway's cache of verified tokens).
    fn token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let scope = cupola::auth::default_scope(cupola::auth::Role::Admin);
        self.signer.sign(&json!({"iss": ISSUER, "aud": "cupola", "sub": "rotation-admin", "iat": now,
            "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(), "scope": scope, "role": "admin"}))
    }
}

/// The issuer's JWKS endpoint: the keys it publishes now, how often it was asked, and
/// whether it is failing.
#[derive(Clone, Default)]
struct JwksServer {
    keys: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl JwksServer {
    /// Serves `keys` on 127.0.0.1; the URL of its JWKS.
    async fn start(keys: &[&Key]) -> (JwksServer, String) {
        let server = JwksServer::default();
        server.publish(keys);
        let app = axum::Router::new().route("/certs", axum::routing::get(certs)).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/certs", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (server, url)
    }

    fn publish(&self, keys: &[&Key]) {
        let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        *self.keys.lock().expect("lock") = jwks;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn certs(State(s): State<JwksServer>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if s.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let jwks = s.keys.lock().expect("lock").clone();
    axum::Json(jwks).into_response()
}

/// A gateway trusting the issuer whose keys are at `jwks`.
async fn gateway(jwks: &str, admin: &Key, refresh_secs: u64, min_refetch_secs: u64) -> TestApp {
    let jwks = jwks.to_string();
    TestApp::spawn_trusting(
        Backend::Sqlite,
        move |c| {
            c.auth.issuer = Some(ISSUER.into());
            c.auth.jwks = Some(jwks);
            c.auth.jwks_refresh_secs = refresh_secs;
            c.auth.jwks_min_refetch_secs = min_refetch_secs;
        },
        admin.token(),
    )
    .await
}

/// The status of a read with `token`, and the diagnostics of its OperationOutcome.
async fn read_with(app: &TestApp, token: &str) -> (u16, String) {
    let r = app.req(Method::GET, "Patient?_count=1").bearer_auth(token).send().await.expect("GET");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["issue"][0]["diagnostics"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_fetches_the_jwks_again_at_most_once_per_interval() {
    const MIN_REFETCH: Duration = Duration::from_secs(3);
    let (a, b, stranger) = (Key::new(), Key::new(), Key::new());
    let (idp, url) = JwksServer::start(&[&a]).await;
    let app = gateway(&url, &a, 3600, MIN_REFETCH.as_secs()).await;
    assert_eq!(idp.hits(), 1, "fetched at start");
    let token_a = a.token();
    assert_eq!(read_with(&app, &token_a).await.0, 200);

    // The issuer rotates: B replaces A. Past the minimum interval since the start's
    // fetch, tokens of B (and of a key the issuer never had) arrive all at once.
    idp.publish(&[&b]);
    tokio::time::sleep(MIN_REFETCH + Duration::from_millis(200)).await;
    let burst = Instant::now();
    let tokens: Vec<(bool, String)> =
        (0..30).map(|i| if i % 3 == 0 { (false, stranger.token()) } else { (true, b.token()) }).collect();
    let answers = futures::future::join_all(tokens.iter().map(|(_, t)| read_with(&app, t))).await;
    for ((of_b, _), (status, text)) in tokens.iter().zip(&answers) {
        assert_eq!(*status, if *of_b { 200 } else { 401 }, "{text}");
    }
    assert_eq!(idp.hits(), 2, "one fetch for the whole burst");

    // Within the interval, more unknown keys cost the issuer nothing, and A's key,
    // which the issuer removed, no longer opens anything (not even a token the
    // gateway had verified before).
    for _ in 0..10 {
        assert_eq!(read_with(&app, &stranger.token()).await.0, 401);
    }
    let (status, text) = read_with(&app, &token_a).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains(&a.signer.kid) && text.contains("not a key of"), "{text}");
    assert!(burst.elapsed() < MIN_REFETCH, "the checks ran within the interval: {:?}", burst.elapsed());
    assert_eq!(idp.hits(), 2, "no fetch within the interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_refresh_picks_up_new_keys_and_a_failed_one_keeps_them() {
    let (a, b) = (Key::new(), Key::new());
    let (idp, url) = JwksServer::start(&[&a]).await;
    // Refreshed every second; an unknown key may cause a fetch only once an hour, so
    // only the refresh can bring B's key in.
    let app = gateway(&url, &a, 1, 3600).await;
    assert_eq!(read_with(&app, &a.token()).await.0, 200);
    idp.publish(&[&a, &b]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, text) = read_with(&app, &b.token()).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "B's key never came in: {status} {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(idp.hits() >= 2, "{}", idp.hits());

    // The issuer fails: the refresh keeps the keys, both still open the gateway.
    idp.failing.store(true, Ordering::SeqCst);
    let failed = idp.hits() + 2;
    while idp.hits() < failed {
        assert!(Instant::now() < deadline + Duration::from_secs(10), "no refresh while failing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read_with(&app, &a.token()).await.0, 200);
    assert_eq!(read_with(&app, &b.token()).await.0, 200);
}
