//! Many clients at once: conditional create makes exactly one resource, If-Match lets
//! exactly one of many updates through, on one server and on two server processes
//! sharing one PostgreSQL.

use std::process::{Child, Command, Stdio};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{client_as, match_ids, As, Backend, TestApp, TestDb};

fn patient_with(cf_value: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": "http://example.org/sid/mrn", "value": cf_value}], "active": true})
}

async fn conditional_create(client: &reqwest::Client, base: &str, body: &Value, value: &str) -> u16 {
    client
        .post(format!("{base}/Patient"))
        .header("content-type", "application/fhir+json")
        .header("if-none-exist", format!("identifier=http://example.org/sid/mrn|{value}"))
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn concurrent_conditional_creates_make_exactly_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let body = patient_with("MRN-1");
    let statuses = join_all((0..24).map(|_| conditional_create(&app.client, &app.base, &body, "MRN-1"))).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 23, "{statuses:?}");
    let found = app.get_json("Patient?identifier=http://example.org/sid/mrn|MRN-1", 200).await;
    assert_eq!(match_ids(&found).len(), 1);
}

async fn concurrent_if_match_updates_let_exactly_one_through(b: Backend) {
    let app = TestApp::spawn(b).await;
    let created = app.create(&patient_with("MRN-2")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let sends = (0..16).map(|n| {
        let mut body = created.clone();
        body["active"] = json!(n % 2 == 0);
        app.req(Method::PUT, &format!("Patient/{id}"))
            .header("content-type", "application/fhir+json")
            .header("if-match", "W/\"1\"")
            .body(body.to_string())
            .send()
    });
    let statuses: Vec<u16> =
        join_all(sends).await.into_iter().map(|r| r.map(|r| r.status().as_u16()).unwrap_or(0)).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 15, "{statuses:?}");
    assert_eq!(app.get_json(&format!("Patient/{id}"), 200).await["meta"]["versionId"], "2");
}

async fn many_concurrent_writers_never_get_a_500(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bodies: Vec<Value> = (0..64).map(|n| patient_with(&format!("W-{n}"))).collect();
    let sends = bodies.iter().map(|b| app.post("Patient", b));
    let statuses: Vec<u16> = join_all(sends).await.into_iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 503), "{statuses:?}");
    let created = statuses.iter().filter(|s| **s == 201).count() as i64;
    assert_eq!(app.get_json("Patient?_summary=count", 200).await["total"], created);
}

/// Many creates at once: each answer names its own resource, and each reads back
/// and is found as its own.
async fn concurrent_creates_each_get_their_own_resource(b: Backend) {
    let app = TestApp::spawn(b).await;
    let bodies: Vec<Value> = (0..48).map(|n| patient_with(&format!("OWN-{n}"))).collect();
    let answers = join_all(bodies.iter().map(|b| app.post("Patient", b))).await;
    for (n, r) in answers.into_iter().enumerate() {
        assert_eq!(r.status(), 201);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["identifier"][0]["value"], format!("OWN-{n}"));
        let id = created["id"].as_str().unwrap();
        assert!(location.contains(&format!("/Patient/{id}/_history/1")));
        let read = app.get_json(&format!("Patient/{id}"), 200).await;
        assert_eq!(read["identifier"][0]["value"], format!("OWN-{n}"));
        let found = app.get_json(&format!("Patient?identifier=OWN-{n}"), 200).await;
        assert_eq!(match_ids(&found), [id]);
    }
}

/// Many PUTs at once of one new id: one creates it, the others update it in turn.
/// None fails, the history holds each once, and only the last is found by search.
async fn concurrent_puts_of_a_new_id_create_it_once_and_update_it_in_turn(b: Backend) {
    let app = TestApp::spawn(b).await;
    let sends = (0..12).map(|n| {
        let mut body = patient_with(&format!("PUT-{n}"));
        body["id"] = json!("put-race");
        app.req(Method::PUT, "Patient/put-race")
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
    });
    let statuses: Vec<u16> =
        join_all(sends).await.into_iter().map(|r| r.map(|r| r.status().as_u16()).unwrap_or(0)).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 11, "{statuses:?}");
    let current = app.get_json("Patient/put-race", 200).await;
    assert_eq!(current["meta"]["versionId"], "12");
    let history = app.get_json("Patient/put-race/_history?_count=50", 200).await;
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(12));
    let last = current["identifier"][0]["value"].as_str().unwrap().to_string();
    for n in 0..12 {
        let value = format!("PUT-{n}");
        let found = app.get_json(&format!("Patient?identifier=http://example.org/sid/mrn|{value}"), 200).await;
        let expected: Vec<&str> = if value == last { vec!["put-race"] } else { vec![] };
        assert_eq!(match_ids(&found), expected, "{value}");
    }
}

