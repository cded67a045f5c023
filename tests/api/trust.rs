//! What the store accepts: only valid R4 JSON shapes and safe narrative; an
//! oversize body always gets its 413; a stored version that does not parse is a
//! 500 on every read, never served as if it were fine.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{expression, Backend, TestApp};

/// Each wrong shape gets a 400 naming the element, and nothing is stored.
async fn wrong_json_shapes_are_refused_naming_the_element(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.stored_versions().await;
    let reference = json!({"reference": "Organization/o1"});
    let cases = [
        (json!({"resourceType": "Patient", "managingOrganization": [reference]}), "Patient.managingOrganization"),
        (
            json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order", "subject": [{"reference": "Patient/p"}]}),
            "ServiceRequest.subject",
        ),
        (json!({"resourceType": "Location", "physicalType": [{"text": "room"}]}), "Location.physicalType"),
        (
            json!({"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": "Patient/p"}, "payor": [{"reference": "Patient/p"}], "period": [{"start": "2026-01-01"}]}),
            "Coverage.period",
        ),
        (
            json!({"resourceType": "Patient", "text": [{"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}]}),
            "Patient.text",
        ),
        (json!({"resourceType": "Patient", "meta": [{"tag": [{"code": "x"}]}]}), "Patient.meta"),
        (json!({"resourceType": "Patient", "name": {"family": "Rossi"}}), "Patient.name"),
        (json!({"resourceType": "Patient", "name": [{"family": ["Rossi"]}]}), "Patient.name[0].family"),
        (
            json!({"resourceType": "Patient", "birthDate": "1980-01-01", "_birthDate": [{"id": "x"}]}),
            "Patient.birthDate",
        ),
        (json!({"resourceType": "Patient", "contact": [{"name": [{"family": "Rossi"}]}]}), "Patient.contact[0].name"),
        (json!({"resourceType": "Patient", "managingOrganization": "Organization/o1"}), "Patient.managingOrganization"),
        (
            json!({"resourceType": "Patient", "contained": [{"resourceType": "Organization", "name": ["x"]}]}),
            "Patient.contained[0].name",
        ),
        (
            json!({"resourceType": "Patient", "contained": [{"resourceType": "Practitioner", "id": "d", "address": {"city": "Genova"}}]}),
            "Patient.contained[0].address",
        ),
    ];
    for (resource, at) in cases {
        let r = app.post(resource["resourceType"].as_str().unwrap_or_default(), &resource).await;
        let status = r.status().as_u16();
        let oo: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{resource}: {oo}");
        let named = oo["issue"].as_array().into_iter().flatten().any(|i| i["expression"][0] == at);
        assert!(named, "{resource}: no issue at {at}: {oo}");
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "managingOrganization": [reference]}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let r = app.post("", &bundle).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("managingOrganization"));
    assert_eq!(app.stored_versions().await, before, "nothing invalid is stored");
}

/// R4's narrative rules: no scripts, handlers, `javascript:` links or frames.
async fn unsafe_narrative_is_refused_at_the_div(b: Backend) {
    let app = TestApp::spawn(b).await;
    let ns = "xmlns=\"http://www.w3.org/1999/xhtml\"";
    let with = |div: String| json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
    for div in [
        format!("<div {ns}><script>alert(1)</script></div>"),
        format!("<div {ns}><p onclick=\"alert(1)\">Rossi</p></div>"),
        format!("<div {ns}><a href=\"javascript:alert(1)\">Rossi</a></div>"),
        format!("<div {ns}><iframe src=\"https://example.org\"/></div>"),
    ] {
        let r = app.post("Patient", &with(div.clone())).await;
        assert_eq!(r.status(), 400, "{div}");
        assert_eq!(expression(&r.json().await.unwrap_or(Value::Null)), "Patient.text.div", "{div}");
    }
    let safe = format!("<div {ns}><p>Mario <b>Rossi</b>, <a href=\"https://example.org\">scheda</a></p></div>");
    let created = app.create(&with(safe.clone())).await;
    let read = app.get_json(&format!("Patient/{}", created["id"].as_str().unwrap_or_default()), 200).await;
    assert_eq!(read["text"]["div"], safe.as_str());
}

/// A client that sends its whole oversize body reads a 413, with the
/// connection closed; so does one that sends it in chunks with no length,
/// and one with no token (the size is checked before the token).
async fn oversize_bodies_always_get_their_413(b: Backend) {
    let limit = 64 * 1024;
    let app = TestApp::spawn_with(b, |c| c.max_body_bytes = limit).await;
    let before = app.stored_versions().await;
    let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(limit + limit / 2)}]}).to_string();
    for round in 0..5 {
        let r = app.req(Method::POST, "Patient").header("content-type", "application/fhir+json").body(big.clone());
        let r = r.send().await.unwrap_or_else(|e| panic!("round {round}: no answer but {e}"));
        assert_eq!(r.status(), 413, "round {round}");
        assert_eq!(r.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
        let oo: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(oo["issue"][0]["code"], "too-costly");
    }
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let r = app.req(Method::POST, "Patient").header("content-type", "application/fhir+json").body(body);
    assert_eq!(r.send().await.expect("an answer to a chunked oversize body").status(), 413);
    let anonymous = app.anonymous().post(app.url("Patient")).header("content-type", "application/fhir+json");
    assert_eq!(anonymous.body(big).send().await.expect("an answer").status(), 413);
    assert_eq!(app.stored_versions().await, before);
}

