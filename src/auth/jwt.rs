//! Checking a bearer token: signature (RS256 / ES256 only), issuer, audience, expiry,
//! not-before, then cupola's claims; verified tokens are cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::bail;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::keys::{self, VerifyKey};
use super::{format_time, now_secs, AuthError, Caller, Role, Scopes, CHANNELS, DEV_ISSUER, LEEWAY_SECS};
use crate::config::AuthConfig;
use crate::fhir::types::is_valid_id;

/// How many verified tokens are remembered; the cache is emptied when it is full.
const CACHE_CAPACITY: usize = 10_000;

/// Checks bearer tokens against the keys of one issuer.
pub struct Authenticator {
    issuer: String,
    audience: String,
    keys: Vec<VerifyKey>,
    /// Verified tokens, by their exact text.
    cache: RwLock<HashMap<String, Arc<Caller>>>,
    cache_capacity: usize,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.iter().map(|k| (k.kid.as_deref(), k.alg)).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads JWKS (file or URL, fetched at start) or the dev key (creating it).
    pub async fn from_config(cfg: &AuthConfig) -> anyhow::Result<Authenticator> {
        if cfg.audience.trim().is_empty() {
            bail!("--audience (CUPOLA_AUDIENCE) is empty; set the `aud` the tokens must name");
        }
        match (&cfg.issuer, &cfg.jwks) {
            (Some(issuer), Some(jwks)) => {
                if issuer.trim().is_empty() {
                    bail!("--issuer (CUPOLA_ISSUER) is empty; set it to the `iss` of the tokens, or unset it to use the development key");
                }
                let keys = keys::load_jwks(jwks).await?;
                tracing::info!(issuer = %issuer, jwks = %jwks, keys = keys.len(), "bearer tokens are checked against the issuer's keys");
                Ok(Authenticator::new(issuer, &cfg.audience, keys))
            }
            (Some(_), None) => {
                bail!("--issuer needs --jwks (CUPOLA_JWKS): the issuer's keys, as a JWKS file path or https:// URL")
            }
            (None, Some(_)) => bail!(
                "--jwks is set but --issuer is not: set --issuer (CUPOLA_ISSUER) to the `iss` of the tokens, \
                 or unset --jwks to use the development key"
            ),
            (None, None) => {
                let path = cfg.dev_key_file.clone();
                let key = tokio::task::spawn_blocking(move || keys::load_or_create_dev_key(&path)).await??;
                tracing::warn!(
                    file = %cfg.dev_key_file.display(),
                    issuer = DEV_ISSUER,
                    "a development key is in use: tokens are signed and checked with a local key (`cupola token` mints them); \
                     in production set --issuer and --jwks"
                );
                Ok(Authenticator::new(DEV_ISSUER, &cfg.audience, vec![key.verify_key()?]))
            }
        }
    }

    pub(crate) fn new(issuer: &str, audience: &str, keys: Vec<VerifyKey>) -> Authenticator {
        Authenticator {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            keys,
            cache: RwLock::new(HashMap::new()),
            cache_capacity: CACHE_CAPACITY,
        }
    }

    /// Checks a bearer token (the text after "Bearer "). Verified tokens are cached
    /// (keyed by the exact token text, bounded size, cleared when full) so that a
    /// repeated token costs a hash lookup, but `exp` is still checked on every call.
    pub fn verify(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        self.verify_at(token, now_secs())
    }

