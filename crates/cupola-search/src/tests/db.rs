//! Test harness: the root tables plus the index schema on an in-memory SQLite
//! database and, when it answers, on PostgreSQL (a private schema of the `test`
//! database, dropped afterwards; `CUPOLA_SEARCH_TEST_PG` overrides the URL).

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use super::{example, pairs, registry};
use crate::{grid_schema, index_schema, long_values_schema, Bind, Dialect, Sql};

fn core(d: Dialect) -> Vec<String> {
    let (pk, blob) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Dialect::Postgres => ("BIGINT PRIMARY KEY", "BYTEA"),
    };
    vec![
        format!("CREATE TABLE resources (pk {pk}, res_type TEXT NOT NULL, res_id TEXT NOT NULL, version BIGINT NOT NULL, last_updated BIGINT NOT NULL, deleted BOOLEAN NOT NULL, UNIQUE (res_type, res_id))"),
        // The body as the store keeps it: bytes (here the JSON's own).
        format!("CREATE TABLE resource_versions (res_pk BIGINT NOT NULL, version BIGINT NOT NULL, last_updated BIGINT NOT NULL, deleted BOOLEAN NOT NULL, method TEXT NOT NULL, body {blob}, PRIMARY KEY (res_pk, version))"),
    ]
}

pub(crate) async fn run(pool: &AnyPool, sql: &Sql) -> Vec<AnyRow> {
    let mut q = sqlx::query(&sql.text);
    for b in &sql.binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Bytes(b) => q.bind(b.clone()),
            Bind::Bool(v) => q.bind(*v),
            Bind::NullText => q.bind(Option::<String>::None),
            Bind::NullInt => q.bind(Option::<i64>::None),
        };
    }
    q.fetch_all(pool).await.unwrap_or_else(|e| panic!("{e}\n{}\n{:?}", sql.text, sql.binds))
}

fn plain(text: &str) -> Sql {
    Sql { text: text.to_string(), binds: Vec::new() }
}

pub(crate) struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
    next_pk: i64,
    schema: Option<String>,
}

impl Db {
    async fn create(pool: AnyPool, dialect: Dialect, schema: Option<String>) -> Db {
        for s in core(dialect).into_iter().chain(index_schema(dialect)).chain(grid_schema(dialect)) {
            assert!(!s.contains(';'));
            run(&pool, &plain(&s)).await;
        }
        // Twice: the DDL is idempotent.
        for s in index_schema(dialect) {
            run(&pool, &plain(&s)).await;
        }
        for s in long_values_schema(dialect) {
            assert!(!s.contains(';'));
            run(&pool, &plain(&s)).await;
        }
        Db { pool, dialect, next_pk: 1, schema }
    }

    async fn sqlite() -> Db {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.expect("sqlite");
        Db::create(pool, Dialect::Sqlite, None).await
    }

