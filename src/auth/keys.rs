//! The keys tokens are checked with: the issuer's JWKS (see `jwks`), or the
//! development key (an ES256 key in a JSON file, created on first use), here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A public key a token may be checked with.
pub(crate) struct VerifyKey {
    /// The JWK `kid`, if the key has one.
    pub kid: Option<String>,
    /// RS256 or ES256: the only algorithm this key checks.
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The development key: an ES256 (P-256) key pair.
pub(crate) struct DevKey {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// Coordinates of the public key, base64url.
    pub x: String,
    pub y: String,
    /// The private key, PKCS#8 DER.
    pkcs8: Vec<u8>,
}

/// The file format of the development key.
#[derive(Serialize, Deserialize)]
struct DevKeyFile {
    kty: String,
    crv: String,
    kid: String,
    x: String,
    y: String,
    /// The private key: PKCS#8 DER, standard base64.
    pkcs8: String,
}

impl DevKey {
    pub fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_ec_der(&self.pkcs8)
    }

    pub fn verify_key(&self) -> anyhow::Result<VerifyKey> {
        let key = DecodingKey::from_ec_components(&self.x, &self.y)
            .map_err(|e| anyhow!("the public development key cannot be used: {e}"))?;
        Ok(VerifyKey { kid: Some(self.kid.clone()), alg: Algorithm::ES256, key })
    }

    /// A new random key.
    pub(super) fn generate() -> anyhow::Result<DevKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("cannot generate a P-256 key (no system randomness?)"))?;
        DevKey::from_pkcs8(pkcs8.as_ref().to_vec()).map_err(|e| anyhow!("the generated P-256 key is unusable: {e}"))
    }

    /// The key pair of a PKCS#8 document, with the coordinates and thumbprint of its
    /// public key.
    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<DevKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &SystemRandom::new())
            .map_err(|e| format!("the private key is not a PKCS#8 P-256 key: {e}"))?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err("the public key is not an uncompressed P-256 point".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let kid = ec_thumbprint(&x, &y);
        Ok(DevKey { kid, x, y, pkcs8 })
    }

    fn to_json(&self) -> anyhow::Result<String> {
        let file = DevKeyFile {
            kty: "EC".into(),
            crv: "P-256".into(),
            kid: self.kid.clone(),
            x: self.x.clone(),
            y: self.y.clone(),
            pkcs8: STANDARD.encode(&self.pkcs8),
        };
        Ok(serde_json::to_string_pretty(&file)? + "\n")
    }

    fn from_json(text: &str) -> Result<DevKey, String> {
        let file: DevKeyFile = serde_json::from_str(text).map_err(|e| format!("not the expected JSON: {e}"))?;
        if file.kty != "EC" || file.crv != "P-256" {
            return Err(format!("`kty` is `{}` and `crv` `{}`, not `EC` and `P-256`", file.kty, file.crv));
        }
        let pkcs8 = STANDARD.decode(file.pkcs8.trim()).map_err(|e| format!("`pkcs8` is not base64: {e}"))?;
        let key = DevKey::from_pkcs8(pkcs8)?;
        if key.x != file.x || key.y != file.y {
            return Err("`x` and `y` are not the public key of `pkcs8`".into());
        }
        if file.kid.is_empty() {
            return Err("`kid` is empty".into());
        }
        Ok(DevKey { kid: file.kid, ..key })
    }
}

