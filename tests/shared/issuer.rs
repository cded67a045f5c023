//! An identity provider's signing key for the tests: an ES256 key made as
//! `cupola token` makes one, its JWKS written to a file the gateway reads
//! (`--jwks`), and tokens signed with it. Shared by the API tests and the console's
//! (each test binary includes this file as a module of its own).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

pub struct TestIssuer {
    pub kid: String,
    der: Vec<u8>,
    /// The JWKS file: `{"keys": [the public key]}`.
    pub jwks: PathBuf,
}

impl TestIssuer {
    /// A new key, its files in `dir`.
    pub fn new(dir: &Path) -> TestIssuer {
        let key_file = dir.join("issuer-key.json");
        let req = cupola::auth::TokenRequest {
            sub: "x".into(),
            role: cupola::auth::Role::Admin,
            org: None,
            channel: None,
            patient: None,
            scope: "system/*.rs".into(),
            ttl_secs: 60,
            client_id: None,
        };
        // `cupola token` creates a key where none is: that key becomes the issuer's.
        cupola::auth::mint(&cupola::config::AuthConfig::dev(&key_file), &req).expect("issuer key");
        let key: Value = serde_json::from_slice(&std::fs::read(&key_file).expect("key")).expect("json");
        let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": key["kid"], "x": key["x"], "y": key["y"]});
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).expect("jwks");
        let der = base64::engine::general_purpose::STANDARD.decode(key["pkcs8"].as_str().expect("pkcs8")).expect("der");
        TestIssuer { kid: key["kid"].as_str().expect("kid").to_string(), der, jwks }
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ec_der(&self.der)).expect("sign")
    }
}
