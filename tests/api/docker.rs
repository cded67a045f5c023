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