/// The RFC 7638 JWK thumbprint of a P-256 public key.
fn ec_thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The development key of `path`, created (mode 0600) if the file does not exist.
/// Processes starting at once agree on one key: the new key is written to a temporary
/// file, then linked to `path` only if no other process got there first (otherwise
/// that process's key is read).
pub(crate) fn load_or_create_dev_key(path: &Path) -> anyhow::Result<DevKey> {
    if let Some(key) = read_dev_key(path)? {
        return Ok(key);
    }
    let key = DevKey::generate()?;
    if publish(path, &key.to_json()?)? {
        tracing::info!(file = %path.display(), kid = %key.kid, "created the development key");
        return Ok(key);
    }
    // Another process created the file meanwhile: use its key. It may still be writing
    // it if the file system could not link (see `publish`); give it a moment.
    let mut attempts = 0;
    loop {
        match read_dev_key(path) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => bail!("the development key file {} disappeared while it was being created", path.display()),
            Err(e) if attempts >= 20 => return Err(e),
            Err(_) => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// The key in `path`; `None` if there is no such file.
fn read_dev_key(path: &Path) -> anyhow::Result<Option<DevKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("cannot read the development key file {}: {e}", path.display()),
    };
    let key = DevKey::from_json(&text).map_err(|reason| {
        anyhow!(
            "the development key file {} is corrupt ({reason}); delete it and cupola will create a new one \
             (tokens signed with the old key will no longer be accepted)",
            path.display()
        )
    })?;
    warn_if_readable_by_others(path);
    Ok(Some(key))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the development key file can be read by other users; `chmod 600` it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Writes `json` to `path` (mode 0600) unless the file exists: `Ok(false)` then.
fn publish(path: &Path, json: &str) -> anyhow::Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cannot = |e: &dyn std::fmt::Display| anyhow!("cannot create the development key file {}: {e}", path.display());
    std::fs::create_dir_all(&dir).map_err(|e| cannot(&e))?;
    // The temporary file is created with mode 0600, written and synced, then linked
    // to `path` without replacing it.
    let mut tmp =
        tempfile::Builder::new().prefix(".cupola-dev-key").suffix(".tmp").tempfile_in(&dir).map_err(|e| cannot(&e))?;
    set_private(tmp.path()).map_err(|e| cannot(&e))?;
    tmp.write_all(json.as_bytes()).and_then(|()| tmp.as_file().sync_all()).map_err(|e| cannot(&e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            // A file system without links (the temporary file is removed on drop):
            // create the file directly, exclusively.
            drop(e.file);
            create_new(path, json).map_err(|e| cannot(&e))
        }
    }
}

fn create_new(path: &Path, json: &str) -> std::io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    file.write_all(json.as_bytes())?;
    file.sync_all()?;
    Ok(true)
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn dev_key_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dev-key.json");
        let first = load_or_create_dev_key(&path).unwrap();
        let again = load_or_create_dev_key(&path).unwrap();
        assert_eq!(first.kid, again.kid);
        assert_eq!(first.x, again.x);
        assert_eq!(first.pkcs8, again.pkcs8);
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["kty"], "EC");
        assert_eq!(json["crv"], "P-256");
        assert_eq!(json["kid"].as_str(), Some(first.kid.as_str()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dev-key.json")]);
    }

    #[test]
    fn concurrent_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-key.json");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    load_or_create_dev_key(&path).unwrap().kid
                })
            })
            .collect();
        let kids: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
        assert_eq!(load_or_create_dev_key(&path).unwrap().kid, kids[0]);
    }

    #[test]
    fn corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-key.json");
        for text in ["not json", r#"{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA","pkcs8":"AAAA"}"#] {
            std::fs::write(&path, text).unwrap();
            let e = load_or_create_dev_key(&path).err().unwrap().to_string();
            assert!(e.contains(&path.display().to_string()) && e.contains("delete it"), "{e}");
        }
        // A key whose public part does not match its private part.
        let a = DevKey::generate().unwrap();
        let b = DevKey::generate().unwrap();
        let mixed = DevKey { kid: a.kid.clone(), x: b.x.clone(), y: b.y.clone(), pkcs8: a.pkcs8.clone() };
        std::fs::write(&path, mixed.to_json().unwrap()).unwrap();
        let e = load_or_create_dev_key(&path).err().unwrap().to_string();
        assert!(e.contains("corrupt") && e.contains("`x` and `y`"), "{e}");
    }
}