    /// The issuer (`iss`) accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Caller>, AuthError> {
        let cached = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        if let Some(caller) = cached {
            check_expiry(caller.expires_at, now)?;
            return Ok(caller);
        }
        let caller = Arc::new(self.check(token, now)?);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.cache_capacity {
            cache.clear();
        }
        cache.insert(token.to_string(), caller.clone());
        Ok(caller)
    }

    /// The full check of a token not in the cache.
    fn check(&self, token: &str, now: i64) -> Result<Caller, AuthError> {
        if token.trim().is_empty() {
            return Err(AuthError::Malformed("the token is empty".into()));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(AuthError::Malformed(format!(
                "a JWT has three parts separated by dots (header.payload.signature), this one has {}",
                parts.len()
            )));
        };
        let header = decode_part(header, "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) if a == "RS256" => Algorithm::RS256,
            Some(Value::String(a)) if a == "ES256" => Algorithm::ES256,
            Some(Value::String(a)) => return Err(AuthError::UnsupportedAlgorithm(a.clone())),
            _ => return Err(AuthError::Malformed("the header has no `alg`".into())),
        };
        if header.contains_key("crit") {
            return Err(AuthError::Malformed(
                "the header lists critical extensions (`crit`), which this server does not implement".into(),
            ));
        }
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(AuthError::Malformed("the header's `kid` is not a string".into())),
        };

        let candidates = self.candidate_keys(kid, alg)?;
        let message = &token.as_bytes()[..header_len(token)];
        let valid =
            candidates.iter().any(|k| jsonwebtoken::crypto::verify(signature, message, &k.key, alg).unwrap_or(false));
        if !valid {
            return Err(AuthError::BadSignature);
        }

        let claims = decode_part(payload, "payload")?;
        caller_from_claims(&claims, &self.issuer, &self.audience, now)
    }

    /// The keys that may have signed a token: those with its `kid` (or, if none has
    /// it, those without a `kid`); without a `kid`, every key; always of its algorithm.
    fn candidate_keys(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<&VerifyKey>, AuthError> {
        let of_alg = |k: &&VerifyKey| k.alg == alg;
        let Some(kid) = kid else {
            let keys: Vec<&VerifyKey> = self.keys.iter().filter(of_alg).collect();
            if keys.is_empty() {
                return Err(AuthError::UnknownKey(format!(
                    "the token is signed with {alg:?}, but `{}` has no {alg:?} key",
                    self.issuer
                )));
            }
            return Ok(keys);
        };
        let mut named: Vec<&VerifyKey> = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
        if named.is_empty() {
            named = self.keys.iter().filter(|k| k.kid.is_none()).collect();
            if named.is_empty() {
                return Err(AuthError::UnknownKey(format!(
                    "the token is signed with key `{kid}`, which is not a key of `{}`: it comes from another \
                     issuer or an older key; ask for a new token",
                    self.issuer
                )));
            }
        }
        let keys: Vec<&VerifyKey> = named.into_iter().filter(of_alg).collect();
        if keys.is_empty() {
            return Err(AuthError::UnknownKey(format!(
                "the token is signed with {alg:?}, but key `{kid}` of `{}` is not an {alg:?} key",
                self.issuer
            )));
        }
        Ok(keys)
    }
}

/// The length of `header.payload`, the signed part of a token.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// A base64url JSON object of a token.
fn decode_part(part: &str, name: &str) -> Result<Map<String, Value>, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| AuthError::Malformed(format!("the {name} is not base64url without padding: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AuthError::Malformed(format!("the {name} is not a JSON object"))),
        Err(e) => Err(AuthError::Malformed(format!("the {name} is not JSON: {e}"))),
    }
}

fn check_expiry(exp: i64, now: i64) -> Result<(), AuthError> {
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(AuthError::Expired(format_time(exp)));
    }
    Ok(())
}

