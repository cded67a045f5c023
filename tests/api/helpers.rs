//! Starts the real server on a free port against a fresh SQLite file or a fresh
//! PostgreSQL database, and speaks HTTP to it.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json";

/// The machine's PostgreSQL (see DEVELOPERS.md); `CUPOLA_TEST_PG` overrides it.
pub fn pg_admin_url() -> String {
    std::env::var("CUPOLA_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database; removed when dropped.
pub struct TestDb {
    pub url: String,
    backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("cupola_t{}_{}_{}", std::process::id(), n, uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("cupola.db").display());
                TestDb { url, backend, name, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("PostgreSQL answers (see DEVELOPERS.md)");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
                TestDb { url: format!("{base}/{name}"), backend, name, _dir: None }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread removes the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

/// A running gateway and a client for it. `client` sends an admin token with every
/// request (a request's own `Authorization` header replaces it).
pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// The development key settings the server checks tokens with.
    pub auth: cupola::config::AuthConfig,
    /// Kept so that the database lives as long as the server.
    _db: TestDb,
    _key_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Who a test token speaks for.
#[derive(Debug, Clone, Default)]
pub struct As {
    pub role: &'static str,
    pub org: Option<&'static str>,
    pub channel: Option<&'static str>,
    pub patient: Option<&'static str>,
    /// Default: the role's default scopes.
    pub scope: Option<&'static str>,
}

impl As {
    pub fn admin() -> As {
        As { role: "admin", ..Default::default() }
    }
    pub fn provider(org: &'static str) -> As {
        As { role: "provider", org: Some(org), ..Default::default() }
    }
    pub fn booking_point(org: &'static str) -> As {
        As { role: "booking-point", org: Some(org), channel: Some("counter"), ..Default::default() }
    }
    pub fn payment_point(org: &'static str) -> As {
        As { role: "payment-point", org: Some(org), ..Default::default() }
    }
    pub fn patient(id: &'static str) -> As {
        As { role: "patient-app", patient: Some(id), ..Default::default() }
    }
    pub fn scope(mut self, scope: &'static str) -> As {
        self.scope = Some(scope);
        self
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut cupola::Config)) -> TestApp {
        Self::start(backend, adjust, None).await
    }

    /// A gateway that trusts another issuer (set in `adjust`): `admin` is that
    /// issuer's administrator token, which `client` sends.
    pub async fn spawn_trusting(backend: Backend, adjust: impl FnOnce(&mut cupola::Config), admin: String) -> TestApp {
        Self::start(backend, adjust, Some(admin)).await
    }

    /// A gateway on `db`, which the test has prepared (e.g. with `cupola demo load`).
    pub async fn spawn_on(db: TestDb) -> TestApp {
        Self::start_on(db, |_| {}, None).await
    }

    async fn start(backend: Backend, adjust: impl FnOnce(&mut cupola::Config), admin: Option<String>) -> TestApp {
        Self::start_on(TestDb::new(backend).await, adjust, admin).await
    }

    async fn start_on(db: TestDb, adjust: impl FnOnce(&mut cupola::Config), admin: Option<String>) -> TestApp {
        // `RUST_LOG=warn cargo test … -- --nocapture` shows the gateway's logs.
        if std::env::var_os("RUST_LOG").is_some() {
            cupola::telemetry::init();
        }
        let key_dir = tempfile::tempdir().expect("temp dir");
        let mut config = cupola::Config::for_database(&db.url);
        config.auth = cupola::config::AuthConfig::dev(key_dir.path().join("dev-key.json"));
        adjust(&mut config);
        let auth = config.auth.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = cupola::api::build_state(config, addr).await.expect("gateway starts");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let background = cupola::background::start(&state);
            let _ = cupola::api::run(listener, state, async move {
                let _ = rx.await;
            })
            .await;
            background.stop();
        });
        let admin = admin.unwrap_or_else(|| mint(&auth, &As::admin()));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {admin}").parse().expect("header value"));
        let client = Client::builder().pool_max_idle_per_host(64).default_headers(headers).build().expect("client");
        TestApp { base: format!("http://{addr}/fhir"), client, auth, _db: db, _key_dir: key_dir, shutdown: Some(tx) }
    }

    /// How many versions the server holds of everything but AuditEvents (which the
    /// requests of a test keep adding, off the request path).
    pub async fn stored_versions(&self) -> i64 {
        let mut n = 0;
        for t in cupola::fhir::types::SERVED.iter().filter(|t| **t != "AuditEvent") {
            n += self.get_json(&format!("{t}/_history?_count=0"), 200).await["total"].as_i64().expect("total");
        }
        n
    }

    /// A token for `who`, signed with this server's development key.
    pub fn token(&self, who: &As) -> String {
        mint(&self.auth, who)
    }

    /// A request sent with `who`'s token instead of the admin's.
    pub fn req_as(&self, who: &As, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).bearer_auth(self.token(who))
    }

    /// A client that sends no token at all.
    pub fn anonymous(&self) -> Client {
        Client::new()
    }

    /// The database this server runs on.
    pub fn db_url(&self) -> &str {
        &self._db.url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).header("accept", FHIR_JSON)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.req(Method::POST, path)
            .header("content-type", FHIR_JSON)
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.req(Method::PUT, path).header("content-type", FHIR_JSON).body(body.to_string()).send().await.expect("PUT")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.expect("DELETE")
    }

    /// Creates and returns the stored resource (asserting 201).
    pub async fn create(&self, body: &Value) -> Value {
        let rt = body["resourceType"].as_str().expect("resourceType");
        let r = self.post(rt, body).await;
        assert_eq!(r.status(), 201, "create {rt}");
        r.json().await.expect("json")
    }

    /// GET that must answer `status`; returns the body.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status().as_u16(), status, "GET {path}");
        r.json().await.expect("json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Mints a token with the development key of `auth`.
/// A client that sends `who`'s token with every request.
pub fn client_as(auth: &cupola::config::AuthConfig, who: &As) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {}", mint(auth, who)).parse().expect("header"));
    Client::builder().default_headers(headers).build().expect("client")
}