crate::on_both!(
    concurrent_puts_of_a_new_id_create_it_once_and_update_it_in_turn,
    concurrent_creates_each_get_their_own_resource,
    creates_arriving_together_are_each_found_by_every_value,
    concurrent_conditional_creates_make_exactly_one,
    concurrent_if_match_updates_let_exactly_one_through,
    many_concurrent_writers_never_get_a_500
);

/// A gateway process of the built binary.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) async fn start(database_url: &str, key_file: &std::path::Path) -> Server {
        Server::start_with(database_url, key_file, &[]).await
    }

    /// [`Server::start`] with more `cupola serve` flags.
    pub(crate) async fn start_with(database_url: &str, key_file: &std::path::Path, args: &[String]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(env!("CARGO_BIN_EXE_cupola"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
            .arg("--dev-key-file")
            .arg(key_file)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cupola");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{base}/health/ready")).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Server { child, base: format!("{base}/fhir") }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Conditional creates sent to two gateway processes sharing one database: exactly
/// one resource, whatever each process does inside itself.
async fn two_processes_create_exactly_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("dev-key.json");
    // Both start at once and must agree on one development key.
    let (a, b) = futures::join!(Server::start(&db.url, &key), Server::start(&db.url, &key));
    let client = client_as(&cupola::config::AuthConfig::dev(&key), &As::admin());
    let body = patient_with("MRN-TWO");
    let sends = (0..30).map(|n| {
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        conditional_create(&client, base, &body, "MRN-TWO")
    });
    let statuses = join_all(sends).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 29, "{statuses:?}");
    let found: Value = client
        .get(format!("{}/Patient?identifier=http://example.org/sid/mrn|MRN-TWO", a.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(match_ids(&found).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_postgres_create_exactly_one() {
    two_processes_create_exactly_one(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_sqlite_file_create_exactly_one() {
    two_processes_create_exactly_one(Backend::Sqlite).await;
}

/// Many creates of several types at once (on PostgreSQL those that arrive together
/// are written together): each is indexed as a create alone would be, so it is found
/// by its own string, token, date, reference, quantity, number (position) and uri
/// values, reads back as sent, and has its first version in the history.
async fn creates_arriving_together_are_each_found_by_every_value(b: Backend) {
    let app = TestApp::spawn(b).await;
    let n = 12;
    let mut bodies: Vec<Value> = Vec::new();
    for i in 0..n {
        let texts = [
            format!(
                r#"{{"resourceType":"Patient","identifier":[{{"system":"http://example.org/sid/mrn","value":"TOG-{i}"}}],
                "name":[{{"family":"Insieme{i}"}}],"birthDate":"19{}-03-04","generalPractitioner":[{{"reference":"Practitioner/gp-{i}"}}]}}"#,
                40 + i
            ),
            format!(
                r#"{{"resourceType":"Invoice","status":"draft","totalGross":{{"value":{}.50,"currency":"EUR"}}}}"#,
                100 + i
            ),
            format!(
                r#"{{"resourceType":"Location","name":"Sede {i}","position":{{"longitude":{:.2},"latitude":44.40}}}}"#,
                8.90 + 0.02 * f64::from(i)
            ),
            format!(r#"{{"resourceType":"ValueSet","status":"draft","url":"http://example.org/vs/tog-{i}"}}"#),
        ];
        bodies.extend(texts.iter().map(|t| serde_json::from_str::<Value>(t).unwrap()));
    }
    let answers = join_all(bodies.iter().map(|b| app.post(b["resourceType"].as_str().unwrap(), b))).await;
    let mut created = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 201);
        created.push(r.json::<Value>().await.unwrap());
    }
    for (k, c) in created.iter().enumerate() {
        let (i, rt, id) = (k / 4, c["resourceType"].as_str().unwrap(), c["id"].as_str().unwrap());
        let read = app.get_json(&format!("{rt}/{id}"), 200).await;
        assert_eq!(read["meta"]["versionId"], "1");
        let first = app.get_json(&format!("{rt}/{id}/_history/1"), 200).await;
        assert_eq!(first["meta"]["lastUpdated"], read["meta"]["lastUpdated"]);
        let searches: Vec<String> = match rt {
            "Patient" => vec![
                format!("Patient?identifier=http://example.org/sid/mrn|TOG-{i}"),
                format!("Patient?family:exact=Insieme{i}"),
                format!("Patient?birthdate=19{}-03-04", 40 + i),
                format!("Patient?general-practitioner=Practitioner/gp-{i}"),
            ],
            "Invoice" => {
                assert_eq!(read["totalGross"]["value"].to_string(), format!("{}.50", 100 + i));
                vec![format!("Invoice?totalgross={}.5", 100 + i)]
            }
            "Location" => vec![format!("Location?near=44.40|{:.2}|0.2|km", 8.90 + 0.02 * i as f64)],
            _ => vec![format!("ValueSet?url=http://example.org/vs/tog-{i}")],
        };
        for q in searches {
            assert_eq!(match_ids(&app.get_json(&q, 200).await), [id], "{q}");
        }
    }
}