/// Checks the claims of a token signed by the issuer's key and reads the caller.
/// Also used by `mint`, so that cupola never signs a token it would refuse.
pub(crate) fn caller_from_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<Caller, AuthError> {
    let iss =
        str_claim(claims, "iss")?.ok_or_else(|| AuthError::claim("iss", "missing; the token must name its issuer"))?;
    if iss != issuer {
        return Err(AuthError::WrongIssuer { found: iss.to_string(), expected: issuer.to_string() });
    }
    let auds: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => {
            return Err(AuthError::claim("aud", format!("missing; the token must name this server (`{audience}`)")))
        }
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| AuthError::claim("aud", "must be a string or an array of strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(AuthError::claim("aud", "must be a string or an array of strings")),
    };
    if !auds.contains(&audience) {
        let found = if auds.is_empty() {
            "no audience".to_string()
        } else {
            auds.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        };
        return Err(AuthError::WrongAudience { found, expected: audience.to_string() });
    }
    let exp = time_claim(claims, "exp")?
        .ok_or_else(|| AuthError::claim("exp", "missing; tokens without an expiry are not accepted"))?;
    check_expiry(exp, now)?;
    if let Some(nbf) = time_claim(claims, "nbf")? {
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::NotYetValid(format_time(nbf)));
        }
    }
    time_claim(claims, "iat")?;
    let sub = str_claim(claims, "sub")?.filter(|s| !s.is_empty()).ok_or_else(|| {
        AuthError::claim("sub", "missing or empty; the token must name its subject (who or what calls)")
    })?;

    let role_list = Role::ALL.map(|r| r.as_str()).join(", ");
    let role = str_claim(claims, "role")?
        .ok_or_else(|| {
            AuthError::claim("role", format!("missing; cupola needs the caller's role, one of {role_list}"))
        })?
        .parse::<Role>()
        .map_err(|e| AuthError::claim("role", e))?;
    let org = match str_claim(claims, "org")? {
        None => None,
        Some(v) => match v.strip_prefix("Organization/") {
            Some(id) if is_valid_id(id) => Some(id.to_string()),
            _ => {
                return Err(AuthError::claim(
                    "org",
                    format!("`{v}` is not `Organization/{{id}}` (an id is 1 to 64 letters, digits, `-` or `.`)"),
                ))
            }
        },
    };
    let channel = match str_claim(claims, "channel")? {
        None => None,
        Some(c) if CHANNELS.contains(&c) => Some(c.to_string()),
        Some(c) => {
            return Err(AuthError::claim(
                "channel",
                format!("unknown channel `{c}`; expected one of {}", CHANNELS.join(", ")),
            ))
        }
    };
    let patient = match str_claim(claims, "patient")? {
        None => None,
        Some(p) if is_valid_id(p) => Some(p.to_string()),
        Some(p) => {
            return Err(AuthError::claim(
                "patient",
                format!("`{p}` is not a Patient id (1 to 64 letters, digits, `-` or `.`, without `Patient/`)"),
            ))
        }
    };
    if matches!(role, Role::Provider | Role::BookingPoint | Role::PaymentPoint) && org.is_none() {
        return Err(AuthError::claim(
            "org",
            format!("missing; a {role} token must name its organization (`Organization/{{id}}`)"),
        ));
    }
    if role == Role::BookingPoint && channel.is_none() {
        return Err(AuthError::claim(
            "channel",
            format!("missing; a booking-point token must say where it books, one of {}", CHANNELS.join(", ")),
        ));
    }
    if role == Role::PatientApp && patient.is_none() {
        return Err(AuthError::claim("patient", "missing; a patient-app token must name its patient (a Patient id)"));
    }
    let scope = str_claim(claims, "scope")?.ok_or_else(|| {
        AuthError::claim("scope", "missing; the token must grant SMART scopes, such as `user/Appointment.rs`")
    })?;
    let scopes = Scopes::parse(scope).map_err(|e| AuthError::claim("scope", e))?;
    let client_id = match str_claim(claims, "client_id")? {
        Some(c) => Some(c.to_string()),
        None => str_claim(claims, "azp")?.map(str::to_string),
    };
    Ok(Caller { sub: sub.to_string(), client_id, role, org, channel, patient, scopes, expires_at: exp })
}

/// A string claim; `None` if absent or null.
fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::claim(name, "must be a string")),
    }
}

