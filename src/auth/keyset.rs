//! The keys tokens are checked with, kept current: the issuer's JWKS is fetched again
//! when a token names a key the gateway does not have (at most once per
//! `--jwks-min-refetch-secs`, so that a flood of such tokens cannot make the gateway
//! hammer the issuer) and every `--jwks-refresh-secs`, so that the issuer can rotate
//! its keys without a restart.
//!
//! Readers clone the current set out of a lock held for no longer than that; a fetch
//! runs outside it and swaps the whole set in when it is done, so a token of a known
//! key never waits on a fetch.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use super::jwks;
use super::keys::VerifyKey;

/// One set of keys: replaced whole, never changed.
pub(crate) struct Keys {
    pub keys: Vec<VerifyKey>,
    /// Grows with each new set: tokens verified with an older set are checked again
    /// (a key removed by the issuer must stop working at once).
    pub generation: u64,
    /// The JWKS text the keys come from: a refetch that finds it unchanged keeps the
    /// set, and with it the tokens already verified.
    text: String,
}

/// Where the keys come from and when they may be fetched again.
struct Source {
    location: String,
    min_refetch: Duration,
    /// When the last fetch ended, successful or not: a failing issuer is not hammered
    /// either.
    last_fetch: Mutex<Instant>,
    /// One fetch at a time: tokens that arrive during a fetch wait for its keys
    /// instead of fetching themselves.
    flight: tokio::sync::Mutex<()>,
}

impl Source {
    /// Whether a token naming an unknown key may cause a fetch now.
    fn due(&self) -> bool {
        self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()).elapsed() >= self.min_refetch
    }
}

/// The issuer's keys (refetched), or the development key (fixed).
pub(crate) struct KeySet {
    current: RwLock<Arc<Keys>>,
    source: Option<Source>,
}

impl KeySet {
    /// Keys that never change: the development key's.
    pub fn fixed(keys: Vec<VerifyKey>) -> KeySet {
        KeySet { current: RwLock::new(Arc::new(Keys { keys, generation: 0, text: String::new() })), source: None }
    }

    /// The JWKS of `location` (a file or a URL), read now; read again every `refresh`
    /// by a task that ends with the set, and on unknown keys (see [`KeySet::refetch_for_unknown_key`]).
    pub async fn load(location: &str, refresh: Duration, min_refetch: Duration) -> anyhow::Result<Arc<KeySet>> {
        if location.starts_with("http://") {
            tracing::warn!(jwks = location, "the issuer's keys are fetched over plain HTTP; use an https:// URL");
        }
        let text = jwks::read_jwks(location).await?;
        let keys = jwks::parse_jwks(&text, location)?;
        let source = Source {
            location: location.to_string(),
            min_refetch,
            last_fetch: Mutex::new(Instant::now()),
            flight: tokio::sync::Mutex::new(()),
        };
        let set = Arc::new(KeySet {
            current: RwLock::new(Arc::new(Keys { keys, generation: 0, text })),
            source: Some(source),
        });
        spawn_refresh(Arc::downgrade(&set), refresh);
        Ok(set)
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Keys> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A token names a key the set does not have: the issuer may have rotated its keys.
    /// Fetches the JWKS again unless a fetch ended less than the minimum interval ago;
    /// returns when the fetch running, if any, has ended: whether the keys may have
    /// changed since the token was checked (even without a fetch of its own: one may
    /// have ended in between, and checking an unknown key again costs no signature).
    pub async fn refetch_for_unknown_key(&self) -> bool {
        let Some(source) = &self.source else { return false };
        if !source.due() {
            return true;
        }
        let _flight = source.flight.lock().await;
        // Those that waited for the fetch that just ended do not fetch again.
        if source.due() {
            self.refetch(source, "a token named a key the gateway does not have").await;
        }
        true
    }

    /// The periodic fetch, whatever the minimum interval.
    async fn refresh(&self) {
        let Some(source) = &self.source else { return };
        let _flight = source.flight.lock().await;
        self.refetch(source, "periodic refresh").await;
    }

    /// Fetches the JWKS and swaps the new keys in; on failure the keys stay as they were.
    async fn refetch(&self, source: &Source, reason: &'static str) {
        let location = source.location.as_str();
        let fetched = match jwks::read_jwks(location).await {
            Ok(text) => jwks::parse_jwks(&text, location).map(|keys| (text, keys)),
            Err(e) => Err(e),
        };
        *source.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        match fetched {
            Ok((text, keys)) => self.replace(text, keys, location, reason),
            Err(e) => tracing::warn!(
                jwks = location,
                reason,
                error = format!("{e:#}"),
                check = what_to_check(location),
                "cannot refetch the issuer's keys; the keys fetched before stay in use"
            ),
        }
    }

    fn replace(&self, text: String, keys: Vec<VerifyKey>, location: &str, reason: &'static str) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.text == text {
            tracing::debug!(jwks = location, reason, "the issuer's keys are unchanged");
            return;
        }
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
        tracing::info!(jwks = location, reason, kids = ?kids, "the issuer's keys changed");
        *current = Arc::new(Keys { keys, generation: current.generation + 1, text });
    }
}

