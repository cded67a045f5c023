//! Values of megabytes in searched elements: stored as sent, and searched exactly
//! (the index holds their first characters only), before and after the migration
//! that cut the values an older gateway stored whole.

use serde_json::{json, Value};

use crate::helpers::{match_ids, Backend, TestApp};

const MIB: usize = 1024 * 1024;
const MRN: &str = "http://example.org/sid/mrn";

/// A value of about `len / 2` characters whose first 200 (where the index cuts it)
/// mix case and accents, with `marker` half a megabyte in.
fn long_value(len: usize, marker: &str) -> String {
    let head = format!("{}ÉÀ", "Rè".repeat(99));
    let fill = len.saturating_sub(head.len()) / 2;
    format!("{head}{}{marker}{}", "x".repeat(fill.min(MIB)), "y".repeat(fill.saturating_sub(MIB)))
}

/// `s` with its `n`th character changed (to one it does not hold there).
fn changed_at(s: &str, n: usize) -> String {
    s.chars().enumerate().map(|(i, c)| if i == n { '§' } else { c }).collect()
}

/// The first `n` characters of `s`.
fn head(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The ids a search finds, sent as a form (the values are too long for a url).
async fn found(app: &TestApp, res_type: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    let r = app
        .req(reqwest::Method::POST, &format!("{res_type}/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish())
        .send()
        .await
        .expect("POST _search");
    assert_eq!(r.status(), 200, "{res_type}?{:?}", pairs.iter().map(|p| (p.0, p.1.len())).collect::<Vec<_>>());
    let mut ids = match_ids(&r.json().await.expect("json"));
    ids.sort();
    ids
}

/// Creates `body` (201) and checks it reads back as sent; returns its id.
async fn created(app: &TestApp, body: Value, element: &str) -> String {
    let stored = app.create(&body).await;
    let id = stored["id"].as_str().expect("id").to_string();
    let read = app.get_json(&format!("{}/{id}", body["resourceType"].as_str().expect("type")), 200).await;
    assert_eq!(read.pointer(element), body.pointer(element), "{element} reads back as sent");
    id
}

/// A patient named `family` with identifier `mrn`.
fn patient(family: &str, mrn: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "identifier": [{"system": MRN, "value": mrn}]})
}

/// String parameter `param` of `res_type` whose long value is `value` (the resource
/// `id`) and `near` (another's, alike in its first `value`'s 300 characters).
async fn string_searches_are_exact(app: &TestApp, res_type: &str, param: &str, value: &str, id: &str, near: &str) {
    let exact = format!("{param}:exact");
    let contains = format!("{param}:contains");
    let find = |k: String, v: String| async move { found(app, res_type, &[(&k, &v)]).await };
    assert_eq!(find(exact.clone(), value.into()).await, [id], "{res_type}?{exact} with the whole value");
    let other_tail = format!("{}different", head(value, 200));
    assert!(find(exact.clone(), other_tail).await.is_empty(), "the same 200 characters, another tail");
    assert!(find(exact, changed_at(value, 250)).await.is_empty(), "another character past the cut");
    assert_eq!(find(contains.clone(), "MARKER-ONE".into()).await, [id], "{res_type}?{contains} past the cut");
    assert!(find(contains, "MARKER-TWO".into()).await.is_empty());
    let mut both = vec![id.to_string(), near.to_string()];
    both.sort();
    assert_eq!(find(param.into(), head(value, 250)).await, both, "a prefix both share");
    assert_eq!(find(param.into(), head(value, 5000).to_lowercase()).await, [id], "a long prefix, any case");
    assert!(find(param.into(), changed_at(&head(value, 5000), 250)).await.is_empty(), "a wrong long prefix");
}

/// `Patient?identifier` with the long value `mrn` (patient `id`'s) and the first 300
/// characters of it (patient `near`'s).
async fn identifier_searches_are_exact(app: &TestApp, mrn: &str, id: &str, near: &str) {
    let find = |v: String| async move { found(app, "Patient", &[("identifier", &v)]).await };
    assert_eq!(find(format!("{MRN}|{mrn}")).await, [id], "system|value");
    assert_eq!(find(mrn.to_string()).await, [id], "the value alone");
    assert!(find(format!("{MRN}|{}zzz", head(mrn, 200))).await.is_empty(), "the same 200 characters, another tail");
    assert!(find(format!("{MRN}|{}", changed_at(mrn, 250))).await.is_empty(), "another character past the cut");
    assert_eq!(find(format!("{MRN}|{}", head(mrn, 300))).await, [near], "the other's");
}

async fn megabyte_values_are_stored_and_searched_exactly(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (family, mrn) = (long_value(MIB, "MARKER-ONE"), long_value(MIB, "MRN-ONE"));
    let p = created(&app, patient(&family, &mrn), "/name").await;
    let near = created(&app, patient(&head(&family, 300), &head(&mrn, 300)), "/name").await;
    string_searches_are_exact(&app, "Patient", "family", &family, &p, &near).await;

    identifier_searches_are_exact(&app, &mrn, &p, &near).await;

    let name = long_value(MIB, "MARKER-ONE");
    let loc = created(&app, json!({"resourceType": "Location", "name": name}), "/name").await;
    let loc_near = created(&app, json!({"resourceType": "Location", "name": head(&name, 300)}), "/name").await;
    string_searches_are_exact(&app, "Location", "name", &name, &loc, &loc_near).await;

    let alias = long_value(MIB, "MARKER-ONE");
    let org = json!({"resourceType": "Organization", "name": "Long", "alias": [alias]});
    let org = created(&app, org, "/alias").await;
    let org_near = json!({"resourceType": "Organization", "name": "Near", "alias": [head(&alias, 300)]});
    let org_near = created(&app, org_near, "/alias").await;
    string_searches_are_exact(&app, "Organization", "name", &alias, &org, &org_near).await;

    // Past R4's limit (`string.value` maxLength 1,048,576 characters): 400 at the element.
    let too_long = json!({"resourceType": "Patient", "name": [{"family": "x".repeat(MIB + 1)}]});
    let r = app.post("Patient", &too_long).await;
    assert_eq!(r.status(), 400);
    assert_eq!(crate::helpers::expression(&r.json().await.unwrap_or_default()), "Patient.name[0].family");
}

/// The indexed text columns that hold a value's first characters since migration 18,
/// each with `<column>_full` beside it.
const CUT_COLUMNS: [(&str, &str); 8] = [
    ("idx_string", "value_norm"),
    ("idx_string", "value_exact"),
    ("idx_token", "system"),
    ("idx_token", "code"),
    ("idx_reference", "target_type"),
    ("idx_reference", "raw"),
    ("idx_reference", "ident_value"),
    ("idx_uri", "uri"),
];

async fn run(c: &mut sqlx::AnyConnection, sql: &str) {
    sqlx::query(sql).execute(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// How many `idx_string` rows hold more than 200 characters in `value_norm`.
async fn long_rows(c: &mut sqlx::AnyConnection) -> i64 {
    let sql = "SELECT COUNT(*) FROM idx_string WHERE length(value_norm) > 200";
    sqlx::query_scalar(sql).fetch_one(&mut *c).await.expect("count")
}

/// Puts the database back as a gateway before migration 18 would have left it: each
/// value whole in its indexed column, no `_full` columns, the migration not applied.
async fn as_before_migration_18(c: &mut sqlx::AnyConnection) {
    for (table, col) in CUT_COLUMNS {
        run(c, &format!("UPDATE {table} SET {col} = {col}_full WHERE {col}_full IS NOT NULL")).await;
        run(c, &format!("ALTER TABLE {table} DROP COLUMN {col}_full")).await;
    }
    run(c, "DELETE FROM cupola_migrations WHERE version = 18").await;
}

/// Values longer than the index holds that an older gateway stored whole are cut by
/// migration 18, and then searched exactly.
async fn values_stored_whole_before_migration_18_are_searched_exactly(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Longer than the index holds, short enough for an older gateway's PostgreSQL index.
    let (family, mrn) = (long_value(600, "MARKER-ONE"), long_value(600, "MRN-ONE"));
    let p = created(&app, patient(&family, &mrn), "/name").await;
    let near = created(&app, patient(&head(&family, 300), &head(&mrn, 300)), "/name").await;
    sqlx::any::install_default_drivers();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(app.db_url()).await.expect("database");
    as_before_migration_18(&mut c).await;
    assert!(long_rows(&mut c).await > 0, "the old shape holds the names whole");
    let registry = std::sync::Arc::new(cupola::store::Registry::r4());
    let store = cupola::store::Store::connect(app.db_url(), 2, std::time::Duration::from_secs(5), registry).await;
    drop(store.expect("migrations run"));
    assert_eq!(long_rows(&mut c).await, 0, "migration 18 cut them");
    string_searches_are_exact(&app, "Patient", "family", &family, &p, &near).await;
    identifier_searches_are_exact(&app, &mrn, &p, &near).await;
}

crate::on_both!(
    megabyte_values_are_stored_and_searched_exactly,
    values_stored_whole_before_migration_18_are_searched_exactly,
);
