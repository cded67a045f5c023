//! Who is calling: OAuth 2.0 bearer tokens (JWT, RS256 or ES256) checked against the
//! keys of the configured issuer, or — without an issuer — against cupola's own
//! development key, which `cupola token` uses to mint tokens.
//!
//! - [`Authenticator`] checks a token and yields the [`Caller`] it describes;
//! - [`Scopes`] are the SMART on FHIR scopes (v1 and v2) the token grants;
//! - [`mint`] signs a token with the development key.
//!
//! The claims cupola reads: `iss`, `aud` (string or array), `sub`, `exp`, `nbf`, `iat`,
//! `scope` (space-separated), SMART `patient` (a Patient id), and cupola's own `role`,
//! `org` (`Organization/{id}`), `channel`, plus the optional `client_id` / `azp`; or,
//! with a claims map (`--claims-map`, see `claims`), the issuer's own claims for the
//! role, organisation and channel.

mod claims;
mod jwks;
mod jwt;
mod keys;
mod keyset;
mod mint;
mod scopes;
#[cfg(test)]
mod test_keys;

use std::fmt;
use std::str::FromStr;

pub use jwt::Authenticator;
pub use mint::{default_scope, mint, TokenArgs, TokenRequest};
pub use scopes::Scopes;

/// The issuer (`iss`) of the tokens signed with the development key.
pub const DEV_ISSUER: &str = "cupola-dev";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;

/// The values of the `channel` claim: where a booking point serves its public.
pub const CHANNELS: &[&str] = &["counter", "call-centre", "pharmacy", "gp-office", "clinic", "web", "kiosk"];

/// What a caller is, in the CUP (the `role` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A booking point (counter, call centre, pharmacy, …) booking for citizens.
    BookingPoint,
    /// A provider (hospital, clinic) publishing its agendas and managing its appointments.
    Provider,
    /// A payment point collecting tickets.
    PaymentPoint,
    /// The CUP's administrators.
    Admin,
    /// A citizen's app, acting for one patient.
    PatientApp,
}

impl Role {
    /// Every role, in the order of the documentation.
    pub const ALL: [Role; 5] = [Role::BookingPoint, Role::Provider, Role::PaymentPoint, Role::Admin, Role::PatientApp];

    /// The claim value (`booking-point`, `provider`, `payment-point`, `admin`, `patient-app`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::BookingPoint => "booking-point",
            Role::Provider => "provider",
            Role::PaymentPoint => "payment-point",
            Role::Admin => "admin",
            Role::PatientApp => "patient-app",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role `{s}`; expected one of {}", known.join(", "))
        })
    }
}

/// A FHIR REST interaction, as SMART v2 permission letters name them (c, r, u, d, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

/// The caller a verified token describes.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The subject (`sub`).
    pub sub: String,
    /// The OAuth client (`client_id`, else `azp`).
    pub client_id: Option<String>,
    pub role: Role,
    /// The Organization *id* (the `org` claim without `Organization/`).
    pub org: Option<String>,
    /// Where a booking point serves (one of [`CHANNELS`]).
    pub channel: Option<String>,
    /// The Patient id of the SMART `patient` claim.
    pub patient: Option<String>,
    pub scopes: Scopes,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

impl Caller {
    /// A caller recorded earlier (a subscription's owner), acting again without a
    /// token: what it may see is decided as for its token then.
    pub fn recorded(actor: &crate::access::Actor, patient: Option<&str>, scopes: Scopes) -> Caller {
        Caller {
            sub: actor.sub.clone(),
            client_id: None,
            role: actor.role,
            org: actor.org.clone(),
            channel: actor.channel.clone(),
            patient: patient.map(str::to_string),
            scopes,
            expires_at: i64::MAX,
        }
    }
}

/// Why a bearer token is refused. Every variant is an RFC 6750 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a JWT at all (parts, base64url, JSON).
    #[error("the bearer token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// Signed with an algorithm other than RS256 / ES256 (`none`, HS256, …).
    #[error("the token is signed with `{0}`; only RS256 and ES256 tokens are accepted")]
    UnsupportedAlgorithm(String),
    /// No key of the issuer can check the token.
    #[error("{0}")]
    UnknownKey(String),
    /// The signature does not match the header and payload.
    #[error("the token's signature is not valid: it was altered or signed by another key than the issuer's")]
    BadSignature,
    /// `exp` is past.
    #[error("the token expired at {0}; ask for a new one")]
    Expired(String),
    /// `nbf` is in the future.
    #[error("the token is not valid before {0}; check the clocks of the issuer and of this client")]
    NotYetValid(String),
    /// `iss` is not the configured issuer.
    #[error("the token was issued by `{found}`, but this server accepts only tokens of `{expected}`")]
    WrongIssuer { found: String, expected: String },
    /// `aud` does not name this server.
    #[error("the token is meant for {found}, not for this server (audience `{expected}`)")]
    WrongAudience { found: String, expected: String },
    /// A claim is missing or wrong.
    #[error("claim `{claim}` of the token: {reason}")]
    InvalidClaim { claim: String, reason: String },
}

impl AuthError {
    /// The RFC 6750 error code (`WWW-Authenticate: Bearer error="…"`).
    pub fn code(&self) -> &'static str {
        "invalid_token"
    }

    pub(crate) fn claim(claim: &str, reason: impl Into<String>) -> AuthError {
        AuthError::InvalidClaim { claim: claim.to_string(), reason: reason.into() }
    }
}

/// `2026-11-26T06:00:00Z` for seconds since the epoch.
pub(crate) fn format_time(secs: i64) -> String {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => format!("{secs} (seconds since the epoch)"),
    }
}

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let e = "nurse".parse::<Role>().unwrap_err();
        assert!(e.contains("nurse") && e.contains("booking-point"), "{e}");
    }

    #[test]
    fn error_messages() {
        let e = AuthError::Expired(format_time(1_795_672_800));
        assert_eq!(e.to_string(), "the token expired at 2026-11-26T06:00:00Z; ask for a new one");
        assert_eq!(e.code(), "invalid_token");
    }
}
