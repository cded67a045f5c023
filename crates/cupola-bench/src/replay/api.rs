//! The replay's side of the gateway's API: requests timed per operation, each sent
//! with the token of the point (or provider, or administrator) that makes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use cupola::auth::Role;
use reqwest::Method;
use serde_json::Value;

use super::stats::Stats;

pub const BASE: &str = "http://example.org/cupola";

/// Who sends a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    Admin,
    /// A booking point: its channel and number (`Organization/bp-<channel>-NNN`).
    Point(String, u32),
    /// A payment point of a channel that takes payments only (kiosk, web).
    Payer(String, u32),
    /// A provider, by its code (`Organization/prov-<code>`).
    Provider(String),
}

impl Who {
    /// The Organization id this caller acts for.
    pub fn org(&self) -> String {
        match self {
            Who::Admin => "regione-liguria".into(),
            Who::Point(c, n) | Who::Payer(c, n) => format!("bp-{c}-{n:03}"),
            Who::Provider(code) => format!("prov-{code}"),
        }
    }
}

/// The gateway as the replay's callers see it.
pub struct Api {
    pub base: String,
    client: reqwest::Client,
    auth: cupola::config::AuthConfig,
    tokens: Mutex<HashMap<Who, String>>,
    pub stats: Arc<Stats>,
}

/// An answer: its status and body (`Null` when not JSON).
pub type Answer = (u16, Value);

impl Api {
    pub fn new(base: &str, auth: cupola::config::AuthConfig, stats: Arc<Stats>) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            client,
            auth,
            tokens: Mutex::new(HashMap::new()),
            stats,
        })
    }

    /// The token of `who`, minted once with the development key.
    fn token(&self, who: &Who) -> anyhow::Result<String> {
        if let Some(t) = self.tokens.lock().ok().and_then(|m| m.get(who).cloned()) {
            return Ok(t);
        }
        let (role, channel) = match who {
            Who::Admin => (Role::Admin, None),
            Who::Point(c, _) => (Role::BookingPoint, Some(c.as_str())),
            Who::Payer(c, _) => (Role::PaymentPoint, Some(c.as_str())),
            Who::Provider(_) => (Role::Provider, None),
        };
        let org = who.org();
        let token = crate::server::mint_token(&self.auth, role, format!("replay-{org}"), Some(&org), channel)?;
        if let Ok(mut m) = self.tokens.lock() {
            m.insert(who.clone(), token.clone());
        }
        Ok(token)
    }

    /// `method path` as `who`, with `body` as FHIR JSON; timed as `op` (an answer
    /// outside 2xx counts as its error).
    pub async fn call(
        &self,
        op: &'static str,
        who: &Who,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = match path.trim_start_matches('/') {
            "" => self.base.clone(),
            p => format!("{}/{p}", self.base),
        };
        let token = self.token(who)?;
        // A busy gateway answers 503 "retry in a moment": the client does, as a
        // booking point would (every write the replay sends may be sent again: the
        // same proposal, payment reference, message id or resource id).
        let mut pause = Duration::from_millis(250);
        loop {
            let mut req = self.client.request(method.clone(), &url).bearer_auth(&token);
            req = req.header("accept", "application/fhir+json");
            if let Some(b) = body {
                req = req.header("content-type", "application/fhir+json").body(b.to_string());
            }
            let t = Instant::now();
            let r = req.send().await.with_context(|| format!("{method} {url}: is the gateway still running?"))?;
            let status = r.status().as_u16();
            let bytes = r.bytes().await.with_context(|| format!("{method} {url}: reading the answer"))?;
            self.stats.record(op, t.elapsed(), (200..300).contains(&status));
            if status == 503 && pause < Duration::from_secs(30) {
                self.stats.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(pause).await;
                pause *= 2;
                continue;
            }
            return Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
        }
    }

    /// As [`Api::call`], failing unless the answer is `expect`.
    pub async fn expect(
        &self,
        op: &'static str,
        who: &Who,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(op, who, method.clone(), path, body).await?;
        anyhow::ensure!(status == expect, "{method} {path} answered {status} (expected {expect}): {}", outcome(&v));
        Ok(v)
    }

    /// Every resource a search finds, page after page (`next` links), as `who`.
    pub async fn search_all(&self, who: &Who, query: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut path = query.to_string();
        loop {
            let page = self.expect("check", who, Method::GET, &path, None, 200).await?;
            out.extend(page["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()));
            let next = page["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next");
            match next.and_then(|l| l["url"].as_str()) {
                Some(url) => path = url.split_once("/fhir/").map_or(url, |(_, p)| p).to_string(),
                None => return Ok(out),
            }
        }
    }
}

/// The first diagnostics of an OperationOutcome, or the body itself, shortened.
pub fn outcome(v: &Value) -> String {
    let text = v["issue"][0]["diagnostics"].as_str().map_or_else(|| v.to_string(), str::to_string);
    text.chars().take(300).collect()
}

/// The value of the `Parameters` part named `name` among `parts`.
pub fn part<'a>(parts: &'a Value, name: &str) -> Option<&'a Value> {
    parts.as_array()?.iter().find(|p| p["name"] == name)
}

/// A Money or decimal as an exact amount.
pub fn money(v: &Value) -> rust_decimal::Decimal {
    let n = if v.is_object() { &v["value"] } else { v };
    n.to_string().trim_matches('"').parse().unwrap_or_default()
}
