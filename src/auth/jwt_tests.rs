//! Tests of token checking (`jwt.rs`).

use super::*;
use crate::auth::{mint, test_keys, Interaction, Role, TokenRequest};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const IDP: &str = "https://idp.example.org/realms/cup";

/// A development-key setting in a fresh directory (kept alive by the returned guard).
fn dev_config() -> (tempfile::TempDir, AuthConfig) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthConfig::dev(dir.path().join("dev-key.json"));
    (dir, cfg)
}

fn booking_point() -> TokenRequest {
    TokenRequest {
        sub: "operator-17".into(),
        role: Role::BookingPoint,
        org: Some("asl-roma1".into()),
        channel: Some("counter".into()),
        patient: None,
        scope: "openid user/Appointment.cruds user/Slot.rs".into(),
        ttl_secs: 600,
        client_id: Some("cup-desk".into()),
    }
}

/// Good claims for the development issuer, to spoil one at a time.
fn claims(now: i64) -> Value {
    json!({
        "iss": DEV_ISSUER, "aud": "cupola", "sub": "operator-17", "iat": now, "nbf": now, "exp": now + 600,
        "scope": "user/*.rs", "role": "booking-point", "org": "Organization/asl-roma1", "channel": "call-centre",
    })
}

/// Signs `claims` with the development key of `cfg` (or any key of that format).
fn sign_dev(cfg: &AuthConfig, claims: &Value) -> String {
    let key = keys::load_or_create_dev_key(&cfg.dev_key_file).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding_key()).unwrap()
}

/// Signs `claims` with the test RSA key (generated once per test process).
fn sign_rsa(kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    let key = EncodingKey::from_rsa_pem(test_keys::rsa_private_pem()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A JWKS file holding the public test RSA key, in a fresh directory (kept alive by
/// the returned guard), and its path.
fn rsa_jwks_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = test_keys::write_rsa_jwks(dir.path()).to_str().unwrap().to_string();
    (dir, path)
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn minted_token_verifies() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    assert_eq!(auth.issuer(), DEV_ISSUER);
    let token = mint(&cfg, &booking_point()).unwrap();
    let caller = auth.verify(&token).await.unwrap();
    assert_eq!(caller.sub, "operator-17");
    assert_eq!(caller.role, Role::BookingPoint);
    assert_eq!(caller.org.as_deref(), Some("asl-roma1"));
    assert_eq!(caller.channel.as_deref(), Some("counter"));
    assert_eq!(caller.patient, None);
    assert_eq!(caller.client_id.as_deref(), Some("cup-desk"));
    assert!((caller.expires_at - now_secs() - 600).abs() <= 5);
    assert!(caller.scopes.allows("Appointment", Interaction::Delete));
    assert!(caller.scopes.allows("Slot", Interaction::Search));
    assert!(!caller.scopes.allows("Slot", Interaction::Update));
    assert!(!caller.scopes.allows("Invoice", Interaction::Read));
    assert_eq!(caller.scopes.as_text(), "user/Appointment.cruds user/Slot.rs");
    // A repeated token comes from the cache.
    assert!(Arc::ptr_eq(&caller, &auth.verify(&token).await.unwrap()));

    let app = TokenRequest {
        role: Role::PatientApp,
        org: None,
        channel: None,
        patient: Some("pat-1".into()),
        scope: crate::auth::default_scope(Role::PatientApp).into(),
        client_id: None,
        ..booking_point()
    };
    let caller = auth.verify(&mint(&cfg, &app).unwrap()).await.unwrap();
    assert_eq!((caller.role, caller.patient.as_deref()), (Role::PatientApp, Some("pat-1")));
    assert!(caller.scopes.allows("AppointmentResponse", Interaction::Create));
    assert!(!caller.scopes.allows("Slot", Interaction::Create));
}

#[tokio::test]
async fn time_window() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();

    let mut c = claims(now);
    c["exp"] = json!(now - 100);
    let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
    assert_eq!(e, AuthError::Expired(format_time(now - 100)));
    assert!(e.to_string().contains("expired at") && e.to_string().ends_with("ask for a new one"), "{e}");
    assert_eq!(e.code(), "invalid_token");

    c["exp"] = json!(now - 10); // within the leeway
    auth.verify(&sign_dev(&cfg, &c)).await.unwrap();
    c["exp"] = json!(now as f64 + 60.5); // NumericDate may have a fraction
    assert_eq!(auth.verify(&sign_dev(&cfg, &c)).await.unwrap().expires_at, now + 60);

    let mut c = claims(now);
    c["nbf"] = json!(now + 600);
    assert_eq!(auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err(), AuthError::NotYetValid(format_time(now + 600)));
    c["nbf"] = json!(now + 10); // within the leeway
    auth.verify(&sign_dev(&cfg, &c)).await.unwrap();

    let mut c = claims(now);
    c.as_object_mut().unwrap().remove("exp");
    let checked = auth.verify(&sign_dev(&cfg, &c)).await;
    assert!(matches!(checked, Err(AuthError::InvalidClaim { claim, .. }) if claim == "exp"));
}

#[tokio::test]
async fn cached_tokens_still_expire() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();
    let token = sign_dev(&cfg, &claims(now));
    auth.verify_at(&token, now).unwrap();
    auth.verify_at(&token, now + 600 + LEEWAY_SECS).unwrap();
    let e = auth.verify_at(&token, now + 600 + LEEWAY_SECS + 1).unwrap_err();
    assert_eq!(e, AuthError::Expired(format_time(now + 600)));
}

