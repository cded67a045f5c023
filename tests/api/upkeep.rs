//! The gateway's upkeep of its PostgreSQL tables where the server's autovacuum does
//! not run: without it the planner has no statistics and drives searches from the
//! wrong index (docs/operations.md, "PostgreSQL's upkeep").

use futures::future::join_all;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, TestApp};
use crate::metrics::scrape;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_autovacuum_leaves_alone_are_vacuumed_and_analyzed() {
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.db_upkeep_secs = 1).await;
    let mut pg = sqlx::PgConnection::connect(app.db_url()).await.expect("the test's database");
    // Whatever this server's own setting, autovacuum now leaves idx_token alone.
    sqlx::query("ALTER TABLE idx_token SET (autovacuum_enabled = false)").execute(&mut pg).await.expect("ALTER");
    let created = join_all((0..150).map(|i| {
        let p = json!({"resourceType": "Patient", "gender": if i % 3 == 0 { "male" } else { "female" },
            "identifier": [{"system": "urn:test:upkeep", "value": format!("u{i}")}]});
        let app = &app;
        async move { app.post("Patient", &p).await.status().as_u16() }
    }))
    .await;
    assert!(created.iter().all(|s| *s == 201), "{created:?}");
    // An upkeep round may have run while they were written: wait for one after.
    let written: f64 = sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)")
        .fetch_one(&mut pg)
        .await
        .expect("the server's clock");
    let mut analyzed = None;
    for _ in 0..60 {
        let text = scrape(&app).await;
        let ran = text.lines().find(|l| l.starts_with("cupola_db_upkeep_total{table=\"idx_token\"}"));
        let last: Option<f64> = sqlx::query_scalar(
            "SELECT CAST(EXTRACT(EPOCH FROM last_analyze) AS DOUBLE PRECISION) FROM pg_stat_user_tables \
             WHERE relname = 'idx_token'",
        )
        .fetch_one(&mut pg)
        .await
        .expect("pg_stat_user_tables");
        if let (Some(line), Some(at)) = (ran, last.filter(|at| *at > written)) {
            analyzed = Some((line.to_string(), at));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let (line, _) = analyzed.expect("idx_token was vacuumed and analyzed, and /metrics counts it");
    let runs: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    assert!(runs >= 1.0, "{line}");
    // The planner now knows the table's size (-1 before its first VACUUM or
    // ANALYZE): the 150 patients' rows at least (gender, deceased, identifier).
    let tuples: f64 =
        sqlx::query_scalar("SELECT CAST(reltuples AS DOUBLE PRECISION) FROM pg_class WHERE relname = 'idx_token'")
            .fetch_one(&mut pg)
            .await
            .expect("pg_class");
    assert!(tuples >= 450.0, "idx_token's reltuples: {tuples}");
    let found = app.get_json("Patient?gender=female&_summary=count", 200).await;
    assert_eq!(found["total"], 100);
}