/// A version whose stored text was damaged (outside the gateway) answers 500 on
/// every read of it, and searches that would show it do too; the others stay fine.
async fn a_damaged_stored_version_is_never_read_as_if_fine(b: Backend) {
    let app = TestApp::spawn(b).await;
    let damaged = app.create(&json!({"resourceType": "Patient", "name": [{"family": "Rossi"}]})).await;
    let fine = app.create(&json!({"resourceType": "Organization", "name": "ASL 3"})).await;
    let id = damaged["id"].as_str().unwrap_or_default().to_string();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(app.db_url()).await.expect("database");
    let sql = "UPDATE resource_versions SET body = '{\"resourceType\":\"Patient\",\"id\":' \
               WHERE res_pk = (SELECT pk FROM resources WHERE res_type = 'Patient' AND res_id = $1)";
    sqlx::query(sql).bind(&id).execute(&mut conn).await.expect("damage the stored text");
    for path in [format!("Patient/{id}"), format!("Patient/{id}/_history/1"), "Patient?family=Rossi".into()] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), 500, "{path}");
        let oo: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(oo["issue"][0]["code"], "exception", "{path}: {oo}");
    }
    app.get_json(&format!("Organization/{}", fine["id"].as_str().unwrap_or_default()), 200).await;
}

/// A body nested deeper than any resource needs is refused before it is walked: a
/// hundred levels of extensions once overflowed a worker's stack and killed the
/// gateway. Fifteen levels of extensions (thirty of JSON) are stored.
async fn deep_nesting_is_refused_and_the_gateway_lives_on(b: Backend) {
    let app = TestApp::spawn(b).await;
    let nested = |levels: usize| {
        let mut ext = json!({"url": "http://example.org/leaf", "valueString": "x"});
        for i in 0..levels {
            ext = json!({"url": format!("http://example.org/level{i}"), "extension": [ext]});
        }
        json!({"resourceType": "Patient", "extension": [ext]})
    };
    let r = app.post("Patient", &nested(100)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap_or_default().contains("levels deep"));
    app.create(&nested(15)).await;
    let control = json!({"resourceType": "Patient", "name": [{"family": "Ros\u{0}si"}]});
    assert_eq!(app.post("Patient", &control).await.status(), 400, "a NUL is no FHIR string");
}

crate::on_both!(
    deep_nesting_is_refused_and_the_gateway_lives_on,
    wrong_json_shapes_are_refused_naming_the_element,
    unsafe_narrative_is_refused_at_the_div,
    oversize_bodies_always_get_their_413,
    a_damaged_stored_version_is_never_read_as_if_fine,
);
