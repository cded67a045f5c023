//! Structured logs with `tracing`: JSON lines when `CUPOLA_LOG_FORMAT=json`, readable
//! text otherwise; the level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// lapin logs every message the broker returns, body and all (patient data); the
/// relay logs returns itself, without the body.
const DEFAULT: &str = "info,sqlx=warn,sqlx::query=error,lapin::returned_messages=error";

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT));
    let json = std::env::var("CUPOLA_LOG_FORMAT").map(|v| v == "json").unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
