//! The RSA key of the unit tests, generated once per test process: no key is ever
//! committed to the repository, not even a test one.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// The `kid` of the test RSA key in its JWK.
pub const RSA_KID: &str = "cupola-test-rsa";

struct TestRsaKey {
    pem: String,
    jwk: Value,
}

fn key() -> &'static TestRsaKey {
    static KEY: OnceLock<TestRsaKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("generate the test RSA key");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("encode the test RSA key as PKCS#8 PEM").to_string();
        let jwk = json!({
            "kty": "RSA",
            "kid": RSA_KID,
            "alg": "RS256",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        TestRsaKey { pem, jwk }
    })
}

/// The private test RSA key, PKCS#8 PEM (for `EncodingKey::from_rsa_pem`).
pub fn rsa_private_pem() -> &'static [u8] {
    key().pem.as_bytes()
}

/// The public test RSA key as a JWK (`kid` [`RSA_KID`], RS256, `use` `sig`).
pub fn rsa_public_jwk() -> &'static Value {
    &key().jwk
}

/// The JWK Set `{"keys": [the public test RSA key]}`.
pub fn rsa_jwks() -> Value {
    json!({ "keys": [rsa_public_jwk()] })
}

/// Writes [`rsa_jwks`] to `rsa-jwks.json` in `dir`, and returns the path of the file.
pub fn write_rsa_jwks(dir: &Path) -> PathBuf {
    let path = dir.join("rsa-jwks.json");
    std::fs::write(&path, rsa_jwks().to_string()).expect("write the test JWKS file");
    path
}
