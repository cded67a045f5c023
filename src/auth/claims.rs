//! Who the caller is in the CUP — role, organisation, channel, patient — from the
//! claims of a verified token: cupola's own claims (`role`, `org`, `channel`,
//! `patient`), or the issuer's claims through a claims map (`--claims-map`, a JSON
//! file; `mappings/auth/claims-keycloak.json` is an example).
//!
//! The file has up to three sections; one that is absent keeps cupola's own claim:
//!
//! ```json
//! {
//!   "role": {"claim": "realm_access.roles",
//!            "values": [{"value": "cup-sportello", "role": "booking-point"}]},
//!   "org": {"claim": "org_code", "prefix": "Organization/"},
//!   "channel": {"fromRole": [{"value": "cup-sportello", "channel": "counter"}]}
//! }
//! ```
//!
//! A claim is named by a path of names separated by dots into nested objects; a
//! top-level claim whose own name has dots (`https://cup.example.it/org`) is found
//! first. The role's claim may hold a string or an array of strings: the first entry
//! of `values`, in the file's order, that the token holds gives the role.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Map, Value};

use super::{AuthError, Role, CHANNELS};
use crate::fhir::types::is_valid_id;

/// How the caller's role, organisation and channel are read from a token.
#[derive(Debug, Clone)]
pub(crate) struct ClaimsMap {
    role: RoleRule,
    org: OrgRule,
    channel: ChannelRule,
}

/// What a token says of its caller, besides its subject and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub role: Role,
    pub org: Option<String>,
    pub channel: Option<String>,
    pub patient: Option<String>,
}

#[derive(Debug, Clone)]
enum RoleRule {
    /// cupola's `role` claim, one of the role names.
    Own,
    /// The issuer's values of `claim`, through a table kept in the file's order.
    Table { claim: String, values: Vec<(String, Role)> },
}

/// The value of `claim`, with `prefix` before it, is `Organization/{id}`.
#[derive(Debug, Clone)]
struct OrgRule {
    claim: String,
    prefix: String,
}

#[derive(Debug, Clone)]
enum ChannelRule {
    /// The value of `claim`: one of [`CHANNELS`], or a key of `values` when it has any.
    Claim { claim: String, values: Vec<(String, String)> },
    /// The first entry of the table whose value the role's claim holds.
    FromRole { role_claim: String, values: Vec<(String, String)> },
}

impl Default for ClaimsMap {
    /// cupola's own claims, as they are without a claims map.
    fn default() -> ClaimsMap {
        ClaimsMap {
            role: RoleRule::Own,
            org: OrgRule { claim: "org".into(), prefix: String::new() },
            channel: ChannelRule::Claim { claim: "channel".into(), values: Vec::new() },
        }
    }
}