/// Where an operator looks when a refetch fails.
fn what_to_check(location: &str) -> &'static str {
    if jwks::is_url(location) {
        "that the --jwks URL answers from this host (DNS, TLS, proxy, the issuer up) with a JWK Set holding RS256 \
         or ES256 signing keys"
    } else {
        "that the --jwks file exists, is readable by the gateway and is a JWK Set holding RS256 or ES256 signing keys"
    }
}

/// Refreshes the set every `every` while it exists.
fn spawn_refresh(set: Weak<KeySet>, every: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(set) = set.upgrade() else { return };
            set.refresh().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::DevKey;
    use crate::auth::test_keys;

    /// A JWKS with one new P-256 key named `kid`.
    fn ec_jwks(kid: &str) -> String {
        let key = DevKey::generate().unwrap();
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "x": key.x, "y": key.y}]}).to_string()
    }

    #[tokio::test]
    async fn a_refetch_swaps_changed_keys_and_keeps_them_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = test_keys::write_rsa_jwks(dir.path());
        let location = path.to_str().unwrap();
        let set = KeySet::load(location, Duration::from_secs(3600), Duration::ZERO).await.unwrap();
        // The same document: the same set (and the tokens verified with it).
        assert!(set.refetch_for_unknown_key().await);
        assert_eq!(set.current().generation, 0);
        std::fs::write(&path, ec_jwks("next")).unwrap();
        set.refetch_for_unknown_key().await;
        let keys = set.current();
        assert_eq!((keys.generation, keys.keys[0].kid.as_deref()), (1, Some("next")));
        for broken in ["not json", r#"{"keys": []}"#] {
            std::fs::write(&path, broken).unwrap();
            set.refetch_for_unknown_key().await;
            assert!(Arc::ptr_eq(&keys, &set.current()), "{broken}");
        }

        // A JWKS without keys stops the start; within the minimum interval, an unknown
        // key fetches nothing; fixed keys never.
        let hour = Duration::from_secs(3600);
        assert!(KeySet::load(location, hour, hour).await.is_err());
        std::fs::write(&path, ec_jwks("first")).unwrap();
        let set = KeySet::load(location, hour, hour).await.unwrap();
        std::fs::write(&path, ec_jwks("second")).unwrap();
        set.refetch_for_unknown_key().await;
        assert_eq!(set.current().keys[0].kid.as_deref(), Some("first"));
        assert!(!KeySet::fixed(Vec::new()).refetch_for_unknown_key().await);
    }

    #[tokio::test]
    async fn a_refresh_interval_of_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = test_keys::write_rsa_jwks(dir.path()).to_str().unwrap().to_string();
        let cfg = crate::config::AuthConfig {
            issuer: Some("https://idp.example".into()),
            jwks: Some(jwks),
            jwks_refresh_secs: 0,
            ..crate::config::AuthConfig::dev("unused.json")
        };
        let e = crate::auth::Authenticator::from_config(&cfg).await.unwrap_err().to_string();
        assert!(e.contains("--jwks-refresh-secs"), "{e}");
    }
}
