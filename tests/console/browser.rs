//! Headless Chromium through ChromeDriver (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs), driven with fantoccini.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Map, Value};

/// How long a step waits for what it expects on the page.
pub const WAIT: Duration = Duration::from_secs(15);

/// A ChromeDriver process on a free port; killed with this value, and with the
/// test process if that dies first.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start() -> Driver {
        let port = free_port();
        let mut cmd = Command::new(chromedriver());
        cmd.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the
        // driver when this process dies, so a failed run leaves no driver behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start chromedriver ({e}); install Debian's chromium and chromium-driver (.ci/run does)")
        });
        Driver { child, port }
    }

    /// A new headless browser session (a window of a counter's screen).
    pub async fn session(&self) -> Client {
        let mut caps = Map::new();
        let args =
            ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"];
        caps.insert("goog:chromeOptions".into(), json!({"args": args, "binary": chromium()}));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{}", self.port);
        for _ in 0..50 {
            match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
                Ok(c) => return c,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("chromedriver on {url} gives no session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("port").port()
}

/// The element `css` once it is on the page (and displayed).
pub async fn find(c: &Client, css: &str) -> Element {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.is_displayed().await.unwrap_or(false) {
                return e;
            }
        }
        if tokio::time::Instant::now() > deadline {
            let text = page_text(c).await;
            panic!("`{css}` did not appear within {WAIT:?}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of `css` contains `want`; returns the whole text.
pub async fn text_of(c: &Client, css: &str, want: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(want) {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("`{css}` does not say `{want}` within {WAIT:?}; it says `{text}`");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `css` is on the page and displayed, now.
pub async fn shown(c: &Client, css: &str) -> bool {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

/// The text of the whole page (for failure messages).
pub async fn page_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(e) => format!("(no body: {e})"),
    }
}

/// Runs `script` in the page and returns its value.
pub async fn eval(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script `{script}` fails: {e}"))
}

/// Saves a PNG of the window under the build directory (`target/tmp/console/`).
pub async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
}

/// The text of `css` once it has some.
pub async fn some_text(c: &Client, css: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            let text = e.text().await.unwrap_or_default();
            if !text.trim().is_empty() {
                return text;
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!("`{css}` says nothing within {WAIT:?}; the page says:\n{}", page_text(c).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the JavaScript expression `cond` is true in the page.
pub async fn until(c: &Client, cond: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let script = format!("return !!({cond});");
    while !eval(c, &script).await.as_bool().unwrap_or(false) {
        if tokio::time::Instant::now() > deadline {
            panic!("`{cond}` is not true within {WAIT:?}; the page says:\n{}", page_text(c).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
