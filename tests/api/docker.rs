//! The container image starts the same `cupola serve` the tests run (no container
//! engine runs here: `.ci/run` checks the compose file with docker-compose).

#[test]
fn the_image_starts_the_gateway_as_the_tests_do() {
    let dockerfile = include_str!("../../docker/Dockerfile");
    let line = |l: &str| dockerfile.lines().any(|x| x.trim() == l);
    assert!(line(r#"ENTRYPOINT ["cupola"]"#) && line(r#"CMD ["serve"]"#), "the image runs `cupola serve`");
    assert!(line("USER cupola"), "not as root");
    assert!(dockerfile.contains("FROM debian:bookworm-slim"), "a small runtime image");
    // The compose file's gateway keeps the image's command (`serve`), configured by
    // environment only; every demo provider has its simulator.
    let compose = include_str!("../../docker/compose.yaml");
    let gateway = compose.split("\n  gateway:\n").nth(1).and_then(|g| g.split("\n  providers:").next()).unwrap_or("");
    assert!(!gateway.is_empty() && !gateway.contains("command:"), "{gateway}");
    for p in std::fs::read_dir("mappings/providers").expect("mappings").flatten() {
        let code = p.path().file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        assert!(compose.contains(&format!("\"--provider\", \"{code}\"")), "a simulator for {code}");
    }
}

/// The service `name` of the compose file, up to the blank line that ends it.
fn service<'a>(compose: &'a str, name: &str) -> &'a str {
    let block = compose.split(&format!("\n  {name}:\n")).nth(1).unwrap_or_default();
    block.split("\n\n").next().unwrap_or_default()
}

/// Every `cupola_…` metric name in `text` (a histogram's series named as the histogram).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (at, _) in text.match_indices("cupola_") {
        let name: String = text[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        names.insert(base.to_string());
    }
    names
}

/// The stack's Prometheus scrapes the gateway's metrics address (kept inside the
/// stack's network), and the dashboard and docs/operations.md name exactly the
/// metrics the gateway defines (src/metrics.rs).
#[test]
fn prometheus_scrapes_the_gateway_and_the_dashboard_shows_its_metrics() {
    let compose = include_str!("../../docker/compose.yaml");
    let gateway = service(compose, "gateway");
    assert!(gateway.contains("CUPOLA_METRICS_LISTEN: 0.0.0.0:9464"), "{gateway}");
    assert!(!gateway.contains("9464:"), "the metrics address is not published: {gateway}");
    let prometheus = service(compose, "prometheus");
    assert!(prometheus.contains("- ./prometheus.yml:/etc/prometheus/prometheus.yml:ro"), "{prometheus}");
    let scrape = include_str!("../../docker/prometheus.yml");
    assert!(scrape.contains("metrics_path: /metrics") && scrape.contains(r#"targets: ["gateway:9464"]"#), "{scrape}");
    let grafana = service(compose, "grafana");
    assert!(grafana.contains("- ./grafana/cupola-dashboard.json:/var/lib/grafana/dashboards/cupola.json:ro"));

    let defined = metric_names(include_str!("../../src/metrics.rs"));
    assert!(defined.len() >= 12, "{defined:?}");
    let dashboard: serde_json::Value = serde_json::from_str(include_str!("../../docker/grafana/cupola-dashboard.json"))
        .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert_eq!(metric_names(&exprs.join("\n")), defined, "the dashboard shows every metric, and only those");
    let docs = include_str!("../../docs/operations.md");
    for name in &defined {
        assert!(docs.contains(&format!("`{name}`")), "docs/operations.md lists {name}");
    }
}
