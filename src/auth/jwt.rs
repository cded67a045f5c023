//! Checking a bearer token: signature (RS256 / ES256 only), issuer, audience, expiry,
//! not-before, then cupola's claims; verified tokens are cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::bail;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::claims::{str_claim, ClaimsMap, Identity};
use super::keys::{self, VerifyKey};
use super::keyset::KeySet;
use super::{format_time, now_secs, AuthError, Caller, Scopes, DEV_ISSUER, LEEWAY_SECS};
use crate::config::AuthConfig;

/// How many verified tokens are remembered; the cache is emptied when it is full.
const CACHE_CAPACITY: usize = 10_000;

/// Checks bearer tokens against the keys of one issuer.
pub struct Authenticator {
    issuer: String,
    audience: String,
    keys: Arc<KeySet>,
    /// How the caller's role, organisation and channel are read from the claims.
    claims: ClaimsMap,
    cache: RwLock<Cache>,
    cache_capacity: usize,
}

/// Verified tokens, by their exact text, all verified with one generation of keys.
#[derive(Default)]
struct Cache {
    generation: u64,
    entries: HashMap<String, Arc<Caller>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.current().keys.iter().map(|k| (k.kid.as_deref(), k.alg)).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads JWKS (file or URL, fetched at start and refetched, see `keyset`) or the
    /// dev key (creating it).
    pub async fn from_config(cfg: &AuthConfig) -> anyhow::Result<Authenticator> {
        if cfg.audience.trim().is_empty() {
            bail!("--audience (CUPOLA_AUDIENCE) is empty; set the `aud` the tokens must name");
        }
        match (&cfg.issuer, &cfg.jwks) {
            (Some(issuer), Some(jwks)) => Authenticator::of_issuer(cfg, issuer, jwks).await,
            (Some(_), None) => {
                bail!("--issuer needs --jwks (CUPOLA_JWKS): the issuer's keys, as a JWKS file path or https:// URL")
            }
            (None, Some(_)) => bail!(
                "--jwks is set but --issuer is not: set --issuer (CUPOLA_ISSUER) to the `iss` of the tokens, \
                 or unset --jwks to use the development key"
            ),
            (None, None) if cfg.claims_map.is_some() => bail!(
                "--claims-map (CUPOLA_CLAIMS_MAP) maps the claims of an issuer's tokens: set --issuer and --jwks, \
                 or unset --claims-map (development tokens carry cupola's own claims)"
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

    async fn of_issuer(cfg: &AuthConfig, issuer: &str, jwks: &str) -> anyhow::Result<Authenticator> {
        if issuer.trim().is_empty() {
            bail!("--issuer (CUPOLA_ISSUER) is empty; set it to the `iss` of the tokens, or unset it to use the development key");
        }
        if cfg.jwks_refresh_secs == 0 {
            bail!("--jwks-refresh-secs (CUPOLA_JWKS_REFRESH_SECS) is 0; set the seconds between two fetches of the issuer's keys (default 3600)");
        }
        let refresh = Duration::from_secs(cfg.jwks_refresh_secs);
        let keys = KeySet::load(jwks, refresh, Duration::from_secs(cfg.jwks_min_refetch_secs)).await?;
        tracing::info!(issuer = %issuer, jwks = %jwks, keys = keys.current().keys.len(), refresh_secs = cfg.jwks_refresh_secs,
            min_refetch_secs = cfg.jwks_min_refetch_secs, "bearer tokens are checked against the issuer's keys");
        let mut auth = Authenticator::with_keys(issuer, &cfg.audience, keys);
        if let Some(path) = &cfg.claims_map {
            auth.claims = ClaimsMap::load(path)?;
        }
        Ok(auth)
    }

    pub(crate) fn new(issuer: &str, audience: &str, keys: Vec<VerifyKey>) -> Authenticator {
        Authenticator::with_keys(issuer, audience, Arc::new(KeySet::fixed(keys)))
    }

    fn with_keys(issuer: &str, audience: &str, keys: Arc<KeySet>) -> Authenticator {
        Authenticator {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            keys,
            claims: ClaimsMap::default(),
            cache: RwLock::new(Cache::default()),
            cache_capacity: CACHE_CAPACITY,
        }
    }

    /// Checks a bearer token (the text after "Bearer "). Verified tokens are cached
    /// (keyed by the exact token text, bounded size, cleared when full or when the
    /// keys change) so that a repeated token costs a hash lookup, but `exp` is still
    /// checked on every call. A token naming a key the issuer's set does not have
    /// makes the set fetched again (rate-limited, see `keyset`) and is checked again.
    pub async fn verify(&self, token: &str) -> Result<Arc<Caller>, AuthError> {
        match self.verify_at(token, now_secs()) {
            Err(AuthError::UnknownKey(_)) if self.keys.refetch_for_unknown_key().await => {
                self.verify_at(token, now_secs())
            }
            checked => checked,
        }
    }

    /// The issuer (`iss`) accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Arc<Caller>, AuthError> {
        let keys = self.keys.current();
        let cached = {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            cache.entries.get(token).filter(|_| cache.generation == keys.generation).cloned()
        };
        if let Some(caller) = cached {
            check_expiry(caller.expires_at, now)?;
            return Ok(caller);
        }
        let caller = Arc::new(self.check(token, &keys.keys, now)?);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.generation != keys.generation || cache.entries.len() >= self.cache_capacity {
            // Tokens verified with other keys are checked again with these.
            cache.entries.clear();
            cache.generation = keys.generation;
        }
        cache.entries.insert(token.to_string(), caller.clone());
        Ok(caller)
    }

    /// The full check of a token not in the cache.
    fn check(&self, token: &str, keys: &[VerifyKey], now: i64) -> Result<Caller, AuthError> {
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

        let candidates = self.candidate_keys(keys, kid, alg)?;
        let message = &token.as_bytes()[..header_len(token)];
        let valid =
            candidates.iter().any(|k| jsonwebtoken::crypto::verify(signature, message, &k.key, alg).unwrap_or(false));
        if !valid {
            return Err(AuthError::BadSignature);
        }

        let claims = decode_part(payload, "payload")?;
        caller_from_claims(&claims, &self.issuer, &self.audience, &self.claims, now)
    }

    /// The keys that may have signed a token: those with its `kid` (or, if none has
    /// it, those without a `kid`); without a `kid`, every key; always of its algorithm.
    fn candidate_keys<'k>(
        &self,
        keys: &'k [VerifyKey],
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<&'k VerifyKey>, AuthError> {
        let of_alg = |k: &&VerifyKey| k.alg == alg;
        let Some(kid) = kid else {
            let keys: Vec<&VerifyKey> = keys.iter().filter(of_alg).collect();
            if keys.is_empty() {
                return Err(AuthError::UnknownKey(format!(
                    "the token is signed with {alg:?}, but `{}` has no {alg:?} key",
                    self.issuer
                )));
            }
            return Ok(keys);
        };
        let mut named: Vec<&VerifyKey> = keys.iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
        if named.is_empty() {
            named = keys.iter().filter(|k| k.kid.is_none()).collect();
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
    map: &ClaimsMap,
    now: i64,
) -> Result<Caller, AuthError> {
    // In this order, so that a token wrong in several ways names the same fault first.
    check_issuer(claims, issuer)?;
    check_audience(claims, audience)?;
    let exp = check_times(claims, now)?;
    let sub = str_claim(claims, "sub")?.filter(|s| !s.is_empty()).ok_or_else(|| {
        AuthError::claim("sub", "missing or empty; the token must name its subject (who or what calls)")
    })?;
    let Identity { role, org, channel, patient } = map.identity(claims)?;
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

/// `iss`: present and the configured issuer.
fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), AuthError> {
    let iss =
        str_claim(claims, "iss")?.ok_or_else(|| AuthError::claim("iss", "missing; the token must name its issuer"))?;
    if iss != issuer {
        return Err(AuthError::WrongIssuer { found: iss.to_string(), expected: issuer.to_string() });
    }
    Ok(())
}

/// `aud`: a string or an array of strings naming this server.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), AuthError> {
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
    if !auds.iter().any(|a| same_audience(a, audience)) {
        let found = if auds.is_empty() {
            "no audience".to_string()
        } else {
            auds.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        };
        return Err(AuthError::WrongAudience { found, expected: audience.to_string() });
    }
    Ok(())
}

/// One audience, with or without a trailing `/`: a SMART client asks for a token for
/// the FHIR base URL as it knows it, `https://x/fhir` or `https://x/fhir/`, and the
/// issuer copies it into `aud` as it is.
fn same_audience(aud: &str, configured: &str) -> bool {
    fn trim(s: &str) -> &str {
        s.strip_suffix('/').unwrap_or(s)
    }
    aud == configured || (!aud.is_empty() && trim(aud) == trim(configured))
}

/// `exp` (required), `nbf` and `iat` at `now`, within the leeway; returns `exp`.
fn check_times(claims: &Map<String, Value>, now: i64) -> Result<i64, AuthError> {
    let exp = time_claim(claims, "exp")?
        .ok_or_else(|| AuthError::claim("exp", "missing; tokens without an expiry are not accepted"))?;
    check_expiry(exp, now)?;
    if let Some(nbf) = time_claim(claims, "nbf")? {
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::NotYetValid(format_time(nbf)));
        }
    }
    time_claim(claims, "iat")?;
    Ok(exp)
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
#[path = "jwt_tests.rs"]
mod tests;
