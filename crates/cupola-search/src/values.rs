//! Parsing of one search value (one OR alternative) into a [`Cond`], per parameter
//! type and modifier.

use crate::convert::split_reference;
use crate::numbers::search_number;
use crate::query::{Cond, Prefix, SystemMatch};
use crate::registry::{ParamKind, RESOURCE_TYPES};
use crate::text::{normalize, split_unescaped, unescape};
use cupola_types::dates::parse_range;

/// Splits a leading prefix (`ge2020`, `lt5.4`); `eq` when there is none.
pub(crate) fn split_prefix(v: &str) -> (Prefix, &str) {
    const PREFIXES: [(&str, Prefix); 9] = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ];
    for (p, prefix) in PREFIXES {
        if let Some(rest) = v.strip_prefix(p) {
            return (prefix, rest);
        }
    }
    (Prefix::Eq, v)
}

pub(crate) fn date(v: &str) -> Result<Cond, String> {
    let (prefix, rest) = split_prefix(v);
    let r = parse_range(rest).map_err(|e| format!("invalid date '{v}': {e}"))?;
    let (mut lo, mut hi) = (r.lo, r.hi);
    if prefix == Prefix::Ap {
        let gap = (chrono::Utc::now().timestamp_micros().saturating_sub(lo)).unsigned_abs() / 10;
        let gap = i64::try_from(gap).unwrap_or(i64::MAX);
        lo = lo.saturating_sub(gap);
        hi = hi.saturating_add(gap);
    }
    Ok(Cond::Date { prefix, lo, hi })
}

pub(crate) fn number(v: &str) -> Result<Cond, String> {
    let (prefix, rest) = split_prefix(v);
    let n = search_number(rest).ok_or_else(|| format!("invalid number '{v}'"))?;
    Ok(Cond::Number { prefix, n })
}

pub(crate) fn quantity(v: &str) -> Result<Cond, String> {
    let parts = split_unescaped(v, '|');
    let (num, system, code) = match parts.as_slice() {
        [n] => (n.as_str(), None, None),
        [n, s, c] => {
            let opt = |x: &String| Some(unescape(x)).filter(|x| !x.is_empty());
            (n.as_str(), opt(s), opt(c))
        }
        _ => return Err(format!("invalid quantity '{v}': expected number or number|system|code")),
    };
    let (prefix, rest) = split_prefix(num);
    let n = search_number(rest).ok_or_else(|| format!("invalid quantity '{v}': bad number"))?;
    Ok(Cond::Quantity { prefix, n, system, code })
}

pub(crate) fn token(v: &str) -> Result<Cond, String> {
    let parts = split_unescaped(v, '|');
    match parts.as_slice() {
        [code] => Ok(Cond::Token { system: SystemMatch::Any, code: Some(unescape(code)) }),
        [system, code] => {
            let (system, code) = (unescape(system), unescape(code));
            match (system.is_empty(), code.is_empty()) {
                (true, true) => Err(format!("invalid token '{v}'")),
                (true, false) => Ok(Cond::Token { system: SystemMatch::Null, code: Some(code) }),
                (false, true) => Ok(Cond::Token { system: SystemMatch::Is(system), code: None }),
                (false, false) => Ok(Cond::Token { system: SystemMatch::Is(system), code: Some(code) }),
            }
        }
        _ => Err(format!("invalid token '{v}': more than one '|'")),
    }
}

pub(crate) fn string(v: &str, modifier: Option<&str>) -> Result<Cond, String> {
    let raw = unescape(v);
    Ok(match modifier {
        None => Cond::StrPrefix(normalize(&raw)),
        Some("exact") => Cond::StrExact(raw),
        Some("contains") => Cond::StrContains(normalize(&raw)),
        Some(m) => return Err(format!("unsupported modifier ':{m}' for a string parameter")),
    })
}