impl ClaimsMap {
    /// Reads and checks a claims-map file; the error names the file and what to fix.
    pub(crate) fn load(path: &Path) -> anyhow::Result<ClaimsMap> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the claims map {} (--claims-map)", path.display()))?;
        let map = ClaimsMap::parse(&text).map_err(|e| anyhow::anyhow!("claims map {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "the issuer's claims are mapped to cupola's role, organisation and channel");
        Ok(map)
    }

    /// A claims map from its JSON text.
    pub(crate) fn parse(text: &str) -> Result<ClaimsMap, String> {
        let file: file::MapFile = serde_json::from_str(text).map_err(|e| format!("not a claims map: {e}"))?;
        file.check()
    }

    /// The caller's role, organisation, channel and patient, with what its role needs.
    pub(crate) fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, AuthError> {
        let role = self.role(claims)?;
        let org = self.org(claims)?;
        let channel = self.channel(claims)?;
        let patient = patient_claim(claims)?;
        let id = Identity { role, org, channel, patient };
        self.check_role_needs(&id)?;
        Ok(id)
    }

    fn role(&self, claims: &Map<String, Value>) -> Result<Role, AuthError> {
        let (claim, table) = match &self.role {
            RoleRule::Own => return own_role(claims),
            RoleRule::Table { claim, values } => (claim, values),
        };
        let held = values_of(claims, claim)?;
        let expected = table.iter().map(|(v, _)| format!("`{v}`")).collect::<Vec<_>>().join(", ");
        if held.is_empty() {
            return Err(AuthError::claim(
                claim,
                format!("missing; the caller's role is read from it (--claims-map), one of {expected}"),
            ));
        }
        table.iter().find(|(v, _)| held.contains(&v.as_str())).map(|(_, r)| *r).ok_or_else(|| {
            let held = held.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
            AuthError::claim(
                claim,
                format!("{held}: no value maps to a cupola role; expected one of {expected} (--claims-map)"),
            )
        })
    }

    fn org(&self, claims: &Map<String, Value>) -> Result<Option<String>, AuthError> {
        let OrgRule { claim, prefix } = &self.org;
        let Some(v) = string_at(claims, claim)? else { return Ok(None) };
        let full = format!("{prefix}{v}");
        match full.strip_prefix("Organization/") {
            Some(id) if is_valid_id(id) => Ok(Some(id.to_string())),
            _ => {
                let given = if prefix.is_empty() { format!("`{v}`") } else { format!("`{v}` (`{full}`)") };
                Err(AuthError::claim(
                    claim,
                    format!("{given} is not `Organization/{{id}}` (an id is 1 to 64 letters, digits, `-` or `.`)"),
                ))
            }
        }
    }

    fn channel(&self, claims: &Map<String, Value>) -> Result<Option<String>, AuthError> {
        match &self.channel {
            ChannelRule::Claim { claim, values } => {
                let Some(c) = string_at(claims, claim)? else { return Ok(None) };
                if values.is_empty() {
                    return match CHANNELS.contains(&c) {
                        true => Ok(Some(c.to_string())),
                        false => Err(AuthError::claim(
                            claim,
                            format!("unknown channel `{c}`; expected one of {}", CHANNELS.join(", ")),
                        )),
                    };
                }
                let found = values.iter().find(|(v, _)| v == c).map(|(_, ch)| ch.clone());
                found.map(Some).ok_or_else(|| {
                    let expected: Vec<String> = values.iter().map(|(v, _)| format!("`{v}`")).collect();
                    let reason =
                        format!("unknown channel `{c}`; expected one of {} (--claims-map)", expected.join(", "));
                    AuthError::claim(claim, reason)
                })
            }
            ChannelRule::FromRole { role_claim, values } => {
                let held = values_of(claims, role_claim)?;
                Ok(values.iter().find(|(v, _)| held.contains(&v.as_str())).map(|(_, ch)| ch.clone()))
            }
        }
    }

    /// What a role's token must name besides: its organization, its channel, its patient.
    fn check_role_needs(&self, id: &Identity) -> Result<(), AuthError> {
        let role = id.role;
        if matches!(role, Role::Provider | Role::BookingPoint | Role::PaymentPoint) && id.org.is_none() {
            return Err(AuthError::claim(
                &self.org.claim,
                format!("missing; a {role} token must name its organization (`Organization/{{id}}`)"),
            ));
        }
        if role == Role::BookingPoint && id.channel.is_none() {
            let wants = format!("a booking-point token must say where it books, one of {}", CHANNELS.join(", "));
            return Err(match &self.channel {
                ChannelRule::Claim { claim, .. } => AuthError::claim(claim, format!("missing; {wants}")),
                ChannelRule::FromRole { role_claim, .. } => AuthError::claim(
                    role_claim,
                    format!("no value gives a channel (`channel.fromRole` of --claims-map); {wants}"),
                ),
            });
        }
        if role == Role::PatientApp && id.patient.is_none() {
            return Err(AuthError::claim(
                "patient",
                "missing; a patient-app token must name its patient (a Patient id)",
            ));
        }
        Ok(())
    }
}

/// cupola's `role` claim.
fn own_role(claims: &Map<String, Value>) -> Result<Role, AuthError> {
    let role_list = Role::ALL.map(|r| r.as_str()).join(", ");
    str_claim(claims, "role")?
        .ok_or_else(|| {
            AuthError::claim("role", format!("missing; cupola needs the caller's role, one of {role_list}"))
        })?
        .parse::<Role>()
        .map_err(|e| AuthError::claim("role", e))
}

/// `patient`: a Patient id, if given.
fn patient_claim(claims: &Map<String, Value>) -> Result<Option<String>, AuthError> {
    match str_claim(claims, "patient")? {
        None => Ok(None),
        Some(p) if is_valid_id(p) => Ok(Some(p.to_string())),
        Some(p) => Err(AuthError::claim(
            "patient",
            format!("`{p}` is not a Patient id (1 to 64 letters, digits, `-` or `.`, without `Patient/`)"),
        )),
    }
}

/// A top-level string claim; `None` if absent or null.
pub(super) fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::claim(name, "must be a string")),
    }
}

/// The claim at a dotted path: a top-level claim of that very name first (namespaced
/// claims have dots in their names), else the path through nested objects.
fn at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut names = path.split('.');
    let mut value = claims.get(names.next()?)?;
    for name in names {
        value = value.as_object()?.get(name)?;
    }
    Some(value)
}

/// A string claim at a dotted path; `None` if absent or null.
fn string_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Result<Option<&'a str>, AuthError> {
    match at(claims, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::claim(path, "must be a string")),
    }
}

/// The values of a claim at a dotted path that holds a string or an array of strings.
fn values_of<'a>(claims: &'a Map<String, Value>, path: &str) -> Result<Vec<&'a str>, AuthError> {
    let bad = || AuthError::claim(path, "must be a string or an array of strings");
    match at(claims, path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
        Some(_) => Err(bad()),
    }
}

/// The file as written, and its checks.
mod file;

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