    /// A fresh schema on the local PostgreSQL, or `None` when it does not answer.
    async fn postgres() -> Option<Db> {
        static N: AtomicUsize = AtomicUsize::new(0);
        sqlx::any::install_default_drivers();
        let url =
            std::env::var("CUPOLA_SEARCH_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("cupola_search_t{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let admin = match AnyPoolOptions::new().max_connections(1).connect(&url).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("PostgreSQL not available ({e}): SQLite only");
                return None;
            }
        };
        run(&admin, &plain(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).await;
        run(&admin, &plain(&format!("CREATE SCHEMA {schema}"))).await;
        admin.close().await;
        let path = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let path = path.clone();
                Box::pin(async move {
                    conn.execute(path.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .expect("postgres");
        Some(Db::create(pool, Dialect::Postgres, Some(schema)).await)
    }

    /// SQLite, and PostgreSQL when available.
    pub async fn all() -> Vec<Db> {
        let mut v = vec![Db::sqlite().await];
        v.extend(Db::postgres().await);
        v
    }

    /// Drops the PostgreSQL schema.
    pub async fn finish(self) {
        if let Some(s) = &self.schema {
            run(&self.pool, &plain(&format!("DROP SCHEMA {s} CASCADE"))).await;
        }
        self.pool.close().await;
    }

    /// Stores a resource (current version 1) with its index rows; returns its pk.
    pub async fn put(&mut self, res: &Value, last_updated: &str) -> i64 {
        let pk = self.next_pk;
        self.next_pk += 1;
        let rtype = res["resourceType"].as_str().expect("type").to_string();
        let id = res["id"].as_str().expect("id").to_string();
        let lu = cupola_types::dates::parse_range(last_updated).expect("lu").lo;
        let ins = Sql {
            text: "INSERT INTO resources (pk, res_type, res_id, version, last_updated, deleted) VALUES ($1, $2, $3, 1, $4, $5)".into(),
            binds: vec![Bind::Int(pk), Bind::Text(rtype.clone()), Bind::Text(id), Bind::Int(lu), Bind::Bool(false)],
        };
        run(&self.pool, &ins).await;
        let ver = Sql {
            text: "INSERT INTO resource_versions (res_pk, version, last_updated, deleted, method, body) VALUES ($1, 1, $2, $3, 'POST', $4)".into(),
            binds: vec![Bind::Int(pk), Bind::Int(lu), Bind::Bool(false), Bind::Bytes(res.to_string().into_bytes())],
        };
        run(&self.pool, &ver).await;
        let rows = registry().extract(&rtype, res);
        let d = self.dialect;
        for s in registry().index_deletes(pk, d).iter().chain(&registry().index_inserts(pk, &rtype, &rows, d)) {
            run(&self.pool, s).await;
        }
        pk
    }

    pub async fn pks(&self, sql: &Sql) -> Vec<i64> {
        run(&self.pool, sql).await.iter().map(|r| r.try_get::<i64, _>(0).expect("pk")).collect()
    }

    pub async fn scalar(&self, sql: &Sql) -> i64 {
        run(&self.pool, sql).await[0].try_get::<i64, _>(0).expect("scalar")
    }

    /// The pks of the page of a search (also checks that bodies come back).
    pub async fn search(&self, t: &str, q: &[(&str, &str)]) -> Vec<i64> {
        let query = registry().parse_search(t, &pairs(q), false).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        let rows = run(&self.pool, &query.page_sql(self.dialect, i64::MAX)).await;
        for r in &rows {
            let body: Vec<u8> = r.try_get(1).expect("body");
            assert!(body.starts_with(b"{"));
        }
        rows.iter().map(|r| r.try_get::<i64, _>(0).expect("pk")).collect()
    }

    pub async fn count(&self, t: &str, q: &[(&str, &str)]) -> i64 {
        let query = registry().parse_search(t, &pairs(q), false).expect("parse");
        self.scalar(&query.count_sql(self.dialect, i64::MAX)).await
    }
}

/// Nine resources: 1-3 Patients, 4 Organization/1, 5-6 Appointments, 7 Practitioner,
/// 8 ChargeItem, 9 ActivityDefinition.
pub(crate) async fn fill(db: &mut Db) {
    db.put(&example("Patient-example.json"), "2020-01-01T00:00:00Z").await;
    let p2 = json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Müller", "given": ["Élodie"]}], "birthDate": "1980-05",
        "identifier": [{"system": "sys", "value": "123"}]});
    db.put(&p2, "2021-01-01T00:00:00Z").await;
    let p3 = json!({"resourceType": "Patient", "id": "p3", "name": [{"family": "Zed"}], "birthDate": "2000-01-01", "gender": "female",
        "meta": {"profile": ["http://example.org/fhir/StructureDefinition/p"]}});
    db.put(&p3, "2022-01-01T00:00:00Z").await;
    db.put(&example("Organization-1.json"), "2020-01-01T00:00:00Z").await;
    db.put(&example("Appointment-example.json"), "2020-01-01T00:00:00Z").await;
    let a2 = json!({"resourceType": "Appointment", "id": "a2", "status": "proposed", "start": "2024-01-01T10:00:00Z",
        "participant": [{"actor": {"reference": "Patient/p2"}, "status": "needs-action"}]});
    db.put(&a2, "2020-01-01T00:00:00Z").await;
    db.put(&example("Practitioner-example.json"), "2020-01-01T00:00:00Z").await;
    db.put(&example("ChargeItem-example.json"), "2020-01-01T00:00:00Z").await;
    let ad = json!({"resourceType": "ActivityDefinition", "id": "ad", "status": "active", "useContext": [
        {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "focus"},
         "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "123"}]}},
        {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
         "valueRange": {"low": {"value": 18}, "high": {"value": 65}}}]});
    db.put(&ad, "2020-01-01T00:00:00Z").await;
}
