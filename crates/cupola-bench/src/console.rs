//! `cupola-bench console`: how fast each desk of the operators' console is ready —
//! from navigation start to the page's `performance.mark('ready')` (its first data
//! drawn through the API) — in headless Chromium against a demo gateway of the
//! build (`serve --demo`, embedded SQLite, tokens and audit on).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use super::server::{BenchDb, Gateway};

#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Loads of each desk (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub loads: usize,
    /// The desks, each with the demo role that opens it.
    #[arg(long, value_delimiter = ',', default_value = "booking,payment,agenda,integration,figures")]
    pub desks: Vec<String>,
    /// ChromeDriver (Debian's `chromium-driver`).
    #[arg(long, default_value = "/usr/bin/chromedriver")]
    pub chromedriver: String,
}

/// The demo role that works at `desk`.
fn role_of(desk: &str) -> anyhow::Result<&'static str> {
    Ok(match desk {
        "booking" => "booking-point",
        "payment" => "payment-point",
        "agenda" => "provider",
        "integration" | "figures" => "admin",
        other => bail!("unknown desk `{other}`: booking, payment, agenda, integration or figures"),
    })
}

pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let db = BenchDb::create("sqlite", "").await?;
    tracing::info!("starting the demo gateway (loading the demo region)");
    let gw = Gateway::start_with(&db.url, &["--demo".to_string()]).await?;
    let origin = gw.base.trim_end_matches("/fhir").to_string();
    let driver = Driver::start(&args.chromedriver)?;
    let browser = driver.session().await?;
    println!("| desk | loads | median ms | min ms | max ms |\n|---|---|---|---|---|");
    for desk in &args.desks {
        let token = demo_token(&origin, role_of(desk)?).await?;
        let mut ready = measure(&browser, &origin, desk, &token, args.loads).await?;
        ready.sort_by(f64::total_cmp);
        let median = ready[ready.len() / 2];
        println!("| {desk} | {} | {median:.0} | {:.0} | {:.0} |", ready.len(), ready[0], ready[ready.len() - 1]);
    }
    let _ = browser.close().await;
    Ok(())
}

/// A token for `role` at the first organisation the demo offers it.
async fn demo_token(origin: &str, role: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let roles: Value = http.get(format!("{origin}/console/demo-roles")).send().await?.json().await?;
    let org = roles["roles"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["role"] == role))
        .and_then(|r| r["organizations"][0]["reference"].as_str())
        .with_context(|| format!("the demo offers no organisation for {role}"))?;
    let minted: Value = http
        .post(format!("{origin}/console/demo-token"))
        .json(&json!({"role": role, "org": org}))
        .send()
        .await?
        .json()
        .await?;
    minted["token"].as_str().map(str::to_string).with_context(|| format!("no token in {minted}"))
}

/// `loads` fresh loads of the desk (each from a blank page, so that the whole
/// document, its modules and its API calls count); the ready time of each, in ms.
async fn measure(c: &Client, origin: &str, desk: &str, token: &str, loads: usize) -> anyhow::Result<Vec<f64>> {
    c.goto(&format!("{origin}/console/")).await?;
    c.execute("sessionStorage.setItem('cupola.token', arguments[0]); return null;", vec![json!(token)]).await?;
    let mut out = Vec::with_capacity(loads);
    for _ in 0..loads {
        c.goto("about:blank").await?;
        c.goto(&format!("{origin}/console/#/{desk}")).await?;
        out.push(ready_ms(c, desk).await?);
    }
    Ok(out)
}

async fn ready_ms(c: &Client, desk: &str) -> anyhow::Result<f64> {
    for _ in 0..200 {
        let v = c
            .execute(
                "const m = performance.getEntriesByName('ready', 'mark'); return m.length ? m[0].startTime : null;",
                vec![],
            )
            .await?;
        if let Some(ms) = v.as_f64() {
            return Ok(ms);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the {desk} desk never marked itself ready (10 s)")
}

/// ChromeDriver on a free port, killed with this process.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(exe: &str) -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = Command::new(exe);
        cmd.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the driver dies with the bench.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("starting {exe}; install Debian's chromium-driver"))?;
        Ok(Driver { child, port })
    }

    async fn session(&self) -> anyhow::Result<Client> {
        let mut caps = serde_json::Map::new();
        let flags =
            ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"];
        caps.insert("goog:chromeOptions".into(), json!({"args": flags}));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{}", self.port);
        for _ in 0..50 {
            if let Ok(c) = ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("chromedriver on {url} gives no browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
