//! Who may call, what each caller sees and changes, and the audit trail: through the
//! public API, as the callers would.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{match_ids, mint, As, Backend, TestApp};

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn unb64(s: &str) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).expect("base64")).expect("json")
}

/// Status of `GET path` with `Authorization: Bearer token`.
async fn status_with(app: &TestApp, token: &str, path: &str) -> (u16, Option<String>) {
    let r = app.req(Method::GET, path).bearer_auth(token).send().await.expect("GET");
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_string);
    (r.status().as_u16(), challenge)
}

async fn every_route_needs_a_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(
        app.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1", "active": true})).await.status(),
        201
    );
    let anon = app.anonymous();
    let body = json!({"resourceType": "Patient", "active": true}).to_string();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": []}).to_string();
    let routes: Vec<(Method, &str, Option<&String>)> = vec![
        (Method::GET, "Patient", None),
        (Method::POST, "Patient/_search", None),
        (Method::GET, "Patient/p1", None),
        (Method::GET, "Patient/p1/_history", None),
        (Method::GET, "Patient/p1/_history/1", None),
        (Method::GET, "Patient/_history", None),
        (Method::GET, "_history", None),
        (Method::POST, "Patient", Some(&body)),
        (Method::PUT, "Patient/p1", Some(&body)),
        (Method::PUT, "Patient?identifier=x", Some(&body)),
        (Method::DELETE, "Patient/p1", None),
        (Method::DELETE, "Patient?identifier=x", None),
        (Method::POST, "", Some(&bundle)),
    ];
    for (method, path, body) in routes {
        let mut req = anon.request(method.clone(), app.url(path)).header("content-type", "application/fhir+json");
        if let Some(b) = body {
            req = req.body(b.clone());
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), 401, "{method} {path} without a token");
        let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(challenge.starts_with("Bearer"), "{method} {path}: {challenge}");
        let oo: Value = r.json().await.expect("json");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["code"], "login");
    }
    // Still there: none of the refused writes happened.
    assert_eq!(app.get_json("Patient/p1", 200).await["active"], true);
    // Public: the CapabilityStatement, which declares the security, and health.
    let meta = anon.get(app.url("metadata")).send().await.expect("metadata");
    assert_eq!(meta.status(), 200);
    let cs: Value = meta.json().await.expect("json");
    assert_eq!(cs["rest"][0]["security"]["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
    let root = app.base.trim_end_matches("/fhir");
    assert_eq!(anon.get(format!("{root}/health/live")).send().await.expect("live").status(), 200);
}

async fn bad_tokens_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(
        app.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1", "active": true})).await.status(),
        201
    );
    let good = app.token(&As::admin());
    assert_eq!(status_with(&app, &good, "Patient/p1").await.0, 200);

    // The same claims, other parts changed by hand.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = unb64(parts[1]);
    claims["sub"] = json!("someone-else");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), parts[1]);

    // Signed by a key the server does not know.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = mint(&cupola::config::AuthConfig::dev(other_dir.path().join("k.json")), &As::admin());
    // For another audience.
    let mut aud_cfg = app.auth.clone();
    aud_cfg.audience = "someone-else".into();
    let wrong_aud = mint(&aud_cfg, &As::admin());

    // Not valid before an hour from now, signed with the server's own key.
    let key: Value = serde_json::from_slice(&std::fs::read(&app.auth.dev_key_file).expect("dev key")).expect("json");
    let der = base64::engine::general_purpose::STANDARD.decode(key["pkcs8"].as_str().expect("pkcs8")).expect("der");
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = key["kid"].as_str().map(str::to_string);
    let mut future_claims = unb64(parts[1]);
    future_claims["nbf"] = json!(now + 3600);
    future_claims["exp"] = json!(now + 7200);
    let sign = |claims: &Value| {
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&der)).expect("sign")
    };
    let not_yet = sign(&future_claims);
    // Expired an hour ago, beyond any leeway.
    let mut old_claims = unb64(parts[1]);
    old_claims["iat"] = json!(now - 7200);
    old_claims["nbf"] = json!(now - 7200);
    old_claims["exp"] = json!(now - 3600);
    let expired = sign(&old_claims);
    // The control: the same key and claims, valid times.
    assert_eq!(status_with(&app, &sign(&unb64(parts[1])), "Patient/p1").await.0, 200);

    for (what, token) in [
        ("expired", expired),
        ("tampered", tampered),
        ("alg none", none),
        ("unknown key", other),
        ("wrong audience", wrong_aud),
        ("not yet valid", not_yet),
        ("garbage", "not-a-jwt".to_string()),
    ] {
        let (status, challenge) = status_with(&app, &token, "Patient/p1").await;
        assert_eq!(status, 401, "{what}");
        let challenge = challenge.unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
    }
}

