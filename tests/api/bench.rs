//! The benchmark's pgbench script stays in step with what a create really writes.

#[test]
fn shipped_pgbench_script_matches_the_code() {
    let shipped = include_str!("../../bench/pgbench-create.sql");
    assert_eq!(
        shipped,
        cupola::bench::pgbench_script(),
        "regenerate: cargo run -- bench pgbench-script > bench/pgbench-create.sql"
    );
}

/// pgbench replaying the script writes Patients that the gateway then finds by
/// search, as if it had created them itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_script_writes_patients_the_gateway_finds() {
    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let url = url::Url::parse(app.db_url()).unwrap();
    let script = std::env::temp_dir().join(format!("cupola-test-pgbench-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(&script, cupola::bench::pgbench_script()).unwrap();
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", "2", "-t", "3", "-f"])
        .arg(&script)
        .args([
            "-h",
            url.host_str().unwrap(),
            "-p",
            &url.port().unwrap_or(5432).to_string(),
            "-U",
            "postgres",
            url.path().trim_start_matches('/'),
        ])
        .output()
        .expect("pgbench runs");
    let _ = std::fs::remove_file(&script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found = app
        .get_json("Patient?identifier=http://example.org/cupola/sid/bench-mrn|B000000000000&_total=accurate", 200)
        .await;
    assert_eq!(found["total"], 6);
    assert_eq!(found["entry"][0]["resource"]["name"][0]["family"], "Rossi");
}