#[tokio::test]
async fn cache_is_bounded() {
    let (_dir, cfg) = dev_config();
    let mut auth = Authenticator::from_config(&cfg).await.unwrap();
    auth.cache_capacity = 3;
    let now = now_secs();
    for i in 0..10 {
        let mut c = claims(now);
        c["sub"] = json!(format!("operator-{i}"));
        assert_eq!(auth.verify(&sign_dev(&cfg, &c)).await.unwrap().sub, format!("operator-{i}"));
        assert!(auth.cache.read().unwrap().entries.len() <= 3);
    }
}

#[tokio::test]
async fn issuer_and_audience() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();

    let mut c = claims(now);
    c["aud"] = json!("other-api");
    let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
    assert_eq!(e, AuthError::WrongAudience { found: "`other-api`".into(), expected: "cupola".into() });
    c["aud"] = json!(["other-api", "cupola"]);
    auth.verify(&sign_dev(&cfg, &c)).await.unwrap();
    c["aud"] = json!([]);
    assert!(matches!(auth.verify(&sign_dev(&cfg, &c)).await, Err(AuthError::WrongAudience { .. })));

    let mut c = claims(now);
    c["iss"] = json!("https://evil.example");
    let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
    assert!(matches!(&e, AuthError::WrongIssuer { found, .. } if found == "https://evil.example"), "{e}");
}

#[tokio::test]
async fn tampered_and_foreign_tokens() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();
    let token = sign_dev(&cfg, &claims(now));
    auth.verify(&token).await.unwrap();

    // Tampered payload: a booking point making itself admin.
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims(now);
    c["role"] = json!("admin");
    c["scope"] = json!("system/*.cruds");
    let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_eq!(auth.verify(&tampered).await.unwrap_err(), AuthError::BadSignature);
    // Tampered signature.
    let mut sig = parts[2].to_string();
    let flipped = if sig[10..11] == *"A" { "B" } else { "A" };
    sig.replace_range(10..11, flipped);
    assert_eq!(auth.verify(&format!("{}.{}.{sig}", parts[0], parts[1])).await.unwrap_err(), AuthError::BadSignature);
    assert_eq!(auth.verify(&format!("{}.{}.", parts[0], parts[1])).await.unwrap_err(), AuthError::BadSignature);

    // Signed by another key: under the same kid, and under its own.
    let (_other_dir, other) = dev_config();
    let other_key = keys::load_or_create_dev_key(&other.dev_key_file).unwrap();
    let own_kid = keys::load_or_create_dev_key(&cfg.dev_key_file).unwrap().kid;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(own_kid);
    let forged = jsonwebtoken::encode(&header, &claims(now), &other_key.encoding_key()).unwrap();
    assert_eq!(auth.verify(&forged).await.unwrap_err(), AuthError::BadSignature);
    let e = auth.verify(&sign_dev(&other, &claims(now))).await.unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
    header.kid = None;
    let forged = jsonwebtoken::encode(&header, &claims(now), &other_key.encoding_key()).unwrap();
    assert_eq!(auth.verify(&forged).await.unwrap_err(), AuthError::BadSignature);
}

