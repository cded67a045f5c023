//! Tests of the claims map (`claims.rs`, `claims/file.rs`).

use super::*;
use serde_json::json;

fn keycloak() -> ClaimsMap {
    let text = include_str!("../../mappings/auth/claims-keycloak.json");
    ClaimsMap::parse(text).expect("the shipped Keycloak example is a valid claims map")
}

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn refused(map: &ClaimsMap, v: Value) -> (String, String) {
    match map.identity(&claims(v)) {
        Err(AuthError::InvalidClaim { claim, reason }) => (claim, reason),
        other => panic!("not refused for a claim: {other:?}"),
    }
}

#[test]
fn keycloak_roles_org_and_channel() {
    let map = keycloak();
    let id = map
        .identity(&claims(json!({"realm_access": {"roles": ["offline_access", "cup-sportello"]}, "org_code": "asl3"})))
        .unwrap();
    assert_eq!(
        id,
        Identity { role: Role::BookingPoint, org: Some("asl3".into()), channel: Some("counter".into()), patient: None }
    );
    // The table's order decides, not the token's.
    let id = map
        .identity(&claims(json!({"realm_access": {"roles": ["cup-admin", "cup-sportello"]}, "org_code": "asl3"})))
        .unwrap();
    assert_eq!(id.role, Role::BookingPoint);
    // A single string is one value.
    let id = map.identity(&claims(json!({"realm_access": {"roles": "cup-farmacia"}, "org_code": "f-12"}))).unwrap();
    assert_eq!((id.role, id.channel.as_deref()), (Role::PaymentPoint, Some("pharmacy")));
}

#[test]
fn unmapped_and_missing_values_name_the_claim() {
    let map = keycloak();
    let (claim, reason) = refused(&map, json!({"realm_access": {"roles": ["offline_access", "uma_authorization"]}}));
    assert_eq!(claim, "realm_access.roles");
    assert!(reason.contains("`offline_access`") && reason.contains("`cup-sportello`"), "{reason}");
    let (claim, reason) = refused(&map, json!({"role": "admin"}));
    assert_eq!(claim, "realm_access.roles");
    assert!(reason.starts_with("missing"), "{reason}");
    let (claim, reason) = refused(&map, json!({"realm_access": {"roles": ["cup-sportello"]}}));
    assert_eq!(claim, "org_code");
    assert!(reason.contains("booking-point"), "{reason}");
    let (claim, _) = refused(&map, json!({"realm_access": {"roles": ["cup-sportello"]}, "org_code": "a b"}));
    assert_eq!(claim, "org_code");
    let (claim, _) = refused(&map, json!({"realm_access": {"roles": 7}}));
    assert_eq!(claim, "realm_access.roles");
}

#[test]
fn without_a_map_the_own_claims_are_read() {
    let map = ClaimsMap::default();
    let id = map
        .identity(&claims(json!({"role": "booking-point", "org": "Organization/asl3", "channel": "kiosk"})))
        .unwrap();
    assert_eq!((id.role, id.org.as_deref(), id.channel.as_deref()), (Role::BookingPoint, Some("asl3"), Some("kiosk")));
    assert_eq!(refused(&map, json!({"role": "booking-point", "org": "asl3", "channel": "kiosk"})).0, "org");
    assert_eq!(refused(&map, json!({"role": "booking-point", "org": "Organization/asl3"})).0, "channel");
}

#[test]
fn a_channel_claim_with_a_table_and_namespaced_claims() {
    let map = ClaimsMap::parse(
        r#"{"role": {"claim": "https://cup.example.it/roles", "values": [{"value": "operatore", "role": "booking-point"}]},
            "org": {"claim": "https://cup.example.it/org"},
            "channel": {"claim": "ente.canale", "values": [{"value": "sportello", "channel": "counter"}]}}"#,
    )
    .unwrap();
    let token = json!({"https://cup.example.it/roles": ["operatore"], "https://cup.example.it/org": "Organization/asl1",
        "ente": {"canale": "sportello"}});
    let id = map.identity(&claims(token.clone())).unwrap();
    assert_eq!((id.org.as_deref(), id.channel.as_deref()), (Some("asl1"), Some("counter")));
    let mut other = token;
    other["ente"]["canale"] = json!("counter");
    let (claim, reason) = refused(&map, other);
    assert_eq!(claim, "ente.canale");
    assert!(reason.contains("`sportello`"), "{reason}");
}

#[test]
fn bad_files_say_what_to_fix() {
    let cases = [
        ("{}", "maps nothing"),
        ("{\"rol\": {}}", "unknown field `rol`"),
        (r#"{"role": {"claim": "a..b", "values": [{"value": "x", "role": "admin"}]}}"#, "role.claim"),
        (r#"{"role": {"claim": "roles", "values": []}}"#, "role.values is empty"),
        (r#"{"role": {"claim": "roles", "values": [{"value": "x", "role": "nurse"}]}}"#, "role.values[0].role"),
        (r#"{"org": {"claim": "org_code", "prefix": "asl-"}}"#, "org.prefix"),
        (r#"{"channel": {"fromRole": [{"value": "x", "channel": "counter"}]}}"#, "add a `role` section"),
        (r#"{"channel": {"claim": "c", "values": [{"value": "x", "channel": "fax"}]}}"#, "channel.values[0].channel"),
        (r#"{"channel": {}}"#, "give `claim`"),
        (r#"{"channel": {"values": []}}"#, "needs channel.claim"),
    ];
    for (text, expected) in cases {
        let e = ClaimsMap::parse(text).unwrap_err();
        assert!(e.contains(expected), "{text}: {e}");
    }
}