async fn scopes_decide_the_interactions(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(
        app.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1", "active": true})).await.status(),
        201
    );
    let read_only = As::admin().scope("system/Patient.r");
    let r = app.req_as(&read_only, Method::GET, "Patient/p1").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for (method, path) in [(Method::GET, "Patient"), (Method::GET, "Appointment/a1"), (Method::DELETE, "Patient/p1")] {
        let r = app.req_as(&read_only, method.clone(), path).send().await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let oo: Value = r.json().await.unwrap();
        assert_eq!(oo["issue"][0]["code"], "forbidden");
    }
    let r = app
        .req_as(&read_only, Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A transaction entry needs the scope of what it does.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "DELETE", "url": "Patient/p1"}},
    ]});
    let r = app
        .req_as(&As::admin().scope("system/Patient.rs"), Method::POST, "")
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get_json("Patient/p1", 200).await["id"], "p1");
    // SMART v1 scopes are understood too.
    let v1 = As::admin().scope("user/Patient.read");
    assert_eq!(app.req_as(&v1, Method::GET, "Patient?active=true").send().await.unwrap().status(), 200);
}

/// Two providers under one region, A below a health authority, and their agendas.
async fn region(app: &TestApp) {
    let put = |r: Value| async move {
        let path = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let resp = app.put(&path, &r).await;
        assert!(resp.status().is_success(), "PUT {path}: {}", resp.status());
    };
    put(json!({"resourceType": "Organization", "id": "authority", "name": "ASL"})).await;
    put(json!({"resourceType": "Organization", "id": "prov-a", "name": "A", "partOf": {"reference": "Organization/authority"}}))
        .await;
    put(json!({"resourceType": "Organization", "id": "prov-b", "name": "B"})).await;
    for x in ["a", "b"] {
        put(json!({"resourceType": "HealthcareService", "id": format!("hs-{x}"), "providedBy": {"reference": format!("Organization/prov-{x}")}})).await;
        put(json!({"resourceType": "Schedule", "id": format!("sch-{x}"), "actor": [{"reference": format!("HealthcareService/hs-{x}")}]})).await;
        put(json!({"resourceType": "Slot", "id": format!("slot-{x}"), "schedule": {"reference": format!("Schedule/sch-{x}")}, "status": "busy",
            "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00"}))
        .await;
        put(json!({"resourceType": "Patient", "id": format!("pat-{x}"), "name": [{"family": format!("Family{x}")}]}))
            .await;
        put(json!({"resourceType": "Appointment", "id": format!("appt-{x}"), "status": "booked",
        "slot": [{"reference": format!("Slot/slot-{x}")}],
        "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T09:20:00+01:00",
        "participant": [
            {"actor": {"reference": format!("Patient/pat-{x}")}, "status": "accepted"},
            {"actor": {"reference": format!("HealthcareService/hs-{x}")}, "status": "accepted"}
        ]}))
        .await;
    }
}

async fn get_as(app: &TestApp, who: &As, path: &str) -> (u16, Value) {
    let r = app.req_as(who, Method::GET, path).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// [`get_as`] as a client that honours `503` + `Retry-After` does: hundreds of
/// requests at once on a loaded machine may find every connection busy, which the
/// gateway answers with 503 and a `Retry-After`, never with a 500.
async fn get_as_retrying(app: &TestApp, who: &As, path: &str) -> (u16, Value) {
    for _ in 0..30 {
        let r = app.req_as(who, Method::GET, path).send().await.expect("GET");
        if r.status() != StatusCode::SERVICE_UNAVAILABLE {
            let status = r.status().as_u16();
            return (status, r.json().await.unwrap_or(Value::Null));
        }
        let after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let after = after.unwrap_or_else(|| panic!("a 503 without Retry-After: {:?}", r.headers()));
        tokio::time::sleep(std::time::Duration::from_secs(after)).await;
    }
    panic!("GET {path} still refused as busy after 30 tries")
}

fn ids_of(bundle: &Value, res_type: &str) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["resource"]["resourceType"] == res_type)
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.dedup();
    ids
}

