//! The operators' console (`/console`): its page and assets, served without a
//! token, from this origin only; the demo sign-in, there only on a demo gateway
//! with the development key; and the FHIR calls its desks make, sent as the
//! console sends them, with the tokens its sign-in mints.
//!
//! The console's routes touch no database: these tests run on SQLite only.

use reqwest::header;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};

/// Every asset the console serves, with its content type.
const ASSETS: &[(&str, &str)] = &[
    ("index.html", "text/html"),
    ("console.css", "text/css"),
    ("print.css", "text/css"),
    ("app.js", "text/javascript"),
    ("api.js", "text/javascript"),
    ("i18n.js", "text/javascript"),
    ("i18n-en.js", "text/javascript"),
    ("dom.js", "text/javascript"),
    ("format.js", "text/javascript"),
    ("directory.js", "text/javascript"),
    ("signin.js", "text/javascript"),
    ("oauth.js", "text/javascript"),
    ("booking.js", "text/javascript"),
    ("proposals.js", "text/javascript"),
    ("booked.js", "text/javascript"),
    ("appointments.js", "text/javascript"),
    ("payment.js", "text/javascript"),
    ("receipt.js", "text/javascript"),
    ("i18n-integration.js", "text/javascript"),
    ("i18n-booking.js", "text/javascript"),
    ("waitlist.js", "text/javascript"),
    ("integration.js", "text/javascript"),
    ("deadletter.js", "text/javascript"),
    ("agenda.js", "text/javascript"),
    ("agenda-template.js", "text/javascript"),
    ("agenda-close.js", "text/javascript"),
    ("i18n-agenda.js", "text/javascript"),
    ("figures.js", "text/javascript"),
    ("charts.js", "text/javascript"),
    ("i18n-figures.js", "text/javascript"),
];

