//! The claims-map file as written (`--claims-map`), and the checks that turn it into
//! a [`ClaimsMap`]: every fault named by its place in the file.

use serde::Deserialize;

use super::{ChannelRule, ClaimsMap, OrgRule, RoleRule};
use crate::auth::{Role, CHANNELS};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MapFile {
    /// Free text: JSON has no comments.
    #[allow(dead_code)]
    description: Option<String>,
    role: Option<RoleSection>,
    org: Option<OrgSection>,
    channel: Option<ChannelSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSection {
    claim: String,
    values: Vec<RoleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    value: String,
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgSection {
    claim: String,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChannelSection {
    claim: Option<String>,
    values: Option<Vec<ChannelEntry>>,
    from_role: Option<Vec<ChannelEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelEntry {
    value: String,
    channel: String,
}

impl MapFile {
    pub(super) fn check(self) -> Result<ClaimsMap, String> {
        if self.role.is_none() && self.org.is_none() && self.channel.is_none() {
            return Err("it maps nothing: give at least one of `role`, `org`, `channel`".into());
        }
        let mut map = ClaimsMap::default();
        if let Some(r) = self.role {
            map.role = r.check()?;
        }
        if let Some(o) = self.org {
            map.org = o.check()?;
        }
        if let Some(c) = self.channel {
            let role_claim = match &map.role {
                RoleRule::Table { claim, .. } => Some(claim.as_str()),
                RoleRule::Own => None,
            };
            map.channel = c.check(role_claim)?;
        }
        Ok(map)
    }
}

/// A dotted path of non-empty names.
fn claim_path(at: &str, path: &str) -> Result<String, String> {
    if path.trim().is_empty() || path.split('.').any(|n| n.trim().is_empty()) {
        return Err(format!(
            "{at}: `{path}` is not a claim: give its name, or a path of names separated by dots (`realm_access.roles`)"
        ));
    }
    Ok(path.to_string())
}

impl RoleSection {
    fn check(self) -> Result<RoleRule, String> {
        let claim = claim_path("role.claim", &self.claim)?;
        if self.values.is_empty() {
            return Err("role.values is empty: list the issuer's values and the cupola role each gives".into());
        }
        let mut values = Vec::new();
        for (i, e) in self.values.into_iter().enumerate() {
            if e.value.is_empty() {
                return Err(format!("role.values[{i}].value is empty: give the issuer's value"));
            }
            let role = e.role.parse::<Role>().map_err(|err| format!("role.values[{i}].role: {err}"))?;
            values.push((e.value, role));
        }
        Ok(RoleRule::Table { claim, values })
    }
}

impl OrgSection {
    fn check(self) -> Result<OrgRule, String> {
        let claim = claim_path("org.claim", &self.claim)?;
        if !self.prefix.is_empty() && !self.prefix.starts_with("Organization/") {
            return Err(format!(
                "org.prefix is `{}`: it must start with `Organization/` (the claim's value follows it \
                 to make `Organization/{{id}}`), or be absent when the claim holds `Organization/{{id}}`",
                self.prefix
            ));
        }
        Ok(OrgRule { claim, prefix: self.prefix })
    }
}

impl ChannelSection {
    fn check(self, role_claim: Option<&str>) -> Result<ChannelRule, String> {
        match (self.claim, self.values, self.from_role) {
            (Some(claim), values, None) => Ok(ChannelRule::Claim {
                claim: claim_path("channel.claim", &claim)?,
                values: entries("channel.values", values.unwrap_or_default())?,
            }),
            (None, None, Some(from_role)) => {
                let Some(role_claim) = role_claim else {
                    return Err("channel.fromRole maps the values of the role's claim: add a `role` section \
                                (its `claim` and `values`), or read the channel from a `claim`"
                        .into());
                };
                let values = entries("channel.fromRole", from_role)?;
                if values.is_empty() {
                    return Err("channel.fromRole is empty: list the issuer's role values and their channel".into());
                }
                Ok(ChannelRule::FromRole { role_claim: role_claim.to_string(), values })
            }
            (None, Some(_), _) => Err("channel.values needs channel.claim: the claim whose values it maps".into()),
            (None, None, None) => Err("channel: give `claim` (with optional `values`) or `fromRole`".into()),
            (Some(_), _, Some(_)) => {
                Err("channel: give either `claim` (with optional `values`) or `fromRole`, not both".into())
            }
        }
    }
}

/// Pairs of the issuer's value and one of [`CHANNELS`].
fn entries(at: &str, list: Vec<ChannelEntry>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, e) in list.into_iter().enumerate() {
        if !CHANNELS.contains(&e.channel.as_str()) {
            return Err(format!(
                "{at}[{i}].channel: unknown channel `{}`; expected one of {}",
                e.channel,
                CHANNELS.join(", ")
            ));
        }
        if e.value.is_empty() {
            return Err(format!("{at}[{i}].value is empty: give the issuer's value"));
        }
        out.push((e.value, e.channel));
    }
    Ok(out)
}