#[tokio::test]
async fn other_algorithms_refused() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();

    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(now)));
    let e = auth.verify(&none).await.unwrap_err();
    assert_eq!(e, AuthError::UnsupportedAlgorithm("none".into()));
    assert!(e.to_string().contains("only RS256 and ES256"), "{e}");

    // HS256, also keyed with the public key (the classic key confusion).
    let dev = keys::load_or_create_dev_key(&cfg.dev_key_file).unwrap();
    for secret in [b"secret".as_slice(), dev.x.as_bytes()] {
        let hs = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(now), &EncodingKey::from_secret(secret))
            .unwrap();
        assert_eq!(auth.verify(&hs).await.unwrap_err(), AuthError::UnsupportedAlgorithm("HS256".into()));
    }
    // An RS256 token where only an ES256 key exists.
    let e = auth.verify(&sign_rsa(None, &claims(now))).await.unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
    let crit = format!("{}.{}.", b64(&json!({"alg": "ES256", "crit": ["exp"]})), b64(&claims(now)));
    assert!(matches!(auth.verify(&crit).await, Err(AuthError::Malformed(_))));
}

#[tokio::test]
async fn malformed_tokens() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    for bad in ["", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.", "WzFd.e30."] {
        let e = auth.verify(bad).await.unwrap_err();
        assert!(matches!(e, AuthError::Malformed(_)), "{bad}: {e}");
        assert_eq!(e.code(), "invalid_token");
    }
}

#[tokio::test]
async fn cupola_claims_checked() {
    let (_dir, cfg) = dev_config();
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    let now = now_secs();
    let cases: &[(&str, Value, &str)] = &[
        ("role", json!(null), "missing"),
        ("role", json!("nurse"), "unknown role `nurse`"),
        ("role", json!(7), "must be a string"),
        ("org", json!(null), "must name its organization"),
        ("org", json!("asl-roma1"), "is not `Organization/{id}`"),
        ("org", json!("Organization/a b"), "is not `Organization/{id}`"),
        ("channel", json!(null), "where it books"),
        ("channel", json!("fax"), "unknown channel `fax`"),
        ("patient", json!("Patient/1"), "not a Patient id"),
        ("scope", json!(null), "missing"),
        ("scope", json!("patient/Observation.rs?category=laboratory"), "query suffixes"),
        ("scope", json!("user/Slot.sr"), "order"),
        ("sub", json!(""), "missing or empty"),
        ("iat", json!("yesterday"), "must be a number"),
    ];
    for (claim, value, reason) in cases {
        let mut c = claims(now);
        c[*claim] = value.clone();
        let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(&e, AuthError::InvalidClaim { claim: c, .. } if c == claim) && text.contains(reason),
            "{claim} = {value}: {text}"
        );
    }
    // Requirements by role.
    let mut c = claims(now);
    c["role"] = json!("patient-app");
    let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
    assert!(matches!(&e, AuthError::InvalidClaim { claim, .. } if claim == "patient"), "{e}");
    c["patient"] = json!("pat-1");
    auth.verify(&sign_dev(&cfg, &c)).await.unwrap();
    for role in ["provider", "payment-point"] {
        let mut c = claims(now);
        c["role"] = json!(role);
        c.as_object_mut().unwrap().remove("channel");
        assert_eq!(auth.verify(&sign_dev(&cfg, &c)).await.unwrap().role.as_str(), role);
        c.as_object_mut().unwrap().remove("org");
        let e = auth.verify(&sign_dev(&cfg, &c)).await.unwrap_err();
        assert!(matches!(&e, AuthError::InvalidClaim { claim, .. } if claim == "org"), "{e}");
    }
    let mut c = claims(now);
    c["role"] = json!("admin");
    for k in ["org", "channel"] {
        c.as_object_mut().unwrap().remove(k);
    }
    c["azp"] = json!("admin-console");
    let caller = auth.verify(&sign_dev(&cfg, &c)).await.unwrap();
    assert_eq!(
        (caller.role, caller.client_id.as_deref(), caller.org.as_deref()),
        (Role::Admin, Some("admin-console"), None)
    );
}

