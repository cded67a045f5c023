//! Conversion of one evaluated FHIRPath item into typed index values, by parameter
//! type: HumanName / Address parts, Coding / CodeableConcept / Identifier /
//! ContactPoint tokens, date / Period / Timing ranges, references and canonicals,
//! numbers, Quantity / Money / Range.

use serde_json::Value;

use crate::extract::IndexValue;
use crate::fhirpath::Item;
use crate::numbers::{parse_decimal, scaled_ceil, scaled_floor};
use crate::registry::ParamKind;
use crate::text::normalize;
use cupola_types::dates::parse_range;

pub(crate) fn decimal_of(v: &Value) -> Option<rust_decimal::Decimal> {
    match v {
        Value::Number(n) => parse_decimal(&n.to_string()),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Converts one evaluated item to index values of parameter type `kind`.
pub(crate) fn values(kind: ParamKind, item: &Item<'_>) -> Vec<IndexValue> {
    let v = match item {
        Item::Node { v, .. } => *v,
        Item::Bool(b) => {
            return match kind {
                ParamKind::Token => vec![IndexValue::Token { system: None, code: Some(b.to_string()), text: None }],
                _ => Vec::new(),
            }
        }
        Item::Str(s) => return values(kind, &Item::Node { v: &Value::String(s.clone()), ty: None }),
        Item::Resolved(_) => return Vec::new(),
    };
    match kind {
        ParamKind::String => strings(v),
        ParamKind::Token => tokens(v),
        ParamKind::Date => date(v).into_iter().collect(),
        ParamKind::Reference => reference(v).into_iter().collect(),
        ParamKind::Uri => {
            v.as_str().filter(|s| !s.is_empty()).map(|u| IndexValue::Uri { uri: u.to_string() }).into_iter().collect()
        }
        ParamKind::Number => {
            decimal_of(v).map(|d| IndexValue::Number { lo: scaled_floor(d), hi: scaled_ceil(d) }).into_iter().collect()
        }
        ParamKind::Quantity => quantity(v).into_iter().collect(),
        ParamKind::Composite | ParamKind::Special => Vec::new(),
    }
}

fn string_value(s: &str) -> Option<IndexValue> {
    (!s.trim().is_empty()).then(|| IndexValue::String { norm: normalize(s), exact: s.to_string() })
}

/// Plain strings, and HumanName / Address expanded into their parts.
fn strings(v: &Value) -> Vec<IndexValue> {
    match v {
        Value::String(s) => string_value(s).into_iter().collect(),
        Value::Object(o) => {
            const PARTS: &[&str] = &[
                "text",
                "family",
                "given",
                "prefix",
                "suffix",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ];
            PARTS
                .iter()
                .filter_map(|k| o.get(*k))
                .flat_map(|p| match p {
                    Value::Array(a) => a.iter().filter_map(Value::as_str).filter_map(string_value).collect(),
                    Value::String(s) => string_value(s).into_iter().collect(),
                    _ => Vec::new(),
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

fn tokens(v: &Value) -> Vec<IndexValue> {
    let token = |system: Option<String>, code: Option<String>, text: Option<String>| IndexValue::Token {
        system,
        code,
        text: text.map(|t| normalize(&t)),
    };
    match v {
        Value::String(s) if !s.is_empty() => vec![token(None, Some(s.clone()), None)],
        Value::Bool(b) => vec![token(None, Some(b.to_string()), None)],
        Value::Number(n) => vec![token(None, Some(n.to_string()), None)],
        Value::Object(o)
            if o.contains_key("coding")
                || (o.contains_key("text") && !o.contains_key("value") && !o.contains_key("code")) =>
        {
            let text = str_of(v, "text");
            let mut out: Vec<IndexValue> = o
                .get("coding")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().flat_map(|c| coding(c, &text)).collect())
                .unwrap_or_default();
            if text.is_some() {
                out.push(token(None, None, text));
            }
            out
        }
        Value::Object(o) if o.contains_key("value") => {
            let value = match o.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let text = o.get("type").and_then(|t| str_of(t, "text"));
            vec![token(str_of(v, "system"), value, text)]
        }
        Value::Object(_) => coding(v, &None).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn coding(c: &Value, cc_text: &Option<String>) -> Option<IndexValue> {
    let (system, code) = (str_of(c, "system"), str_of(c, "code"));
    if system.is_none() && code.is_none() {
        return None;
    }
    let text = str_of(c, "display").or_else(|| cc_text.clone()).map(|t| normalize(&t));
    Some(IndexValue::Token { system, code, text })
}

fn date(v: &Value) -> Option<IndexValue> {
    let range = |s: Option<&Value>| s.and_then(Value::as_str).and_then(|s| parse_range(s).ok());
    match v {
        Value::String(s) => parse_range(s).ok().map(|r| IndexValue::Date { lo: r.lo, hi: r.hi }),
        Value::Object(o) if o.contains_key("start") || o.contains_key("end") => {
            let (start, end) = (range(o.get("start")), range(o.get("end")));
            if start.is_none() && end.is_none() {
                return None;
            }
            Some(IndexValue::Date { lo: start.map_or(i64::MIN, |r| r.lo), hi: end.map_or(i64::MAX, |r| r.hi) })
        }
        Value::Object(o) => {
            // Timing: its events and repeat.boundsPeriod.
            let mut ranges: Vec<(i64, i64)> = o
                .get("event")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|e| range(Some(e))).map(|r| (r.lo, r.hi)).collect())
                .unwrap_or_default();
            if let Some(IndexValue::Date { lo, hi }) =
                o.get("repeat").and_then(|r| r.get("boundsPeriod")).and_then(date)
            {
                ranges.push((lo, hi));
            }
            let lo = ranges.iter().map(|r| r.0).min()?;
            let hi = ranges.iter().map(|r| r.1).max()?;
            Some(IndexValue::Date { lo, hi })
        }
        _ => None,
    }
}

/// Splits a reference or canonical into (type, id) when it ends in `Type/id`
/// (ignoring `/_history/v` and `|version`). Contained (`#x`) and `urn:` references
/// give `(None, None)`.
pub(crate) fn split_reference(r: &str) -> (Option<String>, Option<String>) {
    if r.starts_with('#') || r.starts_with("urn:") {
        return (None, None);
    }
    let r = r.split('|').next().unwrap_or(r);
    let r = match r.find("/_history/") {
        Some(p) => &r[..p],
        None => r,
    };
    let mut segs = r.rsplit('/');
    let (Some(id), Some(ty)) = (segs.next(), segs.next()) else {
        return (None, None);
    };
    let type_ok = ty.starts_with(|c: char| c.is_ascii_uppercase()) && ty.chars().all(|c| c.is_ascii_alphanumeric());
    let id_ok =
        !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if type_ok && id_ok {
        (Some(ty.to_string()), Some(id.to_string()))
    } else {
        (None, None)
    }
}

fn reference(v: &Value) -> Option<IndexValue> {
    match v {
        Value::String(s) if !s.is_empty() => {
            let (target_type, target_id) = split_reference(s);
            Some(IndexValue::Reference {
                target_type,
                target_id,
                raw: Some(s.clone()),
                ident_system: None,
                ident_value: None,
            })
        }
        Value::Object(o) if !o.contains_key("resourceType") => {
            let raw = str_of(v, "reference");
            let (mut target_type, target_id) = raw.as_deref().map(split_reference).unwrap_or((None, None));
            if target_type.is_none() {
                target_type = str_of(v, "type");
            }
            let ident = o.get("identifier");
            let ident_system = ident.and_then(|i| str_of(i, "system"));
            let ident_value = ident.and_then(|i| str_of(i, "value"));
            if raw.is_none() && ident_value.is_none() {
                return None;
            }
            Some(IndexValue::Reference { target_type, target_id, raw, ident_system, ident_value })
        }
        _ => None,
    }
}

fn quantity(v: &Value) -> Option<IndexValue> {
    match v {
        Value::Number(_) | Value::String(_) => {
            let d = decimal_of(v)?;
            Some(IndexValue::Quantity { lo: scaled_floor(d), hi: scaled_ceil(d), system: None, code: None, unit: None })
        }
        Value::Object(o) if o.contains_key("low") || o.contains_key("high") => {
            let bound = |k: &str| o.get(k).and_then(|q| q.get("value")).and_then(decimal_of);
            let (low, high) = (bound("low"), bound("high"));
            if low.is_none() && high.is_none() {
                return None;
            }
            let unit_src = o.get("low").filter(|l| l.get("value").is_some()).or_else(|| o.get("high")).unwrap_or(v);
            Some(IndexValue::Quantity {
                lo: low.map_or(i64::MIN, scaled_floor),
                hi: high.map_or(i64::MAX, scaled_ceil),
                system: str_of(unit_src, "system"),
                code: str_of(unit_src, "code"),
                unit: str_of(unit_src, "unit"),
            })
        }
        Value::Object(o) => {
            let d = o.get("value").and_then(decimal_of)?;
            let (system, code) = match str_of(v, "currency") {
                Some(cur) => (Some("urn:iso:std:iso:4217".to_string()), Some(cur)),
                None => (str_of(v, "system"), str_of(v, "code")),
            };
            Some(IndexValue::Quantity {
                lo: scaled_floor(d),
                hi: scaled_ceil(d),
                system,
                code,
                unit: str_of(v, "unit"),
            })
        }
        _ => None,
    }
}
