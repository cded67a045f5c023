//! `mappings/`: provider ConceptMaps loaded at start-up, served, and `$translate`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{As, Backend, TestApp};

const CATALOG: &str = "http://example.org/cupola/CodeSystem/catalog";

fn galliera_map() -> Value {
    json!({
        "resourceType": "ConceptMap",
        "id": "provider-galliera",
        "url": "{canonical-base}/ConceptMap/provider-galliera",
        "status": "active",
        "group": [{
            "source": "{canonical-base}/CodeSystem/catalog",
            "target": "http://galliera.example.it/codici",
            "element": [
                {"code": "89.52", "target": [{"code": "CARD-ECG", "display": "Elettrocardiogramma", "equivalence": "equivalent"}]},
                {"code": "89.7A.3", "target": [{"code": "CARD-V1", "equivalence": "equivalent"}]}
            ]
        }]
    })
}

fn mappings_dir(map: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("providers")).expect("mkdir");
    std::fs::write(dir.path().join("providers/galliera.json"), serde_json::to_string_pretty(map).expect("json"))
        .expect("write");
    dir
}

fn result_of(p: &Value) -> (bool, Vec<String>) {
    let params = p["parameter"].as_array().cloned().unwrap_or_default();
    let result =
        params.iter().find(|x| x["name"] == "result").and_then(|x| x["valueBoolean"].as_bool()).unwrap_or(false);
    let codes = params
        .iter()
        .filter(|x| x["name"] == "match")
        .flat_map(|m| m["part"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["name"] == "concept")
        .filter_map(|part| part["valueCoding"]["code"].as_str().map(str::to_string))
        .collect();
    (result, codes)
}

async fn provider_maps_are_served_and_translate(b: Backend) {
    let dir = mappings_dir(&galliera_map());
    let path = dir.path().to_path_buf();
    let app = TestApp::spawn_with(b, move |c| c.mappings_dir = path).await;
    let map = app.get_json("ConceptMap/provider-galliera", 200).await;
    assert_eq!(map["group"][0]["source"], CATALOG, "{{canonical-base}} is the configured base");
    assert_eq!(map["meta"]["versionId"], "1");

    let found = app.get_json(&format!("ConceptMap/$translate?system={CATALOG}&code=89.52"), 200).await;
    assert_eq!(result_of(&found), (true, vec!["CARD-ECG".to_string()]));
    let inst = app.get_json("ConceptMap/provider-galliera/$translate?code=89.7A.3", 200).await;
    assert_eq!(result_of(&inst), (true, vec!["CARD-V1".to_string()]));
    // Unmapped: reported, never passed on.
    let none = app.get_json(&format!("ConceptMap/$translate?system={CATALOG}&code=89.50"), 200).await;
    assert_eq!(result_of(&none), (false, vec![]));
    assert!(none["parameter"][1]["valueString"].as_str().unwrap_or("").contains("unmapped"));
    // POST with Parameters.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": CATALOG, "code": "89.52"}},
        {"name": "targetsystem", "valueUri": "http://galliera.example.it/codici"}
    ]});
    let r = app.post("ConceptMap/$translate", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(result_of(&r.json().await.unwrap()), (true, vec!["CARD-ECG".to_string()]));
    // Bad requests name the parameter.
    let r = app.get("ConceptMap/$translate?system=x").await;
    assert_eq!(r.status(), 400);
    assert_eq!(crate::helpers::expression(&r.json().await.unwrap()), "code");
    let r = app.get("ConceptMap/$translate?code=1&colour=red").await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.get("ConceptMap/nope/$translate?code=1").await.status(), 404);
    // It needs the scope to read ConceptMaps.
    let narrow = As::admin().scope("system/Patient.rs");
    let r = app.req_as(&narrow, Method::GET, "ConceptMap/$translate?code=89.52").send().await.unwrap();
    assert_eq!(r.status(), 403);
}

async fn a_bad_map_stops_the_start_with_file_and_line(b: Backend) {
    let mut map = galliera_map();
    map["group"][0]["element"]
        .as_array_mut()
        .unwrap()
        .push(json!({"code": "89.52", "target": [{"code": "X", "equivalence": "equivalent"}]}));
    let dir = mappings_dir(&map);
    let db = crate::helpers::TestDb::new(b).await;
    let mut config = cupola::Config::for_database(&db.url);
    let keys = tempfile::tempdir().unwrap();
    config.auth = cupola::config::AuthConfig::dev(keys.path().join("k.json"));
    config.mappings_dir = dir.path().to_path_buf();
    let addr = "127.0.0.1:0".parse().unwrap();
    let err = cupola::api::build_state(config, addr).await.err().expect("refused").to_string();
    assert!(err.contains("galliera.json:"), "{err}");
    assert!(err.contains("mapped twice"), "{err}");
}

crate::on_both!(provider_maps_are_served_and_translate, a_bad_map_stops_the_start_with_file_and_line);
