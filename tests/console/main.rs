//! The console in a real browser: headless Chromium driven through ChromeDriver
//! against one demo gateway the scenarios share (`harness = false`: this file is the
//! runner, so that the gateway and the driver start once and stop at the end).
//!
//! `cargo test --test console` runs every scenario; `cargo test --test console -- pay`
//! those whose name contains `pay`. Screenshots land in `target/tmp/console/`.

mod back_office;
mod browser;
mod counter;
mod desks;
mod gateway;
#[path = "../shared/issuer.rs"]
mod issuer;
mod oauth;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What every scenario shares.
pub struct Env {
    pub gateway: gateway::Gateway,
    pub driver: browser::Driver,
}

pub type Scenario = fn(Arc<Env>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

fn main() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let chosen: Vec<(&str, Scenario)> = desks::ALL
        .iter()
        .chain(desks::SIGN_IN)
        .copied()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    if chosen.is_empty() {
        println!("running 0 console scenarios");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let failed = rt.block_on(run(chosen));
    if failed > 0 {
        std::process::exit(101);
    }
}

/// Runs the scenarios one after another (one browser window at a time, as at a
/// desk); returns how many failed.
async fn run(chosen: Vec<(&'static str, Scenario)>) -> usize {
    println!("running {} console scenarios", chosen.len());
    let env = Arc::new(Env { gateway: gateway::Gateway::demo().await, driver: browser::Driver::start() });
    let mut failed = Vec::new();
    for (name, scenario) in chosen {
        let started = std::time::Instant::now();
        let outcome = tokio::spawn(scenario(env.clone())).await;
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test console::{name} ... ok ({secs:.1} s)"),
            Err(e) => {
                println!("test console::{name} ... FAILED ({secs:.1} s): {e}");
                failed.push(name);
            }
        }
    }
    if let Ok(env) = Arc::try_unwrap(env) {
        drop(env.driver);
        env.gateway.stop().await;
    }
    println!("console: {} failed {:?}", failed.len(), failed);
    failed.len()
}
