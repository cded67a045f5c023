//! The gateway under test, as its own process, on a fresh database.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

/// A fresh database for one benchmark run.
pub struct BenchDb {
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    pub async fn create(backend: &str, pg_url: &str) -> anyhow::Result<BenchDb> {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(BenchDb { url, admin: None, _dir: Some(dir) })
            }
            "postgres" => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!("cupola_bench_{}_{n}", std::process::id());
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(pg_url)
                    .await
                    .context("connecting to PostgreSQL (--pg-url)")?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut c).await?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
                let base = pg_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(pg_url);
                Ok(BenchDb { url: format!("{base}/{name}"), admin: Some((pg_url.to_string(), name)), _dir: None })
            }
            other => anyhow::bail!("unknown backend {other:?}: use sqlite or postgres"),
        }
    }

    pub async fn drop_db(self) {
        if let Some((admin, name)) = &self.admin {
            if let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
            }
        }
    }
}

/// The gateway binary given by `--gateway-bin`, if any (set once, by `run`).
static GATEWAY_BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

pub fn set_gateway_bin(path: Option<PathBuf>) {
    if let Some(p) = path {
        let _ = GATEWAY_BIN.set(p);
    }
}

/// The `cupola` binary to start: `--gateway-bin`, or `cupola` next to this executable
/// (`target/release/cupola` beside `target/release/cupola-bench`).
fn gateway_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = GATEWAY_BIN.get() {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("this executable has no directory")?;
    let bin = dir.join(format!("cupola{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        bin.is_file(),
        "no gateway binary at {}: build it with `cargo build --release -p cupola -p cupola-bench`, \
         or pass --gateway-bin",
        bin.display()
    );
    Ok(bin)
}

/// A token of `role` for user `sub` of Organization `org` on `channel`, valid 24 h,
/// signed with the development key of `auth`.
pub fn mint_token(
    auth: &cupola::config::AuthConfig,
    role: cupola::auth::Role,
    sub: String,
    org: Option<&str>,
    channel: Option<&str>,
) -> anyhow::Result<String> {
    use cupola::auth::{default_scope, mint, TokenRequest};
    let req = TokenRequest {
        sub,
        role,
        org: org.map(|o| format!("Organization/{o}")),
        channel: channel.map(str::to_string),
        patient: None,
        scope: default_scope(role).into(),
        ttl_secs: 24 * 3600,
        client_id: Some("cupola-bench".into()),
    };
    mint(auth, &req)
}

/// `cupola serve` started from the gateway's binary (see [`gateway_bin`]).
pub struct Gateway {
    child: Child,
    pub base: String,
    /// The development key the gateway checks tokens with (its own, in a temp dir).
    pub auth: cupola::config::AuthConfig,
    _key_dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(database_url: &str) -> anyhow::Result<Gateway> {
        Gateway::start_with(database_url, &[]).await
    }

    /// [`Gateway::start`] with more `cupola serve` flags.
    pub async fn start_with(database_url: &str, extra: &[String]) -> anyhow::Result<Gateway> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = gateway_bin()?;
        let key_dir = tempfile::tempdir()?;
        let auth = cupola::config::AuthConfig::dev(key_dir.path().join("dev-key.json"));
        // Tokens, scopes, visibility and audit stay on; the per-caller rate limit is
        // raised so that sixteen clients at full speed are not throttled.
        let child = Command::new(&exe)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
            .args(["--rate-limit", "100000", "--rate-burst", "100000"])
            .args(extra)
            .arg("--dev-key-file")
            .arg(&auth.dev_key_file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the gateway {}", exe.display()))?;
        let gw = Gateway { child, base: format!("http://127.0.0.1:{port}/fhir"), auth, _key_dir: key_dir };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client
                .get(format!("http://127.0.0.1:{port}/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(gw);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the gateway did not become ready in 30 s")
    }

    /// One booking-point token per client (a counter each), as the gateway accepts them.
    pub fn tokens(&self, clients: usize) -> anyhow::Result<Vec<String>> {
        self.tokens_of(
            clients,
            cupola::auth::Role::BookingPoint,
            |c| (format!("bench-counter-{c}"), "bench".into()),
            "counter",
        )
    }

    /// One payment-point token per client (a pharmacy each, `pharmacy-<n>`).
    pub fn payment_tokens(&self, clients: usize) -> anyhow::Result<Vec<String>> {
        self.tokens_of(
            clients,
            cupola::auth::Role::PaymentPoint,
            |c| (format!("bench-cashier-{c}"), format!("pharmacy-{c}")),
            "pharmacy",
        )
    }

    /// One token of `role` per client: its (user, organisation) and channel.
    fn tokens_of(
        &self,
        clients: usize,
        role: cupola::auth::Role,
        who: impl Fn(usize) -> (String, String),
        channel: &str,
    ) -> anyhow::Result<Vec<String>> {
        (0..clients)
            .map(|c| {
                let (sub, org) = who(c);
                mint_token(&self.auth, role, sub, Some(&org), Some(channel))
            })
            .collect()
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (current, peak) resident memory in kB, from /proc.
    pub fn memory_kb(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