/// The gateway's root (the FHIR base without `/fhir`).
fn root(app: &TestApp) -> String {
    app.base.trim_end_matches("/fhir").to_string()
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.anonymous().get(format!("{}{path}", root(app))).send().await.expect("GET")
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// The modules a JavaScript file imports (`from './x.js'`).
fn imports(js: &str) -> Vec<String> {
    js.split("from './").skip(1).filter_map(|rest| rest.split('\'').next()).map(str::to_string).collect()
}

/// What a file asks the browser to load or call: `fetch(` and `consoleJson(`
/// arguments, `src` and `href` attributes, CSS `url(`s, given as literals.
fn requested(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (mark, skip) in [("fetch(", 0), ("consoleJson('", 1), ("src=\"", 0), ("href=\"", 0), ("url(", 0)] {
        for rest in text.split(mark).skip(1) {
            let rest = if skip == 1 { rest.split_once(", ").map(|(_, r)| r).unwrap_or_default() } else { rest };
            let quoted = rest.trim_start_matches(['\'', '"', '`']);
            let end = quoted.find(['\'', '"', '`', ')', ',']).unwrap_or(quoted.len());
            out.push(quoted[..end].to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_and_its_assets_are_served_without_a_token_from_this_origin_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in ["/console", "/console/"] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert!(content_type(&r).starts_with("text/html"), "{path}");
        let policy = r.headers().get(header::CONTENT_SECURITY_POLICY).expect("a policy").to_str().unwrap().to_string();
        assert!(policy.contains("default-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
        assert!(r.text().await.unwrap().contains(r#"<script type="module" src="/console/assets/app.js">"#));
    }
    let mut served = Vec::new();
    for (name, kind) in ASSETS {
        let r = get(&app, &format!("/console/assets/{name}")).await;
        assert_eq!(r.status(), 200, "{name}");
        assert!(content_type(&r).starts_with(kind), "{name}: {}", content_type(&r));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache", "{name}");
        let tag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        let text = r.text().await.unwrap();
        // Nothing from elsewhere: no URL of another origin, every path this gateway's.
        assert!(!text.contains("http://") && !text.contains("https://"), "{name} names another origin");
        for path in requested(&text) {
            // `tokenUrl`: the issuer's token endpoint, as the gateway's settings name it
            // (and its policy allows).
            let here =
                ["/console", "/fhir", "#", "data:", "url", "path", "tokenUrl"].iter().any(|p| path.starts_with(p));
            assert!(here, "{name} asks for {path}");
        }
        let again = app
            .anonymous()
            .get(format!("{}/console/assets/{name}", root(&app)))
            .header(header::IF_NONE_MATCH, &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}: the same ETag is not sent again");
        served.push((name.to_string(), text));
    }
    // The module graph is whole: whatever a module imports is served.
    for (name, text) in &served {
        for module in imports(text) {
            assert!(ASSETS.iter().any(|(n, _)| *n == module), "{name} imports {module}, which is not served");
        }
    }
    let missing = get(&app, "/console/assets/nothing.js").await;
    assert_eq!(missing.status(), 404);
    assert!(content_type(&missing).starts_with("text/plain"), "a plain 404, not an OperationOutcome");
    let settings: Value = get(&app, "/console/settings.json").await.json().await.unwrap();
    assert_eq!((settings["fhirBase"].as_str(), settings["demo"].as_bool()), (Some("/fhir"), Some(false)));
    assert_eq!(settings["nre"]["system"], "urn:oid:2.16.840.1.113883.2.9.4.3.9");
    // The figures' deadline marks: the classes of the CodeSystem, most urgent first,
    // with the deadlines of the rules' latest entry (in force today).
    let classes = app.get_json("CodeSystem?url=http://example.org/cupola/CodeSystem/priority-class", 200).await;
    let codes: Vec<&str> = classes["entry"][0]["resource"]["concept"]
        .as_array()
        .expect("the classes")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    let offered: Vec<&str> =
        settings["priorityClasses"].as_array().expect("classes").iter().filter_map(|c| c["code"].as_str()).collect();
    assert_eq!(offered, codes);
    let rules: Value = serde_json::from_str(include_str!("../../mappings/booking/rules.json")).unwrap();
    let latest = rules["priorityClasses"].as_array().unwrap().iter().max_by_key(|e| e["effective"].as_str()).unwrap();
    for class in settings["priorityClasses"].as_array().unwrap() {
        let code = class["code"].as_str().unwrap();
        for unit in ["hours", "days", "visitDays", "examDays"] {
            assert_eq!(class[unit], latest["deadlines"][code][unit], "{code} {unit}");
        }
    }
}

/// `GET /console/demo-roles` and `POST /console/demo-token` answer 404, as FHIR errors.
async fn demo_sign_in_absent(root: &str) {
    let client = reqwest::Client::new();
    let r = client.get(format!("{root}/console/demo-roles")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let post = client.post(format!("{root}/console/demo-token")).json(&json!({"role": "admin"})).send().await.unwrap();
    assert_eq!(post.status(), 404);
    assert_eq!(post.json::<Value>().await.unwrap()["resourceType"], "OperationOutcome");
}

/// A demo gateway whose tokens come from an external issuer (RFC 7517's example
/// P-256 key): cupola cannot sign for it. Started here, as `TestApp` mints an
/// admin token with the development key, which an issuer's gateway cannot do.
async fn demo_with_an_issuer() -> (String, crate::helpers::TestDb, tempfile::TempDir, tokio::sync::oneshot::Sender<()>)
{
    let db = crate::helpers::TestDb::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let key = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": "idp-1",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]});
    std::fs::write(&jwks, key.to_string()).unwrap();
    let mut config = cupola::Config::for_database(&db.url);
    config.demo = true;
    config.auth.issuer = Some("https://idp.example".into());
    config.auth.jwks = Some(jwks.display().to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = cupola::api::build_state(config, addr).await.expect("gateway starts");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = cupola::api::run(listener, state, async move {
            let _ = rx.await;
        })
        .await;
    });
    (format!("http://{addr}"), db, dir, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_sign_in_exists_only_with_demo_and_the_development_key() {
    let plain = TestApp::spawn(Backend::Sqlite).await;
    demo_sign_in_absent(&root(&plain)).await;
    drop(plain);
    let (root, _db, _dir, _stop) = demo_with_an_issuer().await;
    demo_sign_in_absent(&root).await;
    let settings: Value = reqwest::get(format!("{root}/console/settings.json")).await.unwrap().json().await.unwrap();
    assert_eq!(settings["demo"], false);
    // The page itself is served all the same.
    assert_eq!(reqwest::get(format!("{root}/console")).await.unwrap().status(), 200);
}

async fn mint(app: &TestApp, body: &Value) -> (u16, Value) {
    let r = app.anonymous().post(format!("{}/console/demo-token", root(app))).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A GET of the FHIR API with `token`; the status and the body.
async fn fhir(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r =
        app.anonymous().get(app.url(path)).bearer_auth(token).header("accept", "application/fhir+json").send().await;
    let r = r.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_demo_gateway_each_operators_role_signs_in_and_its_desks_calls_work() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.demo = true).await;
    let settings: Value = get(&app, "/console/settings.json").await.json().await.unwrap();
    assert_eq!(settings["demo"], true);
    let roles: Value = get(&app, "/console/demo-roles").await.json().await.unwrap();
    let roles = roles["roles"].as_array().expect("roles").clone();
    let names: Vec<&str> = roles.iter().filter_map(|r| r["role"].as_str()).collect();
    assert_eq!(names, ["booking-point", "payment-point", "provider", "admin"]);
    let mut tokens = std::collections::HashMap::new();
    for role in &roles {
        let org = role["organizations"][0]["reference"].as_str().expect("an organisation").to_string();
        assert!(role["organizations"][0]["name"].as_str().is_some_and(|n| !n.is_empty()));
        let (status, minted) = mint(&app, &json!({"role": role["role"], "org": org})).await;
        assert_eq!(status, 200, "{minted}");
        let token = minted["token"].as_str().expect("a token").to_string();
        // The token works against the API: the operator's own organisation.
        let (status, read) = fhir(&app, &token, &org).await;
        assert_eq!((status, read["id"].as_str()), (200, org.strip_prefix("Organization/")), "{role}");
        tokens.insert(role["role"].as_str().unwrap().to_string(), token);
    }
    // Without a token, the API still asks for one: the console changes no rule.
    assert_eq!(app.anonymous().get(app.url("Patient")).send().await.unwrap().status(), 401);
    for (body, element) in [
        (json!({"role": "nurse", "org": "bp-counter-001"}), "role"),
        (json!({"role": "booking-point", "org": "Organization/bp-counter-999"}), "org"),
        (json!({"role": "provider", "org": "bp-counter-001"}), "org"),
        (json!({"role": "booking-point", "org": "bp-counter-001", "channel": "fax"}), "channel"),
    ] {
        let (status, outcome) = mint(&app, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(crate::helpers::expression(&outcome), element, "{body}: {outcome}");
    }
    let (status, outcome) = mint(&app, &json!("booking-point")).await;
    assert_eq!((status, outcome["resourceType"].as_str()), (400, Some("OperationOutcome")));
    crate::console_desks::booking_and_payment(&app, &settings, &tokens).await;
    crate::console_agenda::agenda(&app, &tokens).await;
    crate::console_agenda::figures(&app, &tokens).await;
}