pub fn mint(auth: &cupola::config::AuthConfig, who: &As) -> String {
    let role: cupola::auth::Role = who.role.parse().expect("known role");
    let req = cupola::auth::TokenRequest {
        // One subject per role and organisation or patient: what belongs to its
        // creator (a Subscription) is told apart.
        sub: format!("test-{}{}", who.role, who.org.or(who.patient).map(|o| format!("-{o}")).unwrap_or_default()),
        role,
        org: who.org.map(|o| format!("Organization/{o}")),
        channel: who.channel.map(str::to_string),
        patient: who.patient.map(str::to_string),
        scope: who.scope.unwrap_or_else(|| cupola::auth::default_scope(role)).to_string(),
        ttl_secs: 3600,
        client_id: Some("cupola-tests".into()),
    };
    cupola::auth::mint(&cupola::config::AuthConfig::clone(auth), &req).expect("token")
}

/// The ids of a searchset's `match` entries, in order.
pub fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The first issue's expression of an OperationOutcome.
pub fn expression(outcome: &Value) -> String {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["expression"][0].as_str().unwrap_or("").to_string()
}

/// Declares each listed test once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name($crate::helpers::Backend::Postgres).await } )*
        }
    };
}

/// One weekly session of an agenda template (`agenda-template` extension part).
pub fn session(day: &str, start: &str, end: &str, minutes: i64) -> Value {
    serde_json::json!({"url": "session", "extension": [
        {"url": "day", "valueCode": day},
        {"url": "start", "valueTime": start},
        {"url": "end", "valueTime": end},
        {"url": "slotMinutes", "valueInteger": minutes},
    ]})
}

/// Today in Europe/Rome, the calendar the gateway books on: from 23:00 UTC (22:00 in
/// summer) it is already tomorrow there, and slots "from tomorrow" by the UTC date
/// would start in the past.
pub fn today_rome() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::Europe::Rome).date_naive()
}
