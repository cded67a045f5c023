//! SMART App Launch discovery: `GET /fhir/.well-known/smart-configuration`, and the
//! `oauth-uris` extension of the CapabilityStatement. Both publish the issuer's
//! endpoints the operators' console signs in with (authorization code with PKCE,
//! standalone launch, public client).

use serde_json::{json, Value};

use crate::auth::{default_scope, Role};
use crate::config::OAuthEndpoints;
use crate::Error;

/// SMART's extension of `CapabilityStatement.rest.security` naming the endpoints.
pub const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// SMART's (v1) extension of `rest.security` listing the capabilities; v2 clients read
/// them from the discovery document, older ones from here.
pub const CAPABILITIES_EXTENSION: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities";

/// What cupola supports of SMART App Launch: the console's standalone launch as a
/// public client, user and patient scopes in both syntaxes, refresh tokens
/// (`offline_access`), a patient picked at sign-in.
pub const CAPABILITIES: &[&str] = &[
    "launch-standalone",
    "client-public",
    "context-standalone-patient",
    "permission-offline",
    "permission-user",
    "permission-patient",
    "permission-v1",
    "permission-v2",
];

/// What the gateway tells a SMART client, besides the endpoints.
pub struct Discovery<'a> {
    /// The `iss` of the tokens accepted.
    pub issuer: &'a str,
    /// The issuer's keys, when configured as a URL (a file path is no use to clients).
    pub jwks_uri: Option<&'a str>,
    /// The FHIR base URL as clients see it; the console is served beside it.
    pub fhir_base: &'a str,
}

/// The `.well-known/smart-configuration` document.
pub fn configuration(d: &Discovery<'_>, oauth: &OAuthEndpoints) -> Value {
    let mut doc = json!({
        "issuer": d.issuer,
        "authorization_endpoint": oauth.authorize_url,
        "token_endpoint": oauth.token_url,
        "grant_types_supported": ["authorization_code"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": scopes_supported(),
        "capabilities": CAPABILITIES,
        // cupola's own: what the console needs to start the flow (a public client's
        // id is no secret) and the redirect URI the issuer must allow for it.
        "cupola_console": {"client_id": oauth.client_id, "redirect_uri": console_redirect_uri(d.fhir_base)},
    });
    if let Some(jwks) = d.jwks_uri {
        doc["jwks_uri"] = json!(jwks);
    }
    doc
}

/// The endpoints to publish; without an issuer, or without the console's sign-in,
/// there is nothing to discover: a 404 that says which flags publish it.
pub fn published(issuer: Option<&str>, oauth: Option<OAuthEndpoints>) -> Result<OAuthEndpoints, Error> {
    match (issuer, oauth) {
        (Some(_), Some(oauth)) => Ok(oauth),
        (None, _) => Err(Error::NotFound(
            "this gateway has no issuer configured, so there is no SMART sign-in to discover (it checks tokens \
             with its development key, `cupola token`): set --issuer (CUPOLA_ISSUER) and --jwks (CUPOLA_JWKS) to \
             the identity provider's, and --oauth-client-id, --authorize-url and --token-url to publish its endpoints"
                .into(),
        )),
        (Some(issuer), None) => Err(Error::NotFound(format!(
            "the issuer `{issuer}` is configured but not its endpoints: set --oauth-client-id, --authorize-url \
             and --token-url (CUPOLA_OAUTH_CLIENT_ID, CUPOLA_AUTHORIZE_URL, CUPOLA_TOKEN_URL) to publish them here"
        ))),
    }
}

/// `https://gw/fhir` → `https://gw/console/`: the console is served beside the FHIR base.
pub fn console_redirect_uri(fhir_base: &str) -> String {
    let base = fhir_base.trim_end_matches('/');
    format!("{}/console/", base.strip_suffix("/fhir").unwrap_or(base))
}

/// OpenID Connect and SMART launch scopes, and the resource scopes of the roles that
/// sign in interactively (not `system/`, which is for backend services).
fn scopes_supported() -> Vec<String> {
    let mut scopes: Vec<String> =
        ["openid", "fhirUser", "launch/patient", "offline_access"].iter().map(|s| s.to_string()).collect();
    for role in Role::ALL {
        for s in default_scope(role).split_whitespace().filter(|s| !s.starts_with("system/")) {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_string());
            }
        }
    }
    scopes
}

/// The extensions of `rest.security`: SMART's `oauth-uris` (the issuer's endpoints)
/// and `capabilities`.
pub fn security_extensions(oauth: &OAuthEndpoints) -> Value {
    let capabilities: Vec<Value> =
        CAPABILITIES.iter().map(|c| json!({"url": CAPABILITIES_EXTENSION, "valueCode": c})).collect();
    let mut extensions = vec![json!({"url": OAUTH_URIS, "extension": [
        {"url": "authorize", "valueUri": oauth.authorize_url},
        {"url": "token", "valueUri": oauth.token_url}
    ]})];
    extensions.extend(capabilities);
    json!(extensions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_lives_beside_the_fhir_base() {
        assert_eq!(console_redirect_uri("https://cup.example.it/fhir"), "https://cup.example.it/console/");
        assert_eq!(console_redirect_uri("https://cup.example.it/fhir/"), "https://cup.example.it/console/");
        assert_eq!(console_redirect_uri("https://x.it/cup/api"), "https://x.it/cup/api/console/");
        let scopes = scopes_supported();
        assert!(scopes.contains(&"user/*.cruds".to_string()) && !scopes.iter().any(|s| s.starts_with("system/")));
    }
}
