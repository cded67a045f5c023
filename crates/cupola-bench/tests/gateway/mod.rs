//! The real gateway, in this test's process, on a fresh PostgreSQL database (made as
//! the bench makes its own), and an admin client for it.

use cupola_bench::BenchDb;
use serde_json::Value;

/// The machine's PostgreSQL; `CUPOLA_TEST_PG` overrides it.
pub fn pg_admin_url() -> String {
    std::env::var("CUPOLA_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A running gateway and a client that sends an admin token with every request.
pub struct TestApp {
    base: String,
    client: reqwest::Client,
    /// A fresh PostgreSQL database, the bench's own kind; dropped with the app.
    db: Option<BenchDb>,
    /// The development key the gateway checks tokens with.
    #[allow(dead_code)]
    pub auth: cupola::config::AuthConfig,
    _key_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let db = BenchDb::create("postgres", &pg_admin_url()).await.expect("PostgreSQL answers (CUPOLA_TEST_PG)");
        TestApp::spawn_on(db, |_| {}).await
    }

    /// The gateway on `db` (already prepared), its configuration adjusted first.
    pub async fn spawn_on(db: BenchDb, adjust: impl FnOnce(&mut cupola::Config)) -> TestApp {
        let key_dir = tempfile::tempdir().expect("temp dir");
        let mut config = cupola::Config::for_database(&db.url);
        config.auth = cupola::config::AuthConfig::dev(key_dir.path().join("dev-key.json"));
        adjust(&mut config);
        let auth = config.auth.clone();
        let admin = admin_token(&config.auth);
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
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {admin}").parse().expect("header value"));
        let client = reqwest::Client::builder().default_headers(headers).build().expect("client");
        TestApp {
            base: format!("http://{addr}/fhir"),
            client,
            db: Some(db),
            auth,
            _key_dir: key_dir,
            shutdown: Some(tx),
        }
    }

    /// The FHIR base of this gateway.
    #[allow(dead_code)]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The database this gateway runs on.
    pub fn db_url(&self) -> &str {
        self.db.as_ref().map_or("", |d| d.url.as_str())
    }

    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let r = self.client.get(url).header("accept", "application/fhir+json").send().await.expect("GET");
        assert_eq!(r.status().as_u16(), status, "GET {path}");
        r.json().await.expect("json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Drop runs outside async: a runtime on a thread of its own removes the database.
        if let Some(db) = self.db.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(db.drop_db());
            })
            .join();
        }
    }
}

/// An admin token signed with the gateway's development key.
fn admin_token(auth: &cupola::config::AuthConfig) -> String {
    let role = cupola::auth::Role::Admin;
    let req = cupola::auth::TokenRequest {
        sub: "test-admin".into(),
        role,
        org: None,
        channel: None,
        patient: None,
        scope: cupola::auth::default_scope(role).to_string(),
        ttl_secs: 3600,
        client_id: Some("cupola-tests".into()),
    };
    cupola::auth::mint(auth, &req).expect("token")
}