async fn a_provider_reaches_only_its_own(b: Backend) {
    let app = TestApp::spawn(b).await;
    region(&app).await;
    let a = As::provider("prov-a");
    // Its own, by every path.
    assert_eq!(get_as(&app, &a, "Appointment/appt-a").await.0, 200);
    // Provider B's, by every path: as if it did not exist.
    for path in [
        "Appointment/appt-b",
        "Appointment/appt-b/_history/1",
        "Appointment/appt-b/_history",
        "Patient/pat-b",
        "Slot/slot-b",
    ] {
        let (status, oo) = get_as(&app, &a, path).await;
        assert_eq!(status, 404, "{path}: {oo}");
    }
    let (_, found) = get_as(&app, &a, "Appointment?_total=accurate").await;
    assert_eq!(match_ids(&found), vec!["appt-a"]);
    assert_eq!(found["total"], 1);
    let (_, count) = get_as(&app, &a, "Appointment?_summary=count").await;
    assert_eq!(count["total"], 1);
    let (_, count) = get_as(&app, &a, "Appointment?status=booked&_count=1&_total=accurate").await;
    assert_eq!(count["total"], 1, "paging and totals count only what it sees");
    let (_, inc) = get_as(&app, &a, "Appointment?_include=Appointment:patient&_include=Appointment:slot").await;
    assert_eq!(ids_of(&inc, "Patient"), vec!["pat-a"]);
    assert_eq!(ids_of(&inc, "Slot"), vec!["slot-a"]);
    // A directory search is open to all; its revinclude is not.
    let (_, rev) = get_as(&app, &a, "HealthcareService?_revinclude=Schedule:actor").await;
    assert_eq!(ids_of(&rev, "HealthcareService"), vec!["hs-a", "hs-b"]);
    assert_eq!(ids_of(&rev, "Schedule"), vec!["sch-a"]);
    let (_, rev) = get_as(&app, &a, "Slot?_revinclude=Appointment:slot").await;
    assert_eq!(ids_of(&rev, "Appointment"), vec!["appt-a"]);
    let (_, chained) = get_as(&app, &a, "Appointment?patient.family=Familyb").await;
    assert!(match_ids(&chained).is_empty(), "{chained}");
    let (_, patients) = get_as(&app, &a, "Patient?_revinclude=Appointment:patient").await;
    assert_eq!(ids_of(&patients, "Patient"), vec!["pat-a"]);
    let (_, hist) = get_as(&app, &a, "Appointment/_history").await;
    assert_eq!(ids_of(&hist, "Appointment"), vec!["appt-a"]);
    assert_eq!(hist["total"], 1);
    let (_, sys) = get_as(&app, &a, "_history?_count=1000").await;
    assert!(!ids_of(&sys, "Appointment").contains(&"appt-b".to_string()), "system history hides B's");
    assert!(ids_of(&sys, "Appointment").contains(&"appt-a".to_string()));

    // Transactions: a read of B's fails as not found, a write as forbidden, all or nothing.
    let tx = |entries: Value| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let r = app
        .req_as(&a, Method::POST, "")
        .header("content-type", "application/fhir+json")
        .body(tx(json!([{"request": {"method": "GET", "url": "Appointment/appt-b"}}])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mut appt_b = app.get_json("Appointment/appt-b", 200).await;
    appt_b["status"] = json!("cancelled");
    let r = app
        .req_as(&a, Method::POST, "")
        .header("content-type", "application/fhir+json")
        .body(
            tx(json!([{"resource": appt_b.clone(), "request": {"method": "PUT", "url": "Appointment/appt-b"}}]))
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    // Refused: its references name resources A cannot see (400), or the write (403).
    assert!([400, 403].contains(&r.status().as_u16()), "{}", r.status());
    let r = app
        .req_as(&a, Method::PUT, "Appointment/appt-b")
        .header("content-type", "application/fhir+json")
        .body(appt_b.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get_json("Appointment/appt-b", 200).await["status"], "booked");
    let r = app.req_as(&a, Method::DELETE, "Appointment/appt-b").send().await.unwrap();
    assert!(r.status().is_success());
    assert_eq!(app.get_json("Appointment/appt-b", 200).await["status"], "booked", "B's appointment is untouched");
    // A conditional update cannot find B's and would create one A does not own.
    let r = app
        .req_as(&a, Method::POST, "Appointment")
        .header("content-type", "application/fhir+json")
        .body(
            json!({"resourceType": "Appointment", "status": "proposed", "slot": [{"reference": "Slot/slot-b"}],
            "participant": [{"actor": {"reference": "Patient/pat-a"}, "status": "needs-action"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 403, "an appointment on B's slot would not be A's: {}", r.text().await.unwrap());

    // Its own it changes.
    let mut appt_a = app.get_json("Appointment/appt-a", 200).await;
    appt_a["status"] = json!("arrived");
    let r = app
        .req_as(&a, Method::PUT, "Appointment/appt-a")
        .header("content-type", "application/fhir+json")
        .body(appt_a.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A provider does not write the catalog.
    let r = app
        .req_as(&a, Method::POST, "CodeSystem")
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "CodeSystem", "status": "draft", "content": "complete"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn a_health_authority_sees_its_facilities(b: Backend) {
    let app = TestApp::spawn(b).await;
    region(&app).await;
    let h = As::provider("authority");
    let (_, found) = get_as(&app, &h, "Appointment").await;
    assert_eq!(match_ids(&found), vec!["appt-a"]);
    assert_eq!(get_as(&app, &h, "Appointment/appt-a").await.0, 200);
    assert_eq!(get_as(&app, &h, "Appointment/appt-b").await.0, 404);
    assert_eq!(get_as(&app, &h, "Patient/pat-a").await.0, 200);
    // B sees its own and nothing of A's.
    let (_, found) = get_as(&app, &As::provider("prov-b"), "Appointment").await;
    assert_eq!(match_ids(&found), vec!["appt-b"]);
}

async fn each_role_sees_its_part(b: Backend) {
    let app = TestApp::spawn(b).await;
    region(&app).await;
    // A patient app: its own patient and appointments, the agendas, nobody else's.
    let me = As::patient("pat-a");
    assert_eq!(get_as(&app, &me, "Patient/pat-a").await.0, 200);
    assert_eq!(get_as(&app, &me, "Patient/pat-b").await.0, 404);
    let (_, mine) = get_as(&app, &me, "Appointment").await;
    assert_eq!(match_ids(&mine), vec!["appt-a"]);
    let (_, slots) = get_as(&app, &me, "Slot").await;
    assert_eq!(match_ids(&slots).len(), 2);
    // A booking point: agendas and every patient's bookings, not the audit trail.
    let bp = As::booking_point("authority");
    let (_, all) = get_as(&app, &bp, "Appointment").await;
    assert_eq!(match_ids(&all).len(), 2);
    let (_, audit) = get_as(&app, &bp, "AuditEvent").await;
    assert!(match_ids(&audit).is_empty());
    // A payment point: patients, not their appointments.
    let pp = As::payment_point("authority");
    assert_eq!(get_as(&app, &pp, "Patient/pat-b").await.0, 200);
    assert_eq!(get_as(&app, &pp, "Appointment/appt-b").await.0, 404);
}

/// Polls an admin search until it finds something (audit rows are written within
/// a bounded delay, off the request path).
async fn eventually(app: &TestApp, path: &str) -> Value {
    for _ in 0..50 {
        let found = app.get_json(path, 200).await;
        if !match_ids(&found).is_empty() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing found by {path}");
}

async fn accesses_and_denials_leave_audit_events(b: Backend) {
    let app = TestApp::spawn(b).await;
    region(&app).await;
    let a = As::provider("prov-a");
    assert_eq!(get_as(&app, &a, "Appointment/appt-a").await.0, 200);
    assert_eq!(get_as(&app, &a, "Appointment/appt-b").await.0, 404);
    let narrow = As::provider("prov-a").scope("system/Slot.rs");
    assert_eq!(get_as(&app, &narrow, "Patient/pat-a").await.0, 403);
    let anon = app.anonymous().get(app.url("Patient/pat-b")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "GET", "url": "Appointment/appt-b"}}]});
    let r = app
        .req_as(&a, Method::POST, "")
        .header("content-type", "application/fhir+json")
        .body(tx.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let read = eventually(&app, "AuditEvent?entity=Appointment/appt-a&agent=Organization/prov-a&outcome=0").await;
    let ev = &read["entry"][0]["resource"];
    assert_eq!(ev["subtype"][0]["code"], "read");
    assert_eq!(ev["action"], "R");
    assert_eq!(ev["agent"][0]["role"][0]["coding"][0]["code"], "provider");
    assert!(ev["agent"][0]["network"]["address"].is_string(), "{ev}");
    eventually(&app, "AuditEvent?entity=Appointment/appt-b&agent=Organization/prov-a&outcome=4").await;
    eventually(&app, "AuditEvent?entity=Patient/pat-a&outcome=4").await;
    let unauth = eventually(&app, "AuditEvent?entity=Patient/pat-b&outcome=4").await;
    assert!(unauth["entry"][0]["resource"]["outcomeDesc"].as_str().unwrap_or("").starts_with("HTTP 401"));
    eventually(&app, "AuditEvent?subtype=transaction&agent=Organization/prov-a&outcome=4").await;
    // A search records what it returned.
    let (_, _) = get_as(&app, &a, "Patient").await;
    let search = eventually(&app, "AuditEvent?subtype=search-type&entity=Patient/pat-a").await;
    assert_eq!(search["entry"][0]["resource"]["agent"][0]["who"]["reference"], "Organization/prov-a");
    // `patient` is the entities and agents that are Patients.
    eventually(&app, "AuditEvent?patient=Patient/pat-a&subtype=search-type").await;
    assert!(match_ids(&app.get_json("AuditEvent?patient=prov-a", 200).await).is_empty());

    // Many at once: every one recorded, none twice.
    let reads = (0..60).map(|_| get_as_retrying(&app, &a, "Patient/pat-a"));
    let refused: Vec<(u16, Value)> =
        futures::future::join_all(reads).await.into_iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "{refused:?}");
    // Like reads close together share an AuditEvent: one entity per request, each
    // with its own time and request line.
    let mut recorded = 0;
    for _ in 0..50 {
        let found = app.get_json("AuditEvent?entity=Patient/pat-a&subtype=read&outcome=0&_count=1000", 200).await;
        let entities: Vec<Value> = found["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["resource"]["entity"].as_array().cloned().unwrap_or_default())
            .filter(|en| en["what"]["reference"] == "Patient/pat-a")
            .collect();
        assert!(entities.iter().all(|en| en["detail"][0]["valueString"].as_str().is_some_and(|t| t.starts_with("20"))));
        recorded = entities.len();
        if recorded >= 60 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, 60, "every read recorded once");

    // Searches at once, each with an AuditEvent of its own, more of them than one
    // batch of the audit writer takes: every one recorded, none twice.
    let searched = "AuditEvent?subtype=search-type&entity=Patient/pat-a&outcome=0&_summary=count";
    let before = app.get_json(searched, 200).await["total"].as_u64().unwrap_or_default();
    let searches = (0..250).map(|_| get_as_retrying(&app, &a, "Patient?_id=pat-a"));
    let refused: Vec<(u16, Value)> =
        futures::future::join_all(searches).await.into_iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "{refused:?}");
    let mut total = before;
    for _ in 0..50 {
        total = app.get_json(searched, 200).await["total"].as_u64().unwrap_or_default();
        if total >= before + 250 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(total, before + 250, "every search recorded once");

    // Nobody changes the trail, not even an administrator.
    let id = read["entry"][0]["resource"]["id"].as_str().unwrap().to_string();
    let mut changed = read["entry"][0]["resource"].clone();
    changed["outcome"] = json!("0");
    assert_eq!(app.put(&format!("AuditEvent/{id}"), &changed).await.status(), 403);
    assert_eq!(app.delete(&format!("AuditEvent/{id}")).await.status(), 403);
    let mut new = changed.clone();
    new.as_object_mut().unwrap().remove("id");
    assert_eq!(app.post("AuditEvent", &new).await.status(), 403);
    // Nor does anyone but an administrator read it.
    assert_eq!(get_as(&app, &a, &format!("AuditEvent/{id}")).await.0, 404);
}

async fn a_caller_over_its_rate_gets_429(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.limits.rate_limit = 1;
        c.limits.rate_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..8 {
        let r = app.get("metadata").await;
        assert_eq!(r.status(), 200, "the public CapabilityStatement is not limited");
        let r = app.get("Patient").await;
        if r.status() == 429 {
            retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    // Another caller has its own allowance.
    let r = app.req_as(&As::booking_point("x"), Method::GET, "Patient").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn cors_is_closed_unless_configured(b: Backend) {
    let closed = TestApp::spawn(b).await;
    let preflight = |app: &TestApp| {
        app.anonymous()
            .request(Method::OPTIONS, app.url("Patient"))
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "GET")
            .send()
    };
    let r = preflight(&closed).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let open = TestApp::spawn_with(b, |c| c.limits.cors_origins = vec!["https://app.example.org".into()]).await;
    let r = preflight(&open).await.unwrap();
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "https://app.example.org");
    let r = open.req(Method::GET, "Patient").header("origin", "https://evil.example.org").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

crate::on_both!(
    every_route_needs_a_token,
    bad_tokens_are_refused,
    scopes_decide_the_interactions,
    a_provider_reaches_only_its_own,
    a_health_authority_sees_its_facilities,
    each_role_sees_its_part,
    accesses_and_denials_leave_audit_events,
    a_caller_over_its_rate_gets_429,
    cors_is_closed_unless_configured,
    a_request_over_the_time_limit_gets_503,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.limits.tls_cert = Some(cert_path.clone());
        c.limits.tls_key = Some(key_path.clone());
    })
    .await;
    let port = app.base.rsplit(':').next().and_then(|p| p.split('/').next()).expect("port").to_string();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("root"))
        .build()
        .expect("client");
    let r = client
        .get(format!("https://localhost:{port}/fhir/Patient"))
        .bearer_auth(app.token(&As::admin()))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(r.status(), 200);
    // Plain HTTP on the same port gets no FHIR answer.
    assert!(app.anonymous().get(format!("http://localhost:{port}/fhir/metadata")).send().await.is_err());
}

async fn a_request_over_the_time_limit_gets_503(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.limits.request_timeout_ms = 300).await;
    let entries: Vec<Value> = (0..3000)
        .map(|n| json!({"resource": {"resourceType": "Patient", "active": true, "name": [{"family": format!("F{n}")}]}, "request": {"method": "POST", "url": "Patient"}}))
        .collect();
    let r = app.post("", &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})).await;
    assert_eq!(r.status(), 503);
    let oo: Value = r.json().await.unwrap();
    assert_eq!(oo["issue"][0]["code"], "timeout");
    // A stopped request is still in the audit trail (a search slowed past the limit
    // by a busy machine is tried again).
    let mut found = false;
    for _ in 0..50 {
        let r = app.get("AuditEvent?subtype=transaction&outcome=8").await;
        if r.status() == 200 && !match_ids(&r.json().await.unwrap()).is_empty() {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "no AuditEvent for the stopped transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_command_mints_what_serve_accepts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.put("Organization/x", &json!({"resourceType": "Organization", "id": "x", "name": "X"})).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cupola"))
        .args(["token", "--role", "provider", "--org", "Organization/x", "--scope", "system/Organization.rs"])
        .arg("--dev-key-file")
        .arg(&app.auth.dev_key_file)
        .output()
        .expect("cupola token runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf-8").trim().to_string();
    assert_eq!(token.split('.').count(), 3, "only the token on stdout: {token}");
    let (status, _) = status_with(&app, &token, "Organization/x").await;
    assert_eq!(status, 200);
    let (status, _) = status_with(&app, &token, "Patient").await;
    assert_eq!(status, 403, "the scope given is the scope granted");
    // A role that needs an organisation gets none without it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cupola"))
        .args(["token", "--role", "provider"])
        .arg("--dev-key-file")
        .arg(&app.auth.dev_key_file)
        .output()
        .expect("cupola token runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("org"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_demo_prints_a_token_for_each_role() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cupola"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("demo.db").display()))
        .arg("--dev-key-file")
        .arg(dir.path().join("key.json"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("serve --demo");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut tokens = std::collections::HashMap::new();
    while tokens.len() < 5 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(240), lines.next_line())
            .await
            .expect("tokens printed in time")
            .expect("read")
            .expect("a line");
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [role, token] = words.as_slice() {
            tokens.insert(role.to_string(), token.to_string());
        }
    }
    let base = format!("http://127.0.0.1:{port}/fhir");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/metadata")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let get = |token: String, path: &str| {
        client.get(format!("{base}/{path}")).bearer_auth(token).header("accept", "application/fhir+json").send()
    };
    let r = get(tokens["patient-app"].clone(), "Appointment").await.expect("GET");
    let mine: Value = r.json().await.expect("json");
    assert_eq!(match_ids(&mine), vec!["appt-1"]);
    // The demo's booking went through the booking rules: its slot is taken.
    let slot = mine["entry"][0]["resource"]["slot"][0]["reference"].as_str().expect("a slot").to_string();
    let r = get(tokens["admin"].clone(), &slot).await.expect("GET");
    let slot: Value = r.json().await.expect("json");
    assert_eq!(slot["status"], "busy", "{slot}");
    // The repository's mappings/ are loaded beside the demo: every provider has its map.
    let r = get(tokens["admin"].clone(), "ConceptMap/provider-galliera/$translate?code=89.52").await.expect("GET");
    let p: Value = r.json().await.expect("json");
    assert_eq!(p["parameter"][0]["valueBoolean"], true, "{p}");
    for role in ["admin", "booking-point", "provider", "payment-point", "patient-app"] {
        let r = get(tokens[role].clone(), "Patient/mario-rossi").await.expect("GET");
        assert_eq!(r.status(), 200, "{role}");
    }
}

/// PostgreSQL goes away for a few seconds (it refuses connections and cuts the
/// gateway's): requests in the meantime get 503 with `Retry-After`, not 500; once
/// it is back, reads are served again and the AuditEvents of the requests made
/// during the outage are in the trail, none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_records_wait_out_a_database_outage() {
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let name = app.db_url().rsplit('/').next().expect("a database name").to_string();
    let r = app.put("Patient/out-1", &json!({"resourceType": "Patient", "id": "out-1", "active": true})).await;
    assert_eq!(r.status().as_u16(), 201);
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::pg_admin_url()).await.expect("admin connection");
    let allow = |yes: bool| format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {yes}");
    sqlx::query(&allow(false)).execute(&mut admin).await.expect("refuse connections");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&name)
    .execute(&mut admin)
    .await
    .expect("cut the gateway's connections");
    let mut during = Vec::new();
    for _ in 0..3 {
        let r = app.get("Patient/out-1").await;
        during.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
    }
    let ready = format!("{}/health/ready", app.base.trim_end_matches("/fhir"));
    let not_ready = reqwest::get(&ready).await.expect("GET /health/ready").status().as_u16();
    // Longer than the audit writer's five attempts at a batch used to last (1.5 s).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    sqlx::query(&allow(true)).execute(&mut admin).await.expect("accept connections again");
    assert!(during.iter().all(|(s, after)| *s == 503 && *after), "during the outage: {during:?}");
    assert_eq!(not_ready, 503, "not ready while the database is away");

    let mut back = 0;
    for _ in 0..50 {
        back = app.get("Patient/out-1").await.status().as_u16();
        if back == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(back, 200, "served again once the database is back");
    assert_eq!(reqwest::get(&ready).await.expect("GET /health/ready").status().as_u16(), 200);
    let mut refused = 0;
    for _ in 0..50 {
        let found = app.get_json("AuditEvent?subtype=read&_count=1000", 200).await;
        refused = found["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["resource"]["outcomeDesc"].as_str().is_some_and(|d| d.starts_with("HTTP 503")))
            .flat_map(|e| e["resource"]["entity"].as_array().cloned().unwrap_or_default())
            .filter(|en| {
                en["detail"].as_array().into_iter().flatten().any(|d| {
                    d["type"] == "request" && d["valueString"].as_str().is_some_and(|v| v.ends_with("/Patient/out-1"))
                })
            })
            .count();
        if refused >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(refused, 3, "each request of the outage is in the trail once");
}