pub(crate) fn uri(v: &str, modifier: Option<&str>) -> Result<Cond, String> {
    let u = unescape(v);
    Ok(match modifier {
        None => Cond::Uri(u),
        Some("below") => Cond::UriBelow(u),
        Some("above") => {
            let floor = u.find("://").map_or(0, |p| p + 3);
            let mut prefixes = vec![u.clone()];
            let mut cur = u.trim_end_matches('/');
            while let Some(p) = cur.rfind('/').filter(|p| *p > floor) {
                cur = &cur[..p];
                prefixes.push(cur.to_string());
            }
            Cond::UriAbove(prefixes)
        }
        Some(m) => return Err(format!("unsupported modifier ':{m}' for a uri parameter")),
    })
}

/// A reference value; `type_modifier` is `:Type` when given.
pub(crate) fn reference(v: &str, modifier: Option<&str>, targets: &[String]) -> Result<Cond, String> {
    let raw = unescape(v);
    if modifier == Some("identifier") {
        return match token(v)? {
            Cond::Token { system, code } => {
                let system = match system {
                    SystemMatch::Is(s) => Some(s),
                    _ => None,
                };
                Ok(Cond::RefIdentifier { system, value: code })
            }
            _ => Err(format!("invalid identifier '{v}'")),
        };
    }
    let type_modifier = match modifier {
        None => None,
        Some(t) if RESOURCE_TYPES.contains(&t) || targets.iter().any(|x| x == t) => Some(t.to_string()),
        Some(m) => return Err(format!("unsupported modifier ':{m}' for a reference parameter")),
    };
    if raw.contains("://") || raw.starts_with("urn:") {
        let target = match split_reference(&raw) {
            (Some(t), Some(i)) => Some((t, i)),
            _ => None,
        };
        return Ok(Cond::RefUrl { url: raw, target });
    }
    if raw.contains('/') {
        let (Some(t), Some(id)) = split_reference(&raw) else {
            return Err(format!("invalid reference '{v}'"));
        };
        if type_modifier.as_ref().is_some_and(|m| *m != t) {
            return Err(format!("reference '{v}' does not match the type modifier"));
        }
        return Ok(Cond::Ref { target_type: Some(t), id });
    }
    if raw.is_empty() || raw.len() > 64 || !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(format!("invalid reference id '{v}'"));
    }
    Ok(Cond::Ref { target_type: type_modifier, id: raw })
}

/// A value of a composite component of type `kind`.
pub(crate) fn component(kind: ParamKind, v: &str) -> Result<Cond, String> {
    match kind {
        ParamKind::Token => token(v),
        ParamKind::Quantity => quantity(v),
        ParamKind::Date => date(v),
        ParamKind::Number => number(v),
        ParamKind::String => string(v, None),
        ParamKind::Uri => uri(v, None),
        ParamKind::Reference => reference(v, None, &[]),
        ParamKind::Composite | ParamKind::Special => Err("unsupported composite component".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_above_prefixes() {
        let Ok(Cond::UriAbove(p)) = uri("http://a.org/fhir/ValueSet/x", Some("above")) else { panic!("above") };
        assert_eq!(
            p,
            vec!["http://a.org/fhir/ValueSet/x", "http://a.org/fhir/ValueSet", "http://a.org/fhir", "http://a.org"]
        );
    }

    #[test]
    fn tokens() {
        assert_eq!(token("a|b"), Ok(Cond::Token { system: SystemMatch::Is("a".into()), code: Some("b".into()) }));
        assert_eq!(token("|b"), Ok(Cond::Token { system: SystemMatch::Null, code: Some("b".into()) }));
        assert_eq!(token("a|"), Ok(Cond::Token { system: SystemMatch::Is("a".into()), code: None }));
        assert_eq!(token("a\\|b"), Ok(Cond::Token { system: SystemMatch::Any, code: Some("a|b".into()) }));
        assert!(token("a|b|c").is_err());
        assert!(token("|").is_err());
    }
}
