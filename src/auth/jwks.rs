//! The issuer's keys: its JWKS (a file, or an `http(s)://` URL), of which the RS256
//! and ES256 signing keys are kept; `keyset` fetches it again when needed.

use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::keys::VerifyKey;

/// The text of a JWKS: a file path, or an `http(s)://` URL fetched now.
pub(crate) async fn read_jwks(source: &str) -> anyhow::Result<String> {
    if is_url(source) {
        fetch(source).await.with_context(|| format!("cannot fetch the JWKS {source}"))
    } else {
        tokio::fs::read_to_string(source).await.with_context(|| format!("cannot read the JWKS file {source}"))
    }
}

/// Whether `--jwks` is a URL (else a file path).
pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

async fn fetch(url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let response = client.get(url).header("accept", "application/json").send().await?.error_for_status()?;
    Ok(response.text().await?)
}

/// The RS256 and ES256 signing keys of a JWKS document; keys for other algorithms,
/// curves or uses are skipped.
pub(crate) fn parse_jwks(text: &str, source: &str) -> anyhow::Result<Vec<VerifyKey>> {
    let doc: Value = serde_json::from_str(text).with_context(|| format!("the JWKS {source} is not JSON"))?;
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        bail!("the JWKS {source} is not a JWK Set (a JSON object with a `keys` array)");
    };
    let mut out = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        match verify_key(jwk) {
            Ok(Some(key)) => out.push(key),
            Ok(None) => tracing::debug!(jwks = source, key = i, "JWKS key skipped: not an RS256/ES256 signing key"),
            Err(e) => tracing::warn!(jwks = source, key = i, "JWKS key skipped: {e}"),
        }
    }
    if out.is_empty() {
        bail!("the JWKS {source} has no RS256 or ES256 signing key");
    }
    Ok(out)
}

/// One JWK as a key for RS256 or ES256; `None` for any other key.
fn verify_key(jwk: &Value) -> Result<Option<VerifyKey>, String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array) {
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Ok(None);
        }
    }
    let kid = field("kid").map(str::to_string);
    let alg = field("alg");
    let component = |name: &str| -> Result<&str, String> {
        let v = field(name).ok_or_else(|| format!("`{name}` is missing"))?;
        URL_SAFE_NO_PAD.decode(v).map_err(|e| format!("`{name}` is not base64url: {e}"))?;
        Ok(v)
    };
    match field("kty") {
        Some("RSA") if alg.is_none() || alg == Some("RS256") => {
            let (n, e) = (component("n")?, component("e")?);
            let modulus = URL_SAFE_NO_PAD.decode(n).unwrap_or_default();
            let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(format!("the RSA key has about {bits} bits; keys shorter than 2048 bits are refused"));
            }
            let key = DecodingKey::from_rsa_components(n, e).map_err(|e| e.to_string())?;
            Ok(Some(VerifyKey { kid, alg: Algorithm::RS256, key }))
        }
        Some("EC") if field("crv") == Some("P-256") && (alg.is_none() || alg == Some("ES256")) => {
            let (x, y) = (component("x")?, component("y")?);
            let len = |c: &str| URL_SAFE_NO_PAD.decode(c).map(|b| b.len()).unwrap_or(0);
            if len(x) != 32 || len(y) != 32 {
                return Err("`x` and `y` of a P-256 key must be 32 bytes each".into());
            }
            let key = DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?;
            Ok(Some(VerifyKey { kid, alg: Algorithm::ES256, key }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::DevKey;

    #[test]
    fn jwks_keeps_only_rs256_and_es256_signing_keys() {
        let dev = DevKey::generate().unwrap();
        let jwks = serde_json::json!({ "keys": [
            crate::auth::test_keys::rsa_public_jwk(),
            { "kty": "EC", "crv": "P-256", "kid": "ec", "x": dev.x, "y": dev.y },
            { "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": dev.x, "y": dev.y },
            { "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA" },
            { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
            { "kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB" },
            { "kty": "EC", "crv": "P-256", "kid": "short", "x": "AA", "y": "AA" },
            { "kty": "RSA", "kid": "rsa-1024", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128]), "e": "AQAB" },
        ]});
        let keys = parse_jwks(&jwks.to_string(), "test").unwrap();
        let kids: Vec<_> = keys.iter().map(|k| (k.kid.clone().unwrap_or_default(), k.alg)).collect();
        assert_eq!(kids, vec![("cupola-test-rsa".to_string(), Algorithm::RS256), ("ec".to_string(), Algorithm::ES256)]);
        assert!(parse_jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#, "x").is_err());
        assert!(parse_jwks(r#"{"kty":"EC"}"#, "x").is_err());
    }
}