fn idp_claims(now: i64) -> Value {
    let mut c = claims(now);
    c["iss"] = json!(IDP);
    c["aud"] = json!(["account", "cupola"]);
    c
}

#[tokio::test]
async fn rs256_with_jwks_file() {
    let (_jwks_dir, jwks) = rsa_jwks_file();
    let cfg = AuthConfig { issuer: Some(IDP.into()), jwks: Some(jwks), ..AuthConfig::dev("unused.json") };
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    assert_eq!(auth.issuer(), IDP);
    let now = now_secs();
    let caller = auth.verify(&sign_rsa(Some("cupola-test-rsa"), &idp_claims(now))).await.unwrap();
    assert_eq!(caller.org.as_deref(), Some("asl-roma1"));
    auth.verify(&sign_rsa(None, &idp_claims(now))).await.unwrap();
    let rotated = sign_rsa(Some("rotated-away"), &idp_claims(now));
    assert!(matches!(auth.verify(&rotated).await, Err(AuthError::UnknownKey(_))));
    // A development-key token is not accepted by a server with an issuer.
    let (_dir, dev) = dev_config();
    assert!(matches!(auth.verify(&sign_dev(&dev, &idp_claims(now))).await, Err(AuthError::UnknownKey(_))));
    // Nor an RS256 token of the right key for another issuer.
    assert!(matches!(auth.verify(&sign_rsa(None, &claims(now))).await, Err(AuthError::WrongIssuer { .. })));
    assert!(!Path::new("unused.json").exists());
}

use std::path::Path;

/// Serves `body` with `status` on 127.0.0.1 to every request; the URL of `/jwks`.
async fn serve_once(status: &'static str, body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/jwks")
}

#[tokio::test]
async fn rs256_with_jwks_url() {
    let url = serve_once("200 OK", test_keys::rsa_jwks().to_string()).await;
    let cfg = AuthConfig { issuer: Some(IDP.into()), jwks: Some(url), ..AuthConfig::dev("unused.json") };
    let auth = Authenticator::from_config(&cfg).await.unwrap();
    auth.verify(&sign_rsa(Some("cupola-test-rsa"), &idp_claims(now_secs()))).await.unwrap();

    let url = serve_once("404 Not Found", "{}".into()).await;
    let cfg = AuthConfig { jwks: Some(url.clone()), ..cfg };
    let e = Authenticator::from_config(&cfg).await.unwrap_err();
    assert!(format!("{e:#}").contains(&url), "{e:#}");
}

#[tokio::test]
async fn configuration_errors() {
    let (_jwks_dir, jwks) = rsa_jwks_file();
    let base = AuthConfig::dev("unused.json");
    let cases = [
        AuthConfig { issuer: Some(IDP.into()), ..base.clone() },
        AuthConfig { jwks: Some(jwks.clone()), ..base.clone() },
        AuthConfig { issuer: Some(" ".into()), jwks: Some(jwks), ..base.clone() },
        AuthConfig { audience: "".into(), ..base.clone() },
        AuthConfig { issuer: Some(IDP.into()), jwks: Some("/nonexistent/jwks.json".into()), ..base.clone() },
    ];
    for cfg in cases {
        assert!(Authenticator::from_config(&cfg).await.is_err(), "{cfg:?}");
    }
    assert!(!Path::new("unused.json").exists());
}