/// A NumericDate claim (seconds since the epoch, maybe with a fraction), in whole seconds.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthError> {
    let bad = || AuthError::claim(name, "must be a number of seconds since 1970-01-01T00:00:00Z");
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_keys;
    use crate::auth::{mint, Interaction, TokenRequest};
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
        let caller = auth.verify(&token).unwrap();
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
        assert!(Arc::ptr_eq(&caller, &auth.verify(&token).unwrap()));

        let app = TokenRequest {
            role: Role::PatientApp,
            org: None,
            channel: None,
            patient: Some("pat-1".into()),
            scope: crate::auth::default_scope(Role::PatientApp).into(),
            client_id: None,
            ..booking_point()
        };
        let caller = auth.verify(&mint(&cfg, &app).unwrap()).unwrap();
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
        let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
        assert_eq!(e, AuthError::Expired(format_time(now - 100)));
        assert!(e.to_string().contains("expired at") && e.to_string().ends_with("ask for a new one"), "{e}");
        assert_eq!(e.code(), "invalid_token");

        c["exp"] = json!(now - 10); // within the leeway
        auth.verify(&sign_dev(&cfg, &c)).unwrap();
        c["exp"] = json!(now as f64 + 60.5); // NumericDate may have a fraction
        assert_eq!(auth.verify(&sign_dev(&cfg, &c)).unwrap().expires_at, now + 60);

        let mut c = claims(now);
        c["nbf"] = json!(now + 600);
        assert_eq!(auth.verify(&sign_dev(&cfg, &c)).unwrap_err(), AuthError::NotYetValid(format_time(now + 600)));
        c["nbf"] = json!(now + 10); // within the leeway
        auth.verify(&sign_dev(&cfg, &c)).unwrap();

        let mut c = claims(now);
        c.as_object_mut().unwrap().remove("exp");
        assert!(
            matches!(auth.verify(&sign_dev(&cfg, &c)), Err(AuthError::InvalidClaim { claim, .. }) if claim == "exp")
        );
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
            assert_eq!(auth.verify(&sign_dev(&cfg, &c)).unwrap().sub, format!("operator-{i}"));
            assert!(auth.cache.read().unwrap().len() <= 3);
        }
    }

    #[tokio::test]
    async fn issuer_and_audience() {
        let (_dir, cfg) = dev_config();
        let auth = Authenticator::from_config(&cfg).await.unwrap();
        let now = now_secs();

        let mut c = claims(now);
        c["aud"] = json!("other-api");
        let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
        assert_eq!(e, AuthError::WrongAudience { found: "`other-api`".into(), expected: "cupola".into() });
        c["aud"] = json!(["other-api", "cupola"]);
        auth.verify(&sign_dev(&cfg, &c)).unwrap();
        c["aud"] = json!([]);
        assert!(matches!(auth.verify(&sign_dev(&cfg, &c)), Err(AuthError::WrongAudience { .. })));

        let mut c = claims(now);
        c["iss"] = json!("https://evil.example");
        let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
        assert!(matches!(&e, AuthError::WrongIssuer { found, .. } if found == "https://evil.example"), "{e}");
    }

    #[tokio::test]
    async fn tampered_and_foreign_tokens() {
        let (_dir, cfg) = dev_config();
        let auth = Authenticator::from_config(&cfg).await.unwrap();
        let now = now_secs();
        let token = sign_dev(&cfg, &claims(now));
        auth.verify(&token).unwrap();

        // Tampered payload: a booking point making itself admin.
        let parts: Vec<&str> = token.split('.').collect();
        let mut c = claims(now);
        c["role"] = json!("admin");
        c["scope"] = json!("system/*.cruds");
        let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
        assert_eq!(auth.verify(&tampered).unwrap_err(), AuthError::BadSignature);
        // Tampered signature.
        let mut sig = parts[2].to_string();
        let flipped = if sig[10..11] == *"A" { "B" } else { "A" };
        sig.replace_range(10..11, flipped);
        assert_eq!(auth.verify(&format!("{}.{}.{sig}", parts[0], parts[1])).unwrap_err(), AuthError::BadSignature);
        assert_eq!(auth.verify(&format!("{}.{}.", parts[0], parts[1])).unwrap_err(), AuthError::BadSignature);

        // Signed by another key: under the same kid, and under its own.
        let (_other_dir, other) = dev_config();
        let other_key = keys::load_or_create_dev_key(&other.dev_key_file).unwrap();
        let own_kid = keys::load_or_create_dev_key(&cfg.dev_key_file).unwrap().kid;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(own_kid);
        let forged = jsonwebtoken::encode(&header, &claims(now), &other_key.encoding_key()).unwrap();
        assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::BadSignature);
        let e = auth.verify(&sign_dev(&other, &claims(now))).unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
        header.kid = None;
        let forged = jsonwebtoken::encode(&header, &claims(now), &other_key.encoding_key()).unwrap();
        assert_eq!(auth.verify(&forged).unwrap_err(), AuthError::BadSignature);
    }

    #[tokio::test]
    async fn other_algorithms_refused() {
        let (_dir, cfg) = dev_config();
        let auth = Authenticator::from_config(&cfg).await.unwrap();
        let now = now_secs();

        let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims(now)));
        let e = auth.verify(&none).unwrap_err();
        assert_eq!(e, AuthError::UnsupportedAlgorithm("none".into()));
        assert!(e.to_string().contains("only RS256 and ES256"), "{e}");

        // HS256, also keyed with the public key (the classic key confusion).
        let dev = keys::load_or_create_dev_key(&cfg.dev_key_file).unwrap();
        for secret in [b"secret".as_slice(), dev.x.as_bytes()] {
            let hs =
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(now), &EncodingKey::from_secret(secret))
                    .unwrap();
            assert_eq!(auth.verify(&hs).unwrap_err(), AuthError::UnsupportedAlgorithm("HS256".into()));
        }
        // An RS256 token where only an ES256 key exists.
        let e = auth.verify(&sign_rsa(None, &claims(now))).unwrap_err();
        assert!(matches!(e, AuthError::UnknownKey(_)), "{e}");
        let crit = format!("{}.{}.", b64(&json!({"alg": "ES256", "crit": ["exp"]})), b64(&claims(now)));
        assert!(matches!(auth.verify(&crit), Err(AuthError::Malformed(_))));
    }

    #[tokio::test]
    async fn malformed_tokens() {
        let (_dir, cfg) = dev_config();
        let auth = Authenticator::from_config(&cfg).await.unwrap();
        for bad in ["", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.", "WzFd.e30."] {
            let e = auth.verify(bad).unwrap_err();
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
            let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
            let text = e.to_string();
            assert!(
                matches!(&e, AuthError::InvalidClaim { claim: c, .. } if c == claim) && text.contains(reason),
                "{claim} = {value}: {text}"
            );
        }
        // Requirements by role.
        let mut c = claims(now);
        c["role"] = json!("patient-app");
        let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
        assert!(matches!(&e, AuthError::InvalidClaim { claim, .. } if claim == "patient"), "{e}");
        c["patient"] = json!("pat-1");
        auth.verify(&sign_dev(&cfg, &c)).unwrap();
        for role in ["provider", "payment-point"] {
            let mut c = claims(now);
            c["role"] = json!(role);
            c.as_object_mut().unwrap().remove("channel");
            assert_eq!(auth.verify(&sign_dev(&cfg, &c)).unwrap().role.as_str(), role);
            c.as_object_mut().unwrap().remove("org");
            let e = auth.verify(&sign_dev(&cfg, &c)).unwrap_err();
            assert!(matches!(&e, AuthError::InvalidClaim { claim, .. } if claim == "org"), "{e}");
        }
        let mut c = claims(now);
        c["role"] = json!("admin");
        for k in ["org", "channel"] {
            c.as_object_mut().unwrap().remove(k);
        }
        c["azp"] = json!("admin-console");
        let caller = auth.verify(&sign_dev(&cfg, &c)).unwrap();
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
        let caller = auth.verify(&sign_rsa(Some("cupola-test-rsa"), &idp_claims(now))).unwrap();
        assert_eq!(caller.org.as_deref(), Some("asl-roma1"));
        auth.verify(&sign_rsa(None, &idp_claims(now))).unwrap();
        assert!(matches!(
            auth.verify(&sign_rsa(Some("rotated-away"), &idp_claims(now))),
            Err(AuthError::UnknownKey(_))
        ));
        // A development-key token is not accepted by a server with an issuer.
        let (_dir, dev) = dev_config();
        assert!(matches!(auth.verify(&sign_dev(&dev, &idp_claims(now))), Err(AuthError::UnknownKey(_))));
        // Nor an RS256 token of the right key for another issuer.
        assert!(matches!(auth.verify(&sign_rsa(None, &claims(now))), Err(AuthError::WrongIssuer { .. })));
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
        auth.verify(&sign_rsa(Some("cupola-test-rsa"), &idp_claims(now_secs()))).unwrap();

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
}
