//! Minting tokens with the development key (`cupola token`).

use anyhow::{anyhow, bail};
use clap::builder::{PossibleValue, PossibleValuesParser};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{json, Map, Value};

use super::jwt::caller_from_claims;
use super::keys;
use super::{now_secs, Role, CHANNELS, DEV_ISSUER};
use crate::config::AuthConfig;

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The subject (`sub`).
    pub sub: String,
    pub role: Role,
    /// The organization: an id, or `Organization/{id}`.
    pub org: Option<String>,
    pub channel: Option<String>,
    /// A Patient id.
    pub patient: Option<String>,
    /// SMART scopes, space-separated.
    pub scope: String,
    /// Lifetime in seconds.
    pub ttl_secs: i64,
    pub client_id: Option<String>,
}

/// Signs a token with the development key of `cfg` (creating the key if missing).
/// Errors if an issuer is configured (cupola cannot sign for an external issuer), and
/// if the token would not pass [`Authenticator::verify`](super::Authenticator::verify).
pub fn mint(cfg: &AuthConfig, req: &TokenRequest) -> anyhow::Result<String> {
    if let Some(issuer) = &cfg.issuer {
        bail!(
            "an issuer is configured (`{issuer}`, --issuer / CUPOLA_ISSUER): cupola cannot sign tokens for it; \
             ask that issuer for a token, or unset the issuer to use the development key"
        );
    }
    if req.ttl_secs <= 0 {
        bail!("the token lifetime must be a positive number of seconds (got {})", req.ttl_secs);
    }
    let now = now_secs();
    let exp =
        now.checked_add(req.ttl_secs).ok_or_else(|| anyhow!("the token lifetime {} is too long", req.ttl_secs))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(DEV_ISSUER));
    claims.insert("aud".into(), json!(cfg.audience));
    claims.insert("sub".into(), json!(req.sub));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(exp));
    claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
    claims.insert("scope".into(), json!(req.scope));
    claims.insert("role".into(), json!(req.role.as_str()));
    if let Some(org) = &req.org {
        let org = if org.starts_with("Organization/") { org.clone() } else { format!("Organization/{org}") };
        claims.insert("org".into(), json!(org));
    }
    for (name, value) in [("channel", &req.channel), ("patient", &req.patient), ("client_id", &req.client_id)] {
        if let Some(v) = value {
            claims.insert(name.into(), json!(v));
        }
    }
    // Never sign a token the server would refuse.
    caller_from_claims(&claims, DEV_ISSUER, &cfg.audience, &Default::default(), now)
        .map_err(|e| anyhow!("cannot mint this token: {e}"))?;

    let key = keys::load_or_create_dev_key(&cfg.dev_key_file)?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &Value::Object(claims), &key.encoding_key())
        .map_err(|e| anyhow!("cannot sign the token with the development key {}: {e}", cfg.dev_key_file.display()))
}

/// Default scopes of a role (used by `cupola token` when --scope is not given).
pub fn default_scope(role: Role) -> &'static str {
    match role {
        Role::Admin => "system/*.cruds",
        Role::BookingPoint => "user/*.cruds",
        Role::Provider => "system/*.cruds",
        Role::PaymentPoint => "user/*.crus",
        Role::PatientApp => {
            "patient/*.rs patient/Appointment.cu patient/AppointmentResponse.c patient/Subscription.cud"
        }
    }
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &Role::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

/// `cupola token`: mint a bearer token signed with the development key.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The caller's role (the `role` claim).
    #[arg(long, value_enum)]
    pub role: Role,

    /// The caller's organization, an Organization id or `Organization/{id}`; required
    /// for provider, booking-point and payment-point.
    #[arg(long)]
    pub org: Option<String>,

    /// Where a booking point books (required for booking-point).
    #[arg(long, value_parser = PossibleValuesParser::new(CHANNELS.iter().copied()))]
    pub channel: Option<String>,

    /// The Patient id a patient-app acts for (required for patient-app).
    #[arg(long)]
    pub patient: Option<String>,

    /// SMART scopes, space-separated; default: the role's usual scopes (admin and
    /// provider `system/*.cruds`, booking-point `user/*.cruds`, payment-point
    /// `user/*.crus`, patient-app `patient/*.rs patient/Appointment.cu
    /// patient/AppointmentResponse.c`).
    #[arg(long)]
    pub scope: Option<String>,

    /// Lifetime of the token, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,

    /// The subject (`sub`): who calls.
    #[arg(long, default_value = "cupola-cli")]
    pub sub: String,

    /// The OAuth client (`client_id`).
    #[arg(long)]
    pub client_id: Option<String>,

    #[command(flatten)]
    pub auth: AuthConfig,
}

impl TokenArgs {
    /// The token these arguments ask for.
    pub fn request(&self) -> TokenRequest {
        TokenRequest {
            sub: self.sub.clone(),
            role: self.role,
            org: self.org.clone(),
            channel: self.channel.clone(),
            patient: self.patient.clone(),
            scope: self.scope.clone().unwrap_or_else(|| default_scope(self.role).to_string()),
            ttl_secs: self.ttl,
            client_id: self.client_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Authenticator, Interaction, Scopes};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        token: TokenArgs,
    }

    fn provider() -> TokenRequest {
        TokenRequest {
            sub: "agenda-sync".into(),
            role: Role::Provider,
            org: Some("Organization/policlinico".into()),
            channel: None,
            patient: None,
            scope: default_scope(Role::Provider).into(),
            ttl_secs: 60,
            client_id: None,
        }
    }

    #[test]
    fn default_scopes_parse() {
        for role in Role::ALL {
            let scopes = Scopes::parse(default_scope(role)).unwrap();
            assert!(scopes.allows("Slot", Interaction::Read), "{role}");
        }
        assert!(!Scopes::parse(default_scope(Role::PaymentPoint)).unwrap().allows("Invoice", Interaction::Delete));
    }

    #[tokio::test]
    async fn mint_checks_what_it_signs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuthConfig::dev(dir.path().join("dev-key.json"));
        let auth = Authenticator::from_config(&cfg).await.unwrap();
        for org in ["Organization/policlinico", "policlinico"] {
            let token = mint(&cfg, &TokenRequest { org: Some(org.into()), ..provider() }).unwrap();
            assert_eq!(auth.verify(&token).await.unwrap().org.as_deref(), Some("policlinico"));
        }
        let refused = [
            TokenRequest { org: None, ..provider() },
            TokenRequest { org: Some("bad id!".into()), ..provider() },
            TokenRequest { role: Role::BookingPoint, ..provider() },
            TokenRequest { role: Role::PatientApp, ..provider() },
            TokenRequest { scope: "user/Slot.sr".into(), ..provider() },
            TokenRequest { ttl_secs: 0, ..provider() },
            TokenRequest { sub: "".into(), ..provider() },
        ];
        for req in refused {
            let e = mint(&cfg, &req).unwrap_err();
            assert!(e.to_string().starts_with("cannot mint") || e.to_string().contains("lifetime"), "{req:?}: {e}");
        }
        let external = AuthConfig { issuer: Some("https://idp.example".into()), ..cfg.clone() };
        assert!(mint(&external, &provider()).unwrap_err().to_string().contains("cannot sign tokens"));
    }

    #[tokio::test]
    async fn token_args() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.json");
        let key = key.to_str().unwrap();
        let cli = Cli::try_parse_from([
            "token",
            "--role",
            "booking-point",
            "--org",
            "asl-roma1",
            "--channel",
            "pharmacy",
            "--dev-key-file",
            key,
        ])
        .unwrap();
        let req = cli.token.request();
        assert_eq!((req.role, req.ttl_secs, req.sub.as_str()), (Role::BookingPoint, 3600, "cupola-cli"));
        assert_eq!(req.scope, "user/*.cruds");
        let token = mint(&cli.token.auth, &req).unwrap();
        let caller = Authenticator::from_config(&cli.token.auth).await.unwrap().verify(&token).await.unwrap();
        assert_eq!(caller.channel.as_deref(), Some("pharmacy"));

        assert!(Cli::try_parse_from(["token", "--role", "nurse"]).is_err());
        assert!(Cli::try_parse_from(["token", "--role", "admin", "--channel", "fax"]).is_err());
        let cli =
            Cli::try_parse_from(["token", "--role", "admin", "--scope", "system/Slot.rs", "--ttl", "60"]).unwrap();
        assert_eq!((cli.token.request().scope.as_str(), cli.token.request().ttl_secs), ("system/Slot.rs", 60));
    }
}
